"""The released Sanchez step (ESanchezLozano/SAIC-Unsupervised-landmark-detection-NeurIPS2019,
commit f85093f: model.py's ``model.forward`` with train.py's two Adam updates) beside lmbook's
``paper`` Sanchez step (proposed mode: the code's generator, loss and projected 3x3 convolutions),
at 128 px, batch 8, on the CPU with the same thread count, in one process, rounds alternating::

    python tools/sanchez_authors_step.py AUTHORS_CHECKOUT [--rounds 3] [--steps 3] [--threads 2] [--also-bf16]

``AUTHORS_CHECKOUT`` is a checkout of their repository (``git clone`` it; nothing of it is copied into
lmbook): this script imports its MTFAN.py, model.py and utils.py. Their code is written for CUDA:
``.cuda()`` and ``.to('cuda')`` are made no-ops for the tensors and modules it moves, cv2 (used only
by their data pipeline, which is not timed) is a stub, and their FAN checkpoint is replaced by the
initial weights (a step's cost does not depend on the weights). Their torchvision VGG16 gets the
ImageNet weights lmbook uses. Writes ``results/bench/authors/sanchez.json`` (``lmcore.book.speed``
shows it in chapter 7).
"""
import argparse
import json
import os
import statistics
import sys
import time
import types

import torch

parser = argparse.ArgumentParser()
parser.add_argument("authors")
parser.add_argument("--out", default=None, help="default: results/bench/authors/sanchez.json")
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--steps", type=int, default=3)
parser.add_argument("--warmup", type=int, default=1)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("--also-bf16", action="store_true")
args = parser.parse_args()
torch.set_num_threads(args.threads)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import lmcore  # noqa: E402  (torchvision importable on the CPU build)
from lmcore.data.weights import load_vgg16_features_state_dict  # noqa: E402
from lmcore.training.bench import run_step_cost  # noqa: E402
from lmcore.training.records import describe_device, git_commit, now_iso  # noqa: E402

# --- their code on the CPU
sys.modules.setdefault("cv2", types.ModuleType("cv2"))
sys.path.insert(0, args.authors)
_to = torch.Tensor.to
torch.Tensor.cuda = lambda self, *a, **k: self
torch.Tensor.to = lambda self, *a, **k: self if (a and a[0] == "cuda") or k.get("device") == "cuda" else _to(self, *a, **k)
_mto = torch.nn.Module.to
torch.nn.Module.to = lambda self, *a, **k: self if (a and a[0] == "cuda") else _mto(self, *a, **k)
import MTFAN  # noqa: E402
import model as their_model  # noqa: E402
import utils as their_utils  # noqa: E402
from torchvision.models.vgg import vgg16  # noqa: E402


def their_trainer():
    """model.model(option='incremental', size=128, npts=10) built as its __init__ does, on the CPU
    and without the checkpoint; the two Adams of train.py."""
    m = their_model.model.__new__(their_model.model)
    m.npoints, m.gradclip = 10, 1
    m.FAN = MTFAN.FAN(1, n_points=10)
    m.FAN.apply(MTFAN.convertLayer)  # option 'incremental': 3x3 convolutions projected
    m.BOT = MTFAN.GeoDistill(sigma=0.5, temperature=0.1, out_res=32)
    m.GEN = their_model.Generator(conv_dim=32, c_dim=10)
    m.FAN.train(), m.BOT.train(), m.GEN.train()
    net = vgg16()
    net.features.load_state_dict(load_vgg16_features_state_dict())
    m.loss_network = their_utils.LossNetwork(net)
    m.loss_network.eval()
    m.loss = dict.fromkeys(["rec"])
    m.SelfLoss, m.PerceptualLoss = torch.nn.MSELoss(), torch.nn.MSELoss()
    opt_fan = torch.optim.Adam(m.FAN.parameters(), lr=1e-3, betas=(0.0, 0.9), weight_decay=5e-4)
    opt_gen = torch.optim.Adam(m.GEN.parameters(), lr=1e-3, betas=(0.0, 0.9), weight_decay=5e-4)
    return m, opt_fan, opt_gen


