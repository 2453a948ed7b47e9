"""Is one system's error rate really lower than another's? Bootstrap intervals and paired tests.

- :func:`bootstrap_interval`: a percentile bootstrap confidence interval of one corpus error
  rate, resampling utterances.
- :func:`paired_bootstrap`: Bisani & Ney, "Bootstrap estimates for confidence intervals in ASR
  performance evaluation" (ICASSP 2004): both systems' utterances resampled jointly, giving an
  interval of the difference WER_B - WER_A and the "probability of improvement" of B over A.
- :func:`mapsswe`: NIST's Matched-Pair Sentence-Segment Word Error test (Gillick & Cox 1989),
  computed exactly as SCTK's ``sc_stats -t mapsswe`` does (src/sclite/mtchprs.c).
- :func:`sign_test`: an exact two-sided binomial sign test over utterances.

Every difference is taken as B minus A, so a negative number means B makes fewer errors.
Only numpy and the standard library are used (the normal tail is ``math.erfc``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from asr.score.result import Alignment, ScoreError, ScoreResult

# sc_stats calls do_mtch_pairs(..., "2", ...): a segment ends after two reference words that
# both systems got right (mtchprs.c, DEFAULT_MIN_NUM_GOOD).
MAPSSWE_MIN_GOOD = 2

# Bootstrap samples are drawn this many numbers at a time, which bounds memory (~16 MB/array).
_CHUNK_ELEMENTS = 1 << 21
# Resampling n utterances costs about n random indices and gathers per sample; drawing counts
# for K groups of identical utterances costs about K binomial draws, each roughly ten times
# dearer. Below this ratio the grouped (multinomial) sampler is used.
_GROUPED_RATIO = 10
# Bootstrap chunks run in at most this many threads.
_MAX_THREADS = 8
# Up to this many differing utterances the binomial tail is summed in exact integers.
_EXACT_BINOMIAL_LIMIT = 20_000


@dataclass(frozen=True)
class Interval:
    """A corpus error rate and its bootstrap confidence interval, all in percent."""

    wer: float
    low: float
    high: float


@dataclass(frozen=True)
class PairedBootstrap:
    """Bisani & Ney's paired bootstrap of two systems on the same utterances.

    ``delta = wer_b - wer_a`` in percentage points, ``low``/``high`` its interval;
    ``p_b_better`` is the share of bootstrap samples in which B made fewer errors than A (their
    "probability of improvement").
    """

    wer_a: float
    wer_b: float
    delta: float
    low: float
    high: float
    p_b_better: float


@dataclass(frozen=True)
class Mapsswe:
    """The matched-pair sentence-segment word error test.

    ``mean_diff`` is the mean over segments of (B's errors - A's errors) and ``std`` its sample
    standard deviation; ``z = mean_diff / (std / sqrt(segments))``; ``p`` is two-sided. sc_stats
    prints the mean and Z of A - B, i.e. the same numbers with the opposite sign.
    """

    segments: int
    mean_diff: float
    std: float
    z: float
    p: float


@dataclass(frozen=True)
class SignTest:
    """Utterances where A made fewer errors, where B did, where they tied; two-sided p."""

    a_better: int
    b_better: int
    ties: int
    p: float


# ---------------------------------------------------------------------------------------------
# Input checks


def _counts(values: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one count per utterance (a 1-D array)")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(array == np.round(array)):
            raise ValueError(f"{name} must hold whole numbers")
    array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise ValueError(f"{name} must not be negative")
    return array


def _same_length(*arrays: tuple[str, np.ndarray]) -> None:
    (first_name, first), *rest = arrays
    for name, array in rest:
        if len(array) != len(first):
            raise ValueError(
                f"{name} has {len(array)} utterances but {first_name} has {len(first)}"
            )


def _check_options(samples: int, confidence: float) -> None:
    if samples < 1:
        raise ValueError(f"samples must be at least 1, not {samples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, not {confidence}")


# ---------------------------------------------------------------------------------------------
# Bootstrap


def _pack(values: np.ndarray) -> tuple[np.ndarray, list[int], list[int]] | None:
    """Columns shifted to start at 0 and packed into one int64 per row, if no field can overflow.

    Summing the packed numbers over n rows sums every column at once (one gather instead of m),
    as long as each column's sum fits in its bit field. Returns (packed, shifts, minimums).
    """
    n = len(values)
    minimums = [int(v) for v in values.min(axis=0)]
    widths = [
        int(n * (int(v) - low)).bit_length()
        for v, low in zip(values.max(axis=0), minimums, strict=True)
    ]
    if sum(widths) > 62:
        return None
    shifts = [sum(widths[:j]) for j in range(len(widths))]
    packed = np.zeros(n, dtype=np.int64)
    for j, (shift, low) in enumerate(zip(shifts, minimums, strict=True)):
        packed += (values[:, j] - low) << shift
    return packed, shifts, minimums


def _draw_indices(
    values: np.ndarray,
    packing: tuple[np.ndarray, list[int], list[int]] | None,
    size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Column sums of ``size`` resamples, drawing n utterance indices per resample."""
    n, m = values.shape
    index = rng.integers(0, n, size=(size, n), dtype=np.int32 if n < 2**31 else np.int64)
    if packing is None:
        return np.stack([values[:, j][index].sum(axis=1) for j in range(m)], axis=1)
    packed, shifts, minimums = packing
    total = packed[index].sum(axis=1)
    sums = np.empty((size, m), dtype=np.int64)
    for j, (shift, low) in enumerate(zip(shifts, minimums, strict=True)):
        width = (shifts[j + 1] if j + 1 < m else 63) - shift
        sums[:, j] = ((total >> shift) & ((1 << width) - 1)) + n * low
    return sums


