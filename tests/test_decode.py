"""Greedy CTC decoding on hand-built posteriors."""

from __future__ import annotations

import itertools

import pytest
import torch

from asr.decoding.greedy import greedy_decode


def posteriors(paths: list[list[int]], num_tokens: int = 5) -> torch.Tensor:
    """Log-probs (B, T, V) whose best path is ``paths[b]`` (padded with token 4 = noise)."""
    frames = max(len(p) for p in paths)
    scores = torch.full((len(paths), frames, num_tokens), -5.0)
    for b, path in enumerate(paths):
        padded = path + [num_tokens - 1] * (frames - len(path))
        for t, token in enumerate(padded):
            scores[b, t, token] = -0.1
    return scores


def test_merges_repeats_and_drops_blanks() -> None:
    #          a  a  -  a  b  b  -  -  c
    path = [[1, 1, 0, 1, 2, 2, 0, 0, 3]]
    assert greedy_decode(posteriors(path), torch.tensor([9])) == [[1, 1, 2, 3]]


def test_repeat_without_blank_is_one_token_with_blank_is_two() -> None:
    result = greedy_decode(posteriors([[1, 1, 1, 0], [1, 0, 1, 0]]), torch.tensor([4, 4]))
    assert result == [[1], [1, 1]]


def test_leading_and_trailing_blanks_and_all_blank() -> None:
    result = greedy_decode(posteriors([[0, 0, 2, 0], [0, 0, 0, 0]]), torch.tensor([4, 4]))
    assert result == [[2], []]


def test_frames_beyond_length_are_ignored() -> None:
    # frames 3.. are "4" noise that must not appear; the second utterance stops mid-repeat
    scores = posteriors([[1, 0, 2, 4, 4, 3], [3, 3, 0, 3, 4, 4]])
    assert greedy_decode(scores, torch.tensor([3, 2])) == [[1, 2], [3]]
    assert greedy_decode(scores, torch.tensor([6, 4])) == [[1, 2, 4, 3], [3, 3]]


def test_zero_length_gives_empty() -> None:
    assert greedy_decode(posteriors([[1, 2]]), torch.tensor([0])) == [[]]


def test_lengths_default_to_all_frames() -> None:
    assert greedy_decode(posteriors([[2, 0, 2, 3]])) == [[2, 2, 3]]


def test_matches_loop_reference_on_random_scores() -> None:
    generator = torch.Generator().manual_seed(3)
    scores = torch.randn(6, 40, 4, generator=generator).log_softmax(-1)
    lengths = torch.tensor([40, 37, 20, 1, 12, 33])
    expected = []
    for b in range(6):
        best = scores[b, : lengths[b]].argmax(-1).tolist()
        expected.append([k for k, _ in itertools.groupby(best) if k != 0])
    assert greedy_decode(scores, lengths) == expected
    assert any(expected)  # the random case exercises real output


def test_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match="batch, time, tokens"):
        greedy_decode(torch.zeros(10, 5), torch.tensor([10]))
