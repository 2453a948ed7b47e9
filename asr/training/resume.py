"""What ``--resume`` needs besides weights, optimizer and schedule: that the checkpoint belongs
to this run, and where in an epoch it was made.

**The run a checkpoint belongs to.** Each checkpoint records the data it was made with
(``made_with``: the resolved train and dev dirs and digests of the small files that define
each) next to its config (the package's ``extra["train_config"]``). A resume with other data,
or with an option that changes what training computes, is refused with one line naming what
differs: its epochs would continue another experiment's under the same exp dir. Options in
:data:`MAY_CHANGE` may differ. A checkpoint from before ``made_with`` existed still resumes,
with a warning that its data could not be checked.

**Where in an epoch.** A mid-epoch checkpoint (``training.save_every_steps``) holds an
:class:`EpochPosition` in its ``train_state``: the next batch in the epoch's batch order, the
epoch's partial train-loss sums and the global random state of every process. That state is
all the rest of the epoch draws from: dropout uses torch's global generator (on the CPU, and
the device's on a GPU); SpecAugment, VTLP and weight noise use generators seeded per batch from
``(seed, epoch, batch number)`` and the batch order one seeded from ``(seed, epoch)``, so they
need no saving; nothing in the loop draws from Python's or NumPy's global generators.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from asr.errors import ConfigError
from asr.fileio import read_bytes
from asr.nn.spec_augment import SpecAugmentConfig

logger = logging.getLogger(__name__)

# The files of a data dir that training reads (besides the arks feats.scp points into): their
# digests stand for the data. The arks are not read, which could take minutes; features
# extracted anew almost always move the offsets in feats.scp, and a new config changes feats.yaml.
DATA_FILES = ("feats.scp", "feats.yaml", "text", "utt2spk", "cmvn.scp")

# Training options a resumed run may change. They decide only when the run stops or how
# patiently its schedule waits (max_epochs, the patiences, max_nonfinite_batches) or how it runs
# (save_every_steps, num_workers, cache_features, cache_limit_mb, tensorboard); init_from is
# ignored by a resume. Any other option changes what the steps compute.
MAY_CHANGE = frozenset(
    {
        "max_epochs",
        "early_stopping_patience",
        "lr_halving_patience",
        "plateau_patience",
        "max_nonfinite_batches",
        "save_every_steps",
        "num_workers",
        "cache_features",
        "cache_limit_mb",
        "tensorboard",
        "init_from",
    }
)
# model options taken from the data: a change there is a change of data, reported as such
_FROM_DATA = frozenset({"input_dim", "num_tokens"})
_DIR_FLAGS = {"train": "--train-dir", "dev": "--dev-dir"}


def data_digests(data_dir: Path) -> dict[str, str]:
    """The SHA-256 of each of the :data:`DATA_FILES` that ``data_dir`` holds, by name."""
    return {
        name: hashlib.sha256(read_bytes(data_dir / name)).hexdigest()
        for name in DATA_FILES
        if (data_dir / name).is_file()
    }


def made_with(train_dir: Path, dev_dir: Path) -> dict[str, Any]:
    """The data a run trains on, as its checkpoints record it (``made_with``)."""
    return {
        "train_dir": str(train_dir.resolve()),
        "train_files": data_digests(train_dir),
        "dev_dir": str(dev_dir.resolve()),
        "dev_files": data_digests(dev_dir),
    }


def check_same_run(
    path: Path,
    payload: Mapping[str, Any],
    data: Mapping[str, Any],
    dirs: Mapping[str, Path],
    config: Mapping[str, Any],
) -> None:
    """ConfigError (one line, naming ``path``) unless the checkpoint ``payload`` was made with
    the same data (``data``: :func:`made_with` of ``dirs``, the dirs as given) and the same
    config (``config``: ``{"model": ..., "training": ...}``), up to :data:`MAY_CHANGE`."""
    then = payload.get("made_with")
    if not isinstance(then, Mapping):
        logger.warning(
            "%s: made by an older asr that did not record its data dirs; resuming without "
            "checking that --train-dir and --dev-dir are the ones it trained on",
            path,
        )
    else:
        for which, flag in _DIR_FLAGS.items():
            old_dir, new_dir = then.get(f"{which}_dir"), data[f"{which}_dir"]
            old_files, new_files = then.get(f"{which}_files") or {}, data[f"{which}_files"]
            if old_files == new_files:
                if old_dir != new_dir:  # the same files, moved or copied: the same data
                    logger.warning("%s: made with %s %s (the same files)", path, flag, old_dir)
                continue
            if old_dir != new_dir:
                raise ConfigError(
                    f"{path}: made with {flag} {old_dir}, not {dirs[which]}; use a new --exp-dir"
                )
            changed = [n for n in DATA_FILES if old_files.get(n) != new_files.get(n)]
            raise ConfigError(
                f"{path}: made with {flag} {old_dir} as it was then: its {', '.join(changed)} "
                "changed since; use a new --exp-dir"
            )
    recorded = (payload.get("extra") or {}).get("train_config")
    if not isinstance(recorded, Mapping):
        logger.warning("%s: records no config; resuming without comparing it", path)
        return
    changes = config_changes(recorded, config)
    if changes:
        was = ", ".join(f"{key}={_show(old)}" for key, old, _ in changes)
        now = ", ".join(_show(new) for _, _, new in changes)
        them = "it" if len(changes) == 1 else "them"
        raise ConfigError(
            f"{path}: made with {was}, not {now}; set {them} back or use a new --exp-dir"
        )


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for each option that differs, in ``new``'s order.

    Only keys both configs hold are compared: a checkpoint from an older asr lacks the options
    added since, and ran as their defaults do.
    """
    changes = []
    for section in ("model", "training"):
        before, after = old.get(section) or {}, new.get(section) or {}
        for key, value in after.items():
            if (
                key not in before
                or key in _FROM_DATA
                or (section == "training" and key in MAY_CHANGE)
            ):
                continue
            if not _same_option(key, before[key], value):
                changes.append((f"{section}.{key}", before[key], value))
    return changes


