"""VTLP: vocal tract length perturbation of stored log-mel features (Jaitly & Hinton 2013).

A speaker's vocal tract length scales the formant frequencies by a factor; VTLP draws a random
factor per training utterance and warps the frequency axis by it, so that a few training
voices stand for many. Jaitly & Hinton warped the filterbank's centre frequencies while
computing features; here the features are computed once (``feats.scp``) and each batch warps
them on the fly, so every epoch sees new factors:

- the warp is Kaldi's VTLN warp function (``VtlnWarpFreq``): linear, ``f -> f / alpha``,
  between a low and a high cut-off, and piecewise linear outside them so that the band edges
  stay where they are (``vtln_low`` 100 Hz and ``vtln_high`` -500 Hz, i.e. 500 Hz below
  Nyquist, Kaldi's defaults);
- warped bin ``i`` takes the value the unwarped log-mel spectrum has at frequency
  ``W(c_i)``, ``c_i`` being bin ``i``'s centre, by linear interpolation between the two
  nearest bins. That is what Kaldi's warped filterbank (``MelBanks`` with a VTLN factor) would
  measure, up to the interpolation (tests/test_vtlp.py compares the two).

Interpolation along frequency commutes with deltas (linear along time) and with per-speaker
mean normalisation, so the same matrix warps every (static, delta, ...) block of normalised
features. Log-mel filterbanks only: an MFCC's cepstrum has no frequency axis to warp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from asr.errors import ConfigError
from asr.features.config import FeatureConfig
from asr.features.kaldi import FBANK_DEFAULTS, mel_scale


def inverse_mel_scale(mel: float) -> float:
    """Hz for a point of Kaldi's mel scale."""
    return 700.0 * (math.exp(mel / 1127.0) - 1.0)


def vtln_warp_freq(
    freq: float,
    alpha: float,
    low_freq: float,
    high_freq: float,
    vtln_low: float = 100.0,
    vtln_high: float = -500.0,
    nyquist: float | None = None,
) -> float:
    """Kaldi's ``VtlnWarpFreq``: the frequency whose energy warped bin centre ``freq`` reads
    for warp factor ``alpha`` (``freq / alpha`` between the cut-offs). ``vtln_high`` <= 0 is
    relative to ``nyquist``, as in Kaldi."""
    if vtln_high <= 0:
        if nyquist is None:
            raise ValueError("a vtln_high relative to Nyquist needs the Nyquist frequency")
        vtln_high += nyquist
    if freq < low_freq or freq > high_freq:
        return freq
    low = vtln_low * max(1.0, alpha)
    high = vtln_high * min(1.0, alpha)
    scale = 1.0 / alpha
    if freq < low:
        return low_freq + (scale * low - low_freq) / (low - low_freq) * (freq - low_freq)
    if freq < high:
        return scale * freq
    return high_freq + (scale * high - high_freq) / (high - high_freq) * (freq - high_freq)


@dataclass(frozen=True)
class MelAxis:
    """Where the mel bins of a feature matrix lie: enough to warp their frequency axis."""

    num_bins: int
    low_freq: float
    high_freq: float  # absolute (Hz)
    nyquist: float
    offset: int = 0  # columns before the first mel bin in each block (the energy of use_energy)

    @classmethod
    def of(cls, config: FeatureConfig, source: str = "features") -> MelAxis:
        """The mel axis of fbank features; a one-line error for anything else."""
        if config.kind != "fbank":
            raise ConfigError(
                f"{source}: VTLP warps log-mel filterbanks; these features are {config.kind}"
            )
        options: dict[str, Any] = {**FBANK_DEFAULTS, **config.options}
        if not options["use_log_fbank"]:
            raise ConfigError(f"{source}: VTLP needs log-mel features (use_log_fbank: true)")
        nyquist = config.sample_rate / 2.0
        high = float(options["high_freq"])
        return cls(
            num_bins=int(options["num_mel_bins"]),
            low_freq=float(options["low_freq"]),
            high_freq=high if high > 0 else nyquist + high,
            nyquist=nyquist,
            offset=1 if options["use_energy"] else 0,
        )

    def centers(self) -> list[float]:
        """Each bin's centre frequency (Hz), as Kaldi's MelBanks places them."""
        mel_low, mel_high = mel_scale(self.low_freq), mel_scale(self.high_freq)
        delta = (mel_high - mel_low) / (self.num_bins + 1)
        return [inverse_mel_scale(mel_low + (i + 1) * delta) for i in range(self.num_bins)]

    def warp_matrix(self, alpha: float) -> torch.Tensor:
        """``(num_bins, num_bins)`` float32 matrix ``M``: warped = ``feats @ M.T``."""
        mel_low, mel_high = mel_scale(self.low_freq), mel_scale(self.high_freq)
        delta = (mel_high - mel_low) / (self.num_bins + 1)
        matrix = torch.zeros(self.num_bins, self.num_bins, dtype=torch.float64)
        for i, center in enumerate(self.centers()):
            source = vtln_warp_freq(
                center, alpha, self.low_freq, self.high_freq, nyquist=self.nyquist
            )
            # the (fractional) bin whose centre is at ``source``, clamped to the band
            position = (mel_scale(source) - mel_low) / delta - 1.0
            position = min(max(position, 0.0), self.num_bins - 1.0)
            below = min(int(math.floor(position)), self.num_bins - 2)
            frac = position - below
            matrix[i, below] += 1.0 - frac
            matrix[i, below + 1] += frac
        return matrix.float()


def check_max_warp(max_warp: float, source: str) -> None:
    """Factors are drawn from [1 - max_warp, 1 + max_warp]: they must stay positive."""
    if not 0.0 <= max_warp < 1.0:
        raise ConfigError(
            f"{source}: vtlp_max_warp must be in [0, 1) (warp factors 1 - {max_warp:g} to "
            f"1 + {max_warp:g} must be positive), got {max_warp!r}"
        )


def vtlp(
    feats: torch.Tensor,
    axis: MelAxis,
    max_warp: float,
    generator: torch.Generator,
    blocks: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp each utterance of ``feats`` ``(batch, frames, dim)`` by a factor drawn uniformly
    from ``[1 - max_warp, 1 + max_warp]``; every (static, delta, ...) block the same way.
    Returns the warped batch and the factors."""
    batch = feats.shape[0]
    alphas = 1.0 + max_warp * (2.0 * torch.rand(batch, generator=generator) - 1.0)
    out = feats.clone()
    for b in range(batch):
        out[b] = warp_features(feats[b], axis, float(alphas[b]), blocks)
    return out, alphas


def warp_features(
    feats: torch.Tensor, axis: MelAxis, alpha: float, blocks: int = 1
) -> torch.Tensor:
    """``(frames, dim)`` features with every block's mel axis warped by ``alpha`` (a new
    tensor; the columns outside the mel bins, such as energy, are copied unchanged)."""
    width = axis.num_bins + axis.offset
    if feats.shape[-1] != width * blocks:
        raise ConfigError(
            f"VTLP: features have {feats.shape[-1]} dimensions, not {blocks} blocks of {width} "
            f"({axis.num_bins} mel bins{' + energy' if axis.offset else ''})"
        )
    matrix = axis.warp_matrix(alpha).to(feats.device, feats.dtype)
    out = feats.clone()
    for k in range(blocks):
        mel = slice(k * width + axis.offset, k * width + axis.offset + axis.num_bins)
        out[..., mel] = feats[..., mel] @ matrix.T
    return out
