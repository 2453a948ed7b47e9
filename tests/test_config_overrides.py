"""Any config key from the command line: `asr train --config c.yaml training.lr=0.0005 ...` and
`asr features DIR --config fbank.yaml options.num_mel_bins=80`.

The merging is asr.config.apply_overrides; the checks are the configs' own (unknown keys listed,
wrong types named), so errors here must name the file "with command-line overrides".
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import yaml
from test_train import write_synthetic

from asr.cli import main
from asr.config import apply_overrides
from asr.errors import ConfigError
from asr.features.config import load_feature_config
from asr.nn.package import load_package
from asr.training.config import TrainConfig, load_train_config
from asr.training.history import read_history

REPO_ROOT = Path(__file__).resolve().parent.parent


# --- apply_overrides ------------------------------------------------------------------------


def test_values_are_read_as_yaml_and_keys_are_dotted() -> None:
    document = {"model": {"hidden_size": 32}, "training": None}
    result = apply_overrides(
        document,
        [
            "model.hidden_size=320",
            "training.lr=0.0005",
            "training.cache_features=true",
            "training.spec_augment={freq_masks: 2}",
            "training.init_from=null",
            "extra.list=[1, 2]",
            "extra.text=a=b=c",
            "extra.word=fp32",
        ],
        "c.yaml",
    )
    assert result == {
        "model": {"hidden_size": 320},
        "training": {
            "lr": 0.0005,
            "cache_features": True,
            "spec_augment": {"freq_masks": 2},
            "init_from": None,
        },
        "extra": {"list": [1, 2], "text": "a=b=c", "word": "fp32"},
    }
    # the caller's document is left as it was
    assert document == {"model": {"hidden_size": 32}, "training": None}
    # later overrides win, and a deeper one adds to what an earlier one set
    assert apply_overrides({}, ["a.b=1", "a.b=2", "a.c=3"], "c.yaml") == {"a": {"b": 2, "c": 3}}


@pytest.mark.parametrize(
    "override, message",
    [
        ("training.lr", "'training.lr' is not KEY=VALUE"),
        ("=1", "'=1' is not KEY=VALUE"),
        ("training..lr=1", "'training..lr=1' is not KEY=VALUE"),
        ("model.hidden_size.x=1", "model.hidden_size.x: model.hidden_size is 32, not a section"),
        ("training.lr=[1", "training.lr=[1: not a YAML value"),
    ],
)
def test_malformed_overrides_are_one_line_naming_the_source(override, message) -> None:
    with pytest.raises(ConfigError) as error:
        apply_overrides({"model": {"hidden_size": 32}}, [override], "c.yaml (overrides)")
    assert str(error.value).startswith("c.yaml (overrides): ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


# --- the training config ----------------------------------------------------------------------


@pytest.fixture
def conf(tmp_path) -> Path:
    path = tmp_path / "c.yaml"
    training = {"lr": 0.02, "max_epochs": 1, "batch_frames": 80, "precision": "auto"}
    model = {"num_layers": 1, "hidden_size": 24}
    path.write_text(yaml.safe_dump({"model": model, "training": training}))
    return path


@pytest.mark.parametrize(
    "override, names",
    [
        # the key, and the keys valid at its level
        (
            "training.lrr=0.1",
            ["unknown training option(s) lrr", "(known: ", "loss_normalization, lr, lr_"],
        ),
        (
            "model.hiden_size=4",
            ["unknown model option(s) hiden_size", "hidden_size, init_uniform, input_dim"],
        ),
        ("trainig.lr=0.1", ["unknown section(s) trainig (known: model, training)"]),
        # wrong types
        ("training.lr=fast", ["lr must be a number, got 'fast'"]),
        ("training.max_epochs=2.5", ["max_epochs must be an integer, got 2.5"]),
        ("training.tensorboard=maybe", ["tensorboard must be true or false, got 'maybe'"]),
        ("model.hidden_size=[1, 2]", ["hidden_size must be an integer, got [1, 2]"]),
    ],
)
def test_bad_training_overrides_name_the_key_and_the_file(conf, override, names) -> None:
    with pytest.raises(ConfigError) as error:
        load_train_config(conf, [override])
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{conf} (with command-line overrides): ")
    for name in names:
        assert name in message
    # the same key in the file is refused the same way, naming the file alone
    key, _, value = override.partition("=")
    section, _, name = key.partition(".")
    document = yaml.safe_load(conf.read_text())
    document.setdefault(section, {})[name] = yaml.safe_load(value)
    conf.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as in_file:
        load_train_config(conf)
    assert str(in_file.value) == message.replace(" (with command-line overrides)", "")


def test_overrides_change_the_run_and_are_recorded(conf, tmp_path) -> None:
    data = tmp_path / "train", tmp_path / "dev"
    write_synthetic(data[0], 60, seed=1)
    write_synthetic(data[1], 12, seed=2)
    exp = tmp_path / "exp"
    overrides = ["training.lr=0.005", "model.hidden_size=20", "training.max_epochs=2"]
    args = ["train", "--config", str(conf), *overrides, "--train-dir", str(data[0])]
    args += ["--dev-dir", str(data[1]), "--exp-dir", str(exp), "--threads", "1", "--no-progress"]
    # the flags keep working beside them (the file says precision auto)
    assert main([*args, "--precision", "fp32", "--seed", "3", "--no-tensorboard"]) == 0

    package = load_package(exp / "final.pt")
    assert package.model_config["hidden_size"] == 20
    assert package.extra["train_config"]["training"]["lr"] == 0.005
    history = read_history(exp / "history.tsv")
    assert [h["lr"] for h in history] == [0.005, 0.005]
    assert package.extra["train_config"]["training"]["precision"] == "fp32"

    # config.yaml is a training config that reads back to what the run used, flags included
    model, cfg = load_train_config(exp / "config.yaml")
    assert model["hidden_size"] == 20 and model["num_layers"] == 1
    expected = {**load_train_config(conf, overrides)[1].to_dict()}
    expected.update(precision="fp32", tensorboard=False)
    assert cfg == TrainConfig.from_dict(expected)
    text = (exp / "config.yaml").read_text()
    assert "training.lr=0.005 model.hidden_size=20 training.max_epochs=2" in text
    assert "--seed 3" in text

    header = [line for line in (exp / "train.log").read_text().splitlines() if line[0] == "#"]
    assert header[0].startswith("# train ")
    note = (
        f"# config {conf} with command-line overrides training.lr=0.005 model.hidden_size=20 "
        "training.max_epochs=2; from flags: training.precision=fp32 training.tensorboard=false; "
        "the resolved config is config.yaml"
    )
    assert note in header

    # the resolved config trains the same run again
    again = tmp_path / "again"
    args = ["train", "--config", str(exp / "config.yaml"), "--train-dir", str(data[0])]
    args += ["--dev-dir", str(data[1]), "--exp-dir", str(again), "--seed", "3", "--threads", "1"]
    assert main([*args, "--no-progress"]) == 0
    assert read_history(again / "history.tsv")[-1]["dev_loss"] == history[-1]["dev_loss"]


def cli_error(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "asr", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_asr_train_refuses_a_bad_override_with_one_stderr_line(conf, tmp_path) -> None:
    args = ["train", "--config", str(conf), "training.lrr=1", "--train-dir", str(tmp_path)]
    result = cli_error([*args, "--dev-dir", str(tmp_path), "--exp-dir", str(tmp_path / "exp")])
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        f"asr train: error: {conf} (with command-line overrides): unknown training option(s) lrr "
        "(known: "
    )
    assert not (tmp_path / "exp").exists()


# --- the feature config -----------------------------------------------------------------------


def audio_dir(path: Path) -> Path:
    """A data dir of three short noise recordings at 16 kHz."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    utts = [f"s{i}-u{i}" for i in range(3)]
    for utt in utts:
        sf.write(path / f"{utt}.wav", 0.1 * rng.standard_normal(8000), 16000, subtype="PCM_16")
    (path / "wav.scp").write_text("".join(f"{u} {path / u}.wav\n" for u in utts))
    (path / "text").write_text("".join(f"{u} a\n" for u in utts))
    (path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    (path / "spk2utt").write_text("".join(f"{u.split('-')[0]} {u}\n" for u in utts))
    return path


def feature_dims(data: Path) -> set[int]:
    return {mat.shape[1] for _, mat in kaldiio.load_scp_sequential(str(data / "feats.scp"))}


def test_feature_overrides_change_the_features_written(tmp_path) -> None:
    conf = tmp_path / "fbank.yaml"
    conf.write_text(yaml.safe_dump({"kind": "fbank", "options": {"num_mel_bins": 23}}))
    plain = audio_dir(tmp_path / "plain")
    assert main(["features", str(plain), "--config", str(conf), "--no-progress"]) == 0
    assert feature_dims(plain) == {23}

    data = audio_dir(tmp_path / "data")
    args = ["features", str(data), "--config", str(conf), "options.num_mel_bins=30"]
    assert main([*args, "delta_order=1", "--no-progress"]) == 0
    assert feature_dims(data) == {30}  # stored without deltas
    saved = load_feature_config(data / "feats.yaml")
    assert saved.options["num_mel_bins"] == 30 and saved.delta_order == 1 and saved.dim == 60

    # without --config the overrides apply to the defaults
    bare = audio_dir(tmp_path / "bare")
    assert main(["features", str(bare), "options.num_mel_bins=12", "--no-progress"]) == 0
    assert feature_dims(bare) == {12}


@pytest.mark.parametrize(
    "override, names",
    [
        ("options.num_mel_binz=30", ["unknown option(s) num_mel_binz", "num_mel_bins"]),
        ("deltas=1", ["unknown key(s) deltas", "delta_order"]),
        ("delta_order=two", ["delta_order must be an integer >= 0, got 'two'"]),
        ("options.num_mel_bins=many", ["num_mel_bins='many': expected int"]),
    ],
)
def test_bad_feature_overrides_name_the_key_and_the_file(tmp_path, override, names) -> None:
    conf = tmp_path / "fbank.yaml"
    conf.write_text(yaml.safe_dump({"kind": "fbank"}))
    with pytest.raises(ConfigError) as error:
        load_feature_config(conf, [override])
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(f"{conf} (with command-line overrides): ")
    for name in names:
        assert name in str(error.value)


def test_asr_features_refuses_a_bad_override_with_one_stderr_line(tmp_path) -> None:
    data = audio_dir(tmp_path / "data")
    result = cli_error(["features", str(data), "options.num_mel_binz=30", "--no-progress"])
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(
        "asr features: error: default feature config (with command-line overrides): "
        "fbank options: unknown option(s) num_mel_binz (known: "
    )
    assert not (data / "feats.scp").exists()
