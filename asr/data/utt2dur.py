"""``utt2dur``: each utterance's duration, as Kaldi's ``utils/data/get_utt2dur.sh`` writes it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from asr.data.audio import audio_duration, load_audio_entry
from asr.data.datadir import DataDir, is_pipe, write_kaldi_map
from asr.errors import AsrError, DataDirError

log = logging.getLogger(__name__)


# --- utt2dur --------------------------------------------------------------------------------


@dataclass
class Utt2DurReport:
    """What ``compute_utt2dur`` wrote and which utterances it had to skip (id -> error)."""

    path: Path
    written: int
    failed: dict[str, str]


def compute_utt2dur(path: str | os.PathLike, allow_pipe: bool = False) -> Utt2DurReport:
    """Write ``DIR/utt2dur`` (seconds per utterance), as Kaldi's ``utils/data/get_utt2dur.sh``.

    Plain files are timed from their headers, segments from their times; pipes (with
    ``allow_pipe``) are decoded. An unreadable utterance is logged, skipped and counted.
    """

    data = DataDir.load(path)
    durations: dict[str, float] = {}
    failed: dict[str, str] = {}
    reco_cache: dict[str, float] = {}

    def recording_length(reco: str) -> float:
        if reco not in reco_cache:
            entry = data.wav_scp[reco]
            if is_pipe(entry):
                wave, rate = load_audio_entry(entry, allow_pipe=allow_pipe)
                reco_cache[reco] = len(wave) / rate
            else:
                reco_cache[reco] = audio_duration(entry)
        return reco_cache[reco]

    for utt in tqdm(data.utt_ids, desc=f"utt2dur {data.path}", unit="utt", leave=False):
        segment = data.segments.get(utt) if data.segments is not None else None
        reco = segment.recording if segment is not None else utt
        try:
            entry, start, end = data.audio_entry(utt)
            if start is not None and end is not None:
                durations[utt] = end - start
            else:
                durations[utt] = recording_length(reco) - (start or 0.0)
                if durations[utt] <= 0:
                    raise DataDirError(f"segment of '{utt}' starts after the end of '{entry}'")
        except AsrError as exc:
            failed[utt] = f"{data.where('wav.scp', reco)}: utterance '{utt}': {exc}"
            log.warning("skipped: %s", failed[utt])
    write_kaldi_map(data.path / "utt2dur", {u: repr(round(d, 6)) for u, d in durations.items()})
    log.info(
        "%s: wrote durations of %d utterances (%.1f hours), %d failed",
        data.path / "utt2dur",
        len(durations),
        sum(durations.values()) / 3600,
        len(failed),
    )
    return Utt2DurReport(data.path / "utt2dur", len(durations), failed)
