"""The CTC training loop: batches by frames, LR halving, early stopping, checkpoints and resume.

One epoch = one pass over the training batches (length-sorted, packed to ``batch_frames``, in an
order shuffled from ``(seed, epoch)``), then the dev loss and the dev token error rate (greedy
decoding). Before the first epoch, ``tokens.txt`` and ``config.yaml`` (the config the run
trains with, command-line overrides applied: ``asr train --config EXP_DIR/config.yaml`` repeats
it). After each epoch, in this order: the TensorBoard events of the epoch are flushed
(``tensorboard/``, see :mod:`asr.training.tensorboard`), ``epoch-N.pt`` (the model),
``history.tsv``, ``train.log``, ``curves.png`` and last ``checkpoint.pt``, which holds everything
resuming needs (model, optimizer with its learning rate, gradient scaler, schedule counters, step
count, history) and the data and config it was made with. Every file but the event files is
written atomically, so after a kill ``checkpoint.pt`` is the last point committed and
``--resume`` continues from it exactly as if nothing had happened: the same weights and
``history.tsv`` as an uninterrupted run (TensorBoard drops the steps logged after it). A
checkpoint made with other data dirs or an option that changes the result is refused with one
line (:mod:`asr.training.resume`). ``final.pt`` is the model package of the epoch with the
lowest dev loss.

Mid-epoch checkpoints: with ``save_every_steps`` N (``--save-every-steps``) ``checkpoint.pt`` is
also written every N optimisation steps, and then holds besides the epoch's position (its next
batch in the epoch's batch order), the sums of its train loss so far and every process's random
state. ``--resume`` restarts the epoch's loader at that batch (the batches before it are not
read again, with or without worker processes) and the epoch ends as it would have. One file, not
a second beside it: the newest state is always the one to resume from, a kill between two writes
leaves no pair to choose between, and the disk holds one copy of the optimizer.

Fine-tuning: ``init_from`` (``--init-from``, ``training.init_from``) starts a new run from the
weights of a model package with the same features and architecture but any token list; see
:func:`init_from_package`. Resuming from a checkpoint wins over it.

Randomness is a function of the run's seed alone: the model is initialised from ``seed``, each
epoch reseeds torch from ``(seed, epoch, rank)`` (dropout) and each batch's SpecAugment masks,
VTLP warps and weight noise come from generators seeded by ``(seed, epoch, batch number)``. So a
run resumed after an epoch, whatever the number of processes it resumes with, continues exactly
as an uninterrupted one would; one resumed mid-epoch does so with the same number of processes
(it restores the random state dropout had reached in each; with another number the epoch goes
on at its next batch, but not bit for bit).

Under ``torchrun`` every process builds the same length-bucketed batch list and takes every
``world``-th batch (DistributedDataParallel averages the gradients); only rank 0 writes files.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr import fileio
from asr.decoding.greedy import greedy_decode
from asr.errors import ConfigError, TrainingError
from asr.features.dataset import (
    Example,
    FeatureSet,
    collate,
    make_batches,
)
from asr.features.vtlp import MelAxis
from asr.fileio import fault_point
from asr.nn.model import AcousticModel, ModelConfig, ctc_loss
from asr.nn.package import ModelPackage, load_checkpoint, load_package, save_package
from asr.nn.precision import autocast, precision_name, resolve_precision
from asr.score import wer
from asr.score.align import LEVENSHTEIN_COSTS
from asr.training import distributed, plateau
from asr.training.config import TrainConfig, load_train_config, save_train_config
from asr.training.curves import plot_curves
from asr.training.distributed import World, all_gather_objects, all_sum, world_from_env
from asr.training.expdir import (
    CHECKPOINT,
    FINAL,
    lock_exp_dir,
    remove_stale_temps,
    save_tokens,
    unlock_exp_dir,
    writing,
)
from asr.training.history import format_epoch, write_history, write_log
from asr.training.init_from import init_from_package
from asr.training.resume import (
    EpochPosition,
    check_same_run,
    made_with,
    random_state,
    restore_random_state,
)
from asr.training.setup import (
    initial_state,
    load_training_data,
    make_optimizer,
    wrap_for_processes,
)
from asr.training.step import TrainStep
from asr.training.tensorboard import TENSORBOARD_DIR, TensorBoardLog
from asr.version import __version__

logger = logging.getLogger(__name__)

CONFIG = "config.yaml"  # the resolved training config of the run, in the exp dir


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
        command: str | None = None,
    ) -> None:
        self.cfg, self.exp_dir, self.seed, self.device = cfg, exp_dir, seed, device
        self.world = world
        self.train_dir, self.dev_dir, self.command = train_dir, dev_dir, command
        self.progress = progress and world.is_main
        data = load_training_data(cfg, train_dir, dev_dir)
        self.train_set, self.dev_set, self.tokens = data.train_set, data.dev_set, data.tokens
        self.model_config = ModelConfig.from_dict(
            {
                **model_section,
                "input_dim": self.train_set.feature_dim,
                "num_tokens": len(self.tokens),
            }
        )
        # every process initialises the same weights (DDP would broadcast rank 0's anyway)
        torch.manual_seed(seed)
        self.model = AcousticModel(self.model_config).to(device)
        usable = data.usable(self.model.output_lengths)
        self.train_examples, self.dev_examples = usable.train, usable.dev
        self.dev_loss_ids, self.skipped = usable.dev_loss_ids, usable.skipped
        num_batches = len(self._batches(self.train_examples, None))
        if num_batches < world.size:
            raise ConfigError(
                f"{train_dir}: {num_batches} training batches cannot feed {world.size} "
                "processes; lower batch_frames or use fewer processes"
            )

        self.autocast_dtype = resolve_precision(cfg.precision, device)
        spec = cfg.spec_augment_config()
        self.notes = [
            f"train {train_dir} ({len(self.train_examples)} utts), dev {dev_dir} "
            f"({len(self.dev_examples)} utts); {len(self.tokens)} {cfg.unit} tokens incl. blank; "
            f"{self.model.num_parameters()} parameters; seed {seed}; "
            f"precision {precision_name(self.autocast_dtype)} (asked: {cfg.precision}); "
            f"SpecAugment {'on' if spec is not None else 'off'}; "
            f"weight noise {cfg.weight_noise:g}; VTLP max warp {cfg.vtlp_max_warp:g}; "
            f"gradient of the loss per {cfg.loss_normalization}; "
            f"{world.size} process(es) on {device.type}"
        ]
        self.notes.append(data.cache_note)
        for name, report in self.skipped.items():
            for line in report.lines(name):
                logger.warning(line)
                self.notes.append(line)

        vtlp = None
        if cfg.vtlp_max_warp > 0:
            axis = MelAxis.of(self.train_set.config, str(train_dir / "feats.yaml"))
            vtlp = (axis, cfg.vtlp_max_warp)
        self.optimizer = make_optimizer(cfg, self.model)
        self.step = TrainStep(
            wrap_for_processes(self.model, world, device),
            self.model,
            self.optimizer,
            device,
            grad_clip=cfg.grad_clip,
            autocast_dtype=self.autocast_dtype,
            spec_augment=spec,
            distributed=world.distributed,
            delta_blocks=self.train_set.config.delta_order + 1,
            weight_noise=cfg.weight_noise,
            vtlp=vtlp,
            loss_normalization=cfg.loss_normalization,
        )
        # fill the caches (if any: load_training_data decided) once, now: before workers fork
        # and share them (each epoch's workers would otherwise fill caches that die with them),
        # and so that a cache too large for this machine fails before the first step
        self.train_set.preload()
        self.dev_set.preload()
        self.state: dict[str, Any] = initial_state(seed, self.notes)
        # optimisation steps (TensorBoard's x axis) and skipped batches, over the whole run
        self.state.update(global_step=0, skipped_batches=0)
        self.tensorboard: TensorBoardLog | None = None
        # what the checkpoints record of the data, for a later --resume to check
        self.made_with = made_with(train_dir, dev_dir)
        # where a resumed epoch goes on, when the checkpoint was made mid-epoch
        self.position: EpochPosition | None = None

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

    def provenance(self) -> dict[str, Any]:
        """What a model card says of the run (``asr info``): the data it learnt from, the
        precision it trained in, the asr version and the command that started it."""
        shift = float(self.train_set.config.options.get("frame_shift", 10.0)) / 1000.0
        frames = sum(e.num_frames for e in self.train_examples)
        record: dict[str, Any] = {
            "training_data": {
                "train_dir": str(self.train_dir.resolve()),
                "dev_dir": str(self.dev_dir.resolve()),
                "utterances": len(self.train_examples),
                "hours": round(frames * shift / 3600.0, 4),
            },
            "precision": precision_name(self.autocast_dtype),
            "asr_version": __version__,
        }
        if self.command:
            record["command"] = self.command
        return record

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
            **self.provenance(),
            **self.init_extra(),
        }
        weights = _cpu_state_dict(self.model)
        path = self.exp_dir / f"epoch-{epoch}.pt"
        with writing(path):
            save_package(self.package(weights, extra), path)
        self.write_reports()
        # The checkpoint goes last: it is the commit point of the epoch.
        self._write_checkpoint(weights, extra, self.state)

    def _write_checkpoint(
        self, weights: dict[str, torch.Tensor], extra: dict[str, Any], state: dict[str, Any]
    ) -> None:
        with writing(self.exp_dir / CHECKPOINT):
            save_package(
                self.package(weights, extra),
                self.exp_dir / CHECKPOINT,
                optimizer=self.optimizer.state_dict(),
                train_state=state,
                scaler=self.step.scaler.state_dict(),
                made_with=self.made_with,
            )

    def save_position(self, position: EpochPosition, loss: float, tokens: int) -> None:
        """The mid-epoch checkpoint: ``checkpoint.pt`` as at an epoch's end, its ``train_state``
        holding ``position`` with every process's random state and sums (``loss``, ``tokens``:
        this process's). Called by every process at the same step (a collective)."""
        mine = {"random": random_state(self.device), "loss": loss, "tokens": tokens}
        position.ranks = all_gather_objects(mine)
        state = {**self.state, "position": position.to_dict()}
        extra = {
            "train_config": self.train_config_dict(),
            "epoch": self.state["epoch"],  # complete epochs; the weights are some steps further
            "unit": self.cfg.unit,
            **self.provenance(),
            **self.init_extra(),
        }

        def write() -> None:
            if self.tensorboard is not None:
                self.tensorboard.flush()  # the steps this checkpoint covers, on disk first
            self._write_checkpoint(_cpu_state_dict(self.model), extra, state)

        self.on_main(write)

    def write_reports(self) -> None:
        history = self.state["history"]
        with writing(self.exp_dir / "history.tsv"):
            write_history(self.exp_dir / "history.tsv", history)
        done = self.state.get("done", "")
        with writing(self.exp_dir / "train.log"):
            write_log(self.exp_dir / "train.log", self.state["notes"], history, done)
        if history:
            with writing(self.exp_dir / "curves.png"):
                plot_curves(history, self.exp_dir / "curves.png")

    def init_from(self, path: str) -> None:
        """Start from the weights of the model package at ``path`` (see init_from_package)."""

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
        if "optimizer" not in payload or "train_state" not in payload:
            raise ConfigError(f"{path}: a model package, not a training checkpoint")
        dirs = {"train": self.train_dir, "dev": self.dev_dir}
        check_same_run(path, payload, self.made_with, dirs, self.train_config_dict())
        if payload.get("model_config") != self.model_config.to_dict():
            raise ConfigError(
                f"{path}: model config differs from the one in the config file "
                "(or the data's feature dim / token count changed); use a new exp dir"
            )
        if payload.get("tokens") != self.tokens.symbols:
            raise ConfigError(f"{path}: token list differs from the one built from the data")
        self.model.load_state_dict(payload["state_dict"])
        self.optimizer.load_state_dict(payload["optimizer"])
        if payload.get("scaler"):
            self.step.scaler.load_state_dict(payload["scaler"])
        self.state = payload["train_state"]
        position = self.state.pop("position", None)  # a mid-epoch checkpoint's
        self.position = EpochPosition.from_dict(position) if position is not None else None
        # a checkpoint from before the step count was kept starts counting here
        self.state.setdefault("global_step", 0)
        self.state.setdefault("skipped_batches", 0)
        if self.state["seed"] != self.seed:
            # the batch order of the remaining epochs derives from the run's seed: keep it
            logger.warning("%s: keeping the run's seed %d", path, self.state["seed"])
            self.seed = self.state["seed"]
        where = f"after epoch {self.state['epoch']}"
        p = self.position
        if p is not None:
            where = f"in epoch {p.epoch} after {p.next_batch} of its {p.batches} batches"
            if p.world_size != self.world.size:
                # the batches are shared out anew and no process has another's random stream
                logger.warning(
                    "%s: made mid-epoch with %d process(es), resumed with %d: epoch %d goes on "
                    "at its next batch, but not bit for bit as an uninterrupted run would",
                    path, p.world_size, self.world.size, p.epoch,
                )  # fmt: skip
        self.state["notes"].append(f"resumed {where} with {self.world.size} process(es)")
        self.state["done"] = ""
        reason = self.state["stop_reason"].split(";")[0]
        if reason == f"max_epochs {self.state['epoch']}" and (
            self.state["epoch"] < self.cfg.max_epochs
        ):
            self.state["stop_reason"] = ""  # max_epochs was raised: carry on
        logger.info("resuming %s %s", self.exp_dir, where)

    def write_config(self, comments: Sequence[str]) -> None:
        """``config.yaml``: the config this run trains with (see save_train_config)."""
        path = self.exp_dir / CONFIG
        fileio.remove_stale_temps(path)  # left by a run killed while writing it
        with writing(path):
            save_train_config(path, self.model_config.to_dict(), self.cfg, comments)

    def open_tensorboard(self) -> None:
        """Start the TensorBoard writer (rank 0, when ``training.tensorboard`` is on)."""
        if self.world.is_main and self.cfg.tensorboard:
            log_dir = self.exp_dir / TENSORBOARD_DIR
            self.tensorboard = TensorBoardLog(log_dir, self.state["global_step"])

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None

    # --- the loop ----------------------------------------------------------------------------

    def _batches(
        self, examples: Sequence[Example], shuffle_seed: int | None
    ) -> list[list[Example]]:
        by_id = {e.utt_id: e for e in examples}
        lengths = {e.utt_id: e.num_frames for e in examples}
        groups = make_batches(lengths, self.cfg.batch_frames, self.cfg.max_batch_utts, shuffle_seed)
        return [[by_id[u] for u in group] for group in groups]

    def _my_batches(
        self, batches: list[list[Example]], even: bool, start: int = 0
    ) -> list[tuple[int, Any]]:
        """This process's share of ``batches`` from number ``start`` on, as (global number,
        batch): every world-th one. A resumed epoch starts at its checkpoint's next batch, so
        the batches before it are never read.

        With ``even`` the tail that cannot be shared equally is left out (this epoch only: the
        order is reshuffled each epoch), since every DDP step needs every process.
        """
        world = self.world
        numbered = list(enumerate(batches))[start:]
        if even:
            numbered = numbered[: len(numbered) - len(numbered) % world.size]
        return numbered[world.rank :: world.size]

    def _loader(self, features: FeatureSet, batches: list[tuple[int, list[Example]]]) -> Any:
        """Collated batches, loaded by worker processes when ``num_workers`` > 0."""
        return batch_loader(features, batches, self.cfg.num_workers, self.device.type == "cuda")

    def run_epoch(self, epoch: int, began: float) -> float:
        """Train one epoch and return its train loss per token. ``began`` is when the epoch
        started (``time.monotonic``), for the elapsed time a mid-epoch checkpoint records.

        After a resume from a mid-epoch checkpoint the epoch starts at the checkpoint's next
        batch, with its sums and random state: the batches before it are not even loaded.
        """
        self.model.train()
        torch.manual_seed(epoch_seed(self.seed, epoch, self.world.rank))
        # The order is the same in every process; each takes its share of it. SortaGrad's
        # epochs (counted from the last plateau restart) go shortest first, unshuffled.
        sorted_epoch = epoch - self.state.get("restart_epoch", 0) <= self.cfg.sortagrad_epochs
        shuffle_seed = None if sorted_epoch else self.seed * 1_000_003 + epoch
        batches = self._batches(self.train_examples, shuffle_seed)
        start, total_loss, total_tokens, skipped = 0, 0.0, 0, 0
        resumed, self.position = self.position, None
        if resumed is not None and resumed.epoch == epoch:
            start, skipped = resumed.next_batch, resumed.skipped
            total_loss, total_tokens, rng = resumed.start(self.world.rank, self.world.size)
            if rng is not None:
                restore_random_state(rng, self.device)  # dropout goes on where it stopped
        mine = self._my_batches(batches, even=True, start=start)
        done = start // self.world.size
        bar = tqdm(
            total=done + len(mine),
            initial=done,
            desc=f"epoch {epoch}",
            unit="batch",
            disable=not self.progress,
        )
        loader = self._loader(self.train_set, mine)
        for index, (number, (feats, lengths, targets, target_lengths)) in enumerate(loader, 1):
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
                self.state["skipped_batches"] += 1
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
            self.state["global_step"] += 1
            if self.tensorboard is not None:
                self.tensorboard.step(
                    self.state["global_step"],
                    result.loss / max(result.tokens, 1),
                    float(self.optimizer.param_groups[0]["lr"]),
                    math.nan if result.grad_norm is None else result.grad_norm,
                    self.state["skipped_batches"],
                )
            total_loss += result.loss
            total_tokens += result.tokens
            bar.set_postfix(loss=f"{total_loss / max(total_tokens, 1):.3f}")
            every = self.cfg.save_every_steps
            if every and self.state["global_step"] % every == 0:
                position = EpochPosition(
                    epoch=epoch,
                    # every process has trained its index-th batch: all numbers below are done
                    next_batch=start + index * self.world.size,
                    batches=len(batches),
                    world_size=self.world.size,
                    skipped=skipped,
                    elapsed=time.monotonic() - began,
                )
                self.save_position(position, total_loss, total_tokens)
        bar.close()
        if skipped:
            note = f"epoch {epoch}: {skipped} batch(es) with a non-finite loss or gradient skipped"
            self.state["notes"].append(note)

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
            if self.position is not None and self.position.epoch == epoch:
                start -= self.position.elapsed  # the part trained before the checkpoint
            lr = float(self.optimizer.param_groups[0]["lr"])
            train_loss = self.run_epoch(epoch, start)
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
            if self.tensorboard is not None:
                self.tensorboard.epoch(s["global_step"], record)
            self.save_epoch()
            if epoch_callback is not None:
                epoch_callback(record)

    def check_plateau(self) -> None:
        """Restart from new weights when the run is stuck on the CTC plateau (asr.training.plateau).

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
            **self.provenance(),
            **self.init_extra(),
        }
        final_path = self.exp_dir / FINAL

        def write_final() -> None:
            with writing(final_path):
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


def batch_loader(
    features: FeatureSet,
    batches: list[tuple[int, list[Example]]],
    num_workers: int,
    pin_memory: bool = False,
) -> Iterable[tuple[int, tuple[torch.Tensor, ...]]]:
    """The numbered batches (number, collated tensors) of an epoch, as the trainer reads them:
    in this process, or in ``num_workers`` DataLoader processes (bench_train_rss times it)."""
    if num_workers == 0:
        return ((n, collate(features, batch)) for n, batch in batches)

    return DataLoader(
        _CollatedBatches(features, batches),
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
        # its own generator: drawing the workers' seed from the global one would shift
        # every dropout mask, and the result would depend on the number of workers
        generator=torch.Generator().manual_seed(0),
    )


class _CollatedBatches(torch.utils.data.Dataset):
    """Numbered batches collated in DataLoader workers (features read from ark by offset)."""

    def __init__(self, features: FeatureSet, batches: list[tuple[int, list[Example]]]) -> None:
        self.features, self.batches = features, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[int, tuple[torch.Tensor, ...]]:
        number, batch = self.batches[index]
        return number, collate(self.features, batch)


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
    command: str | None = None,
    config_overrides: Sequence[str] = (),
) -> TrainSummary:
    """Train a CTC model; see the module docstring for the files written to ``exp_dir``.

    ``resume`` continues from ``exp_dir/checkpoint.pt`` when there is one (and starts fresh when
    there is none), mid-epoch too; without it an existing checkpoint is an error, so that nothing
    is overwritten by accident. A checkpoint made with other data dirs or another config is a
    ConfigError naming what differs (see :mod:`asr.training.resume`). ``threads`` sets torch's
    CPU threads (default: the cores shared among the processes on this machine).
    ``epoch_callback`` receives each epoch's history record after its checkpoint is written.
    ``config_overrides`` are ``dotted.key=value`` strings that set any key of the config
    (``training.lr=0.0005``, ``model.hidden_size=320``; see :func:`asr.config.apply_overrides`);
    a bad one is refused like a bad key in the file. ``overrides`` then replace ``training:``
    options (the command line's ``--precision``, ``--workers``, ``--save-every-steps``,
    ``--no-spec-augment``, ``--no-tensorboard``). The config the run trains with, all of it
    applied, is written to ``exp_dir/config.yaml`` and ``train.log`` names the overrides.

    ``init_from`` (or the config's ``training.init_from``; the argument wins) is a model package
    whose weights start a new run, for fine-tuning: same input dimension and architecture,
    any token list (the output rows of shared symbols are copied; see ``init_from_package``).
    A run that resumes from its checkpoint ignores it: resuming never re-initialises.

    ``command`` (the command line that started the run) is recorded in the packages, with the
    training data, precision and asr version, for ``asr info``.

    Run under ``torchrun`` it trains with DistributedDataParallel; ``device`` "cuda" then means
    each process's ``LOCAL_RANK`` GPU.

    One run at a time per ``exp_dir``: rank 0 holds a lock on ``exp_dir/.lock`` while it runs,
    and a second run stops at once with a TrainingError naming the holder's pid. Under the
    lock, temp files that a killed run left beside the outputs are removed. A write that fails
    (disk full, no permission) is a TrainingError naming the file; the last checkpoint is
    then intact and ``resume`` goes on from it.
    """

    begin = time.monotonic()
    model_section, cfg = load_train_config(config, config_overrides)
    if overrides:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides}, "command line")
    config_note = _config_note(config, config_overrides, overrides or {})
    if init_from is not None:
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "init_from": str(init_from)}, "init_from")
    world = world_from_env()
    dev = _resolve_device(device)
    if dev.type == "cuda" and world.distributed:
        dev = torch.device("cuda", world.local_rank)
    elif dev.type == "cuda" and dev.index is None:
        # set_device refuses a bare "cuda" (no index): "cuda" means the current device
        dev = torch.device("cuda", torch.cuda.current_device())
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
    trainer: _Trainer | None = None
    try:
        trainer = _Trainer(
            model_section,
            cfg,
            Path(train_dir),
            Path(dev_dir),
            exp_dir,
            seed,
            dev,
            progress,
            world,
            command,
        )
        # rank 0 writes, so rank 0 locks; the others learn of a refusal from it
        trainer.on_main(lambda: locks.append(lock_exp_dir(exp_dir)))
        if checkpoint.exists() and not resume:  # again: a run may have written it meanwhile
            raise ConfigError(
                f"{checkpoint}: exists; pass --resume to continue that run, or use a new exp dir"
            )
        if world.is_main:
            remove_stale_temps(exp_dir)
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
        trainer.state["notes"].append(config_note)
        trainer.on_main(lambda: save_tokens(trainer.tokens, exp_dir / "tokens.txt"))
        repeat = f"asr train --config {CONFIG} repeats it (with --seed {trainer.seed})"
        trainer.on_main(lambda: trainer.write_config([config_note, repeat]))
        trainer.on_main(trainer.open_tensorboard)
        trainer.fit(epoch_callback)
        summary = trainer.finish(time.monotonic() - begin)
        # every process leaves together, and only after a run that ended well (a collective on
        # the error path could wait forever): a rank that tore gloo down while rank 0 was still
        # writing the final model once aborted ("terminate called without an active
        # exception", SIGABRT), and torchrun failed a complete run
        distributed.barrier()
        return summary
    finally:
        if trainer is not None:
            trainer.close()  # flushes the TensorBoard events of an interrupted run too
        if locks:
            unlock_exp_dir(exp_dir, locks[0])
        distributed.shutdown()


def _config_note(
    config: str | os.PathLike | Mapping[str, Any],
    config_overrides: Sequence[str],
    flags: Mapping[str, Any],
) -> str:
    """The train.log line naming the config, its command-line overrides and config.yaml."""
    note = "config " + ("given as a mapping" if isinstance(config, Mapping) else str(config))
    if config_overrides:
        note += f" with command-line overrides {shlex.join(config_overrides)}"
    if flags:
        note += "; from flags: " + " ".join(f"training.{k}={_yaml(v)}" for k, v in flags.items())
    return f"{note}; the resolved config is {CONFIG}"


def _yaml(value: Any) -> str:
    """A flag's value as a dotted override would spell it (None -> null, False -> false)."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)
