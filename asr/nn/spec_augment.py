"""SpecAugment (Park et al. 2019) on padded feature batches, as ESPnet and Kaldi-style recipes do.

Per utterance, in this order:

1. **Time warp** (``time_warp = W > 0``): a point ``c`` drawn from ``[W, L - W)`` of the
   utterance's ``L`` valid frames moves to ``w = c + d``, ``d`` uniform in ``[-W, W]`` (kept
   within ``[1, L - 2]``): output frame ``p`` reads the input at the position given by the
   piecewise-linear map ``0 -> 0``, ``w -> c``, ``L - 1 -> L - 1``, interpolating linearly
   between the two neighbouring frames (so input frame ``c`` lands on ``w``). The length is
   unchanged, the first and last frames are kept exactly, and padding is never read or written.
   Utterances with ``L <= 2 W`` are not warped (as ESPnet).
2. ``freq_masks`` **frequency masks**: width ``f`` uniform in ``[0, F]`` (``F = freq_width``,
   capped at the block size), start uniform in ``[0, D_block - f]``; masked bins are set to
   ``mask_value`` in every valid frame.
3. ``time_masks`` **time masks**: width ``t`` uniform in ``[0, T_max]`` where
   ``T_max = min(time_width, L)``, also capped at ``floor(time_width_ratio * L)`` when the ratio
   is positive (ESPnet's adaptive masks; Park et al.'s ``p``); start uniform in ``[0, L - t]``,
   so a mask never reaches the padding.

**Deltas.** Features with deltas are ``blocks = delta_order + 1`` blocks side by side
(``[static | delta | delta-delta]``, see ``asr.features.cmvn.add_deltas``). With ``blocks > 1`` a
frequency mask is drawn within one block and masks the same bins in every block, so that no
delta still carries the masked band; with ``blocks = 1`` the whole feature dimension is one band.

Features are CMVN-normalised before this runs, so the default ``mask_value = 0`` is the mean.
Every random number comes from the ``generator`` argument, never the global RNG: the trainer
seeds one generator per batch, so augmentation is reproducible and independent of anything else
that draws random numbers. All utterances are handled at once with tensor operations (no Python
loop over frames or utterances), so it costs little next to a training step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from asr.config import check_known_keys, validated_dataclass
from asr.errors import ConfigError

_INT_FIELDS = ("freq_masks", "freq_width", "time_masks", "time_width", "time_warp")
_FLOAT_FIELDS = ("time_width_ratio", "mask_value")


@dataclass
class SpecAugmentConfig:
    """How many masks of which widths, and the time-warp window (see the module docstring)."""

    freq_masks: int = 2
    freq_width: int = 8  # max width F of a frequency mask (bins); width uniform in [0, F]
    time_masks: int = 2
    time_width: int = 20  # max width T of a time mask (frames)
    time_width_ratio: float = 0.0  # > 0: also cap the time-mask width at ratio x length
    time_warp: int = 0  # window W (frames); 0 = no time warp
    mask_value: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str = "spec_augment config") -> None:
        for name in _INT_FIELDS:
            value = getattr(self, name)
            # bool is an int subclass: "yes" in YAML must not become one mask
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{source}: {name} must be an integer, got {value!r}")
            if value < 0:
                raise ConfigError(f"{source}: {name} must not be negative, got {value}")
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{source}: {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"{source}: {name} must be finite, got {value!r}")
        if not 0.0 <= self.time_width_ratio <= 1.0:
            raise ConfigError(
                f"{source}: time_width_ratio must be in [0, 1], got {self.time_width_ratio}"
            )

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any], source: str = "spec_augment config"
    ) -> SpecAugmentConfig:
        """Build from a dict (e.g. a YAML section); unknown keys and bad types raise ConfigError."""
        check_known_keys(values, (f.name for f in fields(cls)), source, "spec_augment option")
        values = dict(values)
        for name in _FLOAT_FIELDS:  # YAML reads 1e-3 as a string; accept it as a number
            if isinstance(values.get(name), str):
                try:
                    values[name] = float(values[name])
                except ValueError:
                    pass  # validate() names the field
        return validated_dataclass(cls, values, source)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def active(self) -> bool:
        """Whether ``spec_augment`` would change anything at all."""
        freq = self.freq_masks > 0 and self.freq_width > 0
        time = self.time_masks > 0 and self.time_width > 0
        return freq or time or self.time_warp > 0


def _uniform_ints(
    shape: tuple[int, ...], high: torch.Tensor, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Integers uniform in ``[0, high]`` (``high`` broadcasts against ``shape``), from generator.

    Drawn on the generator's device (a CPU generator cannot fill a CUDA tensor) in float64, so
    that ``floor(u * (high + 1))`` never rounds up to ``high + 1``.
    """
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=generator.device)
    u = u.to(device)
    high = high.to(device=device, dtype=torch.float64)
    return torch.minimum(torch.floor(u * (high + 1)), high).long()


