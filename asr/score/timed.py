"""Time-mediated alignment (sclite ``-T``) and sclite's assignment of CTM words to STM segments.

With ``-T`` sclite aligns a CTM hypothesis to a CTM reference with word-to-word distances taken
from the word times instead of its usual 0/3/4 weights. This module reproduces what SCTK 2.4
does, read from its source (usnistgov/SCTK, ``src/sclite``):

* Cost (``word.c: wwd_time_WORD``): inserting or deleting a word costs its duration
  ``T2 - T1``; pairing a reference word with a hypothesis word costs
  ``|T1r - T1h| + |T2r - T2h|``, plus 0.001 when the words differ, so among equal timings a
  match is preferred to a substitution. ``T2 = start + duration`` in double precision, but the
  function returns a C ``float`` and the DP cells are ``float`` too, so every cost is rounded
  to single precision and every cell is a single-precision sum; ties are decided on those
  rounded values (done here with numpy float32, which rounds the same way).
* DP and tie-breaking (``net_dp.c: calculate_internal_cells``): cell ``[a][b]`` (a reference
  words, b hypothesis words) takes the substitution/match if its cost is ``<=`` both others,
  else the deletion if it is ``<`` the insertion, else the insertion. Row 0 and column 0 are
  sums of insertions and deletions. The traceback starts at ``[n][m]``.
* Afterwards (``path.c: sort_PATH_time_marks``) every maximal run of consecutive deletions
  and insertions is stably sorted by the words' start times.
* A CTM file (one channel of it) is not aligned in one piece: ``ctm2ctm.c: align_ctm_to_ctm``
  cuts it into chunks with ``chop_WTOKE_2`` (about 50 words a side, cut where neither side has
  a word spanning the cut) and aligns each chunk on its own; ``sclite_chunks`` reproduces
  that and ``time_mediated_align`` uses it by default, so long files get sclite's counts.
  The port follows the current upstream code. The Debian/Ubuntu build (SCTK 2.4.10, 2015)
  still has a since-fixed slip in one branch of ``chop_WTOKE_2``: it takes a hypothesis
  word's end as ``hyp t1 + ref->word[Hend].dur``, the duration of whichever reference word
  sits at the hypothesis word's index in the whole file. With that slip emulated the two
  agree chunk for chunk; without it a cut can land one word apart where an overlap test is
  within rounding of zero (tests/test_score_formats.py uses equal durations there).

Not reproduced: CTM alternations (``<ALT_BEGIN>``), the null word ``@`` (sclite gives it a
0.001 cost and drops it from the alignment), and sclite's editing of word spellings (a trailing
``*`` removed, text after ``;`` taken as tags). The readers in ``asr.score.formats`` reject
alternations; the other two are left as ordinary words.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asr.score.formats import Segment, TimedWord, Transcripts
from asr.score.result import ScoreError

# sclite's first try at a chunk length (ctm2ctm.c: base_len), doubled while no cut is found.
_CHUNK_WORDS = 50

# Back-pointer codes in the DP.
_SUB, _DEL, _INS = 0, 1, 2


def time_mediated_align(
    ref_words: Sequence[TimedWord], hyp_words: Sequence[TimedWord], *, chunked: bool = True
) -> str:
    """Edit codes (C/S/D/I, one per step) for sclite's time-mediated alignment (``-T``).

    ``ref_words`` and ``hyp_words`` are ``(word, start, end)`` triples of one file and channel,
    sorted by start time. With ``chunked`` (the default) the words are first cut into chunks
    exactly as sclite cuts a CTM file (``sclite_chunks``) and each chunk is aligned alone;
    ``chunked=False`` aligns everything in one DP.
    """
    if not chunked:
        return _align_chunk(ref_words, hyp_words)
    return "".join(
        _align_chunk(ref_words[r0:r1], hyp_words[h0:h1])
        for r0, r1, h0, h1 in sclite_chunks(ref_words, hyp_words)
    )


def _align_chunk(ref: Sequence[TimedWord], hyp: Sequence[TimedWord]) -> str:
    n, m = len(ref), len(hyp)
    if n == 0 or m == 0:
        return "D" * n + "I" * m
    ref_start = np.array([w[1] for w in ref], dtype=np.float64)
    ref_end = np.array([w[2] for w in ref], dtype=np.float64)
    hyp_start = np.array([w[1] for w in hyp], dtype=np.float64)
    hyp_end = np.array([w[2] for w in hyp], dtype=np.float64)
    del_cost = (ref_end - ref_start).astype(np.float32)
    ins_cost = (hyp_end - hyp_start).astype(np.float32)

    # Pair costs, summed left to right in double as the C expression is, then rounded once.
    ref_ids, hyp_ids = _word_ids(ref, hyp)
    pair = np.abs(ref_start[:, None] - hyp_start[None, :]) + np.abs(
        ref_end[:, None] - hyp_end[None, :]
    )
    pair = (pair + np.where(ref_ids[:, None] == hyp_ids[None, :], 0.0, 0.001)).astype(np.float32)

    # The DP runs over anti-diagonals d = a + b, each one a few vector operations. Both the
    # cells and the pair costs are stored skewed, row d holding cell (a, d - a) at column a, so
    # every operand of a diagonal is a contiguous slice.
    diagonals = n + m + 1
    cells = np.zeros((diagonals, n + 1), dtype=np.float32)
    back = np.full((diagonals, n + 1), _SUB, dtype=np.int8)
    skewed_pair = np.zeros((diagonals, n + 1), dtype=np.float32)
    for a in range(1, n + 1):  # cells (a, 1..m) lie on diagonals a+1..a+m, column a
        skewed_pair[a + 1 : a + m + 1, a] = pair[a - 1]
    ins_reversed = ins_cost[::-1].copy()  # hypothesis word d - a, for rising a, is a slice

    # Margins: row 0 (insertions only) and column 0 (deletions only), summed in float32.
    total = np.float32(0.0)
    for b in range(1, m + 1):
        total = np.float32(total + ins_cost[b - 1])
        cells[b, 0] = total
        back[b, 0] = _INS
    total = np.float32(0.0)
    for a in range(1, n + 1):
        total = np.float32(total + del_cost[a - 1])
        cells[a, a] = total
        back[a, a] = _DEL

    for d in range(2, n + m + 1):
        lo, hi = max(1, d - m), min(n, d - 1)
        if lo > hi:
            continue
        sub = cells[d - 2, lo - 1 : hi] + skewed_pair[d, lo : hi + 1]
        dele = cells[d - 1, lo - 1 : hi] + del_cost[lo - 1 : hi]
        ins = cells[d - 1, lo : hi + 1] + ins_reversed[m - d + lo : m - d + hi + 1]
        take_sub = (sub <= dele) & (sub <= ins)
        take_del = ~take_sub & (dele < ins)
        cells[d, lo : hi + 1] = np.where(take_sub, sub, np.where(take_del, dele, ins))
        back[d, lo : hi + 1] = np.where(take_sub, _SUB, np.where(take_del, _DEL, _INS))

    # Traceback from (n, m); steps collected backwards with the index of the word they belong
    # to, for the sort of deletion/insertion runs below.
    steps: list[tuple[str, float]] = []
    a, b = n, m
    while a > 0 or b > 0:
        move = back.item(a + b, a)
        if move == _SUB:
            a -= 1
            b -= 1
            steps.append(("C" if ref_ids[a] == hyp_ids[b] else "S", 0.0))
        elif move == _DEL:
            a -= 1
            steps.append(("D", ref[a][1]))
        else:
            b -= 1
            steps.append(("I", hyp[b][1]))
    steps.reverse()
    return _sort_gap_runs(steps)


def _word_ids(ref: Sequence[TimedWord], hyp: Sequence[TimedWord]) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids for the words, equal exactly where the spellings are equal."""
    vocab: dict[str, int] = {}
    ref_ids = np.array([vocab.setdefault(w[0], len(vocab)) for w in ref], dtype=np.int64)
    hyp_ids = np.array([vocab.setdefault(w[0], len(vocab)) for w in hyp], dtype=np.int64)
    return ref_ids, hyp_ids


