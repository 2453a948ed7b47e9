"""Load a model package (safely: ``weights_only``) into an eval-mode network."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

import torch

from asr.errors import AsrError
from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.package import ModelPackage, load_package
from asr.units.tokens import UNITS, TokenList, infer_unit

log = logging.getLogger(__name__)


@dataclass
class LoadedNetwork:
    """A package made ready to run: the network in eval mode and its token list."""

    package: ModelPackage
    model: AcousticModel
    tokens: TokenList
    device: torch.device


def load_network(path: str | os.PathLike, device: str = "cpu") -> LoadedNetwork:
    """Load a model package (safely: weights_only) into an eval-mode network on ``device``."""
    package = load_package(path)
    config = ModelConfig.from_dict(package.model_config, source=str(path))
    if torch.device(device).type == "cpu" and config.rnn_impl != "per_direction":
        # the same weights run either way; on a CPU the packed call is about 3x slower
        # (docs/benchmarks.md), so a package trained packed on a GPU runs per direction here
        config = replace(config, rnn_impl="per_direction")
    model = AcousticModel(config)
    try:
        model.load_state_dict(package.state_dict)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise AsrError(f"{path}: weights do not match the model config ({first})") from None
    torch_device = torch.device(device)
    model.to(torch_device).eval()
    # the package's own unit: a phone model's tokens alone would pass for words
    unit = package.extra.get("unit") if isinstance(package.extra, dict) else None
    if unit not in UNITS:
        unit = infer_unit(package.tokens)
    tokens = TokenList(package.tokens, unit=unit)
    return LoadedNetwork(package, model, tokens, torch_device)
