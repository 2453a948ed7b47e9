"""Lexicon + n-gram LM CTC search (flashlight-text + KenLM) against a brute-force search.

The brute force enumerates every word sequence the emissions can hold, scores each as the best
CTC alignment (Viterbi) under the search's topology + lm_weight * ln(P_LM) + word_score *
words, with P_LM computed here from the ARPA file by the backoff formula (log10 -> natural
log), and the decoder with a wide beam must find the argmax and report its score. Two
topologies (see asr.decoding.lexicon_beam): a char model, whose words end on <space>, and a model
without <space> (a "sil" silence phone), whose words end on a blank.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from asr.decoding.lexicon_beam import DecoderOptions, LexiconDecoder
from asr.errors import AsrError, ConfigError
from asr.lm.arpa import arpa_unigrams
from asr.units.tokens import TokenList

BLANK, SIL = 0, 1
TOKENS = TokenList(["<blk>", "<space>", "a", "b", "c"], unit="char")
# no <space>: words end on a blank; the silence phone "sil" between words is optional
PHONES = TokenList(["<blk>", "sil", "a", "b", "c"], unit="phone")
# "c" is a prefix of "cab" (shared tree nodes); "cab" is not in the LM (-> <unk>).
LEXICON = {"ab": [["a", "b"]], "ba": [["b", "a"]], "c": [["c"]], "cab": [["c", "a", "b"]]}

# A 3-gram over ab, ba, c with backoffs at every order; every n-gram's prefix and suffix exist.
ARPA = """\\data\\
ngram 1=6
ngram 2=7
ngram 3=3

\\1-grams:
-1.2\t<unk>\t-0.1
-99\t<s>\t-0.4
-0.8\t</s>
-0.6\tab\t-0.3
-0.7\tba\t-0.2
-0.9\tc\t-0.25

\\2-grams:
-0.3\t<s> ab\t-0.1
-0.5\t<s> c\t-0.2
-0.2\tab ba\t-0.15
-0.4\tba </s>
-0.6\tba c
-0.35\tc ab
-0.45\tab </s>

\\3-grams:
-0.1\t<s> ab ba
-0.05\tab ba </s>
-0.25\t<s> c ab

