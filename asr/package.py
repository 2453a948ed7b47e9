"""The model package: one file with everything needed to turn audio into text.

A package is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(weights_only=True)``: nothing in it is executed. Checkpoints written during training
use the same format with optimizer state added.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from asr.errors import PackageError
from asr.fileio import atomic_write

PACKAGE_FORMAT = "asr-model"
PACKAGE_VERSION = 1


@dataclass
class ModelPackage:
    """What a trained model needs at inference time.

    ``model_config`` is ``ModelConfig.to_dict()``; ``feature_config`` is the feature config dict
    (extraction options, deltas, CMVN mode); ``cmvn_stats`` are Kaldi-format global stats
    (a 2 x (dim + 1) tensor) or None; ``extra`` holds anything a later stage adds (lexicon, LM).
    """

    state_dict: dict[str, torch.Tensor]
    model_config: dict[str, Any]
    tokens: list[str]
    feature_config: dict[str, Any]
    cmvn_stats: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PACKAGE_FORMAT,
            "version": PACKAGE_VERSION,
            "state_dict": self.state_dict,
            "model_config": self.model_config,
            "tokens": list(self.tokens),
            "feature_config": self.feature_config,
            "cmvn_stats": self.cmvn_stats,
            "extra": self.extra,
        }


def save_package(package: ModelPackage, path: str | os.PathLike, **additional: Any) -> None:
    """Write ``package`` atomically; ``additional`` keys (optimizer state, epoch) ride along."""
    payload = package.to_dict()
    payload.update(additional)
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a package or checkpoint as a dict, safely, checking its format and version."""
    path = Path(path)
    if not path.is_file():
        raise PackageError(f"{path}: model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or unsafe file
        raise PackageError(
            f"{path}: not a loadable model file ({exc.__class__.__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != PACKAGE_FORMAT:
        raise PackageError(f"{path}: not an asr model package")
    version = payload.get("version")
    if version != PACKAGE_VERSION:
        raise PackageError(
            f"{path}: package version {version} is not supported by this asr "
            f"(expects version {PACKAGE_VERSION}); re-export it with a matching asr release"
        )
    return payload


def load_package(path: str | os.PathLike) -> ModelPackage:
    """Load a model package written by ``save_package``."""
    payload = load_checkpoint(path)
    return ModelPackage(
        state_dict=payload["state_dict"],
        model_config=payload["model_config"],
        tokens=payload["tokens"],
        feature_config=payload["feature_config"],
        cmvn_stats=payload.get("cmvn_stats"),
        extra=payload.get("extra", {}),
    )
