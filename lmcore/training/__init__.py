"""One training loop for every method, run records, and the run API chapters call.

The names below are read from their modules on first use (PEP 562's module ``__getattr__``), so
that importing one module of this package (a record, a checkpoint) does not import the whole run
API: the model zoo reads run records, and the run API starts runs from the zoo's weights.
"""
from __future__ import annotations

import importlib

#: each public name and the module (relative to this package) that defines it
_EXPORTS = {
    "TrainConfig": "..config",
    **{name: ".loop" for name in ("TrainResult", "distributed_context", "prepare_images", "train")},
    **{name: ".records" for name in ("config_hash", "describe_device", "git_commit", "read_record",
                                     "write_json_atomic")},
    "RunRecord": ".run_record",
    **{name: "..spec" for name in ("RunSpec", "resolve_config")},
    **{name: ".runs" for name in ("PublishRefused", "RunBusyError", "find_run", "find_spec", "load_references",
                                  "load_trained", "publish_reference", "run_detections", "run_method", "run_spec",
                                  "run_variants", "variant_run_name")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