def _band_masks(
    count: int, max_width: torch.Tensor, limit: torch.Tensor, size: int, generator, device
) -> torch.Tensor:
    """(B, size) bool: the union of ``count`` bands per row, each of width uniform in
    ``[0, max_width[b]]`` starting uniformly in ``[0, limit[b] - width]``."""
    batch = limit.shape[0]
    width = _uniform_ints((batch, count), max_width[:, None], generator, device)
    start = _uniform_ints((batch, count), (limit[:, None].to(device) - width), generator, device)
    position = torch.arange(size, device=device)
    inside = (position >= start[..., None]) & (position < (start + width)[..., None])
    return inside.any(dim=1)


def _time_warp(
    feats: torch.Tensor, lengths: torch.Tensor, window: int, generator: torch.Generator
) -> torch.Tensor:
    batch, frames, dim = feats.shape
    device = feats.device
    lengths = lengths.to(device)
    # centre c uniform in [W, L - W): W + u * (L - 2W - 1); warped w = c + d, d in [-W, W]
    span = (lengths - 2 * window - 1).clamp(min=0)
    centre = window + _uniform_ints((batch,), span, generator, device)
    shift = _uniform_ints((batch,), torch.full((batch,), 2 * window), generator, device) - window
    last = (lengths - 1).to(torch.float64)
    warped = torch.minimum(torch.maximum(centre + shift, torch.ones_like(centre)), lengths - 2)
    active = lengths > 2 * window
    c, w = centre.to(torch.float64)[:, None], warped.to(torch.float64)[:, None]
    w = torch.where(active[:, None], w, c.clamp(min=1.0))  # no 0/0 for unwarped rows
    p = torch.arange(frames, device=device, dtype=torch.float64)[None, :]
    # the output frame at p reads the input at source(p): piecewise linear through (w, c)
    source = torch.where(
        p <= w,
        p * (c / w),
        c + (p - w) * ((last[:, None] - c) / (last[:, None] - w).clamp(min=1.0)),
    )
    source = torch.minimum(source.clamp(min=0.0), last[:, None].clamp(min=0.0))
    below = source.floor().long()
    above = torch.minimum(below + 1, (lengths - 1).clamp(min=0)[:, None])
    frac = (source - below).to(feats.dtype)[..., None]
    lo = feats.gather(1, below[..., None].expand(-1, -1, dim))
    hi = feats.gather(1, above[..., None].expand(-1, -1, dim))
    interpolated = lo + frac * (hi - lo)
    # only interior valid frames of warped utterances change; endpoints and padding stay exact
    change = active[:, None] & (p > 0) & (p < last[:, None])
    return torch.where(change[..., None], interpolated, feats)


def spec_augment(
    feats: torch.Tensor,
    lengths: torch.Tensor,
    cfg: SpecAugmentConfig,
    generator: torch.Generator,
    blocks: int = 1,
) -> torch.Tensor:
    """A SpecAugmented copy of the padded batch ``feats`` (B, T, D) with valid ``lengths`` (B,).

    Frames at ``t >= lengths[b]`` are returned unchanged; ``feats`` itself is never modified.
    ``blocks`` is the number of side-by-side delta blocks (``delta_order + 1``) whose bins a
    frequency mask covers together; ``D`` must be a multiple of it.
    """
    if feats.dim() != 3:
        raise ValueError(f"spec_augment: expected features (B, T, D), got {tuple(feats.shape)}")
    batch, frames, dim = feats.shape
    if lengths.shape != (batch,):
        raise ValueError(f"spec_augment: expected ({batch},) lengths, got {tuple(lengths.shape)}")
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1 or dim % blocks:
        raise ValueError(f"spec_augment: blocks={blocks!r} must be >= 1 and divide {dim}")
    device = feats.device
    lengths = lengths.to(device=device, dtype=torch.long).clamp(0, frames)
    out = feats.clone()
    if cfg.time_warp > 0:
        out = _time_warp(out, lengths, cfg.time_warp, generator)
    valid = torch.arange(frames, device=device)[None, :] < lengths[:, None]
    mask = torch.zeros(batch, frames, dim, dtype=torch.bool, device=device)
    if cfg.freq_masks > 0 and cfg.freq_width > 0:
        block = dim // blocks
        width = torch.full((batch,), min(cfg.freq_width, block))
        bands = _band_masks(
            cfg.freq_masks, width, torch.full((batch,), block), block, generator, device
        )
        mask |= valid[:, :, None] & bands.repeat(1, blocks)[:, None, :]
    if cfg.time_masks > 0 and cfg.time_width > 0:
        width = torch.minimum(lengths, torch.full_like(lengths, cfg.time_width))
        if cfg.time_width_ratio > 0:
            adaptive = torch.floor(lengths.to(torch.float64) * cfg.time_width_ratio).long()
            width = torch.minimum(width, adaptive)
        bands = _band_masks(cfg.time_masks, width, lengths, frames, generator, device)
        mask |= bands[:, :, None]
    return out.masked_fill(mask, cfg.mask_value)
