"""Telephone band and lossy codecs through ffmpeg: band limits, alignment, copies, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import required_tool
from test_noise import make_datadir

from asr.cli import main
from asr.data.codec import codec_datadir, round_trip
from asr.data.datadir import DataDir
from asr.errors import ConfigError

RATE = 16000


@pytest.fixture(autouse=True)
def ffmpeg() -> None:
    required_tool("ffmpeg", "make setup (Debian package ffmpeg)")


def _band_db(wave: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1.0 / RATE)
    return 10 * np.log10(spectrum[(freqs >= low) & (freqs < high)].sum() + 1e-20)


def _speechlike(seconds: float = 1.0) -> np.ndarray:
    """White noise plus a 1 kHz tone: energy everywhere, and a component to align on."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    return 0.05 * rng.standard_normal(len(t)) + 0.2 * np.sin(2 * np.pi * 1000 * t)


@pytest.mark.parametrize("codec", ["telephone", "gsm"])
def test_telephone_band_is_300_to_3400_hz(codec: str) -> None:
    clean = _speechlike()
    coded = round_trip(clean, RATE, codec)
    assert len(coded) == len(clean)
    mid = _band_db(coded, 800, 3000) - _band_db(clean, 800, 3000)
    high = _band_db(coded, 4200, 8000) - _band_db(clean, 4200, 8000)
    low = _band_db(coded, 0, 150) - _band_db(clean, 0, 150)
    assert abs(mid) < 3  # the speech band passes
    assert high < -30  # nothing above the 8 kHz telephone's Nyquist
    assert low < -6  # the high-pass at 300 Hz


@pytest.mark.parametrize(("codec", "bitrate"), [("mp3", "16k"), ("opus", "8k")])
def test_lossy_codecs_cut_the_top_band_and_stay_aligned(codec: str, bitrate: str) -> None:
    clean = _speechlike()
    coded = round_trip(clean, RATE, codec, bitrate)
    assert len(coded) == len(clean)
    # low bit rates drop the top of the spectrum and keep the middle
    assert _band_db(coded, 7000, 8000) - _band_db(clean, 7000, 8000) < -10
    assert abs(_band_db(coded, 800, 1200) - _band_db(clean, 800, 1200)) < 3
    # aligned: the tone's cross-correlation peaks at lag 0 (the decoders remove their delay)
    lags = np.arange(-200, 201)
    corr = [np.dot(coded[400 + k : -400 + k], clean[400:-400]) for k in lags]
    assert abs(int(lags[int(np.argmax(corr))])) <= 2
    assert not np.allclose(coded, clean, atol=1e-2)


def test_copies_for_each_codec(tmp_path: Path, capsys, monkeypatch) -> None:
    waves = {"a-1": _speechlike(0.5).astype(np.float32), "b-1": _speechlike(0.7).astype(np.float32)}
    src = make_datadir(tmp_path, waves)
    report = codec_datadir(src, tmp_path / "dst", codecs=["telephone", "mp3"], seed=1,
                           progress=False)  # fmt: skip
    data = DataDir.load(tmp_path / "dst")
    assert sorted(data.utt2spk) == ["a-1", "b-1", "mp3-a-1", "mp3-b-1", "telephone-a-1",
                                    "telephone-b-1"]  # fmt: skip
    assert data.utt2spk["mp3-a-1"] == "mp3-a"
    assert report.coded["telephone-a-1"] == "telephone"
    assert report.coded["mp3-b-1"] in {"mp3 8k", "mp3 16k", "mp3 24k", "mp3 32k"}
    for utt, wave in waves.items():
        coded, rate = data.load_audio(f"telephone-{utt}")
        assert rate == 8000 and len(coded) == len(wave)  # make_datadir writes 8 kHz
    assert main(["data", "codec", str(src), str(tmp_path / "x"), "--codecs", "mp3,amr"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--codecs mp3,amr: each must be one of" in err[0]
    assert not (tmp_path / "x").exists()
    # --one-each: one copy per utterance, its codec drawn from the list
    one = codec_datadir(src, tmp_path / "one", codecs=["telephone", "mp3", "opus"],
                        one_each=True, keep_clean=False, seed=2, progress=False)  # fmt: skip
    assert sorted(DataDir.load(tmp_path / "one").utt2spk) == ["codec-a-1", "codec-b-1"]
    assert all(c.split()[0] in {"telephone", "mp3", "opus"} for c in one.coded.values())
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg on it
    with pytest.raises(ConfigError, match="ffmpeg not found"):
        codec_datadir(src, tmp_path / "y", codecs=["mp3"], progress=False)
