"""What a training run is built from: its data and token list, its optimizer, its process wrap
and the first state of its schedule.

:class:`asr.training.trainer._Trainer` puts these together; each is a separate function so that
the trainer's constructor reads as the list of steps it is.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from asr.errors import ConfigError, DataDirError
from asr.features.dataset import Example, FeatureSet, SkipReport, fits_ctc, load_examples, read_map
from asr.training.config import TrainConfig
from asr.training.distributed import World
from asr.units.tokens import TokenList

logger = logging.getLogger(__name__)


@dataclass
class UsableExamples:
    """The examples a network can train and validate on (CTC needs enough output frames)."""

    train: list[Example]
    dev: list[Example]  # all scored; those in dev_loss_ids also count towards the dev loss
    dev_loss_ids: set[str]
    skipped: dict[str, SkipReport]


@dataclass
class TrainingData:
    """The training and dev sets of a run, read once, with the token list of the training text."""

    train_dir: Path
    dev_dir: Path
    train_set: FeatureSet
    dev_set: FeatureSet
    tokens: TokenList
    train_examples: list[Example]
    train_report: SkipReport
    dev_examples: list[Example]
    dev_report: SkipReport
    cache_note: str  # the train.log line saying which set is kept in memory, and why

    def usable(self, output_lengths: Callable[[torch.Tensor], torch.Tensor]) -> UsableExamples:
        """Drop training examples too short for their labels after the network's subsampling
        (``output_lengths``); dev ones are still scored but left out of the dev loss."""
        train, short = fits_ctc(self.train_examples, output_lengths)
        for e in short:
            self.train_report.add(
                "too short for their labels after subsampling (dropped)", e.utt_id
            )
        fit_dev, short_dev = fits_ctc(self.dev_examples, output_lengths)
        for e in short_dev:
            self.dev_report.add(
                "too short for their labels (scored, left out of dev loss)", e.utt_id
            )
        short_ids = {e.utt_id for e in short_dev}
        dev_loss_ids = {e.utt_id for e in fit_dev if e.labels is not None} - short_ids
        if not train:
            raise DataDirError(f"{self.train_dir}: no usable training utterances")
        if not dev_loss_ids:
            raise DataDirError(f"{self.dev_dir}: no dev utterances usable for a dev loss")
        return UsableExamples(
            train,
            self.dev_examples,
            dev_loss_ids,
            {"train": self.train_report, "dev": self.dev_report},
        )


def load_training_data(cfg: TrainConfig, train_dir: Path, dev_dir: Path) -> TrainingData:
    """Read both feature sets (dev normalised with training's global CMVN where that is the
    mode), build the token list from the training text and pair features with labels."""
    train_set = FeatureSet(train_dir)
    texts_path = train_dir / "text"
    tokens = TokenList.from_texts(_train_texts(train_set, texts_path), cfg.unit)
    train_examples, train_report = load_examples(train_set, tokens, texts_path)
    dev_stats = train_set.global_stats if train_set.config.cmvn == "global" else None
    dev_set = FeatureSet(dev_dir, global_stats=dev_stats)
    if dev_set.config_dict != train_set.config_dict:
        raise ConfigError(
            f"{dev_dir / 'feats.yaml'}: feature config differs from "
            f"{train_dir / 'feats.yaml'}; extract both with the same config"
        )
    dev_examples, dev_report = load_examples(dev_set, tokens)
    plan = plan_cache(cfg, train_set.normalized_bytes, dev_set.normalized_bytes)
    train_set.cache, dev_set.cache = plan.train, plan.dev
    logger.info(plan.line)
    return TrainingData(
        train_dir,
        dev_dir,
        train_set,
        dev_set,
        tokens,
        train_examples,
        train_report,
        dev_examples,
        dev_report,
        plan.line,
    )


@dataclass
class CachePlan:
    """Which feature sets a run keeps in memory (the rest stream from the ark), and the line
    that says so with the numbers."""

    train: bool
    dev: bool
    line: str


def plan_cache(cfg: TrainConfig, train_bytes: int, dev_bytes: int) -> CachePlan:
    """Decide ``cache_features`` for the training and dev sets from their normalized sizes.

    ``true`` and ``false`` are taken as they are. ``auto`` caches the training set when it fits
    under ``cache_limit_mb``, then the dev set when it fits in what is left, so that what auto
    keeps never exceeds the limit however large the corpus: memory stays flat beyond it. The
    sizes come from utt2num_frames and feats.yaml, so the decision costs no ark read.

    The limit is a fixed number, not a share of this machine's memory: the same config then
    caches or streams alike on a laptop and on a cluster node (and under torchrun, where every
    process holds its own cache). Either way the weights are the same; only speed differs.
    """
    setting = cfg.cache_features
    if setting == "auto":
        limit = cfg.cache_limit_mb * 10**6
        train = train_bytes <= limit
        dev = dev_bytes <= limit - (train_bytes if train else 0)
        how = f"cache_features auto, limit {_size(limit)} (training.cache_limit_mb)"
    else:
        train = dev = bool(setting)
        how = f"cache_features {str(setting).lower()}"

    def fate(cached: bool) -> str:
        return "kept in memory" if cached else "streamed from the ark"

    line = (
        f"features (normalized, float32): train {_size(train_bytes)}, dev {_size(dev_bytes)}; "
        f"{how}: train {fate(train)}, dev {fate(dev)}"
    )
    return CachePlan(train, dev, line)


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1e9:.2f} GB" if num_bytes >= 1e9 else f"{num_bytes / 1e6:.1f} MB"


def _train_texts(features: FeatureSet, text_path: Path) -> list[str]:
    texts = read_map(text_path, allow_empty=True)
    return [texts[u] for u in features.ids if u in texts]


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum (Graves' choice), as the config says."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )


def wrap_for_processes(
    model: torch.nn.Module, world: World, device: torch.device
) -> torch.nn.Module:
    """The network the training step runs: the model itself, or under torchrun the model in
    DistributedDataParallel (which averages gradients across processes)."""
    if not world.distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def initial_state(seed: int, notes: Sequence[str]) -> dict[str, Any]:
    """The schedule's state before epoch 1 (saved in every checkpoint, restored on resume)."""
    return {
        "epoch": 0,
        "best_dev_loss": math.inf,
        "best_epoch": 0,
        "bad_epochs": 0,
        "bad_since_halving": 0,
        "stop_reason": "",
        "history": [],
        "notes": list(notes),
        "done": "",
        "seed": seed,
    }
