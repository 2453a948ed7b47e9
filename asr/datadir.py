"""Kaldi data directories: read, write, validate, fix, split and subset them.

A data directory is a folder of small text tables keyed by their first token (``wav.scp``,
``text``, ``utt2spk``, ``spk2utt``, optional ``segments``, ``utt2dur``, ``feats.scp``,
``cmvn.scp``, ``utt2num_frames``), sorted in C (byte) order with unique keys, exactly as Kaldi's
``utils/validate_data_dir.sh`` expects, so Kaldi, ESPnet and Lhotse can read what we write.
Every problem is reported as ``FILE:LINE: what is wrong``.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.errors import AsrError, DataDirError
from asr.fileio import atomic_write, read_bytes

log = logging.getLogger(__name__)

# Tables keyed by utterance id (besides utt2spk, which defines the utterances).
UTT_FILES = ("text", "segments", "utt2dur", "feats.scp", "utt2num_frames")
# Tables keyed by speaker id.
SPK_FILES = ("spk2utt", "cmvn.scp", "spk2gender")
# Tables keyed by recording id (the utterance id when there is no ``segments``).
RECO_FILES = ("wav.scp", "reco2file_and_channel", "reco2dur")
KNOWN_FILES = ("utt2spk", *UTT_FILES, *SPK_FILES, *RECO_FILES)

BACKUP_DIR = ".backup"  # as Kaldi's utils/fix_data_dir.sh


@dataclass(frozen=True)
class Segment:
    """One line of ``segments``: an utterance is ``[start, end)`` seconds of a recording.

    ``end`` of -1 means "to the end of the recording", as Kaldi's extract-segments allows.
    """

    recording: str
    start: float
    end: float

    def __str__(self) -> str:
        return f"{self.recording} {_fmt_time(self.start)} {_fmt_time(self.end)}"


# --- reading and writing one table ------------------------------------------------------------


@dataclass
class _Table:
    """A parsed table: values in file order, the line of each key, and what was wrong."""

    path: Path
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    unsorted: str | None = None  # the first out-of-order line, reported by validate only


def _parse_table(path: Path, allow_empty: bool = False) -> _Table:
    """Parse ``key value...`` lines leniently: bad lines are skipped and described."""
    table = _Table(path)
    data = read_bytes(path)
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    elif raw_lines:
        # Kaldi's validate_data_dir.sh rejects a last line without its newline.
        table.problems.append(f"{path}:{len(raw_lines)}: no newline at the end of the file")
    previous: str | None = None
    for number, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            table.problems.append(f"{path}:{number}: not valid UTF-8")
            continue
        parts = line.split(maxsplit=1)
        if not parts:
            table.problems.append(f"{path}:{number}: empty line")
            continue
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if not value and not allow_empty:
            table.problems.append(f"{path}:{number}: '{key}' has no value")
            continue
        if key in table.values:
            table.problems.append(
                f"{path}:{number}: duplicate id '{key}' (first on line {table.lines[key]})"
            )
            continue
        if previous is not None and key < previous and table.unsorted is None:
            table.unsorted = (
                f"{path}:{number}: not sorted: '{key}' comes after '{previous}' "
                "(ids must be in C byte order, as LC_ALL=C sort)"
            )
        previous = key
        table.values[key] = value
        table.lines[key] = number
    return table


def _read_tables(path: Path) -> dict[str, _Table]:
    """Every known table present in data directory ``path``, parsed leniently."""
    if not path.is_dir():
        raise DataDirError(f"{path}: data directory not found")
    return {
        name: _parse_table(path / name, allow_empty=name == "text")
        for name in KNOWN_FILES
        if (path / name).is_file()
    }


def _strict(table: _Table) -> _Table:
    if table.problems:
        raise DataDirError(table.problems[0])
    return table


def read_kaldi_map(path: str | os.PathLike, allow_empty: bool = False) -> dict[str, str]:
    """Read a Kaldi table into ``{first token: rest of line}``.

    Raises DataDirError naming ``file:line`` for non-UTF-8 text, a line with no value (unless
    ``allow_empty``), an empty line or a duplicate key. Order is not checked here (validate does).
    """
    return _strict(_parse_table(Path(path), allow_empty)).values


def write_kaldi_map(
    path: str | os.PathLike, mapping: dict[str, str] | Iterable[tuple[str, str]]
) -> None:
    """Write ``key value`` lines sorted by key in C order, atomically (never half a file)."""
    items = mapping.items() if isinstance(mapping, dict) else mapping
    rows = sorted((str(k), str(v)) for k, v in items)
    with atomic_write(path) as handle:
        for key, value in rows:
            if not key or any(c.isspace() for c in key):
                raise DataDirError(f"{path}: id {key!r} is empty or contains whitespace")
            handle.write(f"{key} {value}\n" if value else f"{key}\n")


def spk2utt_from_utt2spk(utt2spk: dict[str, str]) -> dict[str, list[str]]:
    """Invert utt2spk; each speaker's utterances are sorted, as Kaldi's utt2spk_to_spk2utt.pl."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return dict(sorted(spk2utt.items()))


