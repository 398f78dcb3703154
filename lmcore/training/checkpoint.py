"""The training loop's files: checkpoints, their kept copies, and the temp files a killed
process leaves.

Files are written atomically (:func:`lmcore.files.atomic_writer`: temp file, fsync, rename, fsync
of the folder): a killed process leaves either the previous file or the new one, plus at worst a
``.NAME.tmp<pid>`` temp file that the next training in that folder removes
(:func:`remove_orphaned_temp_files`). A checkpoint that cannot be read is a
:class:`~lmcore.errors.CorruptCheckpointError` naming the file and saying what to do.
"""
from __future__ import annotations

import contextlib
import errno
import re
import shutil
import zipfile
from pathlib import Path

import torch

from ..errors import CorruptCheckpointError
from ..files import atomic_writer, first_line, pid_alive, weights_only_refusal

TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.tmp(?P<pid>\d+)$")  # .checkpoint.pt.tmp1234
KEPT_COPY = re.compile(r"^checkpoint-(?P<step>\d+)\.pt$")
CHECKPOINT_ADVICE = "delete it to restart the run from step 0, or rerun with --force (LMBOOK_RETRAIN=1)"


def save_checkpoint(payload: dict, path: Path) -> None:
    """``torch.save`` of ``payload`` onto ``path``, atomically (:func:`lmcore.files.atomic_writer`).
    A write that stops short (a full disk: torch says ``unexpected pos``) is an ``OSError`` (ENOSPC)
    naming ``path``, as every other failed write is; the temp file is removed."""
    with atomic_writer(path) as fh:
        try:
            torch.save(payload, fh)
        except RuntimeError as exc:
            if "unexpected pos" not in str(exc):
                raise
            raise OSError(errno.ENOSPC, "the checkpoint was written only in part (no space left on the device?)",
                          str(path)) from exc


def copy_checkpoint(src: Path, dst: Path) -> None:
    """A copy of the checkpoint ``src`` at ``dst``, written atomically (a kept copy)."""
    with open(src, "rb") as source, atomic_writer(dst) as fh:
        shutil.copyfileobj(source, fh, 1 << 20)


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """``torch.load`` of a checkpoint (weights only); a file that cannot be read (truncated by a
    killed process or a full disk, or not a checkpoint) raises :class:`CorruptCheckpointError`
    naming it and saying what to do. A file whose objects torch's weights-only unpickler refuses
    (e.g. a pickle that would call ``os.system``) is told apart from a truncated one: it was
    refused before anything in it ran, and it is no lost run. A missing file is
    ``FileNotFoundError`` as usual."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except IsADirectoryError:
        raise CorruptCheckpointError(f"{path} is a folder, not a checkpoint: move it away, or {CHECKPOINT_ADVICE}") from None
    except (FileNotFoundError, PermissionError, MemoryError):
        raise
    except Exception as exc:
        detail = weights_only_refusal(exc)
        if detail is not None:
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
            detail = first_line(exc)
        raise CorruptCheckpointError(
            f"{path} is not a readable checkpoint ({detail}); it was probably cut short by a killed "
            f"process or a full disk: {CHECKPOINT_ADVICE}") from exc
    if not isinstance(state, dict):
        raise CorruptCheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint: {CHECKPOINT_ADVICE}")
    return state


def remove_orphaned_temp_files(folder: Path) -> list[Path]:
    """Remove ``.NAME.tmp<pid>`` files in ``folder`` whose process is gone (a killed run's
    half-written checkpoint or record); those of live processes are kept. Returns the removed."""
    removed = []
    for path in sorted(Path(folder).glob(".*.tmp*")):
        match = TEMP_FILE.match(path.name)
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


def repair_kept_copies(run_dir: Path, ckpt_path: Path, resumed_step: int, keep_every: int) -> None:
    """Remove truncated kept copies (``checkpoint-<step>.pt`` of an interrupted copy), and write
    the kept copy of the resumed step again from ``checkpoint.pt`` when it is missing (a run
    killed between its checkpoint and the copy)."""
    redo_step = resumed_step if keep_every and resumed_step > 0 and resumed_step % keep_every == 0 else None
    if redo_step is not None and not ckpt_path.exists():
        redo_step = None
    announced = False
    for path in sorted(run_dir.glob("checkpoint-*.pt")):
        match = KEPT_COPY.match(path.name)
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
            copy_checkpoint(ckpt_path, kept)
            if not announced:
                print(f"wrote the missing kept checkpoint {kept} from checkpoint.pt (step {redo_step})", flush=True)


#: what a checkpoint of the training loop holds, at least
STATE_KEYS = ("step", "model", "optimizer", "schedule", "sampler", "warp_rng", "torch_rng", "elapsed_s", "history")


def read_training_state(path: Path, identity_hash: str) -> dict:
    """The loop's state saved in the checkpoint ``path`` by a run of identity ``identity_hash``;
    raises :class:`CorruptCheckpointError` for a file that is not a checkpoint of this loop, and
    ``RuntimeError`` for one written by a run of another configuration."""
    state = load_checkpoint(path)
    missing = [key for key in STATE_KEYS if key not in state]
    if missing:
        raise CorruptCheckpointError(f"{path} is not a checkpoint of this training loop (it lacks "
                                     f"{', '.join(missing)}): {CHECKPOINT_ADVICE}")
    if state.get("identity") != identity_hash:
        raise RuntimeError(f"{path} was written by a run with another configuration; "
                           "delete the folder or choose another run name")
    return state