def their_cost(steps, warmup):
    torch.manual_seed(0)
    m, opt_fan, opt_gen = their_trainer()
    images = torch.rand(4 * args.batch, 3, 128, 128)
    g = torch.Generator().manual_seed(0)
    times = []
    for step in range(warmup + steps):
        index = torch.randint(len(images), (2, args.batch), generator=g)
        m._set_batch({"Im": images[index[0]], "ImP": images[index[1]]})  # requires_grad=True, as theirs
        start = time.perf_counter()
        m.forward()  # zero_grad, FAN, bottleneck, generator, loss, backward, clipping
        opt_gen.step()
        opt_fan.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def ours_cost(steps, warmup, train=None):
    overrides = {"method": {"mode": "proposed"}, "train": {"batch_size": args.batch, **(train or {})}}
    torch.manual_seed(0)
    return run_step_cost("sanchez", "paper", overrides, steps=steps, warmup=warmup, n_images=4 * args.batch,
                         trained_parents=False)["step_ms"]


arms = {"authors": lambda: their_cost(args.steps, args.warmup), "lmbook": lambda: ours_cost(args.steps, args.warmup)}
if args.also_bf16:
    arms["lmbook bf16"] = lambda: ours_cost(args.steps, args.warmup, {"precision": "bf16"})
runs = {name: [] for name in arms}
load_start = [round(v, 2) for v in os.getloadavg()]
started = time.perf_counter()
for r in range(args.rounds):
    order = list(arms) if r % 2 == 0 else list(arms)[::-1]
    for name in order:
        runs[name].append(round(arms[name](), 1))
        print(r, name, runs[name][-1], flush=True)
median = {name: round(statistics.median(v), 1) for name, v in runs.items()}
command = "python tools/sanchez_authors_step.py AUTHORS_CHECKOUT " + " ".join(a for a in sys.argv[2:])
record = {"kind": "authors-step", "method": "sanchez", "created": now_iso(), "commit": git_commit(), "command": command.strip(),
          "authors": {"repository": "ESanchezLozano/SAIC-Unsupervised-landmark-detection-NeurIPS2019", "commit": "f85093f",
                      "step": "model.py model.forward (FAN with 3x3 projections, GeoDistill, Generator, VGG16 "
                              "relu1_2..relu4_3 + pixel MSE, backward, per-network clipping) + train.py's two Adam steps; "
                              "inputs with requires_grad=True as its _set_batch; data pipeline (cv2 rotations) not timed"},
          "lmbook": {"method": "sanchez", "profile": "paper", "overrides": {"method": {"mode": "proposed"}},
                     "step": "lmcore.training.bench.step_cost: forward (rotation warps included), backward, clipping, Adam"},
          "settings": {"px": 128, "batch_size": args.batch, "threads": args.threads, "device": "cpu"},
          "rounds": args.rounds, "steps_timed": args.steps, "warmup": args.warmup, "runs_ms": runs, "step_ms": median,
          "ratio_authors_over_lmbook": round(median["authors"] / median["lmbook"], 2),
          "device": describe_device(torch.device("cpu")),
          "load": {"start": load_start, "end": [round(v, 2) for v in os.getloadavg()]},
          "wall_time_s": round(time.perf_counter() - started, 1)}
if "lmbook bf16" in median:
    record["ratio_authors_over_lmbook_bf16"] = round(median["authors"] / median["lmbook bf16"], 2)
out = args.out or os.path.join(ROOT, "results", "bench", "authors", "sanchez.json")
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as fh:
    json.dump(record, fh, indent=1)
    fh.write("\n")
print(json.dumps({k: record[k] for k in ("step_ms", "ratio_authors_over_lmbook")}))
