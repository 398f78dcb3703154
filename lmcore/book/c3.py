"""Chapter 5's tables, figures and verdicts (Xu et al. 2020, C3), so that the chapter is calls.

    from lmcore.book import c3
    runs = c3.by_k(chapter.headline_runs("05_c3"))           # {K: record}
    baselines = c3.by_k(chapter.headline_runs("03_jakab"))   # the paired pre-trainings ("Cond.")
    table = c3.show_table1(chapter, runs, baselines)

Runs are ``{K: record}`` and models ``{K: trained method}``; a K a profile has no run (or no
weights) for is absent, and each section says what it cannot show (:meth:`Chapter.missing`).
The ablation, Table 3's flow and the figures are at the main K (:data:`MAIN_K`): the flow module
comes with a trained C3 run's parent ``flow`` only (a committed C3 reference keeps E_p, E_a and D).
"""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from .. import bench
from ..data.pf_pascal import load_pf_pascal
from ..errors import MissingDataError
from ..evaluation.alignment import (alignment_scores, cross_image_consistency, fixed_pairs, landmark_transfer,
                                    pair_pck, transfer_identity)
from ..experiments import EXPERIMENTS, method_settings
from ..experiments.c3 import ABLATION
from ..geometry.coords import normalized_to_pixels, pixels_to_normalized
from ..methods.c3 import FLOW_EPE_KEY
from ..models.flow import correlation_memory_bytes
from ..paths import runs_root
from ..profiles import select_device
from ..training import load_references, variant_run_name
from ..training.bench import correlation_cost, run_step_cost
from ..training.code_identity import code_fingerprint
from ..training.records import describe_device, write_json_atomic
from . import papers, viz
from .reporting import (SMOKE_NOTE, error_table, protocol_table, provenance_table, published_parent, separated,
                        target_verdicts, tuning_table, verdict)

EXPERIMENT = EXPERIMENTS["05_c3"]
#: the K of each headline run, in the tables' order
K_VALUES = tuple(run.num_landmarks for run in EXPERIMENT.runs)
#: the K of Table 2 (its "cycle + flow" row is that headline run), of Table 3's flow and of the figures
MAIN_K = 10
#: the run-name prefix of the chapter's ablation rows (``ablation-cycle``, ...)
ABLATION_PREFIX = "ablation"
#: the committed references that hold Table 2 again: the full method's reference, and the prefix of
#: its other rows (each trained as long, from the same pre-training)
REFERENCE_ABLATIONS = ((EXPERIMENT.runs[K_VALUES.index(MAIN_K)].name, ABLATION_PREFIX),
                       ("k10-long", "k10-long-ablation"))
#: the other chapters' methods whose committed references Table 1 is shown beside
OTHER_METHODS = ("fse", "zhang", "jakab", "sanchez")


# ---------------------------------------------------------------- runs and models
def by_k(records: dict) -> dict:
    """``{K: record}`` of ``{run name: record}`` (e.g. :meth:`Chapter.headline_runs`), in its order."""
    return {record.num_landmarks: record for record in records.values()}


def models_of(chapter, runs: dict) -> dict:
    """``{K: trained method}`` of the runs ``chapter`` can load a model of (a reference needs its
    weights in the zoo)."""
    return {k: chapter.model(r) for k, r in runs.items() if chapter.has_model(r)}


def flow_model(models: dict):
    """The main-K C3 model where it carries its flow module (a trained run's parent ``flow``), else
    None: a committed reference's weights hold E_p, E_a and D only."""
    model = models.get(MAIN_K)
    return model if model is not None and model.flow_run is not None else None


def run_label(record) -> str:
    """Table 1's name of a run: ``C3, K = 10`` or ``paired baseline (Jakab), K = 10``."""
    return f"{'C3' if record.method == 'c3' else 'paired baseline (Jakab)'}, K = {record.num_landmarks}"


# ---------------------------------------------------------------- settings, tuning, the flow
def show_tuning_verdict(records: list, configs: dict) -> None:
    """:func:`tuning_verdict` where there is a sweep, and the parent runs C3 starts from."""
    if records:
        print(tuning_verdict(records))
    print("parent runs of c3:", configs["c3"]["parents"])


