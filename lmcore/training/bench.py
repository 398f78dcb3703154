"""What one training step costs: time, and the memory it needs, measured the way the loop trains.

:func:`step_cost` runs a method's real training step (its ``forward`` on a batch of the run's
data, backward, the optimiser's update) a few times after a warm-up and reports

* ``step_ms``: median wall time of one step, and ``images_per_s`` (batch / step time);
* ``saved_for_backward_mb``: the activations autograd keeps between the forward and the backward
  pass (unique storages, weights excluded), counted with ``saved_tensors_hooks``; it does not
  depend on the device, so a CPU measurement says what the step needs on a GPU too;
* ``parameters`` / ``trainable``: the method's parameter counts (frozen buffers excluded), and
  ``optimiser_state_mb``: trainable weights, their gradients and Adam's two moments;
* ``peak_cuda_mb``: on a GPU, the allocator's peak over the measured steps;
* ``forward_ms`` and, within it, ``warps_ms`` (warps and pair synthesis, :mod:`lmcore.geometry`)
  and ``perceptual_ms`` (the perceptual loss's VGG pass), from the timed steps run inside
  :func:`lmcore.profiling.measure_sections`; ``networks_ms`` is the rest of the forward pass (the
  networks and the other loss terms) and ``backward_update_ms`` the step minus the forward pass;
* ``parts_ms``: where the time of a whole training iteration goes, from ``steps`` more steps cut
  into :data:`PARTS` (medians): drawing the batch (``data``, outside ``step_ms``), the warps, the
  networks' forward calls (every module of the method, :func:`lmcore.profiling.modules_as_sections`),
  the perceptual loss (its VGG16 included), the loss terms with the rest of the forward pass
  (soft-argmax, rendering, the terms themselves), the backward pass, and the optimiser (zeroing,
  clipping, Adam's update).

The step runs as :func:`~lmcore.training.train` runs it: ``cfg``'s precision (bf16 autocast),
memory format and ``torch.compile`` apply (:func:`~lmcore.training.loop.prepare_for_training`).

Compare methods by ratios measured in one process (one machine, one load): absolute times move
with the machine (this project's 2-core machine has varied by 2x between days).
"""
from __future__ import annotations

import contextlib
import statistics
import time

import torch

from ..config import TrainConfig
from ..methods import build_method, get_method
from ..profiling import measure_sections, modules_as_sections
from ..spec import RunSpec
from .loop import (clip_gradients, draw_batch, forward_context, make_optimizer, prepare_for_training,
                   prepare_images)


#: where a training iteration's time goes (``parts_ms`` of :func:`step_cost`)
PARTS = ("data", "warps", "networks", "perceptual", "loss terms", "backward", "optimiser")
#: the networks whose calls count as the perceptual loss (by class name: the networks themselves are
#: not imported here)
PERCEPTUAL_MODULES = ("PerceptualLoss", "SanchezLoss")


def _section_of(module: torch.nn.Module) -> str:
    return "perceptual" if type(module).__name__ in PERCEPTUAL_MODULES else "networks"


def _storage_key(tensor: torch.Tensor):
    return tensor.untyped_storage().data_ptr()


def _counting_saved_tensors(weights: set, seen: dict):
    """``saved_tensors_hooks`` that record in ``seen`` the bytes of each storage autograd keeps for
    the backward pass, once per storage, leaving out ``weights`` (storage keys of parameters)."""
    def pack(tensor):
        key = _storage_key(tensor)
        if key not in weights and key not in seen:
            seen[key] = tensor.untyped_storage().nbytes()
        return tensor

    return torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor)


