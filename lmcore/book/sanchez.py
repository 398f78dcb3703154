"""Chapter 4's tables, figures and verdicts (Sanchez & Tzimiropoulos 2019): the frozen core (its
PCK, its committed lineage), Table 1 over seeds and the order of the modes, Tables 2-5, the
authors' protocol, what a step costs, the shoes generalisation and the committed references.

The chapter calls these; each ``table``/``figure``/``lines`` function returns what it shows (a
DataFrame, a figure, printed lines), each ``show_`` function displays a whole section in the
chapter's order, saying what is missing in this profile (:meth:`~lmcore.book.chapter.Chapter.missing`).
"""
from __future__ import annotations

import copy
import time
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from .. import bench, zoo
from ..data.lspet import JOINT_NAMES
from ..data.sources import get_source
from ..evaluation import RegressionOptions, detect_all
from ..experiments import EXPERIMENTS, method_settings
from ..experiments.pose import PCK_AIM
from ..geometry.coords import normalized_to_pixels
from ..methods.base import LEARNING_CURVE_KEY
from ..methods.pose import FACE_KEY, PCK_KEY
from ..methods.sanchez import MODES
from ..models.fan import FAN
from ..models.projected import make_adaptable, parameter_counts, trainable_share
from ..profiles import select_device
from ..training import load_references
from ..training.bench import run_step_cost
from . import papers, reporting, tables, viz
from .references import REFERENCE_SETTINGS, verified

#: the adaptation's settings and budgets
SANCHEZ = method_settings("sanchez")
#: the chapter's key in :data:`lmcore.experiments.EXPERIMENTS` (its headline runs: each mode's first seed)
CHAPTER = "04_sanchez"
#: the paper's order of the modes, from the lowest error to the highest
PAPER_ORDER = ("proposed", "finetune", "scratch")
#: the core's width in the paper (a FAN of 256 channels)
PAPER_CORE_WIDTH = 256
#: Table 2's numbers of labelled images the regressor is fitted on (None: all of them)
TABLE2_SIZES = [1, 10, 100, 1000, None]
#: the authors' regressor: a ridge of 1e-4 times the largest entry of XᵀX on centred data
AUTHORS = RegressionOptions(intercept=True, ridge=1e-4, ridge_scale="max_entry")
#: the §4.4 generalisation run: a face core adapted to shoes
SHOES_RUN = "shoes-proposed"


# ------------------------------------------------------------------ the projected convolution
def parameter_share_table(settings: str, widths: Sequence[int] | None = None, num_landmarks: int = 10) -> pd.DataFrame:
    """What an adaptable FAN (depth 4, 16 joints) leaves to learn, one row per core width and
    projection (``"all"`` convolutions, the text's; ``"3x3"``, the code's): the folded network's
    parameters, the projections', the trainable ones and their share (%). ``widths``: default the
    paper's and ``settings``' core width."""
    if widths is None:
        widths = (PAPER_CORE_WIDTH, SANCHEZ.default_config(settings)["method"]["core_width"])
    rows = {}
    for width in widths:
        for projected in ("all", "3x3"):
            adapted = make_adaptable(FAN(16, width, 4), num_landmarks, projected=projected)
            counts = parameter_counts(adapted)
            rows[f"width {width}, projected = {projected}"] = {
                "network (folded)": counts["network"], "projections": counts["projections"],
                "trainable": counts["trainable"], "trainable share (%)": round(100 * trainable_share(adapted), 1)}
    return pd.DataFrame(rows).T


# ------------------------------------------------------------------ the core
def core_run(chapter):
    """The core every adaptation names as its parent (trained or reused here; the committed
    ``pose/core`` in the reference profile), or None."""
    spec = SANCHEZ.default_config(chapter.settings)["parents"]["core"]
    return chapter.run(spec["method"], spec["name"], spec["overrides"])


def lspet_val(settings: str):
    """LSPET-128's val split at the budget's evaluation subsample (what the core's PCK is scored on)."""
    return get_source("lspet128").split("val", every=SANCHEZ.budget(settings).eval_subsample)


def core_lines(record, profile: str) -> list[str]:
    """The core's PCK@0.2 on LSPET-128 val beside the paper's core, and whether the book's aim for
    a cpu core (:data:`~lmcore.experiments.pose.PCK_AIM`) is met."""
    pck = record["metrics"][PCK_KEY]
    return [f"core PCK@0.2 on LSPET-128 val [{profile}]: {100 * pck['pck']:.1f} % "
            f"({pck['joints']} visible joints); the paper's core: PCKh 79 % on MPII (another data set and metric)",
            f"the book's aim for a cpu core, {100 * PCK_AIM:.0f} %: {'met' if pck['pck'] >= PCK_AIM else 'not met'} "
            f"[{profile}]; the paper's early cores (epochs 1, 5, 10) had PCKh 23, 55 and 58 %"]