def _same_option(key: str, a: Any, b: Any) -> bool:
    if key == "spec_augment" and a is not None and b is not None:
        # the options as given; {freq_masks: 2} and the same with the defaults spelled out agree
        return SpecAugmentConfig.from_dict(dict(a)) == SpecAugmentConfig.from_dict(dict(b))
    return a == b


def _show(value: Any) -> str:
    """A value as a ``key=value`` override would spell it."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def random_state(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's global random state: torch's CPU generator and, on a GPU, the device's."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_random_state(state: Mapping[str, torch.Tensor], device: torch.device) -> None:
    """Set what :func:`random_state` returned (a CUDA state only on a CUDA device)."""
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@dataclass
class EpochPosition:
    """Where in an epoch a mid-epoch checkpoint was made (``train_state["position"]``).

    ``ranks`` holds one entry per process, in rank order: ``random`` (:func:`random_state`),
    ``loss`` and ``tokens`` (its sums over the batches it trained this epoch, summed across
    processes only at the epoch's end, as in a run that was never interrupted).
    """

    epoch: int  # the epoch in progress: the checkpoint's completed epochs + 1
    next_batch: int  # the number, in the epoch's batch order, of the first batch not trained
    batches: int  # the epoch's batches, for the log
    world_size: int
    skipped: int  # batches of the epoch skipped for a non-finite loss or gradient
    elapsed: float  # seconds the epoch had run
    ranks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EpochPosition:
        return cls(**values)

    def start(self, rank: int, world_size: int) -> tuple[float, int, dict[str, Any] | None]:
        """(loss sum, token count, random state) that process ``rank`` of ``world_size``
        continues the epoch with. With another number of processes the batches are shared
        out anew and no process continues another's random stream: rank 0 takes all the sums,
        and the random state is left as the epoch's seed set it (not bit-exact, but whole)."""
        if world_size == self.world_size:
            mine = self.ranks[rank]
            return float(mine["loss"]), int(mine["tokens"]), mine["random"]
        if rank != 0:
            return 0.0, 0, None
        loss = sum(float(r["loss"]) for r in self.ranks)
        return loss, sum(int(r["tokens"]) for r in self.ranks), None
