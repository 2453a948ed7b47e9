"""The CTC training loop: batches by frames, LR halving, early stopping, checkpoints and resume.

One epoch = one pass over the training batches (length-sorted, packed to ``batch_frames``, in an
order shuffled from ``(seed, epoch)``), then the dev loss and the dev token error rate (greedy
decoding). After each epoch, in this order: ``epoch-N.pt`` (the model), ``history.tsv``,
``train.log``, ``curves.png`` and last ``checkpoint.pt``, which holds everything resuming needs
(model, optimizer with its learning rate, schedule counters, history, RNG state). Every file is
written atomically, so after a kill ``checkpoint.pt`` is the last complete epoch and
``--resume`` continues from it exactly as if nothing had happened. ``final.pt`` is the model
package of the epoch with the lowest dev loss.

Fine-tuning: ``init_from`` (``--init-from``, ``training.init_from``) starts a new run from the
weights of a model package with the same features and architecture but any token list; see
:func:`init_from_package`. Resuming from a checkpoint wins over it.

Randomness is a function of the run's seed alone: the model is initialised from ``seed``, each
epoch reseeds torch from ``(seed, epoch, rank)`` (dropout) and each batch's SpecAugment masks
come from a generator seeded by ``(seed, epoch, batch number)``. So a resumed run, whatever the
number of processes it resumes with, continues exactly as an uninterrupted one would.

Under ``torchrun`` every process builds the same length-bucketed batch list and takes every
``world``-th batch (DistributedDataParallel averages the gradients); only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from asr import plateau
from asr.config import check_known_keys, load_yaml_mapping, validated_dataclass
from asr.dataset import (
    Example,
    FeatureSet,
    collate,
    fits_ctc,
    load_examples,
    make_batches,
)
from asr.distributed import World, all_gather_objects, world_from_env
from asr.errors import ConfigError, DataDirError, TrainingError
from asr.fileio import atomic_write, fault_point
from asr.model import AcousticModel, ModelConfig
from asr.package import ModelPackage, load_checkpoint, save_package
from asr.tokens import UNITS, TokenList

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
FINAL = "final.pt"
# dev_output: dev hypothesis tokens per reference token (near 0 on the CTC plateau: blanks only)
HISTORY_FIELDS = ("epoch", "train_loss", "dev_loss", "dev_ter", "lr", "time", "dev_output")


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
    lr_halving_patience: int = 2  # epochs without dev improvement before the lr is halved
    lr_halving_factor: float = 0.5
    min_lr: float = 0.0  # stop once the lr falls below this
    early_stopping_patience: int = 6  # epochs without dev improvement before stopping; 0 = never
    min_improvement: float = 0.0  # relative dev-loss decrease that counts as an improvement
    cache_features: bool = True  # keep normalized features in memory
    num_workers: int = 0  # data-loading processes (0: load in the training process)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16: autocast dtype (asr.precision)
    max_nonfinite_batches: int = 10  # consecutive NaN/inf batches tolerated before stopping
    spec_augment: dict[str, Any] | None = None  # SpecAugmentConfig options; None: off
    # a model package (path relative to the working directory) whose weights start the run;
    # see _Trainer.init_from. Ignored when --resume continues from a checkpoint.
    init_from: str | None = None
    # Shortest-first batches, unshuffled, for the first N epochs: SortaGrad (Amodei et al. 2016,
    # DeepSpeech 2; EESEN sorts by length too). Short utterances have few alignments to choose
    # from, so CTC finds its first spikes sooner; see asr.plateau for what was measured.
    sortagrad_epochs: int = 0
    # Recovery from the CTC plateau (asr.plateau): when the dev TER has stayed at or above
    # plateau_ter % for plateau_patience epochs since the (re)start, the weights are drawn anew
    # from the next seed and the optimizer starts over, at most plateau_restarts times; after
    # that the run says it is stuck. plateau_patience 0 turns this off.
    plateau_patience: int = 8
    plateau_ter: float = 90.0
    # ... or fewer dev hypothesis tokens than this per reference token (mostly blanks)
    plateau_min_output: float = 0.5
    plateau_restarts: int = 3

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str = "training config") -> None:
        if self.unit not in UNITS:
            raise ConfigError(
                f"{source}: unit must be one of {', '.join(UNITS)}, got {self.unit!r}"
            )
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"{source}: optimizer must be adam or sgd, got {self.optimizer!r}")
        from asr.precision import PRECISIONS

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
        from asr.spec_augment import SpecAugmentConfig

        return SpecAugmentConfig.from_dict(dict(self.spec_augment), source)


def load_train_config(
    config: str | os.PathLike | Mapping[str, Any],
) -> tuple[dict[str, Any], TrainConfig]:
    """Read the two-section training YAML (or dict): returns (model section, TrainConfig)."""
    source = "training config"
    if not isinstance(config, Mapping):
        source = str(config)
        config = load_yaml_mapping(config, "training config")
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


@dataclass
class TrainSummary:
    """What ``train`` returns: the best epoch and where the model is."""

    best_epoch: int
    best_dev_loss: float
    best_dev_ter: float
    epochs: int
    stop_reason: str
    elapsed: float
    final_path: Path
    history: list[dict[str, float]] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"best epoch {self.best_epoch} of {self.epochs}: dev loss {self.best_dev_loss:.4f}, "
            f"dev TER {self.best_dev_ter:.2f}% ({self.stop_reason}); {self.elapsed:.1f}s; "
            f"model {self.final_path}"
        )


def error_rate(refs: Mapping[str, list[str]], hyps: Mapping[str, list[str]]) -> float:
    """Token error rate in percent: edit distance summed over utterances / reference tokens."""
    from asr.score import wer
    from asr.score.align import LEVENSHTEIN_COSTS

    result = wer(dict(refs), {u: hyps[u] for u in refs}, costs=LEVENSHTEIN_COSTS)
    return 100.0 * result.errors / max(result.ref_words, 1)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The torch seed of one epoch in one process (dropout); batch order uses rank 0's."""
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729) % (2**63)


