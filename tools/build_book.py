"""Execute every chapter headlessly with papermill and build the HTML book with jupyter-book 1.x.

    python tools/build_book.py [--profile smoke|reference|cpu|paper] [--output _build] [--strict]

Chapters are jupytext ``py:percent`` files in ``book/``, listed in ``book/_toc.yml``. Each is
converted on the fly to a notebook, executed by papermill with its ``profile`` parameter, and
written into a staging folder beside the book's other pages; jupyter-book then builds the staged
folder (it never executes anything itself). The widget JavaScript the static pages need
(RequireJS and @jupyter-widgets/html-manager) is fetched from the npm registry at build time.

Prints one line per chapter with its elapsed time and ends with the path to open.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

from parallel_chapters import execute_in_parallel

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
WIDGET_PACKAGES = {
    # npm package -> (file inside the package tarball, name in the static folder)
    "requirejs@2.3.8": ("package/require.js", "require.min.js"),
    "@jupyter-widgets/html-manager@1.0.15": ("package/dist/embed-amd.js", "embed-amd.js"),
}
WIDGET_DIR = "_widgets_js"  # not "_static": Sphinx would then load every script twice


def log(message: str) -> None:
    print(f"[lmbook] {message}", flush=True)


def chapters_from_toc(toc_file: Path = BOOK / "_toc.yml", pages: bool = False) -> list[str]:
    """Stems of the chapter files listed in the table of contents, in order (with ``pages``, the
    markdown pages instead: those with no chapter source)."""
    toc = yaml.safe_load(toc_file.read_text())
    stems = []

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                stems.append(entry["file"])
            walk(entry.get("sections"))
            for part in entry.get("parts", []):
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return [s for s in stems if (BOOK / f"{s}.py").exists() != pages]


def fetch_widget_js(dest: Path, cache: Path) -> None:
    """Copy RequireJS and the widget embedder from the npm registry (cached) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    for package, (member, name) in WIDGET_PACKAGES.items():
        cached = cache / name
        if not cached.exists():
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    subprocess.run(["npm", "pack", package, "--silent"], cwd=tmp, check=True, capture_output=True, text=True)
                except (OSError, subprocess.CalledProcessError) as exc:
                    detail = getattr(exc, "stderr", "") or str(exc)
                    raise SystemExit(f"[lmbook] could not fetch {package} from the npm registry (needed for widgets in "
                                     f"the static book): {detail.strip()[-500:]}")
                tarball = next(Path(tmp).glob("*.tgz"))
                with tarfile.open(tarball) as tar:
                    data = tar.extractfile(member).read()
                tmp_file = cached.with_suffix(".part")
                tmp_file.write_bytes(data)
                tmp_file.replace(cached)
        shutil.copy2(cached, dest / name)


def stage_book(staging: Path) -> None:
    """Copy the book's non-chapter pages (markdown, toc, images) into the staging folder."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for path in BOOK.iterdir():
        if path.suffix == ".py" or path.name.startswith((".", "_build")) or path.name == "__pycache__":
            continue
        if path.is_dir():
            shutil.copytree(path, staging / path.name)
        else:
            shutil.copy2(path, staging / path.name)


def write_toc(staging: Path, chapters: list[str]) -> None:
    """The staged table of contents: the chapters that were executed and every markdown page."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    toc["chapters"] = [entry for entry in toc.get("chapters", [])
                       if entry.get("file") in chapters or not (BOOK / f"{entry.get('file')}.py").exists()]
    (staging / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))


def write_generated_pages(staging: Path) -> None:
    """Pages written from the committed records, never by hand: the command behind each reference."""
    from lmcore.reproduce import reproduction_page

    (staging / "using_references.md").write_text(reproduction_page() + "\n")


