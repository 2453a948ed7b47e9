"""Reverberation for a data directory: simulated rooms (image-source method) or RIR files.

Ko et al. (2017) showed simulated room impulse responses do nearly as well as recorded ones
for training far-field models. This module simulates them itself, with no download and no
extra package: Allen & Berkley's image-source method for a shoebox room, every wall with the
same frequency-independent reflection coefficient, chosen so that the room's reverberation
time is the one drawn (Eyring's formula, which suits image sources better than Sabine's).
Each image arrives after ``distance / c`` with amplitude ``beta^reflections / (4 pi distance)``
and is placed with a Hann-windowed sinc (fractional delays). The response is cut after its
RT60 (the 60 dB decay) or ``MAX_RIR_SECONDS``, whichever is shorter.

Each reverberant copy ``k`` of utterance ``u`` is ``rev{k}-<u>`` of speaker ``rev{k}-<spk>``
(Kaldi's ``reverberate_data_dir.py`` prefixes its copies the same way). The response is shifted
so that the direct sound is at time 0 (Kaldi's ``--shift-output``) and the copy is as long as
the original and has its power, so level is not a cue. Random choices come from (seed,
utterance id, copy), as for additive noise (:mod:`asr.data.noise`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from asr.data.audio import load_audio, resample
from asr.data.datadir import DataDir
from asr.data.noise import AUDIO_SUFFIXES, copy_rng, power
from asr.data.speed_perturb import (
    PCM16_MAX,
    AugmentedDirWriter,
    check_destination,
    check_new_ids,
)
from asr.errors import AsrError, AudioError, ConfigError

log = logging.getLogger(__name__)

SPEED_OF_SOUND = 343.0  # m/s
MAX_RIR_SECONDS = 0.6
SINC_HALF_WIDTH = 8  # taps on each side of a fractional-delay impulse
HIGH_PASS_HZ = 80.0
# Room sizes (m) drawn uniformly per copy: offices to small halls; source and microphone
# at least WALL_GAP from every wall.
ROOM_RANGE = ((3.0, 10.0), (3.0, 8.0), (2.5, 4.0))
WALL_GAP = 0.5


def reverb_prefix(copy: int) -> str:
    """The id prefix of reverberant copy ``copy`` (from 1): ``rev1-``."""
    return f"rev{copy}-"


@dataclass(frozen=True)
class Room:
    """A shoebox room, a source and a microphone in it (metres) and its RT60 (seconds)."""

    size: tuple[float, float, float]
    source: tuple[float, float, float]
    mic: tuple[float, float, float]
    rt60: float

    @property
    def reflection(self) -> float:
        """Every wall's pressure reflection coefficient for this RT60 (Eyring)."""
        lx, ly, lz = self.size
        volume = lx * ly * lz
        surface = 2.0 * (lx * ly + lx * lz + ly * lz)
        # RT60 = 0.161 V / (-S ln(1 - a)), energy reflected 1 - a = beta^2
        return math.exp(-0.161 * volume / (2.0 * surface * self.rt60))

    @property
    def direct_distance(self) -> float:
        return math.dist(self.source, self.mic)


def draw_room(rt60_range: tuple[float, float], rng: np.random.Generator) -> Room:
    """A random room, source and microphone position, and an RT60 from ``rt60_range``."""
    size = tuple(float(rng.uniform(lo, hi)) for lo, hi in ROOM_RANGE)

    def point() -> tuple[float, float, float]:
        return tuple(float(rng.uniform(WALL_GAP, side - WALL_GAP)) for side in size)

    source, mic = point(), point()
    while math.dist(source, mic) < 0.3:  # not on top of each other
        mic = point()
    return Room(size, source, mic, float(rng.uniform(*rt60_range)))  # type: ignore[arg-type]


def decay_time(energy: np.ndarray, sample_rate: int) -> float:
    """RT60 from an energy envelope (squared impulse response, or a histogram of arrivals'
    energy) by ISO 3382's T20: the Schroeder curve's time from -5 to -25 dB, times 3."""
    schroeder = np.cumsum(energy[::-1])[::-1]
    level = 10.0 * np.log10(np.maximum(schroeder / schroeder[0], 1e-30))
    start, end = int(np.argmax(level <= -5.0)), int(np.argmax(level <= -25.0))
    if end <= start:
        return float("nan")
    return 3.0 * (end - start) / sample_rate


