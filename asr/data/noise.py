"""Additive noise for a data directory, as Kaldi's ``steps/data/augment_data_dir.py``.

Each noisy copy ``k`` (1..copies) of utterance ``u`` is ``noise{k}-<u>`` of speaker
``noise{k}-<spk>``, with noise mixed at an SNR drawn uniformly from a range (signal power over the
whole utterance). The noise is a random stretch of a random file under a noise folder (MUSAN,
say), looped if shorter, or generated white, pink (1/f power) or brown (1/f^2) noise.

Every random choice for a copy comes from a generator seeded by (seed, utterance id, k), so a
copy is the same whatever order the utterances are processed in and whichever others are in the
directory.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from asr.data.audio import audio_duration, load_audio, resample
from asr.data.datadir import DataDir
from asr.data.speed_perturb import (
    PCM16_MAX,
    AugmentedDirWriter,
    check_destination,
    check_new_ids,
)
from asr.errors import AsrError, AudioError, ConfigError

log = logging.getLogger(__name__)

NOISE_TYPES = ("white", "pink", "brown")
# What a noise folder may hold: the formats asr.data.audio (libsndfile) reads. Other files (READMEs,
# licences, lists) are ignored.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".opus", ".sph", ".nist", ".au", ".aif", ".aiff"}
)
# Noise files resampled to an utterance's rate, most recently used kept (MUSAN files are big).
_CACHE_SIZE = 8


def noise_prefix(copy: int) -> str:
    """The id prefix of noisy copy ``copy`` (from 1): ``noise1-``."""
    return f"noise{copy}-"


def copy_rng(seed: int, utt_id: str, copy: int) -> np.random.Generator:
    """The random generator of copy ``copy`` of ``utt_id``: a function of these alone."""
    digest = hashlib.blake2b(utt_id.encode("utf-8"), digest_size=8).digest()
    return np.random.default_rng([seed % 2**64, int.from_bytes(digest, "little"), copy])


def make_noise(kind: str, length: int, rng: np.random.Generator) -> np.ndarray:
    """``length`` samples of white, pink or brown noise with zero mean and unit power."""
    if kind not in NOISE_TYPES:
        raise ConfigError(f"noise type '{kind}' is not one of {', '.join(NOISE_TYPES)}")
    white = rng.standard_normal(length)
    if kind == "white":
        noise = white
    elif kind == "pink":
        # Power 1/f: scale each frequency's amplitude by 1/sqrt(f), DC removed.
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(length)
        spectrum[0] = 0.0
        spectrum[1:] /= np.sqrt(freqs[1:])
        noise = np.fft.irfft(spectrum, length)
    else:
        # Integrated white noise (a random walk): power 1/f^2.
        noise = np.cumsum(white)
    noise = noise - noise.mean()
    power = float(np.mean(noise**2))
    return noise / math.sqrt(power) if power > 0 else noise


def power(wave: np.ndarray) -> float:
    """Mean square of the samples (float64)."""
    return float(np.mean(np.square(wave, dtype=np.float64)))


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``clean`` plus ``noise`` scaled so that power(clean) / power(added) is ``snr_db`` dB.

    Both have the same length and non-zero power (the caller checks). Returns float64.
    """
    scale = math.sqrt(power(clean) / (power(noise) * 10.0 ** (snr_db / 10.0)))
    return clean.astype(np.float64) + scale * noise