def execute_chapter(stem: str, staging: Path, profile: str, timeout: int | None) -> float:
    """jupytext source -> executed notebook in ``staging``; returns the elapsed seconds."""
    import jupytext
    import papermill

    source = BOOK / f"{stem}.py"
    notebook = jupytext.read(source)
    notebook.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    raw = staging / f".{stem}.input.ipynb"
    jupytext.write(notebook, raw, fmt="ipynb")
    started = time.perf_counter()
    executed = staging / f"{stem}.ipynb"
    try:
        papermill.execute_notebook(
            str(raw), str(executed), parameters={"profile": profile}, kernel_name="python3",
            cwd=str(BOOK), progress_bar=False, log_output=False, execution_timeout=timeout,
            # the kernel's warning that it listens on local TCP is not the reader's business
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    finally:
        raw.unlink(missing_ok=True)
    hide_parameter_cells(executed)
    return time.perf_counter() - started


def hide_parameter_cells(path: Path) -> None:
    """Tag the parameters cell and papermill's injected one ``remove-cell``: the page shows the
    profile in its banner (``lmcore.book.chapter.setup_chapter``), not as raw code."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if ("parameters" in tags or "injected-parameters" in tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(notebook, path)


def build_html(staging: Path, output: Path, strict: bool) -> Path:
    """Run jupyter-book on the staged folder into ``output/html``; returns the index page."""
    work = output / "jupyter-book"
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(staging), "--config", str(ROOT / "_config.yml"),
           "--toc", str(staging / "_toc.yml"), "--path-output", str(work), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stdout.write(done.stdout[-6000:])
        sys.stderr.write(done.stderr[-6000:])
        raise SystemExit(f"[lmbook] jupyter-book failed (exit {done.returncode})")
    html = output / "html"
    if html.exists():
        shutil.rmtree(html)
    os.replace(work / "_build" / "html", html)
    return html / "index.html"


def build(profile: str, output: Path, strict: bool = False, chapters: list[str] | None = None,
          timeout: int | None = None) -> Path:
    """Execute the chapters in ``profile`` and build the book under ``output``; returns index.html."""
    import timings

    began, cold = timings.started_at(), timings.caches_cold()  # before anything fills the caches
    load = timings.load_average()
    output = output.resolve()
    staging = output / "src"
    stage_book(staging)
    fetch_widget_js(staging / WIDGET_DIR, ROOT / "_build" / "npm-cache")
    os.environ.setdefault("LMBOOK_PROGRESS", "0")  # no progress widgets inside executed notebooks
    os.environ["LMBOOK_PROFILE"] = profile
    total = time.perf_counter()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from lmcore.book.leaderboard import write_leaderboard  # the committed records' leaderboard, read by chapter 6

    for path in write_leaderboard():
        log(f"wrote {path.relative_to(ROOT)} from the committed run records")
    write_generated_pages(staging)
    chapters = chapters or chapters_from_toc()
    write_toc(staging, chapters)
    def execute(stem: str) -> float:
        try:
            return execute_chapter(stem, staging, profile, timeout)
        except Exception as exc:  # papermill names the failing cell; keep the partial notebook for reading
            log(f"{stem}: FAILED; the partly executed notebook is {staging / (stem + '.ipynb')}")
            raise SystemExit(f"[lmbook] {type(exc).__name__}: {str(exc)[-3000:]}")

    # side by side in kernels of few threads, each after the chapters whose runs it reads
    phases = execute_in_parallel(chapters, execute, profile, log)
    started = time.perf_counter()
    index = build_html(staging, output, strict)
    phases["html"] = time.perf_counter() - started
    log(f"built the HTML book in {phases['html']:.1f} s (chapters and build: {time.perf_counter() - total:.1f} s)")
    if chapters == chapters_from_toc():  # a whole book: its record (tools/timings.py publish keeps it)
        record = timings.write_record(output / "build-record.json", f"book-{profile}", phases, cold, began, load)
        log(f"{record['total_s'] / 60:.1f} min since the command began ({record['caches']} caches); "
            f"record: {output / 'build-record.json'}")
    return index


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    from lmcore.book.references import BOOK_PROFILES, resolve_book_profile
    from lmcore.env import check_environment
    from lmcore.errors import ConfigError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=BOOK_PROFILES, default=None,
                        help="default: $LMBOOK_PROFILE, else paper with a GPU and reference (the committed runs, "
                             "nothing trained) without")
    parser.add_argument("--output", type=Path, default=ROOT / "_build")
    parser.add_argument("--strict", action="store_true", help="treat Sphinx warnings as errors")
    parser.add_argument("--chapter", action="append", help="execute only these chapter stems (others are not staged)")
    args = parser.parse_args(argv)
    try:  # a bad LMBOOK_* value is one line and exit 2, before anything is built
        check_environment()
        profile = resolve_book_profile(args.profile)
    except ConfigError as exc:
        print(f"[lmbook] error: {exc}", file=sys.stderr)
        return 2
    log(f"profile: {profile}")
    index = build(profile, args.output, args.strict, args.chapter)
    log(f"open {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