def _sort_gap_runs(steps: list[tuple[str, float]]) -> str:
    """Stable-sort each run of consecutive D/I steps by start time (sort_PATH_time_marks)."""
    codes: list[str] = []
    run: list[tuple[str, float]] = []
    for step in steps:
        if step[0] in "DI":
            run.append(step)
            continue
        if run:
            codes.extend(code for code, _ in sorted(run, key=lambda s: s[1]))
            run = []
        codes.append(step[0])
    codes.extend(code for code, _ in sorted(run, key=lambda s: s[1]))
    return "".join(codes)


# ---------------------------------------------------------------------------------------------
# sclite's chunking of a CTM channel (ctm2ctm.c: chop_WTOKE_2), ported line by line with its
# 1-based word indices so the index arithmetic can be checked against the C.


def _overlap(s1_t1: float, s1_t2: float, s2_t1: float, s2_t2: float) -> float:
    """ctm2ctm.c: overlap(); negative when the two time spans do not overlap.

    (The C's first two cases are always overwritten by the last two, so only those remain.)
    """
    if s1_t1 < s2_t1:
        return (s1_t2 - s2_t1) if s1_t2 < s2_t2 else (s2_t2 - s2_t1)
    return (s1_t2 - s1_t1) if s1_t2 < s2_t2 else (s2_t2 - s1_t1)


