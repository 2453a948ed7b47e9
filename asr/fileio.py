"""Small file helpers shared by every module that writes: atomic writes and UTF-8 reads."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from asr.errors import DataDirError

# Crash-consistency tests set this to "NAME:N[:KILL|TERM]": the Nth call of fault_point(NAME) in
# the process then sends the process that signal (KILL by default). Named points sit where a
# crash matters (before and after each atomic rename, between utterances and batches), so a test
# can stop a run at exactly the same place every time instead of after a random delay.
FAULT_ENV = "ASR_FAULT_AT"
_fault_counts: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Stop this process here when ``ASR_FAULT_AT`` names this point and its count is reached.

    A no-op (one dictionary lookup) unless the variable is set; it exists only so that tests of
    kill -9 and SIGTERM can choose their kill points deterministically.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    target, _, rest = spec.partition(":")
    if target != name:
        return
    count_text, _, sig_name = rest.partition(":")
    _fault_counts[name] = _fault_counts.get(name, 0) + 1
    if _fault_counts[name] != int(count_text or 1):
        return
    sig = signal.SIGTERM if sig_name.upper() == "TERM" else signal.SIGKILL
    os.kill(os.getpid(), sig)


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
        fault_point("before-rename")
        os.replace(tmp, path)
        fault_point("after-rename")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the ``.NAME.XXXXXXXX.tmp`` files atomic_write made for ``path`` in a run that was
    killed (kill -9 runs no cleanup) and return them. Only names of exactly that shape (mkstemp's
    8 random characters) count, so another output's temp file is never touched; call it before
    writing ``path`` again."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    removed = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    for candidate in candidates:
        if pattern.fullmatch(candidate.name):
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed.append(candidate)
    return removed


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