def tuning_verdict(records: list) -> str:
    """Whether the kept weights of Eq. 5 (the sweep's ``(kept)`` setting) stay: the best setting on
    tune_val, and whether the kept one is within the half-width of its own 95 % interval of it."""
    frame = tuning_table(records)
    kept = next(label for label in frame.index if "(kept)" in label)
    best = frame["tune_val forward (%)"].idxmin()
    gap = frame.loc[kept, "tune_val forward (%)"] - frame.loc[best, "tune_val forward (%)"]
    low, high = frame.loc[kept, "95 % interval"]
    if gap <= (high - low) / 2:
        return (f"best on tune_val: {best}; the kept weights are {gap:.2f} points behind it, inside the kept run's own "
                f"95 % interval (half-width {(high - low) / 2:.2f})")
    return f"best on tune_val: {best}, {gap:.2f} points better than the kept weights: outside their 95 % interval"


def correlation_memory_table(sides) -> pd.DataFrame:
    """The 4D correlation's memory per pair (MB) of square feature maps of each side: arithmetic,
    for a profile that times nothing."""
    return pd.DataFrame([{"side": s, "correlation_mb_per_pair": round(correlation_memory_bytes(s) / 2 ** 20, 3)}
                         for s in sides]).set_index("side")


def show_correlation_costs(chapter) -> None:
    """The correlation's cost per pair at each feature-map side: timed where the profile trains,
    its memory alone in ``reference``; beside it, one 4D tensor of 32 x 32 maps."""
    sides = (8, 12, 16) if chapter.settings != "paper" else (8, 12, 16, 24, 32)
    if chapter.trains:
        cost = pd.DataFrame([correlation_cost(s, pairs=2 if chapter.profile == "smoke" else 8, device=select_device())
                             for s in sides]).set_index("side")
    else:
        print(f"the correlation's times are not measured in the {chapter.profile} profile, which runs no benchmark "
              f"(any other profile measures them on its machine); its memory per pair is arithmetic:")
        cost = correlation_memory_table(sides)
    cost["one 4D tensor, 32 x 32 maps (MB)"] = round(correlation_memory_bytes(32) / 2 ** 20, 1)
    display(cost)


def flow_epe_table(record) -> pd.DataFrame:
    """The flow run's end-point errors (cells of the map), one row per split it was scored on,
    one column per flow (the learnt filter, the raw correlation)."""
    return pd.DataFrame(record["metrics"][FLOW_EPE_KEY]).T.round(3).rename_axis("end-point error (cells)")


def flow_verdict(record) -> str:
    """Whether the flow run's learnt filter beats the raw cosine correlation on its first scored
    split (tune_val; test_mtfl in older records)."""
    split, epe = next(iter(record["metrics"][FLOW_EPE_KEY].items()))
    return (f"after {record.steps} steps the learnt filter is "
            + ("better" if epe["filtered"] < epe["raw_correlation"] else "NOT better")
            + f" than the raw correlation on synthetic pairs of {split} faces ({epe['filtered']:.2f} vs "
            f"{epe['raw_correlation']:.2f} cells)")


def show_flow_run(chapter, flow_run) -> None:
    """The flow run's provenance, end-point errors and verdict (its record is enough: the
    reference keeps no weights of the flow alone)."""
    if flow_run is None:
        chapter.missing("The flow run's end-point errors (c3_flow/flow)")
        return
    display(provenance_table([flow_run]))
    display(flow_epe_table(flow_run))
    print(flow_verdict(flow_run))


# ---------------------------------------------------------------- Table 1 and the paper's claim
def table1_records(runs: dict, baselines: dict) -> list:
    """Table 1's rows: at each K, the paired baseline, then C3; the runs that are here."""
    return [r for k in K_VALUES for r in (baselines.get(k), runs.get(k)) if r is not None]


def show_table1(chapter, runs: dict, baselines: dict) -> list:
    """Table 1 (provenance, then forward, backward and consistency errors), this build's runs beside
    the committed references where it trains, what is missing, and the mean-shape baseline;
    returns its records."""
    table = table1_records(runs, baselines)
    if table:
        display(provenance_table(table, label=run_label))
        display(protocol_table(table, label=run_label))
    chapter.compare_with_references(table)
    absent = [f"{name} K = {k}" for k in K_VALUES
              for name, found in (("the paired baseline", baselines), ("C3", runs)) if k not in found]
    if absent:
        chapter.missing("Table 1's runs of " + ", ".join(absent))
    print("mean-shape baseline on test_mtfl:", round(chapter.mean_shape, 2), "% IOD; on test_aflw:",
          round(chapter.mean_shape_aflw, 2))
    return table


