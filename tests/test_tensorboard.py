"""TensorBoard event files of `asr train`, read back with TensorBoard's own reader.

Tiny synthetic runs (test_train's task, fp32, one thread: a couple of seconds each). What is
checked is what a user sees in TensorBoard: one value per optimisation step and tag, steps
1, 2, 3, ... with none twice (also after --resume and after a run killed mid-epoch), and
epoch values equal to history.tsv's.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
from test_train import write_synthetic

from asr.cli import main
from asr.fileio import FAULT_ENV
from asr.training.history import read_history
from asr.training.tensorboard import EPOCH_TAGS, STEP_TAGS, TENSORBOARD_DIR
from asr.training.trainer import train

REPO_ROOT = Path(__file__).resolve().parent.parent
LR = 0.02
GRAD_CLIP = 0.5  # low enough that early gradients are clipped: their logged norm is above it


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    write_synthetic(root / "train", 60, seed=1)
    write_synthetic(root / "dev", 12, seed=2)
    return root / "train", root / "dev"


def config(**training) -> dict:
    base = {"lr": LR, "max_epochs": 2, "batch_frames": 80, "precision": "fp32"}
    base.update(grad_clip=GRAD_CLIP, **training)
    return {"model": {"num_layers": 1, "hidden_size": 24}, "training": base}


def run(cfg: dict, data, exp: Path, **kwargs):
    return train(cfg, data[0], data[1], exp, threads=1, progress=False, **kwargs)


def scalars(exp: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag as (step, value) pairs, as TensorBoard shows them (all kept: no
    sampling; events that a restart purges are gone)."""
    accumulator = EventAccumulator(str(exp / TENSORBOARD_DIR), size_guidance={SCALARS: 0})
    accumulator.Reload()
    return {
        tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


def assert_one_value_per_step(events: dict[str, list[tuple[int, float]]], epochs: int) -> int:
    """Each step tag holds steps 1..N once each; the epoch tags sit at the epochs' last steps.
    Returns N."""
    assert set(events) == set(STEP_TAGS) | set(EPOCH_TAGS)
    total = len(events["train/loss"])
    for tag in STEP_TAGS:
        assert [step for step, _ in events[tag]] == list(range(1, total + 1)), tag
    # every epoch of this data has the same number of batches (only their order changes)
    assert total % epochs == 0
    per_epoch = total // epochs
    for tag in EPOCH_TAGS:
        assert [step for step, _ in events[tag]] == [per_epoch * e for e in range(1, epochs + 1)]
    return total


def test_train_writes_step_and_epoch_scalars(data, tmp_path) -> None:
    exp = tmp_path / "exp"
    summary = run(config(), data, exp)
    events = scalars(exp)
    total = assert_one_value_per_step(events, epochs=2)
    assert total > 10

    history = read_history(exp / "history.tsv")
    assert len(history) == 2
    for tag, key in EPOCH_TAGS.items():  # float32 in the event file
        assert [v for _, v in events[tag]] == pytest.approx([h[key] for h in history], rel=1e-6)
    assert [v for _, v in events["dev/loss"]] == pytest.approx(
        [h["dev_loss"] for h in summary.history], rel=1e-6
    )

    assert all(v == pytest.approx(LR) for _, v in events["train/lr"])
    norms = [v for _, v in events["train/grad_norm"]]
    assert all(math.isfinite(v) and v > 0 for v in norms)
    assert max(norms) > GRAD_CLIP  # the norm before clipping, not after
    assert all(v == 0 for _, v in events["train/skipped_batches"])
    losses = [v for _, v in events["train/loss"]]
    assert all(math.isfinite(v) and v > 0 for v in losses)
    # the per-token losses of the epoch's steps surround the epoch's per-token train loss
    first_epoch = losses[: total // 2]
    assert min(first_epoch) <= history[0]["train_loss"] <= max(first_epoch)
    # the other reports are still written
    assert (exp / "train.log").is_file() and (exp / "curves.png").is_file()


def test_tensorboard_false_or_no_tensorboard_writes_no_event_files(data, tmp_path) -> None:
    exp = tmp_path / "off"
    run(config(max_epochs=1, tensorboard=False), data, exp)
    assert (exp / "final.pt").is_file()
    assert not (exp / TENSORBOARD_DIR).exists()

    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(config(max_epochs=1)))  # tensorboard on by default
    cli = tmp_path / "cli"
    args = ["train", "--config", str(conf), "--train-dir", str(data[0]), "--dev-dir"]
    args += [str(data[1]), "--exp-dir", str(cli), "--threads", "1", "--no-progress"]
    assert main([*args, "--no-tensorboard"]) == 0
    assert (cli / "final.pt").is_file()
    assert not (cli / TENSORBOARD_DIR).exists()
    assert yaml.safe_load((cli / "config.yaml").read_text())["training"]["tensorboard"] is False


def test_resume_continues_the_step_count(data, tmp_path) -> None:
    straight = tmp_path / "straight"
    run(config(), data, straight)
    exp = tmp_path / "exp"
    run(config(max_epochs=1), data, exp)
    run(config(max_epochs=2), data, exp, resume=True)

    assert len(list((exp / TENSORBOARD_DIR).glob("events.out.tfevents.*"))) == 2
    events = scalars(exp)
    assert_one_value_per_step(events, epochs=2)
    # a resumed run continues exactly: the same numbers at the same steps as a straight one
    want = scalars(straight)
    for tag in ("train/loss", "train/grad_norm", "dev/loss"):
        assert events[tag] == want[tag], tag


def raw_steps(path: Path, tag: str) -> list[int]:
    """The steps of ``tag`` in one event file as written (no purging: the file alone)."""
    steps = []
    for event in event_file_loader.LegacyEventFileLoader(str(path)).Load():
        steps += [event.step for v in event.summary.value if v.tag == tag]
    return steps


def test_a_run_stopped_mid_epoch_then_resumed_leaves_no_duplicate_steps(data, tmp_path) -> None:
    exp = tmp_path / "exp"
    run(config(max_epochs=1), data, exp)
    per_epoch = len(scalars(exp)["train/loss"])

    # SIGTERM at the 5th batch of epoch 2, before that step is logged: the process has logged
    # 4 steps that the checkpoint (epoch 1) does not cover, and its cleanup on the way out
    # writes them to its event file
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(config()))
    cmd = [sys.executable, "-m", "asr", "train", "--config", str(conf), "--train-dir"]
    cmd += [str(data[0]), "--dev-dir", str(data[1]), "--exp-dir", str(exp), "--threads", "1"]
    env = {**os.environ, FAULT_ENV: "batch:5:TERM", "OMP_NUM_THREADS": "1"}
    stopped = subprocess.run(
        [*cmd, "--no-progress", "--resume"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    first, second = sorted((exp / TENSORBOARD_DIR).glob("events.out.tfevents.*"))
    beyond = list(range(per_epoch + 1, per_epoch + 5))
    assert raw_steps(second, "train/loss") == beyond  # what the resumed run must replace

    run(config(), data, exp, resume=True)
    events = scalars(exp)
    assert_one_value_per_step(events, epochs=2)
    assert len(events["train/loss"]) == 2 * per_epoch
