"""WER/CER/PER of transcripts in memory: ``wer()`` and the Kaldi/sclite summary lines.

``wer()`` is the whole job as a function: normalise both sides, split into tokens, align each
pair and total the errors. By default the alignment is NIST sclite's (a substitution costs 4,
an insertion or deletion 3, ties broken as sclite breaks them), so the counts are sclite's;
``costs=LEVENSHTEIN_COSTS`` gives Kaldi ``compute-wer``'s minimal edit distance instead. The
two differ only where a cheaper weighted alignment has more errors (rare; see tests).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence

# the module, not its align(): this module's ``align`` name is taken by nothing else either
import asr.score.align as _aligner
from asr.fileio import atomic_write
from asr.score.align import LEVENSHTEIN_COSTS, SCLITE_COSTS, Costs
from asr.score.formats import read_kaldi
from asr.score.reports import format_pra_block
from asr.score.result import Alignment, ScoreError, ScoreResult
from asr.score.timed import time_mediated_align

METRICS = ("WER", "PER", "CER")
UNITS = ("word", "char", "phone")
MISSING_POLICIES = ("error", "deletions")
_METRIC_OF_UNIT = {"word": "WER", "char": "CER", "phone": "PER"}

# How many missing utterance ids an error message lists before it just counts them.
_MAX_LISTED_IDS = 10

Transcript = str | Sequence[str]
TimedWords = Sequence[tuple[str, float, float]]
Normalize = Callable[[list[str]], list[str]]


def tokenize(
    text: Transcript,
    unit: str = "word",
    *,
    normalizer: Normalize | None = None,
    char_spaces: bool = True,
) -> list[str]:
    """Split a transcript into scoring tokens.

    Words (and phones) are whitespace-separated; ``normalizer`` (e.g. an
    ``asr.score.normalize.Normalizer``) rewrites the word list first. Characters are those of
    the words joined by single spaces, the space included as a token (as ESPnet's sclite CER and
    jiwer.cer count them) so that a missing word boundary costs one error; ``char_spaces=False``
    drops the spaces, as ``sclite -c`` does. A sequence is taken as already split into words.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}, not {unit!r}")
    words = text.split() if isinstance(text, str) else [str(t) for t in text]
    if normalizer is not None:
        words = normalizer(words)
    if unit != "char":
        return words
    return list(" ".join(words)) if char_spaces else list("".join(words))


def _as_mapping(transcripts: Mapping[str, Transcript] | Sequence[Transcript]) -> dict:
    if isinstance(transcripts, Mapping):
        return dict(transcripts)
    # Parallel lists: position i of the references goes with position i of the hypotheses.
    return {str(i): t for i, t in enumerate(transcripts)}


def _id_list(ids: list[str]) -> str:
    shown = " ".join(ids[:_MAX_LISTED_IDS])
    more = f" ... ({len(ids)} in all)" if len(ids) > _MAX_LISTED_IDS else ""
    return shown + more


