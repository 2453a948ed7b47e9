"""Word alignment as NIST sclite does it: the same weights, the same tie-breaking.

sclite (SCTK ``src/sclite/net_dp.c``) fills a dynamic-programming matrix over reference
positions ``i`` and hypothesis positions ``j``, each cell keeping the cheapest of three moves:
the diagonal (a correct word costs 0, a substitution ``sub``), a deletion from the cell above
(``dele``) and an insertion from the cell on the left (``ins``). Ties are broken when the cell
is filled (``calculate_internal_cells``): the diagonal wins if it is no dearer than both
others, else the deletion if strictly cheaper than the insertion, else the insertion. The first
row holds only insertions, the first column only deletions. The traceback
(``extract_NET_ALIGN_result``) then follows the stored choices from the last cell back to the
first. sclite's default weights are 4 for a substitution and 3 for an insertion or a deletion
(``wwd_WORD`` in ``word.c``); Kaldi's ``compute-wer`` is the same DP with all weights 1.

The work is done by the C extension ``asr.score._calign`` when it is built (one call per batch
of pairs); the pure-Python code below gives identical codes and is used otherwise. Long pairs
are aligned without a full matrix: the forward pass keeps only every k-th row of costs, and the
traceback recomputes one block of k rows at a time, which yields the same choices as the full
matrix since every cell is computed from the same neighbours by the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

try:
    from asr.score import _calign
except ImportError:  # not built (setup.py marks the extension optional): pure Python
    _calign = None

BACKEND = "python" if _calign is None else "c"

# Without a forced block size, a block of back-pointers holds about this many cells (bytes),
# and at least sqrt(rows) rows; the C extension uses the same rule.
_BLOCK_CELLS = 1 << 22


@dataclass(frozen=True)
class Costs:
    """Weights of the edit operations; a correct word always costs 0."""

    sub: int = 4
    ins: int = 3
    dele: int = 3

    def __post_init__(self) -> None:
        for name in ("sub", "ins", "dele"):
            value = getattr(self, name)
            if type(value) is not int or value < 0 or value > 1_000_000:
                raise ValueError(f"{name} cost must be an integer in 0..1000000, not {value!r}")


SCLITE_COSTS = Costs(sub=4, ins=3, dele=3)
LEVENSHTEIN_COSTS = Costs(sub=1, ins=1, dele=1)


def align(
    refs: Sequence[Sequence[str]],
    hyps: Sequence[Sequence[str]],
    costs: Costs = SCLITE_COSTS,
) -> list[str]:
    """The edit codes (one of C, S, D, I per step) turning each reference into its hypothesis.

    ``refs[k]`` and ``hyps[k]`` are token sequences (lists or tuples of strings, compared for
    exact equality). With ``SCLITE_COSTS`` the codes are the ones sclite prints for the pair.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if _calign is not None:
        return _calign.align(refs, hyps, costs.sub, costs.ins, costs.dele)
    return _align_python(refs, hyps, costs)


def _block_rows(n: int, m: int, block_rows: int) -> int:
    if block_rows > 0:
        return block_rows
    return max(math.isqrt(n) + 1, _BLOCK_CELLS // (m + 1))


def _align_python(
    refs: Sequence[Sequence[str]],
    hyps: Sequence[Sequence[str]],
    costs: Costs = SCLITE_COSTS,
    *,
    block_rows: int = 0,
) -> list[str]:
    """``align`` in pure Python; ``block_rows`` > 0 forces the checkpoint spacing (tests)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    out = []
    for ref, hyp in zip(refs, hyps, strict=True):
        if isinstance(ref, str) or isinstance(hyp, str):
            raise TypeError("each reference and hypothesis must be a sequence of tokens, not str")
        out.append(_align_pair(list(ref), list(hyp), costs, block_rows))
    return out


def _forward_rows(ref: list, hyp: list, costs: Costs, k: int) -> list[list[int]]:
    """Cost rows 0, k, 2k, ... below len(ref): where the traceback restarts each block."""
    sub, ins, dele = costs.sub, costs.ins, costs.dele
    prev = [j * ins for j in range(len(hyp) + 1)]
    kept = [prev]
    for i in range(1, len(ref)):
        word = ref[i - 1]
        left = prev[0] + dele
        row = [left]
        # The cheapest of the three moves; its value does not depend on how ties are broken.
        # (prev has one column more than hyp: zip stops at the last hypothesis token.)
        for h, diag, up in zip(hyp, prev, prev[1:], strict=False):
            s = diag if h == word else diag + sub
            d = up + dele
            a = left + ins
            left = s if s <= d and s <= a else (d if d < a else a)
            row.append(left)
        prev = row
        if i % k == 0:
            kept.append(row)
    return kept


def _block_pointers(ref: list, hyp: list, costs: Costs, start: int, stop: int, width: int, top):
    """Back-pointer rows start+1..stop, columns 0..width-1, from cost row ``start`` (``top``)."""
    sub, ins, dele = costs.sub, costs.ins, costs.dele
    prev = top[:width]
    hyp = hyp[: width - 1]
    rows = []
    for i in range(start + 1, stop + 1):
        word = ref[i - 1]
        left = prev[0] + dele
        row = [left]
        codes = ["D"]
        for h, diag, up in zip(hyp, prev, prev[1:], strict=False):
            eq = h == word
            s = diag if eq else diag + sub
            d = up + dele
            a = left + ins
            # sclite's rule (net_dp.c, calculate_internal_cells): diagonal on a tie with
            # either, then deletion if strictly cheaper than insertion, else insertion.
            if s <= d and s <= a:
                left = s
                codes.append("C" if eq else "S")
            elif d < a:
                left = d
                codes.append("D")
            else:
                left = a
                codes.append("I")
            row.append(left)
        prev = row
        rows.append(codes)
    return rows


def _align_pair(ref: list, hyp: list, costs: Costs, block_rows: int) -> str:
    n, m = len(ref), len(hyp)
    k = _block_rows(n, m, block_rows)
    kept = _forward_rows(ref, hyp, costs, k) if n > k else [[j * costs.ins for j in range(m + 1)]]
    steps: list[str] = []
    i, j = n, m
    while i > 0:
        start = (i - 1) // k * k
        rows = _block_pointers(ref, hyp, costs, start, i, j + 1, kept[start // k])
        while i > start:
            code = rows[i - start - 1][j]
            steps.append(code)
            if code == "D":
                i -= 1
            elif code == "I":
                j -= 1
            else:
                i -= 1
                j -= 1
    steps.extend("I" * j)
    return "".join(reversed(steps))