def step_cost(method: torch.nn.Module, images: torch.Tensor, cfg: TrainConfig, device: torch.device | None = None,
              steps: int = 5, warmup: int = 2, targets: torch.Tensor | None = None, pairs: bool = False) -> dict:
    """Time and memory of ``method``'s training step at ``cfg``'s batch size and resolution.

    images: uint8 ``N x C x H x W`` training images (a few batches' worth is enough); targets:
    what the loop would hand the method beside them (supervised methods), else None; ``pairs``:
    the method trains on pairs of different images (as the loop draws them). The method
    is trained for ``warmup + steps`` steps: pass a copy if its weights matter.
    """
    device = device or torch.device("cpu")
    method, model = prepare_for_training(method, cfg, device)
    method.train()
    trainable = [p for p in method.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, cfg)
    data = prepare_images(images, cfg.resolution, device)
    target_data = None if targets is None else targets.to(device)
    sampler = torch.Generator().manual_seed(0)
    warp_rng = torch.Generator(device=device).manual_seed(1)
    weights = {_storage_key(t) for t in list(method.parameters()) + list(method.buffers())}
    times, saved_bytes, forward_times, sections = [], [], [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def one_step(step: int, count_saved: bool, time_forward: bool) -> tuple[float, float, int]:
        batch = draw_batch(data, target_data, len(data), cfg.batch_size, sampler, device, pairs)
        seen: dict = {}
        sync()
        start = time.perf_counter()
        counting = _counting_saved_tensors(weights, seen) if count_saved else contextlib.nullcontext()
        with counting, forward_context(cfg, device):
            loss = model(batch, warp_rng, step)["loss"]
        if time_forward:  # a GPU sync the clean timed steps must not pay
            sync()
        forward_s = time.perf_counter() - start
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(method, cfg)
        optimizer.step()
        sync()
        return time.perf_counter() - start, forward_s, sum(seen.values())

    # On the CPU the sections cost nothing (no device to synchronise): one pass measures all. On a
    # GPU the timed steps run unsynchronised, then as many more steps are cut into sections.
    split = device.type == "cuda"
    for step in range(warmup + steps):
        with measure_sections(None if split else device) as totals:
            step_s, forward_s, saved = one_step(step, count_saved=True, time_forward=not split)
        if step >= warmup:
            times.append(step_s)
            saved_bytes.append(saved)
            if not split:
                forward_times.append(forward_s)
                sections.append(dict(totals))
    for step in range(warmup + steps, warmup + 2 * steps if split else 0):
        with measure_sections(device) as totals:
            _, forward_s, _ = one_step(step, count_saved=False, time_forward=True)
        forward_times.append(forward_s)
        sections.append(dict(totals))

    def one_step_in_parts(step: int) -> dict:
        clock = {}
        sync()
        start = time.perf_counter()
        batch = draw_batch(data, target_data, len(data), cfg.batch_size, sampler, device, pairs)
        sync()
        clock["data"] = time.perf_counter()
        with measure_sections(device) as totals, modules_as_sections(method, _section_of):
            with forward_context(cfg, device):
                loss = model(batch, warp_rng, step)["loss"]
            sync()
        clock["forward"] = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)  # the optimiser's work, before the backward pass as in the loop
        clock["zeroed"] = time.perf_counter()
        loss.backward()
        sync()
        clock["backward"] = time.perf_counter()
        clip_gradients(method, cfg)
        optimizer.step()
        sync()
        forward_s = clock["forward"] - clock["data"]
        named = {k: totals.get(k, 0.0) for k in ("warps", "networks", "perceptual")}
        return {"data": clock["data"] - start, **named, "loss terms": max(forward_s - sum(named.values()), 0.0),
                "backward": clock["backward"] - clock["zeroed"],
                "optimiser": clock["zeroed"] - clock["forward"] + time.perf_counter() - clock["backward"]}

    # the clean steps above are what step_ms compares; these pay two hooks per module call
    first = warmup + (2 * steps if split else steps)
    in_parts = [one_step_in_parts(step) for step in range(first, first + steps)]
    step_s = statistics.median(times)
    forward_s = min(statistics.median(forward_times), step_s)
    warps_s = statistics.median(s.get("warps", 0.0) for s in sections)
    perceptual_s = statistics.median(s.get("perceptual", 0.0) for s in sections)
    n_trainable = sum(p.numel() for p in trainable)
    result = {
        "step_ms": round(1000 * step_s, 1),
        "images_per_s": round(cfg.batch_size / step_s, 1),
        "batch_size": cfg.batch_size,
        "saved_for_backward_mb": round(max(saved_bytes) / 2 ** 20, 1),
        "parameters": sum(p.numel() for p in method.parameters()),
        "trainable": n_trainable,
        "optimiser_state_mb": round(4 * 4 * n_trainable / 2 ** 20, 1),  # fp32 weights, grads, 2 Adam moments
        "forward_ms": round(1000 * forward_s, 1),
        "warps_ms": round(1000 * warps_s, 1),
        "perceptual_ms": round(1000 * perceptual_s, 1),
        "networks_ms": round(1000 * max(forward_s - warps_s - perceptual_s, 0.0), 1),
        "backward_update_ms": round(1000 * max(step_s - forward_s, 0.0), 1),
        "parts_ms": {part: round(1000 * statistics.median(p[part] for p in in_parts), 1) for part in PARTS},
        "precision": cfg.precision, "channels_last": cfg.channels_last, "compile": cfg.compile,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1)
    return result