\\end\\
"""


def read_ngrams(text: str) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float]]:
    probs, backoffs = {}, {}
    order = 0
    for line in text.splitlines():
        line = line.strip()
        if line.endswith("-grams:"):
            order = int(line[1])
        elif order and line and not line.startswith("\\"):
            fields = line.split("\t")
            gram = tuple(fields[1].split())
            probs[gram] = float(fields[0])
            if len(fields) > 2:
                backoffs[gram] = float(fields[2])
    return probs, backoffs


PROBS, BACKOFFS = read_ngrams(ARPA)


def lm_log10(words: tuple[str, ...], order: int = 3) -> float:
    """log10 P(words </s> | <s>) by the backoff formula; words the LM lacks are <unk>."""
    vocabulary = {g[0] for g in PROBS if len(g) == 1}
    seq = ["<s>"] + [w if w in vocabulary else "<unk>" for w in words] + ["</s>"]
    total = 0.0
    for i in range(1, len(seq)):
        history = tuple(seq[max(0, i - order + 1) : i])
        word = seq[i]
        penalty = 0.0
        while (*history, word) not in PROBS:
            penalty += BACKOFFS.get(history, 0.0)
            history = history[1:]
        total += penalty + PROBS[(*history, word)]
    return total


def viterbi(emissions: np.ndarray, words: tuple[str, ...], separator: bool = True) -> float:
    """Best frame alignment of ``words`` under the lexicon search's topology.

    Segments in order: a gap of blank/silence frames, then per word its tokens (each held >= 1
    frames, the LAST tree token exactly 1 frame, as flashlight emits the word there and returns
    to the tree root), with optional blanks between tokens (required between two equal
    tokens), then a gap (non-empty when the next word starts with this word's last token).
    Every word's tree spelling ends with a separator, <space> (= SIL) with ``separator`` (char
    models) and the blank without, and one frame where only the separator is possible (log
    prob 0) is appended, as the decoder does.
    """
    sep = SIL if separator else BLANK
    end = np.full((1, emissions.shape[1]), -1e30, dtype=emissions.dtype)
    end[0, sep] = 0.0
    emissions = np.concatenate([emissions, end])
    spell = [[*(TOKENS.symbols.index(u) for u in LEXICON[w][0]), sep] for w in words]
    segments: list[tuple[frozenset, int, float]] = [(frozenset({BLANK, SIL}), 0, math.inf)]
    for j, ids in enumerate(spell):
        for i, token in enumerate(ids):
            last = i == len(ids) - 1
            segments.append((frozenset({token}), 1, 1 if last else math.inf))
            if not last:
                segments.append((frozenset({BLANK}), int(ids[i + 1] == token), math.inf))
        repeat = j + 1 < len(spell) and spell[j + 1][0] == ids[-1]
        segments.append((frozenset({BLANK, SIL}), int(repeat), math.inf))

    def frame(t: int, labels: frozenset) -> float:
        return max(emissions[t, k] for k in labels)

    frames = emissions.shape[0]

    @functools.cache
    def best(t: int, k: int, count: int) -> float:
        """Best score of frames t.. given frame t-1 was the count-th frame of segment k."""
        labels, minimum, maximum = segments[k]
        if t == frames:
            done = count >= minimum and all(s[1] == 0 for s in segments[k + 1 :])
            return 0.0 if done else -math.inf
        options = []
        if count + 1 <= maximum:
            options.append(frame(t, labels) + best(t + 1, k, min(count + 1, 2)))
        if count >= minimum:
            nxt = k + 1
            while nxt < len(segments):
                options.append(frame(t, segments[nxt][0]) + best(t + 1, nxt, 1))
                if segments[nxt][1] > 0:
                    break
                nxt += 1
        return max(options, default=-math.inf)

    return best(0, 0, 0)


def min_frames(words: tuple[str, ...]) -> int:
    """Fewest frames a word sequence needs: its tokens, plus a gap frame between equal ones."""
    spell = [LEXICON[w][0] for w in words]
    tokens = [u for s in spell for u in s]
    return len(tokens) + sum(a == b for a, b in zip(tokens, tokens[1:], strict=False))


def brute_force(emissions: np.ndarray, lm_weight: float, word_score: float, separator: bool):
    """Score of every word sequence that fits the frames (all of them: none is left out)."""
    scores = {}
    frontier: list[tuple[str, ...]] = [()]
    while frontier:
        words = frontier.pop()
        acoustic = viterbi(emissions, words, separator)
        if acoustic == -math.inf:
            continue  # does not fit, nor does anything longer
        lm = lm_log10(words) * math.log(10)
        scores[words] = acoustic + lm_weight * lm + word_score * len(words)
        longer = [(*words, w) for w in sorted(LEXICON)]
        # min_frames is a lower bound on the frames a sequence needs, so this prunes nothing
        # that fits
        frontier += [w for w in longer if min_frames(w) <= emissions.shape[0] + 1]
    return scores


def random_emissions(seed: int, frames: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(frames, len(TOKENS))) * 2.5
    logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return logits.astype(np.float32)


@pytest.fixture(scope="module")
def arpa(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lm") / "words.arpa"
    path.write_text(ARPA)
    return path


@pytest.fixture(scope="module")
def decoder(arpa) -> LexiconDecoder:
    wide = DecoderOptions(beam_size=500, beam_threshold=1000.0, nbest=5)
    return LexiconDecoder(TOKENS, LEXICON, arpa, wide)


@pytest.fixture(scope="module")
def phone_decoder(arpa) -> LexiconDecoder:
    wide = DecoderOptions(beam_size=500, beam_threshold=1000.0, nbest=5)
    return LexiconDecoder(PHONES, LEXICON, arpa, wide)


def test_reference_lm_formula_on_a_hand_worked_case() -> None:
    # ab ba c: <s> ab (-0.3) + <s> ab ba (-0.1) + c | ab ba: backoff(ab ba) -0.15, then c | ba
    # (-0.6), then </s> | ba c: no "ba c" backoff, </s> | c: backoff(c) -0.25 + </s> (-0.8).
    assert lm_log10(("ab", "ba", "c")) == pytest.approx(-0.3 - 0.1 - 0.15 - 0.6 - 0.25 - 0.8)


@pytest.mark.parametrize("separator", [True, False], ids=["char", "blank-separator"])
@pytest.mark.parametrize("lm_weight,word_score", [(0.0, 0.0), (1.0, 0.0), (2.5, -1.0), (0.7, 2)])
def test_search_finds_the_brute_force_best_word_sequence(
    decoder, phone_decoder, lm_weight, word_score, separator
) -> None:
    options = DecoderOptions(
        beam_size=500, beam_threshold=1000.0, lm_weight=lm_weight, word_score=word_score, nbest=5
    )
    search = (decoder if separator else phone_decoder).with_options(options)
    for seed in range(12):
        emissions = random_emissions(seed, frames=5 + seed % 3)
        scores = brute_force(emissions, lm_weight, word_score, separator)
        best_words = max(scores, key=scores.get)
        hyps = search.decode(emissions)
        top = hyps[0]
        assert top.score == pytest.approx(scores[best_words], abs=2e-3), seed
        assert scores[tuple(top.words)] == pytest.approx(scores[best_words], abs=2e-3), seed
        # Every N-best entry: a distinct word sequence, its score exactly its brute-force score,
        # sorted best first, and the score split into its acoustic and LM parts.
        assert len({tuple(h.words) for h in hyps}) == len(hyps) > 1
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            assert h.score == pytest.approx(scores[tuple(h.words)], abs=2e-3), (seed, h.words)
            total = h.am_score + lm_weight * h.lm_score + word_score * len(h.words)
            assert total == pytest.approx(h.score, abs=2e-3)
            assert h.lm_score == pytest.approx(lm_log10(tuple(h.words)) * math.log(10), abs=1e-3)


def test_a_held_last_letter_stays_one_word(decoder, phone_decoder) -> None:
    # Frames a b b blank: CTC reads "ab" with b held over two frames. flashlight's own word end
    # cannot hold a word's last token (it would read the second b as a blank or a new word);
    # ending words on a separator keeps the full CTC score.
    probs = np.full((4, len(TOKENS)), 0.004 / 3)
    probs[:, BLANK] = 0.006
    for t, k in enumerate([2, 3, 3, 0]):
        probs[t, k] = 0.99
    emissions = np.log(probs).astype(np.float32)
    options = DecoderOptions(beam_size=100, lm_weight=0.0, nbest=3)
    for search in (decoder, phone_decoder):
        top = search.with_options(options).decode(emissions)[0]
        assert top.words == ["ab"]
        assert top.am_score == pytest.approx(4 * math.log(0.99), abs=1e-4)
        assert top.tokens == [2, 3]


def peaky(sequence: list[int], sure: float = 0.9) -> np.ndarray:
    probs = np.full((len(sequence), len(TOKENS)), (1 - sure) / (len(TOKENS) - 1))
    for t, k in enumerate(sequence):
        probs[t, k] = sure
    return np.log(probs).astype(np.float32)


def test_output_is_made_of_lexicon_words_only(decoder) -> None:
    # greedy reads "c ba" and "cba" is not a word: the search must explain it with words
    emissions = peaky([4, 1, 3, 0, 2, 0])
    for h in decoder.with_options(DecoderOptions(lm_weight=0.0, nbest=5)).decode(emissions):
        assert all(w in LEXICON for w in h.words)
    assert decoder.with_options(DecoderOptions(lm_weight=0.0)).decode(emissions)[0].words == [
        "c",
        "ba",
    ]


def test_lm_weight_moves_an_acoustically_close_choice_towards_the_lm(decoder) -> None:
    # "ab", a word gap, then two frames each slightly more blank than b / a: acoustically "ab"
    # beats "ab ba" by a little.
    probs = np.full((5, len(TOKENS)), 0.02)
    probs[0, 2] = probs[1, 3] = probs[2, SIL] = 0.92  # a b <space>
    probs[3, 0], probs[3, 3] = 0.5, 0.42  # blank or b
    probs[4, 0], probs[4, 2] = 0.5, 0.42  # blank or a
    emissions = np.log(probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    # LM: "ab ba" -> -0.3 -0.1 -0.05 = -0.45; "ab" -> -0.3 - 0.45 = -0.75 (log10): LM likes "ab ba"
    assert lm_log10(("ab", "ba")) > lm_log10(("ab",))
    choice = {}
    for weight in (0.0, 2.0):
        options = DecoderOptions(beam_size=100, lm_weight=weight)
        choice[weight] = decoder.with_options(options).decode(emissions)[0].words
    assert choice[0.0] == ["ab"]
    assert choice[2.0] == ["ab", "ba"]
    # a word penalty undoes it
    options = DecoderOptions(beam_size=100, lm_weight=2.0, word_score=-3.0)
    assert decoder.with_options(options).decode(emissions)[0].words == ["ab"]


def test_entries_with_units_the_model_lacks_are_reported_and_left_out(arpa, caplog) -> None:
    lexicon = dict(LEXICON)
    lexicon["xa"] = [["x", "a"]]
    lexicon["ab"] = [["a", "b"], ["a", "y"]]  # one of two pronunciations is unusable
    with caplog.at_level(logging.WARNING, logger="asr.decoding.lexicon_beam"):
        decoder = LexiconDecoder(TOKENS, lexicon, arpa)
    assert decoder.report.entries_skipped == 2
    assert decoder.report.words_skipped == ["xa"]
    assert decoder.report.bad_units == ["y", "x"]
    lines = [r.getMessage() for r in caplog.records if "units the model" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("lexicon: 2 pronunciations (1 words")
    assert decoder.decode(peaky([2, 3, 0]))[0].words == ["ab"]


def test_lexicon_words_missing_from_the_lm_are_counted(decoder, arpa) -> None:
    assert decoder.report.words_not_in_lm == ["cab"]
    assert arpa_unigrams(arpa) == {"<unk>", "<s>", "</s>", "ab", "ba", "c"}
    # "cab" is decodable and scored with the LM's <unk>
    hyp = decoder.with_options(DecoderOptions(lm_weight=0.0)).decode(peaky([4, 2, 0, 3]))[0]
    assert hyp.words == ["cab"]
    assert hyp.lm_score == pytest.approx(lm_log10(("zzz",)) * math.log(10), abs=1e-3)


def test_lexicon_without_an_lm_and_empty_or_misshapen_input(arpa) -> None:
    decoder = LexiconDecoder(TOKENS, LEXICON, None, DecoderOptions(nbest=3))
    hyps = decoder.decode(peaky([3, 0, 2, 1, 4]))
    assert hyps[0].words == ["ba", "c"] and hyps[0].lm_score == 0.0
    assert decoder.decode(np.zeros((0, len(TOKENS)), dtype=np.float32))[0].words == []
    with pytest.raises(ConfigError, match="do not match the 5 tokens"):
        decoder.decode(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ConfigError, match="needs a lexicon, a language model"):
        LexiconDecoder(TOKENS, None, None)
    with pytest.raises(ConfigError, match="beam size 0"):
        LexiconDecoder(TOKENS, LEXICON, None, DecoderOptions(beam_size=0))


CHAR_ARPA = """\\data\\
ngram 1=7
ngram 2=3

