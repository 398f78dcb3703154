"""One training loop for every method.

A method is an ``nn.Module`` whose ``forward(images, generator, step)`` returns a dict of loss
terms with the total under ``"loss"`` (see :class:`lmcore.methods.base.LandmarkMethod`). The
loop owns everything else: device, seeds, batches, the optimiser and its schedule, gradient
clipping, checkpoints every N steps with resume from the last one, a NaN guard, tqdm progress,
a learning curve, and PyTorch's own DDP when launched under ``torchrun``.

Resuming is exact on the CPU: the checkpoint holds the model, the optimiser, the schedule and
every random generator, so a run interrupted and resumed ends with the same weights as one that
was not (a test checks it).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import TrainingDiverged
from .records import config_hash


@dataclass
class TrainConfig:
    """Optimisation settings shared by every method (method settings live in the method's config)."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam (L2 weight decay, as the papers' regulariser) or adamw
    betas: tuple[float, float] = (0.9, 0.999)
    lr_milestones: tuple[int, ...] = ()  # steps at which the learning rate is multiplied by lr_gamma
    lr_gamma: float = 0.1
    warmup_steps: int = 0
    grad_clip: float | None = None
    resolution: int = 80  # training images are resized to this (evaluation is always at full size)
    checkpoint_every: int = 500
    eval_every: int = 0  # 0: no learning curve
    keep_every: int = 0  # also keep a copy of the checkpoint every N steps (checkpoint-<step>.pt); 0: none
    log_every: int = 50
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        values = dict(values)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        if "lr_milestones" in values:
            values["lr_milestones"] = tuple(values["lr_milestones"])
        return cls(**values)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["betas"] = list(self.betas)
        out["lr_milestones"] = list(self.lr_milestones)
        return out


@dataclass
class TrainResult:
    steps: int
    wall_time_s: float
    history: list = field(default_factory=list)
    resumed_from: int = 0


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


def _make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer '{cfg.optimizer}' (adam or adamw)")