def _chop(
    r1: list[float],
    r2: list[float],
    h1: list[float],
    h2: list[float],
    rstart: int,
    hstart: int,
    rendconv: int,
    hendconv: int,
    max_words: int,
) -> tuple[int, int] | None:
    """One cut: the last reference and hypothesis word indices of the chunk, or None.

    ``r1``/``r2`` (``h1``/``h2``) are the start and end times with a dummy at index 0.
    """
    if rstart > rendconv and hstart > hendconv:
        return None
    if rendconv - rstart < max_words and hendconv - hstart < max_words:
        return rendconv, hendconv
    rend = min(rstart + max_words, rendconv)
    hend = min(hstart + max_words, hendconv)

    # Synchronise the two ends (no alternations, so none of the C's skipping of them).
    if r1[rend] > h1[hend]:
        while (
            rend >= rstart
            and r1[rend] > h1[hend]
            and _overlap(r1[rend], r2[rend], h1[hend], h2[hend]) < 0.0
        ):
            rend -= 1
    elif r1[rend] < h1[hend]:
        while (
            hend >= hstart
            and r1[rend] < h1[hend]
            and _overlap(r1[rend], r2[rend], h1[hend], h2[hend]) < 0.0
        ):
            hend -= 1

    # Search backwards for a gap in the reference that overlaps a gap in the hypothesis.
    while rend > rstart and hend > hstart:
        rgap_t1 = r2[rend]
        rgap_t2 = 999999.99 if rend == rendconv else r1[rend + 1]
        hgap_t1 = h2[hend]
        hgap_t2 = 999999.99 if hend == hendconv else h1[hend + 1]
        if _overlap(rgap_t1, rgap_t2, hgap_t1, hgap_t2) >= 0.0:
            return rend, hend
        if r1[rend] > h1[hend]:
            if rend > rstart:
                rend -= 1
            while (
                hend >= hstart
                and r1[rend] < h1[hend]
                and _overlap(r1[rend], r2[rend], h1[hend], h2[hend]) < 0.0
            ):
                hend -= 1
        else:
            if hend > hstart:
                hend -= 1
            while (
                rend >= rstart
                and r1[rend] > h1[hend]
                and _overlap(r1[rend], r2[rend], h1[hend], h2[hend]) < 0.0
            ):
                rend -= 1
    if rend > rstart or hend > hstart:
        return rend, hend
    return None


