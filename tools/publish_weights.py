"""Export the model-zoo weights of committed references from the finished runs they came from.

    python tools/publish_weights.py results/zhang/k10.json results/jakab/k10.json

Writes ``results/<method>/<run>.safetensors`` (trainable weights and buffers, fp16 where that
moves test_mtfl's forward error by < 0.01, and the protocol's 5-point regressor; for a pose core,
fp16 where that moves its PCK on LSPET val by < 0.1 point, and no regressor) and adds its
sha256 to the record (:func:`lmcore.zoo_export.export_weights`). ``python -m lmcore.train --publish``
and ``tools/publish_references.py`` do this themselves; this is for references published before.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from lmcore.errors import LmbookError
    from lmcore.zoo_export import check_summary, export_weights

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", nargs="+", type=Path)
    parser.add_argument("--dtype", choices=("auto", "fp16", "fp32"), default="auto")
    args = parser.parse_args(argv)
    status = 0
    for path in args.records:
        try:
            done = export_weights(path, args.dtype)
        except (LmbookError, FileNotFoundError) as exc:
            print(f"publish_weights: {path}: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{done['name']}: {done['dtype']}, {done['bytes'] / 1e6:.2f} MB; {check_summary(done)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
