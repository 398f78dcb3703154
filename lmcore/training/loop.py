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

Files are written atomically (temp file, fsync, rename, fsync of the folder): a killed process
leaves either the previous file or the new one, plus at worst a ``.NAME.tmp<pid>`` temp file that
the next :func:`train` in that folder removes. A checkpoint that cannot be read is a
:class:`~lmcore.errors.CorruptCheckpointError` naming the file.
"""
from __future__ import annotations

import contextlib
import difflib
import math
import os
import re
import shutil
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import ConfigError, CorruptCheckpointError, TrainingDiverged
from ..files import fsync_dir, pid_alive
from ..geometry.draws import batch_shard
from .records import config_hash


@dataclass
class TrainConfig:
    """Optimisation settings shared by every method (method settings live in the method's config)."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    weight_decay_on: str = "all"  # all parameters, or conv_weights: convolution kernels only (Jakab's code)
    optimizer: str = "adam"  # adam (L2 weight decay, as the papers' regulariser) or adamw
    betas: tuple[float, float] = (0.9, 0.999)
    lr_milestones: tuple[int, ...] = ()  # steps at which the learning rate is multiplied by lr_gamma
    lr_gamma: float = 0.1
    warmup_steps: int = 0
    grad_clip: float | None = None
    # the norm of all gradients together, per_tensor (each tensor's: Jakab's code) or per_network
    # (each of the method's clip_groups: Sanchez's code clips its detector and generator apart)
    grad_clip_mode: str = "global"
    resolution: int = 80  # training images are resized to this (evaluation is always at full size)
    checkpoint_every: int = 500
    eval_every: int = 0  # 0: no learning curve
    keep_every: int = 0  # also keep a copy of the checkpoint every N steps (checkpoint-<step>.pt); 0: none
    log_every: int = 50
    seed: int = 0
    # GPU options (see the README's "Speed and scale" section and python -m lmcore.bench for their measured effect)
    precision: str = "fp32"  # fp32, or bf16: the forward pass under torch.autocast (bfloat16)
    channels_last: bool = False  # the networks' weights in channels-last memory format
    compile: bool = False  # torch.compile the method's forward pass
    # start from a committed reference's weights ("method/run" of the model zoo, lmcore.zoo) with a
    # fresh optimiser; "" starts from the method's initialisation
    init_from: str = ""

    @classmethod
    def from_dict(cls, values: dict, prefix: str = "train.") -> "TrainConfig":
        """Build and :meth:`validate` a config; errors name keys as ``prefix + key`` (``train.steps``)."""
        if not isinstance(values, dict):
            raise ConfigError(f"setting '{prefix.rstrip('.')}' must be a group of settings, got {_shown(values)}")
        known = [f.name for f in fields(cls)]
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
                raise ConfigError(f"unknown setting '{prefix}{key}'{hint} (known: {', '.join(sorted(known))})")
        given = values
        values = dict(values)
        for key in ("betas", "lr_milestones"):  # JSON lists -> tuples (anything else is reported by validate)
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values).validate(prefix, given)

    def validate(self, prefix: str = "train.", given: dict | None = None) -> "TrainConfig":
        """Raise :class:`ConfigError` (one line: the key, the bad value, what is allowed) for a
        value of a wrong type or outside its range; return ``self`` otherwise. ``given``: the
        values as the user wrote them, shown in the message (default: this config's)."""
        def fail(key: str, allowed: str) -> None:
            value = given[key] if given is not None and key in given else getattr(self, key)
            raise ConfigError(f"setting '{prefix}{key}' must be {allowed}, got {_shown(value)}")

        for key, low in _INT_MINIMA.items():
            value = getattr(self, key)
            high = _INT_MAXIMA.get(key)
            if not _is_int(value) or value < low or (high is not None and value > high):
                fail(key, f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]")
        for key in ("lr", "lr_gamma"):
            value = getattr(self, key)
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                fail(key, "a number > 0")
        if not _is_number(self.weight_decay) or not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            fail("weight_decay", "a number >= 0")
        if self.grad_clip is not None and (not _is_number(self.grad_clip) or not math.isfinite(self.grad_clip)
                                           or self.grad_clip <= 0):
            fail("grad_clip", "null (no clipping) or a number > 0")
        if not isinstance(self.optimizer, str) or self.optimizer not in OPTIMIZERS:
            fail("optimizer", " or ".join(repr(o) for o in OPTIMIZERS))
        if not isinstance(self.grad_clip_mode, str) or self.grad_clip_mode not in CLIP_MODES:
            fail("grad_clip_mode", " or ".join(repr(o) for o in CLIP_MODES))
        if not isinstance(self.weight_decay_on, str) or self.weight_decay_on not in DECAY_TARGETS:
            fail("weight_decay_on", " or ".join(repr(o) for o in DECAY_TARGETS))
        if not isinstance(self.precision, str) or self.precision not in PRECISIONS:
            fail("precision", " or ".join(repr(p) for p in PRECISIONS))
        for key in ("channels_last", "compile"):
            if not isinstance(getattr(self, key), bool):
                fail(key, "true or false")
        if not isinstance(self.init_from, str) or (self.init_from and not re.fullmatch(r"[a-z0-9_]+/[A-Za-z0-9._-]+",
                                                                                       self.init_from)):
            fail("init_from", "a model of the zoo as method/run (python -m lmcore.detect --list), or \"\"")
        if (not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2
                or not all(_is_number(b) and 0 <= b < 1 for b in self.betas)):
            fail("betas", "two numbers in [0, 1)")
        if (not isinstance(self.lr_milestones, (list, tuple))
                or not all(_is_int(m) and 1 <= m <= self.steps for m in self.lr_milestones)):
            fail("lr_milestones", f"a list of integer steps in [1, {self.steps}] ({prefix}steps)")
        return self

    def as_dict(self) -> dict:
        out = asdict(self)
        out["betas"] = list(self.betas)
        out["lr_milestones"] = list(self.lr_milestones)
        return out