def _images(room: Room, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Distances (m) and wall-reflection counts of every image source within ``reach``."""
    size, source, mic = np.array(room.size), np.array(room.source), np.array(room.mic)
    orders = [
        np.arange(-int(reach // (2 * side)) - 1, int(reach // (2 * side)) + 2) for side in size
    ]
    grids = np.meshgrid(*orders, indexing="ij")
    n = np.stack([g.ravel() for g in grids], axis=1)  # (images, 3)
    distances, reflections = [], []
    for parity in np.ndindex(2, 2, 2):
        p = np.array(parity)
        distance = np.linalg.norm((1 - 2 * p) * source + 2 * n * size - mic, axis=1)
        keep = distance <= reach
        distances.append(distance[keep])
        reflections.append((np.abs(n[keep] - p) + np.abs(n[keep])).sum(axis=1))
    return np.concatenate(distances), np.concatenate(reflections)


def image_source_rir(room: Room, sample_rate: int) -> np.ndarray:
    """The room's impulse response from source to microphone, direct sound at its true delay.

    Image sources in a shoebox decay more slowly than Eyring's diffuse-field formula says
    (paths along the room's long axis meet few walls). So the reflection coefficient starts at
    Eyring's and is corrected, from the arrivals' energy histogram (cheap, no waveform), until
    the response's T20 is the room's ``rt60``; the response is then high-passed at 80 Hz.
    """
    seconds = min(room.rt60, MAX_RIR_SECONDS)
    reach = SPEED_OF_SOUND * seconds + room.direct_distance
    length = int(math.ceil(reach / SPEED_OF_SOUND * sample_rate)) + SINC_HALF_WIDTH + 1
    distance, reflections = _images(room, reach)
    delay = distance / SPEED_OF_SOUND * sample_rate
    bins = np.minimum(delay.astype(np.int64), length - 1)
    log_beta = math.log(room.reflection)
    for _ in range(4):
        energy = np.exp(2 * log_beta * reflections) / distance**2
        measured = decay_time(np.bincount(bins, weights=energy, minlength=length), sample_rate)
        if not math.isfinite(measured) or abs(measured / room.rt60 - 1.0) < 0.02:
            break
        log_beta *= measured / room.rt60  # the decay rate in dB/s is proportional to -ln beta
    gain = np.exp(log_beta * reflections) / (4.0 * np.pi * distance)
    rir = np.zeros(length + SINC_HALF_WIDTH + 1)
    taps = np.arange(-SINC_HALF_WIDTH, SINC_HALF_WIDTH + 1)
    whole = np.floor(delay).astype(np.int64)
    offsets = taps[None, :] - (delay - whole)[:, None]
    window = 0.5 * (1.0 + np.cos(np.pi * offsets / (SINC_HALF_WIDTH + 1)))
    values = gain[:, None] * np.sinc(offsets) * window
    index = whole[:, None] + taps[None, :]
    valid = (index >= 0) & (index < len(rir))
    np.add.at(rir, index[valid], values[valid])
    return high_pass(rir[:length], sample_rate)


def high_pass(wave: np.ndarray, sample_rate: int, cutoff: float = HIGH_PASS_HZ) -> np.ndarray:
    """A causal 2nd-order Butterworth high-pass (bilinear transform), as Allen & Berkley advise.

    Every image arrives with the same sign, so a dense late response piles up a DC offset that
    is not sound at all and lengthens its apparent decay by about half (T20 0.70 s instead of
    0.50 in a 6 x 4 x 3 m room). Causal, so nothing comes before the direct sound."""
    k = math.tan(math.pi * cutoff / sample_rate)
    norm = 1.0 / (1.0 + math.sqrt(2.0) * k + k * k)
    b0, b1, b2 = norm, -2.0 * norm, norm
    a1, a2 = 2.0 * (k * k - 1.0) * norm, (1.0 - math.sqrt(2.0) * k + k * k) * norm
    out = np.empty(len(wave))
    x1 = x2 = y1 = y2 = 0.0
    for n, x in enumerate(wave.tolist()):
        y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        out[n] = y
        x2, x1, y2, y1 = x1, x, y1, y
    return out


def reverberate(clean: np.ndarray, rir: np.ndarray, direct_delay: int) -> np.ndarray:
    """``clean`` through ``rir``, the direct sound at time 0, as long as ``clean`` and with its
    power."""
    n = len(clean) + len(rir) - 1
    size = 1 << (n - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(clean, size) * np.fft.rfft(rir, size), size)
    wet = wet[direct_delay : direct_delay + len(clean)]
    wet_power = power(wet)
    if wet_power > 0:
        wet = wet * math.sqrt(power(clean) / wet_power)
    return wet


class RirFiles:
    """Room impulse responses from audio files (recorded or simulated elsewhere)."""

    def __init__(self, rir_dir: str | os.PathLike) -> None:
        self.root = Path(rir_dir)
        if not self.root.is_dir():
            raise ConfigError(f"--rir-dir {self.root}: no such folder")
        self.paths = sorted(
            p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
        )
        if not self.paths:
            raise ConfigError(f"--rir-dir {self.root}: no audio files in it")

    def draw(self, sample_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        path = self.paths[int(rng.integers(len(self.paths)))]
        wave, rate = load_audio(path)
        if wave.ndim > 1:
            wave = wave[:, 0]
        if rate != sample_rate:
            wave = resample(wave, rate, sample_rate)
        if not np.any(wave):
            raise AudioError(f"{path}: silent impulse response")
        return np.asarray(wave, dtype=np.float64), str(path)


@dataclass
class ReverbReport:
    """What ``reverberate_datadir`` wrote: the room (or RIR file) of each reverberant copy."""

    path: Path
    utterances: int = 0
    written: int = 0
    rooms: dict[str, Room | str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    scaled: int = 0

    def summary(self) -> str:
        return (
            f"{self.path}: {self.written} utterances from {self.utterances} "
            f"({len(self.rooms)} reverberant copies, {self.scaled} scaled down to avoid "
            f"clipping); {len(self.failed)} skipped (unreadable or silent)"
        )


def check_rt60_range(rt60_range: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in rt60_range)
    except (TypeError, ValueError):
        raise ConfigError(f"--rt60 {rt60_range!r} must be two numbers (seconds)") from None
    if not (math.isfinite(low) and math.isfinite(high)) or not 0 < low <= high:
        raise ConfigError(f"--rt60 {low:g}:{high:g}: must be positive seconds, low before high")
    return low, high


def reverberate_datadir(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    rt60_range: tuple[float, float] = (0.2, 0.8),
    rir_dir: str | os.PathLike | None = None,
    rooms: int = 50,
    copies: int = 1,
    keep_clean: bool = True,
    seed: int = 0,
    audio_dir: str | os.PathLike | None = None,
    progress: bool = True,
    allow_pipe: bool = False,
) -> ReverbReport:
    """Write ``dst`` with ``copies`` reverberant copies of every utterance of ``src`` (and,
    with ``keep_clean``, the originals), each through one of ``rooms`` simulated rooms (drawn
    from ``seed``, RT60 from ``rt60_range``; simulating is the slow part, so the rooms are a
    bank that copies draw from) or, with ``rir_dir``, a random impulse response file there."""
    low, high = check_rt60_range(rt60_range)
    if copies < 1:
        raise ConfigError(f"--copies must be at least 1, got {copies}")
    if rooms < 1:
        raise ConfigError(f"--rooms must be at least 1, got {rooms}")
    bank_rng = np.random.default_rng([seed % 2**64, 0x2EE5])
    bank = [draw_room((low, high), bank_rng) for _ in range(rooms)]
    responses: dict[tuple[int, int], np.ndarray] = {}  # (room, sample rate) -> RIR
    files = RirFiles(rir_dir) if rir_dir is not None else None
    source = DataDir.load(src)
    dst = Path(dst)
    check_destination(source.path, dst)
    prefixes = [reverb_prefix(k) for k in range(1, copies + 1)]
    check_new_ids(source, prefixes, keep_clean)
    writer = AugmentedDirWriter(source, dst, Path(audio_dir) if audio_dir else dst / "audio")
    report = ReverbReport(dst, utterances=len(source.utt2spk))
    with logging_redirect_tqdm():
        for utt in tqdm(source.utt_ids, desc=f"reverb {dst}", unit="utt", disable=not progress):
            try:
                clean, rate = source.load_audio(utt, allow_pipe=allow_pipe)
            except AsrError as exc:
                log.warning("skipped: %s", exc)
                report.failed[utt] = str(exc)
                continue
            if keep_clean:
                writer.keep(utt)
            if power(clean) == 0.0:
                report.failed[utt] = f"utterance '{utt}': silent audio, nothing to reverberate"
                log.warning("no reverberant copy: %s", report.failed[utt])
                continue
            for k, prefix in enumerate(prefixes, start=1):
                rng = copy_rng(seed, utt, k)
                if files is not None:
                    try:
                        rir, name = files.draw(rate, rng)
                    except AsrError as exc:
                        report.failed[utt] = str(exc)
                        log.warning("no reverberant copy: %s", exc)
                        continue
                    what: Room | str = name
                    direct = int(np.argmax(np.abs(rir)))
                else:
                    index = int(rng.integers(rooms))
                    room = bank[index]
                    if (index, rate) not in responses:
                        responses[index, rate] = image_source_rir(room, rate)
                    rir = responses[index, rate]
                    what = room
                    direct = int(round(room.direct_distance / SPEED_OF_SOUND * rate))
                wet = reverberate(np.asarray(clean, dtype=np.float64), rir, direct)
                peak = float(np.max(np.abs(wet)))
                if peak > PCM16_MAX:
                    wet *= PCM16_MAX / peak
                    report.scaled += 1
                report.rooms[writer.add(utt, prefix, wet, rate)] = what
    data = writer.save()
    report.written = len(data.utt2spk)
    return report