def check_ids(
    ref_ids: Sequence[str],
    hyp_ids: Sequence[str],
    *,
    missing: str = "error",
    ref_name: str = "reference",
    hyp_name: str = "hypothesis",
) -> list[str]:
    """The reference ids with no hypothesis; raise if the two sets cannot be scored together.

    A hypothesis id without a reference is always an error (a wrong file, most likely); a
    reference without a hypothesis is an error unless ``missing="deletions"``. sclite scores
    such inputs silently; here the ids are listed by name.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, not {missing!r}")
    ref_set, hyp_set = set(ref_ids), set(hyp_ids)
    extra = [u for u in hyp_ids if u not in ref_set]
    if extra:
        raise ScoreError(
            f"{hyp_name}: {len(extra)} utterance(s) not in {ref_name}: {_id_list(extra)}"
        )
    absent = [u for u in ref_ids if u not in hyp_set]
    if absent and missing == "error":
        raise ScoreError(
            f"{hyp_name}: {len(absent)} utterance(s) of {ref_name} missing: {_id_list(absent)}"
            " (use --missing-as-deletions to score them as empty)"
        )
    return absent


def wer(
    refs: Mapping[str, Transcript] | Sequence[Transcript],
    hyps: Mapping[str, Transcript] | Sequence[Transcript],
    *,
    unit: str = "word",
    metric: str | None = None,
    missing: str = "error",
    costs: Costs | None = None,
    normalizer: Normalize | None = None,
    char_spaces: bool = True,
    speakers: Mapping[str, str] | Callable[[str], str] | None = None,
    settings: Sequence[tuple[str, str]] = (),
    timed_words: tuple[Mapping[str, TimedWords], Mapping[str, TimedWords]] | None = None,
    ref_name: str = "reference",
    hyp_name: str = "hypothesis",
) -> ScoreResult:
    """Align each hypothesis to its reference and total the errors.

    ``refs``/``hyps`` map utterance id -> transcript (a string, or a word sequence), or are
    parallel lists. Utterances are scored in the order of ``refs``. ``unit`` is "word",
    "phone" (words that are phones: the same alignment, reported as PER) or "char"; ``metric``
    names the rate in reports (default WER, PER or CER from the unit). Ids present on one side
    only are handled by ``check_ids``. ``speakers`` maps utterance id to speaker (a mapping or
    a function) for per-speaker reports. ``settings`` are extra (name, value) pairs for report
    headers (the costs and the normalizer's own settings are added here). ``ref_name`` and
    ``hyp_name`` name the inputs (e.g. file paths) in messages and reports.

    ``timed_words`` (reference, hypothesis), each utterance id -> [(word, start, end), ...],
    switches to sclite's time-mediated alignment (``sclite -T``): the words and their times
    come from there and the transcripts are not used. The normalizer then rewrites each word
    on its own (a multi-word GLM rule cannot apply across timed words).
    """
    if isinstance(refs, Mapping) != isinstance(hyps, Mapping):
        raise TypeError("refs and hyps must both be mappings or both be sequences")
    metric = metric or _METRIC_OF_UNIT.get(unit, "WER")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    ref_map, hyp_map = _as_mapping(refs), _as_mapping(hyps)
    absent = check_ids(
        list(ref_map), list(hyp_map), missing=missing, ref_name=ref_name, hyp_name=hyp_name
    )

    ids = list(ref_map)
    if timed_words is not None:
        if unit == "char":
            raise ValueError("time-mediated alignment aligns words or phones, not characters")
        utterances = _timed_alignments(ids, timed_words, normalizer)
        head = [("alignment", "time-mediated (sclite -T)")]
    else:
        ref_tokens = [
            tokenize(ref_map[u], unit, normalizer=normalizer, char_spaces=char_spaces) for u in ids
        ]
        hyp_tokens = [
            tokenize(hyp_map.get(u, ""), unit, normalizer=normalizer, char_spaces=char_spaces)
            for u in ids
        ]
        costs = costs or SCLITE_COSTS
        codes = _aligner.align(ref_tokens, hyp_tokens, costs)
        utterances = [
            Alignment(u, tuple(r), tuple(h), c)
            for u, r, h, c in zip(ids, ref_tokens, hyp_tokens, codes, strict=True)
        ]
        head = [("alignment", describe_costs(costs))]
        if unit == "char":
            head.append(("characters", "with spaces" if char_spaces else "without spaces"))
    # The normalizer's settings go right after the alignment's, then the caller's own.
    if normalizer is not None and hasattr(normalizer, "settings"):
        head.extend(normalizer.settings())
    return ScoreResult(
        utterances,
        unit=unit,
        metric=metric,
        missing=absent,
        speakers=_speaker_map(ids, speakers),
        settings=[*head, *settings],
        ref_name=ref_name,
        hyp_name=hyp_name,
    )


def _normalize_timed(words: TimedWords, normalizer: Normalize | None) -> TimedWords:
    if normalizer is None:
        return list(words)
    out: list[tuple[str, float, float]] = []
    for word, start, end in words:
        pieces = normalizer([word])
        # A word the normalizer splits shares its time span evenly among the pieces.
        step = (end - start) / max(len(pieces), 1)
        out.extend(
            (piece, start + k * step, start + (k + 1) * step) for k, piece in enumerate(pieces)
        )
    return out


def _timed_alignments(
    ids: list[str],
    timed_words: tuple[Mapping[str, TimedWords], Mapping[str, TimedWords]],
    normalizer: Normalize | None,
) -> list[Alignment]:
    ref_times, hyp_times = timed_words
    utterances = []
    for u in ids:
        ref = _normalize_timed(ref_times.get(u, []), normalizer)
        hyp = _normalize_timed(hyp_times.get(u, []), normalizer)
        utterances.append(
            Alignment(
                u,
                tuple(w for w, _, _ in ref),
                tuple(w for w, _, _ in hyp),
                time_mediated_align(ref, hyp),
                ref_times=tuple((s, e) for _, s, e in ref),
                hyp_times=tuple((s, e) for _, s, e in hyp),
            )
        )
    return utterances


def describe_costs(costs: Costs) -> str:
    """The aligner's costs as a report header shows them."""
    name = {SCLITE_COSTS: "sclite", LEVENSHTEIN_COSTS: "levenshtein"}.get(costs, "custom")
    return f"{name} (substitution {costs.sub}, insertion {costs.ins}, deletion {costs.dele})"


def _speaker_map(
    ids: Sequence[str], speakers: Mapping[str, str] | Callable[[str], str] | None
) -> dict[str, str]:
    if speakers is None:
        return {}
    if callable(speakers):
        return {u: speakers(u) for u in ids}
    unknown = [u for u in ids if u not in speakers]
    if unknown:
        raise ScoreError(f"{len(unknown)} utterance(s) have no speaker: {_id_list(unknown)}")
    return {u: speakers[u] for u in ids}


def by_speaker(
    result: ScoreResult, utt2spk: Mapping[str, str] | Callable[[str], str] | None = None
) -> dict[str, ScoreResult]:
    """Split the totals by speaker, sorted by speaker id (the .sys report keeps file order)."""
    return result.by_speaker(utt2spk)


def _format_rate(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def kaldi_line(result: ScoreResult, metric: str | None = None) -> str:
    """Kaldi compute-wer's summary line, e.g. ``%WER 12.34 [ 56 / 454, 7 ins, 8 del, 41 sub ]``.

    ``metric`` defaults to the result's own (WER, CER or PER).
    """
    metric = metric or result.metric
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    return (
        f"%{metric} {_format_rate(result.wer)} [ {result.errors} / {result.ref_words}, "
        f"{result.ins} ins, {result.dels} del, {result.subs} sub ]"
    )


def ser_line(result: ScoreResult) -> str:
    """Kaldi's sentence error line, e.g. ``%SER 33.33 [ 1 / 3 ]``."""
    return f"%SER {_format_rate(result.ser)} [ {result.sentence_errors} / {result.sentences} ]"


def summary_lines(result: ScoreResult, metric: str | None = None) -> list[str]:
    """The three lines Kaldi's compute-wer prints."""
    return [
        kaldi_line(result, metric),
        ser_line(result),
        f"Scored {result.sentences} sentences, {len(result.missing)} not present in hyp.",
    ]


def format_alignment(a: Alignment) -> str:
    """One utterance as a block of sclite's .pra: id, counts, REF/HYP/Eval rows (errors upper
    case, gaps as ``*`` of the column's width), as sclite prints it without ``-s``."""

    return format_pra_block(a, case_sensitive=False)


def format_alignments(result: ScoreResult, metric: str | None = None) -> str:
    """The whole alignment report: Kaldi's summary lines, then one block per utterance."""
    header = "".join(line + "\n" for line in summary_lines(result, metric))
    return header + "\n" + "\n".join(format_alignment(a) for a in result.utterances)


def write_alignments(
    result: ScoreResult, path: str | os.PathLike, metric: str | None = None
) -> None:
    with atomic_write(path) as handle:
        handle.write(format_alignments(result, metric))


def read_transcripts(path: str | os.PathLike) -> dict[str, str]:
    """Read a Kaldi ``text`` file: utterance id, then the words (none: an empty transcript).

    Whitespace is normalized to single spaces; blank lines are skipped; a repeated id is an error.
    """

    return read_kaldi(path).texts


def write_transcripts(path: str | os.PathLike, transcripts: Mapping[str, str]) -> None:
    """Write a Kaldi ``text`` file atomically, sorted by id in C (byte) order as Kaldi wants."""
    with atomic_write(path) as handle:
        for utt_id in sorted(transcripts, key=lambda u: u.encode("utf-8")):
            text = " ".join(transcripts[utt_id].split())
            handle.write(f"{utt_id} {text}\n" if text else f"{utt_id}\n")
