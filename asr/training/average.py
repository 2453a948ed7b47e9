"""Checkpoint averaging, as ESPnet's ``average_checkpoints`` and Kaldi's ``nnet3-average``.

The weights of several epochs of one training run (``EXP/epoch-N.pt``) are averaged element by
element into one model package, which usually decodes a little better than any single epoch.
Which epochs: ``best`` takes the ``num`` epochs with the lowest ``dev_loss`` (or ``dev_ter``)
in ``EXP/history.tsv`` among those whose ``epoch-N.pt`` exists; ``last`` takes the ``num``
newest epochs that have a file (restricted to the epochs in ``history.tsv`` when there is one,
so that files left behind by an older run in the same directory are not mixed in).

Floating-point tensors are summed in float64 and divided once (no rounding drift whatever the
order), then cast back to their dtype; other tensors (integer buffers such as counters) cannot
be averaged and are taken from the newest chosen epoch, as is the rest of the package (model and
feature config, tokens, CMVN stats, ``extra``). ``extra`` gains ``averaged_epochs``,
``average_select`` and ``average_metric`` so that the file says what it is.

Asking for more epochs than there are files is an error naming how many exist, rather than a
silent average of fewer: the number of epochs averaged is part of the recipe, and a run that
stopped early should be noticed, not papered over. Pass a smaller ``num`` to go on.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from asr.errors import ConfigError, PackageError
from asr.nn.package import ModelPackage, load_package, resource_entry, save_package
from asr.training.history import read_history

SELECTIONS = ("best", "last")
METRICS = ("dev_loss", "dev_ter")
HISTORY = "history.tsv"
_EPOCH_FILE = re.compile(r"epoch-([0-9]+)\.pt")


@dataclass
class AverageReport:
    """What ``average_checkpoints`` did: the epochs averaged (oldest first) and where it wrote."""

    out_path: Path
    epochs: list[int]
    select: str
    metric: str | None  # None for ``last``
    values: dict[int, float]  # the metric of each averaged epoch (``best`` only)

    def line(self) -> str:
        epochs = ", ".join(map(str, self.epochs))
        if self.metric is None:
            how = f"last {len(self.epochs)}"
        else:
            scores = ", ".join(f"{self.values[e]:.4g}" for e in self.epochs)
            how = f"best {len(self.epochs)} by {self.metric}: {scores}"
        return f"averaged epochs {epochs} ({how}) into {self.out_path}"


def average_state_dicts(
    state_dicts: Sequence[Mapping[str, torch.Tensor]], names: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """The element-wise mean of ``state_dicts`` (same keys and shapes); non-float tensors come
    from the last one. ``names`` (one per state dict, e.g. file names) go into error messages."""
    if not state_dicts:
        raise ValueError("average_state_dicts: no state dicts to average")
    names = (
        list(names) if names is not None else [f"state dict {i}" for i in range(len(state_dicts))]
    )
    if len(names) != len(state_dicts):
        raise ValueError("average_state_dicts: need one name per state dict")
    reference, ref_name = state_dicts[-1], names[-1]
    for sd, name in zip(state_dicts, names, strict=True):
        if set(sd) != set(reference):
            only_here = sorted(set(sd) - set(reference))
            only_there = sorted(set(reference) - set(sd))
            detail = ", ".join(
                part
                for part in (
                    f"only in {name}: {' '.join(only_here[:3])}" if only_here else "",
                    f"only in {ref_name}: {' '.join(only_there[:3])}" if only_there else "",
                )
                if part
            )
            raise PackageError(f"{name}: parameters differ from {ref_name} ({detail})")
        for key, tensor in sd.items():
            if tensor.shape != reference[key].shape:
                raise PackageError(
                    f"{name}: {key} has shape {tuple(tensor.shape)} but "
                    f"{tuple(reference[key].shape)} in {ref_name}"
                )
            if tensor.is_floating_point() != reference[key].is_floating_point():
                raise PackageError(f"{name}: {key} has dtype {tensor.dtype}, not as in {ref_name}")
    averaged: dict[str, torch.Tensor] = {}
    count = len(state_dicts)
    for key, last in reference.items():
        if last.is_floating_point():
            total = torch.zeros(last.shape, dtype=torch.float64)
            for sd in state_dicts:
                total += sd[key].detach().to("cpu", torch.float64)
            averaged[key] = (total / count).to(last.dtype)
        else:
            averaged[key] = last.detach().to("cpu").clone()
    return averaged


def _epoch_files(exp_dir: Path) -> dict[int, Path]:
    files = {}
    for path in exp_dir.iterdir():
        match = _EPOCH_FILE.fullmatch(path.name)
        if match and path.is_file():
            files[int(match.group(1))] = path
    return files


def _read_history(path: Path) -> list[dict[str, float]]:
    try:
        rows = read_history(path)
    except FileNotFoundError:
        raise PackageError(f"{path}: not found; is this a training directory?") from None
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        raise PackageError(f"{path}: malformed training history") from None
    if not rows:
        raise PackageError(f"{path}: no epochs in the training history")
    return rows


def choose_epochs(
    exp_dir: str | os.PathLike, num: int, select: str = "best", metric: str = "dev_loss"
) -> tuple[list[int], dict[int, float]]:
    """The epochs to average (oldest first) and, for ``best``, their metric values."""
    exp_dir = Path(exp_dir)
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ConfigError(f"average: the number of epochs must be at least 1, got {num!r}")
    if select not in SELECTIONS:
        raise ConfigError(f"average: select must be one of {', '.join(SELECTIONS)}, got {select!r}")
    if metric not in METRICS:
        raise ConfigError(f"average: metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not exp_dir.is_dir():
        raise PackageError(f"{exp_dir}: not a directory")
    files = _epoch_files(exp_dir)
    history_path = exp_dir / HISTORY
    if select == "last" and not history_path.exists():
        candidates = sorted(files)
        values: dict[int, float] = {}
    else:
        rows = _read_history(history_path)
        if metric not in rows[0]:
            raise PackageError(f"{history_path}: no {metric} column")
        in_history = {int(r["epoch"]): float(r[metric]) for r in rows}
        if select == "last":
            candidates = sorted(e for e in files if e in in_history)
            values = {}
        else:
            # an epoch whose dev metric is NaN cannot be ranked; it is never "best"
            ranked = sorted(
                (value, epoch)
                for epoch, value in in_history.items()
                if epoch in files and math.isfinite(value)
            )
            candidates = sorted(epoch for _, epoch in ranked[:num])
            values = {e: in_history[e] for e in candidates}
    if len(candidates) < num:
        usable = "" if select == "last" else f" with a finite {metric}"
        raise PackageError(
            f"{exp_dir}: asked to average {num} epochs but only {len(candidates)} epoch-N.pt "
            f"file(s){usable} exist; pass a smaller --num"
        )
    chosen = candidates[-num:] if select == "last" else candidates
    return chosen, {e: values[e] for e in chosen if e in values}


def averaged_package(
    exp_dir: str | os.PathLike, num: int = 5, select: str = "best", metric: str = "dev_loss"
) -> tuple[ModelPackage, list[int], dict[int, float]]:
    """The model package whose weights average ``num`` epochs of ``exp_dir`` (chosen as the
    module docstring says), with the epochs (oldest first) and their metric values."""
    exp_dir = Path(exp_dir)
    epochs, values = choose_epochs(exp_dir, num, select, metric)
    paths = [exp_dir / f"epoch-{e}.pt" for e in epochs]
    packages = [load_package(p) for p in paths]
    newest, newest_path = packages[-1], paths[-1]
    for package, path in zip(packages, paths, strict=True):
        # same shapes but another token inventory or architecture is not the same model
        if package.tokens != newest.tokens:
            raise PackageError(f"{path}: tokens differ from {newest_path}; not the same run")
        if package.model_config != newest.model_config:
            raise PackageError(f"{path}: model config differs from {newest_path}")
    state_dict = average_state_dicts([p.state_dict for p in packages], [str(p) for p in paths])
    extra = dict(newest.extra)
    extra.update(
        averaged_epochs=list(epochs),
        average_select=select,
        average_metric=metric if select == "best" else None,
    )
    averaged = ModelPackage(
        state_dict=state_dict,
        model_config=newest.model_config,
        tokens=newest.tokens,
        feature_config=newest.feature_config,
        cmvn_stats=newest.cmvn_stats,
        extra=extra,
    )
    return averaged, list(epochs), values


def average_checkpoints(
    exp_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    num: int = 5,
    select: str = "best",
    metric: str = "dev_loss",
) -> AverageReport:
    """Average ``num`` epochs of ``exp_dir`` into the model package ``out_path`` (atomically);
    see the module docstring for which epochs and what the package holds."""
    averaged, epochs, values = averaged_package(exp_dir, num, select, metric)
    out_path = Path(out_path)
    save_package(averaged, out_path)
    return AverageReport(
        out_path=out_path,
        epochs=list(epochs),
        select=select,
        metric=metric if select == "best" else None,
        values=values,
    )


def package_experiment(
    exp_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    average: int = 1,
    select: str = "best",
    metric: str = "dev_loss",
    lexicon: str | os.PathLike | None = None,
    lm: str | os.PathLike | None = None,
    embed: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> tuple[ModelPackage, list[int]]:
    """Build the deployable package of a training run and write it to ``out_path`` atomically.

    The weights are the element-wise mean of ``average`` epochs of ``exp_dir`` (``epoch-N.pt``)
    chosen as ``asr average`` does (the best by ``metric`` in history.tsv, or the last); the rest
    (model and feature config, tokens, CMVN stats) comes from the newest chosen epoch, as in
    :func:`average_checkpoints`. ``lexicon``/``lm`` are recorded in ``extra`` (see
    :func:`asr.nn.package.resource_entry`). ``metadata`` entries (the decoder settings, results,
    licence and language that ``asr package`` records for the model card) are added to
    ``extra`` as they are. Returns the package and the epochs averaged (oldest first).
    """
    exp_dir = Path(exp_dir)
    resources = {
        name: resource_entry(path, embed)
        for name, path in (("lexicon", lexicon), ("lm", lm))
        if path is not None
    }
    result, epochs, values = averaged_package(exp_dir, average, select, metric)
    result.extra.update(
        average_values={str(e): v for e, v in values.items()},
        packaged_from=str(exp_dir.resolve()),
    )
    result.extra.update(resources)
    result.extra.update(metadata or {})
    save_package(result, out_path)
    return result, epochs
