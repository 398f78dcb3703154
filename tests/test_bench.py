"""The speed tools: timed sections, the step benchmark and its CLI, the GPU options of the loop
(bf16 autocast, channels-last, torch.compile) and the paper-profile projection."""
from __future__ import annotations

import json

import pytest
import torch

from lmcore import bench
from lmcore.config import deep_update
from lmcore.errors import ConfigError, LmbookError
from lmcore.methods import build_method
from lmcore.profiling import measure_sections, modules_as_sections, section, timed
from lmcore.training.bench import PARTS, build_untrained, step_cost
from lmcore.config import TrainConfig
from lmcore.training.loop import forward_context, prepare_for_training, prepare_images
from lmcore.experiments import method_settings

# measured on MTFL-80 faces at the smoke settings: bf16 autocast moves the losses by <= 0.5 %
BF16_TOLERANCE = 0.02


def test_nested_sections_count_once_and_nothing_is_recorded_outside_a_measurement(monkeypatch):
    """A clock that only the fake sleeps advance: exact totals whatever else loads the machine."""
    import lmcore.profiling as profiling

    now = [0.0]
    monkeypatch.setattr(profiling.time, "perf_counter", lambda: now[0])

    def sleep(seconds):
        now[0] += seconds

    @timed("outer")
    def work():
        sleep(0.02)
        with section("inner"):
            sleep(0.02)

    work()  # outside measure_sections: runs, records nothing, fails nothing
    with measure_sections() as totals:
        work()
        with section("inner"):
            sleep(0.01)
    assert set(totals) == {"outer", "inner"}
    # the inner section nested in the outer counted once, as the outer's
    assert totals["outer"] == pytest.approx(0.04) and totals["inner"] == pytest.approx(0.01)


def test_each_module_call_inside_a_method_is_a_section_the_outermost_counting(monkeypatch):
    import lmcore.profiling as profiling

    now = [0.0]
    monkeypatch.setattr(profiling.time, "perf_counter", lambda: now[0])

    class Slow(torch.nn.Module):
        def __init__(self, seconds, inner=None):
            super().__init__()
            self.seconds, self.inner = seconds, inner

        def forward(self, x):
            now[0] += self.seconds
            return x if self.inner is None else self.inner(x)

    class Loss(Slow):
        pass

    class Method(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.loss = Slow(0.02, Slow(0.01)), Loss(0.03, Slow(0.04))

        def forward(self, x):
            now[0] += 0.5  # the method's own work is no network's
            return self.loss(self.net(x))

    method = Method()
    with measure_sections() as totals, modules_as_sections(method, lambda m: "loss" if isinstance(m, Loss) else "nets"):
        method(torch.zeros(1))
    # the net's inner module counts in the net, the loss's network in the loss; the method in neither
    assert totals == pytest.approx({"nets": 0.03, "loss": 0.07})
    method(torch.zeros(1))  # the hooks are gone: nothing more is recorded, nothing fails
    assert totals == pytest.approx({"nets": 0.03, "loss": 0.07})


def test_a_step_is_cut_into_warps_perceptual_networks_and_backward(mtfl, one_thread):
    config = method_settings("jakab").default_config("smoke")
    config = deep_update(config, {"method": {"loss": "perceptual"}})
    torch.manual_seed(0)
    method = build_method("jakab", config)
    cost = step_cost(method, mtfl.split("unsup_train", limit=16).images, TrainConfig.from_dict(config["train"]),
                     steps=2, warmup=1)
    assert cost["warps_ms"] > 0 and cost["perceptual_ms"] > 0 and cost["networks_ms"] > 0
    assert cost["forward_ms"] <= cost["step_ms"]
    parts = cost["warps_ms"] + cost["perceptual_ms"] + cost["networks_ms"]
    assert parts == pytest.approx(cost["forward_ms"], abs=0.3)
    # the whole iteration in parts: the batch, the forward pass's four, the backward pass, the update
    assert tuple(cost["parts_ms"]) == PARTS and all(cost["parts_ms"][p] > 0 for p in PARTS)
    fse_config = method_settings("fse").default_config("smoke")
    fse = step_cost(build_method("fse", fse_config), mtfl.split("unsup_train", limit=16).images,
                    TrainConfig.from_dict(fse_config["train"]), steps=1, warmup=0)
    assert fse["perceptual_ms"] == 0 and fse["warps_ms"] > 0
    assert fse["parts_ms"]["perceptual"] == 0 and fse["parts_ms"]["networks"] > 0 and fse["parts_ms"]["backward"] > 0


@pytest.mark.parametrize("name", ["fse", "zhang", "jakab"])
def test_the_losses_under_bf16_autocast_agree_with_float32(name, mtfl, one_thread):
    config = method_settings(name).default_config("smoke")
    if name == "jakab":
        config = deep_update(config, {"method": {"loss": "perceptual"}})
    torch.manual_seed(0)
    method = build_method(name, config).train()
    cfg = TrainConfig.from_dict(config["train"])
    images = prepare_images(mtfl.split("unsup_train", limit=8).images, cfg.resolution, torch.device("cpu"))
    losses = {}
    start = {k: v.clone() for k, v in method.state_dict().items()}  # the perceptual normalisers move with each call
    for precision in ("fp32", "bf16"):
        cfg.precision = precision
        method.load_state_dict(start)
        with torch.no_grad(), forward_context(cfg, torch.device("cpu")):
            terms = method(images, torch.Generator().manual_seed(1), 0)
        losses[precision] = float(terms["loss"])
        if precision == "bf16":  # the autocast did run: some term was computed in bfloat16
            assert any(t.dtype == torch.bfloat16 for t in _tensors_of_a_forward(method, images, cfg))
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=BF16_TOLERANCE)
    assert losses["bf16"] != losses["fp32"]


