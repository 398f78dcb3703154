"""Download the official MTFL.zip and convert it to the MTFL-80 layout in ``ROOT/mtfl80/``.

MTFL-80 is already embedded at ``../shared/data/mtfl80`` and is the book's default: nothing
needs fetching to run the book. This script rebuilds it from the original release on a
machine that can reach CUHK's server (or from a copy given with ``--zip`` / ``--from-folder``).

Official format (``training.txt``, ``testing.txt``): rows ``path x1..x5 y1..y5 gender smile
glasses pose`` with backslashes in paths, images under ``lfw_5590/``, ``net_7876/``, ``AFLW/``.
Conversion: every image resized to 80x80 RGB JPEG (quality 95) at the same relative path,
points scaled by (80/width, 80/height); ``new_training.txt`` / ``new_testing.txt`` rows
``relative/path.jpg x1..x5 y1..y5``; ``splits/`` derived by ``lmcore.data.mtfl.derive_splits``.

Checksum: the official zip's sha256 is not known to the project (it cannot be downloaded
here). Give ``--sha256`` to verify it; otherwise the computed hash is printed and written to
``ROOT/mtfl80/SOURCE_SHA256``.

    python data_scripts/fetch_mtfl.py [--root DIR] [--force] [--sha256 HEX]
                                      [--zip MTFL.zip | --from-folder DIR] [--url URL]
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import lmcore  # noqa: F401
except ImportError:  # run from a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from lmcore.data.mtfl import IMAGE_SIZE, derive_splits, read_label_file  # noqa: E402
from lmcore.paths import SHARED_DATA  # noqa: E402

NAME = "mtfl80"
OFFICIAL_URL = "http://mmlab.ie.cuhk.edu.hk/projects/TCDCN/data/MTFL.zip"
LABEL_FILES = {"training.txt": "new_training.txt", "testing.txt": "new_testing.txt"}
SPLIT_NAMES = ("unsup_train", "regressor_train", "test_mtfl", "test_aflw", "excluded_bad_labels")


def find_official_root(src: Path) -> Path:
    """The folder holding ``training.txt`` and ``testing.txt`` (``src`` or below it)."""
    src = Path(src)
    for candidate in [src, *sorted(p.parent for p in src.glob("**/training.txt"))]:
        if (candidate / "training.txt").is_file() and (candidate / "testing.txt").is_file():
            return candidate
    raise _common.FetchError(f"{src} holds no MTFL release (training.txt and testing.txt not found)")


def read_official_labels(path: Path) -> list[tuple[str, np.ndarray]]:
    """Rows of an official label file as ``(relative/path.jpg, 5 x 2 points)``, in file order."""
    rows = []
    with open(path, encoding="utf-8", errors="strict") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 11:
                raise _common.FetchError(f"{path}:{lineno}: expected a path and 10 coordinates, got {len(parts)} fields")
            try:
                values = np.array([float(v) for v in parts[1:11]], dtype=np.float64)
            except ValueError as exc:
                raise _common.FetchError(f"{path}:{lineno}: {exc}") from exc
            name = parts[0].replace("\\", "/").lstrip("/")
            while name.startswith("./"):
                name = name[2:]
            if ".." in Path(name).parts:
                raise _common.FetchError(f"{path}:{lineno}: path {parts[0]!r} leaves the data set folder")
            rows.append((name, np.stack([values[:5], values[5:]], axis=1)))
    if not rows:
        raise _common.FetchError(f"{path} holds no rows")
    return rows


def convert_mtfl(src_dir: Path, out_dir: Path, source_sha256: str | None = None) -> dict[str, int]:
    """Convert an extracted official MTFL release into the MTFL-80 layout at ``out_dir``.

    The folder is built beside ``out_dir`` and moved into place only when complete.
    Returns the number of rows per label file and per split.
    """
    root = find_official_root(Path(src_dir))
    counts: dict[str, int] = {}
    with _common.atomic_dir(Path(out_dir)) as tmp:
        for official, new in LABEL_FILES.items():
            rows = read_official_labels(root / official)
            seen: dict[str, int] = {}
            lines = []
            for name, points in rows:
                image = _common.open_rgb(root / name)
                small, scaled = _common.crop_resize(image, points, size=IMAGE_SIZE)
                _common.save_jpeg(small, tmp / name)
                if name in seen:  # keep the last row, as read_label_file would
                    lines[seen[name]] = None
                seen[name] = len(lines)
                lines.append(_common.format_row(name, scaled))
            _common.write_lines(tmp / new, [ln for ln in lines if ln is not None])
            if len(seen) != len(rows):
                _common.warn(NAME, f"{official}: {len(rows) - len(seen)} duplicate row(s); kept the last of each")
            counts[new] = len(seen)
        training = read_label_file(tmp / "new_training.txt")
        testing = read_label_file(tmp / "new_testing.txt")
        splits = derive_splits(training, testing)
        for split, names in splits.items():
            _common.write_lines(tmp / "splits" / f"{split}.txt", names)
            counts[split] = len(names)
        if source_sha256:
            _common.write_lines(tmp / "SOURCE_SHA256", [f"{source_sha256}  MTFL.zip"])
    return counts


def verify_mtfl80(folder: Path) -> int:
    """Cheap completeness check of a converted folder; returns the number of images."""
    for required in ("new_training.txt", "new_testing.txt"):
        if not (folder / required).is_file():
            raise _common.FetchError(f"{folder / required} is missing")
    training = read_label_file(folder / "new_training.txt")
    testing = read_label_file(folder / "new_testing.txt")
    splits = derive_splits(training, testing)
    for split, names in splits.items():
        path = folder / "splits" / f"{split}.txt"
        if not path.is_file() or _common.read_lines(path) != names:
            raise _common.FetchError(f"{path} is missing or differs from the derived split")
    for name in [*training, *testing]:
        path = folder / name
        if not path.is_file():
            raise _common.FetchError(f"{path} is missing")
    for name in list(training)[:20]:  # spot-check the image size
        with Image.open(folder / name) as im:
            if im.size != (IMAGE_SIZE, IMAGE_SIZE):
                raise _common.FetchError(f"{folder / name} is {im.size}, expected 80x80")
    return len(training) + len(testing)


def compare_with_shipped(counts: dict[str, int], shipped: Path = SHARED_DATA / NAME / "splits") -> list[str]:
    """Warnings for split sizes that differ from the shipped MTFL-80's (when it is present)."""
    messages = []
    if not shipped.is_dir():
        return messages
    for split in SPLIT_NAMES:
        path = shipped / f"{split}.txt"
        if path.is_file() and split in counts:
            n = len(_common.read_lines(path))
            if n != counts[split]:
                messages.append(f"split {split} has {counts[split]:,} rows here but {n:,} in the shipped {path}")
    if messages:
        messages.append("expected where labels of the net_7876 rows differ (see data_scripts/README.md); "
                        "chapters run on the shipped copy unless LMBOOK_DATA_ROOT points here")
    return messages


