"""Split, subset and copy data directories (Kaldi's ``split_data.sh``, ``subset_data_dir.sh``)."""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from asr.data.datadir import KNOWN_FILES, DataDir, read_kaldi_map
from asr.errors import DataDirError

log = logging.getLogger(__name__)


# --- split and subset ------------------------------------------------------------------------


def subset_datadir(
    path: str | os.PathLike, utt_ids: Iterable[str], out_path: str | os.PathLike
) -> Path:
    """Write a data directory holding only ``utt_ids`` of ``path`` (Kaldi's subset_data_dir.sh).

    Other top-level files that are not Kaldi tables (``feats.yaml``, global CMVN stats, ...)
    are copied unchanged, so the subset stays usable on its own.
    """
    source = Path(path)
    out = Path(out_path)
    if out.resolve() == source.resolve():
        raise DataDirError(f"{out}: a subset cannot overwrite its source data directory")
    data = DataDir.load(source).subset(utt_ids)
    _write_subset(data, source, out)
    return out


def subset_datadir_by_speaker(
    path: str | os.PathLike,
    speakers: Iterable[str],
    out_path: str | os.PathLike,
    exclude: bool = False,
) -> Path:
    """Write a data directory holding the utterances of ``speakers`` (every utterance of
    every speaker but those with ``exclude``), as Kaldi's ``subset_data_dir.sh --spk-list``.

    A speaker to keep that is not in the directory is an error (a typo would otherwise give a
    silently smaller set); one to exclude that is not there is ignored, so one list of held-out
    speakers serves every directory. An empty result is an error.
    """
    source = Path(path)
    out = Path(out_path)
    if out.resolve() == source.resolve():
        raise DataDirError(f"{out}: a subset cannot overwrite its source data directory")
    data = DataDir.load(source)
    chosen = set(speakers)
    unknown = sorted(chosen - data.spk2utt.keys() - set(data.utt2spk.values()))
    if unknown and not exclude:
        raise DataDirError(
            f"{source / 'utt2spk'}: speaker '{unknown[0]}' is not in the data directory"
            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
        )
    keep = [u for u, s in data.utt2spk.items() if (s in chosen) != exclude]
    if not keep:
        raise DataDirError(f"{source}: no utterances left after excluding the listed speakers")
    _write_subset(data.subset(keep), source, out)
    return out


def copy_datadir(
    path: str | os.PathLike, out_path: str | os.PathLike, text: str | os.PathLike | None = None
) -> Path:
    """Copy a data directory (Kaldi's copy_data_dir.sh), features and all; with ``text``, the
    copy's transcripts come from that Kaldi table instead (e.g. phones in place of words).

    The new transcripts must cover exactly the directory's utterances: one missing or extra is
    a DataDirError naming it and the file.
    """
    source = Path(path)
    out = Path(out_path)
    if out.resolve() == source.resolve():
        raise DataDirError(f"{out}: a copy cannot overwrite its source data directory")
    data = DataDir.load(source)
    if text is not None:
        table = read_kaldi_map(text, allow_empty=True)
        missing = sorted(data.utt2spk.keys() - table.keys())
        extra = sorted(table.keys() - data.utt2spk.keys())
        for ids, what in ((missing, "has no line for utterance"), (extra, "has unknown utterance")):
            if ids:
                more = f" (and {len(ids) - 1} more)" if len(ids) > 1 else ""
                raise DataDirError(f"{text}: {what} '{ids[0]}' of {source}{more}")
        data.text = table
    _write_subset(data, source, out)
    return out


def _write_subset(data: DataDir, source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in KNOWN_FILES:  # a table absent from the subset must not survive from before
        if (out / name).is_file():
            (out / name).unlink()
    data.save(out)
    for item in source.iterdir():
        if item.is_file() and item.name not in KNOWN_FILES and not item.name.startswith("."):
            shutil.copy2(item, out / item.name)


def split_datadir(path: str | os.PathLike, num_splits: int) -> list[Path]:
    """Split by speaker into ``DIR/split{N}/{1..N}``, as Kaldi's ``split_data.sh`` (--per-spk).

    No speaker is divided; each part gets a contiguous run of speakers (in C order) chosen to
    balance the number of utterances.
    """
    source = Path(path)
    data = DataDir.load(source)
    speakers = data.speakers
    if num_splits < 1:
        raise DataDirError(f"{source}: number of splits must be at least 1, got {num_splits}")
    if len(speakers) < num_splits:
        raise DataDirError(
            f"{source}: cannot split {len(speakers)} speakers into {num_splits} parts "
            "(splits are by speaker)"
        )
    counts = Counter(data.utt2spk.values())
    parts = _balanced_runs([counts[s] for s in speakers], num_splits)
    out_dirs = []
    for index, (first, last) in enumerate(parts, start=1):
        part = set(speakers[first:last])
        keep = {u for u, s in data.utt2spk.items() if s in part}
        out = source / f"split{num_splits}" / str(index)
        _write_subset(data.subset(keep), source, out)
        out_dirs.append(out)
    log.info("%s: split %d speakers into %d parts", source, len(speakers), num_splits)
    return out_dirs


def _balanced_runs(weights: list[int], parts: int) -> list[tuple[int, int]]:
    """Cut ``weights`` into ``parts`` non-empty contiguous runs with sums near total/parts."""
    cumulative = np.cumsum([0, *weights])
    total = cumulative[-1]
    bounds = [0]
    for k in range(1, parts):
        lo = bounds[-1] + 1  # at least one item in this run
        hi = len(weights) - (parts - k)  # leave one item for each later run
        target = total * k / parts
        best = min(range(lo, hi + 1), key=lambda i: (abs(cumulative[i] - target), i))
        bounds.append(best)
    bounds.append(len(weights))
    return list(zip(bounds[:-1], bounds[1:], strict=True))
