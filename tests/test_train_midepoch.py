"""Mid-epoch checkpoints (``training.save_every_steps``) and what ``--resume`` checks.

A run stopped mid-epoch and resumed from its last mid-epoch checkpoint must end exactly as an
uninterrupted run with the same seed: every tensor of final.pt and of the last epoch-N.pt equal,
and history.tsv the same but for its wall-clock times. The task is test_train's tiny synthetic
one in fp32 on one thread, with dropout and SpecAugment so that the random state matters. The
stop is a fault point (``ASR_FAULT_AT`` in a subprocess, or the same point raising in this
process), never a delay: "batch" is passed after each batch's step and before its checkpoint,
so a stop there loses the steps since the last checkpoint, which the resumed run must redo.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_tensorboard import assert_one_value_per_step, scalars
from test_train import write_synthetic
from test_train_scaling import dropout_config, same_weights, weights

import asr.training.trainer as trainer
from asr.cli import main
from asr.errors import ConfigError
from asr.fileio import FAULT_ENV
from asr.nn.package import load_checkpoint
from asr.training.config import TrainConfig
from asr.training.history import HISTORY_FIELDS
from asr.training.trainer import train

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k != FAULT_ENV} | {"OMP_NUM_THREADS": "1"}
SEED = 5
EPOCHS = 2
BATCHES = 11  # per epoch: 40 utterances packed to batch_frames 80


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    write_synthetic(root / "train", 40, seed=1)
    write_synthetic(root / "dev", 8, seed=2)
    return root / "train", root / "dev"


def config(**training) -> dict:
    """Two layers with dropout, SpecAugment, fp32 (test_train_scaling's), no plateau rule."""
    return dropout_config(**{"max_epochs": EPOCHS, "plateau_patience": 0, **training})


def run(cfg: dict | Path, data, exp: Path, **kwargs):
    return train(cfg, data[0], data[1], exp, seed=SEED, threads=1, progress=False, **kwargs)


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory) -> Path:
    """The uninterrupted run, without mid-epoch checkpoints, that every resumed run must equal."""
    exp = tmp_path_factory.mktemp("straight") / "exp"
    run(config(), data, exp)
    state = load_checkpoint(exp / "checkpoint.pt")["train_state"]
    assert state["global_step"] == EPOCHS * BATCHES and state["skipped_batches"] == 0
    return exp


class Stopped(Exception):
    """Stands in for a kill at a fault point."""


def stop_at_batch(monkeypatch, n: int) -> None:
    """Raise Stopped at the ``n``-th "batch" fault point of the run (counted from 1)."""
    count = itertools.count(1)

    def fault_point(name: str) -> None:
        if name == "batch" and next(count) == n:
            raise Stopped

    monkeypatch.setattr(trainer, "fault_point", fault_point)


def history_rows(exp: Path) -> list[list[str]]:
    """history.tsv's rows as written, without the wall-clock time."""
    lines = (exp / "history.tsv").read_text().splitlines()
    assert lines[0].split("\t") == list(HISTORY_FIELDS)
    time = HISTORY_FIELDS.index("time")
    return [[f for i, f in enumerate(line.split("\t")) if i != time] for line in lines[1:]]


def same_run(straight: Path, exp: Path) -> bool:
    """Equal tensors in final.pt and the last epoch-N.pt, and the same history.tsv."""
    packages = ("final.pt", f"epoch-{EPOCHS}.pt")
    return all(same_weights(weights(straight / p), weights(exp / p)) for p in packages) and (
        history_rows(straight) == history_rows(exp)
    )


def position(exp: Path) -> tuple[int, int, int]:
    """(complete epochs, epoch in progress, its next batch) of the exp dir's checkpoint."""
    state = load_checkpoint(exp / "checkpoint.pt")["train_state"]
    return state["epoch"], state["position"]["epoch"], state["position"]["next_batch"]


def stop_mid_epoch(monkeypatch, data, exp: Path, batch: int, **training) -> None:
    stop_at_batch(monkeypatch, batch)
    with pytest.raises(Stopped):
        run(config(save_every_steps=3, tensorboard=False, **training), data, exp)
    monkeypatch.undo()
    assert not (exp / "final.pt").exists()


# Where the stop lands (the n-th batch of the run, 11 an epoch) and the checkpoint it leaves:
# the last multiple of 3 steps before it. Batches 7-8 and 13-16 are trained, then lost.
STOPS = [(8, (0, 1, 6)), (16, (1, 2, 4))]


