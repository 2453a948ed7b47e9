"""The yes/no corpus (OpenSLR 1): download it safely and turn it into Kaldi data directories.

Follows Kaldi's egs/yesno/s5/local/prepare_data.sh: the 60 wav files sorted by name, the first
half is the training set and the second half the test set (Kaldi's train_yesno and test_yesno,
here ``DATA_DIR/train`` and ``DATA_DIR/test``); the transcript is the file name (1 = YES,
0 = NO) and every utterance belongs to the one speaker ``global``, as in Kaldi's utt2spk.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import soundfile

from asr.corpora.download import download, extract_tar_safely, find_audio_folder, sha256_of
from asr.errors import AudioError, CorpusError
from asr.fileio import atomic_write

log = logging.getLogger(__name__)

URL = "http://www.openslr.org/resources/1/waves_yesno.tar.gz"
# SHA-256 of waves_yesno.tar.gz as recorded by torchaudio's YESNO dataset
# (torchaudio/datasets/yesno.py, verified there with torch.hub's hash_prefix check). Older
# torchaudio releases carried 30301975..., a value copied from TEDLIUM release 1, not this file.
SHA256 = "c3f49e0cca421f96b75b41640749167b52118f232498667ca7a5f9416aef8e73"
ARCHIVE_NAME = "waves_yesno.tar.gz"
FOLDER_IN_ARCHIVE = "waves_yesno"

NUM_FILES = 60
WORDS_PER_FILE = 8
SPEAKER = "global"
SPLITS = ("train", "test")
WORDS = {"0": "NO", "1": "YES"}

_NAME = re.compile(r"[01](?:_[01])*")


def transcript_from_name(stem: str) -> str:
    """``0_1_1`` -> ``NO YES YES``; ValueError when the name is not a yes/no sequence."""
    if not _NAME.fullmatch(stem):
        raise ValueError(f"{stem!r} is not a yes/no transcript (expected 0s and 1s joined by _)")
    return " ".join(WORDS[bit] for bit in stem.split("_"))


def _scan(waves_dir: Path, quiet: bool = False) -> dict[str, str]:
    """Utterance id -> transcript for every wav, after checking names and the file count.

    Each bad name is logged (unless ``quiet``) and the error names the first one and the count.
    """
    transcripts: dict[str, str] = {}
    bad: list[str] = []
    for path in sorted(waves_dir.iterdir()):
        if path.suffix != ".wav":
            # The archive ships a README beside the wavs; anything else that is not a wav is
            # no part of the corpus either.
            log.debug("ignoring %s (not a .wav file)", path)
            continue
        try:
            text = transcript_from_name(path.stem)
        except ValueError as exc:
            bad.append(f"{path}: {exc}")
            continue
        if len(text.split()) != WORDS_PER_FILE:
            bad.append(f"{path}: {len(text.split())} words, every yes/no file has {WORDS_PER_FILE}")
            continue
        transcripts[path.stem] = text
    if bad:
        for problem in bad if not quiet else []:
            log.error("%s", problem)
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise CorpusError(bad[0] + more)
    if len(transcripts) != NUM_FILES:
        raise CorpusError(
            f"{waves_dir}: expected {NUM_FILES} yes/no wav files, found {len(transcripts)}"
        )
    return transcripts


def _duration(path: Path) -> float:
    try:
        info = soundfile.info(str(path))
    except Exception as exc:  # libsndfile reports every kind of bad file with one type
        raise AudioError(f"{path}: not a readable audio file ({exc})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{path}: audio has zero length")
    return info.frames / info.samplerate


def _write_map(path: Path, mapping: dict[str, str]) -> None:
    # Kaldi sorts with LC_ALL=C: byte order.
    with atomic_write(path) as handle:
        for key in sorted(mapping, key=lambda k: k.encode("utf-8")):
            handle.write(f"{key} {mapping[key]}\n")


def _write_datadir(
    out_dir: Path, waves_dir: Path, utts: dict[str, str], durations: dict[str, float]
) -> None:
    stale = sorted(
        name
        for name in ("feats.scp", "cmvn.scp", "segments", "utt2num_frames")
        if (out_dir / name).exists()
    )
    if stale:
        log.warning("%s: existing %s may no longer match the new data", out_dir, ", ".join(stale))
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_map(out_dir / "wav.scp", {u: str(waves_dir / f"{u}.wav") for u in utts})
    _write_map(out_dir / "text", utts)
    _write_map(out_dir / "utt2spk", {u: SPEAKER for u in utts})
    _write_map(out_dir / "spk2utt", {SPEAKER: " ".join(sorted(utts, key=str.encode))})
    _write_map(out_dir / "utt2dur", {u: f"{durations[u]:g}" for u in utts})


def prepare_yesno(corpus_dir: str | os.PathLike, data_dir: str | os.PathLike) -> dict[str, Path]:
    """Write Kaldi data directories DATA_DIR/train and DATA_DIR/test from the yes/no wavs.

    ``corpus_dir`` is the folder of wavs (or the folder holding ``waves_yesno/``). Files that
    are not ``.wav`` are ignored; a wav whose name is not 8 yes/no digits, or a number of wavs
    other than 60, is an error, found before anything is written. Writes wav.scp (absolute
    paths), text, utt2spk, spk2utt and utt2dur; returns {"train": path, "test": path}.
    """
    waves_dir = find_audio_folder(Path(corpus_dir), FOLDER_IN_ARCHIVE, "yes/no").resolve()
    transcripts = _scan(waves_dir)
    # Kaldi lists the files with `ls`; the names are digits and underscores only, so byte
    # order and every locale's order agree.
    names = sorted(transcripts)
    half = len(names) // 2
    parts = {"train": names[:half], "test": names[half:]}
    # Read every header first, so that a bad wav stops the run before any file is written; a
    # fixed 30/30 split cannot skip a file, but each problem is logged so one run shows them all.
    durations: dict[str, float] = {}
    bad: list[AudioError] = []
    for name in names:
        try:
            durations[name] = _duration(waves_dir / f"{name}.wav")
        except AudioError as exc:
            log.error("%s", exc)
            bad.append(exc)
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise AudioError(f"{bad[0]}{more}")
    out = {}
    for split in SPLITS:
        out_dir = Path(data_dir) / split
        _write_datadir(out_dir, waves_dir, {u: transcripts[u] for u in parts[split]}, durations)
        out[split] = out_dir
        log.info("%s: %d utterances", out_dir, len(parts[split]))
    return out


def _is_complete(waves_dir: Path) -> bool:
    if not waves_dir.is_dir():
        return False
    try:
        _scan(waves_dir, quiet=True)
    except CorpusError:
        return False
    return True


def download_yesno(dest_dir: str | os.PathLike, url: str = URL, sha256: str = SHA256) -> Path:
    """Download and unpack the corpus into DEST_DIR/waves_yesno (kept there); return that path.

    Skips the download when DEST_DIR/waves_yesno already holds the 60 wavs, and re-uses
    DEST_DIR/waves_yesno.tar.gz when its SHA-256 matches. The archive is fetched to a temporary
    file, checked against ``sha256`` (a mismatch deletes it and is an error) and only then
    renamed into place and extracted (see ``extract_tar_safely``).
    """
    dest_dir = Path(dest_dir)
    waves_dir = dest_dir / FOLDER_IN_ARCHIVE
    if _is_complete(waves_dir):
        log.info("%s: already complete, not downloading", waves_dir)
        return waves_dir
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive = dest_dir / ARCHIVE_NAME
    if archive.exists() and sha256_of(archive) == sha256:
        log.info("%s: checksum matches, not downloading", archive)
    else:
        log.info("downloading %s", url)
        download(url, archive, sha256)
    extract_tar_safely(archive, dest_dir)
    if not waves_dir.is_dir():
        raise CorpusError(f"{archive}: has no {FOLDER_IN_ARCHIVE}/ folder")
    _scan(waves_dir)  # the same checks prepare_yesno makes, so a bad archive fails here
    log.info("%s: extracted", waves_dir)
    return waves_dir
