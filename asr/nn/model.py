"""The acoustic model: frame stacking, a stack of recurrent layers and a linear CTC output.

The network maps features (B, T, D) to CTC log-posteriors (B, T', V) with the blank at index 0:

1. **Frame stacking / subsampling** (EESEN ``--stack``/``--skip``, Sak et al. 2015 "low frame
   rate"): output frame ``j`` of an utterance of length ``L`` is the concatenation of input frames
   ``min(j*skip + i, L - 1)`` for ``i = 0 .. stack-1`` (a window looking *forward*, padded at the
   end of the utterance by repeating its last frame), for ``j = 0 .. ceil(L / skip) - 1``. So
   ``T' = ceil(L / skip)`` and the input dimension of the first layer is ``stack * D``. The
   clamp uses each utterance's own length, never the batch's padding.
2. ``num_layers`` recurrent layers of ``hidden_size`` cells per direction. The cell is ``lstm``
   (default), ``gru`` or ``rnn`` (tanh), and the layers are bidirectional or forward-only.
   ``projection_size > 0`` adds a projection: for ``lstm`` it is the recurrent projection of Sak
   et al. 2014 (``nn.LSTM(proj_size=P)``: the P-dim projected state is both the layer output and
   the recurrent input); ``gru`` and ``rnn`` have no recurrent projection, so each of their
   layers ends with a non-recurrent linear map (no nonlinearity) from ``directions * H`` to
   ``directions * P``. Either way a layer outputs ``directions * P`` values per frame.
   ``dropout`` is applied to the output of every layer but the last, as ``nn.LSTM`` does.
3. A linear layer to ``num_tokens`` outputs and a log-softmax.

**Initialisation.** PyTorch's own (``init_uniform`` 0, the default), or, with ``init_uniform``
set to some a above 0, every parameter of the network (weights and biases) drawn anew from
U[-a, a] once the layers are built, as Graves et al. 2013 did (a = 0.1). Both draw from torch's
global generator, so a model built after ``torch.manual_seed(s)`` is the same every time.

**Exact results for padded batches, without packing.** A bidirectional ``nn.LSTM`` run over a
zero-padded batch starts its backward direction in the padding, so a short utterance's output
would depend on what else is in its batch. ``pack_padded_sequence`` fixes that but was measured
about 6x slower on CPU. Instead each layer runs two unidirectional RNNs on the padded batch: the
forward one on the batch as it is (padding comes after the valid frames, so it cannot reach
them), the backward one on each utterance reversed *within its own length* (a gather with index
``L - 1 - t`` for ``t < L``, ``t`` in the padding), whose outputs are put back in time order with
the same gather (the index is its own inverse). Each utterance's outputs at its valid frames are
thus exactly what it gets alone. On CPU a fused bidirectional ``nn.LSTM`` runs its two directions
one after the other anyway, so the cost is about the same (see ``bench/bench_train_step.py``); on
CUDA each unidirectional ``nn.LSTM`` call runs cuDNN's kernel. Outputs beyond ``out_lengths`` are
undefined and must be ignored (the CTC loss and the decoders do).

**``rnn_impl: packed``** runs each bidirectional layer instead as one fused bidirectional RNN
(``nn.LSTM(bidirectional=True)`` etc.) over ``pack_padded_sequence``: also exact, and on a GPU
one cuDNN call per layer that may run both directions at once. It uses the very same parameter
tensors (``fwd``/``bwd``), so the two implementations have one state dict and a model trained
with either loads into the other; only the speed differs. ``per_direction`` stays the default
until the packed path is measured on a GPU (``bench/bench_gpu.py``): on CPU the per-direction
layers run oneDNN's kernel on the padded batch, which packing cannot use. Forward-only layers
need neither trick (padding comes after the valid frames) and run the same either way.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from asr.config import check_known_keys, load_yaml_mapping, validated_dataclass
from asr.errors import ConfigError

CELL_TYPES = ("lstm", "gru", "rnn")
# how a bidirectional layer runs (see the module docstring); the first is the default
RNN_IMPLS = ("per_direction", "packed")
BLANK = 0

_RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
# functional_call swaps tensors into a packed layer's template for the length of its forward
# call: two threads in one template at once would see each other's swaps
_FUSED_LOCK = threading.Lock()


@dataclass
class ModelConfig:
    """Hyperparameters of :class:`AcousticModel` (see the module docstring for their meaning)."""

    input_dim: int
    num_tokens: int
    cell: str = "lstm"
    num_layers: int = 4
    hidden_size: int = 320
    bidirectional: bool = True
    projection_size: int = 0
    dropout: float = 0.0
    stack: int = 1
    skip: int = 1
    rnn_impl: str = RNN_IMPLS[0]
    # > 0: every parameter drawn from U[-init_uniform, init_uniform] after construction
    # (Graves et al. 2013: 0.1); 0: PyTorch's own initialisation
    init_uniform: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str = "model config") -> None:
        """Raise ConfigError (one line, naming ``source``) for a value the model cannot use."""
        for name in (
            "input_dim",
            "num_tokens",
            "num_layers",
            "hidden_size",
            "projection_size",
            "stack",
            "skip",
        ):
            value = getattr(self, name)
            # bool is an int subclass; "yes" in a YAML file must not become 1 layer
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{source}: {name} must be an integer, got {value!r}")
        minimum = {"input_dim": 1, "num_tokens": 2, "num_layers": 1, "hidden_size": 1}
        minimum.update({"projection_size": 0, "stack": 1, "skip": 1})
        for name, low in minimum.items():
            if getattr(self, name) < low:
                raise ConfigError(f"{source}: {name} must be >= {low}, got {getattr(self, name)}")
        if self.cell not in CELL_TYPES:
            raise ConfigError(
                f"{source}: cell must be one of {', '.join(CELL_TYPES)}, got {self.cell!r}"
            )
        if not isinstance(self.bidirectional, bool):
            raise ConfigError(
                f"{source}: bidirectional must be true or false, got {self.bidirectional!r}"
            )
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, int | float):
            raise ConfigError(f"{source}: dropout must be a number, got {self.dropout!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{source}: dropout must be in [0, 1), got {self.dropout}")
        value = self.init_uniform
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{source}: init_uniform must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{source}: init_uniform must be a finite number >= 0, got {value}")
        if self.rnn_impl not in RNN_IMPLS:
            raise ConfigError(
                f"{source}: rnn_impl must be one of {', '.join(RNN_IMPLS)}, got {self.rnn_impl!r}"
            )
        if self.cell == "lstm" and self.projection_size >= self.hidden_size:
            # nn.LSTM refuses proj_size >= hidden_size; say so in config terms
            raise ConfigError(
                f"{source}: projection_size ({self.projection_size}) must be smaller than "
                f"hidden_size ({self.hidden_size}) for lstm"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "model config") -> ModelConfig:
        """Build from a dict (e.g. a YAML ``model:`` section); unknown keys raise ConfigError."""
        check_known_keys(values, (f.name for f in fields(cls)), source, "model option")
        missing = [name for name in ("input_dim", "num_tokens") if name not in values]
        if missing:
            raise ConfigError(f"{source}: missing {', '.join(missing)}")
        return validated_dataclass(cls, values, source)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; ``rnn_impl`` and ``init_uniform`` only when they are not the
        default. The one changes how the layers run, the other how they start, neither what a
        package's weights mean: so the packages, checkpoints and ``config.yaml`` of default
        models stay what they were (an older asr reads them, and resuming a checkpoint written
        before the options existed compares equal)."""
        values = asdict(self)
        if values["rnn_impl"] == RNN_IMPLS[0]:
            del values["rnn_impl"]
        if values["init_uniform"] == 0:
            del values["init_uniform"]
        return values

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def layer_output_size(self) -> int:
        """Values per frame that each recurrent layer outputs (all directions together)."""
        return self.directions * (self.projection_size or self.hidden_size)