def quoted_table() -> pd.DataFrame:
    """The papers' forward errors (MAFL, AFLW) of C3 and of its paired baseline (Jakab), per K."""
    return pd.DataFrame({f"{name}, K = {k}": {"forward MAFL": v["MAFL"], "forward AFLW": v["AFLW"]}
                         for name, paper in (("C3 (paper)", papers.C3), ("Cond. (Jakab, paper)", papers.JAKAB))
                         for k, v in paper["rows"].items()})


def show_beside_others() -> None:
    """The other chapters' committed references (forward errors) and the papers' numbers."""
    others = [r for m in OTHER_METHODS for r in load_references(m)]
    if others:
        display(error_table(others, label=lambda r: f"{r.method} / {r.run_name} (K = {r.num_landmarks}, "
                                                    f"{r.steps} steps)"))
    display(quoted_table())
    print("sources:", papers.C3["source"], "|", papers.JAKAB["source"])


def paper_verdict(profile: str, run, paired) -> str:
    """The paper's claim at one K, checked: C3 (``run``) below its paired pre-training (``paired``)
    on test_mtfl (:data:`~lmcore.book.reporting.SMOKE_NOTE` in the smoke profile)."""
    c3_error, paired_error = run.metric("forward", "test_mtfl")["mean"], paired.metric("forward", "test_mtfl")["mean"]
    return verdict(profile, f"K = {run.num_landmarks}: C3 {c3_error:.2f} vs its paired pre-training {paired_error:.2f} "
                   "on test_mtfl: " + ("C3 is better" if c3_error < paired_error else "C3 is NOT better")
                   + f" ({c3_error - paired_error:+.2f} points; C3 trained {run.steps} more steps on top of the "
                   f"pre-training's {paired.steps})")


def show_paper_verdicts(chapter, runs: dict, baselines: dict) -> None:
    """:func:`paper_verdict` at each K, or why it cannot be drawn."""
    for k in K_VALUES:
        if k not in runs or k not in baselines:
            chapter.missing(f"The verdict at K = {k}")
        else:
            print(paper_verdict(chapter.profile, runs[k], baselines[k]))


# ---------------------------------------------------------------- Table 2, the ablation
def ablation_runs(chapter, runs: dict) -> dict:
    """``{row: record}`` of Table 2: the ablation variants of the main-K run, trained as long from
    the same pre-training, its "cycle + flow" row that run itself (reused where a profile trains;
    in ``reference``, where every other row's reference starts as it does)."""
    main = runs.get(MAIN_K)
    ablation = chapter.variants("c3", {label: {"method": change} for label, change in ABLATION.items()},
                                base=method_settings("c3").ablation_config(chapter.settings), prefix=ABLATION_PREFIX,
                                reuse=[main] if main is not None else [])
    if (not chapter.trains and ablation and "cycle + flow" not in ablation and main is not None
            and all(_trained_alike_key(r) == _trained_alike_key(main) for r in ablation.values())):
        ablation["cycle + flow"] = main
    return ablation


def ablation_frame(rows: dict) -> pd.DataFrame:
    """Table 2's errors from one run per row (``{label: record}``), with the paper's MAFL column."""
    frame = protocol_table(list(rows.values()), label=lambda r: next(n for n, x in rows.items() if x is r))
    frame[("paper", "MAFL")] = [papers.C3["ablation"][label] for label in rows]
    return frame


def ablation_verdicts(frame: pd.DataFrame) -> list[str]:
    """What Table 2 (:func:`ablation_frame`, every row) says: the best row on tune_val (the one that
    chooses), the order on test_mtfl, and whether cycle + flow is best there as in the paper."""
    paper = papers.C3["ablation"]
    test = frame[("forward", "test_mtfl")]
    lines = [f"best on tune_val: {frame[('forward', 'tune_val')].idxmin()}; the paper's best: cycle + flow "
             f"({papers.C3['ablation_source']})",
             "order on test_mtfl, best first: " + " < ".join(test.sort_values().index)]
    if test.idxmin() == "cycle + flow":
        lines.append(f"as in the paper, cycle + flow is best on test_mtfl ({test['cycle + flow']:.2f} %, the paper "
                     f"{paper['cycle + flow']} on MAFL)")
    else:
        lines.append(f"unlike the paper, {test.idxmin()} is best on test_mtfl ({test.min():.2f} %) and cycle + flow "
                     f"scores {test['cycle + flow']:.2f} %; the paper has cycle + flow best ({paper['cycle + flow']} "
                     f"against {paper['neither (paired baseline)']} without both, MAFL)")
    return lines


