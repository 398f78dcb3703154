"""lmcore: the package behind lmbook, a reproducibility book for unsupervised landmark discovery.

Organised by what things are: ``geometry`` (soft-argmax, heatmaps, warps), ``models``,
``losses``, ``methods`` (one module per paper), ``training`` (one loop for every method),
``evaluation`` (the regression protocol) and ``data``; the book's tables, figures and chapter
set-up are in ``book``, which no run imports.
"""
from ._torchvision_compat import ensure_torchvision_importable
from .allocator import keep_freed_memory

# torchvision must be importable through lmcore on the CPU-only machines of this project
# (see _torchvision_compat); on a CUDA machine this call does nothing.
ensure_torchvision_importable()
# a step's freed activations stay in the heap for the next step instead of being unmapped and
# mapped again (see allocator); what is computed is unchanged
keep_freed_memory()

__version__ = "0.1.0"
