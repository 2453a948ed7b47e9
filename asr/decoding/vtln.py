"""Test-time VTLN: one warp factor per test speaker, chosen by the network's own confidence.

Kaldi's VTLN picks each test speaker's warp factor by the likelihood of a GMM (or a linear
transform that approximates it). A CTC network has no such likelihood, so here the factor is the
one whose posteriors are the least uncertain: each speaker's features are warped by every
factor of a grid, with the warp of training-time VTLP (:func:`asr.features.vtlp.warp_features`,
Kaldi's ``VtlnWarpFreq`` on the log-mel axis), and the factor with the lowest mean entropy of the
network's output distribution per frame wins (entropy minimisation). No transcript is read: it
is unsupervised adaptation, as Kaldi's test-time VTLN is, and it works on any speaker set.

Why: a voice whose vocal tract is unlike every training voice puts its formants (and a
fricative's noise band) where the network has not seen them; warping its frequency axis towards
the training voices moves them back. On the synth recipe's unseen flite voice this took the
phone error rate from 29% to 19% (recipes/synth/RESULTS), with the factor chosen as below.

Cost: one network pass per factor over each speaker's utterances (the default grid has 19), then
the decode itself. Ties (equal mean entropy) go to the factor nearest 1.0. A speaker is
``utt2spk``'s when the data directory has one, else each utterance is its own speaker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from asr.errors import AsrError, ConfigError
from asr.features.dataset import FeatureSet, make_batches
from asr.features.vtlp import MelAxis, warp_features
from asr.nn.model import AcousticModel

# Kaldi's steps/train_lvtln.sh searches 0.85-1.25 in steps of 0.01. Each factor here costs a
# network pass, so the step is coarser; the grid also reaches down to 0.80, for voices higher
# than any training voice.
DEFAULT_WARPS = "0.80:1.25:0.025"
_MAX_FACTORS = 401


def parse_warp_grid(text: str, source: str = "--vtln") -> list[float]:
    """``MIN:MAX:STEP`` -> the factors MIN, MIN+STEP, ... up to MAX (1.0 always included)."""
    parts = text.split(":")
    try:
        low, high, step = (float(p) for p in parts)
    except ValueError:
        expected = f"expected MIN:MAX:STEP, e.g. {DEFAULT_WARPS}"
        raise ConfigError(f"{source} {text!r}: {expected}") from None
    if not all(math.isfinite(v) for v in (low, high, step)):
        raise ConfigError(f"{source} {text!r}: the bounds and step must be finite numbers")
    if low <= 0:
        raise ConfigError(f"{source} {text!r}: warp factors must be positive (MIN {low:g} <= 0)")
    if high < low:
        raise ConfigError(f"{source} {text!r}: MAX {high:g} is below MIN {low:g}")
    if step <= 0:
        raise ConfigError(f"{source} {text!r}: STEP must be positive, got {step:g}")
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    if count > _MAX_FACTORS:
        raise ConfigError(f"{source} {text!r}: {count} factors; at most {_MAX_FACTORS}")
    # rounded so that 0.8 + 8 * 0.025 is 1.0 and not 0.9999999999999999
    factors = {round(low + i * step, 6) for i in range(count)}
    factors.add(1.0)
    return sorted(factors)


@dataclass
class WarpChoice:
    """What the search found: each speaker's factor, and its mean entropy at every factor."""

    factors: dict[str, float] = field(default_factory=dict)
    entropy: dict[str, dict[float, float]] = field(default_factory=dict)

    def to_lines(self) -> list[str]:
        """``spk2warp`` lines (Kaldi's name for this file): ``SPEAKER FACTOR``, C-sorted."""
        return [f"{spk} {self.factors[spk]:g}" for spk in sorted(self.factors, key=str.encode)]


def nearest_one_first(factors: Sequence[float]) -> list[float]:
    """The factors in the order ties are broken: nearest 1.0 first (then the smaller)."""
    return sorted(factors, key=lambda a: (abs(a - 1.0), a))