def _tensors_of_a_forward(method, images, cfg):
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append(out) if torch.is_tensor(out) else None)
             for m in method.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad(), forward_context(cfg, torch.device("cpu")):
        method(images, torch.Generator().manual_seed(1), 0)
    for h in hooks:
        h.remove()
    return seen


def test_channels_last_changes_the_layout_not_the_loss(mtfl, one_thread):
    config = method_settings("fse").default_config("smoke")
    images = mtfl.split("unsup_train", limit=8).images
    losses = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        cfg = TrainConfig.from_dict(deep_update(config["train"], {"channels_last": channels_last}))
        method, model = prepare_for_training(build_method("fse", config), cfg, torch.device("cpu"))
        conv = next(m for m in method.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == channels_last
        data = prepare_images(images, cfg.resolution, torch.device("cpu"))
        with torch.no_grad():
            losses.append(float(model.train()(data, torch.Generator().manual_seed(1), 0)["loss"]))
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


@pytest.mark.parametrize("method_name", ["zhang", "jakab"])
def test_the_final_evaluations_channels_last_layout_keeps_the_detections(method_name, mtfl, one_thread):
    from lmcore.training.runs import for_inference

    config = method_settings(method_name).default_config("smoke")
    torch.manual_seed(0)
    model = build_method(method_name, config).eval()
    images = mtfl.split("test_mtfl", limit=8).images.float() / 255
    before = model.detect(images)
    assert for_inference(model) is model
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    after = model.detect(images)
    assert torch.allclose(after, before, atol=1e-5) and before.std() > 0


def test_compile_wraps_the_forward_and_keeps_the_checkpointed_module():
    config = method_settings("fse").default_config("smoke")
    cfg = TrainConfig.from_dict(deep_update(config["train"], {"compile": True}))
    plain = build_method("fse", config)
    method, model = prepare_for_training(plain, cfg, torch.device("cpu"))
    assert method is plain and model is not plain and getattr(model, "_orig_mod", None) is plain


@pytest.mark.parametrize("key, value, message", [
    ("precision", "fp16", "'train.precision' must be 'fp32' or 'bf16', got 'fp16'"),
    ("channels_last", "yes", "'train.channels_last' must be true or false, got 'yes'"),
    ("compile", 1, "'train.compile' must be true or false, got 1"),
])
def test_a_bad_speed_option_is_one_clear_error(key, value, message):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({key: value})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_untrained_parents_are_adopted_without_training(isolated_runs):
    model, config = build_untrained("c3", "smoke")
    assert model.flow_run is not None and set(config["parents"]) == {"pairs", "flow"}
    assert not list(isolated_runs.glob("**/record.json"))  # nothing was trained


def _rows(step_ms: dict[str, float]) -> list[dict]:
    return [{"case": label, "method": method, "profile": "paper", "overrides": overrides, "step_ms": step_ms[method],
             "precision": "fp32", "channels_last": False, "compile": False}
            for label, method, overrides in [(c.label, c.method, c.overrides) for c in bench.CASES]]


def test_the_projection_multiplies_each_chapters_steps_by_the_measured_step_time():
    from lmcore.training.runs import resolve_config

    times = {c.method: 100.0 for c in bench.CASES}
    times["fse"] = 360.0
    chapters = {e["chapter"]: e for e in bench.projection(_rows(times), "paper")}
    fse_steps = resolve_config("fse", "paper", {})["train"]["steps"]
    assert chapters["01_fse"]["runs"] == 2  # K = 10 and K = 30
    assert chapters["01_fse"]["hours"] == pytest.approx(2 * fse_steps * 0.360 / 3600, rel=1e-3)
    # the Sanchez chapter pays for its core (a pose run) once, and C3 reuses chapter 3's Jakab runs
    assert chapters["04_sanchez"]["runs"] == 4
    c3 = chapters["05_c3"]
    assert c3["runs"] == 3 and not c3["unmeasured"]  # k10, k30, the flow: the Jakab parents were counted in 03


def test_the_cli_writes_a_record_of_steps_and_ratios(tmp_path, isolated_runs, capsys, one_thread):
    out = tmp_path / "bench.json"
    assert bench.main(["--profiles", "smoke", "--methods", "fse", "zhang", "--steps", "1", "--warmup", "0",
                       "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [r["case"] for r in record["rows"]] == ["FSE", "Zhang"]
    assert record["device"]["type"] == "cpu" and record["commit"] and record["wall_time_s"] > 0
    ratio = next(r for r in record["ratios"] if r["what"] == "Zhang step / FSE step")
    rows = {r["case"]: r for r in record["rows"]}
    assert ratio["ratio"] == pytest.approx(rows["Zhang"]["step_ms"] / rows["FSE"]["step_ms"], abs=0.01)
    assert "4D correlation" in record["ratios"][-1]["what"]


def test_options_are_timed_against_the_profiles_own_settings(tmp_path, isolated_runs, one_thread):
    # FSE's cpu profile trains channels-last and Zhang's does not: each option row flips its own
    # profile's setting, and the ratio names both sides
    changes = {c: bench.option_changes(bench._case(c), "cpu") for c in ("FSE", "Zhang")}
    assert {"channels_last": False} in changes["FSE"] and {"channels_last": True} in changes["Zhang"]
    out = tmp_path / "bench.json"
    assert bench.main(["--profiles", "smoke", "--methods", "fse", "--steps", "1", "--warmup", "0", "--options",
                       "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    plain = [r for r in record["rows"] if bench.is_plain(r)]
    assert len(plain) == 1 and plain[0]["channels_last"]  # the smoke profile inherits the cpu layout
    options = sorted(r["what"] for r in record["ratios"] if r["what"].startswith("FSE:"))
    assert options == ["FSE: bf16 + channels_last / fp32 + channels_last", "FSE: fp32 / fp32 + channels_last"]
    layouts = [r for r in record["ratios"] if r["what"] == "FSE: fp32 / fp32 + channels_last"]
    standard = next(r for r in record["rows"] if not r["channels_last"])
    assert layouts[0]["ratio"] == pytest.approx(standard["step_ms"] / plain[0]["step_ms"], abs=0.01)


#: an earlier commit of this repository (20bc9da: before parts_ms, 2026-12-07) to time against
EARLIER = "20bc9da"


def _has_commit(commit: str) -> bool:
    import subprocess

    from lmcore.paths import PROJECT_ROOT

    return subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=PROJECT_ROOT).returncode == 0


@pytest.mark.skipif(not _has_commit(EARLIER), reason="a shallow clone without the earlier commit")
def test_against_a_commit_each_side_is_timed_under_its_own_code_in_turn(tmp_path, isolated_runs, one_thread):
    out = tmp_path / "bench.json"
    assert bench.main(["--profiles", "smoke", "--methods", "fse", "--steps", "1", "--warmup", "0", "--against", EARLIER,
                       "--rounds", "2", "--also", "precision=bf16", "--out", str(out)]) == 0
    against = json.loads(out.read_text())["against"]
    assert against["commit"].startswith(EARLIER) and against["rounds"] == 2 and against["threads"] == 1
    row = against["rows"][0]
    assert row["case"] == "FSE" and len(row["before"]["runs_ms"]) == len(row["after"]["runs_ms"]) == 2
    # the earlier code's step_cost had no parts: the before side ran it, not this tree's
    assert row["before"]["parts_ms"] == {} and tuple(row["after"]["parts_ms"]) == PARTS
    assert row["speedup"] == pytest.approx(row["before"]["step_ms"] / row["after"]["step_ms"], abs=0.01)
    assert len(row["speedup_per_round"]) == 2
    bf16 = row["also"][0]
    assert bf16["train"] == {"precision": "bf16"} and bf16["speedup"] == pytest.approx(
        row["before"]["step_ms"] / bf16["step_ms"], abs=0.01)


@pytest.mark.parametrize("argv, message", [
    (["--methods", "fsee"], "unknown method 'fsee'"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--compile"], "give --options too"),
    (["--also", "precision=bf16"], "--also and --rounds belong to --against COMMIT"),
])
def test_a_bad_bench_command_is_one_line_and_a_nonzero_exit(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "".join(err)


@pytest.mark.parametrize("argv, message", [
    (["--against", "HEAD", "--also", "precision=fp16"], "'train.precision' must be 'fp32' or 'bf16', got 'fp16'"),
    (["--against", "HEAD", "--also", "precision"], "--also precision: give a training setting as KEY=VALUE"),
    (["--against", "no-such-commit"], "--against no-such-commit: not a commit of this repository"),
])
def test_a_bad_against_setting_is_one_line_before_anything_is_timed(argv, message, capsys, tmp_path):
    out = tmp_path / "bench.json"
    assert bench.main(["--profiles", "smoke", "--methods", "fse", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_that_is_not_there_is_one_line(capsys):
    assert bench.main(["--device", "cuda", "--no-write"]) == 1
    assert capsys.readouterr().err.strip() == "lmcore.bench: --device cuda: this machine has no GPU that PyTorch can use"


def test_the_committed_bench_records_are_read_and_a_broken_one_is_named(tmp_path):
    committed = bench.load_bench_records()
    assert committed and all(r["kind"] == "bench" and r["rows"] for r in committed)
    (tmp_path / "cuda.json").write_text('{"kind": "bench"')
    with pytest.raises(LmbookError, match="cuda.json is not a readable bench record"):
        bench.load_bench_records(tmp_path)
    (tmp_path / "cuda.json").write_text('{"method": "fse"}')
    with pytest.raises(LmbookError, match="cuda.json is not a bench record"):
        bench.load_bench_records(tmp_path)


def test_the_books_bench_is_measured_once_and_reused(isolated_runs, monkeypatch):
    calls = []

    def fake_run(*args, **kwargs):  # the measurement itself is tested above; here only the caching
        calls.append(args)
        from lmcore.training.code_identity import code_fingerprint
        from lmcore.training.records import describe_device

        return {"kind": "bench", "created": "now", "commit": "c", "device": describe_device(torch.device("cpu")),
                "rows": [], "ratios": [], "correlation": [], "projection": {}, "wall_time_s": 0.0,
                "code_fingerprint": code_fingerprint()}

    monkeypatch.setattr(bench, "run_bench", fake_run)
    first, reused_first = bench.book_bench("smoke", torch.device("cpu"))
    second, reused_second = bench.book_bench("smoke", torch.device("cpu"))
    assert (reused_first, reused_second) == (False, True) and len(calls) == 1
    (isolated_runs / "smoke" / "bench" / "cpu.json").write_text("{")  # cut short: measured again
    assert bench.book_bench("smoke", torch.device("cpu"))[1] is False and len(calls) == 2


def test_a_stray_world_size_is_one_line_before_anything_is_measured(monkeypatch, capsys, tmp_path):
    """WORLD_SIZE=2 without torchrun (issue 43): one line and exit 2, no record."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "bench.json"
    assert bench.main(["--profiles", "smoke", "--methods", "fse", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m lmcore.bench: error: ") and "without torchrun" in err[0]
    assert not out.exists()
