"""Shared fixtures: where ../shared is, and the rule that CI must have it."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ASR_SHARED", REPO_ROOT.parent / "shared"))


def tar_link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    """A symbolic or hard link member of a tar archive, for the safe-extraction tests."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def shared_path(*parts: str) -> Path:
    """Return a path under ../shared; skip when absent, fail when CI=true (it must be there)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} not found (set ASR_SHARED to the shared folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def yesno_dir() -> Path:
    return shared_path("corpora", "yesno", "waves_yesno")


@pytest.fixture
def timit_dir() -> Path:
    return shared_path("corpora", "timit-sample", "TIMIT")


@pytest.fixture
def fsdd_dir() -> Path:
    return shared_path("corpora", "fsdd", "recordings")


@pytest.fixture(scope="session")
def tiny_trained_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 1-layer model trained for 6 epochs on test_train's synthetic task: (package, test dir)."""
    from test_train import write_synthetic

    from asr.train import train

    root = tmp_path_factory.mktemp("tiny_model")
    write_synthetic(root / "train", 60, seed=1)
    write_synthetic(root / "dev", 12, seed=2)
    write_synthetic(root / "test", 20, seed=3)
    config = {
        "model": {"num_layers": 1, "hidden_size": 24},
        "training": {"lr": 0.02, "max_epochs": 6, "batch_frames": 80},
    }
    train(config, root / "train", root / "dev", root / "exp", threads=1, progress=False)
    return root / "exp" / "final.pt", root / "test"


def sctk_tool(name: str) -> list[str]:
    """The command that runs one of NIST SCTK's tools (sclite, sc_stats, rfilter1, ...).

    Debian's sctk package puts a dispatcher on PATH (``sctk sclite``). Without the tool the
    test is skipped, or fails when CI=true (CI installs sctk).
    """
    if shutil.which(name):
        return [name]
    if shutil.which("sctk"):
        return ["sctk", name]
    message = f"{name} not found (Debian package sctk: apt-get install sctk)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def sclite() -> list[str]:
    return sctk_tool("sclite")
