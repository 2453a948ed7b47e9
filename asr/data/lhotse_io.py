"""Lhotse manifests: a Kaldi data directory to a RecordingSet + SupervisionSet and back.

icefall and k2 users keep their data as Lhotse manifests (``recordings.jsonl.gz``,
``supervisions.jsonl.gz``); these two functions let them use a data directory of ours, and us
theirs, through the lhotse package itself (an optional extra, imported only here, when called).

Mapping (``to_lhotse``; ``from_lhotse`` is its inverse):

* a ``wav.scp`` entry is one Recording with the sample rate, channels and number of samples of
  its audio (read from the file's header; a ``cmd |`` pipe, with ``allow_pipe``, is run and
  decoded); a file becomes a ``file`` AudioSource, a pipe a ``command`` one (the command without
  its ``|``, written back as ``cmd |``);
* an utterance is one SupervisionSegment: its segment's start and duration (a segment end past
  the end of the audio, which Kaldi tolerates, is clipped to it), or the whole recording (its
  ``utt2dur`` when there is one, else the audio's length); text, speaker, gender (spk2gender)
  and every channel of the recording (our reader down-mixes them);
* back, ``segments`` is written only when some supervision is not one whole recording of the
  same id (then ``reco2dur`` too, as Lhotse's own Kaldi export), times to 8 decimals (Lhotse's
  precision: its ``SupervisionSegment.end`` rounds to 8 digits), and a segment's ``utt2dur`` is
  its end - start to 6 decimals (what ``asr data utt2dur`` writes).

``reco2dur`` (and, without segments, ``utt2dur``) is checked against the audio to within half a
sample, so a stale table is an error rather than a silently different duration. Alignments,
features, languages and custom fields are not carried. Everything is read and checked before
anything is written.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from asr.data.audio import MAX_SEGMENT_OVERSHOOT, audio_duration, run_pipe
from asr.data.datadir import (
    KNOWN_FILES,
    DataDir,
    Segment,
    is_pipe,
    spk2utt_from_utt2spk,
)
from asr.data.validate import validate_datadir
from asr.errors import AsrError, AudioError, ConfigError, DataDirError
from asr.fileio import atomic_write

log = logging.getLogger(__name__)

RECORDINGS = "recordings.jsonl.gz"
SUPERVISIONS = "supervisions.jsonl.gz"
# Lhotse's own precision for times (SupervisionSegment.end rounds to 8 digits); segment times
# with more decimals than this do not survive a round trip.
TIME_DIGITS = 8
_INSTALL = "pip install 'asr[lhotse]'"


@dataclass(frozen=True)
class AudioInfo:
    """What a Lhotse Recording needs to know of a wav.scp entry's audio."""

    sample_rate: int
    channels: int
    num_samples: int

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


# --- Kaldi -> Lhotse --------------------------------------------------------------------------


def to_lhotse(
    data_dir: str | os.PathLike, out_dir: str | os.PathLike, allow_pipe: bool = False
) -> tuple[Path, Path]:
    """Write ``OUT_DIR/recordings.jsonl.gz`` and ``OUT_DIR/supervisions.jsonl.gz`` for a data
    directory (see the module doc for the mapping); return their paths.

    The directory must pass ``validate_datadir`` (its first problem is the error); audio that
    cannot be read is a one-line error naming its wav.scp line. Nothing is written until every
    recording and utterance has been converted.
    """
    lhotse = _import_lhotse()
    source = Path(data_dir)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DataDirError(f"{out}: exists and is not a directory")
    problems = validate_datadir(source, check_files=True)
    if problems:
        more = f" (and {len(problems) - 1} more; asr data validate lists them)"
        raise DataDirError(problems[0] + (more if len(problems) > 1 else ""))
    data = DataDir.load(source)
    if not data.wav_scp:
        raise DataDirError(f"{source / 'wav.scp'}: file not found (Lhotse recordings need audio)")

    recordings = {}
    for reco in sorted(data.wav_scp):
        entry = data.wav_scp[reco]
        try:
            info = audio_info(entry, allow_pipe=allow_pipe)
        except AsrError as exc:
            raise type(exc)(f"{data.where('wav.scp', reco)}: recording '{reco}': {exc}") from None
        _check_duration(data, "reco2dur", reco, info.duration, info)
        recordings[reco] = lhotse.Recording(
            id=reco,
            sources=[_audio_source(lhotse, entry, info.channels)],
            sampling_rate=info.sample_rate,
            num_samples=info.num_samples,
            duration=info.duration,
            channel_ids=list(range(info.channels)),
        )

    genders = data.extra.get("spk2gender", {})
    supervisions = []
    for utt in data.utt_ids:
        reco, start, duration = _utterance_span(data, utt, recordings)
        info = _info_of(recordings[reco])
        speaker = data.utt2spk[utt]
        supervisions.append(
            lhotse.SupervisionSegment(
                id=utt,
                recording_id=reco,
                start=start,
                duration=duration,
                # A mono recording's channel is 0; an utterance of a multi-channel one is all of
                # them, as our reader down-mixes them into it.
                channel=0 if info.channels == 1 else list(range(info.channels)),
                text=data.text[utt] if data.text is not None else None,
                speaker=speaker,
                gender=genders.get(speaker),
            )
        )

    paths = out / RECORDINGS, out / SUPERVISIONS
    _write_jsonl_gz(paths[0], (r.to_dict() for r in recordings.values()))
    _write_jsonl_gz(paths[1], (s.to_dict() for s in supervisions))
    log.info(
        "%s: %d recordings, %d supervisions from %s",
        out,
        len(recordings),
        len(supervisions),
        source,
    )
    return paths


