"""Long recordings in overlapping windows, cut in pauses, and the merge of their results.

A recording longer than ``max_seconds`` is decoded window by window. Each cut point (the
boundary between two neighbours' *keep* regions) is placed at the quietest stretch in the last
few seconds before the window limit, so that it usually falls in a pause; the windows reach
``overlap_seconds / 2`` past the cut on each side, so a word near the cut is heard whole by at
least one window and the hard window edges lie away from the cut. ``merge_units`` then keeps
each unit from the window whose keep region holds its midpoint, so every unit is kept once.

Only a few seconds around each cut are looked at (10 ms frame energies of the search stretch),
so planning a one-hour recording costs memory for the wave itself and nothing in proportion.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.data.audio import resample
from asr.data.energy import frame_power, true_runs
from asr.decoding.timing import TimedUnit
from asr.errors import AudioError, ConfigError

FRAME_SECONDS = 0.01  # energy frames for finding pauses
SMOOTH_FRAMES = 5  # average energy over 50 ms so that a stop closure inside a word is no pause
SEARCH_SECONDS = 5.0  # how far back from the limit a cut may move (capped by the window size)
QUIET_DB = 3.0  # frames within this of the quietest one count as the same pause


@dataclass(frozen=True)
class Window:
    """Samples ``start`` .. ``end`` are decoded; units in ``keep_start`` .. ``keep_end`` kept."""

    start: int
    end: int
    keep_start: int
    keep_end: int


def _check_params(max_seconds: float, overlap_seconds: float) -> None:
    if not max_seconds > 0:
        raise ConfigError(f"max window length must be positive, got {max_seconds} s")
    if overlap_seconds < 0 or overlap_seconds * 2 >= max_seconds:
        raise ConfigError(
            f"window overlap must be >= 0 and less than half the window length, got "
            f"{overlap_seconds} s for {max_seconds} s windows"
        )


def _quiet_point(region: np.ndarray, frame: int) -> int:
    """Sample offset in ``region`` at the middle of its quietest stretch (10 ms frames)."""
    energy = frame_power(region, frame)
    count = len(energy)
    if count == 0:
        return len(region) // 2
    if count >= SMOOTH_FRAMES:
        kernel = np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES
        energy = np.convolve(energy, kernel, mode="same")
    level = 10.0 * np.log10(energy + 1e-12)
    quiet = level <= level.min() + QUIET_DB
    # the longest run of quiet frames is the most pause-like; its middle is the cut
    starts, ends = true_runs(quiet)
    longest = int(np.argmax(ends - starts))
    middle = (starts[longest] + ends[longest]) / 2.0
    return int(middle * frame)


def _plan(
    total: int,
    sample_rate: int,
    max_seconds: float,
    overlap_seconds: float,
    read: Callable[[int, int], np.ndarray],
) -> list[Window]:
    """Windows over ``total`` samples; ``read(a, b)`` gives samples a..b for the cut search."""
    _check_params(max_seconds, overlap_seconds)
    if sample_rate <= 0:
        raise ConfigError(f"sample rate must be positive, got {sample_rate}")
    size = max(1, int(max_seconds * sample_rate))
    half = int(round(overlap_seconds * sample_rate / 2))
    frame = max(1, int(round(FRAME_SECONDS * sample_rate)))
    search = int(min(SEARCH_SECONDS, max_seconds / 4) * sample_rate)
    windows: list[Window] = []
    start = keep_start = 0
    while total - start > size:
        limit = start + size
        # the cut c must leave the window end c + half within the limit and lie past keep_start
        hi = limit - half
        lo = max(keep_start + 1, hi - search)
        cut = lo + _quiet_point(read(lo, hi), frame) if hi > lo else hi
        cut = min(max(cut, keep_start + 1), hi)
        windows.append(Window(start, cut + half, keep_start, cut))
        start, keep_start = max(0, cut - half), cut
    windows.append(Window(start, total, keep_start, total))
    return windows


def plan_windows(
    wave: np.ndarray,
    sample_rate: int,
    max_seconds: float = 30.0,
    overlap_seconds: float = 2.0,
) -> list[Window]:
    """Split a 1-D wave into windows of at most ``max_seconds``, cut in pauses.

    Neighbours overlap by ``overlap_seconds`` and their keep regions meet in the middle of the
    overlap; keep regions tile ``0 .. len(wave)`` exactly. A wave no longer than
    ``max_seconds`` (an empty one too) is one window.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise AudioError(f"expected a 1-D (mono) wave, got shape {tuple(wave.shape)}")
    return _plan(len(wave), sample_rate, max_seconds, overlap_seconds, lambda a, b: wave[a:b])


def merge_units(
    per_window: Sequence[tuple[Window, Sequence[TimedUnit]]], sample_rate: int
) -> list[TimedUnit]:
    """Units (absolute times) whose midpoint lies in their window's keep region, by time.

    Call it once for words and once for units; a word and its letters near a cut are each
    judged by their own midpoints.
    """
    if sample_rate <= 0:
        raise ConfigError(f"sample rate must be positive, got {sample_rate}")
    if not per_window:
        return []
    first = min(w.keep_start for w, _ in per_window)
    last = max(w.keep_end for w, _ in per_window)
    kept: list[TimedUnit] = []
    for window, units in per_window:
        # half-open keep regions; the first and last also own whatever lies beyond the
        # recording's ends (a unit ending exactly at the end has its midpoint inside anyway)
        lo = -np.inf if window.keep_start == first else window.keep_start / sample_rate
        hi = np.inf if window.keep_end == last else window.keep_end / sample_rate
        kept.extend(u for u in units if lo <= (u.start + u.end) / 2.0 < hi)
    kept.sort(key=lambda u: (u.start, u.end))
    return kept


def iter_windows(
    path: str | os.PathLike,
    sample_rate: int,
    max_seconds: float = 30.0,
    overlap_seconds: float = 2.0,
) -> Iterator[tuple[Window, np.ndarray]]:
    """Read a long file window by window (memory flat): (window, float32 mono samples).

    Windows are planned on the file's own rate (reading only the cut search stretches) and
    given in ``sample_rate`` samples; each window's samples are resampled on their own.
    """

    path = Path(path)
    try:
        snd = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{path}: cannot read audio ({exc})") from None
    with snd:
        rate, total = snd.samplerate, snd.frames
        if total <= 0:
            raise AudioError(f"{path}: zero-length audio (no samples)")

        def read(a: int, b: int) -> np.ndarray:
            snd.seek(a)
            block = snd.read(frames=b - a, dtype="float32", always_2d=True)
            return block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]

        windows = _plan(total, rate, max_seconds, overlap_seconds, read)

        def scale(x: int) -> int:
            return int(round(x * sample_rate / rate))

        for window in windows:
            samples = read(window.start, window.end)
            if rate != sample_rate:
                samples = resample(samples, rate, sample_rate)
            scaled = Window(
                scale(window.start),
                scale(window.end),
                scale(window.keep_start),
                scale(window.keep_end),
            )
            yield scaled, np.ascontiguousarray(samples, dtype=np.float32)