def batch_seed(seed: int, epoch: int, number: int) -> int:
    """The seed of one batch's augmentation: the same whichever process trains the batch."""
    return (seed * 1_000_003 + epoch * 7919 + number * 15_485_863 + 1) % (2**63)


def _cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn a failed write (disk full, file too large, no permission) into one line naming
    ``path``. atomic_write has removed its temp file by then: the old file, if any, is intact,
    and so is the last checkpoint, from which --resume goes on once there is room."""
    try:
        yield
    except OSError as exc:
        raise TrainingError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _write_history(path: Path, history: Sequence[Mapping[str, float]]) -> None:
    with atomic_write(path) as handle:
        handle.write("\t".join(HISTORY_FIELDS) + "\n")
        for h in history:
            # a history from before dev_output was recorded (an older checkpoint) has none
            handle.write("\t".join(repr(h.get(k, math.nan)) for k in HISTORY_FIELDS) + "\n")


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """Read ``history.tsv`` back (epoch as int, the rest as float)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        row: dict[str, float] = dict(zip(header, map(float, line.split("\t")), strict=True))
        row["epoch"] = int(row["epoch"])
        rows.append(row)
    return rows


def format_epoch(h: Mapping[str, float]) -> str:
    """The train.log line of one epoch (parsed back by tests and tools: keep it stable)."""
    return (
        f"epoch {h['epoch']} train_loss {h['train_loss']:.4f} dev_loss {h['dev_loss']:.4f} "
        f"dev_ter {h['dev_ter']:.2f} lr {h['lr']:.3e} time {h['time']:.1f}s"
    )


def _write_log(
    path: Path, notes: Sequence[str], history: Sequence[Mapping[str, float]], done: str
) -> None:
    with atomic_write(path) as handle:
        for note in notes:
            handle.write(f"# {note}\n")
        for h in history:
            handle.write(format_epoch(h) + "\n")
        if done:
            handle.write(f"# {done}\n")


def _resolve_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device {device}: not a torch device (use cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device}: only cpu and cuda are supported")
    return dev


# ModelConfig fields that may differ between an --init-from package and the new run: the token
# count (the output layer is mapped by symbol) and dropout (not part of the weights)
_INIT_FREE_FIELDS = ("num_tokens", "dropout")


def init_from_package(
    model: torch.nn.Module,
    model_config: Mapping[str, Any],
    symbols: Sequence[str],
    package: ModelPackage,
    source: str = "init_from",
) -> dict[str, Any]:
    """Copy the weights of ``package`` into ``model`` (built from ``model_config``, whose output
    layer has one row per entry of ``symbols``), in place, for fine-tuning.

    The architecture and input dimension must match (ConfigError naming what differs); every
    tensor whose name and shape match is copied; the output layer (``output.weight`` and
    ``output.bias``) gets the package's rows of the symbols both token lists hold (the blank
    included) and keeps its own initialisation for the others. Returns a summary: ``tensors``
    copied of ``total``, ``mapped`` output rows, the ``new`` symbols (not in the package) and
    the number of package symbols ``dropped`` (not in ``symbols``).
    """
    theirs = package.model_config
    differ = [
        f"{name} {theirs.get(name)!r} vs {value!r}"
        for name, value in model_config.items()
        if name not in _INIT_FREE_FIELDS and theirs.get(name) != value
    ]
    if differ:
        raise ConfigError(
            f"{source}: cannot initialise from this model, its architecture differs "
            f"(package vs this run): {'; '.join(differ)}"
        )
    source_index = {s: i for i, s in enumerate(package.tokens)}
    rows = [(i, source_index[s]) for i, s in enumerate(symbols) if s in source_index]
    new = [s for s in symbols if s not in source_index]
    weights = package.state_dict
    copied = 0
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            src = weights.get(name)
            if src is None:
                continue
            if name in ("output.weight", "output.bias"):
                if src.shape[1:] != tensor.shape[1:] or len(src) != len(package.tokens):
                    continue
                ours = torch.tensor([i for i, _ in rows], dtype=torch.long)
                theirs_rows = torch.tensor([j for _, j in rows], dtype=torch.long)
                tensor[ours.to(tensor.device)] = src[theirs_rows].to(tensor.device, tensor.dtype)
                copied += 1
            elif src.shape == tensor.shape:
                tensor.copy_(src)
                copied += 1
    return {
        "tensors": copied,
        "total": len(model.state_dict()),
        "mapped": len(rows),
        "new": new,
        "dropped": len(package.tokens) - len(rows),
    }


