"""PF-PASCAL's semantic-alignment pairs, as ``data_scripts/fetch_pf_pascal.py`` prepares them.

The folder (``$LMBOOK_DATA_ROOT/pf_pascal`` or ``../shared/data/pf_pascal``) holds every image of a
pair resized whole to 80 x 80 (``JPEGImages/``), their original sizes (``images.txt``) and the
pairs (``pairs/<split>.txt``: ``source target class xA yA xB yB``, ``;``-separated lists in pixels
of the original images). C3's Table 3 scores a transfer of A's keypoints onto B on these pairs
(:func:`lmcore.evaluation.alignment.pair_pck`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CorruptDataError
from ..paths import find_dataset
from .images import load_image_tensor

NAME = "pf_pascal"


@dataclass
class AlignmentPairs:
    """Image pairs with corresponding keypoints, a different number per pair.

    images: ``N x 3 x S x S`` uint8 (every image once); sizes: ``N x 2`` original (width, height);
    index_a, index_b: ``P`` indices into ``images`` of each pair's source and target; points_a,
    points_b: ``P`` tensors ``n_p x 2`` of (x, y) in pixels of the *original* images; classes:
    ``P`` PASCAL class numbers (1-20).
    """

    name: str
    images: torch.Tensor
    sizes: torch.Tensor
    index_a: torch.Tensor
    index_b: torch.Tensor
    points_a: list
    points_b: list
    classes: torch.Tensor

    def __len__(self) -> int:
        return len(self.index_a)


def _coordinates(text: str, where: str) -> torch.Tensor:
    try:
        return torch.tensor([float(v) for v in text.split(";")], dtype=torch.float32)
    except ValueError:
        raise CorruptDataError(f"{where}: {text!r} is not a ';'-separated list of numbers") from None


def load_pf_pascal(split: str = "test", folder: Path | None = None) -> AlignmentPairs:
    """The pairs of ``split`` (``test``: the 299 pairs of Rocco et al.), from ``folder`` (default: the
    data root's or ``../shared/data``'s ``pf_pascal``). A missing folder raises
    :class:`~lmcore.errors.MissingDataError` naming ``python data_scripts/fetch_pf_pascal.py``; a
    malformed line or image, :class:`~lmcore.errors.CorruptDataError` naming the file."""
    folder = Path(folder) if folder is not None else find_dataset(NAME, "images.txt")
    pair_file = folder / "pairs" / f"{split}.txt"
    if not pair_file.is_file():
        available = sorted(p.stem for p in (folder / "pairs").glob("*.txt"))
        raise CorruptDataError(f"{pair_file} is missing (splits prepared: {', '.join(available) or 'none'})")
    names, sizes = [], []
    for n, line in enumerate((folder / "images.txt").read_text().splitlines(), start=1):
        fields = line.split()
        if len(fields) != 3:
            raise CorruptDataError(f"{folder / 'images.txt'} line {n}: expected 'name width height'")
        names.append(fields[0])
        sizes.append((int(fields[1]), int(fields[2])))
    position = {name: i for i, name in enumerate(names)}
    index_a, index_b, points_a, points_b, classes = [], [], [], [], []
    for n, line in enumerate(pair_file.read_text().splitlines(), start=1):
        where = f"{pair_file} line {n}"
        fields = line.split()
        if len(fields) != 7 or fields[0] not in position or fields[1] not in position:
            raise CorruptDataError(f"{where}: expected 'source target class xA yA xB yB' with listed images")
        xa, ya, xb, yb = (_coordinates(f, where) for f in fields[3:])
        if not len(xa) == len(ya) == len(xb) == len(yb):
            raise CorruptDataError(f"{where}: the four coordinate lists differ in length")
        index_a.append(position[fields[0]])
        index_b.append(position[fields[1]])
        points_a.append(torch.stack([xa, ya], 1))
        points_b.append(torch.stack([xb, yb], 1))
        classes.append(int(fields[2]))
    images = load_image_tensor([folder / "JPEGImages" / name for name in names], (80, 80), f"{NAME}-{split}")
    return AlignmentPairs(f"PF-PASCAL {split}", images, torch.tensor(sizes, dtype=torch.float32),
                          torch.tensor(index_a), torch.tensor(index_b), points_a, points_b, torch.tensor(classes))
