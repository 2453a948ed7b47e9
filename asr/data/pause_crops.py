"""Sub-utterance crops at pauses: more varied training utterances from isolated-word recordings.

A recording whose energy contour splits into exactly as many speech runs as its transcript has
words is cut between runs into segments that each cover a contiguous span of words; every span
becomes a new utterance (a Kaldi ``segments`` line) with those words as its transcript.

Why the yes/no recipe offers it: Kaldi's split (first 30 recordings by name train, last 30
test) puts every recording that starts with YES in the test half, and a BiLSTM trained only on
the whole training recordings can learn that an utterance never starts with YES (its test
errors are then deleted initial YESes). Crops also get training off the CTC plateau sooner;
recipes/yesno/RESULTS has what they measured.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.data.datadir import DataDir, Segment, spk2utt_from_utt2spk
from asr.data.energy import frame_power, true_runs
from asr.errors import AsrError, DataDirError

log = logging.getLogger(__name__)

FRAME_SECONDS = 0.01
# Speech is any 10 ms frame within THRESHOLD_DB of the recording's loudest frame; runs closer
# than MIN_GAP merge and runs shorter than MIN_RUN are clicks. Tuned on yes/no: 57 of its 60
# recordings split into exactly 8 runs.
THRESHOLD_DB = -20.0
MIN_GAP_SECONDS = 0.05
MIN_RUN_SECONDS = 0.1


def speech_runs(
    wave: np.ndarray,
    sample_rate: int,
    threshold_db: float = THRESHOLD_DB,
    min_gap: float = MIN_GAP_SECONDS,
    min_run: float = MIN_RUN_SECONDS,
) -> list[tuple[float, float]]:
    """``(start, end)`` seconds of each stretch of speech, by frame energy."""
    hop = max(1, int(round(sample_rate * FRAME_SECONDS)))
    power = frame_power(wave, hop)
    if len(power) == 0:
        return []
    energy_db = 10.0 * np.log10(power + 1e-10)
    speech = energy_db > energy_db.max() + threshold_db
    runs: list[list[int]] = []
    for start, end in zip(*true_runs(speech), strict=True):
        if runs and (start - runs[-1][1]) * FRAME_SECONDS < min_gap:
            runs[-1][1] = int(end)
        else:
            runs.append([int(start), int(end)])
    return [
        (s * FRAME_SECONDS, e * FRAME_SECONDS)
        for s, e in runs
        if (e - s) * FRAME_SECONDS >= min_run
    ]


def span_bounds(
    runs: list[tuple[float, float]], first: int, last: int, duration: float
) -> tuple[float, float]:
    """Cut points for words ``first..last``: the middles of the pauses around them."""
    start = 0.0 if first == 0 else (runs[first - 1][1] + runs[first][0]) / 2
    end = duration if last == len(runs) - 1 else (runs[last][1] + runs[last + 1][0]) / 2
    return start, end


@dataclass
class CropReport:
    """What ``crop_at_pauses`` did, for its summary line."""

    recordings: int = 0
    cropped: int = 0
    utterances: int = 0
    kept_whole: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.recordings} recordings: {self.cropped} cut at pauses, "
            f"{len(self.kept_whole)} kept whole (speech runs did not match the words), "
            f"{len(self.failed)} unreadable; {self.utterances} utterances written"
        )


def crop_at_pauses(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    crops_per_utt: int = 5,
    seed: int = 0,
    allow_pipe: bool = False,
) -> CropReport:
    """Write ``out_dir``: every utterance of ``data_dir`` whole plus up to ``crops_per_utt``
    random word spans of it (the same spans for the same ``seed``).

    Crop ids are ``<utt>-w<first>-<last>`` (word positions from 0); recordings keep the source
    utterance ids, so ``wav.scp`` is copied as it is and ``segments`` points into it.
    """
    source = DataDir.load(data_dir)
    if source.segments is not None:
        raise DataDirError(f"{source.path / 'segments'}: cropping needs whole recordings")
    if source.text is None:
        raise DataDirError(f"{source.path / 'text'}: file not found")
    report = CropReport()
    segments: dict[str, Segment] = {}
    text: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    for utt in source.utt_ids:
        report.recordings += 1
        words = source.text.get(utt, "").split()
        try:
            wave, rate = source.load_audio(utt, allow_pipe=allow_pipe)
        except AsrError as exc:
            log.warning("skipping %s", exc)
            report.failed[utt] = str(exc)
            continue
        duration = len(wave) / rate
        runs = speech_runs(wave, rate)
        spans = [(0, len(words) - 1)]
        if len(runs) == len(words) > 1:
            report.cropped += 1
            n = len(words)
            others = [(i, j) for i in range(n) for j in range(i, n) if (i, j) != (0, n - 1)]
            spans += random.Random(f"{seed}/{utt}").sample(others, min(crops_per_utt, len(others)))
        else:
            report.kept_whole[utt] = f"{len(runs)} speech runs for {len(words)} words"
        for first, last in spans:
            whole = (first, last) == spans[0]
            start, end = (0.0, duration) if whole else span_bounds(runs, first, last, duration)
            crop = f"{utt}-w{first}-{last}"
            segments[crop] = Segment(utt, round(start, 2), round(end, 2))
            text[crop] = " ".join(words[first : last + 1])
            utt2spk[crop] = source.utt2spk[utt]
    wav_scp = {utt: entry for utt, entry in source.wav_scp.items() if utt not in report.failed}
    cropped = DataDir(
        path=Path(out_dir),
        utt2spk=utt2spk,
        spk2utt=spk2utt_from_utt2spk(utt2spk),
        wav_scp=wav_scp,
        text=text,
        segments=segments,
    )
    cropped.save()
    report.utterances = len(segments)
    return report
