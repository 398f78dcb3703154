"""DDP equals one process: under torchrun every process trains on its share of the same global
batch (its images and its warps), gradients are averaged, and the weights, the learning curve and
a resumed run agree with one process training on the whole batch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lmcore.geometry import batch_shard, draws, random_tps, WarpSpec
from lmcore.config import TrainConfig
from lmcore.training.checkpoint import load_checkpoint
from lmcore.training.loop import draw_batch, sample_pairs, train
from lmcore.errors import ConfigError

HELPERS = Path(__file__).resolve().parent / "helpers"
sys.path.insert(0, str(HELPERS))
import ddp_equivalence  # noqa: E402

# Each weight tensor's difference from the one-process run, as a share of how far that run moved
# it. The gradients agree to ~1e-6 (float32 sums in another order), but Adam's first steps are
# close to lr x sign(gradient), so entries whose gradient is near zero amplify that rounding:
# measured 1 % after 6 steps; training on the wrong images (a batch of 4 instead of the global 8)
# gives 145 %.
RELATIVE_TOLERANCE = 0.02


def test_sharded_draws_are_the_rows_one_process_draws_for_the_global_batch():
    spec = WarpSpec(rotation_deg=10, log2_scale=0.1, translation=0.1, tps_grid=3, tps_std=0.05)
    whole = random_tps(spec, 6, torch.Generator().manual_seed(3))
    for rank in range(3):
        generator = torch.Generator().manual_seed(3)
        with batch_shard(rank, 3):
            part = random_tps(spec, 2, generator)
        assert torch.equal(part.affine, whole.affine[2 * rank:2 * rank + 2])
        assert torch.equal(part.weights, whole.weights[2 * rank:2 * rank + 2])
    assert draws.current_shard() == (0, 1)  # restored on leaving the block


def test_sharded_batches_partition_the_global_batch():
    data = torch.arange(50).float().reshape(50, 1, 1, 1)
    whole = draw_batch(data, None, 50, 8, torch.Generator().manual_seed(1), "cpu", False)
    parts = [draw_batch(data, None, 50, 8, torch.Generator().manual_seed(1), "cpu", False, (r, 2)) for r in range(2)]
    assert torch.equal(torch.cat(parts), whole)
    a, b = draw_batch(data, None, 50, 8, torch.Generator().manual_seed(1), "cpu", True, (1, 2))
    first, second = sample_pairs(50, 8, torch.Generator().manual_seed(1))
    assert torch.equal(a.flatten(), first[4:].float()) and torch.equal(b.flatten(), second[4:].float())


def test_a_global_batch_that_the_processes_cannot_share_evenly_is_refused(tmp_path, monkeypatch):
    import lmcore.training.loop as loop

    monkeypatch.setattr(loop, "distributed_context", lambda: (0, 0, 3))
    method, config = ddp_equivalence.build()
    cfg = TrainConfig.from_dict(config["train"])  # global batch 8 on 3 processes
    with pytest.raises(ConfigError, match="train.batch_size.*multiple of the 3 processes.*got 8"):
        train(method, torch.zeros(4, 3, 24, 24, dtype=torch.uint8), cfg, tmp_path, torch.device("cpu"))


@pytest.mark.slow
def test_two_processes_under_torchrun_train_the_one_process_run_and_resume_it(tmp_path, one_thread):
    single = ddp_equivalence.run(tmp_path / "single")
    env = dict(os.environ, OMP_NUM_THREADS="1", LMBOOK_PROGRESS="0")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HELPERS / "ddp_equivalence.py"), str(tmp_path / "ddp")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    reference = load_checkpoint(tmp_path / "single" / "checkpoint.pt")
    initial = ddp_equivalence.build()[0].state_dict()
    for run in ("whole", "resumed"):
        state = load_checkpoint(tmp_path / "ddp" / run / "checkpoint.pt")
        assert state["step"] == ddp_equivalence.STEPS
        for key, weights in reference["model"].items():
            moved = (weights - initial[key]).norm().item()
            assert moved > 1e-3, key  # every tensor trained: agreement is not trivial
            share = (state["model"][key] - weights).norm().item() / moved
            assert share < RELATIVE_TOLERANCE, f"{run}: {key} differs from one process by {share:.1%} of its change"
        # the learning curve is that of the global batch, not of process 0's share
        for ours, theirs in zip(state["history"], single.history):
            assert ours["step"] == theirs["step"]
            assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
    resumed = load_checkpoint(tmp_path / "ddp" / "resumed" / "checkpoint.pt")
    assert [s["from_step"] for s in resumed["segments"]] == [0]  # resumed under the same settings
