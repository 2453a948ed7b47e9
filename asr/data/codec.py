"""Channel variety for a data directory: telephone band and lossy codecs, through ffmpeg.

Each copy ``<codec>-<u>`` of utterance ``u`` (speaker ``<codec>-<spk>``) is the utterance
encoded and decoded again, back at its own sample rate and length:

- ``telephone``: 300-3400 Hz band, 8 kHz, G.711 mu-law (a landline);
- ``gsm``: the same band through the GSM 06.10 full-rate codec (13 kbit/s, a mobile call);
- ``mp3``: LAME at a bit rate drawn per copy from 8, 16, 24 or 32 kbit/s;
- ``opus``: libopus at 6, 8, 12 or 16 kbit/s (VoIP).

The bit rate comes from (seed, utterance id), as other augmentations' random choices do
(:mod:`asr.data.noise`). ffmpeg (``make setup`` installs it) does the coding: the decoders
compensate their own delay, so the copy stays aligned with the original (tests/test_codec.py
checks the band limits and the alignment).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from asr.data.datadir import DataDir
from asr.data.noise import copy_rng
from asr.data.speed_perturb import (
    PCM16_MAX,
    AugmentedDirWriter,
    check_destination,
    check_new_ids,
)
from asr.errors import AsrError, AudioError, ConfigError

log = logging.getLogger(__name__)

TELEPHONE_BAND = "highpass=f=300,lowpass=f=3400"
# codec -> (ffmpeg encoder options, container suffix, bit rates drawn from)
CODECS: dict[str, tuple[list[str], str, tuple[str, ...]]] = {
    "telephone": (["-af", TELEPHONE_BAND, "-ar", "8000", "-c:a", "pcm_mulaw"], "wav", ()),
    "gsm": (["-af", TELEPHONE_BAND, "-ar", "8000", "-c:a", "libgsm"], "gsm", ()),
    "mp3": (["-c:a", "libmp3lame"], "mp3", ("8k", "16k", "24k", "32k")),
    "opus": (["-c:a", "libopus"], "ogg", ("6k", "8k", "12k", "16k")),
}


def codec_prefix(codec: str) -> str:
    return f"{codec}-"


def check_codecs(codecs: list[str] | tuple[str, ...]) -> list[str]:
    unknown = [c for c in codecs if c not in CODECS]
    if unknown or not codecs:
        raise ConfigError(f"--codecs {','.join(codecs)}: each must be one of {', '.join(CODECS)}")
    if shutil.which("ffmpeg") is None:
        raise ConfigError("ffmpeg not found: the codecs need it (make setup installs it)")
    return list(dict.fromkeys(codecs))


def _ffmpeg(args: list[str], what: str) -> None:
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise AudioError(f"{what}: ffmpeg failed ({reason})")


def round_trip(
    wave: np.ndarray, sample_rate: int, codec: str, bitrate: str | None = None, name: str = ""
) -> np.ndarray:
    """``wave`` (float samples) encoded with ``codec`` and decoded back to ``sample_rate``,
    trimmed or zero-padded to its own length."""
    options, suffix, _ = CODECS[codec]
    with tempfile.TemporaryDirectory(prefix="asr-codec-") as tmp:
        clean, coded, back = (
            Path(tmp) / "in.wav",
            Path(tmp) / f"coded.{suffix}",
            Path(tmp) / "out.wav",
        )
        pcm = np.clip(np.round(np.asarray(wave, dtype=np.float64) * 32768), -32768, 32767)
        sf.write(clean, pcm.astype(np.int16), sample_rate, subtype="PCM_16")
        rate_options = ["-b:a", bitrate] if bitrate else []
        _ffmpeg(["-i", str(clean), *options, *rate_options, str(coded)], f"{name} ({codec})")
        _ffmpeg(
            ["-i", str(coded), "-ar", str(sample_rate), "-ac", "1", "-c:a", "pcm_s16le", str(back)],
            f"{name} ({codec} decode)",
        )
        out, _ = sf.read(back, dtype="float64")
    if len(out) < len(wave):
        out = np.concatenate([out, np.zeros(len(wave) - len(out))])
    return out[: len(wave)]


@dataclass
class CodecReport:
    """What ``codec_datadir`` wrote: the codec and bit rate of each copy."""

    path: Path
    utterances: int = 0
    written: int = 0
    coded: dict[str, str] = field(default_factory=dict)  # copy -> "mp3 16k"
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.path}: {self.written} utterances from {self.utterances} "
            f"({len(self.coded)} coded copies); {len(self.failed)} skipped (unreadable or "
            "failed to code)"
        )


def codec_datadir(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    codecs: list[str] | tuple[str, ...] = ("telephone", "gsm", "mp3", "opus"),
    one_each: bool = False,
    keep_clean: bool = True,
    seed: int = 0,
    audio_dir: str | os.PathLike | None = None,
    progress: bool = True,
    allow_pipe: bool = False,
) -> CodecReport:
    """Write ``dst`` with one copy of every utterance of ``src`` per codec (and, with
    ``keep_clean``, the originals). With ``one_each`` every utterance gets a single copy,
    ``codec-<u>``, through a codec drawn at random from ``codecs``."""
    codecs = check_codecs(codecs)
    source = DataDir.load(src)
    dst = Path(dst)
    check_destination(source.path, dst)
    prefixes = [codec_prefix("codec")] if one_each else [codec_prefix(c) for c in codecs]
    check_new_ids(source, prefixes, keep_clean)
    writer = AugmentedDirWriter(source, dst, Path(audio_dir) if audio_dir else dst / "audio")
    report = CodecReport(dst, utterances=len(source.utt2spk))
    with logging_redirect_tqdm():
        for utt in tqdm(source.utt_ids, desc=f"codecs {dst}", unit="utt", disable=not progress):
            try:
                clean, rate = source.load_audio(utt, allow_pipe=allow_pipe)
            except AsrError as exc:
                log.warning("skipped: %s", exc)
                report.failed[utt] = str(exc)
                continue
            if keep_clean:
                writer.keep(utt)
            if one_each:
                drawn = codecs[int(copy_rng(seed, utt, 0).integers(len(codecs)))]
                jobs = [(drawn, prefixes[0])]
            else:
                jobs = list(zip(codecs, prefixes, strict=True))
            for k, (codec, prefix) in enumerate(jobs, start=1):
                rates = CODECS[codec][2]
                bitrate = rates[int(copy_rng(seed, utt, k).integers(len(rates)))] if rates else None
                try:
                    coded = round_trip(clean, rate, codec, bitrate, name=source.audio_entry(utt)[0])
                except AsrError as exc:
                    log.warning("no %s copy: %s", codec, exc)
                    report.failed[utt] = str(exc)
                    continue
                peak = float(np.max(np.abs(coded))) if len(coded) else 0.0
                if peak > PCM16_MAX:
                    coded *= PCM16_MAX / peak
                report.coded[writer.add(utt, prefix, coded, rate)] = (
                    f"{codec} {bitrate or ''}".strip()
                )
    data = writer.save()
    report.written = len(data.utt2spk)
    return report
