"""Planning windows over long recordings (cuts in pauses) and merging their units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.decoding.timing import TimedUnit
from asr.errors import AudioError, ConfigError
from asr.transcribe.long_audio import Window, iter_windows, merge_units, plan_windows

RATE = 8000


def speech_with_pauses(seconds: float, pauses: list[tuple[float, float]], seed: int = 0):
    """Noise 'speech' at 0.3 with near-silent stretches (seconds) at 1e-4."""
    rng = np.random.default_rng(seed)
    wave = (rng.normal(size=int(seconds * RATE)) * 0.3).astype(np.float32)
    for a, b in pauses:
        wave[int(a * RATE) : int(b * RATE)] *= 3e-4
    return wave


def check_tiling(windows: list[Window], total: int, max_samples: int, overlap: bool = True) -> None:
    assert windows[0].start == 0 and windows[0].keep_start == 0
    assert windows[-1].end == total and windows[-1].keep_end == total
    for w in windows:
        assert 0 <= w.start <= w.keep_start < w.keep_end <= w.end <= total
        assert w.end - w.start <= max_samples
    for a, b in zip(windows, windows[1:], strict=False):
        assert a.keep_end == b.keep_start
        assert b.start < a.end if overlap else b.start == a.end


def test_cuts_land_in_pauses_and_keep_regions_tile() -> None:
    pauses = [(7.0, 7.6), (15.2, 15.9), (23.0, 23.5), (31.0, 31.4)]
    wave = speech_with_pauses(40.0, pauses)
    windows = plan_windows(wave, RATE, max_seconds=10.0, overlap_seconds=1.0)
    check_tiling(windows, len(wave), 10 * RATE)
    assert len(windows) >= 4
    for w in windows[:-1]:
        cut = w.keep_end / RATE
        assert any(a <= cut <= b for a, b in pauses), f"cut at {cut:.2f} s is not in a pause"
        # windows reach half the overlap past the cut on both sides
        assert w.end - w.keep_end == pytest.approx(0.5 * RATE, abs=1)


def test_cut_goes_to_the_middle_of_the_pause() -> None:
    wave = speech_with_pauses(14.0, [(8.0, 8.6)])
    (first, second) = plan_windows(wave, RATE, max_seconds=10.0, overlap_seconds=1.0)
    assert first.keep_end / RATE == pytest.approx(8.3, abs=0.06)
    assert second.keep_start == first.keep_end
    assert second.start == first.keep_end - RATE // 2


def test_short_signal_is_one_window() -> None:
    wave = speech_with_pauses(5.0, [])
    assert plan_windows(wave, RATE, max_seconds=30.0) == [Window(0, len(wave), 0, len(wave))]
    exact = np.zeros(10 * RATE, dtype=np.float32)
    assert len(plan_windows(exact, RATE, max_seconds=10.0)) == 1
    assert plan_windows(np.zeros(0, dtype=np.float32), RATE) == [Window(0, 0, 0, 0)]


def test_signal_without_pauses_is_still_cut_at_the_limit() -> None:
    wave = speech_with_pauses(47.0, [], seed=3)
    windows = plan_windows(wave, RATE, max_seconds=10.0, overlap_seconds=2.0)
    check_tiling(windows, len(wave), 10 * RATE)
    assert len(windows) >= 5
    for w in windows[:-1]:
        # the cut stays in the search stretch before the limit, so windows stay long
        assert w.end - w.start >= 7 * RATE


def test_zero_overlap_and_digital_silence() -> None:
    wave = np.zeros(25 * RATE, dtype=np.float32)
    windows = plan_windows(wave, RATE, max_seconds=10.0, overlap_seconds=0.0)
    check_tiling(windows, len(wave), 10 * RATE, overlap=False)
    assert windows[0].keep_end == windows[0].end == windows[1].start


def test_bad_parameters_and_shapes() -> None:
    wave = np.zeros(RATE, dtype=np.float32)
    with pytest.raises(ConfigError, match="overlap"):
        plan_windows(wave, RATE, max_seconds=4.0, overlap_seconds=2.0)
    with pytest.raises(ConfigError, match="positive"):
        plan_windows(wave, RATE, max_seconds=0.0)
    with pytest.raises(AudioError, match="1-D"):
        plan_windows(np.zeros((2, RATE)), RATE)


def unit(text: str, start: float, end: float) -> TimedUnit:
    return TimedUnit(text, start, end, 1.0)


def test_merge_units_keeps_each_unit_once_in_time_order() -> None:
    rate = 100
    w1 = Window(0, 1100, 0, 1000)
    w2 = Window(900, 2100, 1000, 2000)
    w3 = Window(1900, 2500, 2000, 2500)
    # both neighbours decode the words near each cut; the midpoint picks one copy
    first = [unit("a", 1.0, 2.0), unit("b", 9.5, 10.3), unit("c", 10.4, 10.9)]
    second = [unit("b", 9.5, 10.4), unit("c", 10.4, 10.8), unit("d", 15.0, 16.0)]
    second += [unit("e", 19.9, 20.1)]
    third = [unit("e", 19.9, 20.1), unit("f", 24.0, 25.0)]
    merged = merge_units([(w3, third), (w1, first), (w2, second)], rate)
    assert [u.text for u in merged] == ["a", "b", "c", "d", "e", "f"]
    assert merged[1] == first[1]  # midpoint 9.9 s: window 1's keep region
    assert merged[2] == second[1]  # midpoint 10.6 s: window 2's
    assert merged[4] == third[0]  # midpoint 20.0 s: window 3's (keep regions are half-open)
    assert [u.start for u in merged] == sorted(u.start for u in merged)


def test_merge_units_over_planned_windows_keeps_every_unit_once() -> None:
    wave = speech_with_pauses(33.0, [(9.0, 9.5), (18.0, 18.4)])
    windows = plan_windows(wave, RATE, max_seconds=10.0, overlap_seconds=2.0)
    # one "unit" every 0.25 s; each window reports the ones that lie inside it
    truth = [unit(str(i), i * 0.25, i * 0.25 + 0.2) for i in range(132)]
    per_window = [
        (w, [u for u in truth if w.start / RATE <= u.start and u.end <= w.end / RATE])
        for w in windows
    ]
    assert merge_units(per_window, RATE) == truth


def test_merge_units_last_window_owns_its_end() -> None:
    w = Window(0, 100, 0, 100)
    assert merge_units([(w, [unit("x", 1.0, 1.0)])], 100) == [unit("x", 1.0, 1.0)]
    assert merge_units([], 100) == []


def test_iter_windows_reads_a_file_like_plan_windows(tmp_path: Path) -> None:
    wave = speech_with_pauses(25.0, [(8.0, 8.5), (16.5, 17.0)])
    path = tmp_path / "long.flac"
    sf.write(path, wave, RATE)
    read = sf.read(path, dtype="float32")[0]
    blocks = list(iter_windows(path, RATE, max_seconds=10.0, overlap_seconds=1.0))
    assert [w for w, _ in blocks] == plan_windows(read, RATE, 10.0, 1.0)
    for w, samples in blocks:
        np.testing.assert_array_equal(samples, read[w.start : w.end])
    # at another rate the windows are scaled and the samples resampled
    resampled = list(iter_windows(path, 16000, max_seconds=10.0, overlap_seconds=1.0))
    assert len(resampled) == len(blocks)
    assert resampled[-1][0].keep_end == 25 * 16000
    for w, samples in resampled:
        assert abs(len(samples) - (w.end - w.start)) <= 2


def test_iter_windows_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="bad.wav"):
        list(iter_windows(bad, RATE))
