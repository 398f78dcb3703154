"""lmcore keeps the memory a step frees for the next step (lmcore.allocator): a tensor allocated
again after it was freed does not make the kernel map and zero its pages again."""
import ctypes
import resource
import sys

import pytest
import torch

from lmcore import allocator

#: 64 MiB: above the largest block glibc would otherwise keep (its adaptive threshold stops at 32 MiB)
FLOATS = 1 << 24
#: pages of one such tensor (4 KiB each)
PAGES = 4 * FLOATS // 4096


def _faults_of_three_allocations() -> int:
    for _ in range(2):
        torch.ones(FLOATS)  # allocated, written and freed: the heap grows to hold it
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        torch.ones(FLOATS)  # freed again before the next
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_freed_tensors_memory_is_reused_without_new_page_faults():
    assert allocator.keep_freed_memory()  # importing lmcore did it
    kept = _faults_of_three_allocations()
    libc = ctypes.CDLL("libc.so.6")
    for parameter in (allocator.M_MMAP_THRESHOLD, allocator.M_TRIM_THRESHOLD):
        libc.mallopt(parameter, 128 * 1024)  # glibc's defaults: large blocks mapped afresh, the heap trimmed
    libc.malloc_trim(0)
    try:
        mapped = _faults_of_three_allocations()
    finally:
        for parameter in (allocator.M_MMAP_THRESHOLD, allocator.M_TRIM_THRESHOLD):
            libc.mallopt(parameter, allocator.KEEP_BYTES)
    assert mapped >= 3 * PAGES * 0.9  # each allocation faults every page in
    assert kept < PAGES * 0.05
