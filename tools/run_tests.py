"""The test command behind `make test` (and .ci/run):

1. pytest (unit tests) in as many single-thread worker processes as the machine has cores
   (pytest-xdist; each worker's runs in a folder of its own); no test collected (exit 5) is a
   failure;
2. every chapter executed in the ``smoke`` profile, side by side in single-thread kernels
   (tools/parallel_chapters.py), and the book built with warnings as errors into
   ``_build/test/html`` (the user's ``_build/html`` is left alone);
3. a headless-Chromium check of the built pages (tools/check_book.py): figures on every chapter
   page, and widgets rendered. Chromium comes from Debian's packages (installed if missing).

Single-thread processes side by side, rather than one process of two threads, because that is
faster on the 2-core machine and stays so beside another job: two threads of one process spin at
every parallel region while one of them waits for a core the other job holds.

Prints the time of each phase; exits non-zero at the first failing phase.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


def phase(name: str):
    print(f"[test] === {name} ===", flush=True)
    return time.perf_counter()


def done(name: str, started: float) -> float:
    seconds = time.perf_counter() - started
    print(f"[test] {name}: {seconds:.1f} s", flush=True)
    return seconds


def ensure_chromium() -> None:
    """Debian's chromium and chromium-driver, installed with apt-get (as root, or with ``sudo -n``)
    when absent; says so before it starts."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    apt = ["apt-get"] if os.geteuid() == 0 else (["sudo", "-n", "apt-get"] if shutil.which("sudo") else None)
    if apt is None:
        raise SystemExit("[test] chromium and chromium-driver are needed for the page check: "
                         "install Debian's packages 'chromium chromium-driver' (apt-get needs root)")
    print(f"[test] installing Debian's chromium and chromium-driver for the page check: {' '.join(apt)} install "
          "(about 100 MB)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(apt + ["update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(apt + ["install", "-y", "-qq", "--no-install-recommends", "chromium", "chromium-driver"],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def main() -> int:
    import timings

    total = time.perf_counter()
    began, cold = timings.started_at(), timings.caches_cold()
    load = timings.load_average()
    phases = {}
    os.environ.setdefault("LMBOOK_PROGRESS", "0")
    os.environ.setdefault("LMBOOK_RUNS", str(ROOT / "_build" / "test" / "runs"))

    ensure_chromium()  # before pytest: tests/test_check_book.py drives it too
    from parallel_chapters import machine_cores

    workers = machine_cores()
    started = phase(f"pytest ({workers} single-thread workers)")
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers),
                            "--dist", "loadfile"], cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"))
    phases["pytest"] = done("pytest", started)
    if code == 5:
        print("[test] FAILED: pytest collected no test", file=sys.stderr)
        return 1
    if code != 0:
        print(f"[test] FAILED: pytest exited {code}", file=sys.stderr)
        return code

    import build_book

    started = phase("chapters (smoke profile) and the book, warnings as errors")
    index = build_book.build("smoke", ROOT / "_build" / "test", strict=True)
    phases["smoke chapters and book"] = done("chapters and book", started)

    started = phase("headless Chromium check of the built pages")
    import check_book

    code = check_book.check_book(index.parent, ROOT / "_build" / "test" / "screenshots")
    phases["page check"] = done("page check", started)
    if code != 0:
        return code
    record = timings.write_record(ROOT / "_build" / "test" / "build-record.json", "test", phases, cold, began, load)
    print(f"[test] all passed in {time.perf_counter() - total:.1f} s ({record['total_s'] / 60:.1f} min since the command "
          f"began, {record['caches']} caches); smoke book: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
