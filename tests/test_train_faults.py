"""Faults around `asr train`: a second run on a busy exp dir, non-finite options and dev losses,
model-config errors, an unwritable or full disk, SIGTERM at chosen points.

kill -9 at chosen points is in test_train_scaling.py. Every run here is the tiny synthetic task
of test_train in fp32 on one thread, so a resumed run can be compared bit for bit with a
straight one; the kill and full-disk points are chosen with ASR_FAULT_AT, never with a delay.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml
from test_train import config, write_synthetic
from test_train_scaling import _poison, dropout_config, same_weights, weights

from asr.cli import main
from asr.errors import ConfigError, TrainingError
from asr.fileio import FAULT_ENV
from asr.nn.package import load_checkpoint
from asr.training.config import TrainConfig, load_train_config
from asr.training.history import read_history
from asr.training.trainer import _Trainer, train

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k != FAULT_ENV} | {"OMP_NUM_THREADS": "1"}
SEED = 5
EPOCHS = 3
# atomic renames of a run, in order: tokens.txt, config.yaml, then per epoch epoch-N.pt,
# history.tsv, train.log, curves.png, checkpoint.pt, then final.pt and the reports once more
CHECKPOINT_RENAME = {1: 7, 2: 12, 3: 17}
FINAL_RENAME = 18


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    write_synthetic(root / "train", 60, seed=1)
    write_synthetic(root / "dev", 12, seed=2)
    return root / "train", root / "dev"


@pytest.fixture(scope="module")
def conf(tmp_path_factory) -> Path:
    # dropout and SpecAugment: a resumed run must restore the random state too, not just weights
    path = tmp_path_factory.mktemp("conf") / "train.yaml"
    path.write_text(yaml.safe_dump(dropout_config(max_epochs=EPOCHS)))
    return path


@pytest.fixture(scope="module")
def straight(data, conf, tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must end up equal to."""
    exp = tmp_path_factory.mktemp("straight") / "exp"
    train(conf, data[0], data[1], exp, seed=SEED, threads=1, progress=False)
    return exp


def asr_train(data, conf: Path, exp: Path, *extra: str, fault: str = "", **kwargs):
    cmd = [sys.executable, "-m", "asr", "train", "--config", str(conf), "--train-dir"]
    cmd += [str(data[0]), "--dev-dir", str(data[1]), "--exp-dir", str(exp), "--seed", str(SEED)]
    cmd += ["--threads", "1", "--no-progress", *extra]
    env = ENV | ({FAULT_ENV: fault} if fault else {})
    return subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, **kwargs
    )


