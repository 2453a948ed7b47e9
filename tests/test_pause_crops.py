"""Crops at pauses: speech runs found by energy, word spans cut between them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.data.datadir import DataDir
from asr.data.pause_crops import crop_at_pauses, span_bounds, speech_runs
from asr.data.validate import validate_datadir

RATE = 8000


def _bursts(spec: list[tuple[float, float]], total: float, seed: int = 0) -> np.ndarray:
    """Tone bursts at the given (start, end) seconds over faint noise."""
    rng = np.random.default_rng(seed)
    wave = 1e-4 * rng.standard_normal(int(total * RATE))
    for start, end in spec:
        t = np.arange(int(start * RATE), int(end * RATE))
        wave[t] += 0.4 * np.sin(2 * np.pi * 440 * t / RATE)
    return wave.astype(np.float32)


def test_speech_runs_find_the_bursts() -> None:
    spec = [(0.30, 0.70), (0.95, 1.40), (1.70, 2.00)]
    runs = speech_runs(_bursts(spec, 2.5), RATE)
    assert len(runs) == 3
    for (start, end), (s, e) in zip(spec, runs, strict=True):
        assert abs(start - s) <= 0.011 and abs(end - e) <= 0.011


def test_short_gaps_merge_and_clicks_are_dropped() -> None:
    # a 30 ms gap is inside a word; a 40 ms burst is a click
    runs = speech_runs(_bursts([(0.2, 0.5), (0.53, 0.8), (1.2, 1.24)], 1.5), RATE)
    assert len(runs) == 1 and abs(runs[0][0] - 0.2) <= 0.011 and abs(runs[0][1] - 0.8) <= 0.011


def test_empty_audio_has_no_runs() -> None:
    assert speech_runs(np.zeros(0, dtype=np.float32), RATE) == []


def test_span_bounds_cut_in_the_middle_of_pauses() -> None:
    runs = [(0.3, 0.7), (0.9, 1.3), (1.7, 2.0)]
    assert span_bounds(runs, 0, 2, 2.5) == (0.0, 2.5)
    assert span_bounds(runs, 1, 1, 2.5) == pytest.approx((0.8, 1.5))
    assert span_bounds(runs, 2, 2, 2.5) == pytest.approx((1.5, 2.5))


def _datadir(tmp_path: Path) -> Path:
    audio = tmp_path / "audio"
    audio.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    recordings = {
        "s-a": ([(0.3, 0.7), (0.95, 1.4), (1.7, 2.0)], "ONE TWO THREE"),
        # two runs for three words: cannot be cut, kept whole
        "s-b": ([(0.3, 0.7), (0.95, 1.4)], "ONE TWO THREE"),
    }
    lines = []
    for utt, (spec, _) in recordings.items():
        sf.write(audio / f"{utt}.wav", _bursts(spec, 2.5), RATE, subtype="PCM_16")
        lines.append(f"{utt} {audio / f'{utt}.wav'}")
    (data / "wav.scp").write_text("\n".join(lines) + "\n")
    (data / "text").write_text("".join(f"{u} {t}\n" for u, (_, t) in recordings.items()))
    (data / "utt2spk").write_text("s-a s\ns-b s\n")
    (data / "spk2utt").write_text("s s-a s-b\n")
    return data


def test_crops_have_matching_words_and_audio(tmp_path: Path) -> None:
    data = _datadir(tmp_path)
    out = tmp_path / "crops"
    report = crop_at_pauses(data, out, crops_per_utt=10, seed=3)
    assert report.cropped == 1 and list(report.kept_whole) == ["s-b"]
    assert validate_datadir(out) == []
    crops = DataDir.load(out)
    # s-a: all 6 spans of 3 words; s-b: only the whole recording
    assert sorted(crops.utt_ids) == [
        "s-a-w0-0", "s-a-w0-1", "s-a-w0-2", "s-a-w1-1", "s-a-w1-2", "s-a-w2-2", "s-b-w0-2",
    ]  # fmt: skip
    words = "ONE TWO THREE".split()
    for utt in crops.utt_ids:
        first, last = (int(x) for x in utt.rsplit("-w", 1)[1].split("-"))
        assert crops.text[utt] == " ".join(words[first : last + 1])
        wave, rate = crops.load_audio(utt)
        # each crop holds exactly its own bursts
        assert len(speech_runs(wave, rate)) == (last - first + 1 if utt.startswith("s-a") else 2)


def test_same_seed_same_spans_and_cli(tmp_path: Path, capsys) -> None:
    data = _datadir(tmp_path)
    crop_at_pauses(data, tmp_path / "one", crops_per_utt=2, seed=7)
    args = ["data", "crop-at-pauses", str(data), str(tmp_path / "two"), "--per-utt", "2"]
    assert main([*args, "--seed", "7"]) == 0
    assert "1 cut at pauses, 1 kept whole" in capsys.readouterr().out
    one = (tmp_path / "one" / "segments").read_text()
    assert one == (tmp_path / "two" / "segments").read_text()
    assert len(one.splitlines()) == 3 + 1  # whole + 2 crops of s-a, whole s-b


@pytest.mark.integration
def test_yesno_training_recordings_split_into_eight_words(yesno_dir: Path) -> None:
    waves = sorted(yesno_dir.glob("*.wav"))[:30]
    counts = [len(speech_runs(*sf.read(w, dtype="float32"))) for w in waves]
    assert sum(c == 8 for c in counts) >= 28, counts
