"""What the engines share: the output rate, the silence test and reading flite's and
festival's output (phone end times, wave files)."""

from __future__ import annotations

import os
import shutil

import numpy as np

from asr.corpora.synthetic.voice import PhoneSegment, SynthesisError, Voice
from asr.data.audio import load_audio
from asr.errors import AudioError

SAMPLE_RATE = 16000
# peak amplitude below which an engine's output counts as silence (about -60 dBFS)
SILENCE_PEAK = 1e-3


def have_programs(*names: str) -> bool:
    return all(shutil.which(name) for name in names)


def parse_phone_ends(text: str) -> list[tuple[str, float]]:
    """``phone:end`` tokens, as flite's -psdur and our festival script print them; anything
    else in the text (warnings, a truncated token) is passed over."""
    pairs = []
    for token in text.split():
        phone, sep, end = token.rpartition(":")
        if sep and phone:
            try:
                pairs.append((phone, float(end)))
            except ValueError:
                continue
    return pairs


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
        wave, _ = load_audio(path, SAMPLE_RATE)
    except AudioError as exc:
        raise SynthesisError(f"{voice}: no audio for '{text}' ({exc})") from None
    if float(np.abs(wave).max()) < SILENCE_PEAK:
        raise SynthesisError(f"{voice}: silent output for '{text}'")
    return wave