def show_ablation(chapter, rows: dict) -> None:
    """Table 2 beside the paper's column, and its verdicts where every row is here (none in smoke)."""
    if not rows:
        chapter.missing("Table 2, the ablation cycle x flow")
        return
    frame = ablation_frame(rows)
    rows_profile = next(iter(rows.values())).profile
    display(separated(frame, rows_profile, paper_columns=[("paper", "MAFL")]))
    if set(rows) != set(ABLATION):
        chapter.missing("Table 2's rows " + ", ".join(label for label in ABLATION if label not in rows))
    elif rows_profile == "smoke":
        print(SMOKE_NOTE)
    else:
        print("\n".join(ablation_verdicts(frame)))


def committed_step_costs(record: dict) -> pd.DataFrame:
    """The C3 steps the committed bench record ``record`` (``python -m lmcore.bench``) timed at the
    ``cpu`` settings: the whole method (the ablation's "cycle + flow" row) and the flow module's
    pre-training. The other rows of Table 2 are not among its cases."""
    rows = {row["case"]: row for row in record["rows"]
            if row["method"] in ("c3", "c3_flow") and row["profile"] == "cpu" and bench.is_plain(row)}
    labels = {"C3": "cycle + flow (C3)", "C3 flow pre-training": "the flow module's pre-training (c3_flow)"}
    return pd.DataFrame({labels[case]: rows[case] for case in labels if case in rows}).T[
        ["step_ms", "images_per_s", "batch_size", "saved_for_backward_mb", "trainable"]]


def ablation_step_costs(profile: str, device: torch.device) -> pd.DataFrame:
    """One training step of each ablation row at ``profile``'s settings on ``device``: measured
    once and kept as ``<runs>/<profile>/bench/c3-ablation-<device type>.json``, reused while C3's code,
    the device's name and the thread count are unchanged (as the appendix's bench is)."""
    path = runs_root() / profile / "bench" / f"c3-ablation-{device.type}.json"
    here = describe_device(device)
    key = {"code": code_fingerprint("c3"), "device": here["name"], "threads": here["threads"]}
    try:
        kept = json.loads(path.read_text())
        if kept.get("key") == key:
            return pd.DataFrame(kept["rows"]).set_index("row")
    except (OSError, ValueError, KeyError):
        pass  # not measured yet, or cut short: measure
    smoke = profile == "smoke"
    # three warm-up steps each: with one, the first row measured paid the process's first convolutions
    # (it showed the paired baseline slower than the cycle)
    steps = pd.DataFrame({label: run_step_cost("c3", profile, {"method": change}, steps=2 if smoke else 4,
                                               warmup=1 if smoke else 3, device=device)
                          for label, change in ABLATION.items()}).T
    steps["time / paired"] = (steps["step_ms"] / steps.loc["neither (paired baseline)", "step_ms"]).round(2)
    steps = steps[["step_ms", "time / paired", "images_per_s", "batch_size", "saved_for_backward_mb", "trainable",
                   "device", "threads"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"key": key, "rows": steps.rename_axis("row").reset_index().to_dict("records")})
    return steps


def show_step_costs(chapter) -> None:
    """One training step of each ablation row: measured in this process at the chapter's settings
    (profiles that train), or, in the reference profile, which trains nothing, at the ``cpu``
    settings on this machine (kept for later builds), beside the committed bench record's C3 steps."""
    if not chapter.trains:
        record = next(r for r in bench.load_bench_records() if r["device"]["type"] == "cpu")
        display(Markdown(f"The committed bench record (`{record['path']}`, {record['device']['name']}, commit "
                         f"{record['commit'][:10]}) times the whole method and the flow's pre-training:"))
        display(committed_step_costs(record))
        display(Markdown("Each row of Table 2 at the `cpu` settings, timed on this machine (once; later builds "
                         "reuse it while C3's code is unchanged):"))
        display(ablation_step_costs("cpu", torch.device("cpu")))
        return
    display(ablation_step_costs(chapter.profile, select_device()))


