"""CTC prefix beam search (Hannun et al., 2014, arXiv:1408.2873), optionally with a token LM.

Each hypothesis is a label *prefix* with two log probabilities: ``pb``, the total probability of
all alignments of the frames so far that collapse to the prefix and end in a blank, and ``pnb``,
of those that end in its last label. Keeping the two apart is what makes repeats right: after
"a" a further "a" frame continues the same label (from ``pnb``) and only a blank in between
(``pb``) lets it start a second "a". A prefix's score is ``logaddexp(pb, pnb)``: its probability
summed over all alignments that stayed in the beam, so a lower bound of the exact sum over all
alignments, equal to it when nothing on the way was pruned.

One frame is vectorised over (beams x candidate labels) with numpy; prefixes live in a trie
(node id -> parent, label) so that equal prefixes reached along different routes are merged by
id rather than by comparing label tuples. The cost is mostly numpy's per-call overhead, about
60 us a frame at beam 10 whatever the vocabulary: ~9 ms for 150 frames of 40 tokens (see
docs/benchmarks.md). Frames where pruning leaves only the blank take a shorter path.

``With a token language model (``lm``, e.g. :class:`asr.lm.bigram.BigramLM`) the search does
shallow fusion: a prefix is ranked by log P_ctc + lm_weight * log P_lm + insertion_bonus * length,
the LM term added when a label is appended and the end-of-sentence probability at the end. The
CTC part is kept apart from the fused part, so merging and the CTC sums work as without an LM.

``beam_size=1`` keeps the single most probable prefix per frame. That is *not* greedy best-path
decoding: when the best label of a frame is new, staying on the current prefix (blank plus a
repeat of its last label) can still be more probable than extending it, so the two can differ.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch

# Log-prob distance below a frame's best label beyond which a label starts no new prefix:
# e^-10 ~ 4.5e-5 of the best label's probability.
DEFAULT_PRUNE = 10.0

_NEG_INF = -math.inf


def _logaddexp(a: float, b: float) -> float:
    # scalar log(e^a + e^b) without numpy's per-call overhead
    if a < b:
        a, b = b, a
    if b == _NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


class TokenLM(Protocol):
    """A token language model over the search's label ids; ``prev`` None is the sentence start."""

    def log_prob(self, prev: int | None, token: int) -> float: ...

    def end_log_prob(self, prev: int | None) -> float: ...


def _fusion_tables(
    lm: TokenLM | None, vocab: int, blank: int, lm_weight: float, insertion_bonus: float
) -> tuple[np.ndarray, np.ndarray]:
    """[last, c]: what appending c to a prefix ending in ``last`` adds; [last]: the end's part.

    ``last`` equal to the blank stands for the empty prefix (the sentence start).
    """
    append = np.full((vocab, vocab), float(insertion_bonus))
    end = np.zeros(vocab)
    if lm is not None and lm_weight != 0:
        for p in range(vocab):
            prev = None if p == blank else p
            for c in range(vocab):
                if c != blank:
                    append[p, c] += lm_weight * lm.log_prob(prev, c)
            end[p] = lm_weight * lm.end_log_prob(prev)
    return append, end


