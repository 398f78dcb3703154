"""Command line: a committed reference's landmarks, and the 5 points regressed from them, on every
face of your photos.

    python -m lmcore.detect --list
    python -m lmcore.detect --model zhang/k10 photo.jpg [--out annotated.png] [--json]
    python -m lmcore.detect --model zhang/k10 photos/ more.jpg --out annotated/ [--force]
    python -m lmcore.detect --model zhang/k10 face-crop.png --crop

The faces are found first (MTCNN, :mod:`lmcore.faces`), each is cropped as MTFL-80's faces are
framed, and the points come back in the photo's own pixels (x right, y down), turned upright by
its EXIF orientation. ``--crop``: the photo already is a roughly centred face crop; it is
centre-cropped to a square instead. A folder stands for the photos in it.

``--out``: a file for one photo; a folder (existing, ending in ``/``, or for several photos) gets
``<photo name>-landmarks.png`` per photo (a photo without a face gets none). An existing file is
refused unless ``--force``, and the input photo is never overwritten. Two photos that would be
annotated under the same name are refused before anything is detected.

Exit status: 0 when every photo had a face; 3 when some photo had none (it says so, and its JSON
has no faces); 2 for a user error (one line: a bad photo, a bad --out, an unknown model); 1 for
another lmbook error (one line: missing data, ...).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from . import env
from .cli import OneLineParser, lmbook_error, user_error
from .errors import LmbookError
from .faces import Face, PhotoError, open_photo
from .files import atomic_writer
from .training.run_record import RunRecord
from .zoo import ZooError, available, load, record_path

PROG = "python -m lmcore.detect"
#: every photo had no face: the status a script can test
EXIT_NO_FACE = 3
OUT_SUFFIX = "-landmarks.png"


def model_list() -> list[str]:
    """One line per model of the zoo: its name, K and its record's test errors."""
    lines = []
    for name in available():
        record = RunRecord.from_file(record_path(name))
        forward = record["metrics"].get("forward", {})
        errors = ", ".join(f"{split} {v['mean']:.2f} %" for split, v in forward.items())
        lines.append(f"{name}: K = {record.num_landmarks}, {record.profile} profile, {record.get('steps')} steps; "
                     f"forward error {errors}")
    return lines


def photo_files(arguments: list[str]) -> list[Path]:
    """The photos named: files as given, a folder's image files (by their extension, sorted)."""
    extensions = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    photos = []
    for argument in arguments:
        path = Path(argument)
        if not path.exists():
            raise PhotoError(f"{path}: no such file")
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions)
            if not inside:
                raise PhotoError(f"{path}: is a folder with no photo in it (looked for {', '.join(sorted(extensions)[:6])}, ...)")
            photos += inside
        else:
            photos.append(path)
    return photos


def saved_formats() -> dict[str, str]:
    """``{".png": "Portable Network Graphics", ...}``: what an annotated photo may be saved as."""
    from matplotlib.figure import Figure

    return {f".{ext}": name for ext, name in Figure().canvas.get_supported_filetypes().items()}


class OutError(ValueError):
    """An ``--out`` that cannot be written as asked (one line for the user)."""