def parse_segment(value: str) -> Segment:
    """Parse the value part of a ``segments`` line; ValueError says what is wrong."""
    parts = value.split()
    if len(parts) != 3:
        raise ValueError(f"expected '<recording> <start> <end>', got '{value}'")
    try:
        start, end = float(parts[1]), float(parts[2])
    except ValueError:
        raise ValueError(f"start/end times '{parts[1]} {parts[2]}' are not numbers") from None
    if not (np.isfinite(start) and np.isfinite(end)) or start < 0:
        raise ValueError(f"start time {parts[1]} is negative or not finite")
    if end != -1 and end <= start:
        raise ValueError(f"end time {parts[2]} is not after start time {parts[1]}")
    return Segment(parts[0], start, end)


def _parse_positive(value: str, kind: type) -> float | int:
    number = kind(value)
    if not number > 0 or not np.isfinite(number):
        raise ValueError(value)
    return number


def _fmt_time(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds == round(seconds, 2) else repr(seconds)


def _is_pipe(entry: str) -> bool:
    return entry.rstrip().endswith("|")


def _scp_file(entry: str) -> str:
    """The file behind a wav.scp/feats.scp value: drop ark offsets (``x.ark:123``)."""
    head, sep, tail = entry.rpartition(":")
    return head if sep and tail.isdigit() else entry


# --- the data directory --------------------------------------------------------------------


@dataclass
class DataDir:
    """A Kaldi data directory in memory. Optional tables are None when their file is absent.

    ``wav_scp`` is keyed by recording (= utterance unless ``segments`` is present) and is an
    empty dict for a features-only directory (``feats.scp`` but no ``wav.scp``).
    """

    path: Path
    utt2spk: dict[str, str]
    spk2utt: dict[str, list[str]]
    wav_scp: dict[str, str]
    text: dict[str, str] | None = None
    segments: dict[str, Segment] | None = None
    utt2dur: dict[str, float] | None = None
    feats_scp: dict[str, str] | None = None
    cmvn_scp: dict[str, str] | None = None
    utt2num_frames: dict[str, int] | None = None
    # Other known tables (spk2gender, reco2file_and_channel, reco2dur) kept as plain strings.
    extra: dict[str, dict[str, str]] = field(default_factory=dict)
    lines: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> DataDir:
        """Read a data directory; malformed lines raise DataDirError naming file and line.

        Consistency between the tables is not checked here: use ``validate_datadir``.
        """
        path = Path(path)
        tables = {name: _strict(table) for name, table in _read_tables(path).items()}
        if "utt2spk" not in tables:
            raise DataDirError(f"{path / 'utt2spk'}: file not found")
        if "wav.scp" not in tables and "feats.scp" not in tables:
            raise DataDirError(f"{path / 'wav.scp'}: file not found (nor feats.scp)")
        utt2spk = tables["utt2spk"].values
        spk2utt = (
            {spk: utts.split() for spk, utts in tables["spk2utt"].values.items()}
            if "spk2utt" in tables
            else spk2utt_from_utt2spk(utt2spk)
        )
        data = cls(
            path=path,
            utt2spk=utt2spk,
            spk2utt=spk2utt,
            wav_scp=tables["wav.scp"].values if "wav.scp" in tables else {},
            text=tables["text"].values if "text" in tables else None,
            cmvn_scp=tables["cmvn.scp"].values if "cmvn.scp" in tables else None,
            feats_scp=tables["feats.scp"].values if "feats.scp" in tables else None,
            extra={
                n: tables[n].values
                for n in ("spk2gender", "reco2file_and_channel", "reco2dur")
                if n in tables
            },
            lines={name: table.lines for name, table in tables.items()},
        )
        data.segments = _convert(tables.get("segments"), parse_segment)
        data.utt2dur = _convert(tables.get("utt2dur"), lambda v: _parse_positive(v, float))
        data.utt2num_frames = _convert(
            tables.get("utt2num_frames"), lambda v: _parse_positive(v, int)
        )
        return data

    @property
    def utt_ids(self) -> list[str]:
        """Utterance ids in C order."""
        return sorted(self.utt2spk)

    @property
    def speakers(self) -> list[str]:
        return sorted(set(self.utt2spk.values()))

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write every table that is not None (sorted, atomically) into ``path`` (default: own)."""
        out = Path(path) if path is not None else self.path
        out.mkdir(parents=True, exist_ok=True)
        write_kaldi_map(out / "utt2spk", self.utt2spk)
        write_kaldi_map(out / "spk2utt", {s: " ".join(sorted(u)) for s, u in self.spk2utt.items()})
        if self.wav_scp:
            write_kaldi_map(out / "wav.scp", self.wav_scp)
        if self.text is not None:
            write_kaldi_map(out / "text", self.text)
        if self.segments is not None:
            write_kaldi_map(out / "segments", {u: str(s) for u, s in self.segments.items()})
        if self.utt2dur is not None:
            # repr() is the shortest text that reads back as the same float.
            write_kaldi_map(out / "utt2dur", {u: repr(float(d)) for u, d in self.utt2dur.items()})
        if self.feats_scp is not None:
            write_kaldi_map(out / "feats.scp", self.feats_scp)
        if self.cmvn_scp is not None:
            write_kaldi_map(out / "cmvn.scp", self.cmvn_scp)
        if self.utt2num_frames is not None:
            write_kaldi_map(
                out / "utt2num_frames", {u: str(n) for u, n in self.utt2num_frames.items()}
            )
        for name, table in self.extra.items():
            write_kaldi_map(out / name, table)
        return out

    def where(self, name: str, key: str) -> str:
        """``path/name:line`` of ``key`` in table ``name`` (just the path if unknown)."""
        line = self.lines.get(name, {}).get(key)
        return f"{self.path / name}:{line}" if line else str(self.path / name)

    def audio_entry(self, utt_id: str) -> tuple[str, float | None, float | None]:
        """The wav.scp value and the ``(start, end)`` seconds (None = whole) of an utterance."""
        if utt_id not in self.utt2spk:
            raise DataDirError(f"{self.path / 'utt2spk'}: no utterance '{utt_id}'")
        if self.segments is not None:
            seg = self.segments.get(utt_id)
            if seg is None:
                raise DataDirError(f"{self.path / 'segments'}: utterance '{utt_id}' has no segment")
            if seg.recording not in self.wav_scp:
                raise DataDirError(
                    f"{self.where('segments', utt_id)}: recording '{seg.recording}' of utterance "
                    f"'{utt_id}' is not in wav.scp"
                )
            return self.wav_scp[seg.recording], seg.start, None if seg.end < 0 else seg.end
        if utt_id not in self.wav_scp:
            raise DataDirError(f"{self.path / 'wav.scp'}: utterance '{utt_id}' is not in wav.scp")
        return self.wav_scp[utt_id], None, None

    def load_audio(
        self, utt_id: str, sample_rate: int | None = None, allow_pipe: bool = False
    ) -> tuple[np.ndarray, int]:
        """Read an utterance's audio (its segment, if any) as float32 mono.

        Errors name the wav.scp line: ``data/train/wav.scp:12: utterance 'x': ...``.
        """
        from asr.audio import load_audio_entry

        entry, start, end = self.audio_entry(utt_id)
        reco = self.segments[utt_id].recording if self.segments is not None else utt_id
        try:
            return load_audio_entry(entry, sample_rate, allow_pipe=allow_pipe, start=start, end=end)
        except AsrError as exc:
            raise type(exc)(f"{self.where('wav.scp', reco)}: utterance '{utt_id}': {exc}") from None

    def subset(self, utt_ids: Iterable[str]) -> DataDir:
        """A new DataDir (same path) holding only ``utt_ids``, every table filtered to match."""
        keep = set(utt_ids)
        unknown = sorted(keep - self.utt2spk.keys())
        if unknown:
            raise DataDirError(
                f"{self.path / 'utt2spk'}: utterance '{unknown[0]}' is not in the data directory"
                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
            )
        return self._filtered(keep)

    def _filtered(self, keep: set[str]) -> DataDir:
        def pick(table: dict | None, keys: set[str]) -> dict | None:
            return None if table is None else {k: v for k, v in table.items() if k in keys}

        utt2spk = {u: s for u, s in self.utt2spk.items() if u in keep}
        speakers = set(utt2spk.values())
        segments = pick(self.segments, keep)
        recordings = {s.recording for s in segments.values()} if segments is not None else keep
        extra = {}
        for name, table in self.extra.items():
            extra[name] = pick(table, speakers if name in SPK_FILES else recordings)
        return DataDir(
            path=self.path,
            utt2spk=utt2spk,
            spk2utt=spk2utt_from_utt2spk(utt2spk),
            wav_scp=pick(self.wav_scp, recordings),
            text=pick(self.text, keep),
            segments=segments,
            utt2dur=pick(self.utt2dur, keep),
            feats_scp=pick(self.feats_scp, keep),
            cmvn_scp=pick(self.cmvn_scp, speakers),
            utt2num_frames=pick(self.utt2num_frames, keep),
            extra=extra,
        )


def _convert(table: _Table | None, parse) -> dict | None:
    if table is None:
        return None
    out = {}
    for key, value in table.values.items():
        try:
            out[key] = parse(value)
        except ValueError as exc:
            detail = str(exc) if str(exc) != value else f"'{value}' is not a positive number"
            raise DataDirError(f"{table.path}:{table.lines[key]}: '{key}': {detail}") from None
    return out


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
    tables = _read_tables(path)
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
    problems += _check_speakers(utt2spk, tables.get("spk2utt"))
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
                problem = None if _is_pipe(entry) else _audio_file_problem(entry)
                if problem:
                    problems.append(
                        f"{wav.path}:{wav.lines[key]}: audio file '{entry}' of '{key}' {problem}"
                    )
    for name, kind in (("utt2dur", float), ("utt2num_frames", int)):
        if name in tables:
            table = tables[name]
            for utt, value in table.values.items():
                try:
                    _parse_positive(value, kind)
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
                    if not _is_pipe(entry) and not os.path.isfile(_scp_file(entry)):
                        problems.append(
                            f"{table.path}:{table.lines[key]}: file '{_scp_file(entry)}' "
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


def _check_speakers(utt2spk: _Table, spk2utt: _Table | None) -> list[str]:
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


# --- fix -------------------------------------------------------------------------------------


@dataclass
class FixReport:
    """What ``fix_datadir`` did: how many utterances it kept and why it dropped the others."""

    path: Path
    kept: int
    dropped: dict[str, str]  # utterance id -> reason
    removed_lines: int  # malformed, duplicate or orphan lines removed from the tables
    backup_dir: Path
    unfixable: list[str]  # problems left for a person (validate will still report them)

    def summary_lines(self) -> list[str]:
        lines = [f"{self.path}: kept {self.kept} utterances, dropped {len(self.dropped)}"]
        for reason, count in sorted(Counter(self.dropped.values()).items()):
            lines.append(f"  dropped {count}: {reason}")
        if self.removed_lines:
            lines.append(f"  removed {self.removed_lines} malformed, duplicate or orphan lines")
        lines.append(f"  backup of the old files in {self.backup_dir}")
        lines += [f"  not fixed: {p}" for p in self.unfixable]
        return lines


def fix_datadir(path: str | os.PathLike) -> FixReport:
    """Repair a data directory in place, as Kaldi's ``utils/fix_data_dir.sh``.

    Keeps the old files in ``DIR/.backup/``, drops unreadable/duplicate lines, drops every
    utterance that is missing from a per-utterance table, has an empty transcript or whose
    audio (or feature) file is missing, writes every table sorted and regenerates spk2utt.
    """
    path = Path(path)
    tables = _read_tables(path)
    removed = sum(len(t.problems) for t in tables.values())
    if "utt2spk" in tables:
        utt2spk = {u: s for u, s in tables["utt2spk"].values.items() if len(s.split()) == 1}
        removed += len(tables["utt2spk"].values) - len(utt2spk)
    elif "spk2utt" in tables:
        utt2spk = {u: spk for spk, utts in tables["spk2utt"].values.items() for u in utts.split()}
    else:
        raise DataDirError(f"{path / 'utt2spk'}: file not found (nor spk2utt): cannot fix")
    if "wav.scp" not in tables and "feats.scp" not in tables:
        raise DataDirError(f"{path / 'wav.scp'}: file not found (nor feats.scp): cannot fix")

    backup = path / BACKUP_DIR
    backup.mkdir(exist_ok=True)
    for name in tables:
        shutil.copy2(path / name, backup / name)

    dropped: dict[str, str] = {}

    def drop(utt: str, reason: str) -> None:
        dropped.setdefault(utt, reason)

    wav = tables["wav.scp"].values if "wav.scp" in tables else None
    segments: dict[str, Segment] | None = None
    if "segments" in tables:
        segments = {}
        for utt, value in tables["segments"].values.items():
            try:
                segments[utt] = parse_segment(value)
            except ValueError:
                drop(utt, "bad line in segments")
    for name in UTT_FILES:
        if name in tables:
            for utt in utt2spk:
                if utt not in tables[name].values:
                    drop(utt, f"not in {name}")
    if "text" in tables:
        for utt in utt2spk:
            if tables["text"].values.get(utt) == "":
                drop(utt, "empty transcript")
    for name, kind in (("utt2dur", float), ("utt2num_frames", int)):
        for utt, value in tables.get(name, _Table(path)).values.items():
            try:
                _parse_positive(value, kind)
            except ValueError:
                drop(utt, f"bad value in {name}")
    if wav is not None:
        for utt in utt2spk:
            reco = segments[utt].recording if segments is not None and utt in segments else utt
            entry = wav.get(reco)
            if entry is None:
                drop(utt, "not in wav.scp")
            elif not _is_pipe(entry) and not os.path.isfile(entry):
                drop(utt, "audio file missing")
    if "feats.scp" in tables:
        for utt, entry in tables["feats.scp"].values.items():
            if not _is_pipe(entry) and not os.path.isfile(_scp_file(entry)):
                drop(utt, "feature file missing")

    keep = {u for u in utt2spk if u not in dropped}
    speakers = {utt2spk[u] for u in keep}
    recordings = {segments[u].recording for u in keep} if segments is not None else keep
    # Lines of per-utterance tables whose utterance is not in utt2spk go too; count them.
    removed += sum(
        1
        for name in UTT_FILES
        if name in tables
        for utt in tables[name].values
        if utt not in utt2spk
    )
    if wav is not None and segments is None:
        removed += sum(1 for reco in wav if reco not in utt2spk)

    def pick(name: str) -> dict[str, str] | None:
        if name not in tables:
            return None
        keys = speakers if name in SPK_FILES else recordings if name in RECO_FILES else keep
        return {k: v for k, v in tables[name].values.items() if k in keys}

    data = DataDir(
        path=path,
        utt2spk={u: s for u, s in utt2spk.items() if u in keep},
        spk2utt={},
        wav_scp=pick("wav.scp") or {},
        text=pick("text"),
        segments={u: s for u, s in segments.items() if u in keep} if segments is not None else None,
        feats_scp=pick("feats.scp"),
        cmvn_scp=pick("cmvn.scp"),
        extra={
            n: pick(n) for n in ("spk2gender", "reco2file_and_channel", "reco2dur") if n in tables
        },
    )
    data.spk2utt = spk2utt_from_utt2spk(data.utt2spk)
    if "utt2dur" in tables:
        data.utt2dur = {u: float(v) for u, v in pick("utt2dur").items()}
    if "utt2num_frames" in tables:
        data.utt2num_frames = {u: int(v) for u, v in pick("utt2num_frames").items()}
    data.save()

    unfixable = _check_speakers(_table_of(path / "utt2spk", data.utt2spk), None)
    if data.cmvn_scp is not None:
        unfixable += [
            f"{path / 'cmvn.scp'}: speaker '{s}' has no entry"
            for s in sorted(speakers - data.cmvn_scp.keys())
        ]
    report = FixReport(path, len(keep), dict(sorted(dropped.items())), removed, backup, unfixable)
    log.debug("; ".join(report.summary_lines()))
    return report


def _table_of(path: Path, values: dict[str, str]) -> _Table:
    keys = sorted(values)
    return _Table(path, {k: values[k] for k in keys}, {k: i for i, k in enumerate(keys, start=1)})


# --- utt2dur --------------------------------------------------------------------------------


@dataclass
class Utt2DurReport:
    """What ``compute_utt2dur`` wrote and which utterances it had to skip (id -> error)."""

    path: Path
    written: int
    failed: dict[str, str]


def compute_utt2dur(path: str | os.PathLike, allow_pipe: bool = False) -> Utt2DurReport:
    """Write ``DIR/utt2dur`` (seconds per utterance), as Kaldi's ``utils/data/get_utt2dur.sh``.

    Plain files are timed from their headers, segments from their times; pipes (with
    ``allow_pipe``) are decoded. An unreadable utterance is logged, skipped and counted.
    """
    from tqdm import tqdm

    from asr.audio import audio_duration, load_audio_entry

    data = DataDir.load(path)
    durations: dict[str, float] = {}
    failed: dict[str, str] = {}
    reco_cache: dict[str, float] = {}

    def recording_length(reco: str) -> float:
        if reco not in reco_cache:
            entry = data.wav_scp[reco]
            if _is_pipe(entry):
                wave, rate = load_audio_entry(entry, allow_pipe=allow_pipe)
                reco_cache[reco] = len(wave) / rate
            else:
                reco_cache[reco] = audio_duration(entry)
        return reco_cache[reco]

    for utt in tqdm(data.utt_ids, desc=f"utt2dur {data.path}", unit="utt", leave=False):
        segment = data.segments.get(utt) if data.segments is not None else None
        reco = segment.recording if segment is not None else utt
        try:
            entry, start, end = data.audio_entry(utt)
            if start is not None and end is not None:
                durations[utt] = end - start
            else:
                durations[utt] = recording_length(reco) - (start or 0.0)
                if durations[utt] <= 0:
                    raise DataDirError(f"segment of '{utt}' starts after the end of '{entry}'")
        except AsrError as exc:
            failed[utt] = f"{data.where('wav.scp', reco)}: utterance '{utt}': {exc}"
            log.warning("skipped: %s", failed[utt])
    write_kaldi_map(data.path / "utt2dur", {u: repr(round(d, 6)) for u, d in durations.items()})
    log.info(
        "%s: wrote durations of %d utterances (%.1f hours), %d failed",
        data.path / "utt2dur",
        len(durations),
        sum(durations.values()) / 3600,
        len(failed),
    )
    return Utt2DurReport(data.path / "utt2dur", len(durations), failed)


# --- split and subset ------------------------------------------------------------------------


def subset_datadir(
    path: str | os.PathLike, utt_ids: Iterable[str], out_path: str | os.PathLike
) -> Path:
    """Write a data directory holding only ``utt_ids`` of ``path`` (Kaldi's subset_data_dir.sh).

    Other top-level files that are not Kaldi tables (``feats.yaml``, global CMVN stats, ...)
    are copied unchanged, so the subset stays usable on its own.
    """
    source = Path(path)
    out = Path(out_path)
    if out.resolve() == source.resolve():
        raise DataDirError(f"{out}: a subset cannot overwrite its source data directory")
    data = DataDir.load(source).subset(utt_ids)
    _write_subset(data, source, out)
    return out


def subset_datadir_by_speaker(
    path: str | os.PathLike,
    speakers: Iterable[str],
    out_path: str | os.PathLike,
    exclude: bool = False,
) -> Path:
    """Write a data directory holding the utterances of ``speakers`` (every utterance of
    every speaker but those with ``exclude``), as Kaldi's ``subset_data_dir.sh --spk-list``.

    A speaker to keep that is not in the directory is an error (a typo would otherwise give a
    silently smaller set); one to exclude that is not there is ignored, so one list of held-out
    speakers serves every directory. An empty result is an error.
    """
    source = Path(path)
    out = Path(out_path)
    if out.resolve() == source.resolve():
        raise DataDirError(f"{out}: a subset cannot overwrite its source data directory")
    data = DataDir.load(source)
    chosen = set(speakers)
    unknown = sorted(chosen - data.spk2utt.keys() - set(data.utt2spk.values()))
    if unknown and not exclude:
        raise DataDirError(
            f"{source / 'utt2spk'}: speaker '{unknown[0]}' is not in the data directory"
            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
        )
    keep = [u for u, s in data.utt2spk.items() if (s in chosen) != exclude]
    if not keep:
        raise DataDirError(f"{source}: no utterances left after excluding the listed speakers")
    _write_subset(data.subset(keep), source, out)
    return out


def copy_datadir(
    path: str | os.PathLike, out_path: str | os.PathLike, text: str | os.PathLike | None = None
) -> Path:
    """Copy a data directory (Kaldi's copy_data_dir.sh), features and all; with ``text``, the
    copy's transcripts come from that Kaldi table instead (e.g. phones in place of words).

    The new transcripts must cover exactly the directory's utterances: one missing or extra is
    a DataDirError naming it and the file.
    """
    source = Path(path)
    out = Path(out_path)
    if out.resolve() == source.resolve():
        raise DataDirError(f"{out}: a copy cannot overwrite its source data directory")
    data = DataDir.load(source)
    if text is not None:
        table = read_kaldi_map(text, allow_empty=True)
        missing = sorted(data.utt2spk.keys() - table.keys())
        extra = sorted(table.keys() - data.utt2spk.keys())
        for ids, what in ((missing, "has no line for utterance"), (extra, "has unknown utterance")):
            if ids:
                more = f" (and {len(ids) - 1} more)" if len(ids) > 1 else ""
                raise DataDirError(f"{text}: {what} '{ids[0]}' of {source}{more}")
        data.text = table
    _write_subset(data, source, out)
    return out


def _write_subset(data: DataDir, source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in KNOWN_FILES:  # a table absent from the subset must not survive from before
        if (out / name).is_file():
            (out / name).unlink()
    data.save(out)
    for item in source.iterdir():
        if item.is_file() and item.name not in KNOWN_FILES and not item.name.startswith("."):
            shutil.copy2(item, out / item.name)


def split_datadir(path: str | os.PathLike, num_splits: int) -> list[Path]:
    """Split by speaker into ``DIR/split{N}/{1..N}``, as Kaldi's ``split_data.sh`` (--per-spk).

    No speaker is divided; each part gets a contiguous run of speakers (in C order) chosen to
    balance the number of utterances.
    """
    source = Path(path)
    data = DataDir.load(source)
    speakers = data.speakers
    if num_splits < 1:
        raise DataDirError(f"{source}: number of splits must be at least 1, got {num_splits}")
    if len(speakers) < num_splits:
        raise DataDirError(
            f"{source}: cannot split {len(speakers)} speakers into {num_splits} parts "
            "(splits are by speaker)"
        )
    counts = Counter(data.utt2spk.values())
    parts = _balanced_runs([counts[s] for s in speakers], num_splits)
    out_dirs = []
    for index, (first, last) in enumerate(parts, start=1):
        part = set(speakers[first:last])
        keep = {u for u, s in data.utt2spk.items() if s in part}
        out = source / f"split{num_splits}" / str(index)
        _write_subset(data.subset(keep), source, out)
        out_dirs.append(out)
    log.info("%s: split %d speakers into %d parts", source, len(speakers), num_splits)
    return out_dirs


def _balanced_runs(weights: list[int], parts: int) -> list[tuple[int, int]]:
    """Cut ``weights`` into ``parts`` non-empty contiguous runs with sums near total/parts."""
    cumulative = np.cumsum([0, *weights])
    total = cumulative[-1]
    bounds = [0]
    for k in range(1, parts):
        lo = bounds[-1] + 1  # at least one item in this run
        hi = len(weights) - (parts - k)  # leave one item for each later run
        target = total * k / parts
        best = min(range(lo, hi + 1), key=lambda i: (abs(cumulative[i] - target), i))
        bounds.append(best)
    bounds.append(len(weights))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


# --- combine ---------------------------------------------------------------------------------


def combine_datadirs(srcs: Iterable[str | os.PathLike], dst: str | os.PathLike) -> DataDir:
    """Write the union of data directories ``srcs`` into ``dst``, as Kaldi's combine_data.sh.

    An utterance id in two sources is an error naming both; so is a recording (wav.scp id),
    speaker gender or segment given differently by two sources. A table is kept only when
    every source has it (as Kaldi; a warning names a source without it), except ``segments``:
    when only some sources have one, the others get whole-recording segments (``utt utt 0
    <duration>``, from utt2dur or the audio header, as Kaldi's get_segments_for_data.sh; ``-1``,
    "to the end", for a pipe or unreadable header). cmvn.scp is dropped when a speaker of two
    sources has different statistics in them. spk2utt is regenerated; other files are not
    copied. Returns the combined directory (already written).
    """
    sources = [Path(s) for s in srcs]
    if not sources:
        raise DataDirError("combine needs at least one source data directory")
    out = Path(dst)
    for source in sources:
        if out.resolve() == source.resolve():
            raise DataDirError(
                f"{out}: the combined directory cannot overwrite its source {source}"
            )
    dirs = [DataDir.load(s) for s in sources]
    first_seen: dict[str, DataDir] = {}
    for data in dirs:
        for utt in data.utt_ids:
            if utt in first_seen:
                raise DataDirError(
                    f"{data.where('utt2spk', utt)}: utterance '{utt}' is also in "
                    f"{first_seen[utt].where('utt2spk', utt)} (utterance ids must be unique "
                    "across combined directories)"
                )
            first_seen[utt] = data

    def union(name: str, tables: list[dict | None], on_conflict: str = "error") -> dict | None:
        absent = [d.path for d, t in zip(dirs, tables, strict=True) if t is None]
        if absent:
            if len(absent) < len(dirs):
                log.warning(
                    "%s: not found, so the combined directory has no %s", absent[0] / name, name
                )
            return None
        merged: dict = {}
        where: dict[str, str] = {}
        for data, table in zip(dirs, tables, strict=True):
            for key, value in table.items():
                if key in merged and merged[key] != value:
                    conflict = (
                        f"{data.where(name, key)}: '{key}' is '{value}' here but "
                        f"'{merged[key]}' in {where[key]}"
                    )
                    if on_conflict == "error":
                        raise DataDirError(conflict)
                    log.warning("%s; the combined directory has no %s", conflict, name)
                    return None
                merged[key] = value
                where[key] = data.where(name, key)
        return merged

    wav_scp = union("wav.scp", [d.wav_scp or None for d in dirs])
    feats_scp = union("feats.scp", [d.feats_scp for d in dirs])
    if wav_scp is None and feats_scp is None:
        raise DataDirError(
            f"{sources[0]}: cannot combine: not every source has wav.scp, nor every one feats.scp"
        )
    segments = None
    if wav_scp is not None and any(d.segments is not None for d in dirs):
        segments = union("segments", [_segments_or_whole(d) for d in dirs])
    utt2spk = {u: s for d in dirs for u, s in d.utt2spk.items()}
    combined = DataDir(
        path=out,
        utt2spk=utt2spk,
        spk2utt=spk2utt_from_utt2spk(utt2spk),
        wav_scp=wav_scp or {},
        text=union("text", [d.text for d in dirs]),
        segments=segments,
        utt2dur=union("utt2dur", [d.utt2dur for d in dirs]),
        feats_scp=feats_scp,
        cmvn_scp=union("cmvn.scp", [d.cmvn_scp for d in dirs], on_conflict="drop"),
        utt2num_frames=union("utt2num_frames", [d.utt2num_frames for d in dirs]),
    )
    for name in ("spk2gender", "reco2file_and_channel", "reco2dur"):
        if wav_scp is None and name != "spk2gender":
            continue
        table = union(name, [d.extra.get(name) for d in dirs])
        if table is not None:
            combined.extra[name] = table
    save_replacing(combined)
    log.debug(
        "%s: %d utterances, %d speakers from %d directories",
        out,
        len(utt2spk),
        len(combined.spk2utt),
        len(dirs),
    )
    return combined


def _segments_or_whole(data: DataDir) -> dict[str, Segment]:
    """``data``'s segments, or one spanning each whole recording (get_segments_for_data.sh)."""
    if data.segments is not None:
        return data.segments
    from asr.audio import audio_duration

    segments = {}
    for utt in data.utt_ids:
        if data.utt2dur is not None and utt in data.utt2dur:
            end = data.utt2dur[utt]
        else:
            try:
                entry = data.wav_scp[utt]
                end = -1.0 if _is_pipe(entry) else audio_duration(entry)
            except (AsrError, KeyError):
                end = -1.0  # reading it will report the problem; combining does not need it
        segments[utt] = Segment(utt, 0.0, end)
    return segments


def save_replacing(data: DataDir) -> None:
    """Save ``data`` (each table atomically), then remove tables that an earlier, different
    write left in its folder (an old segments file would otherwise survive a rerun)."""
    data.save()
    present = {
        "text": data.text,
        "segments": data.segments,
        "utt2dur": data.utt2dur,
        "feats.scp": data.feats_scp,
        "cmvn.scp": data.cmvn_scp,
        "utt2num_frames": data.utt2num_frames,
        "wav.scp": data.wav_scp or None,
        **{
            name: data.extra.get(name)
            for name in ("spk2gender", "reco2file_and_channel", "reco2dur")
        },
    }
    for name, table in present.items():
        if table is None and (data.path / name).is_file():
            (data.path / name).unlink()
