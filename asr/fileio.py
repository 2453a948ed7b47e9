"""Small file helpers shared by every module that writes: atomic writes and UTF-8 reads."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from asr.errors import DataDirError


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO]:
    """Open a temporary file beside ``path`` and rename it over ``path`` only on success.

    A crash or an exception inside the ``with`` block leaves the old file (or no file) in place,
    never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, _new_file_mode(path))
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _new_file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777  # a rewritten file keeps its mode
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes; a missing or unreadable file is one DataDirError naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DataDirError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataDirError(f"{path}: cannot read ({exc.strerror})") from None


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """Read a UTF-8 text file into lines (without newlines); a bad file is one clear error."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataDirError(f"{path}:{line}: not valid UTF-8") from None
    return text.splitlines()