def fetch(args) -> str:
    root = _common.root_of(args)
    out = root / NAME
    recorded = out / "SOURCE_SHA256"
    if not args.force and out.is_dir():
        try:
            n = verify_mtfl80(out)
        except Exception as exc:
            _common.warn(NAME, f"existing {out} does not verify ({_common.one_line(exc)}); converting again")
        else:
            if args.sha256 and recorded.is_file() and args.sha256 not in recorded.read_text():
                raise _common.FetchError(
                    f"{out} was converted from a zip with another sha256 ({recorded.read_text().split()[0]}); "
                    "use --force to convert again"
                )
            return f"{NAME}: already present and verified ({n:,} images): {out}"
    digest = None
    with _common.scratch_dir(NAME) as tmp:
        if args.from_folder:
            src = Path(args.from_folder).expanduser().resolve()
            if not src.is_dir():
                raise _common.FetchError(f"--from-folder {src} is not a folder")
        else:
            if args.zip:
                archive = Path(args.zip).expanduser().resolve()
                if not archive.is_file():
                    raise _common.FetchError(f"--zip {archive} does not exist")
            else:
                archive = tmp / "MTFL.zip"
                try:
                    _common.download_url(args.url, archive, timeout=60)
                except _common.DownloadError as exc:
                    raise _common.FetchError(
                        f"{exc}. The embedded copy in {SHARED_DATA / NAME} (../shared/data/mtfl80) is the "
                        "book's default and needs no download; to rebuild it from a copy of MTFL.zip you "
                        "obtained elsewhere use --zip PATH or --from-folder DIR"
                    ) from exc
            digest = _common.sha256_file(archive)
            if args.sha256 and digest != args.sha256:
                raise _common.FetchError(f"sha256 mismatch for {archive.name}: got {digest}, expected {args.sha256}")
            if not args.sha256:
                _common.warn(NAME, f"no sha256 known for MTFL.zip; computed {digest} (recorded in {recorded})")
            src = tmp / "extracted"
            _common.extract_archive(archive, src)
        counts = convert_mtfl(src, out, source_sha256=digest)
    for message in compare_with_shipped(counts):
        _common.warn(NAME, message)
    n = counts["new_training.txt"] + counts["new_testing.txt"]
    source = f"zip sha256 {digest}" if digest else f"folder {args.from_folder}"
    return f"{NAME}: wrote {n:,} 80x80 images, label files and splits to {out} (from {source})"


def main(argv: list[str] | None = None) -> int:
    parser = _common.make_parser(__doc__.splitlines()[0], sha256_option=True)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--zip", type=Path, help="an MTFL.zip already on disk (no download)")
    group.add_argument("--from-folder", type=Path, help="an extracted MTFL release (folder with training.txt)")
    parser.add_argument("--url", default=OFFICIAL_URL, help=f"download address (default {OFFICIAL_URL})")
    args = parser.parse_args(argv)
    return _common.guarded(NAME, lambda: fetch(args))


if __name__ == "__main__":
    sys.exit(main())
