"""Deltas and CMVN as Kaldi computes them, and reading CMVN statistics a data dir holds.

CMVN statistics use Kaldi's layout: a ``(2, dim + 1)`` float64 matrix, row 0 the per-dimension
sums with the frame count in the last column, row 1 the sums of squares.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import kaldiio
import numpy as np
import torch

from asr.errors import AsrError

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=16)
def _delta_scales(order: int, window: int) -> tuple[tuple[float, ...], ...]:
    # Kaldi's DeltaFeatures constructor: scales[i] = scales[i-1] convolved with j/sum(j^2).
    scales: list[list[float]] = [[1.0]]
    normalizer = float(sum(j * j for j in range(-window, window + 1)))
    for _ in range(order):
        prev = scales[-1]
        cur = [0.0] * (len(prev) + 2 * window)
        for j in range(-window, window + 1):
            for k, value in enumerate(prev):
                cur[j + k + window] += j * value / normalizer
        scales.append(cur)
    return tuple(tuple(s) for s in scales)


def add_deltas(feats: torch.Tensor, order: int = 2, window: int = 2) -> torch.Tensor:
    """Kaldi ``add-deltas``: append ``order`` orders of deltas: ``(T, D)`` -> ``(T, D*(order+1))``.

    Each order is one filter over frames clamped at the edges (Kaldi's DeltaFeatures), which is
    *not* the delta of the delta near the edges. Batches ``(B, T, D)`` work too.
    """
    if order < 0 or window < 1:
        raise ValueError(f"add_deltas: need order >= 0 and window >= 1, got {order}, {window}")
    if order == 0:
        return feats
    single = feats.dim() == 2
    x = feats.unsqueeze(0) if single else feats
    num_frames_ = x.shape[1]
    if num_frames_ == 0:
        out = x.new_zeros(x.shape[0], 0, x.shape[2] * (order + 1))
        return out[0] if single else out
    scales = _delta_scales(order, window)
    max_offset = order * window
    # Clamp-at-edge padding == Kaldi's offset_frame clamping, done once for the widest filter.
    idx = torch.arange(-max_offset, num_frames_ + max_offset, device=x.device)
    padded = x[:, idx.clamp(0, num_frames_ - 1)]
    outputs = [x]
    for scale in scales[1:]:
        half = (len(scale) - 1) // 2
        acc = torch.zeros_like(x)
        for j, s in enumerate(scale):
            if s != 0.0:
                start = max_offset - half + j
                acc.add_(padded[:, start : start + num_frames_], alpha=s)
        outputs.append(acc)
    out = torch.cat(outputs, dim=-1)
    return out[0] if single else out


def compute_cmvn_stats(feats: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
    """Kaldi ``compute-cmvn-stats``: ``(2, dim+1)`` float64 (sums + count; sums of squares).

    ``feats`` is one ``(T, D)`` matrix or an iterable of them (stats are accumulated).
    """
    mats = [feats] if isinstance(feats, torch.Tensor) else list(feats)
    if not mats:
        raise ValueError("compute_cmvn_stats: no features given")
    dim = mats[0].shape[-1]
    stats = torch.zeros(2, dim + 1, dtype=torch.float64)
    for mat in mats:
        if mat.dim() != 2 or mat.shape[1] != dim:
            raise ValueError(f"compute_cmvn_stats: expected (T, {dim}), got {tuple(mat.shape)}")
        m = torch.as_tensor(mat).detach().to(device="cpu", dtype=torch.float64)
        stats[0, :dim] += m.sum(0)
        stats[1, :dim] += m.square().sum(0)
        stats[0, dim] += m.shape[0]
    return stats


def apply_cmvn(feats: torch.Tensor, stats: torch.Tensor, norm_vars: bool = False) -> torch.Tensor:
    """Kaldi ``apply-cmvn``: subtract the mean (and divide by the stddev with ``norm_vars``)."""
    stats = torch.as_tensor(stats, dtype=torch.float64)
    dim = feats.shape[-1]
    if stats.shape != (2, dim + 1):
        raise ValueError(
            f"apply_cmvn: stats of shape {tuple(stats.shape)} do not fit features of dim {dim}"
        )
    count = float(stats[0, dim])
    if count < 1.0:
        raise ValueError(f"apply_cmvn: stats count {count} is below 1")
    mean = stats[0, :dim] / count
    if norm_vars:
        # Kaldi floors the variance at 1e-20 before taking 1/sqrt.
        var = (stats[1, :dim] / count - mean.square()).clamp_min(1.0e-20)
        scale = var.rsqrt()
        offset = -mean * scale
        return feats * scale.to(feats) + offset.to(feats)
    return feats - mean.to(feats)


# Kaldi's online CMVN (apply-cmvn-online, OnlineCmvnOptions.global_frames): before a recording
# has many frames of its own, its statistics lean on the training set's, counted as this many
# frames.
RUNNING_PRIOR_FRAMES = 200


def running_prior(global_stats: torch.Tensor | None, dim: int) -> torch.Tensor:
    """The starting statistics of running CMVN: ``global_stats`` (Kaldi layout) scaled to
    :data:`RUNNING_PRIOR_FRAMES` frames, or zeros when there are none."""
    if global_stats is None:
        return torch.zeros(2, dim + 1, dtype=torch.float64)
    stats = torch.as_tensor(global_stats, dtype=torch.float64)
    if stats.shape != (2, dim + 1):
        raise ValueError(f"running_prior: stats of shape {tuple(stats.shape)} for dim {dim}")
    count = float(stats[0, dim])
    if count < 1.0:
        return torch.zeros(2, dim + 1, dtype=torch.float64)
    return stats * (RUNNING_PRIOR_FRAMES / count)


def running_cmvn(
    feats: torch.Tensor, prior: torch.Tensor, norm_vars: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """CMVN of each frame by the statistics of every frame up to and including it, on top of
    ``prior`` (``(2, dim + 1)``, e.g. :func:`running_prior`, or what the previous call returned):
    the causal CMVN an online decoder can apply (Kaldi's online CMVN without its sliding window).

    Returns the normalised ``(T, D)`` frames and the statistics after the last one, so a
    recording cut into chunks, each passed with the previous call's statistics, is normalised
    exactly as the whole recording in one call (the sums run frame by frame either way).
    """
    dim = feats.shape[-1]
    if feats.dim() != 2 or prior.shape != (2, dim + 1):
        raise ValueError(
            f"running_cmvn: features {tuple(feats.shape)} and stats {tuple(prior.shape)}"
        )
    if feats.shape[0] == 0:
        return feats, prior.clone()
    x = feats.detach().to(torch.float64)
    ones = torch.ones(x.shape[0], 1, dtype=torch.float64)
    rows = torch.cat([torch.cat([x, ones], 1), torch.cat([x.square(), ones * 0], 1)], 1)
    start = torch.cat([prior[0], prior[1]])[None]
    sums = torch.cat([start, rows]).cumsum(0)[1:]  # (T, 2 * (dim + 1)), running from the prior
    count = sums[:, dim : dim + 1].clamp_min(1.0)
    mean = sums[:, :dim] / count
    out = x - mean
    if norm_vars:
        var = (sums[:, dim + 1 : 2 * dim + 1] / count - mean.square()).clamp_min(1.0e-20)
        out = out * var.rsqrt()
    last = sums[-1]
    return out.to(feats.dtype), torch.stack([last[: dim + 1], last[dim + 1 :]])


def read_speaker_cmvn(data_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Per-speaker CMVN stats from ``DATA_DIR/cmvn.scp`` (speaker id -> ``(2, dim+1)``)."""
    path = Path(data_dir) / "cmvn.scp"
    if not path.exists():
        raise AsrError(f"{path}: file not found (run `asr features` first)")
    return {
        spk: torch.from_numpy(np.array(mat)) for spk, mat in kaldiio.load_scp(str(path)).items()
    }


def read_global_cmvn(data_dir: str | os.PathLike) -> torch.Tensor:
    """Global CMVN stats from ``DATA_DIR/cmvn_global.ark`` (one matrix, no key)."""
    path = Path(data_dir) / "cmvn_global.ark"
    if not path.exists():
        raise AsrError(f"{path}: file not found (run `asr features` first)")
    return torch.from_numpy(np.array(kaldiio.load_mat(str(path))))
