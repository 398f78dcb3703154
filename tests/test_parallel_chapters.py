"""The smoke build's chapters side by side (tools/parallel_chapters.py): a chapter after the chapters
whose runs it reads, never two at once beyond the cores, the first failure raised."""
import sys
import threading
import time

import pytest

from lmcore.paths import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "tools"))
import parallel_chapters  # noqa: E402

CHAPTERS = ["00_data_and_protocol", "01_fse", "03_jakab", "05_c3", "06_comparison", "07_speed"]


def test_a_chapter_waits_for_the_chapters_that_train_its_parents_and_the_comparison_for_all():
    waits = parallel_chapters.chapter_dependencies(CHAPTERS, "smoke")
    assert waits["05_c3"] == {"03_jakab"}  # C3's runs start from the Jakab chapter's
    assert waits["06_comparison"] == set(CHAPTERS) - {"06_comparison"}
    assert waits["01_fse"] == waits["03_jakab"] == waits["07_speed"] == set()


def test_chapters_run_side_by_side_each_after_what_it_waits_for(monkeypatch):
    monkeypatch.setattr(parallel_chapters, "free_cores", lambda: 2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the kernels' thread count: restored afterwards
    lock, events, running, most = threading.Lock(), [], [0], [0]

    def execute(chapter):
        with lock:
            events.append(("start", chapter))
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05 if chapter != "03_jakab" else 0.2)
        with lock:
            events.append(("end", chapter))
            running[0] -= 1
        return 1.0

    seconds = parallel_chapters.execute_in_parallel(CHAPTERS, execute, "smoke", log=lambda line: None, processes=2)
    assert list(seconds) == CHAPTERS and most[0] == 2
    assert events[0] == ("start", "03_jakab")  # C3's chapter waits for it: it goes first
    assert events.index(("start", "05_c3")) > events.index(("end", "03_jakab"))
    assert all(events.index(("start", "06_comparison")) > events.index(("end", c)) for c in CHAPTERS[:-2] + ["07_speed"])
    assert parallel_chapters.os.environ["OMP_NUM_THREADS"] == "1"  # two cores shared by two kernels


def test_the_first_failure_is_raised_after_the_chapters_beside_it_end_and_nothing_more_starts(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    started = []

    def execute(chapter):
        started.append(chapter)
        if chapter == "03_jakab":
            raise SystemExit("[lmbook] 03_jakab failed")
        time.sleep(0.2)
        return 1.0

    with pytest.raises(SystemExit, match="03_jakab failed"):
        parallel_chapters.execute_in_parallel(CHAPTERS, execute, "smoke", log=lambda line: None, processes=2)
    assert sorted(started) == ["00_data_and_protocol", "03_jakab"]  # the one beside it ended; none started after


def test_in_the_reference_profile_only_the_comparison_waits():
    """The reference profile trains nothing: its chapters wait for no other's runs (it is not a
    run profile, so nothing may resolve a run in it), the comparison still for every chapter."""
    waits = parallel_chapters.chapter_dependencies(CHAPTERS, "reference")
    assert waits["05_c3"] == set() and waits["06_comparison"] == set(CHAPTERS) - {"06_comparison"}
