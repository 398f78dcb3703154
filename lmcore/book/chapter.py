"""What every chapter does first: resolve the profile, say what its numbers are worth, load
MTFL-80's splits and the mean-shape yardstick; and how a chapter gets its runs in any profile.

    from lmcore.book.chapter import setup_chapter
    chapter = setup_chapter(profile)        # displays the profile note
    chapter.test_mtfl, chapter.mean_shape   # a LandmarkSet, the mean shape's error on test_mtfl
    record = chapter.run("zhang", "k10")    # trained (or reused) here, or the committed reference
    model = chapter.model(record)           # its checkpoint, or the reference's zoo weights

In the ``reference`` profile (:mod:`lmcore.book.references`) nothing trains: :meth:`Chapter.run` gives
the committed reference of that run name, or None where the book has none, and the chapter says
so (:meth:`Chapter.missing`). ``chapter.settings`` is the training profile whose settings the
chapter shows (``cpu`` for the references).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
from IPython import display as ipython_display
from IPython.display import HTML, Markdown, display

from ..config import deep_update
from ..data import LandmarkSet
from ..data.sources import get_source
from ..evaluation import mean_shape_error
from ..experiments import EXPERIMENTS
from ..training import (load_references, load_trained, resolve_config, run_detections, run_method, run_variants,
                        variant_run_name)
from .references import (REFERENCE, REFRESH_HINT, TRAIN_COMMAND, has_weights, load_reference_model, reference_detections,
                         reference_few_shot, reference_record, resolve_book_profile, settings_profile)
from .reporting import (error_table, protocol_table, provenance_table, reference_comparison, separated, tuning_records,
                        tuning_table)
from .tables import collapse, fidelity_html, repository_line, use_book_tables
from .viz import StandIn, checkpoint_scrubber, landmarks_on_instances, profile_note
from ..experiments import BOOK_RUNS, method_settings
from ..attest import states as record_states
from .campaign import claims_table, lineage_figure
from .drift import drift_table


@dataclass
class Chapter:
    profile: str
    data: object  # the MTFL-80 source (lmcore.data.MTFL80)
    test_mtfl: LandmarkSet
    test_aflw: LandmarkSet
    regressor_train: LandmarkSet
    mean_shape: float  # the mean shape's forward error on test_mtfl, % of IOD
    mean_shape_aflw: float

    @property
    def settings(self) -> str:
        """The training profile whose settings this chapter shows and trains (``cpu`` for ``reference``)."""
        return settings_profile(self.profile)

    @property
    def trains(self) -> bool:
        """Whether this profile trains (every profile but ``reference``)."""
        return self.profile != REFERENCE

    def run(self, method: str, name: str = "default", overrides: dict | None = None, few_shot: dict | None = None,
            **kwargs):
        """The run ``method/name``: trained or reused (:func:`lmcore.training.run_method`), or in the
        reference profile the committed reference of that name (None where there is none; a
        few-shot curve is measured from its weights where it has them)."""
        if self.trains:
            return run_method(method, self.profile, name, overrides, few_shot=few_shot, **kwargs)
        record = reference_record(method, name)
        if record is not None and few_shot and has_weights(record):
            record["metrics"] = {**record["metrics"], "few_shot": reference_few_shot(record, few_shot)}
        return record

    def headline_runs(self, chapter: str, few_shot_curves: bool = True) -> dict:
        """``{run name: record}`` of ``chapter``'s headline runs (:mod:`lmcore.experiments`: e.g.
        ``"03_jakab"``), each with its budget variant and overrides and evaluated at the chapter's
        few-shot sizes; a run this profile has no record of (a reference profile without that
        reference) is left out. ``few_shot_curves=False``: a chapter that shows no few-shot curve
        has the reference profile measure none (a training profile evaluates its runs at the
        chapter's sizes all the same: they are part of the runs, shared with the leaderboard)."""
        experiment = EXPERIMENTS[chapter]
        few_shot = experiment.few_shot if self.trains or few_shot_curves else None
        found = {run.name: self.run(run.method, run.name, run.resolved_overrides(self.settings),
                                    few_shot=few_shot) for run in experiment.runs}
        return {name: record for name, record in found.items() if record is not None}

    def variants(self, method: str, variants: dict[str, dict], base: dict | None = None, prefix: str = "variant",
                 reuse=(), **kwargs) -> dict:
        """``{label: record}`` of a chapter's variants (:func:`lmcore.training.run_variants`); in the
        reference profile, those with a committed reference (``results/<method>/<prefix>-<label>.json``)."""
        if self.trains:
            return run_variants(method, self.profile, variants, base=base, prefix=prefix, reuse=reuse, **kwargs)
        found = {}
        for label, change in variants.items():
            record = reference_record(method, variant_run_name(prefix, label))
            if record is None and reuse:  # as in training: a variant equal to a reused run is that run
                config = resolve_config(method, self.settings, deep_update(base or {}, change))
                record = next((r for r in reuse if r is not None and r.method == method and r.config == config), None)
            if record is not None:
                found[label] = record
        return found

    def model(self, record, step: int | None = None):
        """The trained method of ``record`` in eval mode: its checkpoint (or the kept copy at
        ``step``), or a committed reference's zoo weights."""
        if record.is_reference:
            if step is not None:
                raise ValueError("a committed reference keeps its final weights only")
            return load_reference_model(record)
        return load_trained(record, step=step)

    def detections(self, record, regressor_set=None, test_sets: dict | None = None):
        """``record``'s landmarks on a regressor set and test sets (:class:`lmcore.evaluation.Detections`;
        default: all of regressor_train, test_mtfl and test_aflw), detected once and cached: from
        its checkpoint (:func:`lmcore.training.run_detections`) or a reference's zoo weights
        (:func:`lmcore.book.references.reference_detections`)."""
        regressor_set = self.regressor_train if regressor_set is None else regressor_set
        test_sets = {"test_mtfl": self.test_mtfl, "test_aflw": self.test_aflw} if test_sets is None else test_sets
        if record.is_reference:
            return reference_detections(record, regressor_set, test_sets)
        return run_detections(record, regressor_set, test_sets)

    def has_model(self, record) -> bool:
        """Whether :meth:`model` can load ``record`` (a reference needs its weights in the zoo)."""
        return record is not None and (not record.is_reference or has_weights(record))

    def compare_with_references(self, records) -> None:
        """Display this build's runs beside the committed references of the same names
        (:func:`lmcore.book.reporting.reference_comparison`); nothing in the reference profile, whose
        runs are the references."""
        if not self.trains:
            return
        table = reference_comparison([r for r in records if r is not None])
        if table is not None:
            display(table)

    def missing(self, what: str) -> None:
        """Show a stand-in box (:class:`lmcore.book.viz.StandIn`, counted by the page check) saying
        why a section shows nothing in this profile, and the command that trains it."""
        if self.trains:
            text = f"{what}: not shown: this {self.profile} build has no run for it (its training was skipped or failed)"
        else:
            text = (f"{what}: not shown in the {self.profile} profile, which trains nothing and has no committed "
                    f"reference for it (with weights, where a figure needs a model); `{TRAIN_COMMAND}` trains it")
        ipython_display.display(StandIn(text))  # not this module's display: tests collect that one

    # ------------------------------------------------------------ sections every chapter has
    def show_headline(self, chapter: str, faces: int = 8) -> dict:
        """What a chapter opens with: its headline runs' forward errors (``chapter``'s
        :data:`~lmcore.experiments.EXPERIMENTS` runs) beside the mean shape and the book's bar, and
        the landmarks of the first of them with a model on ``faces`` test faces; returns ``{run
        name: record}``. A run this profile has none of gets a stand-in."""
        experiment = EXPERIMENTS[chapter]
        runs = self.headline_runs(chapter, few_shot_curves=False)
        if runs:
            table = error_table(list(runs.values()), label=lambda r: f"{r.method}/{r.run_name} (K = {r.num_landmarks})")
            display(separated(table, self.profile))
            display(Markdown(f"The mean shape scores {self.mean_shape:.2f} % on test_mtfl and "
                             f"{self.mean_shape_aflw:.2f} % on test_aflw; the book's bar for a K = 10 run is half the "
                             f"first, {self.target:.2f} %."))
        absent = [f"{run.method}/{run.name}" for run in experiment.runs if run.name not in runs]
        if absent:
            self.missing(f"The headline runs {', '.join(absent)}")
        shown = next((r for r in runs.values() if self.has_model(r)), None)
        if shown is not None:
            landmarks_on_instances(self.model(shown).detect, self.test_mtfl.images[:faces],
                                   title=f"{shown.method}/{shown.run_name}: K = {shown.num_landmarks} landmarks on "
                                         f"test_mtfl faces [{self.profile}]")
            plt.show()
        return runs

    def show_fidelity(self, paper: str) -> None:
        """Display ``paper``'s fidelity table (:mod:`lmcore.experiments.fidelity`), headed by where the released
        code is, where there is code, each file:line linked to it (:func:`lmcore.book.tables.fidelity_html`)."""
        table = importlib.import_module(f"lmcore.experiments.fidelity.{paper}").TABLE
        display(HTML(repository_line(table) + fidelity_html(table)))

    def show_settings(self, *methods: str) -> dict:
        """Display the settings of each of ``methods`` in this chapter's settings profile (``cpu``
        for the references, whose runs trained with them): each method's ``method`` settings (they
        differ from method to method), then their ``train`` settings side by side, one column per
        method; return ``{method: config}``."""
        configs = {m: method_settings(m).default_config(self.settings) for m in methods}
        label = (lambda m, part: f"{m} {part}") if len(methods) > 1 else (lambda m, part: part)
        where = f"the {self.settings} profile" + (", which the references trained with" if not self.trains else "")
        for m, c in configs.items():
            display(collapse(pd.DataFrame({label(m, "method"): pd.Series(c["method"], dtype=object)}),
                             f"The {m} method's settings ({where})", fold=False))
        # one row per key in the configs' own order (not sorted) where the methods' keys differ
        display(collapse(pd.concat([pd.Series(c["train"], dtype=object, name=label(m, "train"))
                                    for m, c in configs.items()], axis=1, sort=False),
                         f"The training settings ({where})", fold=False))
        self.show_drift(*methods)
        return configs

    def show_drift(self, *methods: str) -> None:
        """Beside today's settings: every key in which a headline reference of ``methods`` trained
        otherwise (:mod:`lmcore.book.drift`), and each reference whose identity today's code has not
        attested (:mod:`lmcore.attest`); a line saying so where there is neither."""
        records = [r for r in (reference_record(run.method, run.name) for run in BOOK_RUNS if run.method in methods)
                   if r is not None]
        drift = drift_table(records)
        if len(drift):
            display(Markdown(f"**The references trained otherwise** than the settings above in these keys "
                             f"(`{REFRESH_HINT}` refreshes them):"))
            display(drift)
        else:
            display(Markdown(f"Every headline reference of {', '.join(methods)} trained with the settings above."))
        unsure = [s for s in record_states(paths=[r.path for r in records]) if s.state not in ("current", "attested")]
        for s in unsure:
            display(Markdown(f"`{s.record.method}/{s.record.run_name}`: its identity is **{s.state}** under today's "
                             f"code ({s.detail})."))

    def show_claims(self, chapter: str) -> None:
        """The paper's central claims (``chapter``'s :data:`~lmcore.experiments.EXPERIMENTS` claims), each
        judged on the longest-trained committed runs (:func:`lmcore.book.campaign.claims_table`): the
        paired difference of their per-face errors resampled over seeds and faces, the training
        behind it, the verdict. The smoke profile lists the claims only: its numbers mean nothing."""
        claims = EXPERIMENTS[chapter].claims
        if self.profile == "smoke":
            display(pd.DataFrame([{"claim": c.text, "paper": c.paper, "runs": ", ".join(c.better) + " vs "
                                   + ", ".join(c.worse)} for c in claims]).set_index("claim"))
            display(Markdown("smoke profile: the claims are judged in the reference and cpu builds."))
            return
        regressor, tests = self.regressor_train, {"test_mtfl": self.test_mtfl}

        def per_face(name: str, split: str):
            method, run = name.split("/", 1)
            record = reference_record(method, run)
            if record is None or not has_weights(record):
                raise LookupError(f"{name} has no weights in the zoo yet")
            return self.detections(record, regressor, tests).per_image(split)

        display(claims_table(claims, per_face))
        display(Markdown("Judged on test_mtfl; a verdict is final only where both sides' training converged "
                         "(their tune_val curves flat, the learning rate decayed: `tools/campaign.py`)."))

    def show_lineages(self, method: str) -> None:
        """The tune_val curves of ``method``'s lineages in the convergence campaign, or a line saying
        none has grown yet."""
        figure = lineage_figure(method)
        if figure is None:
            display(Markdown(f"No lineage of {method} has grown yet (`python tools/campaign.py status`)."))
        else:
            plt.show()

    def show_tuning(self, method: str) -> list:
        """Display ``method``'s committed tuning sweep (:func:`~lmcore.book.reporting.tuning_table`),
        or say how to make one; return its records (empty without any)."""
        records = tuning_records(method)
        if records:
            display(tuning_table(records))
        else:
            print(f"no committed tuning records under results/tuning/{method}/ "
                  f"(tools/tune_settings.py {method} --publish)")
        return records

    def show_references(self, method: str) -> list:
        """Display the committed references of ``method`` (their errors on the protocol, then their
        provenance), or say there are none; return their records."""
        records = load_references(method)
        if records:
            display(protocol_table(records))
            display(provenance_table(records))
        else:
            print(f"no committed reference runs under results/{method}/")
        return records

    def show_training_snapshots(self, record, k: int, count: int = 6) -> None:
        """A slider through the landmarks the K = ``k`` run ``record`` (None: no such run) found on
        the first ``count`` test_mtfl faces at each evaluation it recorded
        (:func:`lmcore.book.viz.checkpoint_scrubber`), or why there is none."""
        if record is not None and record.snapshots():
            display(checkpoint_scrubber(record, self.test_mtfl.images[:count]))
        else:
            self.missing(f"The landmarks through training (the K = {k} run's snapshots)")

    @property
    def target(self) -> float:
        """Half the mean shape's error on test_mtfl: the book's bar for a K = 10 reference."""
        return self.mean_shape / 2


def setup_chapter(profile: str | None = None, show: bool = True) -> Chapter:
    """Resolve ``profile`` (None: ``$LMBOOK_PROFILE``, else by hardware: ``paper`` with a GPU,
    ``reference`` without), display its note (in a notebook) and load what every chapter reads."""
    profile = resolve_book_profile(profile)
    use_book_tables()  # every table whole, wrapped, within the column (lmcore.book.tables)
    if show:
        display(Markdown(profile_note(profile)))
    data = get_source("mtfl80")
    test_mtfl, test_aflw = data.split("test_mtfl"), data.split("test_aflw")
    regressor_train = data.split("regressor_train")
    return Chapter(profile, data, test_mtfl, test_aflw, regressor_train,
                   mean_shape_error(regressor_train.points, test_mtfl.points)["mean"],
                   mean_shape_error(regressor_train.points, test_aflw.points)["mean"])
