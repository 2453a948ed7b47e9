"""Write a :class:`~asr.transcribe.Transcript` as text, JSON, subtitles (SRT, WebVTT), TSV or CTM.

- ``txt``: the text, one line.
- ``json``: :meth:`Transcript.to_dict`: whisper's ``text``, ``segments`` (the subtitle cues
  below, each with its words) and ``language``, and our words and units with times and
  confidences.
- ``srt`` / ``vtt``: subtitle cues made from the word times (:func:`asr.transcribe.segments.cues`).
- ``tsv``: the same cues as ``start<TAB>end<TAB>text`` in integer milliseconds, with a header line,
  as whisper writes it.
- ``ctm``: NIST CTM, one word a line: ``stem 1 start duration word confidence`` (seconds).

Every file is written atomically: a failure leaves no half-written file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from asr.errors import ConfigError
from asr.fileio import atomic_write, remove_stale_temps
from asr.transcribe.recognizer import Transcript
from asr.transcribe.segments import (  # noqa: F401  (re-exported: the cue limits live there)
    CUE_MAX_CHARS,
    CUE_MAX_SECONDS,
    CUE_PAUSE_SECONDS,
    LINE_MAX_CHARS,
    cues,
)

FORMATS = ("txt", "json", "srt", "vtt", "tsv", "ctm")


def parse_formats(spec: str | Iterable[str]) -> list[str]:
    """``"srt,vtt"`` or ``"all"`` (or a list of names) -> known format names, in FORMATS order."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen: set[str] = set()
    for name in (n.strip().lower() for n in names):
        if name == "all":
            chosen.update(FORMATS)
        elif name in FORMATS:
            chosen.add(name)
        elif name:
            raise ConfigError(
                f"unknown output format '{name}' (choose from {', '.join(FORMATS)}, all)"
            )
    if not chosen:
        raise ConfigError("no output format given")
    return [f for f in FORMATS if f in chosen]


def _timestamp(seconds: float, decimal: str) -> str:
    ms = max(0, int(round(seconds * 1000)))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


def format_txt(transcript: Transcript) -> str:
    return transcript.text + "\n"


def format_json(transcript: Transcript) -> str:
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=1) + "\n"


def format_srt(transcript: Transcript) -> str:
    blocks = []
    for number, (start, end, lines) in enumerate(cues(transcript.words), 1):
        times = f"{_timestamp(start, ',')} --> {_timestamp(end, ',')}"
        blocks.append(f"{number}\n{times}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def format_vtt(transcript: Transcript) -> str:
    blocks = ["WEBVTT\n"]
    for start, end, lines in cues(transcript.words):
        times = f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}"
        blocks.append(f"{times}\n" + "\n".join(lines) + "\n")
    return "\n".join(blocks)


def format_tsv(transcript: Transcript) -> str:
    rows = ["start\tend\ttext"]
    for start, end, lines in cues(transcript.words):
        rows.append(f"{int(round(start * 1000))}\t{int(round(end * 1000))}\t{' '.join(lines)}")
    return "\n".join(rows) + "\n"


def format_ctm(transcript: Transcript, stem: str) -> str:
    rows = [
        f"{stem} 1 {w.start:.3f} {max(w.end - w.start, 0.0):.3f} {w.text} {w.confidence:.3f}"
        for w in transcript.words
    ]
    return "".join(row + "\n" for row in rows)


def format_transcript(transcript: Transcript, fmt: str, stem: str = "audio") -> str:
    """The file contents of ``transcript`` in format ``fmt``."""
    if fmt == "ctm":
        # CTM fields are whitespace-separated: the recording id must be one token
        return format_ctm(transcript, "_".join(stem.split()) or "audio")
    formatter = {
        "txt": format_txt,
        "json": format_json,
        "srt": format_srt,
        "vtt": format_vtt,
        "tsv": format_tsv,
    }.get(fmt)
    if formatter is None:
        raise ConfigError(f"unknown output format '{fmt}' (choose from {', '.join(FORMATS)})")
    return formatter(transcript)


def write_transcript(
    transcript: Transcript, out_dir: str | os.PathLike, stem: str, formats: Iterable[str]
) -> list[Path]:
    """Write ``out_dir/stem.<fmt>`` for each format (atomically); return the paths written.

    ``stem`` may hold sub-directories (``a/b``), which are created. The temporary files a
    killed earlier run left for these same outputs are removed first. A file that cannot be
    written raises OSError with its errno and ``filename`` set to that output's path (not to
    the temporary file's).
    """
    paths = []
    for fmt in formats:
        text = format_transcript(transcript, fmt, Path(stem).name)
        path = Path(out_dir) / f"{stem}.{fmt}"
        try:
            remove_stale_temps(path)
            with atomic_write(path) as handle:
                handle.write(text)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        paths.append(path)
    return paths


def assign_stems(inputs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    """Drop repeated inputs and give every input an output stem no other input has.

    Returns the ``(path, stem)`` pairs kept, in input order, and how many repeats were dropped
    (the same file, however spelled, is transcribed once). Stems are compared case-insensitively
    (macOS and Windows file systems are). Inputs whose stems collide get their path relative to
    the common parent folder of the colliding inputs (``sub1/x.wav``, ``sub2/x.wav`` ->
    ``sub1/x``, ``sub2/x``), with the extension kept when only it differs (``x.wav``,
    ``x.flac``); a stem still taken after that (only with overlapping directory and file
    inputs) gets ``-2``, ``-3``... chosen to match no other input's stem. The result depends on
    the inputs alone, so a rerun writes the same files.
    """
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    for path, stem in inputs:
        key = path if path == "-" else os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            kept.append((path, stem))
    repeats = len(inputs) - len(kept)

    def fold(stem: str) -> str:
        return stem.casefold()

    groups: dict[str, list[int]] = {}
    for i, (_, stem) in enumerate(kept):
        groups.setdefault(fold(stem), []).append(i)
    stems = [stem for _, stem in kept]
    for members in groups.values():
        files = [i for i in members if kept[i][0] != "-"]
        if len(members) < 2 or not files:
            continue
        absolute = [os.path.abspath(kept[i][0]) for i in files]
        parent = os.path.commonpath([os.path.dirname(a) for a in absolute])
        relative = [Path(os.path.relpath(a, parent)) for a in absolute]
        without = [str(r.with_suffix("")) for r in relative]
        folded = {fold(w) for w in without}
        others = {fold(stems[i]) for i in members if i not in files}  # stdin's
        unique = len(folded) == len(without) and not folded & others
        for i, rel, bare in zip(files, relative, without, strict=True):
            stems[i] = bare if unique else str(rel)
    # the last resort: numbered, avoiding every stem in use so that no later input is hit
    taken = {fold(stem) for stem in stems}
    used: set[str] = set()
    for i, stem in enumerate(stems):
        if fold(stem) in used:
            number = 2
            while fold(f"{stem}-{number}") in taken:
                number += 1
            stem = f"{stem}-{number}"
            stems[i] = stem
            taken.add(fold(stem))
        used.add(fold(stem))
    return [(path, stem) for (path, _), stem in zip(kept, stems, strict=True)], repeats