# ---------------------------------------------------------------- curves
def show_learning_curves(chapter, runs: dict, baselines: dict, ablation: dict) -> None:
    """The main K's paired pre-training, C3 run and ablation rows against training time."""
    main = runs.get(MAIN_K)
    curves = [r for r in (baselines.get(MAIN_K), main) if r is not None]
    curves += [r for r in ablation.values() if r is not main]
    if not curves:
        chapter.missing("The learning curves")
        return
    viz.learning_curves(curves, label=lambda r: r.run_name if r.method == "c3" else "paired pre-training (Jakab)",
                        reference_line=chapter.mean_shape)
    plt.show()


def show_few_shot(chapter, table: list) -> None:
    """The few-shot curves on test_mtfl of Table 1's runs that have one (measured from a run's
    weights: a reference without weights has none)."""
    few_shot = [r for r in table if "few_shot" in r["metrics"]]
    if few_shot:
        viz.few_shot_plot({f"{'C3' if r.method == 'c3' else 'paired'}, K = {r.num_landmarks}, test_mtfl "
                           f"[{chapter.profile}]": r.few_shot("test_mtfl") for r in few_shot})
        plt.show()
    if len(few_shot) < 2 * len(K_VALUES):
        without = [run_label(r) for r in table if "few_shot" not in r["metrics"]]
        chapter.missing("The few-shot curves of " + (", ".join(without) or "Table 1's runs"))


# ---------------------------------------------------------------- Table 3, semantic alignment
def alignment_transfers(chapter, models: dict, baseline_models: dict) -> dict:
    """``{name: transfer}`` of Table 3: the identity, the affine map through each model's landmarks,
    and the main-K C3 run's flow, those whose model is here (the others named as missing)."""
    flow = flow_model(models)
    transfers = {"identity": transfer_identity}
    if MAIN_K in baseline_models:
        transfers[f"landmarks, paired baseline K = {MAIN_K}"] = landmark_transfer(baseline_models[MAIN_K].detect)
    for k in K_VALUES:
        if k in models:
            transfers[f"landmarks, C3 K = {k}"] = landmark_transfer(models[k].detect)
    if flow is not None:
        transfers["flow module (C3)"] = flow.transfer
    absent = [name for name, here in (("the paired baseline's landmarks", MAIN_K in baseline_models),
                                      *((f"C3 K = {k}'s landmarks", k in models) for k in K_VALUES),
                                      ("the flow module (c3_flow/flow)", flow is not None)) if not here]
    if absent:
        chapter.missing("Table 3's transfers through " + ", ".join(absent))
    return transfers


def alignment_table(transfers: dict, test_sets: dict, n_pairs: int) -> pd.DataFrame:
    """PCK@0.1 (of the inter-ocular distance and of the labelled box) of each transfer on
    ``n_pairs`` fixed pairs of each test set (``{name: LandmarkSet}``, seed 0), one row per transfer."""
    rows = {}
    for split_name, split in test_sets.items():
        pairs = fixed_pairs(len(split), n_pairs, seed=0)
        for name, transfer in transfers.items():
            scores = alignment_scores(transfer, split.images, split.points, pairs)
            rows.setdefault(name, {})[(split_name, "PCK@0.1 IOD")] = round(scores["iod"]["pck"], 1)
            rows[name][(split_name, "PCK@0.1 box")] = round(scores["box"]["pck"], 1)
    return pd.DataFrame(rows).T


def alignment_pairs(chapter) -> int:
    """How many fixed pairs of test faces Table 3 and Figure 3 score: 40 in the smoke profile, 500 otherwise."""
    return 40 if chapter.profile == "smoke" else 500


def show_alignment(chapter, models: dict, baseline_models: dict, n_pairs: int) -> None:
    """Table 3 on faces: every transfer whose model is here, on both test sets, beside the
    paper's (PF-PASCAL) numbers."""
    transfers = alignment_transfers(chapter, models, baseline_models)
    display(alignment_table(transfers, {"test_mtfl": chapter.test_mtfl, "test_aflw": chapter.test_aflw}, n_pairs))
    print(f"{n_pairs} pairs per test set. The paper's Table 3 (PF-PASCAL, not comparable):", papers.C3["alignment"])


