"""Token and word times from CTC posteriors: greedy spans, forced alignment, timed units.

Timing convention
-----------------
A CTC path labels every output frame with a token or the blank. A token's **span** is the run
of frames its own label occupies on the path (``start`` = first frame, ``end`` = one past the
last frame; a repeated token separated by a blank gives two spans). Blank frames belong to no
token: a BLSTM's CTC output is peaky (one or two frames per token, blanks in between and over
pauses), so counting the blank run after a token as part of it would stretch every word that
precedes a pause to the next word's onset. Frame ``k`` of the network output is stamped
``offset + k * frame_seconds`` where ``frame_seconds = frame_shift * skip`` (10 ms feature shift
times the model's subsampling): the spike usually sits at, or a frame or two after, the acoustic
onset of the token, so ``start`` is the better-behaved boundary and ``end`` tends to be early
for long tokens (measured by ``bench/bench_timestamps.py``).

A word's time runs from its first unit's ``start`` to its last unit's ``end``; its confidence
is the **mean** of its units' confidences (each the mean posterior of the token over its
frames), the same choice as whisperX, so that one uncertain letter lowers but does not decide
a long word's score.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from asr.units.tokens import SPACE, WORD_START, TokenList, join_pieces


@dataclass(frozen=True)
class TokenSpan:
    """One token on a CTC path: output frames ``start`` .. ``end - 1`` (``end`` exclusive)."""

    token: int
    start: int
    end: int
    confidence: float  # mean posterior probability of ``token`` over its frames


@dataclass(frozen=True)
class TimedUnit:
    """A unit (char, phone or word) or a word, with times in seconds."""

    text: str
    start: float
    end: float
    confidence: float


def frame_seconds(frame_shift_ms: float = 10.0, skip: int = 1) -> float:
    """Seconds between network output frames: feature frame shift times the model's skip."""
    if frame_shift_ms <= 0 or skip < 1:
        raise ValueError(f"frame shift must be > 0 ms and skip >= 1, got {frame_shift_ms}, {skip}")
    return frame_shift_ms * 0.001 * skip


def _as_2d(log_probs: torch.Tensor | np.ndarray, length: int | None) -> np.ndarray:
    array = log_probs.detach().float().cpu().numpy() if torch.is_tensor(log_probs) else log_probs
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"expected log-probs (time, tokens), got shape {tuple(array.shape)}")
    if length is not None:
        if not 0 <= length <= array.shape[0]:
            raise ValueError(f"length {length} outside 0..{array.shape[0]} frames")
        array = array[:length]
    return array


def _path_spans(path: np.ndarray, log_probs: np.ndarray, blank: int) -> list[TokenSpan]:
    """Runs of equal non-blank labels on a frame path -> spans with mean posteriors."""
    spans: list[TokenSpan] = []
    frames = len(path)
    if frames == 0:
        return spans
    # a run starts where the label changes; blank runs are dropped afterwards
    change = np.flatnonzero(np.diff(path)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [frames]))
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        token = int(path[start])
        if token == blank:
            continue
        conf = float(np.exp(log_probs[start:end, token]).mean())
        spans.append(TokenSpan(token, start, end, conf))
    return spans


def greedy_spans(
    log_probs: torch.Tensor | np.ndarray, length: int | None = None, blank: int = 0
) -> list[TokenSpan]:
    """Best-path tokens of (T, V) log-probs with their frame spans (first ``length`` frames).

    The token sequence is that of ``asr.decoding.greedy.greedy_decode``: argmax per frame, repeats
    merged (a run of one label is one token), blanks dropped.
    """
    scores = _as_2d(log_probs, length)
    path = scores.argmax(axis=1) if scores.shape[0] else np.zeros(0, dtype=np.int64)
    return _path_spans(path, scores, blank)


