"""asr.score.significance: known cases, and NIST SCTK's sc_stats (Debian sctk) as the oracle.

The sc_stats checks take both systems' alignments from sclite's own SGML output (the file
sc_stats reads), so our MAPSSWE sees exactly the alignments sc_stats sees.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import sctk_tool

from asr.score import significance
from asr.score.result import Alignment, ScoreError, ScoreResult
from asr.score.significance import (
    Interval,
    bootstrap_interval,
    mapsswe,
    paired_bootstrap,
    sign_test,
)

# ---------------------------------------------------------------------------------------------
# Building results by hand


def _alignment(utt_id: str, ref: str, codes: str) -> Alignment:
    """An alignment of ``ref`` whose hypothesis follows ``codes`` (S: a wrong word, I: 'ins')."""
    ref_tokens = ref.split()
    hyp: list[str] = []
    i = 0
    for code in codes:
        if code == "I":
            hyp.append("ins")
            continue
        if code == "C":
            hyp.append(ref_tokens[i])
        elif code == "S":
            hyp.append("not-" + ref_tokens[i])
        i += 1
    return Alignment(utt_id, tuple(ref_tokens), tuple(hyp), codes)


def _result(rows: list[tuple[str, str, str]], name: str = "hyp") -> ScoreResult:
    return ScoreResult([_alignment(*row) for row in rows], hyp_name=name)


# Four utterances as sclite aligns them; sc_stats -t mapsswe -v reports "(# segs: 5) (mean:
# 0.400) (std dev: 0.894) (Z Stat: 1.000)" (A - B). By hand, segments (A errors, B errors):
# u1 (1,0) and (0,1); u2 (1,1); u3 (1,0); u4 (1,0) -> B - A: -1, 1, 0, -1, -1.
_TOY_A = [
    ("u1", "a b c d e f g h", "CSCCCCCC"),
    ("u2", "a b c d", "CCCCI"),
    ("u3", "x y z", "CDC"),
    ("u4", "", "I"),
]
_TOY_B = [
    ("u1", "a b c d e f g h", "CCCCCCSC"),
    ("u2", "a b c d", "CCCD"),
    ("u3", "x y z", "CCC"),
    ("u4", "", ""),
]


# ---------------------------------------------------------------------------------------------
# MAPSSWE and the sign test: hand-computed and known cases


def test_mapsswe_hand_computed() -> None:
    result = mapsswe(_result(_TOY_A, "A"), _result(_TOY_B, "B"))
    assert result.segments == 5
    assert result.mean_diff == pytest.approx(-0.4)
    assert result.std == pytest.approx(math.sqrt(0.8))  # squares 3.2 over n - 1 = 4
    assert result.z == pytest.approx(-1.0)
    assert result.p == pytest.approx(0.3173105, abs=1e-7)
    # Swapping the systems flips the signs only.
    swapped = mapsswe(_result(_TOY_B, "B"), _result(_TOY_A, "A"))
    assert (swapped.segments, swapped.mean_diff, swapped.z) == (5, 0.4, -result.z)
    # u1's two errors lie four words apart: one segment each unless 7 good words are needed.
    assert mapsswe(_result(_TOY_A), _result(_TOY_B), min_good=1).segments == 5
    merged = mapsswe(_result(_TOY_A), _result(_TOY_B), min_good=7)
    assert merged.segments == 4


def test_mapsswe_segment_boundaries() -> None:
    ref = "a b c d e f"
    cases = {
        "CSCCSC": 2,  # two good words between the errors close the first segment
        "SCSCCC": 1,  # one good word between them does not
        "SCICCCC": 1,  # an insertion between the two good words restarts the count
        "SCCICCC": 2,  # ... but one after the second good word opens a new segment
        "CCCCCCI": 1,  # a trailing insertion is a segment of its own
        "ICCCCCC": 1,
        "CCCCCC": 0,
    }
    perfect = _result([("u", ref, "CCCCCC")])
    for codes, segments in cases.items():
        got = mapsswe(_result([("u", ref, codes)]), perfect).segments
        assert got == segments, codes
    # Segments never span utterances, and one where only B errs counts too.
    two = mapsswe(
        _result([("u", ref, "CCCCCS"), ("v", ref, "CCCCCC")]),
        _result([("u", ref, "CCCCCC"), ("v", ref, "SCCCCC")]),
    )
    assert (two.segments, two.mean_diff) == (2, 0.0)


def _sc_stats_segments(codes_a: str, codes_b: str, min_good: int) -> list[int]:
    """A line-by-line port of SCTK's test_comp_sents and count_seg (src/sclite/mtchprs.c) for
    two alignments of the same reference (so without its re-synchronisation): B - A errors
    per segment."""
    n1, n2 = len(codes_a), len(codes_b)
    ind1 = ind2 = eog1 = eog2 = num_good = 0
    state = "b"
    diffs: list[int] = []

    def count_seg(beg1: int, beg2: int, end1: int, end2: int) -> None:
        err1 = sum(c != "C" for c in codes_a[max(beg1, 0) : end1 + 1])
        err2 = sum(c != "C" for c in codes_b[max(beg2, 0) : end2 + 1])
        if err1 or err2:
            diffs.append(err2 - err1)

    while ind1 < n1:
        while ind1 < n1 and codes_a[ind1] == "I":
            ind1, state = ind1 + 1, "e"
        while ind2 < n2 and codes_b[ind2] == "I":
            ind2, state = ind2 + 1, "e"
        good = ind1 < n1 and codes_a[ind1] == "C" and ind2 < n2 and codes_b[ind2] == "C"
        if state == "b":
            if good:
                eog1, eog2 = ind1, ind2
            else:
                state = "e"
        elif good:  # states e and g
            num_good = 1 if state == "e" else num_good + 1
            if num_good == min_good:
                count_seg(eog1 - (min_good - 1), eog2 - (min_good - 1), ind1, ind2)
                eog1, eog2, state = ind1, ind2, "b"
            else:
                state = "g"
        else:
            state = "e"
        ind1 += ind1 < n1
        ind2 += ind2 < n2
    if state != "b" or n2 > ind2:
        count_seg(eog1 - (min_good - 1), eog2 - (min_good - 1), n1 - 1, n2 - 1)
    return diffs


def _random_codes(rng: random.Random, words: int) -> str:
    codes = []
    for _ in range(words):
        codes.append("I" * (rng.random() < 0.15))
        codes.append(rng.choice("CCCCCCSD"))
    codes.append("I" * (rng.random() < 0.15))
    return "".join(codes)


def test_mapsswe_segments_equal_a_port_of_sc_stats_state_machine() -> None:
    rng = random.Random(0)
    for min_good in (1, 2, 3):
        rows_a, rows_b, expected = [], [], []
        for i in range(1500):
            ref = " ".join(f"w{j}" for j in range(rng.randint(0, 14)))
            codes_a = _random_codes(rng, len(ref.split()))
            codes_b = _random_codes(rng, len(ref.split()))
            rows_a.append((f"u{i}", ref, codes_a))
            rows_b.append((f"u{i}", ref, codes_b))
            expected.extend(_sc_stats_segments(codes_a, codes_b, min_good))
        got = significance._segment_differences(_result(rows_a), _result(rows_b), min_good)
        assert got.tolist() == expected, min_good
        assert len(expected) > 1500


def test_identical_systems_show_no_difference() -> None:
    rows = [
        ("u1", "a b c d e", "CSCCD"),
        ("u2", "a b c", "ICCC"),
        ("u3", "a b", "CC"),
    ]
    same = mapsswe(_result(rows, "A"), _result(rows, "B"))
    # Every segment differs by 0: no spread, z = 0 and p = 1, as in sc_stats.
    assert (same.segments, same.mean_diff, same.z, same.p) == (3, 0.0, 0.0, 1.0)
    errors = np.array([2, 1, 0, 5, 3])
    words = np.array([5, 3, 2, 9, 7])
    assert sign_test(errors, errors) == significance.SignTest(0, 0, 5, 1.0)
    paired = paired_bootstrap(errors, errors, words, samples=2000)
    assert (paired.delta, paired.low, paired.high, paired.p_b_better) == (0.0, 0.0, 0.0, 0.0)
    assert paired.wer_a == paired.wer_b == pytest.approx(100 * 11 / 26)
    empty = mapsswe(_result([]), _result([]))
    assert (empty.segments, empty.p) == (0, 1.0)


def _b_better_everywhere(seed: int) -> tuple[ScoreResult, ScoreResult]:
    """60 utterances; A gets 1-3 words wrong in each, B none."""
    rng = random.Random(seed)
    rows_a, rows_b = [], []
    for i in range(60):
        n = rng.randint(6, 20)
        codes = ["C"] * n
        for position in rng.sample(range(n), rng.randint(1, 3)):
            codes[position] = rng.choice("SD")
        ref = " ".join(f"w{j}" for j in range(n))
        rows_a.append((f"u{i}", ref, "".join(codes)))
        rows_b.append((f"u{i}", ref, "C" * n))
    return _result(rows_a, "A"), _result(rows_b, "B")


def test_b_better_on_every_utterance_is_significant() -> None:
    result_a, result_b = _b_better_everywhere(seed=1)
    errors_a = np.array([a.errors for a in result_a.utterances])
    errors_b = np.array([a.errors for a in result_b.utterances])
    words = np.array([len(a.ref) for a in result_a.utterances])
    assert np.all(errors_b < errors_a)

    test = mapsswe(result_a, result_b)
    assert test.mean_diff < 0 and test.z < 0
    assert test.p < 0.001

    sign = sign_test(errors_a, errors_b)
    assert (sign.a_better, sign.b_better, sign.ties) == (0, 60, 0)
    assert sign.p == 2.0**-59  # 2 * P(X = 0), X ~ Binomial(60, 1/2)

    paired = paired_bootstrap(errors_a, errors_b, words, samples=5000, seed=3)
    assert paired.high < 0  # the interval excludes 0
    assert paired.p_b_better == 1.0
    assert paired.delta == pytest.approx(-100 * errors_a.sum() / words.sum())
    assert paired.low <= paired.delta <= paired.high


def test_mapsswe_constant_difference_is_significant_unlike_sc_stats() -> None:
    # Every segment: A one error, B none. sc_stats' variance is 0 and it reports Z = 0 ("no
    # difference"); here the test says what it sees: every segment favours B.
    rows_a = [(f"u{i}", "a b c d", "CCSC") for i in range(10)]
    rows_b = [(f"u{i}", "a b c d", "CCCC") for i in range(10)]
    test = mapsswe(_result(rows_a), _result(rows_b))
    assert (test.segments, test.mean_diff, test.std) == (10, -1.0, 0.0)
    assert test.z == -math.inf and test.p == 0.0
    # A single segment has no spread to speak of: no verdict, as in sc_stats.
    single = mapsswe(_result(rows_a[:1]), _result(rows_b[:1]))
    assert (single.segments, single.z, single.p) == (1, 0.0, 1.0)


def test_mapsswe_needs_the_same_references() -> None:
    a = _result([("u1", "a b", "CC"), ("u2", "c", "C")], "a.txt")
    with pytest.raises(ScoreError, match=r"^b.txt: utterance 'u2' of a.txt is missing$"):
        mapsswe(a, _result([("u1", "a b", "CC")], "b.txt"))
    with pytest.raises(ScoreError, match=r"^b.txt: utterance 'u3' is not in a.txt$"):
        mapsswe(a, _result([("u1", "a b", "CC"), ("u2", "c", "C"), ("u3", "d", "C")], "b.txt"))
    with pytest.raises(ScoreError, match="'u2' has a different reference than in a.txt"):
        mapsswe(a, _result([("u1", "a b", "CC"), ("u2", "d", "C")], "b.txt"))
    with pytest.raises(ScoreError, match="'u1' appears twice"):
        mapsswe(a, _result([("u1", "a b", "CC"), ("u1", "a b", "CC")], "b.txt"))
    # Order does not matter: utterances are matched by id.
    reordered = _result([("u2", "c", "S"), ("u1", "a b", "CC")], "b.txt")
    assert mapsswe(a, reordered).mean_diff == 1.0
    with pytest.raises(ValueError):
        mapsswe(a, reordered, min_good=0)


def test_sign_test_exact_values() -> None:
    assert sign_test([1] * 10, [0] * 10).p == 2 / 1024
    # 2 against 8: 2 * (C(10,0) + C(10,1) + C(10,2)) / 2^10.
    test = sign_test([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 4], [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4])
    assert (test.a_better, test.b_better, test.ties) == (2, 8, 1)
    assert test.p == 2 * (1 + 10 + 45) / 1024
    assert sign_test([1, 0], [0, 1]).p == 1.0
    assert sign_test([], []).p == 1.0
    with pytest.raises(ValueError):
        sign_test([1, 2], [1])


def test_sign_test_large_counts_in_log_space(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [(4000, 10_000), (4900, 10_000), (0, 3000), (1450, 3001)]
    exact = [significance._binomial_two_sided(k, n) for k, n in cases]
    monkeypatch.setattr(significance, "_EXACT_BINOMIAL_LIMIT", 10)
    for (k, n), expected in zip(cases, exact, strict=True):
        got = significance._binomial_two_sided(k, n)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-300), (k, n)
    assert 0 < exact[0] < 1e-80 and exact[2] == 0.0  # 2^-2999 underflows to 0
    assert 0.01 < exact[1] < 0.1


# ---------------------------------------------------------------------------------------------
# Bootstrap


def _corpus(n: int, seed: int, rate_a: float = 0.12, rate_b: float = 0.10):
    rng = np.random.default_rng(seed)
    words = rng.integers(1, 31, n)
    return rng.binomial(words, rate_a), rng.binomial(words, rate_b), words


def test_bootstrap_interval_contains_the_point_and_narrows() -> None:
    errors, _, words = _corpus(10_000, seed=5)
    big = bootstrap_interval(errors, words, samples=2000)
    small = bootstrap_interval(errors[:100], words[:100], samples=2000)
    for interval, e, w in ((big, errors, words), (small, errors[:100], words[:100])):
        assert interval.wer == pytest.approx(100 * e.sum() / w.sum())
        assert interval.low < interval.wer < interval.high
    # 100 times the utterances: about a tenth of the width.
    assert (big.high - big.low) < (small.high - small.low) / 5


def test_bootstrap_width_matches_the_normal_approximation() -> None:
    # For a ratio of sums the bootstrap distribution is close to normal with the delta-method
    # standard error sqrt(sum((e - R w)^2)) / sum(w); a resampling bug would show here.
    errors, errors_b, words = _corpus(3000, seed=6)
    interval = bootstrap_interval(errors, words, samples=4000, confidence=0.95)
    ratio = errors.sum() / words.sum()
    se = 100 * math.sqrt(np.sum((errors - ratio * words) ** 2)) / words.sum()
    assert (interval.high - interval.low) / 2 == pytest.approx(1.96 * se, rel=0.1)
    paired = paired_bootstrap(errors, errors_b, words, samples=4000)
    diff = errors_b - errors
    delta = diff.sum() / words.sum()
    se = 100 * math.sqrt(np.sum((diff - delta * words) ** 2)) / words.sum()
    assert (paired.high - paired.low) / 2 == pytest.approx(1.96 * se, rel=0.1)
    assert paired.delta == pytest.approx(100 * delta)


def test_samplers_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    errors_a, errors_b, words = _corpus(2000, seed=7)
    monkeypatch.setattr(significance, "_GROUPED_RATIO", 0)  # draw counts per distinct row
    grouped = paired_bootstrap(errors_a, errors_b, words, samples=4000)
    monkeypatch.setattr(significance, "_GROUPED_RATIO", 10**9)  # draw utterance indices
    direct = paired_bootstrap(errors_a, errors_b, words, samples=4000)
    assert direct != grouped  # really the other sampler
    width = grouped.high - grouped.low
    assert direct.low == pytest.approx(grouped.low, abs=0.1 * width)
    assert direct.high == pytest.approx(grouped.high, abs=0.1 * width)
    assert direct.p_b_better == pytest.approx(grouped.p_b_better, abs=0.02)
    # Packing both columns in one integer is only a speed-up: the sums are the same.
    monkeypatch.setattr(significance, "_pack", lambda values: None)
    assert paired_bootstrap(errors_a, errors_b, words, samples=4000) == direct


def test_same_seed_same_answer_whatever_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    errors_a, errors_b, words = _corpus(500, seed=8)
    monkeypatch.setattr(significance, "_GROUPED_RATIO", 10**9)
    monkeypatch.setattr(significance, "_CHUNK_ELEMENTS", 5000)  # 10 samples per chunk
    first = paired_bootstrap(errors_a, errors_b, words, samples=300, seed=4)
    assert paired_bootstrap(errors_a, errors_b, words, samples=300, seed=4) == first
    assert paired_bootstrap(errors_a, errors_b, words, samples=300, seed=5) != first
    monkeypatch.setattr(significance, "_MAX_THREADS", 1)
    assert paired_bootstrap(errors_a, errors_b, words, samples=300, seed=4) == first
    one = bootstrap_interval(errors_a, words, samples=300, seed=4)
    assert bootstrap_interval(errors_a, words, samples=300, seed=4) == one


def test_empty_references_give_infinite_rates() -> None:
    # Two utterances: a quarter of the resamples hold only the empty reference (2 errors / 0).
    interval = bootstrap_interval([0, 2], [5, 0], samples=4000)
    assert interval == Interval(40.0, 0.0, math.inf)
    assert bootstrap_interval([0], [0], samples=10) == Interval(0.0, 0.0, 0.0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="ref_words has 1 utterances but errors has 2"):
        bootstrap_interval([1, 2], [3])
    with pytest.raises(ValueError, match="must not be negative"):
        bootstrap_interval([-1], [3])
    with pytest.raises(ValueError, match="whole numbers"):
        bootstrap_interval([0.5], [3])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval([1], [3], confidence=1.0)
    with pytest.raises(ValueError, match="samples"):
        paired_bootstrap([1], [1], [3], samples=0)
    with pytest.raises(ValueError, match="no utterances"):
        paired_bootstrap([], [], [])
    assert bootstrap_interval(np.array([1.0, 2.0]), [3, 3], samples=10).wer == 50.0


# ---------------------------------------------------------------------------------------------
# SCTK's sc_stats as the oracle


@pytest.fixture
def sc_stats() -> list[str]:
    return sctk_tool("sc_stats")


_WORDS = (
    "the a of to and in is it that for on was with he as i his be at by had not are but from "
    "or have an they which one you were her all she there would their we him been has when"
).split()


def _noisy(rng: random.Random, ref: list[str], rate: float) -> list[str]:
    hyp: list[str] = []
    if rng.random() < rate / 2:
        hyp.append(rng.choice(_WORDS))  # an insertion before the first word
    for word in ref:
        roll = rng.random()
        if roll < 0.4 * rate:
            hyp.append(rng.choice(_WORDS))  # substitution (or, rarely, the same word)
        elif roll < 0.7 * rate:
            pass  # deletion
        elif roll < rate:
            hyp.extend([word, rng.choice(_WORDS)])  # insertion after the word
        else:
            hyp.append(word)
    return hyp


def _two_systems(seed: int, n: int, rate_a: float, rate_b: float):
    """References of 1-25 words, two systems' hypotheses with the given error rates, plus
    empty references and empty hypotheses. Each utterance is its own speaker (``uNNNN-x``),
    so sc_stats' per-speaker sign test is a per-utterance one."""
    rng = random.Random(seed)
    refs: dict[str, list[str]] = {}
    hyps_a: dict[str, list[str]] = {}
    hyps_b: dict[str, list[str]] = {}
    for i in range(n):
        utt = f"u{i:04d}-x"
        ref = [rng.choice(_WORDS) for _ in range(rng.randint(1, 25))]
        if i % 37 == 5:
            ref = []
        refs[utt], hyps_a[utt], hyps_b[utt] = (
            ref,
            _noisy(rng, ref, rate_a),
            _noisy(rng, ref, rate_b),
        )
        if i % 41 == 7:
            hyps_a[utt] = []
        if i % 43 == 8:
            hyps_b[utt] = []
    return refs, hyps_a, hyps_b