def build_untrained(method: str, profile: str, overrides: dict | None = None):
    """The method of a run's config with *freshly initialised* parents adopted (recursively):
    what a step costs does not depend on the parents' training, so a benchmark trains nothing."""
    return _build_untrained(RunSpec.resolve(method, profile, overrides=overrides))


def _build_untrained(spec: RunSpec):
    model = build_method(spec.method, spec.config)
    if spec.parents:
        model.adopt_parents({role: _build_untrained(parent)[0] for role, parent in spec.parents.items()})
    return model, spec.config


def run_step_cost(method: str, profile: str, overrides: dict | None = None, steps: int = 5, warmup: int = 2,
                  n_images: int = 256, device: torch.device | None = None, trained_parents: bool = True) -> dict:
    """:func:`step_cost` of a run's config on the first ``n_images`` of its training data, its
    parents trained or reused first as :func:`~lmcore.training.run_method` would (or, with
    ``trained_parents=False``, freshly initialised: :func:`build_untrained`)."""
    from ..data.sources import get_source
    from .runs import build_with_parents, parent_records

    if trained_parents:
        spec = RunSpec.resolve(method, profile, overrides=overrides)
        config = spec.config
        model = build_with_parents(method, config, parent_records(spec, progress=False))
    else:
        model, config = build_untrained(method, profile, overrides)
    subset = get_source(config["data"]["source"]).split(config["data"]["split"], limit=n_images)
    cls = get_method(method)
    return step_cost(model, subset.images, TrainConfig.from_dict(config["train"]), device, steps, warmup,
                     cls.training_targets(subset), pairs=cls.trains_on_pairs)


def correlation_cost(side: int, channels: int = 256, pairs: int = 8, filter_channels=(10, 10, 1),
                     filter_kernels=(3, 3, 3), steps: int = 3, warmup: int = 1,
                     device: torch.device | None = None) -> dict:
    """Time and memory per pair of C3's cross-image flow (:class:`~lmcore.models.flow.CrossImageFlow`)
    on ``side x side`` feature maps of ``channels`` channels: the 4D correlation is quadratic in the
    map's area, so this is what decides the feature resolution.

    Returns ``{"side", "forward_ms_per_pair"`` (no gradient, as the frozen flow runs inside a C3
    step), ``"train_ms_per_pair"`` (forward and backward, as in the flow's pre-training),
    ``"correlation_mb_per_pair"`` (one ``side^4`` float32 tensor), ``"saved_for_backward_mb_per_pair"``}.
    """
    from ..models.flow import CrossImageFlow, correlation_memory_bytes

    device = device or torch.device("cpu")
    flow = CrossImageFlow(tuple(filter_channels), tuple(filter_kernels)).to(device)
    fa = torch.randn(pairs, channels, side, side, device=device)
    fb = torch.randn(pairs, channels, side, side, device=device)
    weights = {_storage_key(p) for p in flow.parameters()}

    def timed(train: bool) -> tuple[float, int]:
        times, saved = [], 0
        for step in range(warmup + steps):
            seen: dict = {}
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            if train:
                with _counting_saved_tensors(weights, seen):
                    out = flow(fa, fb)
                (out["T_ab"].sum() + out["T_ba"].sum()).backward()
            else:
                with torch.no_grad():
                    flow(fa, fb)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step >= warmup:
                times.append(time.perf_counter() - start)
                saved = max(saved, sum(seen.values()))
        return statistics.median(times), saved

    forward_s, _ = timed(False)
    train_s, saved = timed(True)
    return {"side": side, "forward_ms_per_pair": round(1000 * forward_s / pairs, 2),
            "train_ms_per_pair": round(1000 * train_s / pairs, 2),
            "correlation_mb_per_pair": round(correlation_memory_bytes(side) / 2 ** 20, 3),
            "saved_for_backward_mb_per_pair": round(saved / pairs / 2 ** 20, 2), "device": str(device)}
