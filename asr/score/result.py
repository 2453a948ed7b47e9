"""What scoring produces: per-utterance alignments and the totals over a set of them.

An alignment is stored as a string of edit codes, one character per step, rather than as a
tuple per step: a million-word scoring job then builds a hundred thousand small objects instead
of a million, and the counts are ``str.count`` calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from asr.errors import DataDirError

# Edit codes: C correct, S substitution, D deletion (a reference token with no hypothesis
# token), I insertion (a hypothesis token with no reference token).
CORRECT, SUBSTITUTION, DELETION, INSERTION = "C", "S", "D", "I"
UNITS = ("word", "char", "phone")


class ScoreError(DataDirError):
    """References and hypotheses cannot be scored together (e.g. utterance ids do not match)."""


Op = tuple[str, str | None, str | None]


@dataclass(frozen=True)
class Alignment:
    """One utterance: its tokens and the edit codes turning the reference into the hypothesis.

    ``codes`` has one character per step: C, S and D consume a reference token, C, S and I a
    hypothesis token, so ``len(ref) == C + S + D`` and ``len(hyp) == C + S + I``.
    ``ref_times``/``hyp_times`` hold each token's (start, end) in seconds when the input had
    times (CTM), else None.
    """

    utt_id: str
    ref: tuple[str, ...]
    hyp: tuple[str, ...]
    codes: str
    ref_times: tuple[tuple[float, float], ...] | None = None
    hyp_times: tuple[tuple[float, float], ...] | None = None
    hits: int = field(init=False, repr=False, compare=False)
    subs: int = field(init=False, repr=False, compare=False)
    dels: int = field(init=False, repr=False, compare=False)
    ins: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes = self.codes
        counts = (codes.count("C"), codes.count("S"), codes.count("D"), codes.count("I"))
        if sum(counts) != len(codes):
            raise ValueError(f"{self.utt_id}: edit codes must be C, S, D or I: {codes!r}")
        hits, subs, dels, ins = counts
        if hits + subs + dels != len(self.ref) or hits + subs + ins != len(self.hyp):
            raise ValueError(f"{self.utt_id}: edit codes {codes!r} do not cover ref and hyp")
        # Frozen: the counts are set once here, through object.__setattr__.
        object.__setattr__(self, "hits", hits)
        object.__setattr__(self, "subs", subs)
        object.__setattr__(self, "dels", dels)
        object.__setattr__(self, "ins", ins)

    @property
    def errors(self) -> int:
        return self.subs + self.dels + self.ins

    @property
    def ops(self) -> tuple[Op, ...]:
        """``(code, ref_token, hyp_token)`` per step; the missing side of D and I is None."""
        return tuple(self.steps())

    def steps(self) -> Iterator[Op]:
        i = j = 0
        ref, hyp = self.ref, self.hyp
        for code in self.codes:
            if code == "D":
                yield code, ref[i], None
                i += 1
            elif code == "I":
                yield code, None, hyp[j]
                j += 1
            else:
                yield code, ref[i], hyp[j]
                i += 1
                j += 1

    def step_times(
        self,
    ) -> Iterator[tuple[tuple[float, float] | None, tuple[float, float] | None]]:
        """(ref_time, hyp_time) per step, None where that side has no token or no times."""
        i = j = 0
        for code in self.codes:
            ref_time = hyp_time = None
            if code != "I":
                ref_time = self.ref_times[i] if self.ref_times is not None else None
                i += 1
            if code != "D":
                hyp_time = self.hyp_times[j] if self.hyp_times is not None else None
                j += 1
            yield ref_time, hyp_time


def percent(count: int, total: int) -> float:
    """``100 * count / total``; with nothing to count, 0 when there are no errors, else inf."""
    if total == 0:
        return 0.0 if count == 0 else math.inf
    return 100.0 * count / total


@dataclass
class ScoreResult:
    """Totals over a set of utterances, plus each utterance's alignment.

    ``wer`` is the error rate in percent whatever the unit (the CER for characters, the PER for
    phones). ``missing`` lists the reference utterances that had no hypothesis (scored as
    empty). ``speakers`` maps utterance id to speaker where known. ``settings`` lists, as
    ``(name, value)`` pairs, everything that changed the numbers (aligner costs, normalisation,
    phone map...), for report headers. ``ref_name``/``hyp_name`` name the inputs.
    """

    utterances: list[Alignment]
    unit: str = "word"
    metric: str = "WER"
    missing: list[str] = field(default_factory=list)
    speakers: dict[str, str] = field(default_factory=dict)
    settings: list[tuple[str, str]] = field(default_factory=list)
    ref_name: str = "reference"
    hyp_name: str = "hypothesis"
    hits: int = field(init=False)
    subs: int = field(init=False)
    dels: int = field(init=False)
    ins: int = field(init=False)
    ref_words: int = field(init=False)
    hyp_words: int = field(init=False)
    sentence_errors: int = field(init=False)

    def __post_init__(self) -> None:
        self.hits = sum(a.hits for a in self.utterances)
        self.subs = sum(a.subs for a in self.utterances)
        self.dels = sum(a.dels for a in self.utterances)
        self.ins = sum(a.ins for a in self.utterances)
        self.ref_words = sum(len(a.ref) for a in self.utterances)
        self.hyp_words = sum(len(a.hyp) for a in self.utterances)
        self.sentence_errors = sum(1 for a in self.utterances if a.hits != len(a.codes))

    @property
    def errors(self) -> int:
        return self.subs + self.dels + self.ins

    @property
    def sentences(self) -> int:
        return len(self.utterances)

    @property
    def wer(self) -> float:
        return percent(self.errors, self.ref_words)

    @property
    def ser(self) -> float:
        return percent(self.sentence_errors, self.sentences)

    def subset(self, utt_ids: Iterable[str]) -> ScoreResult:
        """The totals over some of the utterances (e.g. one speaker's), in this result's order."""
        wanted = set(utt_ids)
        return ScoreResult(
            [a for a in self.utterances if a.utt_id in wanted],
            unit=self.unit,
            metric=self.metric,
            missing=[u for u in self.missing if u in wanted],
            speakers={u: s for u, s in self.speakers.items() if u in wanted},
            settings=list(self.settings),
            ref_name=self.ref_name,
            hyp_name=self.hyp_name,
        )

    def by_speaker(
        self, utt2spk: Mapping[str, str] | Callable[[str], str] | None = None
    ) -> dict[str, ScoreResult]:
        """Split the totals by speaker, sorted by speaker id (the .sys report keeps file order).

        Without ``utt2spk`` the result's own ``speakers`` map is used.
        """
        if utt2spk is None:
            utt2spk = self.speakers
        speaker_of = utt2spk if callable(utt2spk) else utt2spk.__getitem__
        groups: dict[str, list[str]] = {}
        for a in self.utterances:
            try:
                groups.setdefault(speaker_of(a.utt_id), []).append(a.utt_id)
            except KeyError:
                raise ScoreError(f"utterance {a.utt_id!r} has no speaker") from None
        return {spk: self.subset(groups[spk]) for spk in sorted(groups)}