def load_model_config(
    path: str | os.PathLike, input_dim: int, num_tokens: int, section: str | None = "model"
) -> ModelConfig:
    """Read a YAML file's ``model:`` section (or the whole file when it has none).

    ``input_dim`` and ``num_tokens`` come from the data, not the file; the file may not set them.
    """
    document = load_yaml_mapping(path, "model config")
    values = document.get(section, document) if section else document
    values = dict(values or {}) if isinstance(values, dict) else values
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: '{section}' must be a mapping")
    for name in ("input_dim", "num_tokens"):
        if name in values:
            raise ConfigError(f"{path}: {name} is taken from the data; remove it from the file")
    values.update(input_dim=input_dim, num_tokens=num_tokens)
    return ModelConfig.from_dict(values, source=str(path))


def output_lengths(lengths: torch.Tensor, skip: int) -> torch.Tensor:
    """Frames out of the stacking step: ``ceil(L / skip)`` per utterance."""
    return torch.div(lengths + (skip - 1), skip, rounding_mode="floor")


def stack_frames(
    feats: torch.Tensor, lengths: torch.Tensor, stack: int, skip: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack and subsample (B, T, D) -> time-major (ceil(T/skip), B, stack*D), and lengths.

    Output frame j of utterance b holds input frames ``min(j*skip + i, L_b - 1)``, i < stack.
    """
    batch, frames, dim = feats.shape
    out_lengths = output_lengths(lengths, skip)
    if stack == 1 and skip == 1:
        return feats.transpose(0, 1), out_lengths
    out_frames = -(-frames // skip)
    device = feats.device
    starts = torch.arange(out_frames, device=device) * skip
    offsets = torch.arange(stack, device=device)
    window = starts[:, None, None] + offsets[None, None, :]  # (T', 1, stack)
    last = (lengths.to(device) - 1).clamp(min=0)[None, :, None]  # (1, B, 1)
    index = torch.minimum(window, last)  # (T', B, stack)
    rows = torch.arange(batch, device=device)[None, :, None]
    stacked = feats[rows, index]  # (T', B, stack, D)
    return stacked.reshape(out_frames, batch, stack * dim), out_lengths


def reversal_index(lengths: torch.Tensor, frames: int) -> torch.Tensor | None:
    """Time index (T, B) reversing each sequence within its length; None if all are full length.

    Entry (t, b) is ``L_b - 1 - t`` for ``t < L_b`` and ``t`` in the padding, so applying it
    twice is the identity.
    """
    if bool((lengths == frames).all()):
        return None  # a plain flip does it, and is cheaper than a gather
    time = torch.arange(frames, device=lengths.device)[:, None]
    lengths = lengths.to(time.device)[None, :]
    return torch.where(time < lengths, lengths - 1 - time, time)


def _reverse(x: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    if index is None:
        return x.flip(0)
    return x.gather(0, index[:, :, None].expand(-1, -1, x.shape[2]))


class RecurrentLayer(nn.Module):
    """One layer: a forward RNN and optionally a backward RNN, time-major (T, B, D) in and out.

    With ``rnn_impl="packed"`` a bidirectional layer runs as one fused bidirectional RNN over a
    packed batch, on the same ``fwd`` and ``bwd`` parameters (see :meth:`forward`).
    """

    def __init__(
        self,
        input_size: int,
        cell: str,
        hidden_size: int,
        bidirectional: bool,
        projection: int,
        rnn_impl: str = RNN_IMPLS[0],
    ) -> None:
        super().__init__()
        rnn_class = _RNN_CLASSES[cell]
        kwargs: dict[str, Any] = {}
        if cell == "lstm" and projection:
            kwargs["proj_size"] = projection
        self.fwd = rnn_class(input_size, hidden_size, **kwargs)
        self.bwd = rnn_class(input_size, hidden_size, **kwargs) if bidirectional else None
        directions = 2 if bidirectional else 1
        self.proj = (
            nn.Linear(directions * hidden_size, directions * projection)
            if cell != "lstm" and projection
            else None
        )
        # The fused module is only a template for functional_call: its parameters are never
        # used (they are on the meta device, so they take no memory) and it stays outside the
        # module tree (a tuple attribute), so the state dict, .to() and the optimizer see only
        # fwd/bwd, whatever rnn_impl is.
        self._fused: tuple[nn.RNNBase, ...] = ()
        if rnn_impl == "packed" and bidirectional:
            self._fused = (
                rnn_class(input_size, hidden_size, bidirectional=True, device="meta", **kwargs),
            )

    def forward(
        self,
        x: torch.Tensor,
        reverse_index: torch.Tensor | None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``reverse_index`` (see :func:`reversal_index`) serves the per-direction layer,
        ``lengths`` (on the CPU, as packing wants them) the packed one."""
        if self._fused:
            if lengths is None:
                raise ValueError("a packed layer needs the sequence lengths")
            out = self._packed(x, lengths)
        else:
            out, _ = self.fwd(x)
            if self.bwd is not None:
                back, _ = self.bwd(_reverse(x, reverse_index))
                out = torch.cat([out, _reverse(back, reverse_index)], dim=2)
        if self.proj is not None:
            out = self.proj(out)
        return out

    def _packed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Both directions in one fused call over the packed batch; (T, B, 2H), zero padding."""
        assert self.bwd is not None
        fused = self._fused[0]
        fused.train(self.training)  # cuDNN keeps what backward needs only in training mode
        weights = dict(self.fwd.named_parameters())
        weights.update({f"{name}_reverse": p for name, p in self.bwd.named_parameters()})
        # an empty utterance cannot be packed; its one computed frame is padding to the caller
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1), enforce_sorted=False)
        # On CUDA, when the template first sees these tensors it flattens them
        # (flatten_parameters): moves them, in place, into one cuDNN weight buffer in the
        # bidirectional layout, so later calls copy no weights. Values, names and the
        # optimizer's references to them are unchanged.
        with _FUSED_LOCK:
            out, _ = functional_call(fused, weights, (packed,))
        padded, _ = nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
        return padded


class AcousticModel(nn.Module):
    """Stacked (B)RNN with a CTC output layer; see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        projection = config.projection_size
        input_size = config.input_dim * config.stack
        layers = []
        for _ in range(config.num_layers):
            layers.append(
                RecurrentLayer(
                    input_size,
                    config.cell,
                    config.hidden_size,
                    config.bidirectional,
                    projection,
                    config.rnn_impl,
                )
            )
            input_size = config.layer_output_size
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(input_size, config.num_tokens)
        if config.init_uniform > 0:
            # after PyTorch's initialisation, from the same global generator, in the fixed
            # order of parameters(): the same seed gives the same weights
            with torch.no_grad():
                for parameter in self.parameters():
                    parameter.uniform_(-config.init_uniform, config.init_uniform)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for input lengths: ``ceil(L / skip)``."""
        return output_lengths(lengths, self.config.skip)

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) features and (B,) lengths -> (B, T', V) log-probs and (B,) output lengths."""
        if feats.dim() != 3 or feats.shape[2] != self.config.input_dim:
            expected = f"(batch, time, {self.config.input_dim})"
            raise ValueError(f"expected features {expected}, got {tuple(feats.shape)}")
        x, out_lengths = stack_frames(feats, lengths, self.config.stack, self.config.skip)
        index = cpu_lengths = None
        if self.config.bidirectional and self.config.rnn_impl == "packed":
            cpu_lengths = out_lengths.cpu()
        elif self.config.bidirectional:
            index = reversal_index(out_lengths.to(x.device), x.shape[0])
        for number, layer in enumerate(self.layers):
            if number:
                x = self.dropout(x)
            x = layer(x, index, cpu_lengths)
        # log-softmax in fp32 whatever autocast chose: in bf16 a confident blank's log-prob
        # (near 0) is off by ~0.01, enough for CTC losses below zero and unstable training
        log_probs = F.log_softmax(self.output(x).float(), dim=-1)
        return log_probs.transpose(0, 1), out_lengths

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward_stacked(
        self, x: torch.Tensor, states: list[Any] | None = None
    ) -> tuple[torch.Tensor, list[Any]]:
        """A forward-only model on already stacked frames, carrying the recurrent state: the
        step of online decoding (:mod:`asr.transcribe.online`).

        ``x`` is time-major ``(T', B, stack * D)`` (what :func:`stack_frames` makes),
        ``states`` each layer's state after the previous call (None: the start). Returns
        ``(B, T', V)`` log-probs and the states after the last frame. Calling it chunk by chunk
        gives the frames of one call over the whole input (the recurrence is the same).
        """
        if self.config.bidirectional:
            raise ValueError("forward_stacked needs a forward-only model")
        states = list(states) if states is not None else [None] * len(self.layers)
        new_states: list[Any] = []
        for number, (layer, state) in enumerate(zip(self.layers, states, strict=True)):
            if number:
                x = self.dropout(x)
            x, state = layer.fwd(x, state)
            if layer.proj is not None:
                x = layer.proj(x)
            new_states.append(state)
        log_probs = F.log_softmax(self.output(x).float(), dim=-1)
        return log_probs.transpose(0, 1), new_states


def ctc_loss(
    log_probs: torch.Tensor,
    out_lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    reduction: str = "sum",
) -> torch.Tensor:
    """CTC loss of the model's batch-first output (blank 0); impossible alignments count zero.

    ``targets`` is (B, S) padded or (sum S,) concatenated, as for ``F.ctc_loss``.
    """
    return F.ctc_loss(
        log_probs.transpose(0, 1),
        targets,
        out_lengths,
        target_lengths,
        blank=BLANK,
        reduction=reduction,
        zero_infinity=True,
    )