OPTIMIZERS = ("adam", "adamw")
CLIP_MODES = ("global", "per_tensor", "per_network")
DECAY_TARGETS = ("all", "conv_weights")
PRECISIONS = ("fp32", "bf16")
_INT_MINIMA = {"steps": 1, "batch_size": 1, "checkpoint_every": 1, "log_every": 1, "eval_every": 0,
               "keep_every": 0, "warmup_steps": 0, "resolution": 8, "seed": 0}
# beyond these a run hangs or fails deep inside an allocation: refused as one line instead
_INT_MAXIMA = {"steps": 10**8, "batch_size": 65536, "resolution": 1024}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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


_TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")  # .checkpoint.pt.tmp1234
_KEPT_COPY = re.compile(r"^checkpoint-(?P<step>\d+)\.pt$")
CHECKPOINT_ADVICE = "delete it to restart the run from step 0, or rerun with --force (LMBOOK_RETRAIN=1)"


@contextlib.contextmanager
def _atomic_writer(path: Path):
    """A binary file handle on ``.NAME.tmp<pid>`` beside ``path``: flushed, fsynced and renamed
    onto ``path`` on success (then the folder is fsynced), removed on any failure."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def _save_atomic(payload: dict, path: Path) -> None:
    with _atomic_writer(path) as fh:
        torch.save(payload, fh)


def _copy_atomic(src: Path, dst: Path) -> None:
    with open(src, "rb") as source, _atomic_writer(dst) as fh:
        shutil.copyfileobj(source, fh, 1 << 20)


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """``torch.load`` of a checkpoint (weights only); a file that cannot be read (truncated by a
    killed process or a full disk, or not a checkpoint) raises :class:`CorruptCheckpointError`
    naming it and saying what to do. A file whose objects torch's weights-only unpickler refuses
    (e.g. a pickle that would call ``os.system``) is told apart from a truncated one: it was
    refused before anything in it ran, and it is no lost run. A missing file is
    ``FileNotFoundError`` as usual."""
    import pickle

    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError, MemoryError):
        raise
    except Exception as exc:
        text = str(exc).replace("\x1b[1m", "").replace("\x1b[0m", "")
        weights_only_refusal = isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text
        if weights_only_refusal:
            # torch's text: advice, then "WeightsUnpickler error: <what>" or a blank line and <what>
            parts = [p.strip() for p in text.split("\n\n") if p.strip() and not p.strip().startswith("Check the doc")]
            what = (parts[-1] if parts else text).rsplit("WeightsUnpickler error:", 1)[-1]
            detail = " ".join(what.split(". ")[0].split())[:160].rstrip(".") or "an object that is not a tensor"
            # Refused, not cut short, when the whole archive is there (a cut zip fails before any
            # unpickling) or a blocked module is named (a cut name cannot be one); a cut pickle of
            # the old format can also end in a refused name, so it keeps the "cut short" wording.
            if _complete_checkpoint_file(path) or "is blocked" in detail:
                raise CorruptCheckpointError(
                    f"{path} holds objects a checkpoint never holds ({detail}); torch's weights-only loader "
                    f"refused it without running them. Never load it with weights_only=False unless you "
                    f"made it yourself: {CHECKPOINT_ADVICE}") from exc
            detail = f"UnpicklingError: {detail}"
        else:
            detail = next((line.strip() for line in text.splitlines() if line.strip()), "")
            detail = f"{type(exc).__name__}: {detail[:160]}" if detail else type(exc).__name__
        raise CorruptCheckpointError(
            f"{path} is not a readable checkpoint ({detail}); it was probably cut short by a killed "
            f"process or a full disk: {CHECKPOINT_ADVICE}") from exc
    if not isinstance(state, dict):
        raise CorruptCheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint: {CHECKPOINT_ADVICE}")
    return state


def checkpoint_meta(path: Path) -> dict:
    """The ``meta`` dict stored in a checkpoint by :func:`train` (empty if it has none)."""
    return load_checkpoint(path).get("meta", {})


def remove_orphaned_temp_files(folder: Path) -> list[Path]:
    """Remove ``.NAME.tmp<pid>`` files in ``folder`` whose process is gone (a killed run's
    half-written checkpoint or record); those of live processes are kept. Returns the removed."""
    removed = []
    for path in sorted(Path(folder).glob(".*.tmp*")):
        match = _TEMP_FILE.match(path.name)
        if match and path.is_file() and not path.is_symlink() and not pid_alive(int(match["pid"])):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    if removed:
        print(f"removed {len(removed)} temp file(s) left in {folder} by killed processes: "
              + ", ".join(p.name for p in removed), flush=True)
    return removed


def _complete_checkpoint_file(path: Path) -> bool:
    """Cheap test that a checkpoint file was written to its end: torch's zip archive has its
    central directory (listing ``data.pkl``) last, so a truncated file fails it."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


