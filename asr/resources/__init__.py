"""Data files that ship inside the package: phone maps, the filler list, the prompt grammar and
TIMIT's speaker lists.

They live here, not in the repository's top level, so that a wheel installed anywhere carries
them (``pyproject.toml`` lists them as package data); :func:`path` finds them through
``importlib.resources`` rather than by walking up from a module's file.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def path(*parts: str) -> Path:
    """The shipped file or folder ``asr/resources/<parts...>`` as a filesystem path.

    pip unpacks wheels and an editable install points at the checkout, so the resource is always
    a real file; a zipped install (which no installer here makes) is refused by name.
    """
    ref = files(__name__).joinpath(*parts)
    if not isinstance(ref, os.PathLike):
        raise RuntimeError(f"asr resource {'/'.join(parts)}: the package is not installed as files")
    return Path(os.fspath(ref))
