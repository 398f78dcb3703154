import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lmcore  # noqa: E402  (installs the torchvision fallback before any test imports torchvision)


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