\\1-grams:
-1.5\t<unk>
-99\t<s>\t-0.2
-1.0\t</s>
-0.9\ta\t-0.1
-0.9\tb\t-0.1
-0.9\tc\t-0.1
-0.9\t<space>\t-0.1

\\2-grams:
-0.05\ta b
-0.05\tb <space>
-0.05\t<space> a

\\end\\
"""


def test_lexicon_free_search_with_a_character_lm(tmp_path) -> None:
    lm = tmp_path / "chars.arpa"
    lm.write_text(CHAR_ARPA)
    # a, then a frame torn between b and c (c slightly ahead): the char LM likes "ab"
    probs = np.full((3, len(TOKENS)), 0.02)
    probs[0, 2] = 0.92
    probs[1, 3], probs[1, 4] = 0.44, 0.48
    probs[2, 0] = 0.92
    emissions = np.log(probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    text = {}
    for weight in (0.0, 1.0):
        decoder = LexiconDecoder(TOKENS, None, lm, DecoderOptions(lm_weight=weight, nbest=4))
        hyps = decoder.decode(emissions)
        text[weight] = hyps[0].text
        assert len({h.text for h in hyps}) == len(hyps)
    assert text == {0.0: "ac", 1.0: "ab"}
    # a space is a word gap
    decoder = LexiconDecoder(TOKENS, None, lm, DecoderOptions(lm_weight=0.5))
    assert decoder.decode(peaky([2, 3, 1, 2, 0]))[0].words == ["ab", "a"]


def test_a_broken_lm_file_is_one_error_naming_it(tmp_path) -> None:
    broken = tmp_path / "broken.arpa"
    broken.write_text(ARPA.replace("-0.6\tab\t-0.3", "oops\tab\t-0.3"))
    with pytest.raises(AsrError, match=r"broken.arpa:1[0-9]: ") as info:  # names the line
        LexiconDecoder(TOKENS, LEXICON, broken)
    assert "\n" not in str(info.value)
    with pytest.raises(AsrError, match="missing.arpa: language model file not found"):
        LexiconDecoder(TOKENS, LEXICON, tmp_path / "missing.arpa")
