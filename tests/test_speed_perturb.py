"""Speed perturbation of a data directory: length, pitch, ids, segments, bad input, real data."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.data.datadir import DataDir, read_kaldi_map
from asr.data.speed_perturb import speed_perturb_datadir
from asr.data.validate import validate_datadir
from asr.errors import ConfigError, DataDirError

RATE = 8000


def sine(freq: float, seconds: float = 0.5, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wave: np.ndarray, rate: int = RATE) -> float:
    """The dominant frequency, finely resolved by zero-padding."""
    n = 1 << 16
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave)), n))
    return float(np.argmax(spectrum) * rate / n)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def make_datadir(root: Path, freqs: dict[str, float]) -> Path:
    """Utterances '<spk>-<n>' (speaker = first token before '-'), each a sine at its freq."""
    data, wavs = root / "src", root / "wavs"
    data.mkdir()
    wavs.mkdir()
    for utt, freq in freqs.items():
        sf.write(wavs / f"{utt}.wav", sine(freq), RATE, subtype="PCM_16")
    utts = sorted(freqs)
    write_lines(data / "wav.scp", [f"{u} {wavs / u}.wav" for u in utts])
    write_lines(data / "text", [f"{u} WORD {u.upper()}" for u in utts])
    write_lines(data / "utt2spk", [f"{u} {u.split('-')[0]}" for u in utts])
    speakers = sorted({u.split("-")[0] for u in utts})
    write_lines(
        data / "spk2utt",
        [f"{s} {' '.join(u for u in utts if u.startswith(s + '-'))}" for s in speakers],
    )
    write_lines(data / "spk2gender", [f"{s} {'mf'[i % 2]}" for i, s in enumerate(speakers)])
    write_lines(data / "utt2dur", [f"{u} 0.5" for u in utts])
    return data


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_three_way_lengths_pitch_ids_and_tables(tmp_path):
    src = make_datadir(tmp_path, {"a-1": 440.0, "a-2": 600.0, "b-1": 500.0})
    before = snapshot(src), snapshot(tmp_path / "wavs")
    out = tmp_path / "sp"
    report = speed_perturb_datadir(src, out, progress=False)
    assert report.written == 9 and report.failed == {}
    assert validate_datadir(out) == []
    assert (snapshot(src), snapshot(tmp_path / "wavs")) == before  # the source is untouched

    data = DataDir.load(out)
    source = DataDir.load(src)
    assert data.utt_ids == sorted(
        [*source.utt_ids, *(f"sp{f}-{u}" for f in ("0.9", "1.1") for u in source.utt_ids)]
    )
    assert data.speakers == ["a", "b", "sp0.9-a", "sp0.9-b", "sp1.1-a", "sp1.1-b"]
    assert data.utt2spk["sp0.9-b-1"] == "sp0.9-b"
    assert data.text["sp1.1-a-2"] == source.text["a-2"] == "WORD A-2"
    assert data.extra["spk2gender"] == {
        **source.extra["spk2gender"],
        **{f"sp{f}-{s}": g for f in ("0.9", "1.1") for s, g in source.extra["spk2gender"].items()},
    }
    for utt in source.utt_ids:  # factor 1 keeps the original lines
        assert data.wav_scp[utt] == source.wav_scp[utt]
        assert data.utt2dur[utt] == source.utt2dur[utt]
    for factor in (0.9, 1.1):
        for utt, freq in (("a-1", 440.0), ("a-2", 600.0), ("b-1", 500.0)):
            copy = f"sp{factor:g}-{utt}"
            assert data.wav_scp[copy].endswith(f"/sp/audio/{copy}.flac")
            wave, rate = data.load_audio(copy)
            assert rate == RATE
            assert abs(len(wave) - 4000 / factor) <= 2
            assert data.utt2dur[copy] == pytest.approx(len(wave) / RATE)
            # sox speed: the tone's pitch moves with the tempo
            assert peak_hz(wave) == pytest.approx(freq * factor, abs=1.0)
            assert sf.info(data.wav_scp[copy]).subtype == "PCM_16"


def test_segmented_source_keeps_original_segments(tmp_path):
    # one recording: 0.5 s at 440 Hz then 0.5 s at 880 Hz, two segments
    data_dir, rec = tmp_path / "seg", tmp_path / "rec.wav"
    data_dir.mkdir()
    sf.write(rec, np.concatenate([sine(440.0), sine(880.0)]), RATE, subtype="PCM_16")
    write_lines(data_dir / "wav.scp", [f"rec {rec}"])
    write_lines(data_dir / "segments", ["s-1 rec 0.00 0.50", "s-2 rec 0.50 1.00"])
    write_lines(data_dir / "utt2spk", ["s-1 s", "s-2 s"])
    write_lines(data_dir / "spk2utt", ["s s-1 s-2"])
    write_lines(data_dir / "text", ["s-1 LOW", "s-2 HIGH"])
    out = tmp_path / "sp"
    speed_perturb_datadir(data_dir, out, factors=(1.0, 0.9), progress=False)
    assert validate_datadir(out) == []
    data = DataDir.load(out)
    assert read_kaldi_map(out / "segments")["s-2"] == "rec 0.50 1.00"
    assert data.wav_scp["rec"] == str(rec)
    for utt, freq in (("s-1", 440.0), ("s-2", 880.0)):
        copy = f"sp0.9-{utt}"
        segment = data.segments[copy]
        assert segment.recording == copy and segment.start == 0.0
        wave, _ = data.load_audio(copy)  # the copy is the whole file the segment spans
        assert abs(len(wave) - 4000 / 0.9) <= 2 and segment.end == pytest.approx(len(wave) / RATE)
        assert peak_hz(wave) == pytest.approx(freq * 0.9, abs=1.0)

    # without factor 1 there are no originals, so no segments at all
    only = tmp_path / "only"
    speed_perturb_datadir(
        data_dir, only, factors=[1.1], audio_dir=tmp_path / "flac", progress=False
    )
    assert validate_datadir(only) == []
    assert not (only / "segments").exists()
    assert sorted(p.name for p in (tmp_path / "flac").iterdir()) == [
        "sp1.1-s-1.flac",
        "sp1.1-s-2.flac",
    ]


def test_unreadable_audio_is_reported_and_skipped(tmp_path, caplog, capsys):
    src = make_datadir(tmp_path, {"a-1": 440.0, "a-2": 600.0})
    bad = tmp_path / "wavs" / "a-2.wav"
    bad.write_bytes(b"not audio at all")
    out = tmp_path / "sp"
    with caplog.at_level(logging.WARNING):
        report = speed_perturb_datadir(src, out, factors=(0.9, 1.0), progress=False)
    assert list(report.failed) == ["a-2"]
    message = report.failed["a-2"]
    assert "'a-2'" in message and str(bad) in message and "not an audio file" in message
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "a-2" in warnings[0] and "\n" not in warnings[0]
    assert DataDir.load(out).utt_ids == ["a-1", "sp0.9-a-1"]
    assert validate_datadir(out) == []
    assert main(["data", "speed-perturb", str(src), str(tmp_path / "cli"), "--no-progress"]) == 1
    summary = capsys.readouterr().out
    assert "3 utterances from 2 (speed factors 0.9 1 1.1); 1 unreadable, skipped" in summary


def test_factors_are_checked(tmp_path):
    src = make_datadir(tmp_path, {"a-1": 440.0})
    for factors, match in (
        ((0.9, 0.0), "must be a positive number"),
        ((-1.0,), "must be a positive number"),
        ((0.9, 1.0, 0.9), "given twice"),
        ((), "at least one factor"),
    ):
        with pytest.raises(ConfigError, match=match):
            speed_perturb_datadir(src, tmp_path / "out", factors=factors, progress=False)
    assert not (tmp_path / "out").exists()


def test_clashing_ids_fail_before_anything_is_written(tmp_path):
    src = make_datadir(tmp_path, {"a-1": 440.0, "sp0.9-a-1": 440.0})
    with pytest.raises(DataDirError, match="copy 'sp0.9-a-1' of 'a-1' would replace"):
        speed_perturb_datadir(src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataDirError, match="cannot overwrite its source"):
        speed_perturb_datadir(src, src, progress=False)


def test_cli_speed_perturb_and_rerun_replaces_tables(tmp_path, capsys):
    src = make_datadir(tmp_path, {"a-1": 440.0, "b-1": 500.0})
    out = tmp_path / "sp"
    (out).mkdir()
    write_lines(out / "feats.scp", ["old x.ark:1"])  # a stale table from an earlier run
    args = ["data", "speed-perturb", str(src), str(out), "--factors", "0.8", "1.0"]
    assert main([*args, "--no-progress"]) == 0
    summary = capsys.readouterr().out.strip()
    assert summary == f"{out}: 4 utterances from 2 (speed factors 0.8 1); 0 unreadable, skipped"
    assert not (out / "feats.scp").exists()
    assert main(["data", "validate", str(out)]) == 0
    wave, _ = DataDir.load(out).load_audio("sp0.8-b-1")
    assert abs(len(wave) - 5000) <= 2


@pytest.mark.integration
def test_fsdd_recordings(tmp_path, fsdd_dir):
    words = "zero one two three four five six seven eight nine".split()
    names = ["0_george_0", "5_jackson_1", "9_theo_2"]
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    src = tmp_path / "fsdd"
    src.mkdir()
    rows = []
    for name in names:
        digit, speaker, _ = name.split("_")
        shutil.copy(fsdd_dir / f"{name}.wav", wavs / f"{name}.wav")
        rows.append((f"{speaker}-{name}", speaker, words[int(digit)], wavs / f"{name}.wav"))
    rows.sort()
    write_lines(src / "wav.scp", [f"{u} {p}" for u, _, _, p in rows])
    write_lines(src / "text", [f"{u} {w}" for u, _, w, _ in rows])
    write_lines(src / "utt2spk", [f"{u} {s}" for u, s, _, _ in rows])
    write_lines(src / "spk2utt", [f"{s} {u}" for u, s, _, _ in rows])
    out = tmp_path / "sp"
    report = speed_perturb_datadir(src, out, progress=False)
    assert report.written == 9 and not report.failed
    assert validate_datadir(out) == []
    data = DataDir.load(out)
    for utt, _, word, path in rows:
        original, rate = sf.read(path, dtype="float32")
        for factor in (0.9, 1.1):
            wave, copy_rate = data.load_audio(f"sp{factor:g}-{utt}")
            assert copy_rate == rate == 8000
            assert abs(len(wave) - len(original) / factor) <= 2
            assert data.text[f"sp{factor:g}-{utt}"] == word
            # same content, other tempo: the energy is kept
            assert np.mean(wave**2) == pytest.approx(np.mean(original**2), rel=0.05)
