"""Fine-tuning: initialise a new network from a model package with another token list."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from asr.errors import ConfigError
from asr.nn.package import ModelPackage

logger = logging.getLogger(__name__)


# ModelConfig fields that may differ between an --init-from package and the new run: the token
# count (the output layer is mapped by symbol), dropout (not part of the weights), rnn_impl
# (both ways of running a bidirectional layer share one state dict: asr.nn.model) and
# init_uniform (how fresh weights are drawn: the package's replace them)
_INIT_FREE_FIELDS = ("num_tokens", "dropout", "rnn_impl", "init_uniform")


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
