"""Reverberation: simulated rooms have the asked reverberation time, copies carry it, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_noise import make_datadir, sine

from asr.cli import main
from asr.data.datadir import DataDir
from asr.data.reverb import (
    SPEED_OF_SOUND,
    Room,
    decay_time,
    image_source_rir,
    reverberate_datadir,
)
from asr.errors import ConfigError

RATE = 8000


@pytest.mark.parametrize(
    ("size", "rt60"),
    [
        ((6.0, 4.0, 3.0), 0.5),
        ((8.0, 6.0, 3.5), 0.2),
        ((3.0, 3.0, 2.5), 0.3),
        ((9.0, 7.0, 4.0), 0.6),
    ],
)
def test_simulated_room_has_the_asked_reverberation_time(size, rt60) -> None:
    room = Room(size, (2.0, 1.5, 1.5), (2.6, 2.5, 1.2), rt60)
    rir = image_source_rir(room, 16000)
    # T20 of the response (ISO 3382, Schroeder integration) is the room's RT60 ...
    assert decay_time(rir**2, 16000) == pytest.approx(rt60, rel=0.1)
    # ... and the direct sound arrives first, after distance / c, at 1 / (4 pi distance)
    delay = room.direct_distance / SPEED_OF_SOUND * 16000
    assert abs(int(np.argmax(np.abs(rir))) - delay) <= 1
    assert np.sum(rir[: int(delay) - 9] ** 2) < 1e-6 * np.sum(rir**2)  # nothing before it
    peak = float(np.max(np.abs(rir)))
    assert peak == pytest.approx(1 / (4 * math.pi * room.direct_distance), rel=0.25)


def test_a_longer_rt60_gives_a_longer_tail() -> None:
    short = image_source_rir(Room((6.0, 5.0, 3.0), (2.0, 2.0, 1.5), (4.0, 3.0, 1.5), 0.2), RATE)
    long = image_source_rir(Room((6.0, 5.0, 3.0), (2.0, 2.0, 1.5), (4.0, 3.0, 1.5), 0.6), RATE)
    after = int(0.1 * RATE)  # energy after 100 ms, relative to the whole response
    assert np.sum(long[after:] ** 2) / np.sum(long**2) > 3 * np.sum(short[after:] ** 2) / np.sum(
        short**2
    )


def _click(seconds: float = 1.5, at: float = 0.2) -> np.ndarray:
    wave = np.zeros(int(seconds * RATE), dtype=np.float32)
    wave[int(at * RATE)] = 0.9
    return wave


def test_copies_carry_the_rooms_reverberation(tmp_path: Path) -> None:
    src = make_datadir(tmp_path, {"a-1": _click(), "a-2": sine(440, seconds=1.0)})
    report = reverberate_datadir(src, tmp_path / "dst", rt60_range=(0.3, 0.5), rooms=5, seed=3,
                                 progress=False)  # fmt: skip
    data = DataDir.load(tmp_path / "dst")
    assert sorted(data.utt2spk) == ["a-1", "a-2", "rev1-a-1", "rev1-a-2"]
    assert data.utt2spk["rev1-a-1"] == "rev1-a"
    assert data.text["rev1-a-1"] == data.text["a-1"]
    wet, rate = data.load_audio("rev1-a-1")
    assert rate == RATE and len(wet) == len(_click())
    room = report.rooms["rev1-a-1"]
    assert isinstance(room, Room) and 0.3 <= room.rt60 <= 0.5
    # the click comes out where it went in (direct sound at time 0), followed by the room's tail
    start = int(0.2 * RATE)
    assert abs(int(np.argmax(np.abs(wet))) - start) <= 1
    assert decay_time(wet[start - 8 :].astype(np.float64) ** 2, RATE) == pytest.approx(
        room.rt60, rel=0.15
    )
    assert np.sum(wet[start + int(0.05 * RATE) :] ** 2) > 0.01 * np.sum(wet**2)  # dry: 0
    # same power as the original (16-bit rounding aside)
    clean, _ = data.load_audio("a-2")
    wet2, _ = data.load_audio("rev1-a-2")
    assert np.mean(wet2**2) == pytest.approx(np.mean(clean**2), rel=0.02)
    assert not np.allclose(wet2, clean, atol=1e-2)
    # the same seed, the same audio, whichever other utterances are there
    alone = make_datadir(tmp_path, {"a-1": _click()}, name="alone")
    reverberate_datadir(alone, tmp_path / "dst2", rt60_range=(0.3, 0.5), rooms=5, seed=3,
                        progress=False)  # fmt: skip
    again, _ = DataDir.load(tmp_path / "dst2").load_audio("rev1-a-1")
    assert np.array_equal(again, wet)


def test_rir_files_are_convolved(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    decay = np.exp(-np.arange(800) / 120.0)
    rir = np.concatenate([[0.0] * 10, [1.0], 0.3 * rng.standard_normal(800) * decay])
    (tmp_path / "rirs").mkdir()
    sf.write(tmp_path / "rirs" / "room.wav", rir.astype(np.float32), RATE, subtype="FLOAT")
    (tmp_path / "rirs" / "README").write_text("not audio")
    clean = sine(300, seconds=1.0).astype(np.float64)
    src = make_datadir(tmp_path, {"a-1": clean.astype(np.float32)})
    report = reverberate_datadir(src, tmp_path / "dst", rir_dir=tmp_path / "rirs", progress=False)
    assert report.rooms["rev1-a-1"].endswith("room.wav")
    wet, _ = DataDir.load(tmp_path / "dst").load_audio("rev1-a-1")
    expected = np.convolve(clean, rir)[10 : 10 + len(clean)]  # the direct sound at time 0
    expected *= np.sqrt(np.mean(clean**2) / np.mean(expected**2))
    assert np.max(np.abs(wet - expected)) < 2e-3


def test_bad_settings_are_one_line(tmp_path: Path, capsys) -> None:
    src = make_datadir(tmp_path, {"a-1": sine(300)})
    for rt60 in ((0.0, 0.5), (0.6, 0.2), (-1.0, 1.0), (float("nan"), 1.0)):
        with pytest.raises(ConfigError, match="--rt60"):
            reverberate_datadir(src, tmp_path / "x", rt60_range=rt60, progress=False)
    with pytest.raises(ConfigError, match=r"--rir-dir .*nowhere: no such folder"):
        reverberate_datadir(src, tmp_path / "x", rir_dir=tmp_path / "nowhere", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"--rir-dir .*empty: no audio files in it"):
        reverberate_datadir(src, tmp_path / "x", rir_dir=tmp_path / "empty", progress=False)
    assert not (tmp_path / "x").exists()
    assert main(["data", "reverberate", str(src), str(tmp_path / "x"), "--rt60", "0.5:0.1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--rt60 0.5:0.1" in err[0]


def test_cli_reverberate(tmp_path: Path, capsys) -> None:
    src = make_datadir(tmp_path, {"a-1": sine(300), "b-1": sine(500)})
    argv = ["data", "reverberate", str(src), str(tmp_path / "dst"), "--copies", "2", "--rooms"]
    assert main([*argv, "3", "--no-clean", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "4 utterances from 2 (4 reverberant copies" in out
    assert sorted(DataDir.load(tmp_path / "dst").utt2spk) == [
        "rev1-a-1", "rev1-b-1", "rev2-a-1", "rev2-b-1",
    ]  # fmt: skip
