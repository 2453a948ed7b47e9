"""The model package: one file with everything needed to turn audio into text.

A package is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(weights_only=True)``: nothing in it is executed. Checkpoints written during training
use the same format with optimizer state added.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from asr.errors import PackageError
from asr.fileio import atomic_write, remove_stale_temps
from asr.nn.model import ModelConfig

PACKAGE_FORMAT = "asr-model"
# The format version this asr writes, and the oldest it still reads. Bump PACKAGE_VERSION when
# a reader of the old version would misread a new file; raise OLDEST_READABLE_VERSION only when
# the old files can no longer be read (version 1 files are what exists: keep reading them).
PACKAGE_VERSION = 1
OLDEST_READABLE_VERSION = 1


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
    # serialised in memory first: torch.save turns a failed write (disk full, EFBIG) into an
    # opaque RuntimeError, a plain write raises the OSError that callers report as one line
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    remove_stale_temps(path)  # what a killed earlier write of this file left
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getbuffer())


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
    check_version(payload.get("version"), path)
    return payload


def check_version(version: Any, path: str | os.PathLike) -> None:
    """Raise a one-line PackageError unless this asr reads package format ``version``."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise PackageError(f"{path}: not an asr model package (format version {version!r})")
    if version > PACKAGE_VERSION:
        raise PackageError(
            f"{path}: was written by a newer asr (format version {version} > "
            f"{PACKAGE_VERSION}); upgrade asr"
        )
    if version < OLDEST_READABLE_VERSION:
        raise PackageError(
            f"{path}: was written by an older asr in format version {version}, which this asr "
            f"no longer reads (oldest {OLDEST_READABLE_VERSION}); re-package it with `asr package`"
        )


# what every package must hold, and the type each must have (cmvn_stats and extra are optional)
REQUIRED_KEYS = {
    "state_dict": dict,
    "model_config": dict,
    "tokens": list,
    "feature_config": dict,
}


def load_package(path: str | os.PathLike) -> ModelPackage:
    """Load a model package written by ``save_package``, checked (see ``check_package``)."""
    payload = load_checkpoint(path)
    check_package(payload, path)
    return ModelPackage(
        state_dict=payload["state_dict"],
        model_config=payload["model_config"],
        tokens=payload["tokens"],
        feature_config=payload["feature_config"],
        cmvn_stats=payload.get("cmvn_stats"),
        extra=payload.get("extra") or {},
    )


def check_package(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """One-line PackageError naming ``path`` unless ``payload`` is a usable package: every
    required key present with its type, tokens all strings, a valid model config (ConfigError)
    with one output per token, weights all tensors, and every
    floating-point weight and the CMVN statistics finite (a NaN network decodes every input
    to nothing, silently)."""
    for key, kind in REQUIRED_KEYS.items():
        if key not in payload:
            raise PackageError(f"{path}: the package has no '{key}'; not a complete asr model")
        if not isinstance(payload[key], kind):
            raise PackageError(
                f"{path}: '{key}' is a {type(payload[key]).__name__}, expected a {kind.__name__}"
            )
    if not all(isinstance(t, str) for t in payload["tokens"]):
        raise PackageError(f"{path}: 'tokens' holds something other than strings")
    # a ConfigError naming the file for a bad value, here where every reader passes
    config = ModelConfig.from_dict(payload["model_config"], source=str(path))
    if len(payload["tokens"]) != config.num_tokens:
        # a token list longer than the network's outputs would never be emitted, a shorter one
        # would be indexed past its end: either way the tokens are not this network's
        raise PackageError(
            f"{path}: {len(payload['tokens'])} tokens, but the network has {config.num_tokens} "
            "outputs"
        )
    extra = payload.get("extra")
    if extra is not None and not isinstance(extra, dict):
        raise PackageError(f"{path}: 'extra' is a {type(extra).__name__}, expected a dict")
    for name, tensor in payload["state_dict"].items():
        if not isinstance(tensor, torch.Tensor):
            raise PackageError(f"{path}: weight {name} is not a tensor")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise PackageError(f"{path}: weight {name} holds NaN or infinite values")
    stats = payload.get("cmvn_stats")
    if stats is not None and (
        not isinstance(stats, torch.Tensor) or not bool(torch.isfinite(stats).all())
    ):
        raise PackageError(f"{path}: the CMVN statistics are not a finite tensor")


# extra keys that `asr package` fills with a file given on its command line
RESOURCES = ("lexicon", "lm")


def resource_entry(path: str | os.PathLike, embed: bool) -> dict[str, Any]:
    """The ``extra`` entry for a lexicon or LM file: its absolute path, size and SHA-256, and
    with ``embed`` its bytes (``data``), so that the package works where the file is not."""

    path = Path(path)
    if not path.is_file():
        raise PackageError(f"{path}: file not found")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PackageError(f"{path}: cannot read ({exc.strerror})") from None
    entry: dict[str, Any] = {
        "path": str(path.resolve()),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if embed:
        entry["data"] = data
    return entry


# How a user gets past a package whose lexicon or LM cannot be used (asr transcribe's --no-lm,
# the Python API's use_lm=False): greedy or beam decoding needs neither.
NO_LM_HINT = "decode without lexicon and LM: --no-lm (use_lm=False)"


def _resource_problem(path: Path, name: str, problem: str) -> PackageError:
    return PackageError(f"{path}: the model's {name} file {problem}; {NO_LM_HINT}")


def read_resource(package: ModelPackage, name: str) -> bytes | None:
    """The bytes of the package's lexicon or LM (``name`` in RESOURCES): embedded ones, else the
    stored path's file, which must still have the recorded SHA-256; None when there is none."""

    entry = package.extra.get(name)
    if entry is None:
        return None
    if entry.get("data") is not None:
        return bytes(entry["data"])
    path = Path(entry["path"])
    try:
        data = path.read_bytes()
    except OSError:
        raise _resource_problem(path, name, "is missing (or re-package with --embed)") from None
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise _resource_problem(path, name, "changed since it was packaged")
    return data


@contextlib.contextmanager
def resource_file(package: ModelPackage, name: str) -> Iterator[Path | None]:
    """A path to the package's lexicon or LM for readers that need a file (KenLM): the recorded
    file itself, its SHA-256 checked in 1 MiB blocks (an LM may be gigabytes), or a temporary
    copy of an embedded one, removed on exit. None when the package has no such resource."""
    entry = package.extra.get(name)
    if entry is None:
        yield None
        return
    if entry.get("data") is None:
        path = Path(entry["path"])
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
        except OSError:
            raise _resource_problem(path, name, "is missing (or re-package with --embed)") from None
        if digest.hexdigest() != entry.get("sha256"):
            raise _resource_problem(path, name, "changed since it was packaged")
        yield path
        return
    # the original name's suffix: readers tell ARPA from binary by content, people by name
    suffix = Path(str(entry.get("path", ""))).suffix
    fd, tmp = tempfile.mkstemp(prefix=f"asr-{name}-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(bytes(entry["data"]))
        yield Path(tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