def _lr_factor(cfg: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        value = cfg.lr_gamma ** sum(step >= m for m in cfg.lr_milestones)
        if cfg.warmup_steps and step < cfg.warmup_steps:
            value *= (step + 1) / cfg.warmup_steps
        return value
    return factor


def _save_atomic(payload: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def checkpoint_meta(path: Path) -> dict:
    """The ``meta`` dict stored in a checkpoint by :func:`train` (empty if it has none)."""
    return torch.load(path, map_location="cpu", weights_only=True).get("meta", {})


def _params_finite(module: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in module.parameters())


def train(
    method: torch.nn.Module,
    images: torch.Tensor,
    cfg: TrainConfig,
    run_dir: Path,
    device: torch.device,
    evaluate: Callable[[torch.nn.Module], dict] | None = None,
    identity: dict | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    targets: torch.Tensor | None = None,
    meta: dict | None = None,
) -> TrainResult:
    """Train ``method`` on ``images`` (uint8 ``N x 3 x H x W``) for ``cfg.steps`` steps.

    With ``targets`` (``N x ...``, e.g. annotated points of a supervised baseline) the method's
    forward receives ``(images, targets)`` batches instead of images alone. ``meta`` (e.g. the git
    commit) is stored in every checkpoint (:func:`checkpoint_meta` reads it back).

    Checkpoints go to ``run_dir/checkpoint.pt`` every ``cfg.checkpoint_every`` steps and at the
    end; if that file exists and was written for the same ``identity`` (the full run config),
    training resumes from it. ``evaluate(method)`` (rank 0 only) is called every
    ``cfg.eval_every`` steps for the learning curve. ``stop_after`` ends the call after that many
    steps *of this call* (checkpointing first), which is how tests simulate an interruption.

    Raises :class:`TrainingDiverged` if the loss becomes NaN or infinite; the checkpoint on disk
    is then the last good one.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    identity_hash = config_hash(identity if identity is not None else cfg.as_dict())
    rank, local_rank, world = distributed_context()
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)

    torch.manual_seed(cfg.seed)
    method.to(device)
    model = method
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(method, device_ids=[local_rank] if device.type == "cuda" else None)
    optimizer = _make_optimizer([p for p in method.parameters() if p.requires_grad], cfg)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(cfg))
    sampler = torch.Generator().manual_seed(cfg.seed * 1000 + rank)
    warp_rng = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank + 1)
    step, elapsed, history = 0, 0.0, []

    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if state.get("identity") != identity_hash:
            raise RuntimeError(
                f"{ckpt_path} was written by a run with another configuration; "
                "delete the folder or choose another run name")
        method.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        sampler.set_state(state["sampler"])
        warp_rng.set_state(state["warp_rng"])
        torch.set_rng_state(state["torch_rng"])
        step, elapsed, history = state["step"], state["elapsed_s"], state["history"]
    resumed_from = step

    def checkpoint() -> None:
        if rank != 0:
            return
        if not _params_finite(method):
            raise TrainingDiverged(f"parameters became non-finite before step {step}; kept the last good checkpoint {ckpt_path}")
        _save_atomic({
            "step": step, "model": method.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(), "sampler": sampler.get_state(), "warp_rng": warp_rng.get_state(),
            "torch_rng": torch.get_rng_state(), "elapsed_s": elapsed + (time.perf_counter() - t0),
            "history": history, "identity": identity_hash, "meta": meta or {},
        }, ckpt_path)

    if step >= cfg.steps:
        return TrainResult(step, elapsed, history, resumed_from)

    data = prepare_images(images, cfg.resolution, device)
    target_data = targets.to(device) if targets is not None else None
    n = len(data)
    t0 = time.perf_counter()
    method.train()
    interval: dict[str, float] = {}
    interval_steps = 0
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress or rank != 0, mininterval=10.0,
               desc=getattr(method, "name", "train"), leave=False)
    steps_this_call = 0
    while step < cfg.steps:
        index = torch.randint(n, (cfg.batch_size,), generator=sampler)
        index = index.to(device)
        batch = data[index] if target_data is None else (data[index], target_data[index])
        terms = model(batch, warp_rng, step)
        loss = terms["loss"]
        if not torch.isfinite(loss.detach()).all():
            last = torch.load(ckpt_path, map_location="cpu", weights_only=True)["step"] if ckpt_path.exists() else None
            where = f"the last good checkpoint (step {last}) is kept at {ckpt_path}" if last is not None else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"{getattr(method, 'name', 'training')}: the loss became {loss.item()} at step {step}; "
                f"{where}. Lower the learning rate or check the input data.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(method.parameters(), cfg.grad_clip)
        optimizer.step()
        schedule.step()
        step += 1
        steps_this_call += 1
        bar.update(1)
        for key, value in terms.items():
            interval[key] = interval.get(key, 0.0) + float(value.detach())
        interval_steps += 1
        at_log = step % cfg.log_every == 0 or step == cfg.steps
        at_eval = cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps)
        if (at_log or at_eval) and rank == 0:
            entry = {"step": step, "wall_time_s": round(elapsed + time.perf_counter() - t0, 2),
                     "lr": optimizer.param_groups[0]["lr"]}
            entry.update({k: v / interval_steps for k, v in interval.items()})
            interval, interval_steps = {}, 0
            if at_eval and evaluate is not None:
                method.eval()
                entry.update(evaluate(method))
                method.train()
            history.append(entry)
            bar.set_postfix(loss=f"{entry.get('loss', float('nan')):.4g}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or (cfg.keep_every and step % cfg.keep_every == 0):
            checkpoint()
            if cfg.keep_every and step % cfg.keep_every == 0 and rank == 0:
                shutil.copy2(ckpt_path, run_dir / f"checkpoint-{step:07d}.pt")
        if stop_after is not None and steps_this_call >= stop_after and step < cfg.steps:
            checkpoint()
            break
    bar.close()
    method.eval()
    total = elapsed + (time.perf_counter() - t0)
    return TrainResult(step, total, history, resumed_from)