def pf_pascal_table(transfers: dict, pairs) -> pd.DataFrame:
    """PCK@0.1 of each transfer on PF-PASCAL pairs (:func:`lmcore.evaluation.alignment.pair_pck`):
    of all points, the mean over pairs, and the number of pairs."""
    scores = {name: pair_pck(transfer, pairs) for name, transfer in transfers.items()}
    return pd.DataFrame({name: {"PCK@0.1 (% of points)": round(s["pck"], 1),
                                "mean over pairs": round(s["pck_per_pair"], 1), "pairs": s["n_pairs"]}
                         for name, s in scores.items()}).T


def show_pf_pascal(chapter, models: dict) -> None:
    """PF-PASCAL's test pairs through the identity and the main-K C3 run's landmarks and flow,
    where a user has prepared the data set."""
    try:
        pairs = load_pf_pascal("test")
    except MissingDataError as missing:
        print(f"PF-PASCAL is not prepared on this machine, so this table is skipped: {missing}")
        return
    flow = flow_model(models)
    if flow is None:
        chapter.missing(f"PF-PASCAL through C3 K = {MAIN_K}'s landmarks and flow")
    transfers = {"identity": transfer_identity}
    if flow is not None:
        transfers[f"landmarks, C3 K = {MAIN_K}"] = landmark_transfer(flow.detect)
        transfers["flow module (C3)"] = flow.transfer
    display(pf_pascal_table(transfers, pairs))
    print("The paper's Table 3 (PF-PASCAL):", papers.C3["alignment"])


# ---------------------------------------------------------------- Figures 3 and 4, the widget
def consistency_pairs(chapter, n_pairs: int) -> torch.Tensor:
    """Figure 3's fixed pairs of test_mtfl faces (seed 1; Table 3's are seed 0), ``n_pairs x 2``."""
    return fixed_pairs(len(chapter.test_mtfl), n_pairs, seed=1)


def show_consistency(chapter, models: dict, baseline_models: dict, pairs: torch.Tensor) -> None:
    """Figure 3's number: the mean distance (% of B's IOD) between B's landmarks and A's carried by
    the main-K C3 run's flow, for the paired baseline and C3, through the same flow."""
    flow = flow_model(models)
    compared = {name: m for name, m in ((f"paired baseline (Jakab), K = {MAIN_K}", baseline_models.get(MAIN_K)),
                                        (f"C3, K = {MAIN_K}", models.get(MAIN_K))) if m is not None}
    if flow is not None:
        test = chapter.test_mtfl
        consistency = {name: cross_image_consistency(m.detect, flow.transfer, test.images, test.points, pairs)
                       for name, m in compared.items()}
        display(pd.DataFrame({name: {"mean (% IOD)": round(c["mean"], 2), "pairs": c["n_pairs"]}
                              for name, c in consistency.items()}).T)
    if flow is None or len(compared) < 2:
        chapter.missing("Figure 3's consistency " + ("of the paired baseline" if flow is not None else
                                                     "(it carries landmarks through the flow module, c3_flow/flow)"))


def show_carried(ax, image: torch.Tensor, own: torch.Tensor, carried: torch.Tensor, title: str | None = None) -> None:
    """Face B (``3 x H x W``) with its own points as dots and A's carried onto it as crosses (both
    ``N x 2`` pixels, one colour per index)."""
    viz.show_landmarks(ax, image, own, size=14, title=title)
    crosses = np.asarray(carried)
    ax.scatter(crosses[:, 0], crosses[:, 1], c=viz.landmark_colours(len(crosses)), marker="x", s=22)


def face_images(chapter) -> torch.Tensor:
    """test_mtfl's faces as floats in [0, 1], ``N x 3 x H x W``."""
    return chapter.test_mtfl.images.float() / 255