def _write_trn(path: Path, transcripts: dict[str, list[str]]) -> None:
    path.write_text("".join(f"{' '.join(words)} ({utt})\n" for utt, words in transcripts.items()))


def _read_sgml(text: str) -> dict[str, Alignment]:
    """sclite's SGML alignments: ``C,"ref","hyp":S,"ref","hyp":D,"ref",:I,,"hyp"`` per path."""
    alignments = {}
    for match in re.finditer(r'<PATH id="\((\S+)\)"[^>]*>\n(.*?)</PATH>', text, re.S):
        utt, body = match.group(1), match.group(2).strip()
        codes, ref, hyp = [], [], []
        for step in body.split(":") if body else []:
            code, ref_word, hyp_word = step.split(",")
            codes.append(code)
            if ref_word:
                ref.append(ref_word.strip('"'))
            if hyp_word:
                hyp.append(hyp_word.strip('"'))
        alignments[utt] = Alignment(utt, tuple(ref), tuple(hyp), "".join(codes))
    return alignments


def _align_with_sclite(
    sclite: list[str], tmp_path: Path, refs: dict, hyps_a: dict, hyps_b: dict
) -> tuple[ScoreResult, ScoreResult, str]:
    """Both systems' ScoreResults with sclite's alignments, and the SGML sc_stats reads."""
    for name, transcripts in (("ref.trn", refs), ("a.trn", hyps_a), ("b.trn", hyps_b)):
        _write_trn(tmp_path / name, transcripts)
    command = sclite + ["-r", "ref.trn", "trn", "-h", "a.trn", "trn", "-h", "b.trn", "trn"]
    # -s: case-sensitive; -i spu_id: ids are speaker-utterance.
    command += ["-i", "spu_id", "-s", "-o", "sgml", "-O", "."]
    subprocess.run(command, cwd=tmp_path, capture_output=True, check=True)
    sgml = [(tmp_path / f"{name}.sgml").read_text() for name in ("a.trn", "b.trn")]
    results = []
    for name, text in zip(("a.trn", "b.trn"), sgml, strict=True):
        alignments = _read_sgml(text)
        assert sorted(alignments) == sorted(refs)
        results.append(ScoreResult([alignments[u] for u in refs], hyp_name=name))
    return results[0], results[1], sgml[0] + sgml[1]


