"""The CTC plateau: the stuck rule on histories, restarts from new weights, SortaGrad, and a run
that cannot leave the plateau saying so."""

from __future__ import annotations

import kaldiio
import numpy as np
import pytest
import torch
from test_train import config, run, write_synthetic

import asr.training.trainer
from asr.errors import ConfigError
from asr.features.dataset import collate
from asr.nn.package import load_package
from asr.training import plateau
from asr.training.config import TrainConfig
from asr.training.history import read_history


def history(*ters: float) -> list[dict[str, float]]:
    return [{"epoch": i + 1, "dev_ter": t} for i, t in enumerate(ters)]


def test_stuck_means_every_epoch_since_the_restart_at_or_above_the_threshold() -> None:
    assert plateau.is_stuck(history(100, 100, 100), 0, patience=3, ter=99)
    assert not plateau.is_stuck(history(100, 100), 0, patience=3, ter=99)  # too soon
    # one epoch below the threshold means the run left the plateau, whatever came after
    assert not plateau.is_stuck(history(100, 50, 100, 100, 100), 0, patience=3, ter=99)
    # epochs before the last restart do not count
    assert not plateau.is_stuck(history(100, 100, 100, 100), 2, patience=3, ter=99)
    assert plateau.is_stuck(history(10, 100, 100, 100), 1, patience=3, ter=99)
    assert not plateau.is_stuck(history(100, 100, 100), 0, patience=0, ter=99)  # off
    assert plateau.epochs_on_plateau(history(100, 40, 100, 100), 0, ter=99) == 2
    assert plateau.epochs_on_plateau(history(100, 100, 100), 2, ter=99) == 1


def test_an_output_of_mostly_blanks_is_on_the_plateau_whatever_the_ter() -> None:
    """87% TER with three quarters of the tokens deleted (the forward-only tanh RNN in fp32)
    is the plateau; 81% TER with half the tokens emitted is a network learning badly."""
    mostly_blank = [{"epoch": i, "dev_ter": 87.0, "dev_output": 0.23} for i in (1, 2, 3)]
    learning = [{"epoch": i, "dev_ter": 81.0, "dev_output": 0.53} for i in (1, 2, 3)]
    assert plateau.is_stuck(mostly_blank, 0, patience=3, ter=90, min_output=0.5)
    assert not plateau.is_stuck(learning, 0, patience=3, ter=90, min_output=0.5)
    assert not plateau.is_stuck(mostly_blank, 0, patience=3, ter=90, min_output=0.0)
    # a history written before dev_output existed is judged by its TER alone
    assert not plateau.on_plateau({"epoch": 1, "dev_ter": 87.0}, ter=90, min_output=0.5)
    assert plateau.epochs_on_plateau(mostly_blank + learning[2:], 0, ter=90, min_output=0.5) == 0


