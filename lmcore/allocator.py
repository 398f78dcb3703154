"""Keep the memory a training step frees for the next step, instead of handing it back to the system.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves a block of more than
``M_MMAP_THRESHOLD`` bytes (128 KiB at first, adapting up to 32 MiB) with a fresh ``mmap`` and
returns it with ``munmap`` when the tensor is freed, and it gives the top of its heap back once
more than ``M_TRIM_THRESHOLD`` is free there. A training step allocates and frees the same
activations every step, so every step the kernel maps, zeroes and unmaps them again: on the
project's 2-core machine 5,000-13,000 page faults a step and 5-8 % of the step's CPU time
(``python -m lmcore.bench`` with ``--against`` measures the difference). With both thresholds
raised the freed blocks stay in the heap and the next step reuses them.

What is computed does not change (the same kernels run on memory of the same 64-byte alignment:
the attestation probes of every method give bit-identical weights with and without). The cost:
a process keeps the memory of its largest step until it exits. Where the C library is not glibc
(macOS, musl) nothing is changed.
"""
from __future__ import annotations

import ctypes
import ctypes.util

#: glibc's ``mallopt`` parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: blocks up to this size come from the heap, and this much free memory may stay at its top
KEEP_BYTES = 1 << 30

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to :data:`KEEP_BYTES` (once per process). Returns
    whether they are raised (False where the C library is not glibc or refuses)."""
    global _applied
    if _applied is None:
        _applied = False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc
            return False
        mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        _applied = bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_BYTES))
    return _applied