def _run_sc_stats(sc_stats: list[str], sgml: str, *options: str) -> str:
    command = sc_stats + ["-p", *options, "-n", "-"]
    # sc_stats may leave report files in its working directory: give it a throwaway one.
    with tempfile.TemporaryDirectory() as scratch:
        return subprocess.run(
            command, input=sgml, capture_output=True, text=True, check=True, cwd=scratch
        ).stdout


def _sc_stats_mapsswe(sc_stats: list[str], sgml: str) -> tuple[int, float, float, float]:
    """sc_stats' MAPSSWE line: segments, mean and std of A - B per segment, Z (3 decimals)."""
    out = _run_sc_stats(sc_stats, sgml, "-t", "mapsswe", "-v")
    match = re.search(
        r"\(# segs: (\d+)\).*\(mean: +(\S+)\) \(std dev: +(\S+)\) \(Z Stat: +(\S+)\)", out
    )
    assert match, out
    return int(match.group(1)), float(match.group(2)), float(match.group(3)), float(match.group(4))


def _close(ours: float, printed: float) -> bool:
    """Does sc_stats' %5.3f print of a number agree with ours?"""
    return abs(ours - printed) <= 0.0005 + 1e-9


@pytest.mark.parametrize(
    ("seed", "rate_a", "rate_b"),
    [(0, 0.20, 0.12), (1, 0.15, 0.14), (2, 0.15, 0.16), (3, 0.40, 0.05)],
)
def test_mapsswe_matches_sc_stats(
    sclite: list[str], sc_stats: list[str], tmp_path: Path, seed: int, rate_a: float, rate_b: float
) -> None:
    refs, hyps_a, hyps_b = _two_systems(seed, 240, rate_a, rate_b)
    result_a, result_b, sgml = _align_with_sclite(sclite, tmp_path, refs, hyps_a, hyps_b)
    ours = mapsswe(result_a, result_b)
    segments, mean, std, z = _sc_stats_mapsswe(sc_stats, sgml)
    assert ours.segments == segments
    assert ours.segments > 400  # real-looking data: ~2 segments per utterance
    # sc_stats works with A - B, we with B - A.
    assert _close(-ours.mean_diff, mean)
    assert _close(ours.std, std)
    assert _close(-ours.z, z)

    # The p of the unified report. sc_stats looks the normal distribution up in a table at
    # the tabulated z just below |Z| (normprob), so its p is ours rounded up a little.
    unified = _run_sc_stats(sc_stats, sgml, "-t", "mapsswe", "-u")
    match = re.search(r"^\|\s+MP\s+\|\|[^|]*\|[^|]*\|\s*\S+\s+(<?[\d.]+)", unified, re.M)
    assert match, unified
    if match.group(1) == "<0.001":
        assert ours.p < 0.001
    else:
        theirs = float(match.group(1))
        assert ours.p <= theirs + 0.0005
        assert theirs <= math.erfc(max(abs(ours.z) - 0.01, 0.0) / math.sqrt(2)) + 0.0005


