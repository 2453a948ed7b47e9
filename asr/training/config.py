"""The ``training:`` section of the training YAML (TrainConfig), reading the whole file (with
command-line overrides) and writing the resolved one into the exp dir."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import yaml

from asr.config import apply_overrides, check_known_keys, load_yaml_mapping, validated_dataclass
from asr.errors import ConfigError
from asr.features.vtlp import check_max_warp
from asr.fileio import atomic_write
from asr.nn.model import ModelConfig
from asr.nn.precision import PRECISIONS
from asr.nn.spec_augment import SpecAugmentConfig
from asr.units.tokens import UNITS

logger = logging.getLogger(__name__)

# What a batch's summed CTC loss is divided by before the backward pass (TrainConfig)
LOSS_NORMALIZATIONS = ("token", "utterance")


@dataclass
class TrainConfig:
    """The ``training:`` section of the training YAML."""

    unit: str = "word"  # word | phone | char | bpe
    optimizer: str = "adam"  # adam | sgd (with momentum)
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    max_epochs: int = 30
    batch_frames: int = 20000  # padded frames per batch (batch size x longest utterance)
    max_batch_utts: int = 0  # 0 = no limit
    grad_clip: float = 5.0  # max global gradient norm; 0 = no clipping
    # What the gradient is taken of (asr.training.step): the batch's summed CTC loss divided by
    # its target tokens (token) or by its utterances (utterance: with max_batch_utts 1 the
    # gradient of -ln p(z|x) of one sequence, Graves' objective). Only the update changes: the
    # losses logged and in history.tsv stay per token either way.
    loss_normalization: str = "token"
    lr_halving_patience: int = 2  # epochs without dev improvement before the lr is halved
    lr_halving_factor: float = 0.5
    min_lr: float = 0.0  # stop once the lr falls below this
    early_stopping_patience: int = 6  # epochs without dev improvement before stopping; 0 = never
    min_improvement: float = 0.0  # relative dev-loss decrease that counts as an improvement
    # Normalized features kept in memory (true), read from the ark for each batch (false), or
    # auto: kept when they fit under cache_limit_mb (the rule: asr.training.setup.plan_cache)
    cache_features: bool | str = "auto"
    cache_limit_mb: int = 2000  # auto's limit, in MB (10^6 bytes) per process, train + dev
    num_workers: int = 0  # data-loading processes (0: load in the training process)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16: autocast dtype (asr.nn.precision)
    max_nonfinite_batches: int = 10  # consecutive NaN/inf batches tolerated before stopping
    spec_augment: dict[str, Any] | None = None  # SpecAugmentConfig options; None: off
    # Graves' weight noise: the standard deviation of Gaussian noise added to every weight for
    # each batch's forward and backward pass (asr.training.weight_noise); 0: off
    weight_noise: float = 0.0
    # VTLP (asr.features.vtlp): each training utterance's log-mel axis warped by a factor drawn
    # from [1 - vtlp_max_warp, 1 + vtlp_max_warp] (Jaitly & Hinton used 0.1); 0: off
    vtlp_max_warp: float = 0.0
    # a model package (path relative to the working directory) whose weights start the run;
    # see _Trainer.init_from. Ignored when --resume continues from a checkpoint.
    init_from: str | None = None
    # Shortest-first batches, unshuffled, for the first N epochs: SortaGrad (Amodei et al. 2016,
    # DeepSpeech 2; EESEN sorts by length too). Short utterances have few alignments to choose
    # from, so CTC finds its first spikes sooner; see asr.training.plateau for what was measured.
    sortagrad_epochs: int = 0
    # Recovery from the CTC plateau (asr.training.plateau): when the dev TER has stayed at or above
    # plateau_ter % for plateau_patience epochs since the (re)start, the weights are drawn anew
    # from the next seed and the optimizer starts over, at most plateau_restarts times; after
    # that the run says it is stuck. plateau_patience 0 turns this off.
    plateau_patience: int = 8
    plateau_ter: float = 90.0
    # ... or fewer dev hypothesis tokens than this per reference token (mostly blanks)
    plateau_min_output: float = 0.5
    plateau_restarts: int = 3
    # TensorBoard event files in EXP_DIR/tensorboard/ (asr.training.tensorboard); on by default
    tensorboard: bool = True
    # Also write checkpoint.pt every N optimisation steps within an epoch (0: at epoch ends only),
    # so that a killed run loses at most N steps; --resume continues at the next batch exactly
    save_every_steps: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str = "training config") -> None:
        if self.unit not in UNITS:
            raise ConfigError(
                f"{source}: unit must be one of {', '.join(UNITS)}, got {self.unit!r}"
            )
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"{source}: optimizer must be adam or sgd, got {self.optimizer!r}")
        if self.loss_normalization not in LOSS_NORMALIZATIONS:
            raise ConfigError(
                f"{source}: loss_normalization must be one of {', '.join(LOSS_NORMALIZATIONS)}, "
                f"got {self.loss_normalization!r}"
            )

        # a YAML boolean (what configs and packages before auto hold) or auto; 1 == True, so
        # the type is checked, not just the value
        if not (isinstance(self.cache_features, bool) or self.cache_features == "auto"):
            raise ConfigError(
                f"{source}: cache_features must be auto, true or false, got {self.cache_features!r}"
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"{source}: precision must be one of {', '.join(PRECISIONS)}, "
                f"got {self.precision!r}"
            )
        if self.spec_augment is not None:
            if not isinstance(self.spec_augment, Mapping):
                raise ConfigError(f"{source}: spec_augment must be a mapping of options")
            self.spec_augment_config(f"{source}: spec_augment")  # names the bad option
        if self.init_from is not None and (
            not isinstance(self.init_from, str) or not self.init_from.strip()
        ):
            raise ConfigError(
                f"{source}: init_from must be the path of a model package, got {self.init_from!r}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "float") and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ConfigError(f"{source}: {f.name} must be a number, got {value!r}")
            # YAML's .inf and .nan are floats: lr .inf trained a NaN model and exited 0
            if f.type == "float" and not math.isfinite(value):
                raise ConfigError(f"{source}: {f.name} must be a finite number, got {value!r}")
            if f.type == "int" and not isinstance(value, int):
                raise ConfigError(f"{source}: {f.name} must be an integer, got {value!r}")
            if f.type == "bool" and not isinstance(value, bool):
                raise ConfigError(f"{source}: {f.name} must be true or false, got {value!r}")
        if self.lr <= 0 or self.max_epochs < 1 or self.batch_frames < 1:
            raise ConfigError(f"{source}: lr, max_epochs and batch_frames must be positive")
        if not 0 < self.plateau_ter <= 100:
            raise ConfigError(f"{source}: plateau_ter must be a percentage in (0, 100]")
        if not 0 <= self.plateau_min_output <= 1:
            raise ConfigError(f"{source}: plateau_min_output must be in [0, 1]")
        check_max_warp(self.vtlp_max_warp, source)
        if not 0 < self.lr_halving_factor <= 1:
            raise ConfigError(f"{source}: lr_halving_factor must be in (0, 1]")
        negative = [
            f.name for f in fields(self) if f.type in ("int", "float") and getattr(self, f.name) < 0
        ]
        if negative:
            raise ConfigError(f"{source}: {', '.join(negative)} must not be negative")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "training config") -> TrainConfig:
        check_known_keys(values, (f.name for f in fields(cls)), source, "training option")
        values = dict(values)
        for f in fields(cls):  # YAML reads 1e-3 as a string; accept it as a number
            if f.type == "float" and isinstance(values.get(f.name), str):
                try:
                    values[f.name] = float(values[f.name])
                except ValueError:
                    pass  # validate() names the field
        return validated_dataclass(cls, values, source)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def spec_augment_config(self, source: str = "training.spec_augment") -> Any:
        """The ``SpecAugmentConfig`` of ``spec_augment`` (None when SpecAugment is off)."""
        if self.spec_augment is None:
            return None

        return SpecAugmentConfig.from_dict(dict(self.spec_augment), source)


def config_source(config: str | os.PathLike | Mapping[str, Any], overrides: Sequence[str]) -> str:
    """How errors and train.log name a training config: its file (or "training config" for a
    dict), and whether command-line overrides changed it."""
    source = "training config" if isinstance(config, Mapping) else str(config)
    return f"{source} (with command-line overrides)" if overrides else source


def load_train_config(
    config: str | os.PathLike | Mapping[str, Any], overrides: Sequence[str] = ()
) -> tuple[dict[str, Any], TrainConfig]:
    """Read the two-section training YAML (or dict): returns (model section, TrainConfig).

    ``overrides`` are ``dotted.key=value`` strings (``training.lr=0.0005``) set on the file's
    contents before they are checked (:func:`asr.config.apply_overrides`), so that a bad key or
    value is refused like one in the file, naming the file "with command-line overrides".
    """
    source = config_source(config, overrides)
    if not isinstance(config, Mapping):
        config = load_yaml_mapping(config, "training config")
    if overrides:
        config = apply_overrides(config, overrides, source)
    check_known_keys(config, ("model", "training"), source, "section")
    section = config.get("model") or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{source}: model must be a mapping of options")
    model = dict(section)
    for name in ("input_dim", "num_tokens"):
        if name in model:
            raise ConfigError(f"{source}: model.{name} is taken from the data; remove it")
    # Checked here, against placeholder data sizes, so that an error names this file (the
    # model is built only after the data is read, where the file is no longer known)
    ModelConfig.from_dict({**model, "input_dim": 1, "num_tokens": 2}, f"{source}: model")
    return model, TrainConfig.from_dict(config.get("training") or {}, source)


def save_train_config(
    path: str | os.PathLike,
    model_section: Mapping[str, Any],
    cfg: TrainConfig,
    comments: Sequence[str] = (),
) -> None:
    """Write the config a run trained with as a training YAML that ``load_train_config`` reads
    back to the same settings: every ``training:`` option (defaults included, so that a later
    change of a default cannot change what the file means) and the ``model:`` section without
    the sizes taken from the data. ``comments`` become ``#`` lines at the top. Atomic."""
    model = {k: v for k, v in model_section.items() if k not in ("input_dim", "num_tokens")}
    text = yaml.safe_dump({"model": model, "training": cfg.to_dict()}, sort_keys=False)
    with atomic_write(path) as handle:
        handle.writelines(f"# {line}\n" for line in comments)
        handle.write(text)