class _Trainer:
    """The state of one training run; ``train`` is its public face."""

    def __init__(
        self,
        model_section: dict[str, Any],
        cfg: TrainConfig,
        train_dir: Path,
        dev_dir: Path,
        exp_dir: Path,
        seed: int,
        device: torch.device,
        progress: bool,
        world: World,
    ) -> None:
        from asr.precision import precision_name, resolve_precision
        from asr.train_step import TrainStep

        self.cfg, self.exp_dir, self.seed, self.device = cfg, exp_dir, seed, device
        self.world = world
        self.progress = progress and world.is_main
        self.notes: list[str] = []
        self.train_set = FeatureSet(train_dir, cache=cfg.cache_features)
        texts_path = train_dir / "text"
        tokens = TokenList.from_texts(_train_texts(self.train_set, texts_path), cfg.unit)
        self.tokens = tokens
        train_examples, train_report = load_examples(self.train_set, tokens, texts_path)
        global_stats = self.train_set.global_stats
        dev_stats = global_stats if self.train_set.config.cmvn == "global" else None
        self.dev_set = FeatureSet(dev_dir, cache=cfg.cache_features, global_stats=dev_stats)
        if self.dev_set.config_dict != self.train_set.config_dict:
            raise ConfigError(
                f"{dev_dir / 'feats.yaml'}: feature config differs from "
                f"{train_dir / 'feats.yaml'}; extract both with the same config"
            )
        dev_examples, dev_report = load_examples(self.dev_set, tokens)

        self.model_config = ModelConfig.from_dict(
            {
                **model_section,
                "input_dim": self.train_set.feature_dim,
                "num_tokens": len(tokens),
            }
        )
        # every process initialises the same weights (DDP would broadcast rank 0's anyway)
        torch.manual_seed(seed)
        self.model = AcousticModel(self.model_config).to(device)

        self.train_examples, short = fits_ctc(train_examples, self.model.output_lengths)
        for e in short:
            train_report.add("too short for their labels after subsampling (dropped)", e.utt_id)
        fit_dev, short_dev = fits_ctc(dev_examples, self.model.output_lengths)
        for e in short_dev:
            dev_report.add("too short for their labels (scored, left out of dev loss)", e.utt_id)
        self.dev_examples = dev_examples
        short_ids = {e.utt_id for e in short_dev}
        self.dev_loss_ids = {e.utt_id for e in fit_dev if e.labels is not None} - short_ids
        self.skipped = {"train": train_report, "dev": dev_report}
        if not self.train_examples:
            raise DataDirError(f"{train_dir}: no usable training utterances")
        if not self.dev_loss_ids:
            raise DataDirError(f"{dev_dir}: no dev utterances usable for a dev loss")
        num_batches = len(self._batches(self.train_examples, None))
        if num_batches < world.size:
            raise ConfigError(
                f"{train_dir}: {num_batches} training batches cannot feed {world.size} "
                "processes; lower batch_frames or use fewer processes"
            )

        self.autocast_dtype = resolve_precision(cfg.precision, device)
        spec = cfg.spec_augment_config()
        self.notes.append(
            f"train {train_dir} ({len(self.train_examples)} utts), dev {dev_dir} "
            f"({len(self.dev_examples)} utts); {len(tokens)} {cfg.unit} tokens incl. blank; "
            f"{self.model.num_parameters()} parameters; seed {seed}; "
            f"precision {precision_name(self.autocast_dtype)} (asked: {cfg.precision}); "
            f"SpecAugment {'on' if spec is not None else 'off'}; "
            f"{world.size} process(es) on {device.type}"
        )
        for name, report in self.skipped.items():
            for line in report.lines(name):
                logger.warning(line)
                self.notes.append(line)

        if cfg.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
            )
        else:
            self.optimizer = torch.optim.SGD(
                self.model.parameters(),
                lr=cfg.lr,
                momentum=cfg.momentum,
                weight_decay=cfg.weight_decay,
            )
        network: torch.nn.Module = self.model
        if world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            network = DistributedDataParallel(self.model, device_ids=ids)
        self.step = TrainStep(
            network,
            self.model,
            self.optimizer,
            device,
            grad_clip=cfg.grad_clip,
            autocast_dtype=self.autocast_dtype,
            spec_augment=spec,
            distributed=world.distributed,
            delta_blocks=self.train_set.config.delta_order + 1,
        )
        if cfg.cache_features and cfg.num_workers > 0:
            # fill the cache once, before workers fork and share it; otherwise each epoch's
            # workers would read and normalize everything again into caches that die with them
            self.train_set.preload()
            self.dev_set.preload()
        self.state: dict[str, Any] = {
            "epoch": 0,
            "best_dev_loss": math.inf,
            "best_epoch": 0,
            "bad_epochs": 0,
            "bad_since_halving": 0,
            "stop_reason": "",
            "history": [],
            "notes": list(self.notes),
            "done": "",
            "seed": seed,
        }

    # --- persistence -------------------------------------------------------------------------

    def package(self, state_dict: dict[str, torch.Tensor], extra: dict[str, Any]) -> ModelPackage:
        return ModelPackage(
            state_dict=state_dict,
            model_config=self.model_config.to_dict(),
            tokens=list(self.tokens.symbols),
            feature_config=self.train_set.config_dict,
            cmvn_stats=self._package_stats(),
            extra=extra,
        )

    def _package_stats(self) -> torch.Tensor | None:
        """The global CMVN statistics for the package. Only global CMVN normalizes with them
        (training already refused non-finite ones there); under per-speaker or per-utterance
        CMVN a NaN utterance that training skipped would leave them NaN, and a package with
        non-finite statistics is refused on load, so they are left out."""
        stats = self.train_set.global_stats
        if self.train_set.config.cmvn != "global" and not bool(torch.isfinite(stats).all()):
            return None
        return stats

    def train_config_dict(self) -> dict[str, Any]:
        model = self.model_config.to_dict()
        return {"model": model, "training": self.cfg.to_dict(), "seed": self.seed}

    def init_extra(self) -> dict[str, Any]:
        """The package ``extra`` entry of a run started from another model's weights."""
        init = self.state.get("init_from")
        return {"init_from": init} if init else {}

    def on_main(self, write: Callable[[], None]) -> None:
        """Run ``write`` in rank 0 and wait for it in every process. A failed write
        (TrainingError) is raised in every process, so that none waits for rank 0 forever."""
        problem = ""
        if self.world.is_main:
            try:
                write()
            except TrainingError as exc:
                problem = str(exc)
        problem = all_gather_objects(problem)[0]  # rank 0's word; also the barrier
        if problem:
            raise TrainingError(problem)

    def save_epoch(self) -> None:
        """Rank 0 writes the epoch's files; every process waits until they are complete."""
        self.on_main(self._write_epoch)

    def _write_epoch(self) -> None:
        epoch = self.state["epoch"]
        extra = {
            "train_config": self.train_config_dict(),
            "epoch": epoch,
            "unit": self.cfg.unit,
            **self.init_extra(),
        }
        weights = _cpu_state_dict(self.model)
        path = self.exp_dir / f"epoch-{epoch}.pt"
        with _writing(path):
            save_package(self.package(weights, extra), path)
        self.write_reports()
        # The checkpoint goes last: it is the commit point of the epoch.
        with _writing(self.exp_dir / CHECKPOINT):
            save_package(
                self.package(weights, extra),
                self.exp_dir / CHECKPOINT,
                optimizer=self.optimizer.state_dict(),
                train_state=self.state,
                scaler=self.step.scaler.state_dict(),
            )

    def write_reports(self) -> None:
        from asr.curves import plot_curves

        history = self.state["history"]
        with _writing(self.exp_dir / "history.tsv"):
            _write_history(self.exp_dir / "history.tsv", history)
        done = self.state.get("done", "")
        with _writing(self.exp_dir / "train.log"):
            _write_log(self.exp_dir / "train.log", self.state["notes"], history, done)
        if history:
            with _writing(self.exp_dir / "curves.png"):
                plot_curves(history, self.exp_dir / "curves.png")

    def init_from(self, path: str) -> None:
        """Start from the weights of the model package at ``path`` (see init_from_package)."""
        from asr.package import load_package

        package = load_package(path)
        source = f"init_from {path}"
        if "input_dim" in package.model_config and (
            package.model_config["input_dim"] != self.model_config.input_dim
        ):
            raise ConfigError(
                f"{source}: the package takes {package.model_config['input_dim']}-dim features, "
                f"the training data has {self.model_config.input_dim}; extract them alike"
            )
        result = init_from_package(
            self.model, self.model_config.to_dict(), self.tokens.symbols, package, source
        )
        if package.feature_config != self.train_set.config_dict:
            logger.warning("%s: feature config differs from the training data's", source)
        new = result["new"]
        shown = " ".join(new[:30]) + (f" ... (+{len(new) - 30})" if len(new) > 30 else "")
        line = (
            f"initialised from {path}: {result['tensors']} of {result['total']} tensors copied; "
            f"output layer: {result['mapped']} of {len(self.tokens)} token rows mapped, "
            f"{result['dropped']} source token(s) dropped, {len(new)} new"
            + (f" ({shown})" if new else "")
        )
        logger.info(line)
        self.state["notes"].append(line)
        self.state["init_from"] = {
            "path": str(Path(path).resolve()),
            "mapped_tokens": result["mapped"],
            "new_tokens": new,
            "tensors": result["tensors"],
        }

    def resume(self, path: Path) -> None:
        payload = load_checkpoint(path)
        if payload.get("model_config") != self.model_config.to_dict():
            raise ConfigError(
                f"{path}: model config differs from the one in the config file "
                "(or the data's feature dim / token count changed); use a new exp dir"
            )
        if payload.get("tokens") != self.tokens.symbols:
            raise ConfigError(f"{path}: token list differs from the one built from the data")
        if "optimizer" not in payload or "train_state" not in payload:
            raise ConfigError(f"{path}: a model package, not a training checkpoint")
        self.model.load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(payload["optimizer"])
        if payload.get("scaler"):
            self.step.scaler.load_state_dict(payload["scaler"])
        self.state = payload["train_state"]
        if self.state["seed"] != self.seed:
            # the batch order of the remaining epochs derives from the run's seed: keep it
            logger.warning("%s: keeping the run's seed %d", path, self.state["seed"])
            self.seed = self.state["seed"]
        self.state["notes"].append(
            f"resumed after epoch {self.state['epoch']} with {self.world.size} process(es)"
        )
        self.state["done"] = ""
        reason = self.state["stop_reason"].split(";")[0]
        if reason == f"max_epochs {self.state['epoch']}" and (
            self.state["epoch"] < self.cfg.max_epochs
        ):
            self.state["stop_reason"] = ""  # max_epochs was raised: carry on
        logger.info("resuming %s after epoch %d", self.exp_dir, self.state["epoch"])

    # --- the loop ----------------------------------------------------------------------------

    def _batches(
        self, examples: Sequence[Example], shuffle_seed: int | None
    ) -> list[list[Example]]:
        by_id = {e.utt_id: e for e in examples}
        lengths = {e.utt_id: e.num_frames for e in examples}
        groups = make_batches(lengths, self.cfg.batch_frames, self.cfg.max_batch_utts, shuffle_seed)
        return [[by_id[u] for u in group] for group in groups]

    def _my_batches(self, batches: list[list[Example]], even: bool) -> list[tuple[int, Any]]:
        """This process's share of ``batches`` as (global number, batch): every world-th one.

        With ``even`` the tail that cannot be shared equally is left out (this epoch only: the
        order is reshuffled each epoch), since every DDP step needs every process.
        """
        world = self.world
        numbered = list(enumerate(batches))
        if even:
            numbered = numbered[: len(numbered) - len(numbered) % world.size]
        return numbered[world.rank :: world.size]

    def _loader(self, features: FeatureSet, batches: list[tuple[int, list[Example]]]) -> Any:
        """Collated batches, loaded by worker processes when ``num_workers`` > 0."""
        if self.cfg.num_workers == 0:
            return ((n, collate(features, batch)) for n, batch in batches)
        from torch.utils.data import DataLoader

        return DataLoader(
            _CollatedBatches(features, batches),
            batch_size=None,
            num_workers=self.cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            # its own generator: drawing the workers' seed from the global one would shift
            # every dropout mask, and the result would depend on the number of workers
            generator=torch.Generator().manual_seed(0),
        )

    def run_epoch(self, epoch: int) -> float:
        from tqdm import tqdm

        self.model.train()
        torch.manual_seed(epoch_seed(self.seed, epoch, self.world.rank))
        # The order is the same in every process; each takes its share of it. SortaGrad's
        # epochs (counted from the last plateau restart) go shortest first, unshuffled.
        sorted_epoch = epoch - self.state.get("restart_epoch", 0) <= self.cfg.sortagrad_epochs
        shuffle_seed = None if sorted_epoch else self.seed * 1_000_003 + epoch
        batches = self._batches(self.train_examples, shuffle_seed)
        mine = self._my_batches(batches, even=True)
        total_loss, total_tokens, skipped = 0.0, 0, 0
        bar = tqdm(total=len(mine), desc=f"epoch {epoch}", unit="batch", disable=not self.progress)
        for number, (feats, lengths, targets, target_lengths) in self._loader(self.train_set, mine):
            result = self.step(
                feats,
                lengths,
                targets,
                target_lengths,
                augment_seed=batch_seed(self.seed, epoch, int(number)),
            )
            fault_point("batch")  # crash tests stop here: mid-epoch, the optimizer stepped
            bar.update(1)
            if result.loss is None:
                skipped += 1
                # counted across epochs (and kept in the checkpoint): "in a row" means in a row
                in_a_row = self.state.get("nonfinite_in_a_row", 0) + 1
                self.state["nonfinite_in_a_row"] = in_a_row
                logger.warning("epoch %d: non-finite %s, batch skipped", epoch, result.skipped)
                if in_a_row > self.cfg.max_nonfinite_batches:
                    raise TrainingError(
                        f"{self.exp_dir}: {in_a_row} batches in a row had a NaN or infinite "
                        f"{result.skipped} (epoch {epoch}); stopped. Lower lr, check the "
                        "features, or resume from the last checkpoint with --resume"
                    )
                continue
            self.state["nonfinite_in_a_row"] = 0
            total_loss += result.loss
            total_tokens += result.tokens
            bar.set_postfix(loss=f"{total_loss / max(total_tokens, 1):.3f}")
        bar.close()
        if skipped:
            note = f"epoch {epoch}: {skipped} batch(es) with a non-finite loss or gradient skipped"
            self.state["notes"].append(note)
        from asr.distributed import all_sum

        total_loss, total_tokens = all_sum([total_loss, float(total_tokens)])
        if total_tokens == 0:
            raise TrainingError(
                f"{self.exp_dir}: every batch of epoch {epoch} had a NaN or infinite loss or "
                "gradient; stopped. Lower lr or check the features"
            )
        return total_loss / total_tokens

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, float]:
        """Dev loss per token (utterances with usable labels), dev token error rate (%) and the
        dev hypotheses' token count per reference token (the plateau's signature: near 0).

        Each process decodes its share of the dev batches; the sums and hypotheses are
        gathered so that every process takes the same schedule decision.
        """
        from asr.decode import greedy_decode
        from asr.distributed import all_gather_objects, all_sum
        from asr.model import ctc_loss
        from asr.precision import autocast

        self.model.eval()
        total_loss, total_tokens = 0.0, 0
        hyps: dict[str, list[str]] = {}
        mine = self._my_batches(self._batches(self.dev_examples, None), even=False)
        by_number = dict(mine)
        for number, (feats, lengths, _, _) in self._loader(self.dev_set, mine):
            batch = by_number[int(number)]
            with autocast(self.device, self.autocast_dtype):
                log_probs, out_lengths = self.model(feats.to(self.device), lengths.to(self.device))
            log_probs = log_probs.float()
            for ids, e in zip(greedy_decode(log_probs, out_lengths), batch, strict=True):
                hyps[e.utt_id] = self.tokens.decode_symbols(ids)
            rows = [i for i, e in enumerate(batch) if e.utt_id in self.dev_loss_ids]
            if rows:
                labels = [batch[i].labels or [] for i in rows]
                targets = torch.tensor([t for seq in labels for t in seq], dtype=torch.long)
                target_lengths = torch.tensor([len(s) for s in labels], dtype=torch.long)
                index = torch.tensor(rows, device=log_probs.device)
                loss = ctc_loss(
                    log_probs[index], out_lengths[index], targets.to(self.device), target_lengths
                )
                total_loss += float(loss)
                total_tokens += int(target_lengths.sum())
        total_loss, total_tokens = all_sum([total_loss, float(total_tokens)])
        for part in all_gather_objects(hyps):
            hyps.update(part)
        refs = {e.utt_id: e.ref for e in self.dev_examples}
        output = sum(len(hyps.get(u, ())) for u in refs) / max(sum(map(len, refs.values())), 1)
        return total_loss / max(total_tokens, 1), error_rate(refs, hyps), output

    def update_schedule(self, dev_loss: float) -> None:
        """Newbob-style: halve the lr after a patience of flat epochs; stop after a longer one."""
        s, cfg = self.state, self.cfg
        # a NaN or infinite dev loss is never an improvement: NaN compares false with
        # everything, and the first epoch used to become the best whatever its loss
        if math.isfinite(dev_loss) and (
            s["best_epoch"] == 0 or dev_loss < s["best_dev_loss"] * (1.0 - cfg.min_improvement)
        ):
            s["best_dev_loss"], s["best_epoch"] = dev_loss, s["epoch"]
            s["bad_epochs"] = s["bad_since_halving"] = 0
            return
        s["bad_epochs"] += 1
        s["bad_since_halving"] += 1
        if cfg.lr_halving_patience and s["bad_since_halving"] >= cfg.lr_halving_patience:
            s["bad_since_halving"] = 0
            for group in self.optimizer.param_groups:
                group["lr"] *= cfg.lr_halving_factor
            lr = self.optimizer.param_groups[0]["lr"]
            logger.info("dev loss did not improve: learning rate now %.3e", lr)
            if lr < cfg.min_lr:
                s["stop_reason"] = f"lr below min_lr {cfg.min_lr:g}"
        if cfg.early_stopping_patience and s["bad_epochs"] >= cfg.early_stopping_patience:
            s["stop_reason"] = f"early stop: no dev improvement in {s['bad_epochs']} epochs"

    def fit(self, epoch_callback: Callable[[dict[str, float]], None] | None) -> None:
        s = self.state
        while not s["stop_reason"] and s["epoch"] < self.cfg.max_epochs:
            epoch = s["epoch"] + 1
            if s.get("restart_pending") is not None:
                self.restart_weights(s.pop("restart_pending"))
            start = time.monotonic()
            lr = float(self.optimizer.param_groups[0]["lr"])
            train_loss = self.run_epoch(epoch)
            dev_loss, dev_ter, dev_output = self.evaluate()
            s["epoch"] = epoch
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "dev_loss": dev_loss,
                "dev_ter": dev_ter,
                "lr": lr,
                "time": time.monotonic() - start,
                "dev_output": dev_output,
            }
            s["history"].append(record)
            self.update_schedule(dev_loss)
            self.check_plateau()
            if not s["stop_reason"] and epoch >= self.cfg.max_epochs:
                s["stop_reason"] = f"max_epochs {epoch}"
            logger.info(format_epoch(record))
            self.save_epoch()
            if epoch_callback is not None:
                epoch_callback(record)

    def check_plateau(self) -> None:
        """Restart from new weights when the run is stuck on the CTC plateau (asr.plateau).

        Also when early stopping or the lr floor would end a run that never left the plateau:
        stopping there would keep a model that emits nothing, whatever its patience said. A
        run that ends on the plateau (restarts used up, or max_epochs) says so in its stop
        reason, the summary line and train.log.
        """
        s, cfg = self.state, self.cfg
        if cfg.plateau_patience == 0:
            return
        since = s.get("restart_epoch", 0)
        rule = {"ter": cfg.plateau_ter, "min_output": cfg.plateau_min_output}
        stuck = plateau.is_stuck(s["history"], since, cfg.plateau_patience, **rule)
        last = bool(s["stop_reason"]) or s["epoch"] >= cfg.max_epochs
        ending = last and plateau.is_stuck(s["history"], since, 1, **rule)
        if not (stuck or ending):
            return
        restarts = s.get("plateau_restarts", 0)
        flat = plateau.epochs_on_plateau(s["history"], since, **rule)
        what = (
            f"stuck on the CTC plateau: dev TER >= {cfg.plateau_ter:g}% or under "
            f"{cfg.plateau_min_output:g} output tokens per reference token for {flat} epochs"
        )
        if restarts >= cfg.plateau_restarts or s["epoch"] >= cfg.max_epochs:
            reason = f"{what} after {restarts} restart(s)"
            if not s["stop_reason"] and s["epoch"] >= cfg.max_epochs:
                reason = f"max_epochs {s['epoch']}; {reason}"  # a resume may raise max_epochs
            s["stop_reason"] = reason
            logger.warning("%s: %s", self.exp_dir, s["stop_reason"])
            return
        restarts += 1
        new_seed = plateau.restart_seed(self.seed, restarts)
        # the new weights are drawn when the next epoch starts, so that this epoch's files hold
        # the weights it evaluated and a kill in between resumes into the same restart
        s.update(
            restart_pending=new_seed,
            plateau_restarts=restarts,
            restart_epoch=s["epoch"],
            best_dev_loss=math.inf,
            best_epoch=0,
            bad_epochs=0,
            bad_since_halving=0,
            stop_reason="",
        )
        note = (
            f"epoch {s['epoch']}: {what}; restart {restarts} of {cfg.plateau_restarts} "
            f"with new weights (seed {new_seed}) and lr {cfg.lr:g}"
        )
        s["notes"].append(note)
        logger.warning(note)

    def restart_weights(self, seed: int) -> None:
        """New weights drawn as a fresh run seeded ``seed`` would, and a fresh optimizer."""
        torch.manual_seed(seed)
        fresh = AcousticModel(self.model_config)
        with torch.no_grad():
            self.model.load_state_dict(fresh.state_dict())
        # the moments of the stuck run would steer the new weights back where they came from
        self.optimizer.state.clear()
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr

    def finish(self, elapsed: float) -> TrainSummary:
        s = self.state
        if s["best_epoch"] == 0:  # update_schedule never takes a non-finite dev loss as best
            raise TrainingError(
                f"{self.exp_dir}: the dev loss was NaN or infinite in every epoch "
                f"(1-{s['epoch']}); no final.pt written. Lower lr or check the dev features"
            )
        best = s["history"][s["best_epoch"] - 1]
        best_path = self.exp_dir / f"epoch-{s['best_epoch']}.pt"
        best_payload = load_checkpoint(best_path)
        if not all(torch.isfinite(w).all() for w in best_payload["state_dict"].values()):
            # never a package that transcribes nothing but NaN, whatever the dev loss said
            raise TrainingError(f"{best_path}: NaN or infinite weights; no final.pt written")
        extra = {
            "train_config": self.train_config_dict(),
            "unit": self.cfg.unit,
            "epoch": s["best_epoch"],
            "dev_loss": best["dev_loss"],
            "dev_ter": best["dev_ter"],
            **self.init_extra(),
        }
        final_path = self.exp_dir / FINAL

        def write_final() -> None:
            with _writing(final_path):
                save_package(self.package(best_payload["state_dict"], extra), final_path)

        self.on_main(write_final)
        summary = TrainSummary(
            best_epoch=s["best_epoch"],
            best_dev_loss=best["dev_loss"],
            best_dev_ter=best["dev_ter"],
            epochs=s["epoch"],
            stop_reason=s["stop_reason"] or "done",
            elapsed=elapsed,
            final_path=final_path,
            history=list(s["history"]),
        )
        s["done"] = "done: " + summary.line()
        self.on_main(self.write_reports)
        logger.info(summary.line())
        return summary


