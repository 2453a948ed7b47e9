"""Kaldi data directories: the tables (read and write) and the DataDir that holds them.

A data directory is a folder of small text tables keyed by their first token (``wav.scp``,
``text``, ``utt2spk``, ``spk2utt``, optional ``segments``, ``utt2dur``, ``feats.scp``,
``cmvn.scp``, ``utt2num_frames``), sorted in C (byte) order with unique keys, exactly as Kaldi's
``utils/validate_data_dir.sh`` expects, so Kaldi, ESPnet and Lhotse can read what we write.
Every problem is reported as ``FILE:LINE: what is wrong``. Operations on whole directories live
beside this module: validate, fix, utt2dur, subset (split, subset, copy) and combine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.data.audio import load_audio_entry
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
class Table:
    """A parsed table: values in file order, the line of each key, and what was wrong."""

    path: Path
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    unsorted: str | None = None  # the first out-of-order line, reported by validate only


def _parse_table(path: Path, allow_empty: bool = False) -> Table:
    """Parse ``key value...`` lines leniently: bad lines are skipped and described."""
    table = Table(path)
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


def read_tables(path: Path) -> dict[str, Table]:
    """Every known table present in data directory ``path``, parsed leniently."""
    if not path.is_dir():
        raise DataDirError(f"{path}: data directory not found")
    return {
        name: _parse_table(path / name, allow_empty=name == "text")
        for name in KNOWN_FILES
        if (path / name).is_file()
    }


def _strict(table: Table) -> Table:
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


def parse_positive(value: str, kind: type) -> float | int:
    number = kind(value)
    if not number > 0 or not np.isfinite(number):
        raise ValueError(value)
    return number


def _fmt_time(seconds: float) -> str:
    return f"{seconds:.2f}" if seconds == round(seconds, 2) else repr(seconds)


def is_pipe(entry: str) -> bool:
    return entry.rstrip().endswith("|")


def scp_file(entry: str) -> str:
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
        tables = {name: _strict(table) for name, table in read_tables(path).items()}
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
        data.utt2dur = _convert(tables.get("utt2dur"), lambda v: parse_positive(v, float))
        data.utt2num_frames = _convert(
            tables.get("utt2num_frames"), lambda v: parse_positive(v, int)
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


def _convert(table: Table | None, parse) -> dict | None:
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
