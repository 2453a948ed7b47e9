"""CTC token spans (greedy and forced) and their conversion to timed words and units."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from asr.decoding.greedy import greedy_decode
from asr.decoding.timing import (
    DEFAULT_END_EXTENSION,
    TimedUnit,
    TokenSpan,
    extend_ends,
    forced_align,
    frame_seconds,
    greedy_spans,
    timed_units,
)
from asr.units.tokens import BLANK, SPACE, TokenList


def path_scores(path: list[int], vocab: int = 4, hit: float = -0.1) -> torch.Tensor:
    """(T, V) log-probs whose argmax follows ``path``."""
    scores = torch.full((len(path), vocab), -5.0)
    for t, token in enumerate(path):
        scores[t, token] = hit
    return scores


def collapse(path: tuple[int, ...]) -> list[int]:
    out = [p for i, p in enumerate(path) if p != 0 and (i == 0 or path[i - 1] != p)]
    return out


# ---------------------------------------------------------------- greedy spans


def test_greedy_spans_frames_and_confidence() -> None:
    #        a  a  -  a  b  b  -  -  c
    path = [1, 1, 0, 1, 2, 2, 0, 0, 3]
    spans = greedy_spans(path_scores(path))
    assert [(s.token, s.start, s.end) for s in spans] == [
        (1, 0, 2),
        (1, 3, 4),
        (2, 4, 6),
        (3, 8, 9),
    ]
    assert spans[0].confidence == pytest.approx(math.exp(-0.1))


def test_greedy_spans_confidence_is_mean_posterior_over_frames() -> None:
    scores = torch.tensor([[-3.0, -0.2], [-3.0, -1.0], [-0.1, -4.0]])
    (span,) = greedy_spans(scores)
    assert (span.start, span.end) == (0, 2)
    assert span.confidence == pytest.approx((math.exp(-0.2) + math.exp(-1.0)) / 2)


def test_greedy_spans_match_greedy_decode_on_random_scores() -> None:
    generator = torch.Generator().manual_seed(7)
    for trial in range(30):
        frames = 1 + trial * 3
        scores = torch.randn(frames, 5, generator=generator).mul(3).log_softmax(-1)
        length = frames - trial % 4 if frames > 4 else frames
        spans = greedy_spans(scores, length=length)
        expected = greedy_decode(scores[None], torch.tensor([length]))[0]
        assert [s.token for s in spans] == expected
        # spans are ordered, disjoint, inside the length, and label their frames' argmax
        for a, b in zip(spans, spans[1:], strict=False):
            assert a.end <= b.start
        for s in spans:
            assert 0 <= s.start < s.end <= length
            assert bool((scores[s.start : s.end].argmax(-1) == s.token).all())


def test_greedy_spans_empty_and_all_blank() -> None:
    assert greedy_spans(torch.zeros(0, 3)) == []
    assert greedy_spans(path_scores([0, 0, 0])) == []
    assert greedy_spans(path_scores([1, 2]), length=0) == []


def test_greedy_spans_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match="time, tokens"):
        greedy_spans(torch.zeros(1, 4, 3))


# ---------------------------------------------------------------- forced alignment


def brute_force(scores: np.ndarray, targets: list[int]) -> tuple[float, tuple[int, ...]]:
    """Best path over all V**T label sequences that collapse to ``targets``."""
    frames, vocab = scores.shape
    best = (-math.inf, ())
    for path in itertools.product(range(vocab), repeat=frames):
        if collapse(path) == targets:
            score = float(sum(scores[t, p] for t, p in enumerate(path)))
            best = max(best, (score, path))
    return best


def spans_of_path(path: tuple[int, ...], targets: list[int]) -> list[tuple[int, int, int]]:
    spans = [(s.token, s.start, s.end) for s in greedy_spans(path_scores(list(path), vocab=3))]
    assert [s[0] for s in spans] == targets
    return spans


@pytest.mark.parametrize("targets", [[1], [2], [1, 2], [1, 1], [2, 1, 2], [1, 1, 2], [2, 2, 2]])
def test_forced_align_equals_brute_force_best_path(targets: list[int]) -> None:
    rng = np.random.default_rng(len(targets) * 10 + targets[0])
    repeats = sum(a == b for a, b in zip(targets, targets[1:], strict=False))
    for frames in range(len(targets) + repeats, 7):
        for _ in range(3):
            logits = rng.normal(size=(frames, 3)) * 2
            scores = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            _, path = brute_force(scores, targets)
            spans = forced_align(torch.from_numpy(scores), targets)
            assert [(s.token, s.start, s.end) for s in spans] == spans_of_path(path, targets)
            for s in spans:
                expected = np.exp(scores[s.start : s.end, s.token]).mean()
                assert s.confidence == pytest.approx(expected)


def test_forced_align_follows_targets_against_the_argmax() -> None:
    # the argmax says "1 1 1 0"; forcing "2" must still put token 2 somewhere
    spans = forced_align(path_scores([1, 1, 1, 0]), [2])
    assert len(spans) == 1 and spans[0].token == 2


def test_forced_align_too_few_frames() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        forced_align(torch.zeros(2, 3).log_softmax(-1), [1, 1])  # needs 1 _ 1: three frames
    with pytest.raises(ValueError, match="cannot hold"):
        forced_align(torch.zeros(2, 3).log_softmax(-1), [1, 2, 1])
    assert len(forced_align(torch.zeros(3, 3).log_softmax(-1), [1, 1])) == 2


def test_forced_align_rejects_blank_target_and_empty_targets_give_no_spans() -> None:
    with pytest.raises(ValueError, match="blank"):
        forced_align(torch.zeros(4, 3), [0])
    with pytest.raises(ValueError, match="outside"):
        forced_align(torch.zeros(4, 3), [3])
    assert forced_align(torch.zeros(4, 3), []) == []


def test_forced_align_long_input_agrees_with_greedy_when_targets_are_the_greedy_path() -> None:
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(300, 6, generator=generator).mul(4).log_softmax(-1)
    greedy = greedy_spans(scores)
    forced = forced_align(scores, [s.token for s in greedy])
    # the greedy path is the best path overall, so also the best one with its own tokens
    assert forced == greedy


# ---------------------------------------------------------------- timed units


def test_frame_seconds_is_shift_times_skip() -> None:
    assert frame_seconds() == pytest.approx(0.01)
    assert frame_seconds(10.0, 3) == pytest.approx(0.03)
    assert frame_seconds(12.5, 2) == pytest.approx(0.025)
    with pytest.raises(ValueError):
        frame_seconds(10.0, 0)


def test_timed_units_char_model_splits_words_at_space() -> None:
    tokens = TokenList([BLANK, SPACE, "a", "b", "c"], unit="char")
    space, a, b, c = 1, 2, 3, 4
    spans = [
        TokenSpan(a, 2, 3, 0.9),
        TokenSpan(b, 5, 7, 0.5),
        TokenSpan(space, 9, 10, 0.99),
        TokenSpan(c, 12, 13, 0.7),
        TokenSpan(space, 15, 16, 0.8),  # a trailing space makes no empty word
    ]
    words, units = timed_units(spans, tokens, frame_seconds=0.03, offset=1.5, end_extension=0)
    assert [u.text for u in units] == ["a", "b", "c"]
    assert units[1] == TimedUnit("b", pytest.approx(1.5 + 0.15), pytest.approx(1.5 + 0.21), 0.5)
    assert [w.text for w in words] == ["ab", "c"]
    assert words[0].start == pytest.approx(1.5 + 0.06)
    assert words[0].end == pytest.approx(1.5 + 0.21)
    assert words[0].confidence == pytest.approx(0.7)  # mean of 0.9 and 0.5
    assert words[1] == units[2]


def test_timed_units_leading_and_double_space() -> None:
    tokens = TokenList([BLANK, SPACE, "x"], unit="char")
    spans = [TokenSpan(1, 0, 1, 1.0), TokenSpan(2, 1, 2, 1.0), TokenSpan(1, 2, 3, 1.0)]
    spans += [TokenSpan(1, 4, 5, 1.0), TokenSpan(2, 6, 7, 1.0)]
    words, units = timed_units(spans, tokens, frame_seconds=0.01, end_extension=0)
    assert [w.text for w in words] == ["x", "x"]
    assert len(units) == 2


def test_timed_units_bpe_model_starts_a_word_at_each_word_start_piece() -> None:
    tokens = TokenList([BLANK, "▁the", "▁cat", "s", "▁"], unit="bpe")
    spans = [
        TokenSpan(1, 0, 2, 0.9),
        TokenSpan(2, 4, 5, 0.8),
        TokenSpan(3, 6, 7, 0.4),  # "s" continues "▁cat"
        TokenSpan(4, 9, 10, 0.5),  # a lone "▁" then "s": the word "s"
        TokenSpan(3, 11, 12, 0.7),
    ]
    words, units = timed_units(spans, tokens, frame_seconds=0.03, end_extension=0)
    assert [u.text for u in units] == ["▁the", "▁cat", "s", "▁", "s"]
    assert [w.text for w in words] == ["the", "cats", "s"]
    assert words[1].start == pytest.approx(0.12)
    assert words[1].end == pytest.approx(0.21)
    assert words[1].confidence == pytest.approx(0.6)
    assert words[2].start == pytest.approx(0.27)


@pytest.mark.parametrize("unit", ["word", "phone"])
def test_timed_units_word_and_phone_models_words_are_units(unit: str) -> None:
    tokens = TokenList([BLANK, "aa", "b", "sil"], unit=unit)
    spans = [TokenSpan(1, 0, 2, 0.8), TokenSpan(2, 4, 5, 0.6)]
    words, units = timed_units(spans, tokens, frame_seconds=0.04, offset=10.0, end_extension=0)
    assert words == units
    assert [(u.text, u.start, u.end) for u in units] == [
        ("aa", pytest.approx(10.0), pytest.approx(10.08)),
        ("b", pytest.approx(10.16), pytest.approx(10.2)),
    ]


def test_timed_units_empty_and_bad_frame_seconds() -> None:
    tokens = TokenList([BLANK, "a"], unit="word")
    assert timed_units([], tokens, 0.01) == ([], [])
    with pytest.raises(ValueError):
        timed_units([], tokens, 0.0)


def test_greedy_to_words_end_to_end() -> None:
    tokens = TokenList([BLANK, SPACE, "h", "i"], unit="char")
    #        h  h  -  i  -  _  -  i
    path = [2, 2, 0, 3, 0, 1, 0, 3]
    words, _ = timed_units(
        greedy_spans(path_scores(path)), tokens, frame_seconds=0.03, end_extension=0
    )
    assert [(w.text, round(w.start, 3), round(w.end, 3)) for w in words] == [
        ("hi", 0.0, 0.12),
        ("i", 0.21, 0.24),
    ]
    assert " ".join(w.text for w in words) == tokens.decode(
        greedy_decode(path_scores(path)[None])[0]
    )


def test_ends_move_halfway_to_the_next_start_at_most_the_limit() -> None:
    units = [
        TimedUnit("a", 0.0, 0.1, 1.0),
        TimedUnit("b", 0.2, 0.3, 1.0),  # gap 0.1 before it: a's end moves by 0.05
        TimedUnit("c", 1.3, 1.4, 1.0),  # gap 1.0: b's end moves by the limit only
        TimedUnit("d", 1.4, 1.5, 1.0),  # touching: c's end stays
    ]
    moved = extend_ends(units, 0.1)
    assert [round(u.end, 6) for u in moved] == [0.15, 0.4, 1.4, 1.5]
    assert [u.start for u in moved] == [u.start for u in units]
    assert extend_ends(units, 0.0) == units
    # timed_units applies it to words and units alike (a word model: words are units)
    tokens = TokenList(["<blk>", "x", "y"], unit="word")
    spans = [TokenSpan(1, 0, 2, 0.9), TokenSpan(2, 10, 12, 0.8)]
    words, units_out = timed_units(spans, tokens, frame_seconds=0.01)
    assert words == units_out
    assert words[0].end == pytest.approx(0.02 + min(0.04, DEFAULT_END_EXTENSION))
    assert words[1].end == pytest.approx(0.12)  # the last keeps its own end
