"""End-pointing: cut each utterance to its speech, plus a margin, as a Kaldi ``segments`` file.

Isolated-word corpora are recorded with different amounts of silence around the word (in the
Free Spoken Digit Dataset one speaker leaves ~80 ms before the word, the others ~5 ms). A model
trained on tightly cut speakers then meets an unseen speaker's long silences, and per-speaker
CMVN statistics shift with the share of silence frames. Cutting every utterance, training and
test alike, to the span between its first and last speech frame (frame energy within
``threshold_db`` of the utterance's loudest frame, as ``asr.data.pause_crops`` finds it)
removes that difference without looking at any transcript. Audio is not rewritten: the output
directory keeps ``wav.scp`` and points into it with ``segments`` (offsets are added to existing
segments).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.data.datadir import DataDir, Segment, spk2utt_from_utt2spk
from asr.data.pause_crops import speech_runs
from asr.errors import AsrError, DataDirError

log = logging.getLogger(__name__)

SILENCE_PEAK = 1e-4  # peak sample (full scale 1.0) below which a recording holds no speech


@dataclass
class TrimReport:
    """What ``trim_silence_datadir`` did: utterances written, seconds removed, failures."""

    utterances: int = 0
    removed_seconds: float = 0.0
    total_seconds: float = 0.0
    no_speech: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        share = 100.0 * self.removed_seconds / max(self.total_seconds, 1e-9)
        return (
            f"{self.utterances} utterances trimmed, {self.removed_seconds:.1f} s of "
            f"{self.total_seconds:.1f} s removed ({share:.1f}%); {len(self.no_speech)} kept "
            f"whole (no speech found), {len(self.failed)} unreadable, skipped"
        )


def trim_silence_datadir(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    threshold_db: float = -30.0,
    margin: float = 0.05,
    allow_pipe: bool = False,
    progress: bool = True,
) -> TrimReport:
    """Write ``out_dir``: each readable utterance of ``data_dir`` cut to its speech ± ``margin``."""

    if margin < 0:
        raise DataDirError(f"margin must not be negative, got {margin}")
    if threshold_db >= 0:
        raise DataDirError(f"threshold_db must be negative (dB below the peak), got {threshold_db}")
    source = DataDir.load(data_dir)
    report = TrimReport()
    segments: dict[str, Segment] = {}
    for utt in tqdm(source.utt_ids, desc="trim", unit="utt", disable=not progress):
        try:
            wave, rate = source.load_audio(utt, allow_pipe=allow_pipe)
        except AsrError as exc:
            log.warning("skipping %s", exc)
            report.failed[utt] = str(exc)
            continue
        duration = len(wave) / rate
        # relative thresholds call anything speech in digital silence: test the level first
        audible = wave.size > 0 and float(np.max(np.abs(wave))) > SILENCE_PEAK
        runs = speech_runs(wave, rate, threshold_db=threshold_db, min_run=0.0) if audible else []
        if runs:
            start = max(0.0, runs[0][0] - margin)
            end = min(duration, runs[-1][1] + margin)
        else:
            report.no_speech[utt] = "no frame above the threshold"
            start, end = 0.0, duration
        offset, recording = 0.0, utt
        if source.segments is not None:
            offset, recording = source.segments[utt].start, source.segments[utt].recording
        segments[utt] = Segment(recording, round(offset + start, 3), round(offset + end, 3))
        report.utterances += 1
        report.total_seconds += duration
        report.removed_seconds += duration - (end - start)
    kept = [u for u in source.utt_ids if u not in report.failed]
    utt2spk = {u: source.utt2spk[u] for u in kept}
    recordings = {segments[u].recording for u in kept}
    trimmed = DataDir(
        path=Path(out_dir),
        utt2spk=utt2spk,
        spk2utt=spk2utt_from_utt2spk(utt2spk),
        wav_scp={r: e for r, e in source.wav_scp.items() if r in recordings},
        text={u: source.text[u] for u in kept} if source.text is not None else None,
        segments=segments,
        utt2dur={u: round(segments[u].end - segments[u].start, 3) for u in kept},
        extra={n: dict(t) for n, t in source.extra.items() if n == "spk2gender"},
    )
    trimmed.save()
    return report