def _repair_kept_copies(run_dir: Path, ckpt_path: Path, resumed_step: int, keep_every: int) -> None:
    """Remove truncated kept copies (``checkpoint-<step>.pt`` of an interrupted copy), and write
    the kept copy of the resumed step again from ``checkpoint.pt`` when it is missing (a run
    killed between its checkpoint and the copy)."""
    redo_step = resumed_step if keep_every and resumed_step > 0 and resumed_step % keep_every == 0 else None
    if redo_step is not None and not ckpt_path.exists():
        redo_step = None
    announced = False
    for path in sorted(run_dir.glob("checkpoint-*.pt")):
        match = _KEPT_COPY.match(path.name)
        if match is None or not path.is_file() or _complete_checkpoint_file(path):
            continue
        step = int(match["step"])
        path.unlink()
        announced = announced or step == redo_step
        print(f"removed the truncated kept checkpoint {path} (its copy was interrupted); "
              + ("it is written again from checkpoint.pt" if step == redo_step else
                 f"step {step} cannot be re-created without training again"), flush=True)
    if redo_step is not None:
        kept = run_dir / f"checkpoint-{redo_step:07d}.pt"
        if not kept.exists():
            _copy_atomic(ckpt_path, kept)
            if not announced:
                print(f"wrote the missing kept checkpoint {kept} from checkpoint.pt (step {redo_step})", flush=True)