def error_line(stderr: str) -> str:
    """The command's last stderr line (the logging above it is progress, not the error)."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return stderr.strip().splitlines()[-1]


def hidden(exp: Path) -> set[str]:
    return {p.name for p in exp.iterdir() if p.name.startswith(".")}


def assert_same_run(straight: Path, exp: Path) -> None:
    assert same_weights(weights(straight / "final.pt"), weights(exp / "final.pt"))
    want, got = read_history(straight / "history.tsv"), read_history(exp / "history.tsv")
    assert [h["epoch"] for h in got] == list(range(1, EPOCHS + 1))
    for key in ("train_loss", "dev_loss", "dev_ter", "lr"):
        assert [h[key] for h in got] == [h[key] for h in want], key


# --- the exp-dir lock ----------------------------------------------------------------------


def test_a_second_run_on_a_busy_exp_dir_stops_with_one_line(data, conf, straight, tmp_path):
    exp = tmp_path / "exp"
    second = []

    def start_another(record: dict) -> None:
        # epoch 1's checkpoint exists now, so --resume would happily carry on from it and the
        # two runs would write epoch-N.pt and final.pt over each other
        if record["epoch"] == 1:
            second.append(asr_train(data, conf, exp, "--resume"))
            assert (exp / ".lock").read_text().strip() == str(os.getpid())

    train(conf, data[0], data[1], exp, seed=SEED, threads=1, progress=False,
          epoch_callback=start_another)  # fmt: skip
    (result,) = second
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith("asr train: error: ") and str(exp) in line
    assert f"in use by another asr train (pid {os.getpid()})" in line
    # the first run was not disturbed: its files are those of a run alone, and the lock is gone
    assert_same_run(straight, exp)
    assert "resumed" not in (exp / "train.log").read_text()
    assert hidden(exp) == set()


# --- non-finite options and dev losses -----------------------------------------------------


@pytest.mark.parametrize(
    "option, text",
    [("lr", ".inf"), ("lr", ".nan"), ("grad_clip", ".nan"), ("min_improvement", "-.inf")],
)
def test_non_finite_float_options_are_one_line_errors(data, tmp_path, capsys, option, text):
    cfg = config(max_epochs=1)
    cfg["training"].pop(option, None)
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg) + "".join(f"  {option}: {text}\n"))
    assert isinstance(yaml.safe_load(path.read_text())["training"][option], float)
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {option} must be a finite number") and "\n" not in message

    args = ["train", "--config", str(path), "--train-dir", str(data[0]), "--dev-dir"]
    args += [str(data[1]), "--exp-dir", str(tmp_path / "exp"), "--threads", "1", "--no-progress"]
    capsys.readouterr()
    assert main(args) == 1
    assert capsys.readouterr().err.strip() == f"asr train: error: {message}"
    assert not (tmp_path / "exp").exists()


def test_a_non_finite_spec_augment_option_names_the_config_file(tmp_path) -> None:
    cfg = config(max_epochs=1)
    cfg["training"]["spec_augment"] = {"time_masks": 1, "time_width_ratio": float("nan")}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    assert str(info.value).startswith(f"{path}: spec_augment: time_width_ratio must be finite")


def schedule(**options) -> types.SimpleNamespace:
    """What update_schedule reads and changes: the run's state, its options, the optimizer."""
    state = {"epoch": 0, "best_dev_loss": float("inf"), "best_epoch": 0, "bad_epochs": 0}
    state |= {"bad_since_halving": 0, "stop_reason": ""}
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    return types.SimpleNamespace(state=state, cfg=TrainConfig(**options), optimizer=optimizer)


def test_a_non_finite_dev_loss_is_never_the_best_epoch() -> None:
    run = schedule(lr_halving_patience=2, early_stopping_patience=0)
    for epoch, loss in enumerate([float("nan"), 2.0, float("inf"), float("nan"), 1.5], 1):
        run.state["epoch"] = epoch
        _Trainer.update_schedule(run, loss)
        best = {1: 0, 2: 2, 3: 2, 4: 2, 5: 5}[epoch]
        assert run.state["best_epoch"] == best, epoch
    assert run.state["best_dev_loss"] == 1.5
    # epochs 3 and 4 (inf, NaN) were two bad epochs in a row: the lr was halved once
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_a_dev_loss_that_is_never_finite_fails_without_a_model(tmp_path) -> None:
    write_synthetic(tmp_path / "train", 40, seed=5, cmvn="utterance")
    write_synthetic(tmp_path / "dev", 8, seed=6, cmvn="utterance")
    _poison(tmp_path / "dev", lambda utt: utt == "utt003")  # NaN frame: every dev loss is NaN
    exp = tmp_path / "exp"
    with pytest.raises(TrainingError) as info:
        train(config(max_epochs=2), tmp_path / "train", tmp_path / "dev", exp, threads=1,
              progress=False)  # fmt: skip
    message = str(info.value)
    assert message.startswith(f"{exp}: the dev loss was NaN or infinite in every epoch (1-2)")
    assert "\n" not in message
    assert not (exp / "final.pt").exists()
    history = read_history(exp / "history.tsv")  # the epochs themselves are on record
    assert len(history) == 2 and all(h["dev_loss"] != h["dev_loss"] for h in history)


# --- model-config errors name the file -----------------------------------------------------


@pytest.mark.parametrize(
    "model, problem",
    [
        ({"num_layers": 1, "hidden_size": 0}, "hidden_size must be >= 1, got 0"),
        ({"num_layers": 1, "hiden_size": 24}, "unknown model option(s) hiden_size"),
        ({"cell": "transformer"}, "cell must be one of lstm, gru, rnn"),
        ({"dropout": 1.5}, "dropout must be in [0, 1), got 1.5"),
        ([1, 2], "model must be a mapping of options"),
    ],
)
def test_model_config_errors_name_the_config_file(data, tmp_path, capsys, model, problem):
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({**config(max_epochs=1), "model": model}))
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message
    args = ["train", "--config", str(path), "--train-dir", str(data[0]), "--dev-dir"]
    args += [str(data[1]), "--exp-dir", str(tmp_path / "exp"), "--threads", "1", "--no-progress"]
    capsys.readouterr()
    assert main(args) == 1
    assert capsys.readouterr().err.strip() == f"asr train: error: {message}"


