"""Turn CTC log-posteriors into token sequences (greedy best path)."""

from __future__ import annotations

import torch

BLANK = 0


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor | None = None) -> list[list[int]]:
    """Best-path CTC decoding of (B, T, V) scores: argmax per frame, merge repeats, drop blank 0.

    Only the first ``lengths[b]`` frames of utterance b are read (all T when ``lengths`` is None).
    Repeats are merged before blanks are dropped, so "a <blk> a" gives two a's and "a a" one.
    """
    if log_probs.dim() != 3:
        raise ValueError(f"expected log-probs (batch, time, tokens), got {tuple(log_probs.shape)}")
    batch, frames, _ = log_probs.shape
    best = log_probs.argmax(dim=-1)  # (B, T)
    if lengths is None:
        lengths = torch.full((batch,), frames, dtype=torch.long)
    lengths = lengths.to(best.device)
    # a token is emitted where the best path enters it from another symbol, inside the length
    keep = best != BLANK
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    keep &= torch.arange(frames, device=best.device)[None, :] < lengths[:, None]
    best = best.cpu()
    keep = keep.cpu()
    return [best[b][keep[b]].tolist() for b in range(batch)]
