"""asr.score.align: sclite's word alignment, checked against NIST sclite (Debian sctk) itself.

sclite's sgml output (``-o sgml``) lists every step of every alignment as ``C,"ref","hyp"``,
``S,...``, ``D,"ref",`` or ``I,,"hyp"`` (unlike the .pra rows, which it truncates near 1,000
characters), so the per-utterance edit codes can be compared exactly.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

import asr.score.align as align_module
from asr.score.align import (
    LEVENSHTEIN_COSTS,
    SCLITE_COSTS,
    Costs,
    _align_python,
    align,
)
from asr.score.result import Alignment

Pair = tuple[list[str], list[str]]


@pytest.fixture
def calign():
    """The C extension; like sclite, its absence fails under CI=true and skips otherwise."""
    if align_module._calign is None:
        message = "asr.score._calign is not built (pip install -e . builds it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return align_module._calign


def _sclite_codes(sclite: list[str], tmp_path: Path, pairs: list[Pair]) -> list[str]:
    """sclite's edit codes for each pair: `sclite -i spu_id -s` (case-sensitive, exact)."""
    ref_trn, hyp_trn = tmp_path / "ref.trn", tmp_path / "hyp.trn"
    ids = [f"s-{k:06d}" for k in range(len(pairs))]
    ref_trn.write_text(
        "".join(f"{' '.join(r)} ({u})\n" for u, (r, _) in zip(ids, pairs, strict=True))
    )
    hyp_trn.write_text(
        "".join(f"{' '.join(h)} ({u})\n" for u, (_, h) in zip(ids, pairs, strict=True))
    )
    command = sclite + ["-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "spu_id"]
    out = subprocess.run(
        command + ["-s", "-o", "sgml", "stdout"], capture_output=True, text=True, check=True
    ).stdout
    steps = re.compile(r'([CSDI]),(?:"[^"]*")?,(?:"[^"]*")?')
    codes = {
        m.group(1): "".join(s for s in steps.findall(m.group(2)))
        for m in re.finditer(r'<PATH id="\((\S+)\)"[^>]*>\n(.*)\n</PATH>', out)
    }
    assert len(codes) == len(pairs), "sclite's sgml output lacks utterances"
    return [codes[u] for u in ids]


def _random_pairs(seed: int, vocab: list[str], count: int, max_len: int) -> list[Pair]:
    rng = random.Random(seed)
    return [
        (
            [rng.choice(vocab) for _ in range(rng.randint(0, max_len))],
            [rng.choice(vocab) for _ in range(rng.randint(0, max_len))],
        )
        for _ in range(count)
    ]


_WORDS = (
    "the a of to and in is it that for on was with he as i his be at by had not are but from "
    "or have an they which one you were her all she there would their we him been has when "
    "who will more no if out so said what up its about into than them can only other new "
    "some could time these two may then do first any my now such like our over man me even"
).split()


def _noisy(rng: random.Random, ref: list[str], error_rate: float = 0.15) -> list[str]:
    """A hypothesis with substitutions, deletions and insertions (as tests/test_score.py)."""
    hyp: list[str] = []
    for word in ref:
        roll = rng.random()
        if roll < error_rate * 0.4:
            hyp.append(rng.choice(_WORDS))
        elif roll < error_rate * 0.73:
            pass
        elif roll < error_rate:
            hyp.extend([word, rng.choice(_WORDS)])
        else:
            hyp.append(word)
    return hyp


def _real_looking_pairs(seed: int) -> list[Pair]:
    rng = random.Random(seed)
    pairs = []
    for i in range(240):
        ref = [rng.choice(_WORDS) for _ in range(rng.randint(1, 25))]
        hyp = _noisy(rng, ref)
        pairs.append(([] if i % 37 == 5 else ref, [] if i % 41 == 7 else hyp))
    return pairs


def _split(pairs: list[Pair]) -> tuple[list[list[str]], list[list[str]]]:
    return [r for r, _ in pairs], [h for _, h in pairs]


# ---------------------------------------------------------------------------------------------
# Against sclite


# Ties explained by sclite's rule (net_dp.c): a cell takes the diagonal when it is no dearer
# than both others, else the deletion only when strictly cheaper than the insertion; the
# traceback runs from the last cell, so the choice made nearest the end wins.
_KNOWN = [
    ("a b", "b a", "DCI"),  # D C I and I C D both cost 6: at the last cell ins ties del
    ("a b", "b c", "DCI"),  # 6 beats two substitutions (8)
    ("a", "b", "S"),  # 4 beats a deletion and an insertion (6)
    ("a a", "a", "DC"),  # the diagonal wins at the last cell: the first "a" is deleted
    ("a", "a a", "IC"),
    ("a b c", "x b", "SCD"),
    ("a a a b b", "b b c c c c", "DDDCCIIII"),  # 7 errors weigh 21; 6 errors would weigh 23
    ("", "a b", "II"),
    ("a b", "", "DD"),
    ("", "", ""),
]


def test_known_ties_match_sclite(sclite: list[str], tmp_path: Path) -> None:
    pairs = [(r.split(), h.split()) for r, h, _ in _KNOWN]
    expected = [codes for _, _, codes in _KNOWN]
    assert _sclite_codes(sclite, tmp_path, pairs) == expected
    assert align(*_split(pairs)) == expected
    assert _align_python(*_split(pairs)) == expected


def test_tie_heavy_random_pairs_match_sclite(sclite: list[str], tmp_path: Path) -> None:
    # Tiny vocabularies make most cells ties; exact equality, so case and Unicode
    # normalisation forms are distinct tokens (sclite -s compares bytes).
    pairs = (
        _random_pairs(1, ["a", "b"], 1500, 8)
        + _random_pairs(2, ["a", "b", "c"], 1500, 8)
        + _random_pairs(3, ["é", "e\u0301", "日本", "x", "X"], 800, 8)
        + _random_pairs(4, ["a"], 200, 6)
    )
    theirs = _sclite_codes(sclite, tmp_path, pairs)
    refs, hyps = _split(pairs)
    mismatches = [
        (p, t) for p, t, o in zip(pairs, theirs, align(refs, hyps), strict=True) if t != o
    ]
    assert not mismatches, f"{len(mismatches)} differ from sclite, e.g. {mismatches[:3]}"
    assert _align_python(refs, hyps) == theirs


def test_real_looking_and_long_pairs_match_sclite(sclite: list[str], tmp_path: Path) -> None:
    pairs = _real_looking_pairs(21) + _real_looking_pairs(22)
    rng = random.Random(23)
    for length, vocab in [(300, 3), (400, 100), (1000, 10)]:
        ref = [rng.choice(_WORDS[:vocab]) for _ in range(length)]
        pairs.append((ref, _noisy(rng, ref, 0.3)))
    theirs = _sclite_codes(sclite, tmp_path, pairs)
    ours = align(*_split(pairs))
    assert [len(c) for c in theirs[-3:]] == [len(c) for c in ours[-3:]]
    assert ours == theirs
    assert sum(c.count("S") for c in ours) > 100 and sum(c.count("I") for c in ours) > 100


# ---------------------------------------------------------------------------------------------
# C extension == pure Python, checkpointed == full matrix


def test_c_equals_python_on_random_pairs(calign) -> None:
    pairs = _random_pairs(5, ["a", "b", "c"], 2000, 12) + _real_looking_pairs(6)
    refs, hyps = _split(pairs)
    for costs in (SCLITE_COSTS, LEVENSHTEIN_COSTS, Costs(sub=5, ins=1, dele=2), Costs(0, 1, 1)):
        expected = _align_python(refs, hyps, costs)
        assert calign.align(refs, hyps, costs.sub, costs.ins, costs.dele) == expected
        # Blocks of 1, 2 and 3 rows: every pair longer than that goes through the
        # checkpointed forward pass and the block-by-block traceback.
        for block_rows in (1, 2, 3):
            args = (refs, hyps, costs.sub, costs.ins, costs.dele)
            assert calign.align(*args, block_rows=block_rows) == expected
        assert _align_python(refs, hyps, costs, block_rows=2) == expected


def test_c_equals_python_on_long_pairs(calign) -> None:
    rng = random.Random(7)
    ref = [rng.choice(_WORDS[:20]) for _ in range(2000)]
    hyp = _noisy(rng, ref, 0.2)
    # By default a pair this size is one block (the full matrix of back-pointers); forcing
    # blocks of 37 rows makes the C side keep every 37th cost row and recompute the rest.
    full = _align_python([ref], [hyp])[0]
    assert calign.align([ref], [hyp], 4, 3, 3, block_rows=37) == [full]
    assert calign.align([ref], [hyp], 4, 3, 3) == [full]
    medium = [(ref[:300], hyp[:280]), (ref[500:700], hyp[100:350]), (ref[:250], [])]
    refs, hyps = _split(medium)
    assert _align_python(refs, hyps, block_rows=7) == calign.align(refs, hyps, 4, 3, 3)


def test_align_falls_back_to_python(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = _random_pairs(8, ["a", "b"], 300, 8)
    with_c = align(*_split(pairs))
    monkeypatch.setattr(align_module, "_calign", None)
    assert align(*_split(pairs)) == with_c


# ---------------------------------------------------------------------------------------------
# Independent checks of the codes


def _edit_distance(ref: list[str], hyp: list[str], costs: Costs) -> int:
    """Minimal weighted edit cost by a memoised recursion (not the code under test)."""

    @cache
    def cost(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i * costs.dele + j * costs.ins
        step = 0 if ref[i - 1] == hyp[j - 1] else costs.sub
        return min(
            cost(i - 1, j - 1) + step, cost(i - 1, j) + costs.dele, cost(i, j - 1) + costs.ins
        )

    return cost(len(ref), len(hyp))


def _check_codes(ref: list[str], hyp: list[str], codes: str, costs: Costs) -> int:
    """Asserts the codes are a valid alignment of ref and hyp; returns their weighted cost."""
    a = Alignment("u", tuple(ref), tuple(hyp), codes)  # checks the counts cover ref and hyp
    for code, r, h in a.steps():
        assert (code == "C") == (r == h), (ref, hyp, codes)
    return a.subs * costs.sub + a.dels * costs.dele + a.ins * costs.ins


@pytest.mark.parametrize("costs", [LEVENSHTEIN_COSTS, SCLITE_COSTS, Costs(3, 1, 2)])
def test_codes_have_the_minimal_weighted_cost(costs: Costs) -> None:
    pairs = _random_pairs(9, ["a", "b", "c", "d"], 400, 10) + _real_looking_pairs(10)[:60]
    codes = align(*_split(pairs), costs)
    for (ref, hyp), c in zip(pairs, codes, strict=True):
        assert _check_codes(ref, hyp, c, costs) == _edit_distance(ref, hyp, costs)


def test_levenshtein_totals_equal_the_minimal_edit_distance() -> None:
    pairs = _random_pairs(11, ["a", "b", "c"], 500, 9)
    codes = align(*_split(pairs), LEVENSHTEIN_COSTS)
    total = sum(len(c) - c.count("C") for c in codes)
    assert total == sum(_edit_distance(r, h, LEVENSHTEIN_COSTS) for r, h in pairs)
    # sclite's weights can count more errors than that (see _KNOWN), never fewer.
    sclite_total = sum(len(c) - c.count("C") for c in align(*_split(pairs)))
    assert sclite_total >= total


# ---------------------------------------------------------------------------------------------
# Edge cases and bad input


def test_empty_sides_and_unicode() -> None:
    assert align([], []) == []
    assert align([[], ["a", "b"], []], [["x"], [], []]) == ["I", "DD", ""]
    assert align([("día", "über", "日本")], [["día", "uber", "日本", "語"]]) == ["CSCI"]
    # Exact equality: different case or Unicode normal form is a substitution.
    assert align([["Word", "é"]], [["word", "e\u0301"]]) == ["SS"]
    assert _align_python([[], ["a"]], [["b", "c"], []]) == ["II", "D"]


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        align([["a"], ["b"]], [["a"]])
    with pytest.raises(TypeError, match="sequence of tokens, not str"):
        align(["a b"], [["a"]])
    with pytest.raises(TypeError, match="sequence of tokens, not str"):
        _align_python([["a"]], ["a"])
    with pytest.raises(ValueError, match="sub cost"):
        Costs(sub=-1)
    with pytest.raises(ValueError, match="ins cost"):
        Costs(ins=1.5)  # type: ignore[arg-type]
    assert SCLITE_COSTS == Costs(4, 3, 3) and hash(LEVENSHTEIN_COSTS) == hash(Costs(1, 1, 1))
