"""Additive noise for a data directory: SNR, determinism, noise colours, noise files, bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.data.datadir import DataDir
from asr.data.noise import add_noise_datadir, make_noise
from asr.data.subset import subset_datadir
from asr.data.validate import validate_datadir
from asr.errors import AudioError, ConfigError

RATE = 8000


def sine(freq: float, amplitude: float = 0.2, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def make_datadir(root: Path, waves: dict[str, np.ndarray], name: str = "src") -> Path:
    """Utterances '<spk>-<n>' with the given samples, written as 16-bit WAV."""
    data, wavs = root / name, root / f"{name}_wavs"
    data.mkdir()
    wavs.mkdir()
    for utt, wave in waves.items():
        sf.write(wavs / f"{utt}.wav", wave, RATE, subtype="PCM_16")
    utts = sorted(waves)
    speakers = sorted({u.split("-")[0] for u in utts})
    write_lines(data / "wav.scp", [f"{u} {wavs / u}.wav" for u in utts])
    write_lines(data / "text", [f"{u} TEXT OF {u}" for u in utts])
    write_lines(data / "utt2spk", [f"{u} {u.split('-')[0]}" for u in utts])
    write_lines(
        data / "spk2utt",
        [f"{s} {' '.join(u for u in utts if u.split('-')[0] == s)}" for s in speakers],
    )
    return data


def three_sines(root: Path) -> Path:
    return make_datadir(root, {"a-1": sine(440), "a-2": sine(300, 0.1), "b-1": sine(700, 0.3)})


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    clean = clean.astype(np.float64)
    return 10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2))


def test_snr_ids_and_clean_copies(tmp_path):
    src = three_sines(tmp_path)
    out = tmp_path / "noisy"
    report = add_noise_datadir(src, out, snr_range=(5, 20), copies=2, seed=1, progress=False)
    assert report.failed == {} and report.written == 9 and report.scaled == 0
    assert validate_datadir(out) == []
    data, source = DataDir.load(out), DataDir.load(src)
    assert sorted(report.snr) == [f"noise{k}-{u}" for k in (1, 2) for u in source.utt_ids]
    assert data.speakers == ["a", "b", "noise1-a", "noise1-b", "noise2-a", "noise2-b"]
    snrs = []
    for utt in source.utt_ids:
        assert data.wav_scp[utt] == source.wav_scp[utt]  # clean copy unchanged
        clean, _ = source.load_audio(utt)
        for k in (1, 2):
            copy = f"noise{k}-{utt}"
            assert data.utt2spk[copy] == f"noise{k}-{utt.split('-')[0]}"
            assert data.text[copy] == source.text[utt]
            noisy, rate = data.load_audio(copy)
            assert rate == RATE and len(noisy) == len(clean)
            assert 5 <= report.snr[copy] <= 20
            assert snr_db(clean, noisy) == pytest.approx(report.snr[copy], abs=0.1)
            snrs.append(report.snr[copy])
    assert len(set(snrs)) == len(snrs)  # drawn per copy, not one for all


def test_seed_determinism_and_independence_from_other_utterances(tmp_path):
    src = three_sines(tmp_path)

    def noisy(data_dir: Path, name: str, seed: int, utt: str = "b-1") -> np.ndarray:
        add_noise_datadir(data_dir, tmp_path / name, seed=seed, copies=2, progress=False)
        return DataDir.load(tmp_path / name).load_audio(f"noise2-{utt}")[0]

    first = noisy(src, "one", seed=7)
    np.testing.assert_array_equal(first, noisy(src, "two", seed=7))
    assert not np.array_equal(first, noisy(src, "three", seed=8))
    # the same utterance alone in its directory gets the same noise
    alone = subset_datadir(src, ["b-1"], tmp_path / "alone")
    np.testing.assert_array_equal(first, noisy(alone, "four", seed=7))
    # and copy 1 differs from copy 2
    copy1 = DataDir.load(tmp_path / "one").load_audio("noise1-b-1")[0]
    assert not np.array_equal(first, copy1)


def octave_slope_db(noise: np.ndarray) -> float:
    """Slope of the power spectral density in dB per octave, fitted over 6 octaves."""
    segments = noise[: len(noise) // 1024 * 1024].reshape(-1, 1024)
    psd = np.mean(np.abs(np.fft.rfft(segments * np.hanning(1024), axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(1024)
    centres = 0.004 * 2.0 ** np.arange(7)  # 0.004 .. 0.256 cycles/sample
    levels = [
        10 * np.log10(psd[(freqs >= c / np.sqrt(2)) & (freqs < c * np.sqrt(2))].mean())
        for c in centres
    ]
    return float(np.polyfit(np.log2(centres), levels, 1)[0])


def test_noise_colours_have_their_spectral_slopes():
    rng = np.random.default_rng(0)
    slopes = {kind: octave_slope_db(make_noise(kind, 1 << 17, rng)) for kind in ("white", "pink")}
    slopes["brown"] = octave_slope_db(make_noise("brown", 1 << 17, rng))
    assert abs(slopes["white"]) < 0.5
    assert -4.0 < slopes["pink"] < -2.0
    assert -7.5 < slopes["brown"] < -4.5
    for kind in ("white", "pink", "brown"):
        noise = make_noise(kind, 5000, rng)
        assert np.mean(noise**2) == pytest.approx(1.0) and abs(noise.mean()) < 1e-9
    with pytest.raises(ConfigError, match="noise type 'blue'"):
        make_noise("blue", 10, rng)


def test_noise_dir_mixes_the_files_samples(tmp_path):
    src = make_datadir(tmp_path, {"a-1": sine(440)})
    noise_dir = tmp_path / "noises"
    (noise_dir / "sub").mkdir(parents=True)
    pattern = np.random.default_rng(3).uniform(-0.5, 0.5, 1000).astype(np.float32)
    sf.write(noise_dir / "sub" / "n.flac", pattern, RATE, subtype="PCM_16")
    (noise_dir / "README.txt").write_text("not audio, ignored\n")
    out = tmp_path / "noisy"
    report = add_noise_datadir(
        src, out, snr_range=(10, 10), noise_dir=noise_dir, keep_clean=False, progress=False
    )
    assert DataDir.load(out).utt_ids == ["noise1-a-1"]
    clean = DataDir.load(src).load_audio("a-1")[0].astype(np.float64)
    added = DataDir.load(out).load_audio("noise1-a-1")[0] - clean
    assert report.snr["noise1-a-1"] == 10.0
    assert snr_db(clean, clean + added) == pytest.approx(10.0, abs=0.1)
    # the added noise is the (quantised) file, looped from some offset, scaled
    stored = sf.read(noise_dir / "sub" / "n.flac", dtype="float64")[0]
    best = max(
        np.corrcoef(added, stored[(offset + np.arange(len(added))) % len(stored)])[0, 1]
        for offset in range(len(stored))
    )
    assert best > 0.999


def test_noise_file_at_another_rate_is_resampled(tmp_path):
    src = make_datadir(tmp_path, {"a-1": sine(440)})
    noise_dir = tmp_path / "noises"
    noise_dir.mkdir()
    t = np.arange(16000 * 2) / 16000
    sf.write(noise_dir / "hum.wav", 0.5 * np.sin(2 * np.pi * 1500 * t), 16000, subtype="PCM_16")
    out = tmp_path / "noisy"
    add_noise_datadir(src, out, snr_range=(0, 0), noise_dir=noise_dir, progress=False)
    clean = DataDir.load(src).load_audio("a-1")[0].astype(np.float64)
    added = DataDir.load(out).load_audio("noise1-a-1")[0] - clean
    spectrum = np.abs(np.fft.rfft(added * np.hanning(len(added))))
    assert np.argmax(spectrum) * RATE / len(added) == pytest.approx(1500, abs=5)
    assert snr_db(clean, clean + added) == pytest.approx(0.0, abs=0.1)


def test_bad_noise_dirs_are_one_line_errors(tmp_path):
    src = make_datadir(tmp_path, {"a-1": sine(440)})
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x\n")
    with pytest.raises(AudioError, match=rf"^{empty}: no audio files in the noise directory"):
        add_noise_datadir(src, tmp_path / "o", noise_dir=empty, progress=False)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "n.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(AudioError) as info:
        add_noise_datadir(src, tmp_path / "o", noise_dir=broken, progress=False)
    assert str(info.value).startswith(f"{broken / 'n.wav'}: ") and "\n" not in str(info.value)
    assert not (tmp_path / "o").exists()
    assert (
        main(["data", "add-noise", str(src), str(tmp_path / "o"), "--noise-dir", str(empty)]) == 1
    )


def test_silent_and_unreadable_utterances_are_skipped(tmp_path, caplog, capsys):
    src = make_datadir(tmp_path, {"a-1": sine(440), "a-2": np.zeros(4000, np.float32)})
    bad = tmp_path / "src_wavs" / "b-1.wav"
    bad.write_bytes(b"")
    write_lines(src / "wav.scp", [*(src / "wav.scp").read_text().splitlines(), f"b-1 {bad}"])
    write_lines(src / "text", [*(src / "text").read_text().splitlines(), "b-1 X"])
    write_lines(src / "utt2spk", [*(src / "utt2spk").read_text().splitlines(), "b-1 b"])
    write_lines(src / "spk2utt", [*(src / "spk2utt").read_text().splitlines(), "b b-1"])
    out = tmp_path / "noisy"
    with caplog.at_level(logging.WARNING):
        report = add_noise_datadir(src, out, progress=False)
    assert sorted(report.failed) == ["a-2", "b-1"]
    assert "'a-2'" in report.failed["a-2"] and "silent" in report.failed["a-2"]
    assert "a-2.wav" in report.failed["a-2"]
    assert "'b-1'" in report.failed["b-1"] and f"{bad}: empty file" in report.failed["b-1"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("\n" not in w for w in warnings)
    # the silent one keeps its clean copy; the unreadable one is gone
    assert DataDir.load(out).utt_ids == ["a-1", "a-2", "noise1-a-1"]
    assert validate_datadir(out) == []
    assert main(["data", "add-noise", str(src), str(tmp_path / "cli"), "--no-progress"]) == 1
    assert "1 noisy copies" in capsys.readouterr().out and "2 skipped" in report.summary()


def test_loud_mix_is_scaled_not_clipped(tmp_path):
    src = make_datadir(tmp_path, {"a-1": sine(440, amplitude=0.95)})
    out = tmp_path / "noisy"
    report = add_noise_datadir(src, out, snr_range=(0, 0), progress=False)
    assert report.scaled == 1
    noisy = DataDir.load(out).load_audio("noise1-a-1")[0]
    assert np.max(np.abs(noisy)) <= 1.0
    assert np.sum(np.abs(noisy) >= 32767 / 32768) <= 1  # one peak touches full scale, no run


def test_cli_add_noise(tmp_path, capsys):
    src = three_sines(tmp_path)
    out = tmp_path / "noisy"
    args = ["data", "add-noise", str(src), str(out), "--snr", "12", "--noise-type", "brown"]
    assert main([*args, "--copies", "1", "--no-clean", "--seed", "4", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{out}: 3 utterances from 3 (3 noisy copies, 0 scaled down to avoid clipping); "
        "0 skipped (unreadable or silent)"
    )
    data, source = DataDir.load(out), DataDir.load(src)
    assert data.utt_ids == ["noise1-a-1", "noise1-a-2", "noise1-b-1"]
    clean = source.load_audio("a-2")[0]
    assert snr_db(clean, data.load_audio("noise1-a-2")[0]) == pytest.approx(12, abs=0.1)
    with pytest.raises(SystemExit):
        main(["data", "add-noise", str(src), str(out), "--snr", "5:x"])
    with pytest.raises(ConfigError, match="low before high"):
        add_noise_datadir(src, out, snr_range=(20, 5))
    with pytest.raises(ConfigError, match="at least 1"):
        add_noise_datadir(src, out, copies=0)
