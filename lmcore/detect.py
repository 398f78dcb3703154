"""Command line: a committed reference's landmarks, and the 5 points regressed from them, on your
own face photos.

    python -m lmcore.detect --list
    python -m lmcore.detect --model zhang/k10 photo.jpg [--out annotated.png] [--json]

The detectors were trained on MTFL-80: 80 x 80 crops of faces roughly centred and filling most of
the frame. A photo is centre-cropped to a square and resized to 80 x 80 as those crops were, so it
should already be a roughly centred face crop (a whole scene gives meaningless points). Points
come back in the photo's own pixel coordinates (x right, y down).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from .cli import OneLineParser, lmbook_error, user_error

PROG = "python -m lmcore.detect"
POINT_NAMES = ("left eye", "right eye", "nose", "left mouth corner", "right mouth corner")
#: PIL modes a photo may have (converted to RGB); 16/32-bit and float images are refused
PHOTO_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr", "1")


class PhotoError(ValueError):
    """A photo that cannot be read as an image (one line for the user)."""


def read_photo(path: Path | str) -> tuple[torch.Tensor, tuple[float, float, float]]:
    """A photo as MTFL-80's detectors see it: centre-cropped to a square and resized to 80 x 80,
    ``3 x 80 x 80`` floats in [0, 1]; and ``(left, top, side)`` of the square in the photo, to
    map points back."""
    from PIL import Image, UnidentifiedImageError

    from .zoo import IMAGE_SIZE

    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode not in PHOTO_MODES:
                raise PhotoError(f"{path}: unsupported image mode {image.mode} (use an 8-bit RGB or grey photo)")
            rgb = image.convert("RGB")
    except FileNotFoundError:
        raise PhotoError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PhotoError(f"{path}: is a folder, not a photo") from None
    except PermissionError:
        raise PhotoError(f"{path}: permission denied") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, PhotoError):
            raise
        raise PhotoError(f"{path}: not a readable image ({type(exc).__name__})") from None
    width, height = rgb.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    square = rgb.crop((round(left), round(top), round(left) + side, round(top) + side))
    small = square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    tensor = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
    return tensor, (float(round(left)), float(round(top)), float(side))


def to_photo(points: torch.Tensor, frame: tuple[float, float, float]) -> np.ndarray:
    """Points in the 80 px crop -> the photo's pixel coordinates."""
    from .zoo import IMAGE_SIZE

    left, top, side = frame
    return points.numpy() * (side / IMAGE_SIZE) + np.array([left, top])


def annotate(path: Path, landmarks: np.ndarray, points: np.ndarray, out: Path) -> None:
    """The photo with its landmarks (coloured dots) and the 5 regressed points (white crosses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    fig = plt.figure(figsize=(6, 6 * height / width), dpi=max(100, width / 6))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(rgb)
    ax.scatter(landmarks[:, 0], landmarks[:, 1], c=np.arange(len(landmarks)), cmap="tab20", s=40, edgecolors="black")
    ax.scatter(points[:, 0], points[:, 1], marker="x", c="white", s=60, linewidths=2)
    ax.set_axis_off()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def model_list() -> list[str]:
    """One line per model of the zoo: its name, K and its record's test errors."""
    from .training.run_record import RunRecord
    from .zoo import available, record_path

    lines = []
    for name in available():
        record = RunRecord.from_file(record_path(name))
        forward = record["metrics"].get("forward", {})
        errors = ", ".join(f"{split} {v['mean']:.2f} %" for split, v in forward.items())
        lines.append(f"{name}: K = {record.num_landmarks}, {record.profile} profile, {record.get('steps')} steps; "
                     f"forward error {errors}")
    return lines


def main(argv=None) -> int:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("photos", nargs="*", metavar="PHOTO", help="roughly centred face crops (any size)")
    parser.add_argument("--model", help="a model of the zoo, e.g. zhang/k10 (--list shows them)")
    parser.add_argument("--list", action="store_true", help="the models with their test errors")
    parser.add_argument("--out", type=Path, help="the annotated photo (with several photos: a folder)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    from .errors import LmbookError

    try:
        if args.list:
            lines = model_list()
            print("\n".join(lines) if lines else "the zoo has no model with weights yet")
            return 0
        if not args.model or not args.photos:
            return user_error(PROG, "give --model NAME and at least one PHOTO (or --list)")
        from .zoo import ZooError, load_detector

        try:
            detector = load_detector(args.model)
        except ZooError as exc:
            return user_error(PROG, exc)
        if detector.regressor is None:
            return user_error(PROG, f"{args.model} is a pose core (LSPET's 14 joints), not a face detector; "
                                    "--list shows the face detectors")
        photos = [read_photo(p) for p in args.photos]
        images = torch.stack([p[0] for p in photos])
        landmarks = detector(images)
        points = detector.points(images, landmarks)
        results = []
        for path, (_, frame), lm, pt in zip(args.photos, photos, landmarks, points):
            results.append({"photo": str(path), "model": args.model,
                            "landmarks": np.round(to_photo(lm, frame), 2).tolist(),
                            "points": {n: np.round(p, 2).tolist() for n, p in zip(POINT_NAMES, to_photo(pt, frame))}})
        if args.out:
            several = len(args.photos) > 1
            for result in results:
                out = args.out / f"{Path(result['photo']).stem}-landmarks.png" if several else args.out
                annotate(Path(result["photo"]), np.array(result["landmarks"]), np.array(list(result["points"].values())), out)
                result["annotated"] = str(out)
        if args.json:
            print(json.dumps(results if len(results) > 1 else results[0], indent=1))
        else:
            for r in results:
                named = "; ".join(f"{n} ({x:.1f}, {y:.1f})" for n, (x, y) in r["points"].items())
                print(f"{r['photo']}: {len(r['landmarks'])} landmarks; {named}"
                      + (f"; annotated: {r['annotated']}" if "annotated" in r else ""))
        return 0
    except PhotoError as exc:
        return user_error(PROG, exc)
    except LmbookError as exc:
        return lmbook_error(PROG, exc)


if __name__ == "__main__":
    sys.exit(main())