class NoiseFiles:
    """The audio files under a noise folder; every header is checked up front."""

    def __init__(self, noise_dir: str | os.PathLike) -> None:
        root = Path(noise_dir)
        if not root.is_dir():
            raise AudioError(f"{root}: noise directory not found")
        self.files = sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
        )
        if not self.files:
            suffixes = " ".join(sorted(AUDIO_SUFFIXES))
            raise AudioError(f"{root}: no audio files in the noise directory ({suffixes})")
        for path in self.files:
            audio_duration(path)  # an unreadable file stops the run here, named
        self._cache: OrderedDict[tuple[Path, int], np.ndarray] = OrderedDict()

    def load(self, path: Path, sample_rate: int) -> np.ndarray:
        key = (path, sample_rate)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        wave, rate = load_audio(path)
        if power(wave) == 0.0:
            raise AudioError(f"{path}: noise file is silent (all samples zero)")
        wave = resample(wave, rate, sample_rate)
        self._cache[key] = wave
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return wave

    def draw(self, length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """``length`` samples from a random file at a random offset, looped if it is shorter."""
        path = self.files[int(rng.integers(len(self.files)))]
        wave = self.load(path, sample_rate)
        offset = int(rng.integers(len(wave)))
        return wave[(offset + np.arange(length)) % len(wave)].astype(np.float64)


@dataclass
class NoiseReport:
    """What ``add_noise_datadir`` wrote; ``snr`` is the SNR (dB) drawn for each noisy copy."""

    path: Path
    utterances: int = 0  # in the source
    written: int = 0  # in the output, clean copies included
    snr: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # source utterance -> why skipped
    scaled: int = 0  # noisy copies scaled down so that they do not clip

    def summary(self) -> str:
        return (
            f"{self.path}: {self.written} utterances from {self.utterances} "
            f"({len(self.snr)} noisy copies, {self.scaled} scaled down to avoid clipping); "
            f"{len(self.failed)} skipped (unreadable or silent)"
        )


def check_snr_range(snr_range: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in snr_range)
    except (TypeError, ValueError):
        raise ConfigError(f"SNR range {snr_range!r} must be two numbers (dB)") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError(f"SNR range {low:g}:{high:g} dB must be finite, low before high")
    return low, high


def add_noise_datadir(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    snr_range: tuple[float, float] = (5.0, 20.0),
    noise_dir: str | os.PathLike | None = None,
    noise_type: str = "white",
    copies: int = 1,
    keep_clean: bool = True,
    seed: int = 0,
    audio_dir: str | os.PathLike | None = None,
    progress: bool = True,
    allow_pipe: bool = False,
) -> NoiseReport:
    """Write ``dst`` with ``copies`` noisy copies of every utterance of ``src`` (and, with
    ``keep_clean``, the clean utterances unchanged).

    Noise is drawn from the audio files under ``noise_dir`` (resampled to each utterance's
    rate) or, without one, generated as ``noise_type``. Copies are FLAC files under
    ``audio_dir`` (default ``dst/audio``), scaled down as a whole where the mix would clip.
    An unreadable utterance is skipped; a silent one (zero power, no SNR) keeps its clean copy
    only. Each is logged in one line and listed in the report's ``failed``.
    """

    low, high = check_snr_range(snr_range)
    if copies < 1:
        raise ConfigError(f"number of noisy copies must be at least 1, got {copies}")
    if noise_dir is None and noise_type not in NOISE_TYPES:
        raise ConfigError(f"noise type '{noise_type}' is not one of {', '.join(NOISE_TYPES)}")
    source = DataDir.load(src)
    dst = Path(dst)
    check_destination(source.path, dst)
    prefixes = [noise_prefix(k) for k in range(1, copies + 1)]
    check_new_ids(source, prefixes, keep_clean)
    files = NoiseFiles(noise_dir) if noise_dir is not None else None
    writer = AugmentedDirWriter(source, dst, Path(audio_dir) if audio_dir else dst / "audio")
    report = NoiseReport(dst, utterances=len(source.utt2spk))
    with logging_redirect_tqdm():
        for utt in tqdm(source.utt_ids, desc=f"noise {dst}", unit="utt", disable=not progress):
            try:
                clean, rate = source.load_audio(utt, allow_pipe=allow_pipe)
            except AsrError as exc:
                log.warning("skipped: %s", exc)
                report.failed[utt] = str(exc)
                continue
            if keep_clean:
                writer.keep(utt)
            if power(clean) == 0.0:
                entry = source.audio_entry(utt)[0]
                report.failed[utt] = f"utterance '{utt}' ({entry}): silent audio, no SNR to set"
                log.warning("no noisy copy: %s", report.failed[utt])
                continue
            for k, prefix in enumerate(prefixes, start=1):
                rng = copy_rng(seed, utt, k)
                snr = float(rng.uniform(low, high))
                if files is not None:
                    noise = files.draw(len(clean), rate, rng)
                else:
                    noise = make_noise(noise_type, len(clean), rng)
                if power(noise) == 0.0:
                    # A stretch of digital silence in a noise file: take the next copy.
                    report.failed[utt] = (
                        f"utterance '{utt}': the noise drawn for copy {k} is silent"
                    )
                    log.warning("no noisy copy: %s", report.failed[utt])
                    continue
                noisy = mix_at_snr(clean, noise, snr)
                peak = float(np.max(np.abs(noisy)))
                if peak > PCM16_MAX:
                    noisy *= PCM16_MAX / peak  # the SNR is kept; only the level drops
                    report.scaled += 1
                report.snr[writer.add(utt, prefix, noisy, rate)] = snr
    data = writer.save()
    report.written = len(data.utt2spk)
    log.debug("%s", report.summary())
    return report
