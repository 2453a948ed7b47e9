"""Shared fixtures: where ../shared is, and the rule that CI must have it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ASR_SHARED", REPO_ROOT.parent / "shared"))


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
