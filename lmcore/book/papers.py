"""Numbers quoted from the papers, for tables that put them *beside* ours.

Every value here is copied from a paper (the ``source`` says which table) and is labelled as the
paper's wherever it is shown. None of them is a result of this project: the papers trained on
CelebA (~160-200k images) and tested on MAFL/AFLW, while this book trains on ~9k MTFL-80 faces
and tests on MTFL-80's splits. Errors are mean point-to-point error in % of the inter-ocular
distance.
"""
from __future__ import annotations

SUPERVISED = {
    "source": "Zhang et al. 2018, Table 1b (supervised detectors on MAFL and AFLW)",
    "columns": ("MAFL", "AFLW"),
    "rows": {
        "TCDCN": (7.95, 7.65),
        "Cascaded CNN": (9.73, 8.97),
        "CFAN": (15.84, 10.94),
        "RAR": (None, 7.23),
        "MTCNN": (5.39, 6.90),
    },
}

FSE_TABLE1 = {
    "source": "Thewlis et al. 2017, Table 1 (MAFL test; regressor trained on MAFL or CelebA)",
    "rows": {  # K: (regressor on MAFL, regressor on CelebA)
        10: (7.95, 6.32),
        30: (7.15, 5.76),
        50: (6.67, 5.33),
    },
    "aflw": {"source": "Thewlis et al. 2017, Table 3 (AFLW, 51 landmarks, fine-tuned on AFLW)", "value": 10.53},
}

FSE_TABLE4 = {
    "source": "Thewlis et al. 2017, Table 4 (MAFL test, K = 30, regressor on n MAFL images)",
    "rows": {1: 10.82, 5: 9.25, 10: 8.49, 20: 8.06, 19000: 7.15},
}

ZHANG_TABLE1 = {
    "source": "Zhang et al. 2018, Table 1a/1b (MAFL and AFLW test)",
    "rows": {10: {"MAFL": 3.46, "AFLW": 7.01}, 30: {"MAFL": 3.15, "AFLW": 6.58}},
    "ablation_source": "Zhang et al. 2018, Table 1c (MAFL, 10 landmarks)",
    "ablation": {"full": 3.15, "w/o recon": 3.45, "w/o conc": 3.91, "w/o sep": 16.56, "w/o eqv": 8.42},
    "tps_ratio_source": "Zhang et al. 2018, Table 5 (grid:landmark TPS control points, K = 10)",
    "tps_ratio": {"10:0": 4.17, "1:9": 3.86, "3:7": 3.46, "5:5": 3.38, "7:3": 3.46, "9:1": 3.41},
}

JAKAB = {
    "source": "Jakab et al. 2018, as quoted by Xu et al. 2020 (Table 1, K = 10 and 30) and Sanchez & Tzimiropoulos 2019 (K = 10; MAFL and AFLW test)",
    "rows": {10: {"MAFL": 3.19, "AFLW": 6.86}, 30: {"MAFL": 2.58, "AFLW": 6.31}},
    "sanchez_scratch_source": "Sanchez & Tzimiropoulos 2019, Table 2 (their re-implementation 'Scratch', K = 10)",
    "sanchez_scratch": {"forward": {"MAFL": 5.00, "AFLW": 7.65}, "backward": {"MAFL": 17.57, "AFLW": 25.50},
                        "consistency": {"MAFL": 9.11, "AFLW": 11.20}},
}

