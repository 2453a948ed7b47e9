"""flite (CMU's small synthesiser): one subprocess per sentence, phones and end times by -psdur.

flite is fast (hundreds of times real time), so a process per sentence costs little. Its four
16 kHz English voices are kal16 (diphone) and the clustergen voices slt, rms and awb; the 8 kHz
``kal`` is left out. Speaking rate is ``duration_stretch`` (its inverse); pitch is ``f0_shift``,
a factor on the F0 contour, which rms ignores (measured: the same median F0 at 0.8 and 1.25).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from asr.corpora.synthetic.engine import (
    SAMPLE_RATE,
    have_programs,
    parse_phone_ends,
    read_engine_wave,
    segments_from_ends,
)
from asr.corpora.synthetic.phones import fold_segments
from asr.corpora.synthetic.voice import DEFAULT_PROSODY, Prosody, Synthesis, SynthesisError, Voice

ENGINE = "flite"
INSTALL_FROM = "Debian"
PACKAGES = ("flite",)
VOICE_NAMES = ("kal16", "slt", "rms", "awb")
_FIXED_PITCH = {"rms"}
TIMEOUT_S = 60


def available() -> bool:
    return have_programs("flite")


def voices() -> list[Voice]:
    return [Voice(ENGINE, name) for name in VOICE_NAMES]


def prosody_range(voice: Voice | None = None) -> dict[str, tuple[float, float]]:
    # beyond about +-15% rate and +-20% pitch flite's voices start to sound unnatural
    pitch = (1.0, 1.0) if voice is not None and voice.name in _FIXED_PITCH else (0.85, 1.2)
    return {"rate": (0.87, 1.15), "pitch": pitch}


def synthesize(text: str, voice: Voice, prosody: Prosody = DEFAULT_PROSODY) -> Synthesis:
    """Say ``text`` with a flite voice; the phones are those flite synthesised, with times."""
    if not text.strip():
        raise SynthesisError(f"{voice}: empty sentence")
    with tempfile.TemporaryDirectory(prefix="asr-flite-") as tmp:
        out = Path(tmp) / "out.wav"
        command = ["flite", "-voice", voice.name, "-psdur"]
        command += ["--setf", f"duration_stretch={1.0 / prosody.rate:.4f}"]
        if voice.name not in _FIXED_PITCH:
            command += ["--setf", f"f0_shift={prosody.pitch:.4f}"]
        command += ["-t", text, "-o", str(out)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SynthesisError(f"{voice}: flite failed on '{text}' ({exc})") from None
        if done.returncode != 0:
            detail = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
            raise SynthesisError(f"{voice}: flite failed on '{text}' ({detail[0]})")
        wave = read_engine_wave(out, voice, text)
    phones = fold_segments(segments_from_ends(parse_phone_ends(done.stdout)))
    if not phones:
        raise SynthesisError(f"{voice}: flite gave no phones for '{text}'")
    return Synthesis(wave, SAMPLE_RATE, phones)