_EDGE_CASES = [
    # (reference, system A, system B)
    ("a b c d e f g h", "a x c d e f g h", "a b c d e f f h"),  # an error in each: 2 segments
    ("a b c d", "a b c d q", "a b c"),  # A's trailing insertion, B's final deletion
    ("a b c d", "a b c d", "a b c d z"),  # only B's trailing insertion
    ("a b c d", "z a b c d", "a b c d"),  # a leading insertion
    ("a b c d e", "a x c q d e", "a b c d e"),  # insertion between the two good words
    ("a b c d e", "x b y d e", "a b c d e"),  # one good word between two errors
    ("a b c d e f", "x b c y e f", "a b c d e f"),  # two good words between two errors
    ("a b c d e f g", "x b c d e f g", "a b c y e f g"),  # errors of A then of B
    ("a b c", "a x c", "a y c"),  # both wrong on the same word
    ("a b c d", "x b c y", "a b c d"),  # an error in the last word
    ("", "p q", ""),  # empty reference, insertions in A
    ("", "", ""),  # nothing at all
    ("a b", "", "a b"),  # empty hypothesis
    ("a b c d e f", "a b c d e f", "a b c d e f"),  # no errors
]


def test_mapsswe_segments_match_sc_stats_utterance_by_utterance(
    sclite: list[str], sc_stats: list[str], tmp_path: Path
) -> None:
    # Each case next to a carrier utterance with one segment (sc_stats crashes on none at all).
    for number, (ref, hyp_a, hyp_b) in enumerate(_EDGE_CASES):
        texts = [{f"s{number}-u": text.split()} for text in (ref, hyp_a, hyp_b)]
        for transcripts, carrier in zip(texts, ("x y z", "x q z", "x y z"), strict=True):
            transcripts["carrier-u"] = carrier.split()
        result_a, result_b, sgml = _align_with_sclite(sclite, tmp_path, *texts)
        ours = mapsswe(result_a, result_b)
        segments, mean, std, z = _sc_stats_mapsswe(sc_stats, sgml)
        case = (ref, hyp_a, hyp_b)
        assert ours.segments == segments, case
        assert _close(-ours.mean_diff, mean), case
        assert _close(ours.std, std), case
        if math.isfinite(ours.z):
            assert _close(-ours.z, z), case


