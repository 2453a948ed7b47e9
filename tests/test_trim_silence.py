"""End-pointing: each utterance cut to its speech by a segments file, audio untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from asr.cli import main
from asr.data.datadir import DataDir
from asr.data.trim import trim_silence_datadir
from asr.data.validate import validate_datadir

RATE = 8000


def _word(start: float, end: float, total: float, seed: int) -> np.ndarray:
    """A tone 'word' at [start, end) seconds over faint noise."""
    rng = np.random.default_rng(seed)
    wave = 1e-4 * rng.standard_normal(int(total * RATE))
    t = np.arange(int(start * RATE), int(end * RATE))
    wave[t] += 0.4 * np.sin(2 * np.pi * 300 * t / RATE)
    return wave.astype(np.float32)


def _datadir(root: Path, words: dict[str, tuple[float, float, float]]) -> Path:
    root.mkdir(parents=True)
    wav, text, utt2spk = [], [], []
    for n, (utt, (start, end, total)) in enumerate(sorted(words.items())):
        path = root / f"{utt}.wav"
        sf.write(path, _word(start, end, total, n), RATE, subtype="PCM_16")
        wav.append(f"{utt} {path}\n")
        text.append(f"{utt} one\n")
        utt2spk.append(f"{utt} spk\n")
    (root / "wav.scp").write_text("".join(wav))
    (root / "text").write_text("".join(text))
    (root / "utt2spk").write_text("".join(utt2spk))
    (root / "spk2utt").write_text("spk " + " ".join(sorted(words)) + "\n")
    (root / "spk2gender").write_text("spk m\n")
    return root


def test_segments_cover_the_speech_plus_margin(tmp_path) -> None:
    src = _datadir(tmp_path / "src", {"a": (0.40, 0.70, 1.5), "b": (0.02, 0.50, 0.6)})
    report = trim_silence_datadir(src, tmp_path / "out", margin=0.05, progress=False)
    out = DataDir.load(tmp_path / "out")
    assert validate_datadir(tmp_path / "out") == []
    a, b = out.segments["a"], out.segments["b"]
    assert a.recording == "a" and abs(a.start - 0.35) <= 0.011 and abs(a.end - 0.75) <= 0.011
    assert b.start == 0.0 and abs(b.end - 0.55) <= 0.011  # clipped at the recording's start
    assert out.wav_scp == DataDir.load(src).wav_scp  # audio is not rewritten
    assert out.extra["spk2gender"] == {"spk": "m"}
    assert abs(out.utt2dur["a"] - 0.40) <= 0.02
    assert report.utterances == 2 and abs(report.removed_seconds - (1.5 - 0.4 + 0.6 - 0.55)) < 0.03
    # what the trimmed utterance loads is the word, not the silence around it
    wave, _ = out.load_audio("a")
    assert abs(len(wave) / RATE - 0.40) <= 0.02 and np.abs(wave).max() > 0.3


def test_existing_segments_are_trimmed_within_their_recording(tmp_path) -> None:
    first = _datadir(tmp_path / "src", {"rec": (1.20, 1.50, 2.0)})
    (first / "segments").write_text("rec rec 1.0 2.0\n")
    trim_silence_datadir(first, tmp_path / "out", margin=0.0, progress=False)
    seg = DataDir.load(tmp_path / "out").segments["rec"]
    assert abs(seg.start - 1.20) <= 0.011 and abs(seg.end - 1.50) <= 0.011


def test_unreadable_audio_is_reported_and_skipped(tmp_path, capsys) -> None:
    src = _datadir(tmp_path / "src", {"a": (0.4, 0.7, 1.0), "b": (0.4, 0.7, 1.0)})
    (src / "b.wav").write_bytes(b"RIFF\x00\x00")
    status = main(["data", "trim-silence", str(src), str(tmp_path / "out"), "--no-progress"])
    assert status == 1
    assert "1 unreadable" in capsys.readouterr().out
    out = DataDir.load(tmp_path / "out")
    assert list(out.utt_ids) == ["a"] and validate_datadir(tmp_path / "out") == []


def test_silent_utterance_is_kept_whole(tmp_path) -> None:
    src = _datadir(tmp_path / "src", {"a": (0.4, 0.7, 1.0)})
    sf.write(src / "a.wav", np.zeros(RATE, dtype=np.float32), RATE, subtype="PCM_16")
    report = trim_silence_datadir(src, tmp_path / "out", progress=False)
    seg = DataDir.load(tmp_path / "out").segments["a"]
    assert (seg.start, seg.end) == (0.0, 1.0) and "a" in report.no_speech