@pytest.mark.parametrize("batch, where", STOPS, ids=["epoch1", "epoch2"])
def test_resume_from_a_mid_epoch_checkpoint_equals_the_uninterrupted_run(
    data, straight, tmp_path, monkeypatch, batch, where
) -> None:
    exp = tmp_path / "exp"
    stop_mid_epoch(monkeypatch, data, exp, batch)
    assert position(exp) == where
    done, epoch, next_batch = where

    # count the training batches the resumed run loads: the trained ones are not read again
    read = []
    real_collate = trainer.collate

    def collate(features, batch):
        if features.data_dir == data[0]:
            read.append(len(batch))
        return real_collate(features, batch)

    monkeypatch.setattr(trainer, "collate", collate)
    resumed = run(config(save_every_steps=3, tensorboard=False), data, exp, resume=True)
    assert len(read) == (BATCHES - next_batch) + (EPOCHS - epoch) * BATCHES
    assert resumed.epochs == EPOCHS
    assert same_run(straight, exp)
    log = (exp / "train.log").read_text()
    assert f"resumed in epoch {epoch} after {next_batch} of its {BATCHES} batches" in log
    # the epoch checkpoint that followed is a plain one again
    state = load_checkpoint(exp / "checkpoint.pt")["train_state"]
    assert state["epoch"] == EPOCHS and "position" not in state


def test_resume_without_the_random_state_differs(data, straight, tmp_path, monkeypatch) -> None:
    # the ablation: the same resume, but dropout's random state left as the epoch's seed set it
    exp = tmp_path / "exp"
    stop_mid_epoch(monkeypatch, data, exp, 8)
    monkeypatch.setattr(trainer, "restore_random_state", lambda state, device: None)
    run(config(save_every_steps=3, tensorboard=False), data, exp, resume=True)
    assert not same_weights(weights(straight / "final.pt"), weights(exp / "final.pt"))
    assert history_rows(straight)[0] != history_rows(exp)[0]  # epoch 1's train loss


def test_kill_9_with_a_worker_process_then_resume_is_exact(
    data, straight, tmp_path, monkeypatch
) -> None:
    # a real kill: asr train with --save-every-steps and a DataLoader worker, SIGKILL at batch 16
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(config()))
    exp = tmp_path / "exp"
    cmd = [sys.executable, "-m", "asr", "train", "--config", str(conf), "--train-dir"]
    cmd += [str(data[0]), "--dev-dir", str(data[1]), "--exp-dir", str(exp), "--seed", str(SEED)]
    cmd += ["--threads", "1", "--no-progress", "--save-every-steps", "3", "--workers", "1"]
    env = ENV | {FAULT_ENV: "batch:16"}
    killed = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert position(exp) == (1, 2, 4)
    resolved = yaml.safe_load((exp / "config.yaml").read_text())["training"]
    assert resolved["save_every_steps"] == 3 and resolved["num_workers"] == 1

    # resumed in this process with a worker (the epoch's loader restarts at batch 4) and another
    # checkpoint interval: both may change, and neither changes the result
    made = []
    real = trainer._CollatedBatches

    class Recorded(real):
        def __init__(self, features, batches) -> None:
            super().__init__(features, batches)
            if features.data_dir == data[0]:
                made.append([number for number, _ in batches])

    monkeypatch.setattr(trainer, "_CollatedBatches", Recorded)
    run(conf, data, exp, resume=True, overrides={"num_workers": 1, "save_every_steps": 5})
    assert made == [list(range(4, BATCHES))]  # epoch 2 from batch 4 on: 1-3 are not loaded
    assert same_run(straight, exp)
    # TensorBoard: one value per step, the killed run's steps after the checkpoint dropped
    assert assert_one_value_per_step(scalars(exp), epochs=EPOCHS) == EPOCHS * BATCHES
    assert not [p.name for p in exp.iterdir() if p.name.startswith(".")]


# --- what --resume refuses, and what it allows -----------------------------------------------


@pytest.fixture(scope="module")
def one_epoch(data, tmp_path_factory) -> Path:
    """An exp dir after epoch 1 of a run on copies of the data dirs (so a test may alter them)."""
    root = tmp_path_factory.mktemp("one_epoch")
    for name, source in zip(("train", "dev"), data, strict=True):
        shutil.copytree(source, root / name)
    run(config(max_epochs=1, tensorboard=False), (root / "train", root / "dev"), root / "exp")
    return root


def resume_one_epoch(root: Path, exp: Path | None = None, **kwargs) -> None:
    cfg = kwargs.pop("cfg", None) or config(tensorboard=False)
    train_dir, dev_dir = (
        kwargs.pop("train_dir", root / "train"),
        kwargs.pop("dev_dir", root / "dev"),
    )
    train(cfg, train_dir, dev_dir, exp or root / "exp", seed=SEED, threads=1, progress=False,
          resume=True, **kwargs)  # fmt: skip


def changed(cfg: dict, section: str, **values) -> dict:
    return {**cfg, section: {**cfg[section], **values}}


def test_resume_refuses_other_data_dirs_in_one_line(data, one_epoch, tmp_path) -> None:
    checkpoint = one_epoch / "exp" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    other = tmp_path / "other"
    write_synthetic(other, 40, seed=3)
    with pytest.raises(ConfigError) as info:
        resume_one_epoch(one_epoch, train_dir=other)
    assert str(info.value) == (
        f"{checkpoint}: made with --train-dir {(one_epoch / 'train').resolve()}, not {other}; "
        "use a new --exp-dir"
    )
    with pytest.raises(ConfigError, match=r"made with --dev-dir .*, not .*other; use a new"):
        resume_one_epoch(one_epoch, dev_dir=other)
    assert checkpoint.read_bytes() == before