def test_constant_difference_is_where_we_part_from_sc_stats(
    sclite: list[str], sc_stats: list[str], tmp_path: Path
) -> None:
    refs = {f"s{i}-u": "a b c d".split() for i in range(10)}
    hyps_a = {utt: "a b x d".split() for utt in refs}
    result_a, result_b, sgml = _align_with_sclite(sclite, tmp_path, refs, hyps_a, refs)
    assert _sc_stats_mapsswe(sc_stats, sgml) == (10, 1.0, 0.0, 0.0)  # Z = 0: "no difference"
    ours = mapsswe(result_a, result_b)
    assert (ours.segments, ours.mean_diff, ours.z, ours.p) == (10, -1.0, -math.inf, 0.0)


def _sc_stats_sign(sc_stats: list[str], sgml: str) -> tuple[int, int, int, float, str]:
    """sc_stats' sign test, each utterance its own speaker: (utterances A better, B better,
    ties, p, the system it calls X in "[X - Y]", the one with the higher rates in all)."""
    out = _run_sc_stats(sc_stats, sgml, "-t", "sign", "-v")
    counts = {sign: int(n) for sign, n in re.findall(r"= N\(([-+0])\) = +(\d+)", out)}
    # "[X - Y]" heads the sign column: N(+) counts speakers where X had the higher error rate.
    first, second = re.search(r"\[(\S+) - (\S+)\]", out).groups()
    assert {first, second} == {"a.trn", "b.trn"}
    first_worse, second_worse = counts["+"], counts["-"]
    if first == "a.trn":
        a_better, b_better = second_worse, first_worse
    else:
        a_better, b_better = first_worse, second_worse
    printed = float(re.search(r"it occurr?ing is +([\d.]+)", out).group(1))
    return a_better, b_better, counts["0"], printed, first