def plan_outputs(photos: list[Path], out: str | None, force: bool) -> list[Path | None]:
    """The annotated file of each photo (None without ``--out``), checked before anything is
    detected: distinct, writable, never an input photo, an existing file only with ``force``."""
    if out is None:
        return [None] * len(photos)
    as_folder = Path(out).is_dir() or out.endswith(("/", os.sep)) or len(photos) > 1
    out = Path(out)
    if as_folder:
        if out.exists() and not out.is_dir():
            raise OutError(f"--out {out}: is a file; with several photos --out must be a folder")
        if out.suffix.lower() in saved_formats() and not out.exists():
            raise OutError(f"--out {out}: several photos need a folder, not one image file")
        targets = [out / f"{photo.stem}{OUT_SUFFIX}" for photo in photos]
    else:
        if out.suffix.lower() not in saved_formats():
            known = ", ".join(sorted(saved_formats()))
            what = f"unknown image extension '{out.suffix}'" if out.suffix else "no image extension"
            raise OutError(f"--out {out}: {what} (one of {known}; or a folder: an existing one, or end it with /)")
        targets = [out]
    inputs = {photo.resolve(): photo for photo in photos}
    seen: dict[Path, Path] = {}
    for photo, target in zip(photos, targets):
        resolved = target.resolve()
        if resolved in seen:
            raise OutError(f"--out {out}: {seen[resolved]} and {photo} would both be annotated as {target}; "
                           "give them different names or annotate them into different folders")
        seen[resolved] = photo
        if resolved in inputs:
            raise OutError(f"--out {target}: is the input photo {inputs[resolved]}; it is never overwritten")
        if target.exists() and (target.is_dir() or not force):
            raise OutError(f"--out {target}: exists; give --force to overwrite it" if not target.is_dir() else
                           f"--out {target}: is a folder")
    for folder in sorted({target.parent for target in targets}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutError(f"--out {out}: cannot create the folder {folder} ({exc.strerror or type(exc).__name__})") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutError(f"--out {out}: the folder {folder} is not writable")
    return targets


def draw_faces(ax, faces: list[Face]) -> None:
    """On ``ax`` (showing the photo): each face's box (thin), its landmarks (coloured dots) and its
    5 regressed points (white crosses)."""
    for face in faces:
        if face.box is not None:
            left, top, right, bottom = face.box
            ax.plot([left, right, right, left, left], [top, top, bottom, bottom, top], color="white", linewidth=1)
        ax.scatter(face.landmarks[:, 0], face.landmarks[:, 1], c=np.arange(len(face.landmarks)), cmap="tab20",
                   s=30, edgecolors="black", linewidths=0.5)
        ax.scatter(face.points[:, 0], face.points[:, 1], marker="x", c="white", s=50, linewidths=2)


def annotate(photo: Image.Image, faces: list[Face], out: Path) -> None:
    """Write ``photo`` with :func:`draw_faces` to ``out`` (atomically: never half a file)."""
    from matplotlib.figure import Figure

    width, height = photo.size
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(np.asarray(photo))
    draw_faces(ax, faces)
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_axis_off()
    with atomic_writer(out) as fh:
        fig.savefig(fh, format=out.suffix.lower().lstrip("."), dpi=dpi)


def result_of(photo_path: Path, photo: Image.Image, faces: list[Face], model: str, crop: bool) -> dict:
    return {"photo": str(photo_path), "model": model, "size": list(photo.size), "taken_as_crop": crop,
            "faces": [face.as_dict() for face in faces]}


def describe(result: dict) -> str:
    """The text lines of one photo's result."""
    faces = result["faces"]
    if not faces:
        return f"{result['photo']}: no face found (if the photo already is a face crop, give --crop)"
    head = f"{result['photo']}: {len(faces)} face{'s' if len(faces) > 1 else ''}, {len(faces[0]['landmarks'])} landmarks each"
    if result.get("annotated"):
        head += f"; annotated: {result['annotated']}"
    lines = [head]
    for i, face in enumerate(faces, 1):
        named = "; ".join(f"{n} ({x:.1f}, {y:.1f})" for n, (x, y) in face["points"].items())
        where = "the photo as a crop" if face["box"] is None else \
            "box ({:.0f}, {:.0f})-({:.0f}, {:.0f}), score {:.2f}".format(*face["box"], face["score"])
        lines.append(f"  face {i} ({where}): {named}")
    return "\n".join(lines)


def detect_photos(model: str, photos: list[Path], targets: list[Path | None], crop: bool) -> list[dict]:
    """Each photo's result (and its annotated file, where it has a target and faces)."""
    from tqdm.auto import tqdm

    detector = load(model)
    results = []
    quiet = len(photos) < 2 or not env.progress()
    for path, target in tqdm(list(zip(photos, targets)), desc="photos", unit="photo", file=sys.stderr, disable=quiet):
        photo = open_photo(path)
        faces = detector(photo, crop=crop)
        result = result_of(path, photo, faces, model, crop)
        if target is not None and faces:
            try:
                annotate(photo, faces, target)
            except OSError as exc:
                raise OutError(f"--out {target}: cannot be written ({exc.strerror or type(exc).__name__})") from None
            result["annotated"] = str(target)
        results.append(result)
    return results


def main(argv=None) -> int:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", metavar="PHOTO", help="photos, or folders of photos")
    parser.add_argument("--model", help="a model of the zoo, e.g. zhang/k10 (--list shows them)")
    parser.add_argument("--list", action="store_true", help="the models with their test errors")
    parser.add_argument("--out", help="the annotated photo (for several photos, or ending in /: a folder)")
    parser.add_argument("--force", action="store_true", help="overwrite existing annotated files (never a photo)")
    parser.add_argument("--crop", action="store_true", help="the photos already are face crops: find no faces")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    try:
        if args.list:
            lines = model_list()
            print("\n".join(lines) if lines else "the zoo has no model with weights yet")
            return 0
        if not args.model or not args.photos:
            return user_error(PROG, "give --model NAME and at least one PHOTO (or --list)")
        photos = photo_files(args.photos)
        targets = plan_outputs(photos, args.out, args.force)
        results = detect_photos(args.model, photos, targets, args.crop)
    except (PhotoError, OutError, ZooError) as exc:
        return user_error(PROG, exc)
    except LmbookError as exc:
        return lmbook_error(PROG, exc)
    try:
        if args.json:
            print(json.dumps(results if len(results) > 1 else results[0], indent=1))
        else:
            print("\n".join(describe(r) for r in results))
        sys.stdout.flush()
    except BrokenPipeError:  # a reader that stopped early (| head): nothing more to say, and no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    faceless = [r["photo"] for r in results if not r["faces"]]
    if faceless:
        print(f"{PROG}: no face found in {len(faceless)} of {len(results)} photo(s): {', '.join(faceless[:5])}"
              + (", ..." if len(faceless) > 5 else "") + " (exit status 3)", file=sys.stderr)
        return EXIT_NO_FACE
    return 0


if __name__ == "__main__":
    sys.exit(main())