def per_joint_table(record) -> pd.DataFrame:
    """The core's PCK@0.2 (%) per LSPET joint, the joints' left and right sides side by side (one
    row per joint, neck and head top under "centre")."""
    per_joint = {name: round(100 * v, 1) for name, v in zip(JOINT_NAMES, record["metrics"][PCK_KEY]["per_joint"])}
    rows = {}
    for name, value in per_joint.items():
        side, _, joint = name.partition(" ") if name.startswith(("left ", "right ")) else ("centre", "", name)
        rows.setdefault(joint, {})[f"{side} (%)"] = value
    table = pd.DataFrame(rows).T[["left (%)", "right (%)", "centre (%)"]].rename_axis("PCK@0.2 of")
    return tables.explain_missing(table, "the neck and the head top lie on the body's midline; the limbs' joints "
                                         "come in pairs")


def show_core(chapter, record) -> None:
    """The core's provenance, its PCK against the paper's and the book's aim, and per joint."""
    if record is None:
        spec = SANCHEZ.default_config(chapter.settings)["parents"]["core"]
        chapter.missing(f"The core ({spec['method']}/{spec['name']})")
        return
    display(reporting.provenance_table([record]))
    print("\n".join(core_lines(record, chapter.profile)))
    display(per_joint_table(record))


def committed_core_lines(records) -> list[str]:
    """One line per committed core (``results/pose/``): profile, steps, time, commit, device, PCK."""
    return [f"{r.run_name} [{r.profile}, {r.steps} steps, {r['wall_time_s'] / 60:.1f} min, "
            f"commit {r['git_commit'][:10]}, {r['device'].get('name')}]: PCK@0.2 on LSPET-128 val "
            f"{100 * r['metrics'][PCK_KEY]['pck']:.1f} %" for r in records]


