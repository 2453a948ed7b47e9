"""The Free Spoken Digit Dataset (FSDD): download it and turn it into Kaldi data directories.

FSDD is ``recordings/{digit}_{speaker}_{index}.wav``: every speaker says each digit 50 times
(index 0-49), 8 kHz mono. The dataset's official split puts index 0-4 in the test set and the
rest in training; here index 5-9 of the training part is held out as ``dev``. A
leave-one-speaker-out protocol (``test_speaker``) tests on every recording of one speaker and
trains on the others, so the test speaker's voice is never seen in training.

Utterance ids are ``{speaker}-{digit}_{index}``: the speaker prefix keeps each speaker's
utterances together in Kaldi's sort order, which utt2spk must follow. The transcript is the
digit as a lower-case English word.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import soundfile

from asr.corpora.download import download, extract_tar_safely, file_digest, find_audio_folder
from asr.data.audio import load_audio
from asr.data.datadir import DataDir, spk2utt_from_utt2spk
from asr.errors import AsrError, AudioError, ConfigError, CorpusError

log = logging.getLogger(__name__)

TAG = "v1.0.10"
URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/{TAG}.tar.gz"
ARCHIVE_NAME = f"free-spoken-digit-dataset-{TAG}.tar.gz"
FOLDER_IN_ARCHIVE = f"free-spoken-digit-dataset-{TAG.removeprefix('v')}"  # GitHub drops the v
RECORDINGS = "recordings"
# Release v1.0.10 has 6 speakers x 10 digits x 50 takes; a later release only adds to it.
MIN_RECORDINGS = 3000
# GitHub publishes no checksum of its tag archives, and does not promise that they stay
# byte-identical (the gzip around the same files may change), so the archive itself cannot be
# pinned. What is pinned is its contents: the SHA-256 of the `sha256sum` listing of the
# release's recordings, i.e. `cd recordings && LC_ALL=C sha256sum *.wav | sha256sum`. It was
# computed from the blobs of the git tag v1.0.10 (its tree recordings/ has 3000 entries) and
# matches a copy of the unpacked release; see recordings_digest.
RECORDINGS_SHA256 = "1801eae019c063377d98f831d3f93574f259475df7332bb0e3d1b080fb5e6959"
# the release archive is ~3000 wavs of ~25 MiB and a few scripts: tighter than the defaults
MAX_ARCHIVE_BYTES = 1024**3
MAX_ARCHIVE_MEMBERS = 10_000

SAMPLE_RATE = 8000
SPLITS = ("train", "dev", "test")
TEST_INDICES = range(0, 5)  # the dataset's official test set
DEV_INDICES = range(5, 10)
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
GENDERS = {"male": "m", "female": "f", "m": "m", "f": "f"}  # Kaldi's spk2gender holds m or f

# Speaker names of letters and digits only: every such character sorts after the "-" of the
# utterance id, so sorting utterance ids also sorts their speakers (Kaldi requires both).
# The index has no leading zeros, so two files can never map to the same utterance id.
_NAME = re.compile(r"(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9]+)_(?P<index>0|[1-9][0-9]*)")


@dataclass(frozen=True)
class Recording:
    """One FSDD file, parsed from its name."""

    path: Path
    digit: int
    speaker: str
    index: int

    @property
    def utt_id(self) -> str:
        return f"{self.speaker}-{self.digit}_{self.index}"

    @property
    def text(self) -> str:
        return DIGIT_WORDS[self.digit]


def parse_name(path: str | os.PathLike) -> Recording:
    """``recordings/7_jackson_32.wav`` -> Recording; ValueError when the name does not parse."""
    path = Path(path)
    match = _NAME.fullmatch(path.stem) if path.suffix == ".wav" else None
    if match is None:
        raise ValueError(
            f"{path.name!r} is not an FSDD file name ({{digit}}_{{speaker}}_{{index}}.wav, "
            "speaker of letters and digits)"
        )
    return Recording(path, int(match["digit"]), match["speaker"], int(match["index"]))


def _find_recordings(corpus_dir: Path) -> Path:
    """The folder of wavs: CORPUS_DIR/recordings, or CORPUS_DIR itself when it holds the wavs."""
    return find_audio_folder(corpus_dir, RECORDINGS, "FSDD")


def _check_audio(path: Path) -> float:
    """Duration in seconds of a good FSDD wav; AudioError saying what is wrong otherwise."""
    try:
        info = soundfile.info(str(path))
    except Exception:  # libsndfile reports every kind of bad file with one type
        info = None  # load_audio below says what is wrong, in the project's words
    if info is not None:
        if info.format != "WAV":
            raise AudioError(f"{path}: {info.format} audio, FSDD recordings are WAV")
        if info.channels != 1:
            raise AudioError(f"{path}: {info.channels} channels, FSDD recordings are mono")
        if info.samplerate != SAMPLE_RATE:
            raise AudioError(f"{path}: {info.samplerate} Hz, FSDD recordings are {SAMPLE_RATE} Hz")
    # Decoding every file (under a second for the whole corpus) also catches truncated and
    # NaN-filled files, which a header check passes.
    wave, rate = load_audio(path)
    return len(wave) / rate


def _scan(recordings_dir: Path) -> tuple[list[Recording], dict[str, float], list[str]]:
    """Every usable recording (sorted by utterance id), its duration, and what was skipped."""
    recordings: list[Recording] = []
    durations: dict[str, float] = {}
    skipped: list[str] = []
    for path in sorted(recordings_dir.iterdir()):
        if path.suffix != ".wav":
            # The git archive keeps only wavs in recordings/; anything else is no part of it.
            log.debug("ignoring %s (not a .wav file)", path)
            continue
        try:
            recording = parse_name(path)
            durations[recording.utt_id] = _check_audio(path)
        except (ValueError, AsrError) as exc:
            # AsrError messages name the file already; parse_name's do not.
            problem = str(exc) if isinstance(exc, AsrError) else f"{path}: {exc}"
            log.warning("skipped %s", problem)
            skipped.append(problem)
            continue
        recordings.append(recording)
    recordings.sort(key=lambda r: r.utt_id.encode("utf-8"))
    return recordings, durations, skipped


def _assign(recording: Recording, test_speaker: str | None) -> str:
    """The split of one recording under the official (None) or leave-one-speaker-out protocol."""
    if test_speaker is not None:
        if recording.speaker == test_speaker:
            return "test"
        if recording.index in DEV_INDICES:
            return "dev"
        return "train"  # index 0-4 of the other speakers trains too: no one tests on them
    if recording.index in TEST_INDICES:
        return "test"
    if recording.index in DEV_INDICES:
        return "dev"
    return "train"


def _read_genders(corpus_root: Path, speakers: list[str]) -> dict[str, str] | None:
    """speaker -> m/f from speakers.json (or the release's metadata.py); None if incomplete.

    The facts are optional, so a missing, unreadable or incomplete file is a warning and no
    spk2gender, never an error: a table missing a speaker would fail validation.
    """
    metadata: object = None
    source = corpus_root / "speakers.json"
    try:
        if source.is_file():
            metadata = json.loads(source.read_text(encoding="utf-8"))
        elif (corpus_root / "metadata.py").is_file():
            # The git release keeps the facts as a Python dict literal; literal_eval reads it
            # without running any code.
            source = corpus_root / "metadata.py"
            tree = ast.parse(source.read_text(encoding="utf-8"))
            assignments = [n for n in tree.body if isinstance(n, ast.Assign)]
            metadata = ast.literal_eval(assignments[0].value) if assignments else None
        else:
            return None
    except (OSError, UnicodeDecodeError, ValueError, SyntaxError) as exc:
        log.warning("%s: cannot read the speaker facts (%s); no spk2gender written", source, exc)
        return None
    genders: dict[str, str] = {}
    if isinstance(metadata, dict):
        for speaker in speakers:
            facts = metadata.get(speaker)
            gender = facts.get("gender") if isinstance(facts, dict) else None
            if isinstance(gender, str) and gender.lower() in GENDERS:
                genders[speaker] = GENDERS[gender.lower()]
    missing = [s for s in speakers if s not in genders]
    if missing:
        log.warning(
            "%s: no male/female gender for %s; no spk2gender written", source, ", ".join(missing)
        )
        return None
    return genders


def _write_datadir(
    out_dir: Path,
    recordings: list[Recording],
    durations: dict[str, float],
    genders: dict[str, str] | None,
) -> None:
    stale = sorted(
        name
        for name in ("feats.scp", "cmvn.scp", "segments", "utt2num_frames")
        if (out_dir / name).exists()
    )
    if stale:
        log.warning("%s: existing %s may no longer match the new data", out_dir, ", ".join(stale))
    utt2spk = {r.utt_id: r.speaker for r in recordings}
    extra = {}
    if genders is not None:
        extra["spk2gender"] = {s: genders[s] for s in set(utt2spk.values())}
    else:
        # One left from an earlier run would name speakers this directory may no longer have.
        with contextlib.suppress(FileNotFoundError):
            (out_dir / "spk2gender").unlink()
    DataDir(
        path=out_dir,
        utt2spk=utt2spk,
        spk2utt=spk2utt_from_utt2spk(utt2spk),
        wav_scp={r.utt_id: str(r.path) for r in recordings},
        text={r.utt_id: r.text for r in recordings},
        utt2dur={r.utt_id: durations[r.utt_id] for r in recordings},
        extra=extra,
    ).save()


def prepare_fsdd(
    corpus_dir: str | os.PathLike, data_dir: str | os.PathLike, test_speaker: str | None = None
) -> dict[str, Path]:
    """Write Kaldi data directories DATA_DIR/train, DATA_DIR/dev and DATA_DIR/test from FSDD.

    ``corpus_dir`` is the folder holding ``recordings/`` (or ``recordings/`` itself). Official
    protocol (``test_speaker`` None): test = index 0-4 of every speaker, dev = 5-9,
    train = 10 and up. Leave-one-speaker-out (``test_speaker`` S): test = every recording of S;
    the other speakers give dev = index 5-9 and train = the rest, so S is never in train or dev.
    Speakers are found from the file names. A badly named, unreadable, empty or non-8 kHz-mono
    wav is logged on one line naming it and skipped; a corpus with no usable recordings, an
    unknown ``test_speaker`` or a split left empty is an error found before anything is
    written. Writes wav.scp (absolute paths), text, utt2spk, spk2utt, utt2dur and, when
    ``speakers.json`` (or the release's ``metadata.py``) beside ``recordings/`` gives every
    speaker's gender, spk2gender; returns {"train": path, "dev": path, "test": path}.
    """
    recordings_dir = _find_recordings(Path(corpus_dir)).resolve()
    recordings, durations, skipped = _scan(recordings_dir)
    if skipped:
        log.warning(
            "%s: skipped %d of %d wav files (see the messages above)",
            recordings_dir,
            len(skipped),
            len(skipped) + len(recordings),
        )
    if not recordings:
        more = f" ({len(skipped)} wav files skipped)" if skipped else ""
        raise CorpusError(f"{recordings_dir}: no usable FSDD recordings found{more}")
    speakers = sorted({r.speaker for r in recordings})
    if test_speaker is not None and test_speaker not in speakers:
        raise ConfigError(
            f"{recordings_dir}: unknown test speaker {test_speaker!r} "
            f"(known: {', '.join(speakers)})"
        )
    parts: dict[str, list[Recording]] = {split: [] for split in SPLITS}
    for recording in recordings:
        parts[_assign(recording, test_speaker)].append(recording)
    for split in SPLITS:
        if not parts[split]:
            raise CorpusError(f"{recordings_dir}: no recordings left for the {split} set")
    genders = _read_genders(recordings_dir.parent, speakers)
    out = {}
    for split in SPLITS:
        out_dir = Path(data_dir) / split
        _write_datadir(out_dir, parts[split], durations, genders)
        out[split] = out_dir
        # debug, not info: `asr prepare fsdd` prints this line itself.
        log.debug(
            "%s: %d utterances, %d speakers",
            out_dir,
            len(parts[split]),
            len({r.speaker for r in parts[split]}),
        )
    return out


def _count_recordings(recordings_dir: Path) -> int:
    """How many wavs in the folder have FSDD names (names only: cheap enough to run each time)."""
    count = 0
    for path in recordings_dir.glob("*.wav"):
        with contextlib.suppress(ValueError):
            parse_name(path)
            count += 1
    return count


def recordings_digest(recordings_dir: str | os.PathLike) -> tuple[str, int]:
    """(SHA-256 of the ``sha256sum`` listing of the folder's ``*.wav`` files, their count).

    The listing is ``LC_ALL=C sha256sum *.wav``: one line ``<hex>  <name>`` per file, sorted by
    name bytes; its SHA-256 is compared with RECORDINGS_SHA256 by ``download_fsdd``.
    """
    files = sorted(Path(recordings_dir).glob("*.wav"), key=lambda p: p.name.encode("utf-8"))
    listing = hashlib.sha256()
    for path in files:
        listing.update(f"{file_digest(path)}  {path.name}\n".encode())
    return listing.hexdigest(), len(files)


def _check_release(recordings_dir: Path, remedy: str) -> None:
    """CorpusError unless the folder holds exactly the recordings of release TAG."""
    got, count = recordings_digest(recordings_dir)
    if got != RECORDINGS_SHA256:
        raise CorpusError(
            f"{recordings_dir}: not the FSDD {TAG} recordings ({count} wav files whose "
            f"sha256sum listing hashes to {got}, expected {RECORDINGS_SHA256}); {remedy}"
        )


def download_fsdd(dest_dir: str | os.PathLike, url: str = URL) -> Path:
    """Download and unpack FSDD release ``TAG`` into DEST_DIR; return the corpus folder.

    The corpus folder is DEST_DIR/free-spoken-digit-dataset-1.0.10 (holding ``recordings/``);
    give it to ``prepare_fsdd``. No checksum is published for GitHub's archive of the tag (and
    GitHub does not promise byte-stable archives), so the unpacked recordings are checked
    instead: ``recordings/`` must hold at least ``MIN_RECORDINGS`` (3000) wavs with FSDD names,
    and the SHA-256 of their ``sha256sum`` listing must be RECORDINGS_SHA256 (every file's
    name and bytes as released). A verified copy already there is used without any download;
    an incomplete or different one is an error (remove it to download again), never
    overwritten. DEST_DIR/free-spoken-digit-dataset-v1.0.10.tar.gz is kept and re-used. The
    archive is unpacked with ``extract_tar_safely`` (no links, no paths outside DEST_DIR, at
    most MAX_ARCHIVE_MEMBERS members and MAX_ARCHIVE_BYTES bytes).
    """
    dest_dir = Path(dest_dir)
    corpus = dest_dir / FOLDER_IN_ARCHIVE
    if corpus.exists():
        found = _count_recordings(corpus / RECORDINGS) if (corpus / RECORDINGS).is_dir() else 0
        if found < MIN_RECORDINGS:
            raise CorpusError(
                f"{corpus}: incomplete FSDD copy ({found} of {MIN_RECORDINGS} recordings); "
                "remove it to download again"
            )
        _check_release(corpus / RECORDINGS, f"remove {corpus} to download again")
        log.info("%s: already complete (%d recordings), not downloading", corpus, found)
        return corpus
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive = dest_dir / ARCHIVE_NAME
    if archive.exists():
        log.info("%s: already downloaded, not downloading again", archive)
    else:
        log.info("downloading %s", url)
        download(url, archive)  # no published checksum: the contents are checked below
    extract_tar_safely(
        archive, dest_dir, max_bytes=MAX_ARCHIVE_BYTES, max_members=MAX_ARCHIVE_MEMBERS
    )
    recordings_dir = corpus / RECORDINGS
    if not recordings_dir.is_dir():
        raise CorpusError(f"{archive}: has no {FOLDER_IN_ARCHIVE}/{RECORDINGS}/ folder")
    found = _count_recordings(recordings_dir)
    if found < MIN_RECORDINGS:
        raise CorpusError(
            f"{archive}: only {found} of {MIN_RECORDINGS} FSDD recordings; "
            f"delete it and {corpus} to download again"
        )
    _check_release(recordings_dir, f"delete {archive} and {corpus} to download again")
    log.info("%s: extracted %d recordings", corpus, found)
    return corpus
