"""Transcript files for ``asr score``: Kaldi text, sclite trn, CTM, STM, JSON lines, plain lines.

Every reader returns a ``Transcripts``: utterance id -> text (words joined by single spaces, in
file order), plus word times for CTM and speakers for STM. Bad input is one ``DataDirError``
line ``PATH:LINE: problem``.

Formats, and how they follow NIST sclite (SCTK 2.4, ``src/sclite``):

* ``kaldi``: ``utt-id word word ...``; an id alone is an empty transcript; blank lines skipped.
* ``trn``: ``word word ... (utt-id)``: the id is in the last parentheses (sclite's
  ``remove_id`` takes the last ``(`` and ``)``), so words such as ``(uh)`` may come before it.
  Lines starting ``;;`` are comments. Ids are kept as written: sclite lower-cases them (with
  the words) unless run with ``-s``.
* ``ctm``: ``file channel start duration word [confidence]``. Lines whose first non-blank
  character is ``;`` are comments (sclite: a ``;`` in column 1). The utterance id is the file,
  or ``file-channel`` when the file has words on several channels (sclite names its CTM
  utterances ``file-channel-NNNN``). Words are sorted by start time, stably (sclite expects
  the file sorted and does not sort it). A word ends at ``start + duration``.
* ``stm``: ``file channel speaker start end [<labels>] words``: one reference segment a line,
  ``;;`` comments, the optional label field is the token after ``end`` when it starts with
  ``<``. A segment whose text contains ``ignore_time_segment_in_scoring`` (any case, as
  sclite) is not scored and swallows the hypothesis words in its time span. Segment ids are
  ``FILE_CHANNEL_START-END`` with the times in centiseconds, 7 digits, e.g.
  ``sw02001_A_0000098-0001156``; repeats of an id get ``_2``, ``_3``... in file order.
* ``jsonl``: one JSON object a line with an id key (``utt_id``, ``id``, ``key``,
  ``audio_filepath``, ``audio``; the first present) and a text key (``text``, ``hyp``,
  ``transcript``, ``pred_text``, ``sentence``), or the keys given as ``id_key``/``text_key``.
  A line with several of the text keys (a NeMo manifest with ``text`` and ``pred_text``) is
  an error unless ``text_key`` says which: guessing would score the reference against itself.
* ``plain``: one transcript a line, no ids: the ids are the line numbers ``"1"``, ``"2"``...;
  blank lines are empty transcripts and count.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import DataDirError
from asr.fileio import read_text_lines

FORMATS = ("kaldi", "trn", "ctm", "stm", "jsonl", "plain")
ID_KEYS = ("utt_id", "id", "key", "audio_filepath", "audio")
TEXT_KEYS = ("text", "hyp", "transcript", "pred_text", "sentence")
IGNORE_SEGMENT = "ignore_time_segment_in_scoring"
# CTM alternation markers (sclite builds a word network from them); not supported here.
_ALTERNATION_MARKERS = ("<alt_begin>", "<alt>", "<alt_end>")
_SUFFIX_FORMATS = {".ctm": "ctm", ".stm": "stm", ".trn": "trn", ".jsonl": "jsonl", ".json": "jsonl"}
# How many data lines detect_format looks at.
_SNIFF_LINES = 50
_TRN_ID = re.compile(r"\(([^()]*)\)\s*$")

TimedWord = tuple[str, float, float]


@dataclass(frozen=True)
class Segment:
    """One STM line: a reference segment. ``ignored`` when it is not to be scored."""

    utt_id: str
    file: str
    channel: str
    speaker: str
    start: float
    end: float
    labels: str | None
    ignored: bool
    line: int


@dataclass
class Transcripts:
    """Transcripts read from one file.

    ``texts``: utterance id -> words joined by single spaces, in file order.
    ``times``: (CTM) utterance id -> ``(word, start, end)`` per word, sorted by start.
    ``durations``: (CTM) each word's duration column as read, for sclite-exact midpoints.
    ``speakers``: (STM) utterance id -> speaker; empty for formats without speakers.
    ``channels``: (CTM, STM) utterance id -> ``(file, channel)``.
    ``segments``: (STM) every segment in file order, the ignored ones included (they are not
    in ``texts``).
    """

    path: str
    format: str
    texts: dict[str, str]
    times: dict[str, list[TimedWord]] | None = None
    durations: dict[str, list[float]] | None = None
    speakers: dict[str, str] = field(default_factory=dict)
    channels: dict[str, tuple[str, str]] = field(default_factory=dict)
    segments: list[Segment] | None = None


def _error(path: str | os.PathLike, line: int, problem: str) -> DataDirError:
    return DataDirError(f"{path}:{line}: {problem}")


def _no_utterances(path: str | os.PathLike, lines: list[str]) -> DataDirError:
    return _error(path, max(1, len(lines)), "no utterances in the file")


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith(";")


def _parse_time(path: str | os.PathLike, number: int, token: str, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise _error(path, number, f"{what} {token!r} is not a number") from None
    if not math.isfinite(value):
        raise _error(path, number, f"{what} {token!r} is not a finite number")
    return value


def _add(path, number: int, texts: dict[str, str], utt: str, words: list[str]) -> None:
    if utt in texts:
        raise _error(path, number, f"duplicate utterance id {utt!r}")
    texts[utt] = " ".join(words)


# ---------------------------------------------------------------------------------------------
# Format detection


def _is_number(token: str) -> bool:
    try:
        return math.isfinite(float(token))
    except ValueError:
        return False


def _looks_like_ctm(fields: list[str]) -> bool:
    return len(fields) in (5, 6) and _is_number(fields[2]) and _is_number(fields[3])


def _looks_like_stm(fields: list[str]) -> bool:
    return (
        len(fields) >= 5
        and _is_number(fields[3])
        and _is_number(fields[4])
        and float(fields[4]) >= float(fields[3])
    )


def _sniff(lines: list[str]) -> str | None:
    data = [line for line in lines if line.strip() and not _is_comment(line)][:_SNIFF_LINES]
    if not data:
        return None
    if all(line.lstrip().startswith("{") for line in data):
        return "jsonl"
    if all(_TRN_ID.search(line) for line in data):
        return "trn"
    rows = [line.split() for line in data]
    # An STM has a speaker where a CTM has its start time, a CTM a word where an STM has its
    # end time; a Kaldi text of digits ("u1 1 2 3 4") would pass for either, so at least one
    # line must have the non-numeric field.
    if all(_looks_like_stm(r) for r in rows) and any(
        not _is_number(r[2]) or (len(r) > 5 and r[5].startswith("<")) for r in rows
    ):
        return "stm"
    if all(_looks_like_ctm(r) for r in rows) and any(not _is_number(r[4]) for r in rows):
        return "ctm"
    # Kaldi ids are unique and usually carry digits, '-' or '_'; the first words of plain
    # transcripts repeat ("the", "i") and seldom do. When every first word looks like an id,
    # a repeated one is a Kaldi file's duplicate id (reported by the reader), not plain text.
    firsts = [r[0] for r in rows if r]
    id_like = [bool(re.search(r"[\d_-]", f)) for f in firsts]
    if all(id_like) or (len(set(firsts)) == len(firsts) and any(id_like)):
        return "kaldi"
    return "plain"


def detect_format(path: str | os.PathLike) -> str:
    """The format of a transcript file: the suffix (.ctm .stm .trn .jsonl) when it has one of
    those, else guessed from the first lines (a file named ``text`` defaults to Kaldi)."""
    return _detect(path, read_text_lines(path))


def _detect(path: str | os.PathLike, lines: list[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in _SUFFIX_FORMATS:
        return _SUFFIX_FORMATS[suffix]
    guess = _sniff(lines)
    if guess is None:
        raise _no_utterances(path, lines)
    if Path(path).name == "text" and guess == "plain":
        return "kaldi"
    return guess


# ---------------------------------------------------------------------------------------------
# Readers


def read(
    path: str | os.PathLike,
    fmt: str = "auto",
    *,
    id_key: str | None = None,
    text_key: str | None = None,
) -> Transcripts:
    """Read a transcript file in ``fmt`` (one of FORMATS, or "auto" to detect it)."""
    lines = read_text_lines(path)
    if fmt == "auto":
        fmt = _detect(path, lines)
    if fmt not in FORMATS:
        raise ValueError(f"format must be 'auto' or one of {FORMATS}, not {fmt!r}")
    if fmt == "jsonl":
        result = _read_jsonl(path, lines, id_key, text_key)
    else:
        result = _READERS[fmt](path, lines)
    if not result.texts and not result.segments:
        raise _no_utterances(path, lines)
    return result


def read_kaldi(path: str | os.PathLike) -> Transcripts:
    """A Kaldi ``text`` file as it is, an empty file included (``read`` refuses that)."""
    return _read_kaldi(path, read_text_lines(path))


def _read_kaldi(path, lines: list[str]) -> Transcripts:
    texts: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if fields:
            _add(path, number, texts, fields[0], fields[1:])
    return Transcripts(str(path), "kaldi", texts)


def _read_trn(path, lines: list[str]) -> Transcripts:
    texts: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith(";;"):
            continue
        left, right = line.rfind("("), line.rfind(")")
        if left < 0 or right < left or line[right + 1 :].strip():
            raise _error(path, number, "no utterance id: a trn line ends with '(utt-id)'")
        utt = line[left + 1 : right]
        if not utt or utt.split() != [utt]:
            raise _error(path, number, f"bad utterance id {utt!r} (empty or with spaces)")
        _add(path, number, texts, utt, line[:left].split())
    return Transcripts(str(path), "trn", texts)


def _read_ctm(path, lines: list[str]) -> Transcripts:
    # (file, channel) -> [(start, line number, word, end, duration)], in order of appearance.
    groups: dict[tuple[str, str], list[tuple[float, int, str, float, float]]] = {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or _is_comment(line):
            continue
        if len(fields) not in (5, 6):
            raise _error(
                path,
                number,
                f"expected 'file channel start duration word [confidence]', "
                f"got {len(fields)} fields",
            )
        file, channel, start_token, dur_token, word = fields[:5]
        start = _parse_time(path, number, start_token, "start time")
        duration = _parse_time(path, number, dur_token, "duration")
        if start < 0:
            raise _error(path, number, f"negative start time {start_token}")
        if duration < 0:
            raise _error(path, number, f"negative duration {dur_token}")
        if len(fields) == 6:
            _parse_time(path, number, fields[5], "confidence")
        if word.lower() in _ALTERNATION_MARKERS:
            raise _error(path, number, f"CTM alternations ({word}) are not supported")
        # start + duration in double, as sclite computes a word's end (T2).
        groups.setdefault((file, channel), []).append(
            (start, number, word, start + duration, duration)
        )
    channels_of: dict[str, int] = {}
    for file, _ in groups:
        channels_of[file] = channels_of.get(file, 0) + 1
    texts: dict[str, str] = {}
    times: dict[str, list[TimedWord]] = {}
    durations: dict[str, list[float]] = {}
    channels: dict[str, tuple[str, str]] = {}
    for (file, channel), words in groups.items():
        utt = file if channels_of[file] == 1 else f"{file}-{channel}"
        words.sort(key=lambda w: w[0])  # stable: ties keep file order
        _add(path, words[0][1], texts, utt, [w[2] for w in words])
        times[utt] = [(w[2], w[0], w[3]) for w in words]
        durations[utt] = [w[4] for w in words]
        channels[utt] = (file, channel)
    return Transcripts(str(path), "ctm", texts, times, durations, channels=channels)


def _stm_id(file: str, channel: str, start: float, end: float) -> str:
    return f"{file}_{channel}_{round(start * 100):07d}-{round(end * 100):07d}"


def _read_stm(path, lines: list[str]) -> Transcripts:
    texts: dict[str, str] = {}
    speakers: dict[str, str] = {}
    channels: dict[str, tuple[str, str]] = {}
    segments: list[Segment] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or line.lstrip().startswith(";;"):
            continue
        if len(fields) < 5:
            raise _error(
                path,
                number,
                f"expected 'file channel speaker start end [<labels>] words', "
                f"got {len(fields)} fields",
            )
        file, channel, speaker = fields[:3]
        start = _parse_time(path, number, fields[3], "start time")
        end = _parse_time(path, number, fields[4], "end time")
        if start < 0:
            raise _error(path, number, f"negative start time {fields[3]}")
        if end < start:
            raise _error(path, number, f"negative duration: ends at {end} before {start}")
        words = fields[5:]
        labels = None
        if words and words[0].startswith("<"):
            labels, words = words[0], words[1:]
        utt = _stm_id(file, channel, start, end)
        seen[utt] = seen.get(utt, 0) + 1
        if seen[utt] > 1:
            utt = f"{utt}_{seen[utt]}"
        ignored = IGNORE_SEGMENT in " ".join(words).lower()
        segments.append(Segment(utt, file, channel, speaker, start, end, labels, ignored, number))
        if not ignored:
            _add(path, number, texts, utt, words)
            speakers[utt] = speaker
            channels[utt] = (file, channel)
    return Transcripts(
        str(path), "stm", texts, speakers=speakers, channels=channels, segments=segments
    )


def _read_jsonl(path, lines: list[str], id_key: str | None, text_key: str | None) -> Transcripts:
    texts: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _error(path, number, f"not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise _error(path, number, "not a JSON object")
        utt_key = id_key or next((k for k in ID_KEYS if k in obj), None)
        if utt_key is None or utt_key not in obj:
            wanted = repr(id_key) if id_key else "one of " + ", ".join(ID_KEYS)
            raise _error(path, number, f"no utterance id key ({wanted})")
        if text_key is not None:
            key = text_key if text_key in obj else None
        else:
            present = [k for k in TEXT_KEYS if k in obj]
            if len(present) > 1:
                raise _error(
                    path,
                    number,
                    f"several text keys ({', '.join(present)}); choose one with text_key",
                )
            key = present[0] if present else None
        if key is None:
            wanted = repr(text_key) if text_key else "one of " + ", ".join(TEXT_KEYS)
            raise _error(path, number, f"no text key ({wanted})")
        utt, text = obj[utt_key], obj[key]
        if isinstance(utt, bool) or not isinstance(utt, (str, int)) or str(utt).strip() == "":
            raise _error(path, number, f"utterance id {utt!r} is not a non-empty string")
        if not isinstance(text, str):
            raise _error(path, number, f"text {text!r} is not a string")
        _add(path, number, texts, str(utt), text.split())
    return Transcripts(str(path), "jsonl", texts)


def _read_plain(path, lines: list[str]) -> Transcripts:
    texts = {str(number): " ".join(line.split()) for number, line in enumerate(lines, 1)}
    return Transcripts(str(path), "plain", texts)


_READERS = {
    "kaldi": _read_kaldi,
    "trn": _read_trn,
    "ctm": _read_ctm,
    "stm": _read_stm,
    "plain": _read_plain,
}
