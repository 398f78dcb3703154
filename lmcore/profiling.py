"""Where a training step spends its time: named sections, timed only while a benchmark asks.

Functions decorated with :func:`timed` (the warps and pair synthesis of :mod:`lmcore.geometry`,
the perceptual loss's VGG pass) add their wall time to a named section inside
:func:`measure_sections`; outside it they cost one ``if``. Nested sections count once, in the
outermost (a pair synthesis that calls two warps is one "warps" interval). On a GPU each
section synchronises the device at its edges, so a step measured with sections is slower than
one measured without: :func:`lmcore.training.bench.step_cost` times the two separately.
:func:`modules_as_sections` makes every call of a network inside a method a section too (the
networks, or the perceptual loss), without touching the method's code.
"""
from __future__ import annotations

import contextlib
import functools
import time
from typing import Callable

import torch

_state: dict | None = None  # {"totals": {name: seconds}, "depth": int, "device": torch.device}


def _sync(device) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def section(name: str):
    """Add the block's wall time to section ``name`` (when measuring, and not nested in another)."""
    state = _state
    if state is None or state["depth"] > 0:
        if state is not None:
            state["depth"] += 1
        try:
            yield
        finally:
            if state is not None:
                state["depth"] -= 1
        return
    _sync(state["device"])
    state["depth"] = 1
    start = time.perf_counter()
    try:
        yield
    finally:
        _sync(state["device"])
        state["depth"] = 0
        state["totals"][name] = state["totals"].get(name, 0.0) + time.perf_counter() - start


def timed(name: str):
    """Decorator: the function's calls are part of section ``name``."""
    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if _state is None:
                return function(*args, **kwargs)
            with section(name):
                return function(*args, **kwargs)
        return wrapper
    return decorate


@contextlib.contextmanager
def measure_sections(device: torch.device | None = None):
    """Within the block, timed sections add up into the yielded dict ``{name: seconds}``."""
    global _state
    if _state is not None:
        raise RuntimeError("measure_sections does not nest")
    totals: dict[str, float] = {}
    _state = {"totals": totals, "depth": 0, "device": device}
    try:
        yield totals
    finally:
        _state = None


@contextlib.contextmanager
def modules_as_sections(root: torch.nn.Module, section_of: Callable[[torch.nn.Module], str]):
    """Within the block, each forward call of a module inside ``root`` (``root`` itself excepted)
    is a section named ``section_of(module)``; nested calls count in the outermost, as any
    nested section does. For :func:`measure_sections` blocks; each call pays two hooks."""
    inside = {id(m) for m in root.modules() if m is not root}
    open_sections: list = []

    def before(module, args):
        if id(module) in inside:
            context = section(section_of(module))
            context.__enter__()
            open_sections.append((module, context))

    def after(module, args, output):
        if open_sections and open_sections[-1][0] is module:
            open_sections.pop()[1].__exit__(None, None, None)

    pre = torch.nn.modules.module.register_module_forward_pre_hook(before)
    post = torch.nn.modules.module.register_module_forward_hook(after)
    try:
        yield
    finally:
        pre.remove()
        post.remove()
        while open_sections:  # a forward that raised leaves its sections open
            open_sections.pop()[1].__exit__(None, None, None)
