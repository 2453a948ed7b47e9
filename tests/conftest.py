"""Shared fixtures: where ../shared is, the rule that CI must have every oracle, and the
precision switch that lets one machine run a test as a CPU with and without native bf16."""

from __future__ import annotations

import importlib
import os
import shutil
import tarfile
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ASR_SHARED", REPO_ROOT.parent / "shared"))


def tar_link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    """A symbolic or hard link member of a tar archive, for the safe-extraction tests."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def missing(message: str) -> NoReturn:
    """A required corpus, tool or oracle is absent: skip locally, fail when CI=true.

    CI installs everything `make setup` lists, so there a missing oracle is an error, not a
    silent skip that would let the check it guards pass unseen.
    """
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def required_module(name: str, install: str) -> ModuleType:
    """Import ``name`` (an oracle the tests compare against); missing -> :func:`missing`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"Python module {name} not installed ({install})")


def required_tool(name: str, install: str) -> str:
    """The path of program ``name`` on PATH; missing -> :func:`missing`."""
    found = shutil.which(name)
    if found is None:
        missing(f"{name} not found on PATH ({install})")
    return found


def shared_path(*parts: str) -> Path:
    """Return a path under ../shared; skip when absent, fail when CI=true (it must be there)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        missing(f"{path} not found (set ASR_SHARED to the shared folder)")
    return path


def cpu_flags_have_bf16() -> bool | None:
    """Whether /proc/cpuinfo lists a native bf16 instruction set (AVX-512 BF16 or AMX BF16);
    None where there is no such file or no x86 flags line (then the test cannot tell)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return bool({"avx512_bf16", "amx_bf16"} & set(value.split()))
    return None


@pytest.fixture(params=["0", "1"], ids=["cpu_bf16=0", "cpu_bf16=1"])
def cpu_bf16(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Runs the test twice: as a CPU without native bf16 (ASR_CPU_BF16=0) and as one with it
    (ASR_CPU_BF16=1, emulated where the CPU lacks it); the value is whether bf16 is on."""
    monkeypatch.setenv("ASR_CPU_BF16", request.param)
    return request.param == "1"


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

    from asr.training.trainer import train

    root = tmp_path_factory.mktemp("tiny_model")
    write_synthetic(root / "train", 60, seed=1)
    write_synthetic(root / "dev", 12, seed=2)
    write_synthetic(root / "test", 20, seed=3)
    config = {
        "model": {"num_layers": 1, "hidden_size": 24},
        # fp32: the WER thresholds of the tests that use it must not depend on the CPU
        "training": {"lr": 0.02, "max_epochs": 6, "batch_frames": 80, "precision": "fp32"},
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
    missing(f"{name} not found (Debian package sctk: apt-get install sctk)")


@pytest.fixture
def sclite() -> list[str]:
    return sctk_tool("sclite")