def path_spans(
    path: Sequence[int] | np.ndarray,
    log_probs: torch.Tensor | np.ndarray,
    blank: int = 0,
) -> list[TokenSpan]:
    """The token spans of a given frame path (one label per frame of ``log_probs``), e.g. the
    path a beam search chose, with confidences read from ``log_probs``."""
    scores = _as_2d(log_probs, None)
    labels = np.asarray(path, dtype=np.int64)
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"a path of {labels.size} labels for {scores.shape[0]} frames")
    return _path_spans(labels, scores, blank)


def forced_align(
    log_probs: torch.Tensor | np.ndarray,
    targets: Sequence[int],
    blank: int = 0,
    length: int | None = None,
) -> list[TokenSpan]:
    """Viterbi CTC alignment of a known token sequence: the best path that collapses to it.

    One span per target, in order. Raises ValueError when the frames cannot hold the targets
    (each target needs a frame, and equal neighbours need a blank between them).
    """
    scores = _as_2d(log_probs, length)
    frames, vocab = scores.shape
    targets = [int(t) for t in targets]
    for t in targets:
        if t == blank or not 0 <= t < vocab:
            raise ValueError(f"target {t} is the blank or outside 0..{vocab - 1}")
    repeats = sum(a == b for a, b in zip(targets, targets[1:], strict=False))
    if frames < len(targets) + repeats:
        raise ValueError(
            f"{frames} frames cannot hold {len(targets)} targets with {repeats} repeats "
            f"(need {len(targets) + repeats})"
        )
    if not targets:
        return []
    # extended labels: blank, y1, blank, y2, ..., yL, blank (the usual CTC lattice)
    labels = np.full(2 * len(targets) + 1, blank, dtype=np.int64)
    labels[1::2] = targets
    states = len(labels)
    # a state may be entered from itself, from the previous state, or skip a blank between
    # two different tokens
    skip_ok = np.zeros(states, dtype=bool)
    skip_ok[3::2] = labels[3::2] != labels[1:-2:2]
    neg = -math.inf
    emit = scores[:, labels]  # (T, S)
    back = np.zeros((frames, states), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    prev = np.full(states, neg)
    prev[0] = emit[0, 0]
    prev[1] = emit[0, 1]
    for t in range(1, frames):
        stay = prev
        step = np.concatenate(([neg], prev[:-1]))
        jump = np.where(skip_ok, np.concatenate(([neg, neg], prev[:-2])), neg)
        choice = np.stack((stay, step, jump))
        best = choice.argmax(axis=0)
        back[t] = best
        prev = choice[best, np.arange(states)] + emit[t]
    # the path ends in the last token or the final blank
    state = states - 1 if prev[-1] >= prev[-2] else states - 2
    if not math.isfinite(prev[state]):
        raise ValueError("no CTC path reaches the targets (all paths have zero probability)")
    path_states = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path_states[t] = state
        state -= int(back[t, state])
    # spans per target state (not per label run: two equal targets are separate states)
    spans: list[TokenSpan] = []
    for index, target in enumerate(targets):
        where = np.flatnonzero(path_states == 2 * index + 1)
        start, end = int(where[0]), int(where[-1]) + 1
        conf = float(np.exp(scores[start:end, target]).mean())
        spans.append(TokenSpan(target, start, end, conf))
    return spans


def _unit(text: str, spans: Sequence[TokenSpan], step: float, offset: float) -> TimedUnit:
    conf = sum(s.confidence for s in spans) / len(spans)
    return TimedUnit(text, offset + spans[0].start * step, offset + spans[-1].end * step, conf)


# How far an end may move towards the next unit's start (halfway, at most this many seconds).
# A CTC label holds only a few frames from its onset, so its own frames end early: on the
# synthetic test set's phones by 38 ms on average, and TIMIT word ends by 26 ms. Halfway to the
# next onset halves the phone end error and removes the word bias (bench/bench_timestamps.py);
# the cap keeps a pause after the last word of a phrase out of the word.
DEFAULT_END_EXTENSION = 0.1


def extend_ends(items: Sequence[TimedUnit], limit: float) -> list[TimedUnit]:
    """Each item's end moved halfway towards the next item's start, by at most ``limit`` s."""
    out = list(items)
    for k in range(len(out) - 1):
        gap = out[k + 1].start - out[k].end
        if gap > 0 and limit > 0:
            out[k] = dataclasses.replace(out[k], end=out[k].end + min(gap / 2, limit))
    return out


def searched_words(
    spans: Sequence[TokenSpan],
    words: Sequence[str],
    word_frames: Sequence[int],
    tokens: TokenList,
    frame_seconds: float,
    offset: float = 0.0,
    end_extension: float = DEFAULT_END_EXTENSION,
    between_words: Sequence[int] = (),
) -> tuple[list[TimedUnit], list[TimedUnit]]:
    """(words, units) in seconds of a lexicon search's hypothesis: ``spans`` of its frame path,
    its ``words`` and the frame on which each was completed (``word_frames``).

    Word ``k`` is made of the spans that start after word ``k - 1`` was completed and before
    word ``k`` was, leaving out the tokens that only separate words (``between_words``: a char
    model's ``<space>``, a phone model's silence). Its text is the lexicon word, not its
    spelling: a phone model's words are then words. A word with no span of its own (possible
    only with pruning at its very end) gets a zero-length time at its completion frame.
    Units are as in :func:`timed_units`: every span but a char model's ``<space>``.
    """
    if len(words) != len(word_frames):
        raise ValueError(f"{len(words)} words but {len(word_frames)} completion frames")
    if frame_seconds <= 0:
        raise ValueError(f"frame_seconds must be positive, got {frame_seconds}")
    separators = set(between_words)
    space = tokens.symbols.index(SPACE) if SPACE in tokens else -1
    units = [
        _unit(tokens.symbols[s.token], [s], frame_seconds, offset)
        for s in spans
        if s.token != space
    ]
    timed: list[TimedUnit] = []
    inside = [s for s in spans if s.token not in separators and s.token != space]
    k = 0
    for word, done in zip(words, word_frames, strict=True):
        group = []
        while k < len(inside) and inside[k].start < done:
            group.append(inside[k])
            k += 1
        if group:
            timed.append(_unit(word, group, frame_seconds, offset))
        else:
            at = offset + done * frame_seconds
            timed.append(TimedUnit(word, at, at, 0.0))
    return extend_ends(timed, end_extension), extend_ends(units, end_extension)


def timed_units(
    spans: Sequence[TokenSpan],
    tokens: TokenList,
    frame_seconds: float,
    offset: float = 0.0,
    end_extension: float = DEFAULT_END_EXTENSION,
) -> tuple[list[TimedUnit], list[TimedUnit]]:
    """(words, units) in seconds from token spans.

    Units: one per token except char models' ``<space>``, which only separates words. Words:
    char models join the characters between spaces, BPE models the pieces from one ``▁`` piece
    to the next; word and phone models use the units as words. A word's confidence is the mean
    of its units' confidences. Ends are then moved towards the next start by
    :func:`extend_ends` (``end_extension`` 0 keeps the raw spans).
    """
    if frame_seconds <= 0:
        raise ValueError(f"frame_seconds must be positive, got {frame_seconds}")
    char = tokens.unit == "char"
    bpe = tokens.unit == "bpe"
    units: list[TimedUnit] = []
    words: list[TimedUnit] = []
    group: list[TokenSpan] = []

    def close() -> None:
        if group:
            text = join_pieces([tokens.symbols[s.token] for s in group])
            if text:  # a lone word-start piece spells no word
                words.append(_unit(text, group, frame_seconds, offset))
            group.clear()

    for span in spans:
        symbol = tokens.symbols[span.token]
        if char and symbol == SPACE:
            close()
            continue
        if bpe and symbol.startswith(WORD_START):
            close()
        units.append(_unit(symbol, [span], frame_seconds, offset))
        if char or bpe:
            group.append(span)
    close()
    if not (char or bpe):
        words = list(units)
    return extend_ends(words, end_extension), extend_ends(units, end_extension)