def test_restart_seeds_differ_from_the_run_and_from_each_other() -> None:
    seeds = {plateau.restart_seed(0, k) for k in range(1, 5)}
    assert len(seeds) == 4 and 0 not in seeds
    assert plateau.restart_seed(3, 1) == plateau.restart_seed(3, 1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("plateau")
    write_synthetic(root / "train", 30, seed=1)
    write_synthetic(root / "dev", 8, seed=2)
    return root / "train", root / "dev"


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    """Transcripts with features that say nothing about them: the best a network can do is
    blank everywhere, so every run stays on the plateau (a plateau on demand)."""
    root = tmp_path_factory.mktemp("noise")
    for name, n, seed in (("train", 30, 1), ("dev", 8, 2)):
        write_synthetic(root / name, n, seed=seed)
        rng = np.random.default_rng(seed + 10)
        mats = dict(kaldiio.load_scp(str(root / name / "feats.scp")))
        noisy = {u: rng.standard_normal(m.shape).astype(np.float32) for u, m in mats.items()}
        kaldiio.save_ark(str(root / name / "feats.ark"), noisy, scp=str(root / name / "feats.scp"))
    return root / "train", root / "dev"


# no lr halving or early stopping: the plateau rule alone decides when these runs end
FLAT = {"early_stopping_patience": 0, "lr_halving_patience": 0}


def test_a_run_that_never_leaves_the_plateau_restarts_then_says_it_is_stuck(
    noise, tmp_path
) -> None:
    exp = tmp_path / "exp"
    cfg = config(max_epochs=12, plateau_patience=3, plateau_restarts=2, **FLAT)
    summary = run(cfg, noise, exp, seed=5)
    # restarts after epochs 3 and 6, then stuck again at 9: the run ends there, not at 12
    assert summary.epochs == 9
    assert summary.stop_reason == (
        "stuck on the CTC plateau: dev TER >= 90% or under 0.5 output tokens per reference "
        "token for 3 epochs after 2 restart(s)"
    )
    log = (exp / "train.log").read_text()
    assert "epoch 3: stuck on the CTC plateau" in log and "restart 1 of 2" in log
    assert "epoch 6: stuck on the CTC plateau" in log and "restart 2 of 2" in log
    assert "after 2 restart(s)" in log.splitlines()[-1]
    # the model kept is the best of the last attempt, never one from before a restart
    assert 7 <= summary.best_epoch <= 9
    assert load_package(exp / "final.pt").extra["epoch"] == summary.best_epoch


def test_resume_across_a_restart_equals_the_uninterrupted_run(noise, tmp_path) -> None:
    cfg = config(max_epochs=6, plateau_patience=2, plateau_restarts=1, **FLAT)
    straight = run(cfg, noise, tmp_path / "a", seed=3)
    part = dict(cfg, training=dict(cfg["training"], max_epochs=3))
    run(part, noise, tmp_path / "b", seed=3)  # restarts after epoch 2, stops after 3
    resumed = run(cfg, noise, tmp_path / "b", seed=3, resume=True)
    untimed = [
        [{k: v for k, v in h.items() if k != "time"} for h in read_history(d / "history.tsv")]
        for d in (tmp_path / "a", tmp_path / "b")
    ]
    assert untimed[0] == untimed[1]
    assert "restart 1 of 1" in (tmp_path / "b" / "train.log").read_text()
    assert resumed.stop_reason == straight.stop_reason
    a = load_package(tmp_path / "a" / "final.pt").state_dict
    b = load_package(tmp_path / "b" / "final.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_that_learns_is_never_restarted(data, tmp_path) -> None:
    exp = tmp_path / "exp"
    # the task passes through 4 epochs of mostly blanks (dev_output under 0.5) on its way
    summary = run(config(max_epochs=8, plateau_patience=6), data, exp, seed=0)
    assert "stuck" not in (exp / "train.log").read_text()
    assert summary.best_dev_ter < 50


def test_sortagrad_epochs_go_shortest_first_then_shuffled(data, tmp_path, monkeypatch) -> None:
    seen: list[tuple[int, int]] = []  # (which feature set, its longest utterance) per batch

    def recording_collate(features, batch):
        seen.append((id(features), max(e.num_frames for e in batch)))
        return collate(features, batch)

    monkeypatch.setattr(asr.training.trainer, "collate", recording_collate)
    run(config(max_epochs=2, sortagrad_epochs=1), data, tmp_path / "exp", seed=0)
    train_set = seen[0][0]  # training batches come first; the dev set's follow each epoch
    runs: list[list[int]] = [[]]
    for features, longest in seen:
        if features == train_set:
            runs[-1].append(longest)
        elif runs[-1]:
            runs.append([])
    first, second = runs[0], runs[1]
    assert len(first) == len(second) > 3
    assert first == sorted(first)  # epoch 1: shortest first
    assert second != sorted(second) and sorted(second) == first  # epoch 2: the same, shuffled


def test_plateau_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="plateau_ter"):
        TrainConfig.from_dict({"plateau_ter": 0})
    with pytest.raises(ConfigError, match="plateau_ter"):
        TrainConfig.from_dict({"plateau_ter": 120})
    with pytest.raises(ConfigError, match="plateau_patience"):
        TrainConfig.from_dict({"plateau_patience": -1})


def test_a_run_that_ends_on_the_plateau_at_max_epochs_says_so(noise, tmp_path) -> None:
    exp = tmp_path / "exp"
    summary = run(config(max_epochs=3, plateau_patience=8, **FLAT), noise, exp, seed=1)
    assert summary.stop_reason == (
        "max_epochs 3; stuck on the CTC plateau: dev TER >= 90% or under 0.5 output tokens "
        "per reference token for 3 epochs after 0 restart(s)"
    )
    assert summary.stop_reason in (exp / "train.log").read_text().splitlines()[-1]