def _spoken_errors(refs: dict, result: ScoreResult) -> np.ndarray:
    return np.array([a.errors for a in result.utterances if refs[a.utt_id]])


def test_sign_test_counts_match_sc_stats(
    sclite: list[str], sc_stats: list[str], tmp_path: Path
) -> None:
    # sc_stats' sign test compares speakers; each utterance is its own speaker here.
    refs, hyps_a, hyps_b = _two_systems(seed=4, n=240, rate_a=0.15, rate_b=0.12)
    result_a, result_b, sgml = _align_with_sclite(sclite, tmp_path, refs, hyps_a, hyps_b)
    a_better, b_better, ties, _, _ = _sc_stats_sign(sc_stats, sgml)
    # sc_stats compares error *rates*: an empty reference is 0% whatever was inserted, a tie.
    ours = sign_test(_spoken_errors(refs, result_a), _spoken_errors(refs, result_b))
    assert (ours.a_better, ours.b_better) == (a_better, b_better)
    empty_refs = sum(1 for words in refs.values() if not words)
    assert empty_refs > 0
    assert ours.ties + empty_refs == ties
    assert ours.a_better + ours.b_better > 120


def test_sign_test_binomial_matches_sc_stats(
    sclite: list[str], sc_stats: list[str], tmp_path: Path
) -> None:
    # sc_stats hands half the ties to each side (the odd one to N(-)) and then takes the same
    # two-sided binomial tail; on those counts ours must give its p. Only 20 speakers: beyond
    # n p (1 - p) = 5 sc_stats switches to a normal approximation (statdist.c
    # compute_acc_binomial) which, in the Debian build, prints p = 0.000 (10 against 20: 0.000,
    # exactly 0.099).
    refs, hyps_a, hyps_b = _two_systems(seed=9, n=20, rate_a=0.25, rate_b=0.12)
    result_a, result_b, sgml = _align_with_sclite(sclite, tmp_path, refs, hyps_a, hyps_b)
    a_better, b_better, ties, printed, first = _sc_stats_sign(sc_stats, sgml)
    assert ties % 2 == 1 and a_better != b_better
    a_split, b_split = a_better + ties // 2, b_better + ties // 2
    # N(-), which gets the odd tie, counts the speakers where X, the worse system overall,
    # did better.
    if first == "a.trn":
        a_split += 1
    else:
        b_split += 1
    theirs = sign_test([0] * a_split + [1] * b_split, [1] * a_split + [0] * b_split)
    assert _close(theirs.p, printed)
    assert 0.0005 < printed < 0.9995  # a p that says something