def _resampled_sums(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Column sums of ``samples`` bootstrap resamples of the rows of ``values`` (n x m ints).

    The statistics only depend on how often each distinct row is drawn, so when the n
    utterances fall into few distinct rows (the usual case: small error and word counts), the
    counts per distinct row are drawn from the multinomial distribution they follow, which is
    the same bootstrap at a fraction of the cost; otherwise utterance indices are drawn.
    Samples are drawn in chunks, each from its own generator spawned from ``seed``, so chunks
    can run in threads and the result does not depend on how many there are.
    """
    n, m = values.shape
    rows, counts = np.unique(values, axis=0, return_counts=True)
    grouped = len(rows) * _GROUPED_RATIO <= n
    chunk = max(1, _CHUNK_ELEMENTS // (len(rows) if grouped else n))
    starts = range(0, samples, chunk)
    generators = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(starts))]
    shares = counts / n
    packing = None if grouped else _pack(values)

    def draw(job: tuple[int, np.random.Generator]) -> np.ndarray:
        start, rng = job
        size = min(chunk, samples - start)
        if grouped:
            return rng.multinomial(n, shares, size=size) @ rows
        return _draw_indices(values, packing, size, rng)

    workers = min(_workers(), len(starts))
    if workers <= 1:
        return np.concatenate([draw(job) for job in zip(starts, generators, strict=True)])
    with ThreadPoolExecutor(workers) as pool:  # numpy drops the GIL while drawing and summing
        return np.concatenate(list(pool.map(draw, zip(starts, generators, strict=True))))


def _workers() -> int:
    try:
        return min(len(os.sched_getaffinity(0)), _MAX_THREADS)
    except AttributeError:  # not on Linux
        return min(os.cpu_count() or 1, _MAX_THREADS)


def _rate(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    """``100 * count / total`` elementwise, with ``percent``'s rule for an empty total."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = 100.0 * count / total
    # x / 0 is +-inf already; 0 / 0 (nothing to count, nothing wrong) is 0, not nan.
    rate[(total == 0) & (count == 0)] = 0.0
    return rate


def _percentiles(values: np.ndarray, probabilities: Sequence[float]) -> list[float]:
    """Linear-interpolation percentiles (numpy's default) that tolerate infinite values."""
    ordered = np.sort(values)
    out = []
    for probability in probabilities:
        position = probability * (len(ordered) - 1)
        lower, upper = math.floor(position), math.ceil(position)
        low_value, high_value = float(ordered[lower]), float(ordered[upper])
        if low_value == high_value:
            out.append(low_value)
        else:
            out.append(low_value + (high_value - low_value) * (position - lower))
    return out


def _point_rate(count: int, total: int) -> float:
    return float(_rate(np.array([count]), np.array([total]))[0])


def bootstrap_interval(
    errors: Sequence[int] | np.ndarray,
    ref_words: Sequence[int] | np.ndarray,
    *,
    samples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of the corpus error rate ``100 * sum(errors) / sum(refs)``.

    ``errors[i]`` and ``ref_words[i]`` are utterance i's error count and reference length.
    Utterances are resampled with replacement ``samples`` times; the interval holds the middle
    ``confidence`` share of the resampled rates. The same seed gives the same interval.
    """
    errors = _counts(errors, "errors")
    ref_words = _counts(ref_words, "ref_words")
    _same_length(("errors", errors), ("ref_words", ref_words))
    _check_options(samples, confidence)
    if len(errors) == 0:
        raise ValueError("no utterances to resample")
    sums = _resampled_sums(np.stack([errors, ref_words], axis=1), samples, seed)
    rates = _rate(sums[:, 0], sums[:, 1])
    tail = (1.0 - confidence) / 2.0
    low, high = _percentiles(rates, [tail, 1.0 - tail])
    return Interval(_point_rate(int(errors.sum()), int(ref_words.sum())), low, high)


def paired_bootstrap(
    errors_a: Sequence[int] | np.ndarray,
    errors_b: Sequence[int] | np.ndarray,
    ref_words: Sequence[int] | np.ndarray,
    *,
    samples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedBootstrap:
    """Bisani & Ney's paired bootstrap: how much lower (or higher) is B's error rate than A's?

    Both systems' per-utterance error counts (same utterances, same order) are resampled with
    the same utterance draws. ``delta`` is WER_B - WER_A in percentage points with its
    percentile interval; ``p_b_better`` is the share of samples where B has fewer errors.
    """
    errors_a = _counts(errors_a, "errors_a")
    errors_b = _counts(errors_b, "errors_b")
    ref_words = _counts(ref_words, "ref_words")
    _same_length(("errors_a", errors_a), ("errors_b", errors_b), ("ref_words", ref_words))
    _check_options(samples, confidence)
    if len(errors_a) == 0:
        raise ValueError("no utterances to resample")
    # Only the error difference and the reference length enter the statistics: fewer distinct
    # rows than (errors_a, errors_b, ref_words), so the grouped sampler applies more often.
    sums = _resampled_sums(np.stack([errors_b - errors_a, ref_words], axis=1), samples, seed)
    deltas = _rate(sums[:, 0], sums[:, 1])
    tail = (1.0 - confidence) / 2.0
    low, high = _percentiles(deltas, [tail, 1.0 - tail])
    total = int(ref_words.sum())
    wer_a = _point_rate(int(errors_a.sum()), total)
    wer_b = _point_rate(int(errors_b.sum()), total)
    delta = _point_rate(int(errors_b.sum() - errors_a.sum()), total)
    return PairedBootstrap(wer_a, wer_b, delta, low, high, float(np.mean(sums[:, 0] < 0)))


# ---------------------------------------------------------------------------------------------
# MAPSSWE


def _paired_alignments(
    result_a: ScoreResult, result_b: ScoreResult
) -> tuple[list[Alignment], list[Alignment]]:
    """The two results' alignments in A's order, after checking they score the same refs."""
    name_a, name_b = result_a.hyp_name, result_b.hyp_name
    by_id_b: dict[str, Alignment] = {}
    for a in result_b.utterances:
        if a.utt_id in by_id_b:
            raise ScoreError(f"{name_b}: utterance {a.utt_id!r} appears twice")
        by_id_b[a.utt_id] = a
    seen: set[str] = set()
    paired_b = []
    for a in result_a.utterances:
        if a.utt_id in seen:
            raise ScoreError(f"{name_a}: utterance {a.utt_id!r} appears twice")
        seen.add(a.utt_id)
        b = by_id_b.get(a.utt_id)
        if b is None:
            raise ScoreError(f"{name_b}: utterance {a.utt_id!r} of {name_a} is missing")
        if b.ref != a.ref:
            raise ScoreError(
                f"{name_b}: utterance {a.utt_id!r} has a different reference than in {name_a}"
            )
        paired_b.append(b)
    if len(seen) != len(by_id_b):
        extra = next(u for u in by_id_b if u not in seen)
        raise ScoreError(f"{name_b}: utterance {extra!r} is not in {name_a}")
    return list(result_a.utterances), paired_b


def _error_events(alignments: list[Alignment]) -> tuple[np.ndarray, np.ndarray]:
    """(utterance index, position) of every error step, in alignment order.

    Positions interleave gaps and reference words: reference word j is 2j + 1, and the gap
    before it (where insertions sit) is 2j; the gap after the last word is 2 * len(ref).
    """
    codes = "".join(a.codes for a in alignments)
    if not codes:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    steps = np.frombuffer(codes.encode("ascii"), dtype=np.uint8)
    lengths = np.fromiter((len(a.codes) for a in alignments), np.int64, len(alignments))
    ref_lengths = np.fromiter((len(a.ref) for a in alignments), np.int64, len(alignments))
    utterance = np.repeat(np.arange(len(alignments)), lengths)
    is_ref = steps != ord("I")
    refs_before = np.cumsum(is_ref) - is_ref  # reference words before each step, corpus-wide
    utterance_start = np.cumsum(ref_lengths) - ref_lengths
    position = 2 * (refs_before - np.repeat(utterance_start, lengths)) + is_ref
    wrong = steps != ord("C")
    return utterance[wrong], position[wrong]


def _segment_differences(result_a: ScoreResult, result_b: ScoreResult, min_good: int) -> np.ndarray:
    """Per MAPSSWE segment: B's errors minus A's, with sc_stats' segmentation.

    SCTK's test_comp_sents (src/sclite/mtchprs.c) walks both alignments one reference word at a
    time; an insertion in either system, or a reference word either system got wrong, opens (or
    continues) a segment, which is closed by ``min_good`` consecutive reference words that both
    got right with no insertion between them; the end of an utterance closes any open segment
    (including one opened by trailing insertions); segments where neither system erred are
    dropped. So two error steps of the same utterance fall in the same segment exactly when
    fewer than ``min_good`` reference words lie strictly between them, which is what is
    computed here, for all utterances at once.
    """
    alignments_a, alignments_b = _paired_alignments(result_a, result_b)
    utt_a, pos_a = _error_events(alignments_a)
    utt_b, pos_b = _error_events(alignments_b)
    utterance = np.concatenate([utt_a, utt_b])
    position = np.concatenate([pos_a, pos_b])
    from_b = np.concatenate([np.zeros(len(utt_a), bool), np.ones(len(utt_b), bool)])
    if len(utterance) == 0:
        return np.empty(0, np.int64)
    order = np.lexsort((position, utterance))
    utterance, position, from_b = utterance[order], position[order], from_b[order]
    # Reference words strictly between consecutive error positions p < q: q//2 - (p+1)//2.
    words_between = position[1:] // 2 - (position[:-1] + 1) // 2
    starts = np.ones(len(utterance), bool)
    starts[1:] = (utterance[1:] != utterance[:-1]) | (words_between >= min_good)
    segment = np.cumsum(starts) - 1
    count = int(segment[-1]) + 1
    errors_a = np.bincount(segment[~from_b], minlength=count)
    errors_b = np.bincount(segment[from_b], minlength=count)
    return errors_b - errors_a


def mapsswe(
    result_a: ScoreResult, result_b: ScoreResult, *, min_good: int = MAPSSWE_MIN_GOOD
) -> Mapsswe:
    """NIST's matched-pair sentence-segment word error test, as ``sc_stats -t mapsswe``.

    Both results must align the same reference tokens under the same utterance ids (else
    ScoreError; sc_stats instead tries to re-synchronise references that differ, which matters
    only for references with alternations). Each utterance is cut into segments bounded by
    ``min_good`` (sc_stats: 2) reference words both systems recognised; the per-segment error
    differences give ``z = mean / (std / sqrt(segments))`` (sample standard deviation, as
    sc_stats' statdist.c calc_mean_var_std_dev_Zstat) and the two-sided normal p, exact here
    (sc_stats looks the normal distribution up in a table at the tabulated z just below |z|,
    so its p is up to ~0.008 larger). Fewer than two segments, or all differences zero, give
    z = 0 and p = 1 as in sc_stats. One deliberate difference: when every segment has the same
    non-zero difference (zero variance), sc_stats reports Z = 0 ("no difference"); here z is
    +-inf and p = 0, since every segment favours the same system.
    """
    if min_good < 1:
        raise ValueError(f"min_good must be at least 1, not {min_good}")
    diffs = _segment_differences(result_a, result_b, min_good).astype(np.float64)
    segments = len(diffs)
    if segments == 0:
        return Mapsswe(0, 0.0, 0.0, 0.0, 1.0)
    mean = float(diffs.sum() / segments)
    spread = float(np.sum((diffs - mean) ** 2))
    if spread == 0.0:
        if segments < 2 or mean == 0.0:
            return Mapsswe(segments, mean, 0.0, 0.0, 1.0)
        return Mapsswe(segments, mean, 0.0, math.copysign(math.inf, mean), 0.0)
    std = math.sqrt(spread / (segments - 1))
    z = mean / (std / math.sqrt(segments))
    return Mapsswe(segments, mean, std, z, math.erfc(abs(z) / math.sqrt(2.0)))


# ---------------------------------------------------------------------------------------------
# Sign test


def _binomial_two_sided(smaller: int, trials: int) -> float:
    """``P(X <= smaller) * 2`` for X ~ Binomial(trials, 1/2), capped at 1."""
    if trials == 0 or 2 * smaller >= trials:
        return 1.0
    if trials <= _EXACT_BINOMIAL_LIMIT:
        term = total = 1  # C(trials, 0)
        for k in range(smaller):
            term = term * (trials - k) // (k + 1)
            total += term
        return min(1.0, 2 * total / (1 << trials))  # int / int: correctly rounded
    # log C(trials, k) for k = 0..smaller, summed in log space from the largest term down.
    k = np.arange(1, smaller + 1, dtype=np.float64)
    log_terms = np.concatenate([[0.0], np.cumsum(np.log((trials - k + 1) / k))])
    top = float(log_terms[-1])
    log_tail = top + math.log(float(np.sum(np.exp(log_terms - top))))
    return min(1.0, math.exp(math.log(2.0) + log_tail - trials * math.log(2.0)))


def sign_test(
    errors_a: Sequence[int] | np.ndarray, errors_b: Sequence[int] | np.ndarray
) -> SignTest:
    """Exact two-sided sign test over utterances: does one system win more utterances?

    Utterances where both made the same number of errors are ties and left out; p is the
    binomial probability (n = utterances that differ, 1/2) of a split at least as uneven, both
    tails; 1 when no utterance differs. sc_stats' sign test (``-t sign``) is different: it
    compares per-speaker error rates and splits ties between the two sides.
    """
    errors_a = _counts(errors_a, "errors_a")
    errors_b = _counts(errors_b, "errors_b")
    _same_length(("errors_a", errors_a), ("errors_b", errors_b))
    a_better = int(np.sum(errors_a < errors_b))
    b_better = int(np.sum(errors_b < errors_a))
    ties = len(errors_a) - a_better - b_better
    p = _binomial_two_sided(min(a_better, b_better), a_better + b_better)
    return SignTest(a_better, b_better, ties, p)