def audio_info(entry: str, allow_pipe: bool = False) -> AudioInfo:
    """Sample rate, channels and samples of a wav.scp entry's audio; AudioError if unreadable.

    A file is known from its header (``audio_duration`` first, for the project reader's checks
    and messages); a pipe runs (only with ``allow_pipe``) and its output is decoded, since a
    streamed WAV has no length in its header.
    """
    if not is_pipe(entry):
        audio_duration(entry)  # missing, empty, not audio, no samples: one AudioError
        try:
            info = sf.info(entry)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{entry}: cannot read the header ({exc})") from None
        return AudioInfo(info.samplerate, info.channels, info.frames)
    command = entry.rstrip()[:-1].strip()
    name = f"command '{command}'"
    if not allow_pipe:
        raise AudioError(
            f"'{entry}' is a shell pipe; it runs only with the opt-in flag --allow-pipes "
            "(allow_pipe=True)"
        )
    data = run_pipe(command, name)
    try:
        with sf.SoundFile(io.BytesIO(data)) as snd:
            rate, channels = snd.samplerate, snd.channels
            frames = sum(len(block) for block in snd.blocks(blocksize=1 << 16, always_2d=True))
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"{name}: output is not audio ({exc})") from None
    if frames == 0:
        raise AudioError(f"{name}: zero-length audio (no samples)")
    return AudioInfo(rate, channels, frames)


def _audio_source(lhotse: Any, entry: str, channels: int) -> Any:
    if is_pipe(entry):
        command = entry.rstrip()[:-1].strip()
        return lhotse.AudioSource(type="command", channels=list(range(channels)), source=command)
    return lhotse.AudioSource(type="file", channels=list(range(channels)), source=entry)


def _info_of(recording: Any) -> AudioInfo:
    return AudioInfo(recording.sampling_rate, recording.num_channels, recording.num_samples)


def _utterance_span(
    data: DataDir, utt: str, recordings: dict[str, Any]
) -> tuple[str, float, float]:
    """``(recording, start, duration)`` of an utterance, in seconds."""
    if data.segments is None:
        info = _info_of(recordings[utt])
        # utt2dur, when it agrees with the audio, is kept as it is so that it comes back
        # byte for byte; it differs from the audio's length by less than half a sample.
        duration = _check_duration(data, "utt2dur", utt, info.duration, info)
        return utt, 0.0, duration
    seg = data.segments[utt]
    info = _info_of(recordings[seg.recording])
    where = data.where("segments", utt)
    if seg.start >= info.duration:
        raise DataDirError(
            f"{where}: utterance '{utt}' starts at {seg.start} s, past the end of recording "
            f"'{seg.recording}' ({info.duration} s)"
        )
    end = info.duration if seg.end < 0 else seg.end
    if end - info.duration > MAX_SEGMENT_OVERSHOOT:
        raise DataDirError(
            f"{where}: utterance '{utt}' ends at {seg.end} s, past the end of recording "
            f"'{seg.recording}' ({info.duration} s)"
        )
    # Kaldi's extract-segments clips a small overshoot; Lhotse's validation does not allow it.
    end = min(end, info.duration)
    return seg.recording, seg.start, round(end - seg.start, TIME_DIGITS)