def test_resume_refuses_a_data_dir_changed_since(data, tmp_path) -> None:
    # the same path, other contents: one transcript of the run's train dir changed after epoch 1
    root = tmp_path / "root"
    for name, source in zip(("train", "dev"), data, strict=True):
        shutil.copytree(source, root / name)
    run(config(max_epochs=1, tensorboard=False), (root / "train", root / "dev"), root / "exp")
    text = root / "train" / "text"
    first, *rest = text.read_text().splitlines(keepends=True)
    text.write_text(first.split(" ", 1)[0] + " a b c\n" + "".join(rest))
    with pytest.raises(ConfigError) as info:
        resume_one_epoch(root)
    assert str(info.value) == (
        f"{root / 'exp' / 'checkpoint.pt'}: made with --train-dir {(root / 'train').resolve()} "
        "as it was then: its text changed since; use a new --exp-dir"
    )


@pytest.mark.parametrize(
    "section, values, message",
    [
        (
            "training",
            {"lr": 0.02},
            "made with training.lr=0.01, not 0.02; set it back or use a new --exp-dir",
        ),
        (
            "model",
            {"hidden_size": 32},
            "made with model.hidden_size=24, not 32; set it back or use a new --exp-dir",
        ),
        (
            "training",
            {"batch_frames": 100, "spec_augment": None},
            "made with training.batch_frames=80, training.spec_augment="
            "{'freq_masks': 1, 'freq_width': 2, 'time_masks': 1, 'time_width': 3}, "
            "not 100, null; set them back or use a new --exp-dir",
        ),
    ],
    ids=["lr", "model", "two"],
)
def test_resume_refuses_another_config_naming_the_keys(one_epoch, section, values, message):
    cfg = changed(config(tensorboard=False), section, **values)
    with pytest.raises(ConfigError) as info:
        resume_one_epoch(one_epoch, cfg=cfg)
    assert str(info.value) == f"{one_epoch / 'exp' / 'checkpoint.pt'}: {message}"
    assert "\n" not in str(info.value)


def test_the_command_line_refusal_is_one_line(one_epoch, tmp_path, capsys) -> None:
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(config(tensorboard=False)))
    args = ["train", "--config", str(conf), "--train-dir", str(one_epoch / "train"), "--dev-dir"]
    args += [str(one_epoch / "dev"), "--exp-dir", str(one_epoch / "exp"), "--seed", str(SEED)]
    args += ["--threads", "1", "--no-progress", "--resume", "--precision", "auto"]
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"asr train: error: {one_epoch / 'exp' / 'checkpoint.pt'}: made with "
        "training.precision=fp32, not auto; set it back or use a new --exp-dir"
    )


def test_resume_allows_stopping_and_running_options_and_moved_data(
    one_epoch, tmp_path, caplog
) -> None:
    root = tmp_path / "root"
    shutil.copytree(one_epoch, root)
    # the same files at another path (the data moved): resumed, with a warning
    shutil.move(root / "train", root / "train_moved")
    cfg = config(save_every_steps=4, num_workers=0, tensorboard=True, early_stopping_patience=3)
    cfg["training"].update(lr_halving_patience=5, max_nonfinite_batches=3, cache_features=False)
    with caplog.at_level(logging.WARNING, logger="asr"):
        resume_one_epoch(root, cfg=cfg, train_dir=root / "train_moved")
    # the checkpoint names the dirs it was made with: one_epoch's, of which root's are copies
    assert (
        f"made with --train-dir {(one_epoch / 'train').resolve()} (the same files)" in caplog.text
    )
    assert load_checkpoint(root / "exp" / "checkpoint.pt")["train_state"]["epoch"] == EPOCHS


def test_an_older_checkpoint_without_its_data_record_still_resumes(one_epoch, tmp_path, caplog):
    root = tmp_path / "root"
    shutil.copytree(one_epoch, root)
    checkpoint = root / "exp" / "checkpoint.pt"
    payload = torch.load(checkpoint, weights_only=True)
    del payload["made_with"]
    torch.save(payload, checkpoint)
    with caplog.at_level(logging.WARNING, logger="asr"):
        resume_one_epoch(root)
    assert "made by an older asr that did not record its data dirs" in caplog.text
    assert load_checkpoint(checkpoint)["train_state"]["epoch"] == EPOCHS
    assert "made_with" in load_checkpoint(checkpoint)  # recorded from now on


def test_save_every_steps_is_a_non_negative_integer() -> None:
    assert TrainConfig().save_every_steps == 0  # off by default
    with pytest.raises(ConfigError, match="save_every_steps must not be negative"):
        TrainConfig.from_dict({"save_every_steps": -1})
    with pytest.raises(ConfigError, match="save_every_steps must be an integer"):
        TrainConfig.from_dict({"save_every_steps": 2.5})
