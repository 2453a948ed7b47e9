"""Export a model package as a deployable network: TorchScript or ONNX.

The exported network maps normalized features to CTC log-posteriors, with lengths:

* inputs ``feats`` (B, T, D) float32 and ``lengths`` (B,) int64, frames of each utterance
  (features already normalized as in training: the package's CMVN mode, and for global CMVN
  the stats stored in the file's metadata);
* outputs ``log_probs`` (B, T', V) float32, blank at index 0, and ``out_lengths`` (B,) int64,
  ``T' = ceil(T / skip)``; frames of an utterance beyond its ``out_lengths`` are undefined.

Batch size and time are dynamic. :class:`ExportableModel` recomputes exactly what
:class:`asr.nn.model.AcousticModel` does (it shares its parameters) with tensor operations only, so
that nothing depends on the example input of the export: every time index is derived from the
input's shape by tensor ops (a cumulative sum of ones, not ``torch.arange(T)`` with a Python int
that a tracer would freeze), the frame stacking is ``stack`` gathers along time, and the
backward direction always reverses each utterance within its own length with a gather (the eager
model's shortcut to a plain flip when every utterance is full length gives the same values).

TorchScript is ``torch.jit.script`` (control flow and shapes are kept as code); ONNX is the
TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) with dynamic axes.
Metadata ride along: ``asr.json`` (tokens, model and feature config, CMVN stats, unit) as a
TorchScript extra file or as ONNX ``metadata_props``.

Every export is checked before it is written: random features of two lengths in one padded batch
and each alone go through the exported network and the eager model, and the largest absolute
difference of the log-probs over valid frames must be within ``tolerance`` (1e-4); otherwise
nothing is written. The file is written atomically.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from asr.errors import AsrError, ConfigError
from asr.fileio import atomic_write, remove_stale_temps
from asr.nn.load import LoadedNetwork, load_network

FORMATS = ("torchscript", "onnx")
METADATA_KEY = "asr.json"
ONNX_OPSET = 17


class ExportError(AsrError):
    """The export failed, or the exported network does not match the eager model."""


class ExportableLayer(nn.Module):
    """:class:`asr.nn.model.RecurrentLayer` with an always-gathering backward direction."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.fwd = layer.fwd
        self.bwd = layer.bwd  # None for a forward-only layer (TorchScript drops the branch)
        self.proj = layer.proj

    def forward(self, x: torch.Tensor, reverse_index: torch.Tensor) -> torch.Tensor:
        out, _ = self.fwd(x)
        if self.bwd is not None:
            index = reverse_index.unsqueeze(2).expand(-1, -1, x.shape[2])
            back, _ = self.bwd(x.gather(0, index))
            index = reverse_index.unsqueeze(2).expand(-1, -1, back.shape[2])
            out = torch.cat([out, back.gather(0, index)], dim=2)
        if self.proj is not None:
            out = self.proj(out)
        return out