def figure3(chapter, models: dict, baseline_models: dict, shown: torch.Tensor) -> None:
    """Figure 3: for each pair ``(A, B)`` of ``shown`` and each detector (paired baseline, C3), B's
    own landmarks (dots) and A's carried by the main-K C3 run's flow (crosses)."""
    flow = flow_model(models)
    if flow is None:
        chapter.missing("Figure 3's faces (the flow module, c3_flow/flow)")
        return
    images = face_images(chapter)
    size = images.shape[-1]
    drawn = [(name, m) for name, m in (("paired baseline", baseline_models.get(MAIN_K)), ("C3", models.get(MAIN_K)))
             if m is not None]
    fig, axes = plt.subplots(len(drawn), len(shown), figsize=(2.2 * len(shown), 2.3 * len(drawn)), squeeze=False)
    for row, (name, detector) in enumerate(drawn):
        for col, (a, b) in enumerate(shown.tolist()):
            own = detector.detect(images[b:b + 1]).cpu()
            carried = flow.transfer(images[a:a + 1], images[b:b + 1], detector.detect(images[a:a + 1])).cpu()
            show_carried(axes[row, col], images[b], normalized_to_pixels(own[0], size),
                         normalized_to_pixels(carried[0], size).numpy(),
                         title=f"{name}: A {a} → B {b}" if col == 0 else f"A {a} → B {b}")
    fig.suptitle(f"B's own landmarks (dots) and A's carried by the flow (crosses), K = {MAIN_K} [{chapter.profile}]",
                 fontsize=9)
    plt.show()


def figure4(chapter, models: dict, faces: slice = slice(10, 15)) -> None:
    """Figure 4 from the main-K C3 run's decoder: the appearance of each face of ``faces`` (rows)
    with the pose of each (columns); then isolated decoding, pose maps alone and appearance alone."""
    model = models.get(MAIN_K)
    if model is None:
        chapter.missing(f"Figure 4, disentanglement (C3 K = {MAIN_K}'s decoder)")
        return
    grid = face_images(chapter)[faces]
    n = len(grid)
    fig, axes = plt.subplots(n + 1, n + 1, figsize=(1.7 * (n + 1), 1.7 * (n + 1)))
    axes[0, 0].axis("off")
    view = model.to_view(grid).cpu()
    for j in range(n):
        viz.show_landmarks(axes[0, j + 1], view[j], title="pose B" if j == 0 else None)
    for i in range(n):
        viz.show_landmarks(axes[i + 1, 0], view[i], title="appearance A" if i == 0 else None)
        swapped = model.swap(grid[i:i + 1].expand(n, -1, -1, -1), grid)["generated"].cpu()
        for j in range(n):
            viz.show_landmarks(axes[i + 1, j + 1], swapped[j])
    fig.suptitle(f"C3: appearance of A with the pose of B, K = {MAIN_K} [{chapter.profile}]", fontsize=9)
    plt.show()

    template = model.decode_isolated(grid, keep="pose").cpu()
    texture = model.decode_isolated(grid, keep="appearance").cpu()
    fig, axes = plt.subplots(3, n, figsize=(1.7 * n, 5.4))
    for j in range(n):
        viz.show_landmarks(axes[0, j], view[j], title="input" if j == 0 else None)
        viz.show_landmarks(axes[1, j], template[j], title="pose only (template)" if j == 0 else None)
        viz.show_landmarks(axes[2, j], texture[j], title="appearance only" if j == 0 else None)
    fig.suptitle(f"Isolated decoding, C3 K = {MAIN_K} [{chapter.profile}]", fontsize=9)
    plt.show()


def _two_face_panels(model, flow, pool: torch.Tensor, labels_px: torch.Tensor, i: int) -> list[bytes]:
    """The widget's row of face ``i`` of ``pool``: one PNG per face B (A, B, A's look with B's pose,
    A after the cycle, and A's labels carried to B where the flow is here)."""
    size = pool.shape[-1]
    a = pool[i:i + 1].expand(len(pool), -1, -1, -1)
    out = model.cycle_images(a, pool)
    if flow is not None:
        carried = flow.transfer(a, pool, pixels_to_normalized(labels_px[i:i + 1], size).expand(len(pool), -1, -1)).cpu()
    row = []
    for j in range(len(pool)):
        fig, axes = plt.subplots(1, 5 if flow is not None else 4, figsize=(10 if flow is not None else 8, 2.3))
        viz.show_landmarks(axes[0], out["views_a"][j].cpu(), title="A")
        viz.show_landmarks(axes[1], out["views_b"][j].cpu(), title="B")
        viz.show_landmarks(axes[2], out["swap_ij"][j].cpu(), title="A's look, B's pose")
        viz.show_landmarks(axes[3], out["cycle_i"][j].cpu(), title="A after the cycle")
        if flow is not None:
            show_carried(axes[4], pool[j], labels_px[j].numpy(), normalized_to_pixels(carried[j], size).numpy(),
                         title="A's labels carried to B")
        row.append(viz.figure_png(fig, dpi=70))
    return row


