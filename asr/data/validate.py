"""Check a data directory as Kaldi's ``utils/validate_data_dir.sh`` does."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from asr.data.datadir import (
    UTT_FILES,
    Table,
    is_pipe,
    parse_positive,
    parse_segment,
    read_tables,
    scp_file,
    spk2utt_from_utt2spk,
)

log = logging.getLogger(__name__)


# --- validate --------------------------------------------------------------------------------


def validate_datadir(path: str | os.PathLike, check_files: bool = True) -> list[str]:
    """Every problem in a data directory, one line each (``file:line: problem``); [] = valid.

    Checks what Kaldi's validate_data_dir.sh checks: UTF-8, one ``id value`` per line, unique
    ids in C order, utt2spk/spk2utt agreement, the same utterances in every per-utterance table,
    segments' recordings in wav.scp, non-empty transcripts and (``check_files``) that audio and
    feature files exist.
    """
    path = Path(path)
    if not path.is_dir():
        return [f"{path}: data directory not found"]
    tables = read_tables(path)
    problems: list[str] = []
    for table in tables.values():
        problems += table.problems
        if table.unsorted:
            problems.append(table.unsorted)
    if "utt2spk" not in tables:
        problems.append(f"{path / 'utt2spk'}: file not found (required)")
        return problems
    if "spk2utt" not in tables:
        problems.append(f"{path / 'spk2utt'}: file not found (asr data fix regenerates it)")
    if "wav.scp" not in tables and "feats.scp" not in tables:
        problems.append(f"{path / 'wav.scp'}: file not found (required, unless feats.scp exists)")

    utt2spk = tables["utt2spk"]
    problems += check_speakers(utt2spk, tables.get("spk2utt"))
    source = tables.get("text", utt2spk)  # name the transcript line when there is one

    def missing(name: str) -> None:
        table = tables[name]
        for utt, line in table.lines.items():
            if utt not in utt2spk.values:
                problems.append(f"{table.path}:{line}: utterance '{utt}' is not in utt2spk")
        for utt in utt2spk.values:
            if utt not in table.values:
                src = source if utt in source.values else utt2spk
                problems.append(f"{src.path}:{src.lines[utt]}: utterance '{utt}' is not in {name}")

    for name in UTT_FILES:
        if name in tables:
            missing(name)
    if "text" in tables:
        text = tables["text"]
        for utt, transcript in text.values.items():
            if not transcript:
                problems.append(
                    f"{text.path}:{text.lines[utt]}: utterance '{utt}' has an empty transcript"
                )
    if "wav.scp" in tables:
        wav = tables["wav.scp"]
        if "segments" in tables:
            segments = tables["segments"]
            for utt, value in segments.values.items():
                where = f"{segments.path}:{segments.lines[utt]}"
                try:
                    seg = parse_segment(value)
                except ValueError as exc:
                    problems.append(f"{where}: utterance '{utt}': {exc}")
                    continue
                if seg.recording not in wav.values:
                    problems.append(
                        f"{where}: recording '{seg.recording}' of utterance '{utt}' "
                        "is not in wav.scp"
                    )
        else:
            missing("wav.scp")
        if check_files:
            for key, entry in wav.values.items():
                problem = None if is_pipe(entry) else _audio_file_problem(entry)
                if problem:
                    problems.append(
                        f"{wav.path}:{wav.lines[key]}: audio file '{entry}' of '{key}' {problem}"
                    )
    for name, kind in (("utt2dur", float), ("utt2num_frames", int)):
        if name in tables:
            table = tables[name]
            for utt, value in table.values.items():
                try:
                    parse_positive(value, kind)
                except ValueError:
                    problems.append(
                        f"{table.path}:{table.lines[utt]}: '{utt}': '{value}' "
                        "is not a positive number"
                    )
    speakers = set(utt2spk.values.values())
    for name in ("cmvn.scp", "spk2gender"):
        if name in tables:
            table = tables[name]
            for spk, line in table.lines.items():
                if spk not in speakers:
                    problems.append(f"{table.path}:{line}: speaker '{spk}' is not in utt2spk")
            for spk in sorted(speakers - table.values.keys()):
                problems.append(f"{table.path}: speaker '{spk}' has no entry")
    if check_files:
        for name in ("feats.scp", "cmvn.scp"):
            if name in tables:
                table = tables[name]
                for key, entry in table.values.items():
                    if not is_pipe(entry) and not os.path.isfile(scp_file(entry)):
                        problems.append(
                            f"{table.path}:{table.lines[key]}: file '{scp_file(entry)}' "
                            f"of '{key}' not found"
                        )
    return problems


def _audio_file_problem(entry: str) -> str | None:
    """Why ``entry`` cannot be read as an audio file (not found, unreadable...), or None.

    Only regular files are opened: opening a named pipe would wait for a writer (and consume
    what it writes), and a pipe is a legitimate audio source.
    """
    try:
        info = os.stat(entry)
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(info.st_mode):
        return "is a directory"
    if not stat.S_ISREG(info.st_mode):
        return None
    try:
        with open(entry, "rb"):
            pass
    except PermissionError:
        return "cannot be read (permission denied)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def check_speakers(utt2spk: Table, spk2utt: Table | None) -> list[str]:
    problems = []
    for utt, spk in utt2spk.values.items():
        if len(spk.split()) != 1:
            problems.append(
                f"{utt2spk.path}:{utt2spk.lines[utt]}: '{utt}' must have exactly one "
                f"speaker id, got '{spk}'"
            )
    # Kaldi requires utt2spk to be sorted by speaker too (speaker ids as prefixes of utterance
    # ids guarantee it); its split and per-speaker tools rely on that.
    order = list(utt2spk.values.items())
    for (prev_utt, prev_spk), (utt, spk) in zip(order, order[1:], strict=False):
        if spk < prev_spk:
            problems.append(
                f"{utt2spk.path}:{utt2spk.lines[utt]}: speaker '{spk}' of '{utt}' sorts before "
                f"'{prev_spk}' of '{prev_utt}': utt2spk must also be sorted by speaker "
                "(make speaker ids prefixes of utterance ids)"
            )
            break
    if spk2utt is None:
        return problems
    expected = spk2utt_from_utt2spk(utt2spk.values)
    for spk, line in spk2utt.lines.items():
        utts = spk2utt.values[spk].split()
        if spk not in expected:
            problems.append(f"{spk2utt.path}:{line}: speaker '{spk}' is not in utt2spk")
        elif utts != expected[spk]:
            problems.append(
                f"{spk2utt.path}:{line}: utterances of speaker '{spk}' do not match utt2spk "
                "(asr data fix regenerates spk2utt)"
            )
    for spk in expected:
        if spk not in spk2utt.values:
            problems.append(f"{spk2utt.path}: speaker '{spk}' of utt2spk has no entry")
    return problems
