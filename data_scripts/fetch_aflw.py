"""Prepare AFLW (Annotated Facial Landmarks in the Wild) from your own copy in ``ROOT/aflw/``.

Source: AFLW (Koestinger, Wohlhart, Roth, Bischof, 2011; Graz University of Technology),
about 25,000 faces in 21,000 Flickr photographs with up to 21 landmarks each. It is
distributed only after registration and acceptance of its terms (research use):
``REGISTRATION_PAGE``. This script therefore downloads nothing: it prints where to apply
and converts the copy you received, given with ``--from-folder`` (the folder holding
``aflw.sqlite`` and ``flickr/0``, ``flickr/2``, ``flickr/3``, at any depth). No checksum is
known to the project; the hash of ``aflw.sqlite`` is recorded in ``SOURCE_SHA256``.

Note: the 2,995 AFLW faces of the MTFL test set (the "AFLW_M" test set of Thewlis et al.
2017) are already in the embedded MTFL-80 (``../shared/data/mtfl80/AFLW``); this script is
for the full set.

Preparation: each face (``FaceRect`` of the database) is cropped to a square centred on its
rectangle with side 1.2 x the rectangle's larger side (outside the photo is black) and
resized to 80x80. Output ``ROOT/aflw/``: ``faces/FACE_ID.jpg``, ``labels.txt`` rows
``path x1..x21 y1..y21`` in ``feature_id`` order (``nan`` where a point is not annotated,
AFLW marks only visible points), ``points.txt`` (the 21 point names), ``splits/train.txt``
and ``splits/test.txt`` (our rule: sorted paths, every 10th is test).

    python data_scripts/fetch_aflw.py --from-folder DIR [--root DIR] [--force]
"""
from __future__ import annotations

import sqlite3
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

NAME = "aflw"
REGISTRATION_PAGE = "https://www.tugraz.at/institute/icg/research/team-bischof/lrs/downloads/aflw/"
N_POINTS = 21
MARGIN = 1.2
SPLITS = ("train", "test")
HINT = (f"AFLW needs registration: apply at {REGISTRATION_PAGE}, accept its terms, download and "
        "extract the release (aflw.sqlite and the flickr/ image folders), then run "
        "python data_scripts/fetch_aflw.py --from-folder DIR")


def read_database(db: Path) -> tuple[list[str], list[tuple[int, str, tuple[float, float, float, float], np.ndarray]]]:
    """Point names and ``(face_id, image path relative to flickr/, (x, y, w, h), 21 x 2 points)``."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise _common.FetchError(f"cannot open {db}: {exc}") from exc
    try:
        names = [f"point {i}" for i in range(1, N_POINTS + 1)]
        try:
            for feature_id, descr in con.execute("SELECT feature_id, descr FROM FeatureCoordTypes"):
                if 1 <= int(feature_id) <= N_POINTS:
                    names[int(feature_id) - 1] = str(descr)
        except sqlite3.Error:
            pass  # names are informative only
        coords: dict[int, np.ndarray] = {}
        for face_id, feature_id, x, y in con.execute("SELECT face_id, feature_id, x, y FROM FeatureCoords"):
            if 1 <= int(feature_id) <= N_POINTS:
                coords.setdefault(int(face_id), np.full((N_POINTS, 2), np.nan))[int(feature_id) - 1] = (x, y)
        faces = []
        query = ("SELECT Faces.face_id, FaceImages.filepath, FaceRect.x, FaceRect.y, FaceRect.w, FaceRect.h "
                 "FROM Faces JOIN FaceImages ON Faces.file_id = FaceImages.file_id "
                 "JOIN FaceRect ON FaceRect.face_id = Faces.face_id ORDER BY Faces.face_id")
        for face_id, filepath, x, y, w, h in con.execute(query):
            faces.append((int(face_id), str(filepath), (float(x), float(y), float(w), float(h)),
                          coords.get(int(face_id), np.full((N_POINTS, 2), np.nan))))
    except sqlite3.Error as exc:
        raise _common.FetchError(f"{db} does not have AFLW's tables ({exc})") from exc
    finally:
        con.close()
    return names, faces


def face_box(rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = rect
    cx, cy, half = x + w / 2, y + h / 2, MARGIN * max(w, h, 1.0) / 2
    return (cx - half, cy - half, cx + half, cy + half)


def prepare(src: Path, out: Path, hashes: dict[str, str] | None) -> dict[str, int]:
    db = _common.find_file(src, "aflw.sqlite")
    flickr = _common.find_dir(src, ["flickr"])
    if db is None or flickr is None:
        raise _common.FetchError(f"{src} lacks {'aflw.sqlite' if db is None else 'flickr/'}. {HINT}")
    names, faces = read_database(db)
    items, skipped = [], 0
    for face_id, filepath, rect, points in faces:
        image = flickr / filepath
        if not image.is_file():
            skipped += 1
            continue
        items.append((f"faces/{face_id}.jpg", image, points, face_box(rect)))
    if skipped:
        _common.warn(NAME, f"{skipped:,} face(s) whose image is not under {flickr} were skipped")
    with _common.atomic_dir(out) as tmp:
        counts = _common.write_landmark_folder(tmp, items, _common.modulo_split, {"aflw.sqlite": _common.sha256_file(db)})
        _common.write_lines(tmp / "points.txt", names)
    return counts


def verify(folder: Path) -> int:
    return _common.verify_landmark_folder(folder, SPLITS)


def main(argv: list[str] | None = None) -> int:
    parser = _common.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--from-folder", type=Path, default=None,
                        help="your extracted AFLW release (folder with aflw.sqlite and flickr/)")
    args = parser.parse_args(argv)
    # No download: AFLW is handed out after registration only (web_dataset_fetch fails with HINT).
    args.url, args.sha256 = None, None
    return _common.guarded(NAME, lambda: _common.web_dataset_fetch(args, parser, NAME, [], HINT, prepare, verify))


if __name__ == "__main__":
    sys.exit(main())