SANCHEZ = {
    "source": "Sanchez & Tzimiropoulos 2019 (MAFL and AFLW test, K = 10, core: FAN trained on MPII)",
    "table1_source": "Sanchez & Tzimiropoulos 2019, Table 1 (forward error, K = 10)",
    "table1": {"scratch": {"MAFL": 5.00, "AFLW": 7.65}, "finetune": {"MAFL": 3.91, "AFLW": 6.79},
               "proposed": {"MAFL": 3.99, "AFLW": 6.69}},
    "table2_source": "Sanchez & Tzimiropoulos 2019, Table 2 (forward / backward error against n_im, the "
                     "number of images the regressor is fitted on; None = all)",
    # {direction: {split: {mode: {n: error}}}}
    "table2": {
        "forward": {
            "MAFL": {"scratch": {1: 26.76, 5: 18.32, 10: 12.12, 100: 5.75, 500: 5.28, 1000: 5.18, 5000: 5.04, None: 5.00},
                     "finetune": {1: 16.76, 5: 9.71, 10: 7.45, 100: 4.62, 500: 4.12, 1000: 4.02, 5000: 3.98, None: 3.91},
                     "proposed": {1: 18.70, 5: 8.77, 10: 7.13, 100: 4.53, 500: 4.13, 1000: 4.16, 5000: 4.05, None: 3.99}},
            "AFLW": {"scratch": {1: 17.88, 5: 16.88, 10: 14.62, 100: 9.02, 500: 8.09, 1000: 7.90, 5000: 7.67, None: 7.65},
                     "finetune": {1: 15.40, 5: 13.38, 10: 11.59, 100: 8.24, 500: 7.19, 1000: 7.04, 5000: 6.81, None: 6.79},
                     "proposed": {1: 16.08, 5: 12.33, 10: 11.09, 100: 7.64, 500: 7.20, 1000: 6.91, 5000: 6.73, None: 6.69}},
        },
        "backward": {
            "MAFL": {"scratch": {1: 30.64, 5: 26.39, 10: 22.99, 100: 18.86, 500: 18.05, 1000: 17.82, 5000: 17.68, None: 17.57},
                     "finetune": {1: 12.50, 5: 8.58, 10: 7.41, 100: 5.23, 500: 4.70, 1000: 4.60, 5000: 4.47, None: 4.43},
                     "proposed": {1: 12.30, 5: 7.22, 10: 6.01, 100: 4.23, 500: 3.82, 1000: 3.74, 5000: 3.59, None: 3.55}},
            "AFLW": {"scratch": {1: 37.23, 5: 35.36, 10: 32.49, 100: 26.36, 500: 25.80, 1000: 25.60, 5000: 25.50, None: 25.50},
                     "finetune": {1: 18.92, 5: 16.46, 10: 15.09, 100: 11.72, 500: 11.30, 1000: 11.23, 5000: 11.14, None: 11.14},
                     "proposed": {1: 17.47, 5: 14.55, 10: 12.24, 100: 9.69, 500: 9.29, 1000: 9.25, 5000: 9.19, None: 9.19}},
        },
    },
    "table3_source": "Sanchez & Tzimiropoulos 2019, Table 3 (consistency error per landmark, sorted, and mean)",
    "table3": {
        "MAFL": {"scratch": [1.08, 1.20, 1.34, 1.36, 1.38, 1.76, 3.98, 16.51, 27.44, 35.03, 9.11],
                 "finetune": [1.11, 1.36, 1.39, 1.39, 1.68, 1.83, 2.79, 3.58, 5.59, 7.51, 2.82],
                 "proposed": [0.96, 1.09, 1.19, 1.34, 1.45, 1.58, 1.80, 1.92, 3.65, 4.09, 1.91]},
        "AFLW": {"scratch": [1.45, 1.78, 1.83, 1.85, 1.95, 2.54, 8.46, 21.62, 31.30, 39.37, 11.20],
                 "finetune": [1.86, 1.93, 1.95, 2.16, 2.18, 2.53, 5.34, 7.30, 8.30, 9.66, 4.32],
                 "proposed": [1.46, 1.47, 1.47, 1.54, 1.65, 1.66, 1.92, 2.07, 4.97, 6.99, 2.52]},
    },
    "core_quality_source": "Sanchez & Tzimiropoulos 2019, Tables 4-5 top (AFLW, proposed, regressor on all "
                           "images; cores from the MPII pose network after 1, 5, 10 and 110 epochs)",
    # epoch: (core PCKh % on MPII val, §4.1; AFLW forward, backward, mean consistency)
    "core_quality": {1: (22.95, 9.68, 33.72, 15.09), 5: (55.03, 7.76, 32.86, 14.32), 10: (57.67, 6.93, 13.58, 5.30),
                     110: (79.0, 6.69, 9.19, 2.52)},
}

C3 = {
    "source": "Xu et al. 2020, Table 1a (MAFL and AFLW test, CelebA training at 128 px)",
    "rows": {10: {"MAFL": 3.11, "AFLW": 6.75}, 30: {"MAFL": 2.54, "AFLW": 6.26}},
    "ablation_source": "Xu et al. 2020, Table 2 (MAFL; the number of landmarks is not stated)",
    "ablation": {"neither (paired baseline)": 3.31, "cycle": 3.18, "flow": 3.30, "cycle + flow": 3.11},
    "alignment_source": "Xu et al. 2020, Table 3 (PF-PASCAL, PCK@0.1 of the object box)",
    "alignment": {"NC-Net": 78.9, "flow module": 78.5, "flow module with landmarks": 80.1},
}
