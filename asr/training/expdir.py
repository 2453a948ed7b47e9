"""The experiment directory: its file names, its lock, and the temp files a killed run leaves."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from asr.errors import TrainingError
from asr.units.tokens import TokenList

logger = logging.getLogger(__name__)


CHECKPOINT = "checkpoint.pt"
FINAL = "final.pt"


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a failed write (disk full, file too large, no permission) into one line naming
    ``path``. atomic_write has removed its temp file by then: the old file, if any, is intact,
    and so is the last checkpoint, from which --resume goes on once there is room."""
    try:
        yield
    except OSError as exc:
        raise TrainingError(f"{path}: cannot write ({exc.strerror or exc})") from None


LOCK = ".lock"
# the temp files atomic_write leaves beside our outputs when a run is killed with SIGKILL
_STALE_TEMP = re.compile(
    r"\.(checkpoint\.pt|final\.pt|epoch-\d+\.pt|history\.tsv|train\.log|curves\.png"
    r"|tokens\.txt)\..+\.tmp"
)


def lock_exp_dir(exp_dir: Path) -> int:
    """Create ``exp_dir`` and take an exclusive flock on ``exp_dir/.lock`` (holding our pid).

    Two runs writing one exp dir at once would leave final.pt of one and epoch-N.pt of the
    other, so a second run stops here with one line naming the holder. flock, not a pid file:
    the kernel drops the lock when its process dies, so a run killed with -9 blocks nothing.
    Returns the descriptor that holds the lock (see unlock_exp_dir).
    """
    path = exp_dir / LOCK
    try:
        exp_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"{exp_dir}: cannot create the exp dir ({exc.strerror})") from None
    while True:
        with writing(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if isinstance(exc, BlockingIOError):
                raise TrainingError(
                    f"{exp_dir}: in use by another asr train (pid {holder}); wait for it to "
                    "finish, or use another exp dir"
                ) from None
            raise TrainingError(f"{path}: cannot lock ({exc.strerror})") from None
        # the holder removes the file as it lets go: if it did so between our open and our
        # flock, we hold a lock on a file no one else will open; take the new one instead
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError as exc:
        os.close(fd)
        raise TrainingError(f"{path}: cannot write ({exc.strerror})") from None
    return fd


def unlock_exp_dir(exp_dir: Path, fd: int) -> None:
    # removed while still held, so that no other run can lock this inode after we let go
    with contextlib.suppress(FileNotFoundError):
        os.unlink(exp_dir / LOCK)
    os.close(fd)


def save_tokens(tokens: TokenList, path: Path) -> None:
    with writing(path):
        tokens.save(path)


def remove_stale_temps(exp_dir: Path) -> None:
    """Remove the temp files a killed run left; called under the lock, so none is in use."""
    for path in sorted(exp_dir.iterdir()):
        if _STALE_TEMP.fullmatch(path.name):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            logger.info("removed %s, left by an interrupted run", path)