def _check_duration(data: DataDir, table: str, key: str, actual: float, info: AudioInfo) -> float:
    """The duration ``table`` gives ``key`` if it agrees with ``actual``, else a DataDirError;
    ``actual`` when the table is absent."""
    if table == "utt2dur":
        given = None if data.utt2dur is None else data.utt2dur.get(key)
    else:
        text = data.extra.get(table, {}).get(key)
        given = None if text is None else _float(text, data, table, key)
    if given is None:
        return actual
    fix = "run asr data utt2dur" if table == "utt2dur" else "remove it"
    if abs(given - actual) > 0.5 / info.sample_rate:
        raise DataDirError(
            f"{data.where(table, key)}: '{key}' lasts {given} s here but its audio lasts "
            f"{actual} s (a stale {table}? {fix})"
        )
    return given


def _float(text: str, data: DataDir, table: str, key: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataDirError(f"{data.where(table, key)}: '{key}': '{text}' is not a number") from None


def _write_jsonl_gz(path: Path, items: Iterable[dict]) -> None:
    """One JSON object per line, gzipped, as Lhotse's ``to_file`` writes, but atomically and
    reproducibly (no time stamp or temporary name in the gzip header)."""
    with (
        atomic_write(path, "wb") as handle,
        gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as packed,
    ):
        for item in items:
            packed.write((json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8"))


# --- Lhotse -> Kaldi --------------------------------------------------------------------------


def read_manifests(paths: Sequence[str | os.PathLike]) -> tuple[Path, Any, Path, Any]:
    """``(recordings path, RecordingSet, supervisions path, SupervisionSet)`` from a folder or
    from the two files themselves.

    In a folder they are the one ``*recordings*.jsonl[.gz]`` and the one
    ``*supervisions*.jsonl[.gz]`` there (icefall names them ``<corpus>_recordings_<part>...``);
    two given files are told apart by their content.
    """
    lhotse = _import_lhotse()
    if len(paths) == 1 and Path(paths[0]).is_dir():
        folder = Path(paths[0])
        found = []
        for kind in ("recordings", "supervisions"):
            matches = sorted(
                p
                for pattern in (f"*{kind}*.jsonl", f"*{kind}*.jsonl.gz")
                for p in folder.glob(pattern)
            )
            if not matches:
                raise DataDirError(f"{folder}: no {kind} manifest (*{kind}*.jsonl.gz) found")
            if len(matches) > 1:
                names = ", ".join(p.name for p in matches)
                raise DataDirError(
                    f"{folder}: {len(matches)} {kind} manifests ({names}); name the two files"
                )
            found.append(matches[0])
        return (
            found[0],
            _load(lhotse, found[0], lhotse.RecordingSet),
            found[1],
            _load(lhotse, found[1], lhotse.SupervisionSet),
        )
    if len(paths) == 1 and not Path(paths[0]).exists():
        raise DataDirError(f"{paths[0]}: not found")
    if len(paths) != 2:
        raise DataDirError(
            "give a manifest folder or two manifest files (recordings and supervisions), "
            f"not {len(paths)} paths"
        )
    kinds: dict[str, tuple[Path, Any]] = {}
    for path in map(Path, paths):
        manifest = _load(lhotse, path, None)
        kind = "recordings" if isinstance(manifest, lhotse.RecordingSet) else "supervisions"
        if kind in kinds:
            raise DataDirError(f"{path}: a second {kind} manifest (after {kinds[kind][0]})")
        kinds[kind] = path, manifest
    missing = {"recordings", "supervisions"} - kinds.keys()
    if missing:
        raise DataDirError(f"{paths[0]}, {paths[1]}: no {missing.pop()} manifest among them")
    return (*kinds["recordings"], *kinds["supervisions"])


def from_lhotse(
    manifests: Sequence[str | os.PathLike] | str | os.PathLike, data_dir: str | os.PathLike
) -> DataDir:
    """Write a Kaldi data directory from Lhotse recordings and supervisions manifests (a folder
    holding both, or the two files); return it, validated.

    Tables are wav.scp, text (when the supervisions have text), utt2spk, spk2utt, spk2gender
    (when every speaker's gender is known), utt2dur, and segments + reco2dur when some
    supervision is not one whole recording of the same id. What Kaldi tables cannot hold (other
    audio sources than files and commands, recording transforms, a supervision on some of a
    recording's channels, a speaker given two genders) is a DataDirError naming the manifest.
    The directory is written beside DATA_DIR, validated, and only then moved into place.
    """
    given = [manifests] if isinstance(manifests, (str, os.PathLike)) else list(manifests)
    reco_path, recordings, sup_path, supervisions = read_manifests(given)

    wav_scp: dict[str, str] = {}
    by_id: dict[str, Any] = {}
    for rec in recordings:
        if rec.id in by_id:
            raise DataDirError(f"{reco_path}: recording id '{rec.id}' appears twice")
        _check_id(rec.id, "recording", reco_path)
        wav_scp[rec.id] = _wav_entry(rec, reco_path)
        by_id[rec.id] = rec

    sups: dict[str, Any] = {}
    for sup in supervisions:
        if sup.id in sups:
            raise DataDirError(f"{sup_path}: supervision id '{sup.id}' appears twice")
        _check_id(sup.id, "supervision", sup_path)
        rec = by_id.get(sup.recording_id)
        if rec is None:
            raise DataDirError(
                f"{sup_path}: supervision '{sup.id}' refers to recording '{sup.recording_id}', "
                f"which is not in {reco_path}"
            )
        channels = sup.channel if isinstance(sup.channel, list) else [sup.channel]
        if sorted(channels) != sorted(rec.channel_ids):
            raise DataDirError(
                f"{sup_path}: supervision '{sup.id}' is on channel(s) {channels} of the "
                f"{rec.num_channels}-channel recording '{rec.id}'; a Kaldi utterance is every "
                "channel of its recording"
            )
        if sup.start < 0 or sup.duration <= 0:
            raise DataDirError(
                f"{sup_path}: supervision '{sup.id}' has start {sup.start} s and duration "
                f"{sup.duration} s (start must be >= 0, duration > 0)"
            )
        sups[sup.id] = sup
    if not sups:
        raise DataDirError(f"{sup_path}: no supervisions")

    # Without segments a Kaldi utterance is its recording: that needs one supervision per
    # recording, of the same id, covering it (to within half a sample).
    needs_segments = set(sups) != set(by_id) or any(
        sup.recording_id != sup.id or not _covers(sup, by_id[sup.recording_id])
        for sup in sups.values()
    )
    utt2spk = {}
    for utt, sup in sups.items():
        # Kaldi's convention for unknown speakers: each utterance is its own speaker.
        speaker = sup.speaker if sup.speaker else utt
        _check_id(speaker, "speaker", sup_path)
        utt2spk[utt] = speaker
    text = None
    if any(sup.text is not None for sup in sups.values()):
        text = {utt: _transcript(sup.text) for utt, sup in sups.items()}

    data = DataDir(
        path=Path(data_dir),
        utt2spk=utt2spk,
        spk2utt=spk2utt_from_utt2spk(utt2spk),
        wav_scp=wav_scp,
        text=text,
        utt2dur={utt: float(sup.duration) for utt, sup in sups.items()},
    )
    genders = _genders(sups.values(), utt2spk, sup_path)
    if genders is not None:
        data.extra["spk2gender"] = genders
    if needs_segments:
        data.segments = {
            utt: Segment(
                sup.recording_id,
                round(sup.start, TIME_DIGITS),
                round(sup.start + sup.duration, TIME_DIGITS),
            )
            for utt, sup in sups.items()
        }
        data.extra["reco2dur"] = {r: repr(float(rec.duration)) for r, rec in by_id.items()}
        # A segment's utt2dur is what `asr data utt2dur` writes for it (end - start to 6
        # decimals), so a directory whose utt2dur it wrote comes back as it was.
        data.utt2dur = {u: round(seg.end - seg.start, 6) for u, seg in data.segments.items()}
    _write_validated(data)
    log.info(
        "%s: %d utterances, %d speakers, %d recordings%s from %s and %s",
        data.path,
        len(utt2spk),
        len(data.spk2utt),
        len(wav_scp),
        " (with segments)" if needs_segments else "",
        reco_path,
        sup_path,
    )
    return data


def _wav_entry(rec: Any, manifest: Path) -> str:
    if len(rec.sources) != 1:
        raise DataDirError(
            f"{manifest}: recording '{rec.id}' has {len(rec.sources)} audio sources; a wav.scp "
            "entry is one file or command"
        )
    if rec.transforms:
        names = ", ".join(
            t["name"] if isinstance(t, dict) else type(t).__name__ for t in rec.transforms
        )
        raise DataDirError(
            f"{manifest}: recording '{rec.id}' has transforms ({names}), which a wav.scp entry "
            "cannot hold; save the transformed audio first"
        )
    source = rec.sources[0]
    if source.type == "file":
        return str(source.source)
    if source.type == "command":
        return f"{str(source.source).strip()} |"
    raise DataDirError(
        f"{manifest}: recording '{rec.id}' has a '{source.type}' audio source; only 'file' and "
        "'command' sources map to wav.scp"
    )


def _transcript(text: str | None) -> str:
    """A supervision's text as one table line: a line break inside would split the line, so
    those transcripts are re-spaced; other spacing is kept as it is (it round-trips)."""
    if text is None:
        return ""  # validation then names the utterance: Kaldi has no "no transcript"
    if "\n" in text or "\r" in text:
        return " ".join(text.split())
    return text.strip()


def _covers(sup: Any, rec: Any) -> bool:
    tolerance = 0.5 / rec.sampling_rate
    return sup.start <= tolerance and abs(sup.start + sup.duration - rec.duration) <= tolerance


def _genders(sups: Iterable[Any], utt2spk: dict[str, str], manifest: Path) -> dict[str, str] | None:
    """spk2gender when every speaker's gender is known (Kaldi wants every speaker in it)."""
    genders: dict[str, str] = {}
    unknown = set()
    for sup in sups:
        speaker = utt2spk[sup.id]
        if not sup.gender:
            unknown.add(speaker)
            continue
        if " " in sup.gender.strip():
            raise DataDirError(
                f"{manifest}: supervision '{sup.id}' has gender '{sup.gender}' (a spk2gender "
                "value is one word)"
            )
        gender = sup.gender.strip()
        if genders.setdefault(speaker, gender) != gender:
            raise DataDirError(
                f"{manifest}: speaker '{speaker}' is given gender '{genders[speaker]}' and "
                f"'{gender}' (supervision '{sup.id}')"
            )
    if not genders:
        return None
    if unknown - genders.keys():
        log.warning(
            "%s: %d speakers have no gender; spk2gender is not written",
            manifest,
            len(unknown - genders.keys()),
        )
        return None
    return genders


def _check_id(value: str, what: str, manifest: Path) -> None:
    if not value or any(c.isspace() for c in value):
        raise DataDirError(
            f"{manifest}: {what} id {value!r} is empty or contains whitespace (Kaldi ids cannot)"
        )


def _write_validated(data: DataDir) -> None:
    """Write ``data`` into a folder beside its path, validate it there, then move it in.

    A problem leaves DATA_DIR as it was (and no folder made for it); an existing DATA_DIR gets
    the new tables (each an atomic rename) and loses the Kaldi tables the new data lacks.
    """
    out = data.path
    if out.exists() and not out.is_dir():
        raise DataDirError(f"{out}: exists and is not a directory")
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        data.save(staging)
        problems = validate_datadir(staging, check_files=True)
        if problems:
            # Name the table as it would be in DATA_DIR, not in the staging folder.
            first = problems[0].replace(str(staging), str(out))
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise DataDirError(f"{first}{more}")
        if not out.exists() or not any(out.iterdir()):
            if out.exists():
                out.rmdir()
            os.replace(staging, out)
            return
        written = {p.name for p in staging.iterdir()}
        for name in sorted(written):
            os.replace(staging / name, out / name)
        for name in KNOWN_FILES:  # a table the new data lacks must not survive from before
            if name not in written and (out / name).is_file():
                (out / name).unlink()
        staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in made:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _load(lhotse: Any, path: Path, kind: Any) -> Any:
    """A manifest read eagerly by lhotse; anything wrong is one DataDirError naming the file."""
    if not path.is_file():
        raise DataDirError(f"{path}: file not found")
    try:
        manifest = lhotse.load_manifest(path, manifest_cls=kind)
    except Exception as exc:  # lhotse raises anything from ValueError to KeyError
        detail = str(exc).strip().splitlines()
        reason = detail[0] if detail else type(exc).__name__
        if reason.startswith("Unknown type of manifest"):
            reason = "empty, or a manifest of another kind"  # lhotse's message is just the path
        what = "a Lhotse manifest" if kind is None else f"a Lhotse {kind.__name__}"
        raise DataDirError(f"{path}: not {what} ({reason})") from None
    if kind is None and not isinstance(manifest, (lhotse.RecordingSet, lhotse.SupervisionSet)):
        raise DataDirError(
            f"{path}: a {type(manifest).__name__}; give a RecordingSet and a SupervisionSet"
        )
    return manifest


def _import_lhotse() -> Any:
    try:
        import lhotse
    except ImportError as exc:
        raise ConfigError(f"lhotse does not import ({exc}); {_INSTALL}") from None
    return lhotse
