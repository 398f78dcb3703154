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
    "source": "Jakab et al. 2018 via ../shared/notes/protocols.md (MAFL and AFLW test)",
    "rows": {10: {"MAFL": 3.19, "AFLW": 6.86}, 30: {"MAFL": 2.58, "AFLW": 6.31}},
    "sanchez_scratch_source": "Sanchez & Tzimiropoulos 2019, Table 2 (their re-implementation 'Scratch', K = 10)",
    "sanchez_scratch": {"forward": {"MAFL": 5.00, "AFLW": 7.65}, "backward": {"MAFL": 17.57, "AFLW": 25.50},
                        "consistency": {"MAFL": 9.11, "AFLW": 11.20}},
}