class ExportableModel(nn.Module):
    """The computation of an :class:`~asr.nn.model.AcousticModel` in export-friendly operations.

    ``forward(feats (B, T, D), lengths (B,)) -> (log_probs (B, T', V), out_lengths (B,))``; it
    shares the model's parameters (eval mode: dropout is off).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        config = model.config
        self.stack = int(config.stack)
        self.skip = int(config.skip)
        self.input_dim = int(config.input_dim)
        self.layers = nn.ModuleList([ExportableLayer(layer) for layer in model.layers])
        self.output = model.output

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = lengths.to(torch.int64)
        x = feats.transpose(0, 1)  # (T, B, D)
        # 0 .. T-1 and 0 .. B-1 from the input's shape, as tensors (dynamic in a trace)
        time = torch.cumsum(torch.ones_like(x[:, 0, 0], dtype=torch.int64), 0) - 1
        starts = time[:: self.skip]  # (T',): the first input frame of each output frame
        last = (lengths - 1).clamp(min=0)  # (B,)
        parts = []
        for offset in range(self.stack):
            # frame min(j*skip + offset, L_b - 1), as AcousticModel's stack_frames
            index = torch.minimum(starts.unsqueeze(1) + offset, last.unsqueeze(0))  # (T', B)
            parts.append(x.gather(0, index.unsqueeze(2).expand(-1, -1, x.shape[2])))
        x = torch.cat(parts, dim=2) if self.stack > 1 else parts[0]
        out_lengths = torch.div(lengths + (self.skip - 1), self.skip, rounding_mode="floor")
        # within an utterance's length t -> L-1-t, in the padding t -> t (its own inverse)
        out_time = (starts // self.skip).unsqueeze(1)  # (T', 1): 0 .. T'-1
        valid = out_time < out_lengths.unsqueeze(0)
        reverse_index = torch.where(valid, out_lengths.unsqueeze(0) - 1 - out_time, out_time)
        for layer in self.layers:
            x = layer(x, reverse_index)
        log_probs = torch.log_softmax(self.output(x), dim=-1)
        return log_probs.transpose(0, 1), out_lengths


@dataclass
class ExportCheck:
    """One verification input: its lengths, and the largest |exported - eager| log-prob."""

    lengths: list[int]
    max_abs_diff: float


@dataclass
class ExportReport:
    """What ``export_model`` wrote and how closely the export matches the eager model."""

    out_path: Path
    format: str
    checks: list[ExportCheck] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max((c.max_abs_diff for c in self.checks), default=0.0)

    def line(self) -> str:
        shapes = ", ".join("+".join(map(str, c.lengths)) for c in self.checks)
        return (
            f"exported {self.format} to {self.out_path}; max |exported - eager| log-prob "
            f"{self.max_abs_diff:.2e} over inputs of lengths {shapes}"
        )


def _metadata(package: Any) -> dict[str, Any]:
    stats = package.cmvn_stats
    return {
        "tokens": list(package.tokens),
        "model_config": package.model_config,
        "feature_config": package.feature_config,
        "cmvn_stats": stats.tolist() if stats is not None else None,
        "unit": package.extra.get("unit"),
        "inputs": {"feats": "(batch, time, input_dim) float32", "lengths": "(batch,) int64"},
        "outputs": {"log_probs": "(batch, time', num_tokens) float32", "out_lengths": "(batch,)"},
    }


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    # torch 2.13 deprecates torch.jit; it is still the self-contained format that C++ (libtorch)
    # and Python load without our code, so use it without a warning on every call
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*torch\.jit.*deprecated", DeprecationWarning)
        yield


def _to_torchscript(module: ExportableModel, metadata: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with _quiet_jit():
        scripted = torch.jit.script(module)
        torch.jit.save(scripted, buffer, _extra_files={METADATA_KEY: json.dumps(metadata)})
    return buffer.getvalue()


def onnx_available() -> str | None:
    """None when ONNX export and checking can run here, else the reason (for a skip)."""
    for name in ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError as exc:
            return f"{name} does not import ({exc}); pip install 'asr[export]'"
    return None


def _to_onnx(module: ExportableModel, metadata: dict[str, Any], input_dim: int) -> bytes:
    reason = onnx_available()
    if reason:
        raise ExportError(f"cannot export to onnx: {reason}")
    import onnx

    feats = torch.zeros(2, 13, input_dim)
    lengths = torch.tensor([13, 9])
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the TorchScript-based exporter is deprecated in favour of dynamo, which cannot yet
        # express the per-utterance reversal with dynamic shapes as simply; it still works
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (feats, lengths),
            buffer,
            input_names=["feats", "lengths"],
            output_names=["log_probs", "out_lengths"],
            dynamic_axes={
                "feats": {0: "batch", 1: "time"},
                "lengths": {0: "batch"},
                "log_probs": {0: "batch", 1: "out_time"},
                "out_lengths": {0: "batch"},
            },
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    return proto.SerializeToString()


def _runner(fmt: str, data: bytes) -> Any:
    """A function (feats, lengths) -> log_probs, running the exported bytes."""
    if fmt == "torchscript":
        with _quiet_jit():
            loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
        loaded.eval()

        def run(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return loaded(feats, lengths)[0]

        return run
    session = onnx_session(data)
    return lambda feats, lengths: session(feats, lengths)[0]


def onnx_session(
    data: bytes, threads: int | None = None
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """An onnxruntime CPU session of an exported network, as a function (feats, lengths) ->
    (log_probs, out_lengths) on torch tensors; ``threads``: its intra-op threads (None: its
    own default)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # no warnings about unused initializers on stderr
    if threads is not None:
        options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    def run(feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = {
            "feats": feats.detach().float().cpu().numpy(),
            "lengths": lengths.detach().cpu().numpy(),
        }
        log_probs, out_lengths = session.run(None, inputs)
        return torch.from_numpy(log_probs), torch.from_numpy(out_lengths)

    return run


def verify_export(
    eager: nn.Module,
    run: Any,
    input_dim: int,
    lengths: tuple[int, int] = (400, 137),
    seed: int = 0,
) -> list[ExportCheck]:
    """Compare ``run`` (exported) with ``eager`` on random features: two lengths in one padded
    batch, then each alone. Returns the max absolute log-prob difference over valid frames."""
    generator = torch.Generator().manual_seed(seed)
    long, short = max(lengths), min(lengths)
    feats = torch.randn(2, long, input_dim, generator=generator)
    feats[1, short:] = 0.0  # padding, as a batch loader writes it
    cases = [
        (feats, torch.tensor([long, short])),
        (feats[:1].clone(), torch.tensor([long])),
        (feats[1:, :short].clone(), torch.tensor([short])),
    ]
    checks = []
    for batch, batch_lengths in cases:
        with torch.inference_mode():
            expected, out_lengths = eager(batch, batch_lengths)
        got = run(batch, batch_lengths)
        if got.shape != expected.shape:
            raise ExportError(
                f"exported output shape {tuple(got.shape)} != eager {tuple(expected.shape)}"
            )
        diff = 0.0
        for b, n in enumerate(out_lengths.tolist()):
            want, have = expected[b, :n], got[b, :n]
            if not (bool(torch.isfinite(want).all()) and bool(torch.isfinite(have).all())):
                # NaN compares false with everything, so max() would silently skip it and a
                # NaN network would pass as "difference 0": a non-finite output is infinitely off
                diff = math.inf
                break
            diff = max(diff, float((have - want).abs().max()))
        checks.append(ExportCheck(batch_lengths.tolist(), diff))
    return checks


def export_model(
    model_path: str | os.PathLike,
    out_path: str | os.PathLike,
    fmt: str = "torchscript",
    tolerance: float = 1e-4,
) -> ExportReport:
    """Export the package ``model_path`` to ``out_path`` as ``fmt`` (torchscript or onnx),
    verified against the eager model (see the module docstring); raises ExportError when the
    difference exceeds ``tolerance``, and then writes nothing."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    loaded = load_network(model_path)  # refuses a package with NaN or infinite weights
    try:
        data, checks = export_network(loaded, fmt, tolerance, str(model_path))
    except ExportError as exc:
        raise ExportError(f"{exc}; nothing written") from None
    report = ExportReport(Path(out_path), fmt, checks)
    remove_stale_temps(out_path)  # what a killed earlier export of this file left
    with atomic_write(out_path, "wb") as handle:
        handle.write(data)
    return report


def export_network(
    loaded: LoadedNetwork, fmt: str, tolerance: float = 1e-4, source: str = "model"
) -> tuple[bytes, list[ExportCheck]]:
    """The exported bytes of a loaded package's network and the checks they passed (see the
    module docstring); ExportError, naming ``source``, when they differ by more than
    ``tolerance`` from the eager model or the network cannot be expressed in ``fmt``."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    eager = loaded.model.eval()
    config = eager.config
    for name, tensor in eager.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ExportError(f"{source}: weight {name} holds NaN or infinite values")
    if fmt == "onnx" and config.cell == "lstm" and config.projection_size:
        # ONNX's LSTM operator has no recurrent projection, so torch cannot express it
        raise ExportError(
            f"{source}: onnx cannot express an lstm with projection_size "
            f"{config.projection_size} (ONNX's LSTM has no projection); use --format torchscript"
        )
    module = ExportableModel(eager).eval()
    metadata = _metadata(loaded.package)
    input_dim = eager.config.input_dim
    try:
        if fmt == "torchscript":
            data = _to_torchscript(module, metadata)
        else:
            data = _to_onnx(module, metadata, input_dim)
    except ExportError:
        raise
    except Exception as exc:  # torch's exporters raise many types; one line for the CLI
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ExportError(
            f"{source}: {fmt} export failed ({exc.__class__.__name__}: {first})"
        ) from None
    checks = verify_export(eager, _runner(fmt, data), input_dim)
    worst = max(c.max_abs_diff for c in checks)
    if not math.isfinite(worst):
        raise ExportError(
            f"{source}: the {fmt} export or the eager model gives NaN or infinite log-probs"
        )
    if not worst <= tolerance:
        raise ExportError(
            f"{source}: {fmt} export differs from the eager model by {worst:.3g} > {tolerance:g}"
        )
    return data, checks


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``asr.json`` metadata of an exported file (TorchScript or ONNX, by content)."""
    path = Path(path)
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic.startswith(b"PK"):  # TorchScript files are zip archives
        extra = {METADATA_KEY: ""}
        with _quiet_jit():
            torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        return json.loads(extra[METADATA_KEY])
    import onnx

    proto = onnx.load(str(path))
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    raise ExportError(f"{path}: no {METADATA_KEY} metadata; not exported by asr export")
