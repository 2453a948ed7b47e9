"""Token bigram LM and shallow fusion in CTC prefix beam search, against brute force."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from test_ctc_beam import brute_force, random_log_probs

from asr.cli import main
from asr.decoding.prefix_beam import beam_search_batch, prefix_beam_search
from asr.errors import ConfigError
from asr.lm.bigram import BigramLM
from asr.score import read_transcripts, wer
from asr.units.tokens import TokenList

TOKENS = TokenList(["<blk>", "a", "b"])


def toy_lm(k: float = 0.5) -> BigramLM:
    # "a" tends to follow "b" and end a sentence; "b" tends to start one
    return BigramLM.from_sequences(TOKENS, [[2, 1], [2, 1, 2, 1], [1], [2, 2, 1]], k=k)


def test_probabilities_sum_to_one_including_the_end(tmp_path: Path) -> None:
    lm = toy_lm()
    for prev in [None, 1, 2]:
        probs = [math.exp(lm.log_prob(prev, c)) for c in (1, 2)]
        probs.append(math.exp(lm.end_log_prob(prev)))
        assert sum(probs) == pytest.approx(1.0, abs=1e-12)
    # add-k by hand: after <s>, "b" 3 times of 4 sentences; 3 outcomes (a, b, </s>)
    assert lm.log_prob(None, 2) == pytest.approx(math.log((3 + 0.5) / (4 + 1.5)))
    assert lm.end_log_prob(1) == pytest.approx(math.log((4 + 0.5) / (5 + 1.5)))
    lm.save(tmp_path / "lm.json")
    again = BigramLM.load(tmp_path / "lm.json")
    assert np.array_equal(again.table(), lm.table()) and again.k == lm.k


def test_from_text_and_errors(tmp_path: Path) -> None:
    text = tmp_path / "text"
    text.write_text("u1 b a\nu2 b a b a\nu3 a\nu4 b b a\n", encoding="utf-8")
    assert np.allclose(BigramLM.from_text(text, TOKENS, k=0.5).table(), toy_lm().table())
    text.write_text("u1 a c\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown token 'c'"):
        BigramLM.from_text(text, TOKENS)
    with pytest.raises(ConfigError, match="positive"):
        BigramLM(TOKENS, k=0)


def fused_brute_force(log_probs, lm, weight, bonus) -> dict[tuple[int, ...], float]:
    return {
        seq: score + weight * lm.sequence_log_prob(seq) + bonus * len(seq)
        for seq, score in brute_force(log_probs).items()
    }


def test_weight_zero_equals_the_plain_beam() -> None:
    lm = toy_lm()
    for seed in range(10):
        log_probs = random_log_probs(seed, 8, 3)
        plain = prefix_beam_search(log_probs, beam_size=4)
        assert prefix_beam_search(log_probs, beam_size=4, lm=lm, lm_weight=0.0) == plain
    scores = np.stack([random_log_probs(seed, 8, 3) for seed in range(4)])
    assert beam_search_batch(scores, None, 4, lm=lm, lm_weight=0.0) == beam_search_batch(
        scores, None, 4
    )


def test_fused_search_matches_brute_force() -> None:
    lm = toy_lm(k=0.2)
    changed = 0
    for seed in range(30):
        log_probs = random_log_probs(seed, 1 + seed % 5, 3)
        plain = prefix_beam_search(log_probs, beam_size=500, prune=None)[0][0]
        for weight, bonus in [(0.5, 0.0), (1.5, 0.0), (1.0, 1.0), (1.0, -1.0)]:
            truth = fused_brute_force(log_probs, lm, weight, bonus)
            nbest = prefix_beam_search(
                log_probs, 500, prune=None, lm=lm, lm_weight=weight, insertion_bonus=bonus
            )
            assert nbest[0][0] == list(max(truth, key=truth.get))
            assert sorted(tuple(labels) for labels, _ in nbest) == sorted(truth)
            for labels, score in nbest:
                assert score == pytest.approx(truth[tuple(labels)], abs=1e-6)
            changed += nbest[0][0] != plain
    assert changed  # the LM does change some decisions


def test_cli_decode_with_a_bigram_lm(tiny_trained_model, tmp_path, capsys) -> None:
    model, test = tiny_trained_model
    train_text = test.parent / "train" / "text"
    argv = ["decode", str(model), str(test), "--threads", "1", "--no-progress"]
    out = tmp_path / "lm"
    options = ["--beam-size", "4", "--bigram-lm", str(train_text), "--lm-weight", "0.3"]
    assert main([*argv[:3], str(out), *argv[3:], *options, "--insertion-bonus", "0.5"]) == 0
    hyps, refs = read_transcripts(out / "text"), read_transcripts(test / "text")
    assert sorted(hyps) == sorted(refs)
    assert wer(refs, hyps).wer <= 10.0

    capsys.readouterr()
    bad = [*argv[:3], str(tmp_path / "bad"), "--bigram-lm", str(train_text)]
    assert main(bad) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--beam-size" in err[0]
    assert not (tmp_path / "bad").exists()