_STATE_KEYS = ("step", "model", "optimizer", "schedule", "sampler", "warp_rng", "torch_rng", "elapsed_s", "history")


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


def _draw_batch(data, target_data, n: int, batch_size: int, sampler: torch.Generator, device, pairs: bool,
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
    name: str = "train",
    pairs: bool = False,
) -> TrainResult:
    """Train ``method`` on ``images`` (uint8 ``N x 3 x H x W``) for ``cfg.steps`` steps.

    With ``targets`` (``N x ...``, e.g. annotated points of a supervised baseline) the method's
    forward receives ``(images, targets)`` batches instead of images alone. With ``pairs`` it
    receives ``(images_a, images_b)``: two batches of *different* images (unpaired data, C3),
    drawn by :func:`sample_pairs` from the same sampler, so a resumed run draws the same pairs.
    ``meta`` (e.g. the git
    commit) is stored in every checkpoint (:func:`checkpoint_meta` reads it back). ``name`` labels
    the progress bar and the error messages (e.g. ``fse/k10``).

    Checkpoints go to ``run_dir/checkpoint.pt`` every ``cfg.checkpoint_every`` steps and at the
    end; if that file exists and was written for the same ``identity`` (the full run config),
    training resumes from it. ``evaluate(method)`` (rank 0 only) is called every
    ``cfg.eval_every`` steps for the learning curve. ``stop_after`` ends the call after that many
    steps *of this call* (checkpointing first), which is how tests simulate an interruption.

    Raises :class:`TrainingDiverged` if the loss becomes NaN or infinite; the checkpoint on disk
    is then the last good one. Raises :class:`~lmcore.errors.CorruptCheckpointError` if
    ``checkpoint.pt`` cannot be read, :class:`~lmcore.errors.ConfigError` for invalid ``cfg``.

    On rank 0 it first removes temp files of killed processes from ``run_dir`` and kept copies
    (``checkpoint-<step>.pt``) that an interrupted copy left truncated. A resumed run reports the
    settings it was resumed under in :attr:`TrainResult.resumed_with`.
    """
    cfg.validate()
    if pairs and targets is not None:
        raise ValueError("a method trains on labelled images or on pairs of images, not both")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    identity_hash = config_hash(identity if identity is not None else cfg.as_dict())
    rank, local_rank, world = distributed_context()
    if cfg.batch_size % world:
        raise ConfigError(f"setting 'train.batch_size' must be a multiple of the {world} processes (each trains "
                          f"on an equal share of the global batch), got {cfg.batch_size}")
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if rank == 0:
        remove_orphaned_temp_files(run_dir)

    torch.manual_seed(cfg.seed)
    method, model = prepare_for_training(method, cfg, device, world, local_rank)
    if world > 1 and device.type != "cuda" and _has_batchnorm(method) and rank == 0:
        print(f"{name}: BatchNorm statistics are per process on the CPU (SyncBatchNorm needs GPUs), so this "
              f"{world}-process run is not exactly the one-process run on the global batch", flush=True)
    optimizer = make_optimizer([p for p in method.parameters() if p.requires_grad], cfg)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(cfg))
    # The same seeds on every process: each draws the whole global batch (images and warps) and
    # keeps its share (_draw_batch, geometry.batch_shard), so its generators stay in step with
    # process 0's, whose checkpoint resumes them all.
    sampler = torch.Generator().manual_seed(cfg.seed * 1000)
    warp_rng = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + 1)
    step, elapsed, history = 0, 0.0, []
    interval: dict[str, float] = {}  # loss sums since the last log point (checkpointed)
    interval_steps = 0
    settings = _settings(device, world)
    segments = [{"from_step": 0, **settings}]  # the settings each stretch of the run ran under
    resumed_with = None

    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise CorruptCheckpointError(f"{ckpt_path} is not a checkpoint of this training loop (it lacks "
                                         f"{', '.join(missing)}): {CHECKPOINT_ADVICE}")
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
        interval, interval_steps = dict(state.get("interval", {})), int(state.get("interval_steps", 0))
        written = state.get("settings")
        segments = [dict(s) for s in state.get("segments", [])] or (
            [{"from_step": 0, **written}] if written else [])
        if step < cfg.steps and (not segments or {k: segments[-1].get(k) for k in settings} != settings):
            segments.append({"from_step": step, **settings})
        resumed_with = {"step": step, **settings, "written_with": dict(written) if written else None,
                        "segments": segments, "same_settings": _same_settings(segments)}
        if step < cfg.steps and written != settings and rank == 0:
            then = (f"it was written with {_describe_settings(written, settings)}" if written
                    else "its checkpoint does not record the settings it was written with")
            print(f"resuming step {step} of {run_dir} with {_describe_settings(settings, written or {})}; {then}: "
                  f"the result {'will' if written else 'may'} not be bit-identical to an uninterrupted run", flush=True)
    resumed_from = step
    if rank == 0:
        _repair_kept_copies(run_dir, ckpt_path, step, cfg.keep_every)

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
            "interval": dict(interval), "interval_steps": interval_steps,
            "settings": settings, "segments": segments,
        }, ckpt_path)

    if step >= cfg.steps:
        return TrainResult(step, elapsed, history, resumed_from, resumed_with)

    data = prepare_images(images, cfg.resolution, device)
    target_data = targets.to(device) if targets is not None else None
    n = len(data)
    t0 = time.perf_counter()
    method.train()
    # a bar where a terminal shows it (kept when done); in a pipe or a log, a plain line every tenth
    report = progress and rank == 0
    interactive = report and sys.stderr.isatty()
    bar = tqdm(total=cfg.steps, initial=step, disable=not interactive, mininterval=10.0, desc=name, leave=True)
    plain_every = max(1, cfg.steps // 10) if report and not interactive else 0
    steps_this_call = 0
    while step < cfg.steps:
        batch = _draw_batch(data, target_data, n, cfg.batch_size, sampler, device, pairs, (rank, world))
        with batch_shard(rank, world), forward_context(cfg, device):
            terms = model(batch, warp_rng, step)
        loss = terms["loss"]
        # the terms of the global batch (the mean of the processes' means), brought to the host
        # once per step: the NaN guard and the log need them, and every process then agrees
        names = list(terms)
        values = torch.stack([terms[key].detach().float().reshape(()) for key in names])
        if world > 1:
            dist.all_reduce(values)
            values /= world
        values = values.cpu()
        loss_value = float(values[names.index("loss")])
        if not math.isfinite(loss_value):
            last = load_checkpoint(ckpt_path)["step"] if ckpt_path.exists() else None
            where = f"the last good checkpoint (step {last}) is kept at {ckpt_path}" if last is not None else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"{name}: the loss became {loss_value} at step {step}; "
                f"{where}. Lower the learning rate or check the input data.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(method, cfg)
        optimizer.step()
        schedule.step()
        step += 1
        steps_this_call += 1
        bar.update(1)
        if plain_every and (step % plain_every == 0 or step == cfg.steps):
            minutes = (elapsed + time.perf_counter() - t0) / 60
            print(f"{name}: step {step}/{cfg.steps}, loss {loss_value:.4g}, {minutes:.1f} min", flush=True)
        for key, value in zip(names, values.tolist()):
            interval[key] = interval.get(key, 0.0) + value
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
                _copy_atomic(ckpt_path, run_dir / f"checkpoint-{step:07d}.pt")
        if stop_after is not None and steps_this_call >= stop_after and step < cfg.steps:
            checkpoint()
            break
    bar.close()
    method.eval()
    total = elapsed + (time.perf_counter() - t0)
    return TrainResult(step, total, history, resumed_from, resumed_with)