def frame_entropy(log_probs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Summed entropy (nats) of each utterance's output frames: (B, T, V) log-probs -> (B,)."""
    per_frame = torch.special.entr(log_probs.exp()).sum(dim=-1)
    mask = torch.arange(log_probs.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return torch.where(mask, per_frame, 0.0).sum(dim=1)


class SpeakerWarps:
    """Features of a FeatureSet, each utterance warped by its speaker's factor."""

    def __init__(self, features: FeatureSet, factors: Mapping[str, float]) -> None:
        self.features = features
        self.factors = dict(factors)
        self.axis = MelAxis.of(features.config, source=str(features.data_dir))
        self.blocks = features.config.delta_order + 1  # static, delta, ... (as in training)

    def speaker(self, utt: str) -> str:
        utt2spk = self.features.utt2spk
        return utt2spk.get(utt, utt) if utt2spk is not None else utt

    def __getitem__(self, utt: str) -> torch.Tensor:
        feats = self.features[utt]
        alpha = self.factors.get(self.speaker(utt), 1.0)
        return feats if alpha == 1.0 else warp_features(feats, self.axis, alpha, self.blocks)


def choose_warps(
    model: AcousticModel,
    features: FeatureSet,
    factors: Sequence[float],
    batch_frames: int = 20000,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> WarpChoice:
    """Each speaker's factor of ``factors``: the lowest mean entropy per output frame (see the
    module docstring). Unreadable utterances are left out (the decode that follows reports
    them); a speaker with none left is not in the choice, and SpeakerWarps gives it 1.0."""
    if not factors:
        raise ConfigError("VTLN: the grid of warp factors is empty")
    warps = SpeakerWarps(features, {})
    device = torch.device(device)
    entropy: dict[str, dict[float, float]] = {}
    frames: dict[str, int] = {}
    batches = make_batches(features.num_frames, batch_frames)
    bar = tqdm(total=len(features), desc="vtln warps", unit="utt", disable=not progress)
    for batch in batches:
        mats, utts = [], []
        for utt in batch:
            try:
                mats.append(features[utt])
                utts.append(utt)
            except AsrError:
                continue
        bar.update(len(batch))
        if not mats:
            continue
        lengths = torch.tensor([m.shape[0] for m in mats], dtype=torch.long)
        speakers = [warps.speaker(u) for u in utts]
        for alpha in factors:
            warped = [warp_features(m, warps.axis, alpha, warps.blocks) for m in mats]
            padded = torch.nn.utils.rnn.pad_sequence(warped, batch_first=True).to(device)
            with torch.inference_mode():
                log_probs, out_lengths = model(padded, lengths.to(device))
            sums = frame_entropy(log_probs.float().cpu(), out_lengths.cpu())
            for spk, value in zip(speakers, sums.tolist(), strict=True):
                table = entropy.setdefault(spk, {})
                table[alpha] = table.get(alpha, 0.0) + value
        # the output lengths are the same at every factor: the last pass's will do
        for spk, n in zip(speakers, out_lengths.tolist(), strict=True):
            frames[spk] = frames.get(spk, 0) + int(n)
    bar.close()
    choice = WarpChoice()
    for spk, table in entropy.items():
        count = max(frames[spk], 1)
        means = {alpha: total / count for alpha, total in table.items()}
        choice.entropy[spk] = means
        # min keeps the first of equals: the factor nearest 1.0
        choice.factors[spk] = min(nearest_one_first(list(means)), key=means.__getitem__)
    return choice


def warp_line(choice: WarpChoice) -> str:
    """One log line: how many speakers, and the factors chosen (most frequent first)."""
    counts: dict[float, int] = {}
    for alpha in choice.factors.values():
        counts[alpha] = counts.get(alpha, 0) + 1
    chosen = ", ".join(
        f"{alpha:g} x{n}" for alpha, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    speakers = len(choice.factors)
    return f"VTLN: warp factors of {speakers} speakers chosen by posterior entropy: {chosen}"


__all__ = [
    "DEFAULT_WARPS",
    "SpeakerWarps",
    "WarpChoice",
    "choose_warps",
    "frame_entropy",
    "nearest_one_first",
    "parse_warp_grid",
    "warp_line",
]
