import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lmcore  # noqa: E402  (installs the torchvision fallback before any test imports torchvision)

# pytest-xdist's workers (tools/run_tests.py) each keep their runs in a folder of their own, so that
# two never train the same run at once
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("LMBOOK_RUNS"):
    os.environ["LMBOOK_RUNS"] = f"{os.environ['LMBOOK_RUNS']}-{os.environ['PYTEST_XDIST_WORKER']}"


@pytest.fixture(scope="session")
def mtfl():
    from lmcore.data import MTFL80

    return MTFL80()


@pytest.fixture()
def isolated_runs(tmp_path, monkeypatch):
    """Runs and caches go to a temporary folder."""
    monkeypatch.setenv("LMBOOK_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("LMBOOK_PROGRESS", "0")
    return tmp_path / "runs"


@pytest.fixture()
def one_thread():
    """Tiny tensors: on the project's shared 2-core machine a second intra-op thread mostly waits
    for the other processes (a module took 33-62 s with 2 threads under load, 11 s with one).
    The thread count is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def copy_mtfl(src, dst, splits=True):
    """An editable copy of MTFL-80: label files (and split lists) copied, image folders symlinked."""
    import shutil

    dst.mkdir(parents=True)
    for name in ("new_training.txt", "new_testing.txt"):
        shutil.copyfile(src / name, dst / name)
    if splits:
        shutil.copytree(src / "splits", dst / "splits")
    for folder in ("lfw_5590", "net_7876", "AFLW"):
        (dst / folder).symlink_to(src / folder, target_is_directory=True)
    return dst


@pytest.fixture()
def fse_with_parents(monkeypatch):
    """The run API's parent mechanism tried with FSE, the cheapest method, as parent and child:
    FSE's settings have no parents, which the command line refuses (lmcore.spec.check_parent_roles),
    so the check is lifted for the test."""
    import lmcore.spec

    monkeypatch.setattr(lmcore.spec, "check_parent_roles", lambda *args: None)
