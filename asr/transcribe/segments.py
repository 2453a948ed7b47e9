"""Subtitle cues and whisper's segments, made from a transcript's timed words.

A cue (an SRT/VTT block, a segment of whisper's JSON) ends before it would pass
:data:`CUE_MAX_CHARS` characters (two lines of :data:`LINE_MAX_CHARS`) or :data:`CUE_MAX_SECONDS`,
or at a pause of :data:`CUE_PAUSE_SECONDS` between words. Our CTC models give no sentence
boundaries, so pauses and length are what a segment can follow; whisper's own segments are
what its decoder chose and run up to 30 s.

:func:`whisper_segments` writes them with the field names of whisper's ``transcribe()`` result
(``id``, ``seek``, ``start``, ``end``, ``text``, ``tokens``, ``temperature``, ``avg_logprob``,
``compression_ratio``, ``no_speech_prob``, ``words`` of ``word``/``start``/``end``/
``probability``), with whisper's spacing: segment texts and words begin with a space.
``tokens`` is empty (whisper's are its BPE ids, which we have none of), ``avg_logprob`` is the
mean natural log of the words' confidences, and the fields that describe whisper's own
fallback decoding hold neutral values (temperature 0, compression ratio 1, no-speech 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from asr.decoding.timing import TimedUnit

LINE_MAX_CHARS = 42  # the usual subtitle line limit (Netflix, BBC guidelines)
CUE_MAX_CHARS = 2 * LINE_MAX_CHARS
CUE_MAX_SECONDS = 7.0
CUE_PAUSE_SECONDS = 1.0


def cue_groups(words: Sequence[TimedUnit]) -> list[list[TimedUnit]]:
    """The words of each cue, in order (see the module docstring for where a cue ends)."""
    groups: list[list[TimedUnit]] = []
    for word in words:
        if groups:
            current = groups[-1]
            chars = sum(len(w.text) + 1 for w in current) + len(word.text)
            if (
                chars <= CUE_MAX_CHARS
                and word.end - current[0].start <= CUE_MAX_SECONDS
                and word.start - current[-1].end < CUE_PAUSE_SECONDS
                and len(_wrap([w.text for w in current] + [word.text])) <= 2
            ):
                current.append(word)
                continue
        groups.append([word])
    return groups


def cues(words: Sequence[TimedUnit]) -> list[tuple[float, float, list[str]]]:
    """Group words into subtitle cues: ``(start, end, lines)`` with at most two lines each."""
    return [
        (g[0].start, max(g[-1].end, g[0].start + 0.001), _wrap([w.text for w in g]))
        for g in cue_groups(words)
    ]


def _wrap(texts: list[str]) -> list[str]:
    """Greedy line filling at LINE_MAX_CHARS (a single longer word gets a line of its own)."""
    lines: list[str] = []
    for text in texts:
        if lines and len(lines[-1]) + 1 + len(text) <= LINE_MAX_CHARS:
            lines[-1] += " " + text
        else:
            lines.append(text)
    return lines


def whisper_segments(words: Sequence[TimedUnit]) -> list[dict[str, Any]]:
    """whisper-style segments (see the module docstring) of the cues of ``words``."""
    segments: list[dict[str, Any]] = []
    for number, members in enumerate(cue_groups(words)):
        start, end = members[0].start, max(members[-1].end, members[0].start + 0.001)
        logs = [math.log(max(w.confidence, 1e-10)) for w in members]
        segments.append(
            {
                "id": number,
                "seek": 0,
                "start": round(start, 3),
                "end": round(end, 3),
                "text": " " + " ".join(w.text for w in members),
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": round(sum(logs) / len(logs), 4) if logs else 0.0,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
                "words": [
                    {
                        "word": " " + w.text,
                        "start": round(w.start, 3),
                        "end": round(w.end, 3),
                        "probability": round(w.confidence, 4),
                    }
                    for w in members
                ],
            }
        )
    return segments
