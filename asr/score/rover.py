"""System combination by word voting: NIST's ROVER (SCTK ``rover -m meth1 -a 1``) on text.

ROVER (Fiscus 1997) aligns the hypotheses of several systems into one word transition network
and takes a vote in each slot. Averaging the frame posteriors of separately trained CTC models
does not work (their spikes fall on different frames, so the averaged blank wins where each
model had a word); a vote over words does, because the models agree on the words, not on where
they put them.

The network is built as SCTK's ``Network_dpalign_n_networks`` builds it: the first system's
words are the slots; each further system is aligned to the slots by dynamic programming and
merged in, its word joining the slot it matches (or a substituted slot), a null joining a slot
it skips, and a word it inserts becoming a new slot that holds a null for every earlier
system. The costs are SCTK's ``wwd_WORD_rover``: 0 for a word already in the slot, 1 for a
word against a slot that holds a null, 4 for a substitution, 3 for an insertion or for skipping
a slot of words only, 0.001 for skipping a slot that already holds a null (kept here as integers
in thousandths, so ties are exact). On equal costs the substitution wins, then the skip, then
the insertion, as in sclite's DP.

The vote is SCTK's ``meth1`` with alpha 1 (no confidences): the most frequent entry of the slot,
a null counting as an entry, wins; a tie goes to the entry of the earliest system among those
tied, so the order of the systems is their priority. A slot won by a null outputs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asr.score.result import ScoreError

# SCTK's rover costs in thousandths of a word (wwd_WORD_rover in src/sclite/word.c)
_MATCH = 0
_SUB_NULL = 1000  # a word against a slot that holds a null
_SUB = 4000
_INS = 3000
_DEL = 3000
_DEL_NULL = 1  # skipping a slot in which some system already has nothing

Slot = list  # one entry per system so far: a word, or None for "no word here"


@dataclass(frozen=True)
class RoverResult:
    """The voted words of one utterance, and how many slots were decided by a tie."""

    words: list[str]
    slots: int
    ties: int


def _align(slots: list[Slot], words: Sequence[str]) -> list[tuple[str, int, int]]:
    """The edit path (op, slot index, word index) that merges ``words`` into ``slots``."""
    n, m = len(slots), len(words)
    del_cost = [_DEL_NULL if None in s else _DEL for s in slots]
    # cost[i][j]: the cheapest merge of the first i slots with the first j words
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    back = [[""] * (m + 1) for _ in range(n + 1)]
    for j in range(1, m + 1):
        cost[0][j], back[0][j] = cost[0][j - 1] + _INS, "I"
    for i in range(1, n + 1):
        slot = slots[i - 1]
        cost[i][0], back[i][0] = cost[i - 1][0] + del_cost[i - 1], "D"
        has_null = None in slot
        for j in range(1, m + 1):
            word = words[j - 1]
            if word in slot:
                step = _MATCH
            elif has_null:
                step = _SUB_NULL
            else:
                step = _SUB
            sub = cost[i - 1][j - 1] + step
            dele = cost[i - 1][j] + del_cost[i - 1]
            ins = cost[i][j - 1] + _INS
            if sub <= dele and sub <= ins:
                cost[i][j], back[i][j] = sub, "S"
            elif dele < ins:
                cost[i][j], back[i][j] = dele, "D"
            else:
                cost[i][j], back[i][j] = ins, "I"
    path = []
    i, j = n, m
    while i > 0 or j > 0:
        op = back[i][j]
        path.append((op, i - 1, j - 1))
        if op == "S":
            i, j = i - 1, j - 1
        elif op == "D":
            i -= 1
        else:
            j -= 1
    path.reverse()
    return path


def _merge(slots: list[Slot], words: Sequence[str], earlier: int) -> list[Slot]:
    """The slots with ``words`` (the next system's, ``earlier`` systems before it) merged in."""
    merged: list[Slot] = []
    for op, i, j in _align(slots, words):
        if op == "S":
            merged.append([*slots[i], words[j]])
        elif op == "D":
            merged.append([*slots[i], None])
        else:
            merged.append([None] * earlier + [words[j]])
    return merged


def _vote(slot: Slot) -> tuple[str | None, bool]:
    """The winning entry of a slot and whether the win was a tie."""
    counts: dict[str | None, int] = {}
    for entry in slot:  # a dict keeps first occurrence order: the earliest system first
        counts[entry] = counts.get(entry, 0) + 1
    best = max(counts.values())
    winners = [entry for entry, count in counts.items() if count == best]
    return winners[0], len(winners) > 1


def rover(hypotheses: Sequence[Sequence[str]]) -> RoverResult:
    """Combine one utterance's hypotheses (word lists, in priority order) by word voting."""
    if not hypotheses:
        raise ValueError("rover needs at least one hypothesis")
    for hyp in hypotheses:
        if isinstance(hyp, str):
            raise TypeError("each hypothesis must be a sequence of words, not str")
    slots: list[Slot] = [[word] for word in hypotheses[0]]
    for k, words in enumerate(hypotheses[1:], start=1):
        slots = _merge(slots, list(words), k)
    out, ties = [], 0
    for slot in slots:
        winner, tied = _vote(slot)
        ties += tied
        if winner is not None:
            out.append(winner)
    return RoverResult(out, len(slots), ties)


def _some(ids: list[str], shown: int = 3) -> str:
    return " ".join(ids[:shown]) + (f" ... ({len(ids)} in all)" if len(ids) > shown else "")


def combine_transcripts(
    systems: Sequence[Mapping[str, str]], names: Sequence[str] | None = None
) -> tuple[dict[str, str], int]:
    """ROVER over whole hypothesis sets: utterance id -> voted text, and the tied slots in all.

    Every system must hold the same utterance ids; ``names`` (file names) label the error
    that says which do not.
    """
    if not systems:
        raise ValueError("rover needs at least one system")
    names = list(names) if names is not None else [f"system {k + 1}" for k in range(len(systems))]
    first = set(systems[0])
    for name, system in zip(names[1:], systems[1:], strict=True):
        missing = sorted(first - set(system))
        extra = sorted(set(system) - first)
        detail = []
        if missing:
            detail.append(f"{len(missing)} utterance(s) of {names[0]} missing ({_some(missing)})")
        if extra:
            detail.append(f"{len(extra)} not in {names[0]} ({_some(extra)})")
        if detail:
            raise ScoreError(f"{name}: {'; '.join(detail)}")
    combined, ties = {}, 0
    for utt in systems[0]:
        result = rover([system[utt].split() for system in systems])
        combined[utt] = " ".join(result.words)
        ties += result.ties
    return combined, ties
