"""One training loop for every method.

A method is an ``nn.Module`` whose ``forward(images, generator, step)`` returns a dict of loss
terms with the total under ``"loss"`` (see :class:`lmcore.methods.base.LandmarkMethod`). The
loop owns everything else: device, seeds, batches, the optimiser and its schedule, gradient
clipping, checkpoints every N steps with resume from the last one, a NaN guard, tqdm progress,
a learning curve, and PyTorch's own DDP when launched under ``torchrun``.

Resuming is exact on the CPU under the same settings: the checkpoint holds the model, the
optimiser, the schedule, every random generator and the loss sums of the current log interval, so
a run interrupted and resumed ends with the same weights and learning curve as one that was not
(tests check it). The checkpoint also records the thread count, device type and world size it was
written under; a resume under other settings says so (one printed line and
:attr:`TrainResult.resumed_with`), since the result is then not bit-identical.

Before training, process 0 removes the temp files of killed processes from the run's folder and
the kept copies (``checkpoint-<step>.pt``) an interrupted copy left truncated; a resumed run
reports the settings it was resumed under in :attr:`TrainResult.resumed_with`.

Its files (checkpoints, kept copies, temp files of killed processes) are
:mod:`lmcore.training.checkpoint`'s; its settings, :class:`lmcore.config.TrainConfig`.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..errors import ConfigError, TrainingDiverged
from ..geometry.draws import batch_shard
from .checkpoint import (copy_checkpoint, load_checkpoint, read_training_state, remove_orphaned_temp_files,
                         repair_kept_copies, save_checkpoint)
from .records import config_hash


@dataclass
class TrainResult:
    steps: int
    wall_time_s: float
    history: list = field(default_factory=list)
    resumed_from: int = 0
    #: ``None`` unless a checkpoint was resumed; then ``{"step", "threads", "device", "world_size"}``
    #: (the settings of this call), ``"written_with"`` (those the checkpoint was written under;
    #: ``None`` for a checkpoint that did not record them), ``"segments"`` (the settings of every
    #: stretch of the run, ``[{"from_step", "threads", "device", "world_size"}, ...]``) and
    #: ``"same_settings"`` (whether all stretches ran under the same settings, i.e. whether the
    #: run can be bit-identical to an uninterrupted one; ``None`` when unknown). Meant for the record.
    resumed_with: dict | None = None


# --------------------------------------------------------------------------- distributed


def distributed_context() -> tuple[int, int, int]:
    """(rank, local_rank, world_size), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), world


def prepare_images(images: torch.Tensor, resolution: int, device: torch.device) -> torch.Tensor:
    """uint8 ``N x 3 x H x W`` -> float [0, 1] at ``resolution`` on ``device`` (done once per run)."""
    out = []
    for start in range(0, len(images), 1024):
        chunk = images[start:start + 1024].float().div_(255.0)
        if chunk.shape[-1] != resolution:
            chunk = F.interpolate(chunk, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        out.append(chunk)
    return torch.cat(out).to(device)


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over ``params``; with ``weight_decay_on = "conv_weights"`` only the
    convolution kernels (4-D tensors) are decayed, as Jakab et al.'s code regularises them."""
    params = list(params)
    if cfg.weight_decay_on == "conv_weights":
        groups = [{"params": [p for p in params if p.ndim == 4], "weight_decay": cfg.weight_decay},
                  {"params": [p for p in params if p.ndim != 4], "weight_decay": 0.0}]
    else:
        groups = [{"params": params, "weight_decay": cfg.weight_decay}]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)
    raise ValueError(f"unknown optimizer '{cfg.optimizer}' (adam or adamw)")


def clip_gradients(method: torch.nn.Module, cfg: TrainConfig) -> None:
    """Clip to ``cfg.grad_clip``: the norm of all the method's gradients together (``"global"``),
    each tensor's own (``"per_tensor"``: the released code of Jakab et al.,
    cnn_train_multi.py:232-239), or each of the method's ``clip_groups()`` apart (``"per_network"``)."""
    if not cfg.grad_clip:
        return
    if cfg.grad_clip_mode == "per_tensor":
        groups = [[p] for p in method.parameters()]
    elif cfg.grad_clip_mode == "per_network":
        groups = method.clip_groups()
    else:
        groups = [list(method.parameters())]
    for group in groups:
        group = [p for p in group if p.grad is not None]
        if group:
            torch.nn.utils.clip_grad_norm_(group, cfg.grad_clip)


