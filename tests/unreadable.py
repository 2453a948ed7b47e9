"""Unreadable files and unwritable directories in tests that may run as root (root ignores modes).

``unreadable(path)`` takes the read permission away and returns the command prefix under which
that actually denies access: nothing for an ordinary user; for root, ``setpriv`` dropping the
capabilities that let root ignore file modes (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH). The prefix
is checked to deny the read before it is returned, so a test built on it cannot pass vacuously.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

_DROP_DAC = ["--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]


def unreadable(path: Path) -> list[str]:
    """chmod 000 ``path``; the prefix for a subprocess that cannot read it (skip if none)."""
    os.chmod(path, 0)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: no way to make a file unreadable")
        prefix = [setpriv, *_DROP_DAC]
    probe = subprocess.run([*prefix, "head", "-c", "1", str(path)], capture_output=True)
    if probe.returncode == 0:
        pytest.skip(f"{path} stays readable (capabilities could not be dropped)")
    return prefix


def unwritable(directory: Path) -> list[str]:
    """chmod 555 ``directory``; the prefix for a subprocess that cannot create files in it."""
    os.chmod(directory, 0o555)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: no way to make a directory unwritable")
        prefix = [setpriv, *_DROP_DAC]
    probe = subprocess.run([*prefix, "mkdir", str(directory / ".probe")], capture_output=True)
    if probe.returncode == 0:
        os.rmdir(directory / ".probe")
        pytest.skip(f"{directory} stays writable (capabilities could not be dropped)")
    return prefix
