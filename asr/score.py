"""Score hypotheses against references: WER/PER/CER counts, Kaldi summary lines, alignments.

The edit alignment is jiwer's (rapidfuzz Levenshtein with unit costs), so the total number of
errors per utterance is the minimal edit distance, exactly what Kaldi's ``compute-wer`` counts.
How a tie between alignments of equal cost is split into substitutions, deletions and
insertions is the aligner's choice and may differ from Kaldi's and from NIST sclite's; sclite
also weighs substitutions (4) above insertions and deletions (3), so in rare utterances its
total can exceed the minimal edit distance (see tests/test_score.py, which checks this against
sclite itself).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import DataDirError
from asr.fileio import atomic_write, read_text_lines

METRICS = ("WER", "PER", "CER")
UNITS = ("word", "char")
MISSING_POLICIES = ("error", "deletions")

# How many missing utterance ids an error message lists before it just counts them.
_MAX_LISTED_IDS = 10
# How a space token is shown in a character alignment, where a bare " " would be invisible.
_SPACE_SYMBOL = "<space>"


class ScoreError(DataDirError):
    """References and hypotheses cannot be scored together (e.g. utterance ids do not match)."""


@dataclass(frozen=True)
class Alignment:
    """One utterance: its tokens and the edit operations turning the reference into the hypothesis.

    ``ops`` holds ``(op, ref_token, hyp_token)`` with op "C" (correct), "S" (substitution),
    "D" (deletion: hyp_token is None) or "I" (insertion: ref_token is None).
    """

    utt_id: str
    ref: tuple[str, ...]
    hyp: tuple[str, ...]
    ops: tuple[tuple[str, str | None, str | None], ...]

    def count(self, op: str) -> int:
        return sum(1 for o, _, _ in self.ops if o == op)

    @property
    def hits(self) -> int:
        return self.count("C")

    @property
    def subs(self) -> int:
        return self.count("S")

    @property
    def dels(self) -> int:
        return self.count("D")

    @property
    def ins(self) -> int:
        return self.count("I")

    @property
    def errors(self) -> int:
        return len(self.ops) - self.hits


@dataclass
class ScoreResult:
    """Totals over a set of utterances, plus each utterance's alignment.

    ``wer`` is the error rate in percent whatever the unit (it is the CER for characters);
    with no reference tokens it is 0 when there are no errors and infinity otherwise.
    ``missing`` lists the reference utterances that had no hypothesis (scored as empty).
    """

    utterances: list[Alignment]
    unit: str = "word"
    missing: list[str] = field(default_factory=list)
    hits: int = field(init=False)
    subs: int = field(init=False)
    dels: int = field(init=False)
    ins: int = field(init=False)
    ref_words: int = field(init=False)
    sentence_errors: int = field(init=False)

    def __post_init__(self) -> None:
        self.hits = sum(a.hits for a in self.utterances)
        self.subs = sum(a.subs for a in self.utterances)
        self.dels = sum(a.dels for a in self.utterances)
        self.ins = sum(a.ins for a in self.utterances)
        self.ref_words = sum(len(a.ref) for a in self.utterances)
        self.sentence_errors = sum(1 for a in self.utterances if a.errors)

    @property
    def errors(self) -> int:
        return self.subs + self.dels + self.ins

    @property
    def sentences(self) -> int:
        return len(self.utterances)

    @property
    def wer(self) -> float:
        return _percent(self.errors, self.ref_words)

    @property
    def ser(self) -> float:
        return _percent(self.sentence_errors, self.sentences)

    def subset(self, utt_ids: Iterable[str]) -> ScoreResult:
        """The totals over some of the utterances (e.g. one speaker's)."""
        wanted = set(utt_ids)
        return ScoreResult(
            [a for a in self.utterances if a.utt_id in wanted],
            unit=self.unit,
            missing=[u for u in self.missing if u in wanted],
        )


def _percent(count: int, total: int) -> float:
    if total == 0:
        return 0.0 if count == 0 else math.inf
    return 100.0 * count / total


def tokenize(text: str | Sequence[str], unit: str = "word") -> list[str]:
    """Split a transcript into scoring tokens.

    Words (and phones) are whitespace-separated. Characters are those of the words joined by
    single spaces, the space included (as jiwer.cer and ESPnet count them), so a missing word
    boundary costs one error. A sequence is taken as already tokenized.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    if not isinstance(text, str):
        return [str(t) for t in text]
    words = text.split()
    return words if unit == "word" else list(" ".join(words))


def _jiwer_alignments(
    refs: list[list[str]], hyps: list[list[str]]
) -> list[list[tuple[str, int, int, int, int]]]:
    """Align all pairs in one jiwer call: (type, ref_start, ref_end, hyp_start, hyp_end) chunks."""
    import jiwer

    if not refs:
        return []

    # The tokens are ours already: an identity transform hands them to jiwer untouched (its
    # default transform would split on whitespace again, which breaks the space token of CER).
    def keep(sentences: list[list[str]]) -> list[list[str]]:
        return sentences

    output = jiwer.process_words(refs, hyps, reference_transform=keep, hypothesis_transform=keep)
    return [
        [(c.type, c.ref_start_idx, c.ref_end_idx, c.hyp_start_idx, c.hyp_end_idx) for c in chunks]
        for chunks in output.alignments
    ]


def _ops_from_chunks(
    ref: list[str], hyp: list[str], chunks: list[tuple[str, int, int, int, int]]
) -> tuple[tuple[str, str | None, str | None], ...]:
    ops: list[tuple[str, str | None, str | None]] = []
    for kind, r0, r1, h0, h1 in chunks:
        if kind == "equal":
            ops.extend(
                ("C", ref[i], hyp[j]) for i, j in zip(range(r0, r1), range(h0, h1), strict=True)
            )
        elif kind == "substitute":
            ops.extend(
                ("S", ref[i], hyp[j]) for i, j in zip(range(r0, r1), range(h0, h1), strict=True)
            )
        elif kind == "delete":
            ops.extend(("D", ref[i], None) for i in range(r0, r1))
        elif kind == "insert":
            ops.extend(("I", None, hyp[j]) for j in range(h0, h1))
        else:  # a jiwer we do not know: fail loudly rather than miscount
            raise RuntimeError(f"unknown jiwer alignment chunk type {kind!r}")
    # Guard against an aligner change silently dropping tokens.
    if [r for _, r, _ in ops if r is not None] != ref or [
        h for _, _, h in ops if h is not None
    ] != hyp:
        raise RuntimeError("jiwer alignment does not cover the reference and hypothesis")
    return tuple(ops)


def _as_mapping(transcripts: Mapping[str, object] | Sequence[object]) -> dict[str, object]:
    if isinstance(transcripts, Mapping):
        return dict(transcripts)
    # Parallel lists: position i of the references goes with position i of the hypotheses.
    return {str(i): t for i, t in enumerate(transcripts)}


def _id_list(ids: list[str]) -> str:
    shown = " ".join(ids[:_MAX_LISTED_IDS])
    more = f" ... ({len(ids)} in all)" if len(ids) > _MAX_LISTED_IDS else ""
    return shown + more


def wer(
    refs: Mapping[str, str | Sequence[str]] | Sequence[str | Sequence[str]],
    hyps: Mapping[str, str | Sequence[str]] | Sequence[str | Sequence[str]],
    *,
    unit: str = "word",
    missing: str = "error",
    ref_name: str = "reference",
    hyp_name: str = "hypothesis",
) -> ScoreResult:
    """Align each hypothesis to its reference and total the errors.

    ``refs``/``hyps`` map utterance id -> transcript (a string, or a token sequence), or are
    parallel lists. Utterances are scored in the order of ``refs``. A hypothesis id without a
    reference is always an error (a wrong file, most likely); a reference without a hypothesis
    is an error unless ``missing="deletions"``, which scores it against an empty hypothesis.
    ``ref_name``/``hyp_name`` name the inputs (e.g. file paths) in error messages.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, not {missing!r}")
    if isinstance(refs, Mapping) != isinstance(hyps, Mapping):
        raise TypeError("refs and hyps must both be mappings or both be sequences")
    ref_map, hyp_map = _as_mapping(refs), _as_mapping(hyps)

    extra = [u for u in hyp_map if u not in ref_map]
    if extra:
        raise ScoreError(
            f"{hyp_name}: {len(extra)} utterance(s) not in {ref_name}: {_id_list(extra)}"
        )
    absent = [u for u in ref_map if u not in hyp_map]
    if absent and missing == "error":
        raise ScoreError(
            f"{hyp_name}: {len(absent)} utterance(s) of {ref_name} missing: {_id_list(absent)}"
            " (use --missing-as-deletions to score them as empty)"
        )

    ids = list(ref_map)
    ref_tokens = [tokenize(ref_map[u], unit) for u in ids]  # type: ignore[arg-type]
    hyp_tokens = [tokenize(hyp_map.get(u, ""), unit) for u in ids]  # type: ignore[arg-type]
    chunks = _jiwer_alignments(ref_tokens, hyp_tokens)
    utterances = [
        Alignment(u, tuple(r), tuple(h), _ops_from_chunks(r, h, c))
        for u, r, h, c in zip(ids, ref_tokens, hyp_tokens, chunks, strict=True)
    ]
    return ScoreResult(utterances, unit=unit, missing=absent)


def by_speaker(
    result: ScoreResult, utt2spk: Mapping[str, str] | Callable[[str], str]
) -> dict[str, ScoreResult]:
    """Split the totals by speaker, sorted by speaker id (as sclite's per-speaker table)."""
    speaker_of = utt2spk if callable(utt2spk) else utt2spk.__getitem__
    groups: dict[str, list[str]] = {}
    for a in result.utterances:
        try:
            groups.setdefault(speaker_of(a.utt_id), []).append(a.utt_id)
        except KeyError:
            raise ScoreError(f"utterance {a.utt_id!r} has no speaker") from None
    return {spk: result.subset(groups[spk]) for spk in sorted(groups)}


def _format_rate(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def kaldi_line(result: ScoreResult, metric: str = "WER") -> str:
    """Kaldi compute-wer's summary line, e.g. ``%WER 12.34 [ 56 / 454, 7 ins, 8 del, 41 sub ]``."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    return (
        f"%{metric} {_format_rate(result.wer)} [ {result.errors} / {result.ref_words}, "
        f"{result.ins} ins, {result.dels} del, {result.subs} sub ]"
    )


def ser_line(result: ScoreResult) -> str:
    """Kaldi's sentence error line, e.g. ``%SER 33.33 [ 1 / 3 ]``."""
    return f"%SER {_format_rate(result.ser)} [ {result.sentence_errors} / {result.sentences} ]"


def summary_lines(result: ScoreResult, metric: str = "WER") -> list[str]:
    """The three lines Kaldi's compute-wer prints."""
    return [
        kaldi_line(result, metric),
        ser_line(result),
        f"Scored {result.sentences} sentences, {len(result.missing)} not present in hyp.",
    ]


def _show(token: str) -> str:
    return _SPACE_SYMBOL if token == " " else token


def format_alignment(a: Alignment) -> str:
    """One utterance in sclite's .pra layout: errors upper-cased, gaps as ``*`` of column width."""
    ref_row, hyp_row, eval_row = [], [], []
    for op, r, h in a.ops:
        r_text = "" if r is None else _show(r)
        h_text = "" if h is None else _show(h)
        if op != "C":
            r_text, h_text = r_text.upper(), h_text.upper()
        width = max(len(r_text), len(h_text))
        ref_row.append((r_text or "*" * width).ljust(width))
        hyp_row.append((h_text or "*" * width).ljust(width))
        eval_row.append(("" if op == "C" else op).ljust(width))
    block = f"id: ({a.utt_id})\nScores: (#C #S #D #I) {a.hits} {a.subs} {a.dels} {a.ins}\n"
    if not a.ops:  # both sides empty: sclite shows no rows at all
        return block
    # sclite ends every column with a space, including the last one.
    return (
        block
        + f"REF:  {''.join(t + ' ' for t in ref_row)}\n"
        + f"HYP:  {''.join(t + ' ' for t in hyp_row)}\n"
        + f"Eval: {''.join(t + ' ' for t in eval_row)}\n"
    )


def format_alignments(result: ScoreResult, metric: str = "WER") -> str:
    """The whole alignment report: Kaldi's summary lines, then one block per utterance."""
    header = "".join(line + "\n" for line in summary_lines(result, metric))
    return header + "\n" + "\n".join(format_alignment(a) for a in result.utterances)


def write_alignments(result: ScoreResult, path: str | os.PathLike, metric: str = "WER") -> None:
    with atomic_write(path) as handle:
        handle.write(format_alignments(result, metric))


def read_transcripts(path: str | os.PathLike) -> dict[str, str]:
    """Read a Kaldi ``text`` file: utterance id, then the words (none: an empty transcript).

    Whitespace is normalized to single spaces; blank lines are skipped; a repeated id is an error.
    """
    path = Path(path)
    transcripts: dict[str, str] = {}
    for number, line in enumerate(read_text_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        utt_id = parts[0]
        if utt_id in transcripts:
            raise DataDirError(f"{path}:{number}: duplicate utterance id {utt_id!r}")
        transcripts[utt_id] = " ".join(parts[1:])
    return transcripts


def write_transcripts(path: str | os.PathLike, transcripts: Mapping[str, str]) -> None:
    """Write a Kaldi ``text`` file atomically, sorted by id in C (byte) order as Kaldi wants."""
    with atomic_write(path) as handle:
        for utt_id in sorted(transcripts, key=lambda u: u.encode("utf-8")):
            text = " ".join(transcripts[utt_id].split())
            handle.write(f"{utt_id} {text}\n" if text else f"{utt_id}\n")
