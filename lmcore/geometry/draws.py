"""Per-example random draws that a data-parallel run can split between its processes.

Under DDP each process trains on its shard of a global batch. For a run on ``world`` processes
to equal a one-process run on the global batch, a process must not only see the right images
but also the right *random warps*: those a single process would have drawn for its rows.
Every per-example draw of the package (warp parameters, TPS jitter, colour jitter) goes through
:func:`uniform` / :func:`normal`, which, inside :func:`batch_shard`, draw for all ``world x b``
rows of the global batch and return this process's ``b`` rows. With the same generator seed
on every process (the training loop's choice), process ``r`` then gets rows
``[r * b, (r + 1) * b)`` of exactly what one process draws, and every process's generator stays
in the same state (so a checkpoint written by process 0 resumes every process).

Draws that are one per step, not one per example (e.g. Zhang's choice of control points), use
``torch.rand`` directly: the same on every process.
"""
from __future__ import annotations

import contextlib

import torch

_shard = {"rank": 0, "world": 1}


@contextlib.contextmanager
def batch_shard(rank: int, world: int):
    """Within the block, per-example draws are made for ``world`` local batches and the
    ``rank``-th returned (``rank`` in ``[0, world)``). Nesting restores the outer shard."""
    if not 0 <= rank < world:
        raise ValueError(f"rank must lie in [0, {world}), got {rank}")
    outer = dict(_shard)
    _shard.update(rank=rank, world=world)
    try:
        yield
    finally:
        _shard.update(outer)


def current_shard() -> tuple[int, int]:
    """``(rank, world)`` of the enclosing :func:`batch_shard` (``(0, 1)`` outside any)."""
    return _shard["rank"], _shard["world"]


def _draw(sampler, shape, generator, device) -> torch.Tensor:
    shape = tuple(shape)
    if not shape:
        raise ValueError("a per-example draw needs a batch dimension")
    rank, world = current_shard()
    if world == 1:
        return sampler(shape, generator=generator, device=device)
    rows = shape[0]
    full = sampler((rows * world, *shape[1:]), generator=generator, device=device)
    return full[rank * rows:(rank + 1) * rows]


def uniform(shape, generator=None, device=None) -> torch.Tensor:
    """``torch.rand(shape)`` with ``shape[0]`` the (local) batch: uniform on [0, 1)."""
    return _draw(torch.rand, shape, generator, device)


def normal(shape, generator=None, device=None) -> torch.Tensor:
    """``torch.randn(shape)`` with ``shape[0]`` the (local) batch: standard normal."""
    return _draw(torch.randn, shape, generator, device)
