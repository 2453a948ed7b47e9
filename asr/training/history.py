"""``history.tsv`` and ``train.log``: the per-epoch record of a run, written atomically."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from asr.fileio import atomic_write

logger = logging.getLogger(__name__)


# dev_output: dev hypothesis tokens per reference token (near 0 on the CTC plateau: blanks only)
HISTORY_FIELDS = ("epoch", "train_loss", "dev_loss", "dev_ter", "lr", "time", "dev_output")


def write_history(path: Path, history: Sequence[Mapping[str, float]]) -> None:
    with atomic_write(path) as handle:
        handle.write("\t".join(HISTORY_FIELDS) + "\n")
        for h in history:
            # a history from before dev_output was recorded (an older checkpoint) has none
            handle.write("\t".join(repr(h.get(k, math.nan)) for k in HISTORY_FIELDS) + "\n")


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """Read ``history.tsv`` back (epoch as int, the rest as float)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        row: dict[str, float] = dict(zip(header, map(float, line.split("\t")), strict=True))
        row["epoch"] = int(row["epoch"])
        rows.append(row)
    return rows


def format_epoch(h: Mapping[str, float]) -> str:
    """The train.log line of one epoch (parsed back by tests and tools: keep it stable)."""
    return (
        f"epoch {h['epoch']} train_loss {h['train_loss']:.4f} dev_loss {h['dev_loss']:.4f} "
        f"dev_ter {h['dev_ter']:.2f} lr {h['lr']:.3e} time {h['time']:.1f}s"
    )


def write_log(
    path: Path, notes: Sequence[str], history: Sequence[Mapping[str, float]], done: str
) -> None:
    with atomic_write(path) as handle:
        for note in notes:
            handle.write(f"# {note}\n")
        for h in history:
            handle.write(format_epoch(h) + "\n")
        if done:
            handle.write(f"# {done}\n")