def _lr_factor(cfg: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        value = cfg.lr_gamma ** sum(step >= m for m in cfg.lr_milestones)
        if cfg.warmup_steps and step < cfg.warmup_steps:
            value *= (step + 1) / cfg.warmup_steps
        return value
    return factor


def _settings(device: torch.device, world: int) -> dict:
    """What decides whether a resumed run is bit-identical to an uninterrupted one."""
    return {"threads": torch.get_num_threads(), "device": device.type, "world_size": world}


def _same_settings(segments: list[dict]) -> bool | None:
    """Whether every stretch of a run ran under the same settings (``None``: not all recorded)."""
    if not segments or segments[0].get("from_step") != 0:
        return None
    first = {k: v for k, v in segments[0].items() if k != "from_step"}
    return all({k: v for k, v in s.items() if k != "from_step"} == first for s in segments)


def _describe_settings(settings: dict, other: dict) -> str:
    text = f"{settings.get('threads')} thread(s)"
    if settings.get("device") != other.get("device"):
        text += f" on {settings.get('device')}"
    if settings.get("world_size") != other.get("world_size"):
        text += f" in {settings.get('world_size')} process(es)"
    return text


def _params_finite(module: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in module.parameters())


def sample_pairs(n: int, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of ``batch_size`` pairs of different images among ``n`` (uniform over ordered pairs
    ``i != j``): the partner is ``i`` shifted by 1 to ``n - 1`` places, modulo ``n``."""
    if n < 2:
        raise ValueError(f"pairs of different images need at least 2 images, got {n}")
    first = torch.randint(n, (batch_size,), generator=generator)
    shift = torch.randint(1, n, (batch_size,), generator=generator)
    return first, (first + shift) % n


def draw_batch(data, target_data, n: int, batch_size: int, sampler: torch.Generator, device, pairs: bool,
                shard: tuple[int, int] = (0, 1)):
    """One batch as the method receives it: images, ``(images, targets)`` or ``(images_a, images_b)``.

    ``batch_size`` is the global batch. With ``shard = (rank, world)`` (DDP) the indices of the
    whole global batch are drawn, the same on every process (same sampler seed), and process
    ``rank`` keeps rows ``[rank * b, (rank + 1) * b)``, ``b = batch_size / world``."""
    rank, world = shard
    rows = slice(rank * batch_size // world, (rank + 1) * batch_size // world)
    if pairs:
        first, second = sample_pairs(n, batch_size, sampler)
        return data[first[rows].to(device)], data[second[rows].to(device)]
    index = torch.randint(n, (batch_size,), generator=sampler)[rows].to(device)
    return data[index] if target_data is None else (data[index], target_data[index])


def forward_context(cfg: TrainConfig, device: torch.device):
    """The context of a training forward pass: ``torch.autocast`` to bfloat16 for
    ``precision = "bf16"`` (the backward pass and the optimiser stay in float32), else none."""
    if cfg.precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_for_training(method: torch.nn.Module, cfg: TrainConfig, device: torch.device, world: int = 1,
                         local_rank: int = 0):
    """``method`` on ``device`` in the layout ``cfg`` asks for, and the callable the loop trains
    through: DDP-wrapped under ``torchrun`` (BatchNorm made SyncBatchNorm on GPUs, so its
    statistics are those of the global batch), then ``torch.compile``-d if asked."""
    if world > 1 and device.type == "cuda":
        method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)  # children replaced in place
    method.to(device)
    if cfg.channels_last:
        method.to(memory_format=torch.channels_last)
    model = method
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(method, device_ids=[local_rank] if device.type == "cuda" else None)
    if cfg.compile:
        model = torch.compile(model)
    return method, model


def _has_batchnorm(module: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training for m in module.modules())


@dataclass
class LoopState:
    """What a checkpoint carries besides the networks, the optimiser and the random generators:
    the step, the training time so far, the learning curve, the loss sums of the log interval not
    yet written (so a resumed run logs what an uninterrupted one does) and the settings (threads,
    device, processes) each stretch of the run ran under."""

    step: int = 0
    elapsed: float = 0.0
    history: list = field(default_factory=list)
    interval: dict = field(default_factory=dict)
    interval_steps: int = 0
    segments: list = field(default_factory=list)
    resumed_with: dict | None = None  # TrainResult.resumed_with


@dataclass
class Trainables:
    """What a step changes and a checkpoint saves: the method, its optimiser and schedule, the
    batch sampler and the warps' generator (the global torch generator is saved beside them)."""

    method: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    sampler: torch.Generator
    warp_rng: torch.Generator

    def state_dict(self) -> dict:
        return {"model": self.method.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "sampler": self.sampler.get_state(),
                "warp_rng": self.warp_rng.get_state(), "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.method.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.sampler.set_state(state["sampler"])
        self.warp_rng.set_state(state["warp_rng"])
        torch.set_rng_state(state["torch_rng"])


def _trainables(method: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> Trainables:
    """The optimiser, schedule and generators of a fresh run. Every process seeds them alike: each
    draws the whole global batch (images and warps) and keeps its share (:func:`draw_batch`,
    :func:`lmcore.geometry.batch_shard`), so its generators stay in step with process 0's, whose
    checkpoint resumes them all."""
    optimizer = make_optimizer([p for p in method.parameters() if p.requires_grad], cfg)
    return Trainables(method, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(cfg)),
                      torch.Generator().manual_seed(cfg.seed * 1000),
                      torch.Generator(device=device).manual_seed(cfg.seed * 1000 + 1))


def _resume(trainables: Trainables, ckpt_path: Path, identity_hash: str, settings: dict, cfg: TrainConfig,
            rank: int) -> LoopState:
    """The loop's state from ``ckpt_path`` (the trainables restored in place), or a fresh one; a
    resume under other settings than the checkpoint's is announced, since it is not bit-identical."""
    if not ckpt_path.exists():
        return LoopState(segments=[{"from_step": 0, **settings}])
    state = read_training_state(ckpt_path, identity_hash)
    trainables.load_state_dict(state)
    loop = LoopState(state["step"], state["elapsed_s"], state["history"], dict(state.get("interval", {})),
                     int(state.get("interval_steps", 0)))
    written = state.get("settings")
    loop.segments = [dict(s) for s in state.get("segments", [])] or ([{"from_step": 0, **written}] if written else [])
    if loop.step < cfg.steps and (not loop.segments or {k: loop.segments[-1].get(k) for k in settings} != settings):
        loop.segments.append({"from_step": loop.step, **settings})
    loop.resumed_with = {"step": loop.step, **settings, "written_with": dict(written) if written else None,
                         "segments": loop.segments, "same_settings": _same_settings(loop.segments)}
    if loop.step < cfg.steps and written != settings and rank == 0:
        then = (f"it was written with {_describe_settings(written, settings)}" if written
                else "its checkpoint does not record the settings it was written with")
        print(f"resuming step {loop.step} of {ckpt_path.parent} with {_describe_settings(settings, written or {})}; "
              f"{then}: the result {'will' if written else 'may'} not be bit-identical to an uninterrupted run",
              flush=True)
    return loop


def _process_device(cfg: TrainConfig, device: torch.device, local_rank: int, world: int) -> torch.device:
    """This process's device: its own GPU under ``torchrun``; refuses a global batch that the
    processes cannot share equally."""
    if cfg.batch_size % world:
        raise ConfigError(f"setting 'train.batch_size' must be a multiple of the {world} processes (each trains "
                          f"on an equal share of the global batch), got {cfg.batch_size}")
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def _step_terms(model, batch, trainables: Trainables, loop: LoopState, cfg: TrainConfig, device: torch.device,
                shard: tuple[int, int], ckpt_path: Path, name: str) -> tuple[list[str], list[float]]:
    """One optimisation step: the method's loss terms on ``batch``, the NaN guard, backward,
    clipping, the update and the schedule. Returns the terms' names and their values over the
    global batch (the mean of the processes' means, brought to the host once: the guard and the
    log need them, and every process then agrees). ``shard``: (rank, world size)."""
    world = shard[1]
    with batch_shard(*shard), forward_context(cfg, device):
        terms = model(batch, trainables.warp_rng, loop.step)
    names = list(terms)
    values = torch.stack([terms[key].detach().float().reshape(()) for key in names])
    if world > 1:
        dist.all_reduce(values)
        values /= world
    values = values.cpu()
    loss_value = float(values[names.index("loss")])
    if not math.isfinite(loss_value):
        last = load_checkpoint(ckpt_path)["step"] if ckpt_path.exists() else None
        where = (f"the last good checkpoint (step {last}) is kept at {ckpt_path}" if last is not None
                 else "no checkpoint had been written yet")
        raise TrainingDiverged(f"{name}: the loss became {loss_value} at step {loop.step}; "
                               f"{where}. Lower the learning rate or check the input data.")
    trainables.optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    clip_gradients(trainables.method, cfg)
    trainables.optimizer.step()
    trainables.schedule.step()
    return names, values.tolist()


def _log(loop: LoopState, names: list[str], values: list[float], cfg: TrainConfig, started: float,
         trainables: Trainables, evaluate) -> dict | None:
    """Add this step's terms to the log interval; at a log or evaluation step (rank 0), the
    interval's means, the learning rate and ``evaluate(method)`` become the learning curve's entry."""
    for key, value in zip(names, values):
        loop.interval[key] = loop.interval.get(key, 0.0) + value
    loop.interval_steps += 1
    at_eval = cfg.eval_every and (loop.step % cfg.eval_every == 0 or loop.step == cfg.steps)
    if not (loop.step % cfg.log_every == 0 or loop.step == cfg.steps or at_eval):
        return None
    entry = {"step": loop.step, "wall_time_s": round(loop.elapsed + time.perf_counter() - started, 2),
             "lr": trainables.optimizer.param_groups[0]["lr"]}
    entry.update({k: v / loop.interval_steps for k, v in loop.interval.items()})
    loop.interval, loop.interval_steps = {}, 0
    if at_eval and evaluate is not None:
        trainables.method.eval()
        entry.update(evaluate(trainables.method))
        trainables.method.train()
    loop.history.append(entry)
    return entry


def train(method: torch.nn.Module, images: torch.Tensor, cfg: TrainConfig, run_dir: Path, device: torch.device,
          evaluate: Callable[[torch.nn.Module], dict] | None = None, identity: dict | None = None,
          progress: bool = True, stop_after: int | None = None, targets: torch.Tensor | None = None,
          meta: dict | None = None, name: str = "train", pairs: bool = False) -> TrainResult:
    """Train ``method`` on ``images`` (uint8 ``N x 3 x H x W``) for ``cfg.steps`` steps.

    Batches are images; ``(images, targets)`` with ``targets`` (``N x ...``: a supervised
    baseline's points); or with ``pairs``, ``(images_a, images_b)`` of *different* images (C3),
    drawn by :func:`sample_pairs`. ``run_dir/checkpoint.pt`` is written every
    ``cfg.checkpoint_every`` steps and at the end, with ``meta`` (e.g. the commit); a checkpoint of
    the same ``identity`` (the full run config) is resumed. ``evaluate(method)`` (rank 0) makes the
    learning curve every ``cfg.eval_every`` steps; ``stop_after`` ends the call after that many
    steps of it, checkpointing first (how tests interrupt a run); ``name`` labels the progress and
    the errors (``fse/k10``). Raises :class:`TrainingDiverged` on a NaN or infinite loss (the last
    good checkpoint stays), :class:`~lmcore.errors.CorruptCheckpointError` for an unreadable
    checkpoint, :class:`~lmcore.errors.ConfigError` for an invalid ``cfg``.
    """
    cfg.validate()
    if pairs and targets is not None:
        raise ValueError("a method trains on labelled images or on pairs of images, not both")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    identity_hash = config_hash(identity if identity is not None else cfg.as_dict())
    rank, local_rank, world = distributed_context()
    device = _process_device(cfg, device, local_rank, world)
    if rank == 0:
        remove_orphaned_temp_files(run_dir)
    torch.manual_seed(cfg.seed)
    method, model = prepare_for_training(method, cfg, device, world, local_rank)
    if world > 1 and device.type != "cuda" and _has_batchnorm(method) and rank == 0:
        print(f"{name}: BatchNorm statistics are per process on the CPU (SyncBatchNorm needs GPUs), so this "
              f"{world}-process run is not exactly the one-process run on the global batch", flush=True)
    trainables = _trainables(method, cfg, device)
    settings = _settings(device, world)
    loop = _resume(trainables, ckpt_path, identity_hash, settings, cfg, rank)
    resumed_from = loop.step
    if rank == 0:
        repair_kept_copies(run_dir, ckpt_path, loop.step, cfg.keep_every)
    if loop.step >= cfg.steps:
        return TrainResult(loop.step, loop.elapsed, loop.history, resumed_from, loop.resumed_with)

    def checkpoint() -> None:
        if rank == 0:
            _save(ckpt_path, loop, trainables, loop.elapsed + (time.perf_counter() - started),
                  {"identity": identity_hash, "meta": meta or {}, "settings": settings})

    data = prepare_images(images, cfg.resolution, device)
    target_data = targets.to(device) if targets is not None else None
    started = time.perf_counter()
    method.train()
    bar, plain_every = _progress(cfg, loop.step, name, progress and rank == 0)
    steps_this_call = 0
    while loop.step < cfg.steps:
        batch = draw_batch(data, target_data, len(data), cfg.batch_size, trainables.sampler, device, pairs,
                           (rank, world))
        names, values = _step_terms(model, batch, trainables, loop, cfg, device, (rank, world), ckpt_path, name)
        loop.step += 1
        steps_this_call += 1
        bar.update(1)
        if plain_every and (loop.step % plain_every == 0 or loop.step == cfg.steps):
            minutes = (loop.elapsed + time.perf_counter() - started) / 60
            print(f"{name}: step {loop.step}/{cfg.steps}, loss {values[names.index('loss')]:.4g}, {minutes:.1f} min",
                  flush=True)
        entry = _log(loop, names, values, cfg, started, trainables, evaluate) if rank == 0 else None
        if entry is not None:
            bar.set_postfix(loss=f"{entry.get('loss', float('nan')):.4g}")
        keep = cfg.keep_every and loop.step % cfg.keep_every == 0
        if loop.step % cfg.checkpoint_every == 0 or loop.step == cfg.steps or keep:
            checkpoint()
            if keep and rank == 0:
                copy_checkpoint(ckpt_path, run_dir / f"checkpoint-{loop.step:07d}.pt")
        if stop_after is not None and steps_this_call >= stop_after and loop.step < cfg.steps:
            checkpoint()
            break
    bar.close()
    method.eval()
    return TrainResult(loop.step, loop.elapsed + (time.perf_counter() - started), loop.history, resumed_from,
                       loop.resumed_with)


def _save(ckpt_path: Path, loop: LoopState, trainables: Trainables, elapsed: float, extra: dict) -> None:
    """Checkpoint the run (refused, keeping the last good checkpoint, once a weight is not finite)."""
    if not _params_finite(trainables.method):
        raise TrainingDiverged(f"parameters became non-finite before step {loop.step}; kept the last good "
                               f"checkpoint {ckpt_path}")
    save_checkpoint({"step": loop.step, **trainables.state_dict(), "elapsed_s": elapsed, "history": loop.history,
                     "identity": extra["identity"], "meta": extra["meta"], "interval": dict(loop.interval),
                     "interval_steps": loop.interval_steps, "settings": extra["settings"], "segments": loop.segments},
                    ckpt_path)


def _progress(cfg: TrainConfig, step: int, name: str, report: bool):
    """A tqdm bar where a terminal shows it (kept when done); in a pipe or a log, a plain line
    every tenth of the run instead (the bar disabled): ``(bar, steps between plain lines or 0)``."""
    interactive = report and sys.stderr.isatty()
    bar = tqdm(total=cfg.steps, initial=step, disable=not interactive, mininterval=10.0, desc=name, leave=True)
    return bar, (max(1, cfg.steps // 10) if report and not interactive else 0)