def two_face_widget(chapter, models: dict, faces: range = range(20, 25)) -> None:
    """Every ordered pair of ``faces`` (test_mtfl) through the main-K C3 run: the swaps, the cycle
    and, where its flow is here, A's labelled points carried onto B; linked sliders that work in
    the static book."""
    model = models.get(MAIN_K)
    if model is None:
        chapter.missing(f"The two-face widget (C3 K = {MAIN_K}'s decoder and flow)")
        return
    flow = flow_model(models)
    pool = face_images(chapter)[faces.start:faces.stop]
    labels_px = chapter.test_mtfl.points[faces.start:faces.stop]
    pngs = [_two_face_panels(model, flow, pool, labels_px, i) for i in range(len(pool))]
    names = [f"test_mtfl face {f}" for f in faces]
    display(viz.pair_stack(pngs, names, names, row_description="A", col_description="B", width="720px"))
    if flow is None:
        chapter.missing("The widget's labels carried by the flow (the flow module, c3_flow/flow)")


# ---------------------------------------------------------------- the committed references
def pretraining_change(record, pretraining) -> str:
    """What C3's steps changed: the forward and backward errors on test_mtfl of ``record`` minus
    those of its pre-training, beside the half-width of the pre-training's 95 % interval on tune_val."""
    change = {metric: record.metric(metric, "test_mtfl")["mean"] - pretraining.metric(metric, "test_mtfl")["mean"]
              for metric in ("forward", "backward")}
    low, high = pretraining["metrics"]["tune"]["tune_val"]["ci95"]
    return (f"C3's steps change the forward error on test_mtfl by {change['forward']:+.2f} points and the "
            f"backward error by {change['backward']:+.2f}; the pre-training's 95 % interval on tune_val is "
            f"+-{(high - low) / 2:.2f} points wide")


def show_beside_pretraining(references: list) -> None:
    """Each main reference (not an ablation row) beside its pre-training, where that very run is
    committed with the Jakab chapter's references."""
    for record in references:
        pretraining = None if ABLATION_PREFIX in record.run_name else published_parent(record, "pairs")
        if pretraining is None:
            continue
        display(Markdown(f"`{record.run_name}` beside its pre-training `jakab/{pretraining.run_name}` "
                         f"({pretraining.steps} paired steps, then {record.steps} C3 steps):"))
        display(protocol_table([pretraining, record], label=lambda r: (
            f"pre-training (jakab/{r.run_name})" if r.method == "jakab" else f"C3 ({r.run_name})")))
        print(pretraining_change(record, pretraining))


def _trained_alike_key(record) -> str:
    """What Table 2's rows must share: the steps, the pre-training and every training setting
    (the learning rate's schedule included), so that only the ablated terms differ."""
    return json.dumps([record.steps, record["parents"]["pairs"]["identity"], record["config"]["train"]], sort_keys=True)


def reference_ablations(references: list) -> list[tuple[str, dict]]:
    """``[(full, {row: record})]``: each of :data:`REFERENCE_ABLATIONS` whose four rows are all
    committed, trained equally long from one pre-training with the same training settings."""
    by_name = {r.run_name: r for r in references}
    found = []
    for full, prefix in REFERENCE_ABLATIONS:
        rows = {label: by_name.get(full if label == "cycle + flow" else variant_run_name(prefix, label))
                for label in ABLATION}
        if all(rows.values()) and len({_trained_alike_key(r) for r in rows.values()}) == 1:
            found.append((full, rows))
    return found


def show_reference_results(chapter, references: list) -> None:
    """After the references' tables: the K = 10 references against the book's target, each main
    reference beside its pre-training, and Table 2 again from each complete ablation family."""
    if not references:
        return
    print("\n".join(target_verdicts([r for r in references if r.num_landmarks == MAIN_K], chapter.target)))
    show_beside_pretraining(references)
    for full, rows in reference_ablations(references):
        first = rows["cycle + flow"]
        display(Markdown(f"Table 2 from the references ({first.steps} steps each from "
                         f"`jakab/{first['parents']['pairs']['run_name']}`, the pre-training of `{full}`):"))
        show_ablation(chapter, rows)
