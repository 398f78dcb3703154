"""lmcore keeps the memory a step frees for the next step (lmcore.allocator): a tensor allocated
again after it was freed does not make the kernel map and zero its pages again."""
import subprocess
import sys

import pytest

from lmcore import allocator

#: 64 MiB: above the largest block glibc would otherwise keep (its adaptive threshold stops at 32 MiB)
FLOATS = 1 << 24
#: pages of one such tensor (4 KiB each)
PAGES = 4 * FLOATS // 4096

# Each count is taken in a fresh process, so that what earlier tests left in the heap cannot serve
# the allocations (inside pytest's process it did, and glibc's defaults then faulted nothing).
_COUNT = f"""
import resource, sys
if sys.argv[1] == "lmcore":
    import lmcore  # raises the thresholds on import
import torch
for _ in range(2):
    torch.ones({FLOATS})  # allocated, written and freed: the heap grows to hold it
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    torch.ones({FLOATS})  # freed again before the next
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults_of_three_allocations(importing: str) -> int:
    done = subprocess.run([sys.executable, "-c", _COUNT, importing], capture_output=True, text=True, check=True,
                          cwd=allocator.__file__.rsplit("/lmcore/", 1)[0])
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_freed_tensors_memory_is_reused_without_new_page_faults():
    assert allocator.keep_freed_memory()  # importing lmcore did it
    mapped = _faults_of_three_allocations("torch")  # glibc's defaults: each block mapped afresh
    kept = _faults_of_three_allocations("lmcore")
    # with transparent huge pages a fault maps 2 MiB, so only a lower bound holds for every kernel
    assert mapped >= 3 * (4 * FLOATS >> 21) * 0.9
    # kept: the blocks are reused (now and then one of the three is mapped again, never all)
    assert kept < mapped * 0.4
