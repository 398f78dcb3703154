"""Execute the book's chapters side by side, each in a kernel of few threads, a chapter only after the
chapters whose runs it reads.

On the project's 2-core machine two single-thread kernels finish the smoke chapters sooner than one
kernel of two threads (much of a chapter is single-threaded Python), and they stay fast when another
job shares the machine: two threads of one process spin at every parallel region while they wait
for a core the other job holds, single-thread kernels never do. How many chapters run at once is
the machine's cores (``os.sched_getaffinity``); how many threads each kernel has, the cores that were
free when the build began (load average) shared among them, at least one. With a GPU the chapters
run one at a time (they would share its memory).

Which chapter waits for which follows from the runs (:data:`lmcore.experiments.BOOK_RUNS`): a
chapter whose headline runs have another chapter's runs as parents waits for that chapter (C3's
for Jakab's), and the chapters that only read every chapter's runs (:data:`READS_EVERY_CHAPTER`)
wait for all the others; two chapters never train the same run at once.
"""
from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable

#: chapters that read the runs of every other chapter and train none
READS_EVERY_CHAPTER = ("06_comparison",)


def machine_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def chapters_at_a_time() -> int:
    """The machine's cores without a GPU; one chapter at a time where the chapters train on a GPU
    (they would share its memory)."""
    import torch

    return 1 if torch.cuda.is_available() else machine_cores()


def free_cores() -> int:
    """The cores not busy with other processes now (cores minus the 1-minute load average), at least 1."""
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, machine_cores() - round(busy))


def chapter_dependencies(chapters: list[str], profile: str) -> dict[str, set[str]]:
    """``{chapter: the chapters it waits for}`` among ``chapters`` (see the module docstring)."""
    from lmcore.experiments import BOOK_RUNS
    from lmcore.profiles import PROFILES
    from lmcore.spec import RunSpec

    owner = {(run.method, run.name): run.chapter for run in BOOK_RUNS}
    waits: dict[str, set[str]] = {chapter: set() for chapter in chapters}
    trains = profile in PROFILES  # the reference profile trains nothing: no chapter waits for another's runs
    for run in BOOK_RUNS:
        if not trains or run.chapter not in waits:
            continue
        spec = RunSpec.resolve(run.method, profile, run.name, run.resolved_overrides(profile))
        for parent in spec.parents.values():
            other = owner.get((parent.method, parent.name))
            if other in waits and other != run.chapter:
                waits[run.chapter].add(other)
    for chapter in READS_EVERY_CHAPTER:
        if chapter in waits:
            waits[chapter] = {c for c in chapters if c != chapter and c not in READS_EVERY_CHAPTER}
    return waits


def execute_in_parallel(chapters: list[str], execute: Callable[[str], float], profile: str,
                        log: Callable[[str], None] = print, processes: int | None = None) -> dict[str, float]:
    """Run ``execute(chapter)`` (which returns its seconds) for every chapter, ``processes`` at a
    time (default: :func:`chapters_at_a_time`), each after the chapters it waits for, those that
    more chapters wait for first, else in the order given; the kernels' thread count goes through ``OMP_NUM_THREADS``. Returns
    ``{chapter: seconds}``; the first failure is raised once the chapters running beside it end."""
    processes = processes or chapters_at_a_time()
    threads = max(1, free_cores() // processes)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    log(f"{processes} chapters at a time, {threads} thread(s) each")
    waits = chapter_dependencies(chapters, profile)
    done: dict[str, float] = {}
    # a chapter others wait for (C3's for Jakab's) first, then the order given
    pending = sorted(chapters, key=lambda c: -sum(c in waits[other] for other in chapters))
    running: dict = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=processes) as pool:
        while pending or running:
            ready = [c for c in pending if waits[c] <= set(done)] if failure is None else []
            for chapter in ready[:processes - len(running)]:
                pending.remove(chapter)
                log(f"executing {chapter} ({profile} profile) ...")
                running[pool.submit(execute, chapter)] = chapter
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                chapter = running.pop(future)
                try:
                    done[chapter] = future.result()
                    log(f"{chapter}: {done[chapter]:.1f} s")
                except BaseException as exc:  # noqa: BLE001 - kept and raised after the others end
                    failure = failure or exc
    if failure is not None:
        raise failure
    return {c: done[c] for c in chapters}


if __name__ == "__main__":  # what the smoke build would do: python tools/parallel_chapters.py
    import sys

    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from build_book import chapters_from_toc

    stems = chapters_from_toc()
    for chapter, before in chapter_dependencies(stems, "smoke").items():
        print(chapter, "after", ", ".join(sorted(before)) or "nothing")