# --- an unwritable or full disk ------------------------------------------------------------


@pytest.mark.parametrize("where", ["exp dir is a file", "exp dir under a file"])
def test_an_unwritable_exp_dir_is_one_line(data, tmp_path, capsys, where) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory\n")
    exp = blocker if where == "exp dir is a file" else blocker / "exp"
    args = ["train", "--config", str(tmp_path / "train.yaml"), "--train-dir", str(data[0])]
    args += ["--dev-dir", str(data[1]), "--exp-dir", str(exp), "--threads", "1", "--no-progress"]
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config(max_epochs=1)))
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith(f"asr train: error: {exp}: cannot create the exp dir (") and "\n" not in err
    )
    assert blocker.read_text() == "not a directory\n"


def _small_files_only(limit: int):
    """A disk that takes no file over ``limit`` bytes: writes past it fail with EFBIG (as on a
    full disk, the write call fails) instead of killing the process with SIGXFSZ."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_is_one_line_and_resume_finishes_the_run(data, conf, straight, tmp_path):
    exp = tmp_path / "exp"
    # epochs 1 and 2 complete (killed right after epoch 2's checkpoint)...
    first = asr_train(data, conf, exp, fault=f"after-rename:{CHECKPOINT_RENAME[2]}")
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    before = {name: (exp / name).read_bytes() for name in ("epoch-1.pt", "epoch-2.pt")}
    before["checkpoint.pt"] = (exp / "checkpoint.pt").read_bytes()
    before["history.tsv"] = (exp / "history.tsv").read_bytes()

    # ...then the disk fills: the lock (a pid) and tokens.txt still fit, epoch-3.pt does not
    full = asr_train(data, conf, exp, "--resume", preexec_fn=_small_files_only(4096))
    assert full.returncode == 1
    line = error_line(full.stderr)
    assert line == f"asr train: error: {exp / 'epoch-3.pt'}: cannot write (File too large)"
    # nothing half-written, the earlier outputs untouched, no temp file and no lock left
    assert hidden(exp) == set()
    assert not (exp / "epoch-3.pt").exists() and not (exp / "final.pt").exists()
    assert {name: (exp / name).read_bytes() for name in before} == before
    assert load_checkpoint(exp / "checkpoint.pt")["train_state"]["epoch"] == 2

    # room again: --resume finishes exactly as the uninterrupted run did
    done = asr_train(data, conf, exp, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_run(straight, exp)
    assert hidden(exp) == set()


# --- SIGTERM at chosen points ---------------------------------------------------------------


@pytest.mark.parametrize(
    "point, checkpoint_epoch, exists",
    [
        ("batch:3", None, set()),  # epoch 1, before any checkpoint
        ("batch:20", 1, {"epoch-1.pt"}),  # epoch 2 (17 batches an epoch), mid-way
        (f"before-rename:{CHECKPOINT_RENAME[2]}", 1, {"epoch-2.pt"}),  # checkpoint half-done
        (f"after-rename:{CHECKPOINT_RENAME[2]}", 2, {"epoch-2.pt"}),
        (f"before-rename:{FINAL_RENAME}", 3, {"epoch-3.pt"}),  # final.pt half-done
    ],
)
def test_sigterm_leaves_no_temp_files_and_resume_matches(
    data, conf, straight, tmp_path, point, checkpoint_epoch, exists
) -> None:
    exp = tmp_path / "exp"
    stopped = asr_train(data, conf, exp, fault=f"{point}:TERM")
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert error_line(stopped.stderr) == "asr train: terminated"
    # right away, not only after a rerun: no temp file, no lock file, no final.pt
    assert hidden(exp) == set()
    assert not (exp / "final.pt").exists()
    assert {p.name for p in exp.iterdir()} >= exists | {"tokens.txt"}
    if checkpoint_epoch is None:
        assert not (exp / "checkpoint.pt").exists()
    else:
        assert load_checkpoint(exp / "checkpoint.pt")["train_state"]["epoch"] == checkpoint_epoch

    resumed = asr_train(data, conf, exp, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_run(straight, exp)
    assert hidden(exp) == set()