def _as_float64(log_probs: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(log_probs, torch.Tensor):
        return log_probs.detach().to("cpu", torch.float64).numpy()
    return np.asarray(log_probs, dtype=np.float64)


def prefix_beam_search(
    log_probs: torch.Tensor | np.ndarray,
    beam_size: int = 10,
    blank: int = 0,
    prune: float | None = DEFAULT_PRUNE,
    top_k: int | None = None,
    lm: TokenLM | None = None,
    lm_weight: float = 0.5,
    insertion_bonus: float = 0.0,
    _tables: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[tuple[list[int], float]]:
    """N-best label sequences of one utterance's (T, V) CTC log-probabilities, best first.

    Returns up to ``beam_size`` pairs (labels, log probability summed over their alignments).
    ``prune``: in a frame, only labels whose log prob is within ``prune`` of the frame's best
    start new prefixes (None: all); ``top_k``: at most that many labels per frame do (None: no
    limit). Pruning never drops the blank or a repeat of a prefix's last label, which extend
    prefixes already in the beam. With ``prune=None``, ``top_k=None`` and a beam at least as
    large as the number of distinct prefixes, the search is exact. T = 0 gives ``[([], 0.0)]``;
    the list is empty only if no sequence has a finite score (e.g. a frame of all -inf).

    ``lm``: shallow fusion with a token language model; each returned score is then
    log P_ctc + ``lm_weight`` * log P_lm (end included) + ``insertion_bonus`` * length, and the
    beam is ranked by it (a nonzero ``insertion_bonus`` applies without an LM too). The exactness
    statement above holds for the fused score.
    """
    scores = _as_float64(log_probs)
    if scores.ndim != 2:
        raise ValueError(f"expected log-probs (time, tokens), got {tuple(scores.shape)}")
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    frames, vocab = scores.shape
    if not 0 <= blank < vocab:
        raise ValueError(f"blank index {blank} outside the {vocab} tokens")
    fusing = _tables is not None or lm is not None or insertion_bonus != 0
    if fusing and _tables is None:
        _tables = _fusion_tables(lm, vocab, blank, lm_weight, insertion_bonus)
    append_lm, end_lm = _tables if fusing else (None, None)

    # Trie of prefixes: node 0 is the empty prefix, node n is parent[n] extended by label[n].
    parent: list[int] = [-1]
    label: list[int] = [-1]
    children: dict[tuple[int, int], int] = {}
    # The beam, as parallel arrays: trie node, last label, pb, pnb. The empty prefix's "last
    # label" is the blank, which is never a candidate, and its pnb stays -inf.
    ids = np.zeros(1, dtype=np.int64)
    last = np.full(1, blank, dtype=np.int64)
    pb = np.zeros(1)
    pnb = np.full(1, _NEG_INF)
    fused = np.zeros(1)  # the LM and insertion part of each prefix's score

    # Labels that may start new prefixes, per frame (the blank never does).
    allowed = np.ones_like(scores, dtype=bool)
    allowed[:, blank] = False
    if prune is not None and frames:
        allowed &= scores >= scores.max(axis=1, keepdims=True) - prune
    column = np.full(vocab, -1, dtype=np.int64)  # label -> its column in this frame's candidates
    for t in range(frames):
        y = scores[t]
        cand = np.flatnonzero(allowed[t])
        if top_k is not None and len(cand) > top_k:
            cand = cand[np.argpartition(y[cand], -top_k)[-top_k:]]
        ycand = y[cand]

        total = np.logaddexp(pb, pnb)
        # Staying on the same prefix: a blank frame (from either ending), or the last label
        # going on (only from the non-blank ending).
        stay_b = total + y[blank]
        stay_nb = pnb + y[last]
        if not len(cand):
            # No label starts a prefix (a frame pruned down to the blank, common with a trained
            # model): the beam keeps its prefixes, nothing to merge or select.
            alive = np.logaddexp(stay_b, stay_nb) > _NEG_INF
            if not alive.any():
                return []
            ids, last, pb, pnb = ids[alive], last[alive], stay_b[alive], stay_nb[alive]
            if fusing:
                fused = fused[alive]
            continue
        # Extending by c: from either ending, but a repeat of the last label needs the blank.
        repeat = cand[None, :] == last[:, None]
        ext = ycand[None, :] + np.where(repeat, pb[:, None], total[:, None])

        # An extension that yields a prefix already in the beam adds into that prefix instead.
        if len(ids) > 1:
            column[cand] = np.arange(len(cand))
            node_list = ids.tolist()
            row = {node: i for i, node in enumerate(node_list)}
            for j, node in enumerate(node_list):
                if node == 0:
                    continue
                i = row.get(parent[node])
                k = int(column[label[node]])
                if i is None or k < 0:
                    continue
                stay_nb[j] = _logaddexp(float(stay_nb[j]), float(ext[i, k]))
                ext[i, k] = _NEG_INF
            column[cand] = -1

        stay = np.logaddexp(stay_b, stay_nb)
        if fusing:
            ext_fused = fused[:, None] + append_lm[last][:, cand]
            candidates = np.concatenate([stay + fused, (ext + ext_fused).ravel()])
        else:
            candidates = np.concatenate([stay, ext.ravel()])
        if len(candidates) > beam_size:
            chosen = np.argpartition(candidates, -beam_size)[-beam_size:]
        else:
            chosen = np.arange(len(candidates))
        chosen = chosen[candidates[chosen] > _NEG_INF]  # also drops NaN
        if not len(chosen):
            return []

        beam = len(ids)
        kept = chosen[chosen < beam]
        grown = chosen[chosen >= beam] - beam
        rows, cols = np.divmod(grown, max(len(cand), 1))
        new_labels = cand[cols]
        new_ids = []
        for node, c in zip(ids[rows].tolist(), new_labels.tolist(), strict=True):
            child = children.get((node, c))
            if child is None:
                child = len(parent)
                parent.append(node)
                label.append(c)
                children[(node, c)] = child
            new_ids.append(child)
        ids = np.concatenate([ids[kept], np.asarray(new_ids, dtype=np.int64)])
        if fusing:
            fused = np.concatenate([fused[kept], ext_fused[rows, cols]])
        last = np.concatenate([last[kept], new_labels])
        pb = np.concatenate([stay_b[kept], np.full(len(grown), _NEG_INF)])
        pnb = np.concatenate([stay_nb[kept], ext[rows, cols]])

    total = np.logaddexp(pb, pnb)
    if fusing:
        total = total + fused + end_lm[last]
    order = np.argsort(-total, kind="stable")
    results = []
    for b in order.tolist():
        sequence = []
        node = int(ids[b])
        while node != 0:
            sequence.append(label[node])
            node = parent[node]
        results.append((sequence[::-1], float(total[b])))
    return results


def beam_search_batch(
    log_probs: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | np.ndarray | list[int] | None = None,
    beam_size: int = 10,
    blank: int = 0,
    prune: float | None = DEFAULT_PRUNE,
    top_k: int | None = None,
    lm: TokenLM | None = None,
    lm_weight: float = 0.5,
    insertion_bonus: float = 0.0,
) -> list[list[int]]:
    """Best label sequence of each utterance of (B, T, V) log-probs, reading ``lengths[b]`` frames.

    The batch counterpart of :func:`asr.decoding.greedy.greedy_decode` (all T frames when
    ``lengths`` is None); an utterance with no finite-scoring sequence gives ``[]``. ``lm``,
    ``lm_weight`` and ``insertion_bonus`` are :func:`prefix_beam_search`'s shallow fusion.
    """
    scores = _as_float64(log_probs)
    if scores.ndim != 3:
        raise ValueError(f"expected log-probs (batch, time, tokens), got {tuple(scores.shape)}")
    batch, frames, _ = scores.shape
    if lengths is None:
        lengths = [frames] * batch
    elif isinstance(lengths, torch.Tensor):
        lengths = lengths.tolist()
    else:
        lengths = np.asarray(lengths).tolist()
    if len(lengths) != batch:
        raise ValueError(f"{len(lengths)} lengths for a batch of {batch}")
    tables = None
    if lm is not None or insertion_bonus != 0:
        tables = _fusion_tables(lm, scores.shape[2], blank, lm_weight, insertion_bonus)
    best = []
    for b, length in enumerate(lengths):
        nbest = prefix_beam_search(
            scores[b, : int(length)], beam_size, blank, prune, top_k, _tables=tables
        )
        best.append(nbest[0][0] if nbest else [])
    return best