def lineage_pck_figure(record, root=None):
    """PCK@0.2 (%) along a core's whole lineage (each ancestor's steps counted before its own)
    against the book's aim; returns the figure."""
    fig, ax = plt.subplots(figsize=(5, 3))
    offset = 0
    for part in zoo.lineage(record, root):
        points = [(offset + h["step"], 100 * h[PCK_KEY]) for h in part.get("history", []) if PCK_KEY in h]
        if points:
            ax.plot(*zip(*points), marker="o", ms=3, label=f"{part['run_name']} ({part['steps']} steps)")
        offset += int(part.get("steps") or 0)
    ax.axhline(100 * PCK_AIM, color="green", ls=":", lw=1, label=f"the book's aim, {100 * PCK_AIM:.0f} %")
    ax.set_xlabel("core training steps, the whole lineage")
    ax.set_ylabel("PCK@0.2, half of LSPET val (%)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def lineage_pck_line(record, root=None) -> str:
    """Whether a core trained further from its ancestors meets the book's aim, and if not, how many
    steps the pace of its last evaluations would need (a lower bound)."""
    pck = record["metrics"][PCK_KEY]["pck"]
    pace = reporting.steps_to_target(reporting.lineage_curve(record, PCK_KEY, root), PCK_AIM)
    own_steps = zoo.lineage(record, root)[-1]["steps"]
    line = (f"{record.run_name} [{record.profile}, {own_steps} steps after its ancestors']: "
            f"PCK@0.2 {100 * pck:.1f} % on LSPET val; the aim of {100 * PCK_AIM:.0f} % is "
            f"{'met' if pck >= PCK_AIM else 'not met'}")
    if pck >= PCK_AIM or pace["per_1000_steps"] is None:
        return line
    return (line + f"; at the pace of its last evaluations "
            f"({100 * pace['per_1000_steps']:+.2f} points per 1,000 steps) "
            + (f"it would need at least {pace['steps_left']:,} more steps (curves flatten: a lower bound)"
               if pace["steps_left"] else "it would not get there"))


#: the core every adaptation of the chapter starts from: the one whose weights the chapter measures again
PARENT_CORE = "pose/core"


def core_checks(cores, measured: dict | None = None) -> pd.DataFrame:
    """The zoo's check of each committed core with weights: PCK@0.2 on LSPET-128 val measured from
    the stored weights when they were written, and the record's; ``measured`` (``{model: check}``,
    :func:`lmcore.book.references.verified`) adds the PCK measured again in this build."""
    rows = []
    for r in cores:
        name = f"{r.method}/{r.run_name}"
        check = r.get("weights_check") or {}
        if not check:
            continue
        written = check.get(f"pck_val_{r['weights_dtype']}")
        again = (measured or {}).get(name, {}).get("from the weights")
        rows.append({"model": name, "weights": r["weights_dtype"], "PCK when written (%)": round(100 * written, 2),
                     "record's PCK (%)": round(100 * r["metrics"][PCK_KEY]["pck"], 2),
                     "measured in this build (%)": None if again is None else round(100 * again, 2)})
    frame = pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()
    return tables.explain_missing(frame, f"measured from the weights when they were written only; this build "
                                         f"measures {PARENT_CORE}, the parent of every adaptation, again")


def show_committed_cores() -> None:
    """The committed cores, the zoo's check that the parent core's PCK comes back from its weights
    (the others' as measured when their weights were written), and the PCK of each core trained
    further from another along its whole lineage."""
    cores = load_references("pose")
    print("\n".join(committed_core_lines(cores)))
    if PARENT_CORE in zoo.available(kind=zoo.POSE):
        display(core_checks(cores, {PARENT_CORE: verified(PARENT_CORE)}))
    for grown in [r for r in cores if r.get("ancestor")]:
        lineage_pck_figure(grown)
        plt.show()
        print(lineage_pck_line(grown))


def pck_curve(record) -> list[tuple[int, float]]:
    """``(step, PCK@0.2 %)`` of the core's own evaluations during training (empty without a record)."""
    return [(h["step"], 100 * h[PCK_KEY]) for h in (record.history if record is not None else []) if PCK_KEY in h]


def show_core_at_work(chapter, record, core, people) -> None:
    """The core's joints on the first eight ``people`` (LSPET val), and its PCK along its training."""
    if core is not None:
        people = people.subset(range(min(8, len(people))))
        fig = viz.image_grid(people.images, list(core.predict_pixels(people.images)), ncols=8, size=1.5)
        fig.suptitle(f"the core's joints on LSPET-128 val [{chapter.profile}]", fontsize=9)
        plt.show()
    else:
        chapter.missing("The core's joints on people")
    curve = pck_curve(record)
    if curve:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(*zip(*curve), marker="o", ms=3)
        ax.set_xlabel("core training step")
        ax.set_ylabel("PCK@0.2, half of LSPET val (%)")
        ax.grid(alpha=0.3)
        plt.show()


def best_tuning_line(records) -> str:
    """The sweep's setting with the lowest tune_val error."""
    scored = {r["tuning_label"]: r.tune_error() for r in records}
    return f"lowest tune_val error: '{min(scored, key=scored.get)}' ({min(scored.values()):.2f} %)"


# ------------------------------------------------------------------ Table 1 over seeds
def seeds(settings: str) -> list[int]:
    """The seeds each mode of Table 1 trains with (the budget's ``seeds`` variant; [0] without one).
    The first is the train default (0): its run is the mode's headline run."""
    return SANCHEZ.budget(settings).variant("seeds") or [0]


def seed_run_name(mode: str, seed: int) -> str:
    """The run name of ``mode`` at a later ``seed`` (``proposed-seed1``)."""
    return f"{mode}-seed{seed}"


def seed_runs(chapter) -> dict[str, dict[int, object]]:
    """``{mode: {seed: record}}`` of Table 1: each mode's headline run (:meth:`Chapter.headline_runs`,
    its first seed, evaluated at the few-shot sizes), then its later seeds' runs; a run this
    profile has no record of is left out."""
    first, *later = seeds(chapter.settings)
    headline = chapter.headline_runs(CHAPTER, few_shot_curves=False)  # the chapter shows no few-shot curve
    by_mode = {run.overrides["method"]["mode"]: headline.get(run.name) for run in EXPERIMENTS[CHAPTER].runs}
    out = {}
    for mode in MODES:
        found = {first: by_mode.get(mode)}
        for seed in later:
            found[seed] = chapter.run("sanchez", seed_run_name(mode, seed),
                                      overrides={"method": {"mode": mode}, "train": {"seed": seed}})
        out[mode] = {seed: r for seed, r in found.items() if r is not None}
    return out


def first_seed(runs_by_seed: dict, settings: str) -> dict:
    """``{mode: record}`` of each mode's first seed (the run of every later table), in :data:`MODES` order."""
    first = seeds(settings)[0]
    return {mode: runs_by_seed[mode][first] for mode in MODES if first in runs_by_seed.get(mode, {})}


def show_table1_runs(chapter, runs_by_seed: dict, runs: dict) -> None:
    """Table 1's runs: every seed's provenance, the first seeds' errors and learning curves, and
    (in a training build) every run beside the committed reference of its name."""
    every = [r for mode in MODES for r in runs_by_seed.get(mode, {}).values()]
    if runs:
        display(reporting.provenance_table(every))
        display(reporting.protocol_table(list(runs.values())))
        viz.learning_curves(list(runs.values()), reference_line=chapter.mean_shape)
        plt.show()
    chapter.compare_with_references(every)
    if len(runs) < len(MODES):
        chapter.missing(f"Table 1's runs of {', '.join(m for m in MODES if m not in runs)}")


def evaluation_sets(chapter) -> tuple:
    """``(regressor_set, {split: test set})``: regressor_train, test_mtfl and test_aflw at the
    budget's evaluation subsample (every n-th face), on which the chapter re-detects its runs."""
    every = SANCHEZ.budget(chapter.settings).eval_subsample
    tests = {"test_mtfl": chapter.test_mtfl.subset(range(0, len(chapter.test_mtfl), every)),
             "test_aflw": chapter.test_aflw.subset(range(0, len(chapter.test_aflw), every))}
    return chapter.regressor_train.subset(range(0, len(chapter.regressor_train), every)), tests


def seed_errors(chapter, runs_by_seed: dict, regressor_set, test_mtfl) -> dict[str, dict[int, np.ndarray]]:
    """``{mode: {seed: per-face forward errors on test_mtfl}}`` of the runs whose weights are here
    (a mode without any is left out)."""
    errors = {}
    for mode in MODES:
        with_model = {s: r for s, r in runs_by_seed.get(mode, {}).items() if chapter.has_model(r)}
        if with_model:
            errors[mode] = {s: chapter.detections(r, regressor_set, {"test_mtfl": test_mtfl}).per_image("test_mtfl")
                            for s, r in with_model.items()}
    return errors


def seed_table(errors: dict, profile: str) -> pd.DataFrame:
    """Each mode's mean error (% IOD) per seed, one row per mode, with the build's profile."""
    return pd.DataFrame({mode: {f"seed {s}": round(float(e.mean()), 2) for s, e in by_seed.items()}
                         for mode, by_seed in errors.items()}).T.assign(profile=profile)


def weak_core_line() -> str:
    """The paper's own case where scratch is ahead: the proposed mode on its epoch-1 core."""
    epoch1 = papers.SANCHEZ["core_quality"][1]
    return (f"with a weak core the paper itself has scratch ahead: its epoch-1 core (PCKh {epoch1[0]:.0f} %) gives "
            f"{epoch1[1]:.2f} forward on AFLW, against scratch's {papers.SANCHEZ['table1']['scratch']['AFLW']:.2f} "
            f"({papers.SANCHEZ['core_quality_source']})")


def show_seed_ordering(chapter, runs_by_seed: dict, runs: dict, regressor_set, tests: dict) -> None:
    """Each mode's error per seed, and the modes' order where the paired difference, resampled over
    seeds and faces, excludes zero (:func:`~lmcore.book.reporting.ordering_verdicts`)."""
    errors = seed_errors(chapter, runs_by_seed, regressor_set, tests["test_mtfl"])
    if errors:
        display(seed_table(errors, chapter.profile))
    if len(errors) == len(MODES) and "proposed" in runs:
        per_face = {mode: np.stack(list(by_seed.values())) for mode, by_seed in errors.items()}
        ordering, verdicts = reporting.ordering_verdicts(per_face, expected=PAPER_ORDER)
        display(ordering)
        print(f"[{chapter.profile}, {min(len(v) for v in errors.values())} seed(s) per mode, "
              f"{runs['proposed'].steps} steps] " + "; ".join(verdicts))
    else:
        chapter.missing("The order of the modes over their seeds (every mode's weights)")
    print(weak_core_line())


def table1(runs: dict, others: Sequence, profile: str):
    """Table 1: forward errors of the modes' runs and ``others`` (``method run``), then the paper's
    rows (MAFL / AFLW in the test_mtfl / test_aflw columns), shaded apart
    (:func:`~lmcore.book.reporting.separated`)."""
    table = reporting.error_table(list(runs.values()) + list(others), label=lambda r: f"{r.method} {r.run_name}")
    for mode, values in papers.SANCHEZ["table1"].items():
        table.loc[f"paper: {mode}", ["test_mtfl (%)", "test_aflw (%)"]] = [values["MAFL"], values["AFLW"]]
        table.loc[f"paper: {mode}", "profile"] = "paper's (MAFL / AFLW)"
    return reporting.separated(table, profile, paper_rows=[f"paper: {mode}" for mode in papers.SANCHEZ["table1"]])


def other_methods(num_landmarks: int = 10) -> list:
    """The committed references of this book's other methods (FSE, Zhang, Jakab) at ``num_landmarks``."""
    return [r for name in ("fse", "zhang", "jakab") for r in load_references(name) if r.num_landmarks == num_landmarks]


def mean_shape_lines(runs: dict, mean_shape: float, profile: str) -> list[str]:
    """Whether each mode's forward error on test_mtfl is below the mean shape's (a detector that
    has not learnt the face's geometry does no better)."""
    lines = []
    for mode, r in runs.items():
        error = r.forward("test_mtfl")
        lines.append(f"{mode} [{profile}, {r.steps} steps]: {error:.2f} % on test_mtfl, "
                     f"{'below' if error < mean_shape else 'NOT below'} the mean shape")
    return lines


def show_table1(chapter, runs: dict) -> None:
    """Table 1 beside the book's other methods and the paper, the mean shape, and each mode's verdict."""
    display(table1(runs, other_methods(), chapter.profile))
    print("mean shape on test_mtfl / test_aflw:", round(chapter.mean_shape, 2), "/",
          round(chapter.mean_shape_aflw, 2), "% IOD")
    print("paper:", papers.SANCHEZ["table1_source"])
    print("\n".join(mean_shape_lines(runs, chapter.mean_shape, chapter.profile)))


# ------------------------------------------------------------------ Tables 2 and 3, the ordering
def detections(chapter, runs: dict, regressor_set, tests: dict) -> dict:
    """``{mode: Detections}`` of the runs whose weights are here, on ``regressor_set`` and ``tests``."""
    return {mode: chapter.detections(r, regressor_set, tests) for mode, r in runs.items() if chapter.has_model(r)}


def table2(detections_by_mode: dict, splits: Sequence[str], sizes: Sequence = TABLE2_SIZES) -> pd.DataFrame | None:
    """Table 2: the mean forward and backward errors against the number of labelled images the
    regressor is fitted on (``None``: all, shown as ``"all"``), one row per direction, split and
    mode; None without detections."""
    rows = [{"direction": direction, "split": split, "mode": mode,
             **{("all" if s is None else s): round(c["mean"], 2)
                for s, c in zip(sizes, detections_by_mode[mode].curve(split, sizes, direction=direction))}}
            for direction in ("forward", "backward") for split in splits for mode in detections_by_mode]
    return pd.DataFrame(rows).set_index(["direction", "split", "mode"]) if rows else None


def paper_table2(sizes: Sequence = TABLE2_SIZES) -> pd.DataFrame:
    """The paper's Table 2 at ``sizes`` (MAFL and AFLW)."""
    return pd.DataFrame([{"direction": d, "split": s, "mode": m,
                          **{("all" if n is None else n): v for n, v in values.items() if n in sizes}}
                         for d, per_split in papers.SANCHEZ["table2"].items()
                         for s, per_mode in per_split.items() for m, values in per_mode.items()]
                        ).set_index(["direction", "split", "mode"])


def _show_beside_paper(chapter, table, what: str, caption: str, paper) -> None:
    """This build's ``table`` (None: say why ``what`` is missing), then the paper's, under ``caption``."""
    if table is not None:
        display(table)
    else:
        chapter.missing(what)
    display(Markdown(caption))
    display(paper)


def show_table2(chapter, detections_by_mode: dict, splits: Sequence[str]) -> None:
    """Table 2 of this build, or why it is missing, then the paper's."""
    _show_beside_paper(chapter, table2(detections_by_mode, splits),
                       "Table 2, the errors against the number of labelled images",
                       f"The paper's Table 2, the same sizes ({papers.SANCHEZ['table2_source']}):", paper_table2())


def table3(runs: dict, splits: Sequence[str] = ("test_mtfl", "test_aflw")) -> pd.DataFrame | None:
    """Table 3: each run's consistency error per landmark, sorted from the most stable, and their
    mean, one row per split and mode; None without runs."""
    rows = {}
    for split in splits:
        for mode, r in runs.items():
            c = r.metric("consistency", split)
            rows[(split, mode)] = [round(v, 2) for v in c["sorted"]] + [round(c["mean"], 2)]
    if not rows:
        return None
    return pd.DataFrame(rows, index=[*range(1, 11), "mean"][:len(next(iter(rows.values())))]).T


def paper_table3() -> pd.DataFrame:
    """The paper's Table 3 (MAFL and AFLW)."""
    return pd.DataFrame({(s, m): v for s, per_mode in papers.SANCHEZ["table3"].items() for m, v in per_mode.items()},
                        index=[*range(1, 11), "mean"]).T


def show_table3(chapter, runs: dict) -> None:
    """Table 3 of this build, or why it is missing, then the paper's."""
    _show_beside_paper(chapter, table3(runs), "Table 3, the consistency of each landmark",
                       f"The paper's ({papers.SANCHEZ['table3_source']}; MAFL and AFLW):", paper_table3())


def ordering_summary(runs_by_mode: dict) -> pd.DataFrame:
    """Each mode's forward (test_mtfl, test_aflw), backward and consistency errors (test_mtfl)."""
    return pd.DataFrame({mode: {"forward test_mtfl": r.forward("test_mtfl"),
                                "forward test_aflw": r.forward("test_aflw"),
                                "backward test_mtfl": r.backward("test_mtfl"),
                                "consistency test_mtfl": r.consistency("test_mtfl")}
                         for mode, r in runs_by_mode.items()}).T.round(2)


def ordering_lines(summary: pd.DataFrame) -> list[str]:
    """For each error of ``summary``, the modes from the lowest to the highest and whether that is
    the paper's order."""
    lines = []
    for column in summary.columns:
        order = " < ".join(summary[column].sort_values().index)
        agrees = "as the paper" if order == " < ".join(PAPER_ORDER) else "not the paper's order"
        lines.append(f"{column}: {order} ({agrees})")
    return lines


def show_ordering(runs_by_mode: dict) -> None:
    """Each error of the modes' runs, and their order from the lowest to the highest beside the paper's."""
    summary = ordering_summary(runs_by_mode)
    display(summary)
    print("\n".join(ordering_lines(summary)))


def show_mode_ordering(chapter, runs_by_mode: dict) -> None:
    """:func:`show_ordering` of the modes' runs, or a stand-in without any."""
    if runs_by_mode:
        show_ordering(runs_by_mode)
    else:
        chapter.missing("The ordering of the modes")


def show_tuning_verdict(records) -> None:
    """The sweep's setting with the lowest tune_val error (:func:`best_tuning_line`), where there is a sweep."""
    if records:
        print(best_tuning_line(records))


# ------------------------------------------------------------------ the authors' protocol
def authors_protocol_table(detections_by_mode: dict, splits: Sequence[str]) -> pd.DataFrame | None:
    """The forward and backward errors under the book's protocol and the authors' (:data:`AUTHORS`),
    from the same detections, one row per mode, split and direction; None without detections."""
    rows = {}
    for mode, found in detections_by_mode.items():
        for split in splits:
            for direction in ("forward", "backward"):
                rows[(mode, split, direction)] = {
                    "book's protocol": round(found.error(split, direction)["mean"], 2),
                    "authors' protocol (intercept, r = 1e-4 of max entry)": round(
                        found.error(split, direction, AUTHORS)["mean"], 2)}
    return pd.DataFrame(rows).T if rows else None


def show_authors_protocol(chapter, detections_by_mode: dict, splits: Sequence[str]) -> None:
    """The book's protocol beside the authors' (:func:`authors_protocol_table`), or why it is missing."""
    table = authors_protocol_table(detections_by_mode, splits)
    if table is not None:
        display(table)
    else:
        chapter.missing("The authors' protocol beside the book's")


# ------------------------------------------------------------------ Tables 4-5: the quality of the core
def core_quality_runs(chapter, core, runs: dict) -> dict:
    """``{label: record}``: the proposed mode adapted, for the ablation's length, from each kept
    checkpoint of the core (the budget's ``core_steps``) and from the final ``core`` run (the
    proposed headline run where its config is that)."""
    variants = {f"core at step {s}": {"parents": {"core": {"step": s}}}
                for s in SANCHEZ.budget(chapter.settings).variant("core_steps") or []}
    variants[f"final core (step {core.steps})" if core is not None else "final core"] = {}
    base = SANCHEZ.ablation_config(chapter.settings, SANCHEZ.default_config(chapter.settings))
    return chapter.variants("sanchez", variants, base=base, prefix="core-quality",
                            reuse=[r for r in (runs.get("proposed"),) if r is not None])


def core_quality_table(chapter, quality: dict, core, core_model, people) -> pd.DataFrame | None:
    """Tables 4-5: for each adaptation of ``quality``, the core's step and its PCK@0.2 on
    ``people`` (None for a committed reference core's earlier steps: it keeps its final weights
    only), then the adapted detector's errors; None without runs."""
    rows = {}
    for label, record in quality.items():
        step = record.config["parents"]["core"]["step"]
        if (step and core.is_reference) or (not step and core_model is None):
            pck = None  # a committed reference core keeps no earlier checkpoints
        else:
            early = chapter.model(core, step=step) if step else core_model
            pck = round(100 * early.pck(people)["pck"], 1)
        rows[label] = {"core step": step or core.steps, "core PCK@0.2 (%)": pck,
                       **{f"{m} {s}": round(record.metric(m, s)["mean"], 2)
                          for m in ("forward", "backward", "consistency") for s in ("test_mtfl", "test_aflw")}}
    return pd.DataFrame(rows).T if rows else None


def paper_core_quality() -> pd.DataFrame:
    """The paper's Tables 4-5 (AFLW, proposed), one row per core epoch."""
    columns = ("core PCKh (%)", "forward AFLW", "backward AFLW", "consistency AFLW")
    return pd.DataFrame({f"epoch {e}": dict(zip(columns, v)) for e, v in papers.SANCHEZ["core_quality"].items()}).T


def show_core_quality(chapter, core, core_model, runs: dict, people) -> None:
    """Tables 4-5 of this build, or why they are missing, then the paper's."""
    table = core_quality_table(chapter, core_quality_runs(chapter, core, runs), core, core_model, people)
    _show_beside_paper(chapter, table, "Tables 4–5, the proposed mode adapted from earlier cores",
                       f"The paper's ({papers.SANCHEZ['core_quality_source']}):", paper_core_quality())


# ------------------------------------------------------------------ what a step costs
def step_cost_table(profile: str) -> pd.DataFrame:
    """One training step of each mode at ``profile``'s batch, measured in this process
    (:func:`~lmcore.training.bench.run_step_cost`), with its time relative to the proposed mode's."""
    costs = pd.DataFrame({mode: run_step_cost("sanchez", profile, {"method": {"mode": mode}}, device=select_device())
                          for mode in MODES}).T
    costs["time / proposed"] = (costs["step_ms"] / costs.loc["proposed", "step_ms"]).round(2)
    return costs[["step_ms", "time / proposed", "images_per_s", "saved_for_backward_mb", "parameters", "trainable",
                  "optimiser_state_mb", "device", "threads"]]


def folding_check(model, images, timed: bool) -> tuple[dict, float]:
    """Detect ``images`` with the proposed mode's ``model`` as trained and with its projections
    folded: ``({label: {"detect N faces (s)": seconds}}, largest difference of their landmarks)``.
    ``timed``: warm each up first (a timing worth showing)."""
    folded = copy.deepcopy(model)
    folded.model.pose.detector = model.folded_detector()
    timings, points = {}, {}
    for label, m in (("projected (as trained)", model), ("folded", folded)):
        if timed:
            detect_all(m.detect, images[:16])  # warm-up
        start = time.perf_counter()
        points[label] = detect_all(m.detect, images)
        timings[label] = {f"detect {len(images)} faces (s)": round(time.perf_counter() - start, 3)}
    return timings, (points["folded"] - points["projected (as trained)"]).abs().max().item()


def committed_step_costs(record: dict) -> pd.DataFrame:
    """Each mode's step at the ``cpu`` settings as the committed bench record ``record``
    (``python -m lmcore.bench``, :func:`lmcore.bench.load_bench_records`) timed it, with its time
    relative to the proposed mode's: what the reference profile shows, timing nothing."""
    rows = {row["case"].split("(")[-1].rstrip(")").replace("fine-tune", "finetune"): row for row in record["rows"]
            if row["method"] == "sanchez" and row["profile"] == REFERENCE_SETTINGS and bench.is_plain(row)}
    costs = pd.DataFrame({mode: rows[mode] for mode in MODES if mode in rows}).T
    costs["time / proposed"] = (costs["step_ms"].astype(float) / float(costs.loc["proposed", "step_ms"])).round(2)
    return costs[["step_ms", "time / proposed", "images_per_s", "batch_size", "saved_for_backward_mb", "parameters",
                  "trainable", "optimiser_state_mb"]]


def show_step_costs(chapter, models: dict) -> None:
    """Each mode's step cost (training profiles: measured here; the reference profile: the
    committed bench record's), then the folded detector's check against the detector as trained on
    256 test faces (timed where the profile trains)."""
    if chapter.trains:
        display(step_cost_table(chapter.profile))
    else:
        record = next(r for r in bench.load_bench_records() if r["device"]["type"] == "cpu")
        display(Markdown(f"Measured by `python -m lmcore.bench` on {record['device']['name']} "
                         f"({record['device']['threads']} threads) at commit {record['commit'][:10]}, "
                         f"{record['created'][:10]} (`{record['path']}`; chapter 7 shows the whole record):"))
        display(committed_step_costs(record))
    if "proposed" not in models:
        chapter.missing("The folded detector (the proposed mode's model)")
        return
    timings, difference = folding_check(models["proposed"], chapter.test_mtfl.images[:256], timed=chapter.trains)
    if chapter.trains:
        display(pd.DataFrame(timings).T)
    print("largest difference between their landmarks:", f"{difference:.2e} px")


# ------------------------------------------------------------------ the detectors on faces
def landmarks_figure(models: dict, faces, profile: str):
    """The landmarks of each mode of ``models`` (rows, in :data:`MODES` order) on ``faces``
    (uint8, ``N x 3 x H x W``); returns the figure, or None without models."""
    shown = [mode for mode in MODES if mode in models]
    if not shown:
        return None
    fig, axes = plt.subplots(len(shown), len(faces), figsize=(1.7 * len(faces), 1.8 * len(shown)), squeeze=False)
    for row, mode in enumerate(shown):
        points = normalized_to_pixels(models[mode].detect(faces.float() / 255).cpu(), faces.shape[-1])
        for col in range(len(faces)):
            viz.show_landmarks(axes[row, col], faces[col], points[col], size=10, title=mode if col == 0 else None)
    fig.suptitle(f"K = 10 landmarks of the three modes [{profile}]", fontsize=9)
    return fig


def show_landmarks_of_modes(chapter, models: dict, count: int = 6) -> None:
    """The first ``count`` test_mtfl faces with each mode's landmarks; says which modes are missing."""
    if landmarks_figure(models, chapter.test_mtfl.images[:count], chapter.profile) is not None:
        plt.show()
    if len(models) < len(MODES):
        chapter.missing(f"The landmarks of {', '.join(m for m in MODES if m not in models)}")


def swap_png(model, mode: str, face) -> bytes:
    """One panel (PNG): ``mode``'s landmarks on ``face`` (``1 x 3 x H x W`` in [0, 1]) and the
    generator's rendering of it from a warped copy."""
    out = model.swap(face, face)
    size = out["pose_view"].shape[-1]
    fig, axes = plt.subplots(1, 2, figsize=(4.2, 2.2))
    viz.show_landmarks(axes[0], out["pose_view"][0].cpu(), normalized_to_pixels(out["points"][0].cpu(), size),
                       size=14, title=f"{mode}: landmarks")
    viz.show_landmarks(axes[1], out["generated"][0].cpu(), title="rendered")
    return viz.figure_png(fig, dpi=70)


def face_mode_picker(chapter, models: dict, first: int = 20, count: int = 6):
    """A face slider and a mode slider over test_mtfl faces ``first`` to ``first + count`` and the
    modes of ``models``, every panel rendered once (:func:`swap_png`), so that it works in the
    static book; None without models."""
    shown = [mode for mode in MODES if mode in models]
    pool = chapter.test_mtfl.images[first:first + count].float() / 255
    pngs = [[swap_png(models[mode], mode, pool[i:i + 1]) for mode in shown] for i in range(len(pool))] if shown else []
    if not pngs:
        return None
    return viz.pair_stack(pngs, [f"test_mtfl face {first + i}" for i in range(len(pool))], shown,
                          row_description="face", col_description="mode")


def show_face_mode_picker(chapter, models: dict) -> None:
    """The face and mode picker (:func:`face_mode_picker`), or why it is missing."""
    picker = face_mode_picker(chapter, models)
    if picker is not None:
        display(picker)
    else:
        chapter.missing("The face and mode picker")


# ------------------------------------------------------------------ §4.4 the other way round
def show_generalisation(chapter) -> None:
    """The face core (trained with MTFL-80's labels) and its adaptation to shoes: their provenance,
    the core's own error, and the adapted landmarks on sixteen test shoes."""
    generalisation = SANCHEZ.variant_config(chapter.settings, "generalisation")
    shoes_run = chapter.run("sanchez", SHOES_RUN, overrides=generalisation)
    spec = generalisation["parents"]["core"]
    face_core_run = chapter.run(spec["method"], spec["name"])  # the parent: reused
    found = [r for r in (face_core_run, shoes_run) if r is not None]
    if found:
        display(reporting.provenance_table(found))
    if face_core_run is not None:
        print(f"the face core's own error on test_mtfl (its 5 points, direct): "
              f"{face_core_run['metrics'][FACE_KEY]:.2f} % IOD")
    if not chapter.has_model(shoes_run):
        chapter.missing("§4.4's generalisation, a face core adapted to shoes")
        return
    examples = get_source(generalisation["data"]["source"]).split("test").images[:16]
    model = chapter.model(shoes_run)
    points = normalized_to_pixels(model.detect(examples.float() / 255).cpu(), examples.shape[-1])
    fig = viz.image_grid(examples, list(points), ncols=8, size=1.3)
    fig.suptitle(f"K = {model.num_landmarks} landmarks on shoes, adapted from a face core [{chapter.profile}]",
                 fontsize=9)
    plt.show()


# ------------------------------------------------------------------ the committed references
def references_by_mode(references) -> dict[str, list]:
    """``{mode: [its references by run name]}``: ``proposed``, ``proposed-seed1``, ... (not
    ``proposed-long``)."""
    return {mode: sorted((r for r in references if r.run_name == mode or r.run_name.startswith(f"{mode}-seed")),
                         key=lambda r: r.run_name) for mode in MODES}


def equal_length(by_mode: dict) -> bool:
    """Whether every mode has references and all of them trained the same number of steps."""
    return all(by_mode.values()) and len({r.steps for runs in by_mode.values() for r in runs}) == 1


def reference_seed_table(by_mode: dict, per_face: dict) -> pd.DataFrame:
    """Each mode's mean error (% IOD) per reference (``seed0``, ``seed1``, ...), one row per mode."""
    return pd.DataFrame({mode: {r.run_name.replace(mode, "").lstrip("-") or "seed0": round(float(e.mean()), 2)
                                for r, e in zip(by_mode[mode], per_face[mode])} for mode in by_mode}).T


def show_reference_ordering(chapter, references) -> None:
    """Where every seed of every mode was trained equally long: seed 0's errors and their order,
    then (where the zoo has all their weights) the order over seeds, re-detected on every face of
    test_mtfl with the regressor fitted on all of regressor_train."""
    by_mode = references_by_mode(references)
    if not equal_length(by_mode):
        return
    steps = by_mode["proposed"][0].steps
    seeds_each = min(len(v) for v in by_mode.values())
    display(Markdown(f"The three modes' references ({steps} steps each; seed 0's errors, then the order over "
                     f"{seeds_each} or more seeds per mode, re-detected from their weights):"))
    show_ordering({mode: by_mode[mode][0] for mode in MODES})
    with_weights = set(zoo.available())
    if not all(f"sanchez/{r.run_name}" in with_weights for runs in by_mode.values() for r in runs):
        return
    regressor_set, tests = evaluation_sets(chapter)  # every n-th face in smoke, as the chapter's other tables
    per_face = {mode: np.stack([chapter.detections(r, regressor_set, {"test_mtfl": tests["test_mtfl"]})
                                .per_image("test_mtfl") for r in runs]) for mode, runs in by_mode.items()}
    display(reference_seed_table(by_mode, per_face))
    ordering, verdicts = reporting.ordering_verdicts(per_face, expected=PAPER_ORDER)
    display(ordering)
    print(f"[references, {steps} steps] " + "; ".join(verdicts))


def longest_continuation(references):
    """The deepest continuation of ``proposed`` (``proposed-long``, ``proposed-longer``, ...), or None."""
    grown = sorted((r for r in references if r.run_name.startswith("proposed-long")),
                   key=lambda r: (r.get("ancestor") or {}).get("lineage_steps", 0))
    return grown[-1] if grown else None


def continuation_pace_line(record, target: float, root=None) -> str | None:
    """How far a continuation that has not reached ``target`` is from it at the pace of its last
    evaluations (a lower bound); None where it has reached it or has no pace."""
    pace = reporting.steps_to_target(reporting.lineage_curve(record, LEARNING_CURVE_KEY, root), target)
    error = record.forward("test_mtfl")
    if error < target or pace["per_1000_steps"] is None:
        return None
    steps = sum(int(r.get("steps") or 0) for r in zoo.lineage(record, root))
    return (f"{record.run_name} [{record.profile}]: {error:.2f} % on test_mtfl after {steps:,} steps "
            f"in all; at the pace of its last evaluations ({pace['per_1000_steps']:+.2f} points per 1,000 steps) "
            + (f"it would need at least {pace['steps_left']:,} more steps to reach the bar (curves flatten: "
               "a lower bound)" if pace["steps_left"] else "it would not reach the bar"))


def show_references(chapter) -> None:
    """The committed references (:meth:`Chapter.show_references`) judged against the book's bar,
    the three modes' order over their seeds, and the longest continuation of ``proposed`` along
    its whole lineage."""
    references = chapter.show_references("sanchez")
    if not references:
        return
    print("\n".join(reporting.target_verdicts(references, chapter.target)))
    show_reference_ordering(chapter, references)
    longest = longest_continuation(references)
    if longest is None:
        return
    ax = viz.learning_curves([longest], reference_line=chapter.mean_shape)
    ax.axhline(chapter.target, color="green", ls=":", lw=1)
    ax.set_title(f"{longest.run_name} and its ancestors; dotted: the bar ({chapter.target:.2f})", fontsize=9)
    plt.show()
    line = continuation_pace_line(longest, chapter.target)
    if line:
        print(line)
