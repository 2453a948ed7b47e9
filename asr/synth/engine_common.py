"""Helpers that the subprocess-driven engines (flite, festival) share."""

from __future__ import annotations

import os
import shutil

import numpy as np
import soundfile as sf

from asr.audio import resample
from asr.synth.voice import PhoneSegment, SynthesisError, Voice

SAMPLE_RATE = 16000
# peak amplitude below which an engine's output counts as silence (about -60 dBFS)
SILENCE_PEAK = 1e-3


def have_programs(*names: str) -> bool:
    return all(shutil.which(name) for name in names)


def segments_from_ends(pairs: list[tuple[str, float]]) -> list[PhoneSegment]:
    """(phone, end time) pairs, as flite and festival print them, to segments with starts."""
    segments: list[PhoneSegment] = []
    start = 0.0
    for phone, end in pairs:
        segments.append(PhoneSegment(phone, start, max(end, start)))
        start = max(end, start)
    return segments


def read_engine_wave(path: str | os.PathLike, voice: Voice, text: str) -> np.ndarray:
    """An engine's output file as 16 kHz float32; silence or no audio is a SynthesisError."""
    try:
        wave, rate = sf.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:
        raise SynthesisError(f"{voice}: no audio for '{text}' ({exc})") from None
    wave = wave.mean(axis=1) if wave.shape[1] > 1 else wave[:, 0]
    if wave.size == 0 or float(np.abs(wave).max()) < SILENCE_PEAK:
        raise SynthesisError(f"{voice}: silent output for '{text}'")
    return resample(np.ascontiguousarray(wave), int(rate), SAMPLE_RATE)
