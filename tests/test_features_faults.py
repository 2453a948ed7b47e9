"""`asr features` under faults: kill -9 and SIGTERM at fixed points, a full disk, an unwritable
output directory, audio that gives non-finite features, and out-of-range feature options.

Kill points are chosen with ``ASR_FAULT_AT`` (asr.fileio.fault_point), never with timers. Each
killed run replaces the outputs of an earlier run made with a *different* config, so an scp
entry that points into the wrong ark (the old feats.scp into the new ark) reads features that
match neither run and is caught.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from unreadable import unreadable, unwritable

from asr.cli import main
from asr.errors import AudioError, ConfigError
from asr.features.cmvn import read_global_cmvn
from asr.features.config import FeatureConfig, extract_features, load_feature_config
from asr.features.kaldi import fbank, mfcc

RATE = 8000
OUTPUTS = ("feats.scp", "cmvn.scp", "utt2num_frames", "cmvn_global.ark", "feats.yaml")
OLD = {"kind": "fbank", "sample_rate": RATE, "options": {"num_mel_bins": 15, "dither": 0.0}}
NEW = {"kind": "fbank", "sample_rate": RATE, "options": {"num_mel_bins": 20, "dither": 0.0}}


def make_data(root: Path, extra: dict[str, np.ndarray] | None = None) -> Path:
    """Five tone utterances of two speakers (plus ``extra`` float WAVs), as a data dir."""
    audio = root / "audio"
    audio.mkdir(parents=True)
    t = np.arange(RATE) / RATE
    waves = {f"s{i % 2}-u{i}": 0.2 * np.sin(2 * np.pi * (200 + 150 * i) * t) for i in range(5)}
    waves.update(extra or {})
    data = root / "data"
    data.mkdir()
    wav_scp, utt2spk = [], []
    for utt in sorted(waves):
        path = audio / f"{utt}.wav"
        sf.write(path, waves[utt], RATE, subtype="FLOAT" if utt in (extra or {}) else "PCM_16")
        wav_scp.append(f"{utt} {path}\n")
        utt2spk.append(f"{utt} {utt.split('-')[0]}\n")
    (data / "wav.scp").write_text("".join(wav_scp))
    (data / "utt2spk").write_text("".join(utt2spk))
    return data


def write_config(root: Path, config: dict, name: str) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def features_argv(data: Path, config: Path, ark: Path) -> list[str]:
    return ["features", str(data), "--config", str(config), "--ark-dir", str(ark), "--no-progress"]


def run_cli(
    argv: list[str], env: dict | None = None, prefix=(), **kwargs
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "asr", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def read_state(data: Path) -> dict:
    """Every output as the readers see it: features and CMVN stats by key, plus the texts."""
    state = {"feats": dict(kaldiio.load_scp(str(data / "feats.scp")))}
    state["cmvn"] = dict(kaldiio.load_scp(str(data / "cmvn.scp")))
    state["feats"] = {k: np.array(v) for k, v in state["feats"].items()}
    state["cmvn"] = {k: np.array(v) for k, v in state["cmvn"].items()}
    state["global"] = np.array(kaldiio.load_mat(str(data / "cmvn_global.ark")))
    state["utt2num_frames"] = (data / "utt2num_frames").read_text()
    state["feats.yaml"] = (data / "feats.yaml").read_text()
    return state


def same_state(a: dict, b: dict) -> bool:
    return (
        a["feats"].keys() == b["feats"].keys()
        and all(np.array_equal(a["feats"][k], b["feats"][k]) for k in a["feats"])
        and a["cmvn"].keys() == b["cmvn"].keys()
        and all(np.array_equal(a["cmvn"][k], b["cmvn"][k]) for k in a["cmvn"])
        and np.array_equal(a["global"], b["global"])
        and a["utt2num_frames"] == b["utt2num_frames"]
        and a["feats.yaml"] == b["feats.yaml"]
    )


def leftovers(data: Path, ark: Path) -> list[str]:
    return sorted(p.name for p in [*data.glob(".*.tmp"), *ark.glob(".*.tmp")])


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict:
    """Clean runs with the old and the new config, to compare every killed run against."""
    root = tmp_path_factory.mktemp("reference")
    data = make_data(root)
    refs = {}
    for name, config in (("old", OLD), ("new", NEW)):
        assert main(features_argv(data, write_config(root, config, name), root / "ark")) == 0
        refs[name] = read_state(data)
    assert refs["old"]["feats"]["s0-u0"].shape[1] != refs["new"]["feats"]["s0-u0"].shape[1]
    return refs


# Points of a run: each utterance; the raw ark's rename (1), the CMVN ark's (2), then
# cmvn_global.ark (3), utt2num_frames (4), cmvn.scp (5), feats.scp (6), feats.yaml (7).
KILL_POINTS = [
    "utterance:1",
    "utterance:4:TERM",
    "before-rename:1",
    "after-rename:1",
    "after-rename:2:TERM",
    "after-rename:4",
    "after-rename:5",
    "before-rename:6:TERM",
    "after-rename:6",
    "after-rename:7",
    "after-rename:7:TERM",
]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_run_leaves_old_or_new_outputs_and_a_rerun_finishes(tmp_path, references, point):
    data = make_data(tmp_path)
    ark = tmp_path / "ark"
    old_conf = write_config(tmp_path, OLD, "old")
    new_conf = write_config(tmp_path, NEW, "new")
    assert main(features_argv(data, old_conf, ark)) == 0

    killed = run_cli(features_argv(data, new_conf, ark), env={"ASR_FAULT_AT": point})
    if point.endswith(":TERM"):
        assert killed.returncode == 143, killed.stderr
        assert killed.stderr.strip().splitlines()[-1] == "asr features: terminated"
        assert leftovers(data, ark) == []  # SIGTERM cleans up on the way out
    else:
        assert killed.returncode == -signal.SIGKILL, killed.stderr

    # Every scp entry reads its own utterance: each table is wholly the old or the new run's.
    state = read_state(data)
    for table in ("feats", "cmvn"):
        versions = [
            name
            for name in ("old", "new")
            if state[table].keys() == references[name][table].keys()
            and all(np.array_equal(v, references[name][table][k]) for k, v in state[table].items())
        ]
        assert versions, f"{table} matches neither the old nor the new run after {point}"
    for name in ("utt2num_frames", "feats.yaml"):
        assert state[name] in (references["old"][name], references["new"][name])

    assert main(features_argv(data, new_conf, ark)) == 0
    assert same_state(read_state(data), references["new"])
    assert leftovers(data, ark) == []
    # only the arks the scp files point into remain
    assert sorted(p.name.split(".")[0] for p in ark.glob("*.ark")) == ["cmvn_fbank", "raw_fbank"]


def test_data_dirs_sharing_an_ark_dir_keep_their_own_arks(tmp_path, references):
    # Kaldi's habit: one mfcc/ dir for train and test. A rerun of one must not take the other's
    # arks for leftovers; a run into a new ark dir removes this dir's arks from the old one.
    train, test = make_data(tmp_path / "train"), make_data(tmp_path / "test")
    shared, elsewhere = tmp_path / "ark", tmp_path / "ark2"
    old_conf, new_conf = write_config(tmp_path, OLD, "old"), write_config(tmp_path, NEW, "new")
    assert main(features_argv(train, old_conf, shared)) == 0
    assert main(features_argv(test, old_conf, shared)) == 0
    assert main(features_argv(train, new_conf, shared)) == 0
    assert main(features_argv(train, new_conf, elsewhere)) == 0
    assert same_state(read_state(test), references["old"])
    assert same_state(read_state(train), references["new"])
    assert len(list(shared.glob("*.ark"))) == 2 and len(list(elsewhere.glob("*.ark"))) == 2


def test_full_disk_is_one_line_and_keeps_the_earlier_outputs(tmp_path, references):
    data = make_data(tmp_path)
    ark = tmp_path / "ark"
    assert main(features_argv(data, write_config(tmp_path, OLD, "old"), ark)) == 0
    before = {name: (data / name).read_bytes() for name in OUTPUTS}
    arks_before = sorted(ark.iterdir())
    raw_size = next(ark.glob("raw_*.ark")).stat().st_size

    def small_disk() -> None:
        # A file may grow to a third of the raw ark; SIGXFSZ ignored, so a write past that
        # fails with EFBIG, as a write to a full disk fails with ENOSPC.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (raw_size // 3, raw_size // 3))

    full = run_cli(
        features_argv(data, write_config(tmp_path, NEW, "new"), ark), preexec_fn=small_disk
    )
    assert full.returncode == 1, full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith(f"asr features: error: {ark / 'raw_fbank.'}"), full.stderr
    assert last.endswith(": cannot write: File too large"), last
    assert "Traceback" not in full.stderr
    assert {name: (data / name).read_bytes() for name in OUTPUTS} == before
    assert sorted(ark.iterdir()) == arks_before  # no new ark, no temp file
    assert same_state(read_state(data), references["old"])


def test_unwritable_data_dir_is_one_line_and_keeps_the_earlier_outputs(tmp_path, references):
    data = make_data(tmp_path)
    ark = tmp_path / "ark"
    assert main(features_argv(data, write_config(tmp_path, OLD, "old"), ark)) == 0
    before = {name: (data / name).read_bytes() for name in OUTPUTS}
    arks_before = sorted(ark.iterdir())
    new_conf = write_config(tmp_path, NEW, "new")
    prefix = unwritable(data)
    try:
        result = run_cli(features_argv(data, new_conf, ark), prefix=prefix)
    finally:
        os.chmod(data, 0o755)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"asr features: error: {data / 'cmvn_global.ark'}: cannot write: Permission denied"
    )
    assert "Traceback" not in result.stderr
    assert {name: (data / name).read_bytes() for name in OUTPUTS} == before
    assert sorted(ark.iterdir()) == arks_before  # the run's new arks are removed again
    assert same_state(read_state(data), references["old"])


def test_ark_dir_that_cannot_be_made_is_one_line(tmp_path, capsys):
    data = make_data(tmp_path)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the ark directory should go\n")
    config = write_config(tmp_path, OLD, "old")
    assert main(features_argv(data, config, blocker / "ark")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"asr features: error: {blocker / 'ark'}: cannot write: Not a directory"]
    assert not (data / "feats.scp").exists()


def test_unreadable_audio_is_skipped_with_one_line(tmp_path):
    data = make_data(tmp_path)
    locked = tmp_path / "audio" / "s1-u1.wav"
    prefix = unreadable(locked)
    result = run_cli(
        features_argv(data, write_config(tmp_path, OLD, "old"), tmp_path / "ark"), prefix=prefix
    )
    assert result.returncode == 1, result.stderr  # 1 of 5 skipped: over Kaldi's 5% allowance
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "skipping s1-u1" in line]
    assert len(warnings) == 1 and f"{locked}: permission denied" in warnings[0], result.stderr
    assert "1 of 5 utterance(s) skipped" in result.stderr
    feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
    assert sorted(feats) == ["s0-u0", "s0-u2", "s0-u4", "s1-u3"]


# --- non-finite features --------------------------------------------------------------------


def test_huge_float_samples_are_skipped_and_kept_out_of_cmvn(tmp_path, caplog):
    loud = np.full(RATE, 1e29)
    loud[::2] = -1e29
    data = make_data(tmp_path, {"s0-z-loud": loud})
    clean = make_data(tmp_path / "clean")
    config = write_config(tmp_path, OLD, "old")
    with caplog.at_level(logging.WARNING, logger="asr.features"):
        status = main(features_argv(data, config, tmp_path / "ark"))
    assert status == 1  # 1 of 6 skipped: over Kaldi's 5% allowance
    skipped = [r.getMessage() for r in caplog.records if "s0-z-loud" in r.getMessage()]
    assert len(skipped) == 1 and "\n" not in skipped[0]
    assert "s0-z-loud.wav" in skipped[0] and "not finite" in skipped[0]
    feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
    assert "s0-z-loud" not in feats
    assert all(np.isfinite(m).all() for m in feats.values())
    # the stats are exactly those of the five good utterances
    assert main(features_argv(clean, config, tmp_path / "clean_ark")) == 0
    np.testing.assert_array_equal(read_global_cmvn(data), read_global_cmvn(clean))


@pytest.mark.parametrize("func", [fbank, mfcc])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e35])
def test_fbank_and_mfcc_refuse_non_finite_results(func, bad):
    wave = torch.linspace(-1000.0, 1000.0, 4000)
    wave[1234] = bad
    with pytest.raises(AudioError, match="NaN or infinite|not finite"):
        func(wave, 8000, dither=0.0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1e29, "not finite: the samples are too large"),
        (1e35, "too large \\(peak 1e\\+35; float audio is expected in \\[-1, 1\\]\\)"),
        (float("nan"), "NaN or infinite"),
    ],
)
def test_extract_features_refuses_audio_that_gives_non_finite_features(value, message):
    wave = np.sin(np.arange(8000, dtype=np.float32))
    wave[100:200] = value
    config = FeatureConfig(sample_rate=RATE, options={"dither": 0.0})
    with pytest.raises(AudioError, match=message):
        extract_features(wave, RATE, config)


def test_samples_that_overflow_the_power_spectrum_are_an_error():
    # finite samples, but their power overflows float32: 1e29 in [-1, 1] float audio
    wave = torch.full((4000,), 1e29 * 32768)
    wave[::2] *= -1
    with pytest.raises(AudioError, match="not finite.*peak 3.28e\\+33"):
        fbank(wave, 8000, dither=0.0)


# --- feature options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_mel_bins": -3}, "num_mel_bins=-3: must be >= 3"),
        ({"num_mel_bins": 0}, "num_mel_bins=0: must be >= 3"),
        ({"num_mel_bins": 1000}, "num_mel_bins=1000 is too many at 8000 Hz"),
        ({"dither": float("nan")}, "dither=nan: must be >= 0"),
        ({"dither": -1.0}, "dither=-1.0: must be >= 0"),
        ({"frame_shift": 0.0}, "frame_shift=0.0: must be > 0"),
        ({"frame_length": float("inf")}, "frame_length=inf: must be > 0"),
        ({"preemphasis_coefficient": 1.5}, "preemphasis_coefficient=1.5: must be in \\[0, 1\\]"),
        ({"energy_floor": -1.0}, "energy_floor=-1.0: must be >= 0"),
        ({"low_freq": -5.0}, "low_freq=-5.0: must be >= 0"),
        ({"high_freq": 5000.0}, "high_freq"),
        ({"frame_length": 0.1}, "too short"),
    ],
)
def test_out_of_range_option_is_one_line_naming_option_and_file(tmp_path, options, message):
    path = write_config(tmp_path, {"kind": "fbank", "sample_rate": RATE, "options": options}, "x")
    with pytest.raises(ConfigError, match=message) as info:
        load_feature_config(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_nan_dither_from_yaml_is_refused(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text("kind: fbank\noptions:\n  dither: .nan\n")
    with pytest.raises(ConfigError, match=f"{path}: .*dither=nan"):
        load_feature_config(path)


def test_mfcc_needs_at_most_num_mel_bins_ceps():
    with pytest.raises(ConfigError, match="num_ceps=30 must be at most num_mel_bins=23"):
        FeatureConfig(kind="mfcc", options={"num_ceps": 30})


def test_yaml_exponent_without_sign_is_a_number(tmp_path):
    # PyYAML (YAML 1.1) reads 1.0e9 and 1e3 as strings; they are numbers to anyone writing them.
    path = tmp_path / "exp.yaml"
    path.write_text("options:\n  energy_floor: 1.0e9\n  low_freq: 1e2\n  dither: 0.0\n")
    config = load_feature_config(path)
    assert config.options == {"energy_floor": 1.0e9, "low_freq": 100.0, "dither": 0.0}
    path.write_text("options:\n  low_freq: lots\n")
    with pytest.raises(ConfigError, match="low_freq='lots': expected float"):
        load_feature_config(path)