class _CollatedBatches(torch.utils.data.Dataset):
    """Numbered batches collated in DataLoader workers (features read from ark by offset)."""

    def __init__(self, features: FeatureSet, batches: list[tuple[int, list[Example]]]) -> None:
        self.features, self.batches = features, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[int, tuple[torch.Tensor, ...]]:
        number, batch = self.batches[index]
        return number, collate(self.features, batch)


def _train_texts(features: FeatureSet, text_path: Path) -> list[str]:
    from asr.dataset import read_map

    texts = read_map(text_path, allow_empty=True)
    return [texts[u] for u in features.ids if u in texts]


LOCK = ".lock"
# the temp files atomic_write leaves beside our outputs when a run is killed with SIGKILL
_STALE_TEMP = re.compile(
    r"\.(checkpoint\.pt|final\.pt|epoch-\d+\.pt|history\.tsv|train\.log|curves\.png"
    r"|tokens\.txt)\..+\.tmp"
)


def _lock_exp_dir(exp_dir: Path) -> int:
    """Create ``exp_dir`` and take an exclusive flock on ``exp_dir/.lock`` (holding our pid).

    Two runs writing one exp dir at once would leave final.pt of one and epoch-N.pt of the
    other, so a second run stops here with one line naming the holder. flock, not a pid file:
    the kernel drops the lock when its process dies, so a run killed with -9 blocks nothing.
    Returns the descriptor that holds the lock (see _unlock_exp_dir).
    """
    path = exp_dir / LOCK
    try:
        exp_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"{exp_dir}: cannot create the exp dir ({exc.strerror})") from None
    while True:
        with _writing(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if isinstance(exc, BlockingIOError):
                raise TrainingError(
                    f"{exp_dir}: in use by another asr train (pid {holder}); wait for it to "
                    "finish, or use another exp dir"
                ) from None
            raise TrainingError(f"{path}: cannot lock ({exc.strerror})") from None
        # the holder removes the file as it lets go: if it did so between our open and our
        # flock, we hold a lock on a file no one else will open; take the new one instead
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError as exc:
        os.close(fd)
        raise TrainingError(f"{path}: cannot write ({exc.strerror})") from None
    return fd


def _unlock_exp_dir(exp_dir: Path, fd: int) -> None:
    # removed while still held, so that no other run can lock this inode after we let go
    with contextlib.suppress(FileNotFoundError):
        os.unlink(exp_dir / LOCK)
    os.close(fd)


def _save_tokens(tokens: TokenList, path: Path) -> None:
    with _writing(path):
        tokens.save(path)


def _remove_stale_temps(exp_dir: Path) -> None:
    """Remove the temp files a killed run left; called under the lock, so none is in use."""
    for path in sorted(exp_dir.iterdir()):
        if _STALE_TEMP.fullmatch(path.name):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            logger.info("removed %s, left by an interrupted run", path)


def train(
    config: str | os.PathLike | Mapping[str, Any],
    train_dir: str | os.PathLike,
    dev_dir: str | os.PathLike,
    exp_dir: str | os.PathLike,
    resume: bool = False,
    seed: int = 0,
    device: str = "cpu",
    threads: int | None = None,
    progress: bool = True,
    epoch_callback: Callable[[dict[str, float]], None] | None = None,
    overrides: Mapping[str, Any] | None = None,
    init_from: str | os.PathLike | None = None,
) -> TrainSummary:
    """Train a CTC model; see the module docstring for the files written to ``exp_dir``.

    ``resume`` continues from ``exp_dir/checkpoint.pt`` when there is one (and starts fresh when
    there is none); without it an existing checkpoint is an error, so that nothing is overwritten
    by accident. ``threads`` sets torch's CPU threads (default: the cores shared among the
    processes on this machine). ``epoch_callback`` receives each epoch's history record after
    its checkpoint is written. ``overrides`` replace ``training:`` options of the config (the
    command line's ``--precision``, ``--workers``, ``--no-spec-augment``).

    ``init_from`` (or the config's ``training.init_from``; the argument wins) is a model package
    whose weights start a new run, for fine-tuning: same input dimension and architecture,
    any token list (the output rows of shared symbols are copied; see ``init_from_package``).
    A run that resumes from its checkpoint ignores it: resuming never re-initialises.

    Run under ``torchrun`` it trains with DistributedDataParallel; ``device`` "cuda" then means
    each process's ``LOCAL_RANK`` GPU.

    One run at a time per ``exp_dir``: rank 0 holds a lock on ``exp_dir/.lock`` while it runs,
    and a second run stops at once with a TrainingError naming the holder's pid. Under the
    lock, temp files that a killed run left beside the outputs are removed. A write that fails
    (disk full, no permission) is a TrainingError naming the file; the last checkpoint is
    then intact and ``resume`` goes on from it.
    """
    from asr import distributed

    begin = time.monotonic()
    model_section, cfg = load_train_config(config)
    if overrides:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides}, "command line")
    if init_from is not None:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "init_from": str(init_from)}, "init_from")
    world = world_from_env()
    dev = _resolve_device(device)
    if dev.type == "cuda" and world.distributed:
        dev = torch.device("cuda", world.local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // world.local_size))
    if not world.is_main:
        logging.getLogger("asr").setLevel(logging.WARNING)  # one voice: rank 0's
    exp_dir = Path(exp_dir)
    checkpoint = exp_dir / CHECKPOINT
    if checkpoint.exists() and not resume:
        raise ConfigError(
            f"{checkpoint}: exists; pass --resume to continue that run, or use a new exp dir"
        )
    distributed.init(world, dev)
    locks: list[int] = []
    try:
        trainer = _Trainer(
            model_section, cfg, Path(train_dir), Path(dev_dir), exp_dir, seed, dev, progress, world
        )
        # rank 0 writes, so rank 0 locks; the others learn of a refusal from it
        trainer.on_main(lambda: locks.append(_lock_exp_dir(exp_dir)))
        if checkpoint.exists() and not resume:  # again: a run may have written it meanwhile
            raise ConfigError(
                f"{checkpoint}: exists; pass --resume to continue that run, or use a new exp dir"
            )
        if world.is_main:
            _remove_stale_temps(exp_dir)
        if resume and checkpoint.exists():
            trainer.resume(checkpoint)
            if (
                trainer.cfg.max_epochs <= trainer.state["epoch"]
                and not trainer.state["stop_reason"]
            ):
                trainer.state["stop_reason"] = f"max_epochs {trainer.state['epoch']}"
            if cfg.init_from:
                logger.info("resuming: init_from %s not used (resume wins)", cfg.init_from)
        else:
            if resume:
                logger.info("%s: no checkpoint, starting from scratch", checkpoint)
            if cfg.init_from:
                trainer.init_from(cfg.init_from)
        trainer.on_main(lambda: _save_tokens(trainer.tokens, exp_dir / "tokens.txt"))
        trainer.fit(epoch_callback)
        return trainer.finish(time.monotonic() - begin)
    finally:
        if locks:
            _unlock_exp_dir(exp_dir, locks[0])
        distributed.shutdown()