def sclite_chunks(
    ref_words: Sequence[TimedWord], hyp_words: Sequence[TimedWord]
) -> list[tuple[int, int, int, int]]:
    """The chunks sclite aligns separately for one file/channel of a CTM-vs-CTM scoring.

    Returns ``(ref_begin, ref_end, hyp_begin, hyp_end)`` Python slice bounds, in order,
    covering both word lists. sclite names chunk k of file F, channel C ``F-C-%04d``.
    When one side has no words at all sclite cannot score the file; here it is one chunk.
    """
    n, m = len(ref_words), len(hyp_words)
    if n == 0 or m == 0:
        return [(0, n, 0, m)]
    r1 = [0.0] + [w[1] for w in ref_words]
    r2 = [0.0] + [w[2] for w in ref_words]
    h1 = [0.0] + [w[1] for w in hyp_words]
    h2 = [0.0] + [w[2] for w in hyp_words]
    chunks = []
    ref_begin, hyp_begin = 1, 1
    while ref_begin <= n or hyp_begin <= m:
        base_len = _CHUNK_WORDS
        while True:
            cut = _chop(r1, r2, h1, h2, ref_begin, hyp_begin, n, m, base_len)
            if cut is not None:
                break
            base_len *= 2
        ref_end, hyp_end = cut
        # Slices of the 0-based lists: words ref_begin..ref_end (1-based, inclusive).
        chunks.append(
            (ref_begin - 1, max(ref_end, ref_begin - 1), hyp_begin - 1, max(hyp_end, hyp_begin - 1))
        )
        ref_begin, hyp_begin = ref_end + 1, hyp_end + 1
    return chunks


# ---------------------------------------------------------------------------------------------
# CTM hypothesis words into STM reference segments (stm2ctm.c: segment_hyp_for_utt)


def segment_ctm_by_stm(stm: Transcripts, ctm: Transcripts) -> Transcripts:
    """Split a CTM hypothesis into the STM reference's segments, as sclite does.

    Per file and channel, the segments in order of start time (sclite takes them in file
    order; NIST STM files are sorted so) each take the next hypothesis words, in time order,
    whose midpoint ``start + duration / 2`` is before the segment's end; the last segment of
    the channel takes all the words left. So words before the first segment or between
    segments go to the next segment. sclite reads STM times as C ``float``: the end times are
    rounded to single precision here too before the comparison, which decides ties.
    Segments marked ``ignore_time_segment_in_scoring`` take their words like the others, and
    the words are dropped with the segment.

    Returns ``Transcripts`` keyed by the STM's (scored) utterance ids, with the hypothesis
    words' times; segments with no words get "". CTM words on a file/channel the STM does not
    have are an error.
    """
    if stm.format != "stm" or stm.segments is None:
        raise ValueError(f"{stm.path}: segment_ctm_by_stm needs an STM reference")
    if ctm.format != "ctm" or ctm.times is None:
        raise ValueError(f"{ctm.path}: segment_ctm_by_stm needs a CTM hypothesis")

    groups: dict[tuple[str, str], list[Segment]] = {}
    for seg in stm.segments:
        groups.setdefault((seg.file, seg.channel), []).append(seg)
    words_of: dict[tuple[str, str], tuple[list[TimedWord], list[float]]] = {}
    for utt, (file, channel) in ctm.channels.items():
        if (file, channel) not in groups:
            raise ScoreError(
                f"{ctm.path}: file {file!r} channel {channel!r} has no segments in {stm.path}"
            )
        durations = ctm.durations[utt] if ctm.durations else [e - s for _, s, e in ctm.times[utt]]
        words_of[(file, channel)] = (ctm.times[utt], durations)

    assigned: dict[str, tuple[list[TimedWord], list[float]]] = {}
    for key, segments in groups.items():
        words, durations = words_of.get(key, ([], []))
        ordered = sorted(segments, key=lambda s: s.start)
        i = 0
        for k, seg in enumerate(ordered):
            if k == len(ordered) - 1:
                j = len(words)
            else:
                end = float(np.float32(seg.end))
                j = i
                while j < len(words) and words[j][1] + durations[j] / 2.0 < end:
                    j += 1
            assigned[seg.utt_id] = (words[i:j], durations[i:j])
            i = j

    texts: dict[str, str] = {}
    times: dict[str, list[TimedWord]] = {}
    durations_out: dict[str, list[float]] = {}
    for seg in stm.segments:
        if seg.ignored:
            continue
        words, durations = assigned[seg.utt_id]
        texts[seg.utt_id] = " ".join(w[0] for w in words)
        times[seg.utt_id] = words
        durations_out[seg.utt_id] = durations
    return Transcripts(
        ctm.path,
        "ctm",
        texts,
        times,
        durations_out,
        speakers=dict(stm.speakers),
        channels={u: stm.channels[u] for u in texts},
    )
