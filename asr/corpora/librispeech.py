"""LibriSpeech (OpenSLR 12): download, check and turn the sets into Kaldi data directories.

The archives unpack to ``LibriSpeech/<set>/<reader>/<chapter>/<reader>-<chapter>-<utt>.flac``
with one ``<reader>-<chapter>.trans.txt`` per chapter (``<utt-id> TRANSCRIPT`` lines, upper
case) and ``LibriSpeech/SPEAKERS.TXT`` (``reader | sex | subset | minutes | name``). As Kaldi's
``egs/librispeech/s5/local/data_prep.sh``:

* utterance ids are the file names (``103-1240-0000``), speaker ids reader-chapter
  (``103-1240``), so per-speaker CMVN is per chapter, as Kaldi does;
* ``text`` keeps the distributed upper case: the official LM (``3-gram.arpa.gz``), lexicon
  and vocabulary (OpenSLR 11) are upper case too, so no word is lost by a case mismatch;
* ``wav.scp`` points at the FLAC files themselves (libsndfile reads FLAC; no ``flac -d |``
  pipe as Kaldi has), ``spk2gender`` comes from SPEAKERS.TXT and ``utt2dur`` from the FLAC
  headers.

A transcript line without its audio, or a FLAC file without a transcript line, is reported
(with a count and examples) and left out; a malformed transcript line is a CorpusError naming
``file:line``. Data directories are named as Kaldi's: ``dev-clean`` -> ``DATA_DIR/dev_clean``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asr.corpora.download import download, extract_tar_safely, md5_of
from asr.data.audio import audio_duration
from asr.data.datadir import DataDir, save_replacing, spk2utt_from_utt2spk
from asr.errors import AsrError, CorpusError
from asr.fileio import read_text_lines

log = logging.getLogger(__name__)

BASE_URL = "https://www.openslr.org/resources"
SETS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
# MD5s of the OpenSLR 12 archives, as published in openslr.org/resources/12/md5sum.txt; the same
# values are in PaddleSpeech's dataset/librispeech/librispeech.py and sdrobert's
# pytorch-database-prep (src/pytorch_database_prep/librispeech.py, FILE2MD5).
SET_MD5 = {
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
}
# OpenSLR 11 (LM resources): name -> (MD5, size in bytes). MD5s from pytorch-database-prep's
# FILE2MD5 (openslr's md5sum.txt); sizes from Kaldi's egs/librispeech/s5/local/download_lm.sh.
# librispeech-lm-norm.txt.gz has no published size there (None: not checked).
LM_RESOURCES: dict[str, tuple[str, int | None]] = {
    "3-gram.arpa.gz": ("74cbb837e582378c26c602e1c8cbcb9c", 759636181),
    "3-gram.pruned.1e-7.arpa.gz": ("9a0f1325bcaf3a0f7b7be4be10823c2a", 34094057),
    "3-gram.pruned.3e-7.arpa.gz": ("8f67ec741827742eee05799ab7605b50", 13654242),
    "4-gram.arpa.gz": ("6abdcd5b055bd482e4f9defe91d40408", 1355172078),
    "librispeech-lexicon.txt": ("28f72663f6bfed7cd346283c064c315b", 5627646),
    "librispeech-vocab.txt": ("bf3cc7a50112831ed8b0afa40cae96a5", 1737588),
    "librispeech-lm-norm.txt.gz": ("c83c64c726a1aedfe65f80aa311de402", None),
}
# Utterance counts of the full sets (Kaldi/PaddleSpeech); other numbers only get a warning.
EXPECTED_UTTERANCES = {
    "train-clean-100": 28539,
    "train-clean-360": 104014,
    "train-other-500": 148688,
    "dev-clean": 2703,
    "dev-other": 2864,
    "test-clean": 2620,
    "test-other": 2939,
}

_UTT_ID = re.compile(r"(\d+)-(\d+)-(\d+)")
_EXAMPLES = 3


@dataclass
class LibriReport:
    """What one set gave: counts, and what was left out."""

    set_name: str
    data_dir: Path
    utterances: int = 0
    speakers: int = 0  # reader-chapter pairs
    seconds: float = 0.0
    no_audio: list[str] = field(default_factory=list)  # transcript lines without a .flac
    no_text: list[str] = field(default_factory=list)  # .flac files without a transcript line
    no_trans: list[str] = field(default_factory=list)  # chapter folders' missing .trans.txt

    def summary(self) -> str:
        text = (
            f"{self.data_dir}: {self.utterances} utterances, {self.speakers} speakers "
            f"(reader-chapter), {self.seconds / 3600:.2f} h"
        )
        for what, items in (("without audio", self.no_audio), ("without text", self.no_text)):
            if items:
                text += f"; {len(items)} {what} skipped (e.g. {', '.join(items[:_EXAMPLES])})"
        if self.no_trans:
            text += (
                f"; {len(self.no_trans)} chapter(s) without their .trans.txt "
                f"(e.g. {', '.join(self.no_trans[:_EXAMPLES])})"
            )
        return text


def data_dir_name(set_name: str) -> str:
    """Kaldi's name for a set's data directory: ``dev-clean`` -> ``dev_clean``."""
    return set_name.replace("-", "_")


def check_set_names(sets: Iterable[str]) -> list[str]:
    sets = list(sets)
    for name in sets:
        if name not in SETS:
            raise CorpusError(f"unknown LibriSpeech set {name!r} (one of {', '.join(SETS)})")
    return sets


def find_set_dir(corpus_dir: str | os.PathLike, set_name: str) -> Path:
    """``corpus_dir/LibriSpeech/<set>`` or ``corpus_dir/<set>``: where the set unpacked."""
    root = Path(corpus_dir)
    for candidate in (root / "LibriSpeech" / set_name, root / set_name):
        if candidate.is_dir():
            return candidate
    raise CorpusError(
        f"{root}: no LibriSpeech set {set_name} in it (looked for LibriSpeech/{set_name}/ "
        f"and {set_name}/; give --download to fetch it)"
    )


def read_speakers(path: str | os.PathLike) -> dict[str, str]:
    """Reader id -> gender (m/f) from SPEAKERS.TXT; ``;`` lines are comments."""
    path = Path(path)
    try:
        lines = read_text_lines(path)
    except AsrError as exc:
        raise CorpusError(str(exc)) from None
    genders: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 3 or not fields[0].isdigit() or fields[1].upper() not in ("M", "F"):
            raise CorpusError(
                f"{path}:{number}: expected 'ID | SEX | SUBSET | MINUTES | NAME', "
                f"got {line.strip()!r}"
            )
        genders[fields[0]] = fields[1].lower()
    return genders


def _read_chapter(trans: Path, reader: str, chapter: str) -> dict[str, str]:
    try:
        lines = read_text_lines(trans)
    except AsrError as exc:
        raise CorpusError(str(exc)) from None
    texts: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        utt, _, words = line.strip().partition(" ")
        match = _UTT_ID.fullmatch(utt)
        if match is None or not words.strip():
            raise CorpusError(f"{trans}:{number}: expected 'READER-CHAPTER-UTT TRANSCRIPT'")
        if match.group(1) != reader or match.group(2) != chapter:
            raise CorpusError(
                f"{trans}:{number}: utterance {utt} is not of chapter {reader}-{chapter}"
            )
        if utt in texts:
            raise CorpusError(f"{trans}:{number}: utterance {utt} appears twice")
        texts[utt] = " ".join(words.split())
    return texts


def prepare_librispeech(
    corpus_dir: str | os.PathLike, set_name: str, out_dir: str | os.PathLike
) -> LibriReport:
    """Write the Kaldi data directory ``out_dir`` for one LibriSpeech set (see the module doc).

    ``corpus_dir`` holds ``LibriSpeech/`` (or is it). Everything is read before anything is
    written; the data directory is replaced as a whole on a rerun.
    """
    check_set_names([set_name])
    set_dir = find_set_dir(corpus_dir, set_name)
    report = LibriReport(set_name, Path(out_dir))
    wav: dict[str, str] = {}
    text: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    utt2dur: dict[str, float] = {}
    for reader_dir in sorted(p for p in set_dir.iterdir() if p.is_dir()):
        if not reader_dir.name.isdigit():
            log.warning("%s: not a reader folder (not a number); ignored", reader_dir)
            continue
        for chapter_dir in sorted(p for p in reader_dir.iterdir() if p.is_dir()):
            reader, chapter = reader_dir.name, chapter_dir.name
            trans = chapter_dir / f"{reader}-{chapter}.trans.txt"
            texts = _read_chapter(trans, reader, chapter) if trans.is_file() else {}
            flacs = {p.name[: -len(".flac")]: p for p in chapter_dir.glob("*.flac")}
            if not trans.is_file():
                report.no_trans.append(str(trans))
            report.no_audio += sorted(set(texts) - set(flacs))
            report.no_text += sorted(set(flacs) - set(texts))
            for utt in sorted(set(texts) & set(flacs)):
                try:
                    duration = audio_duration(flacs[utt])
                except AsrError as exc:
                    log.warning("%s; utterance left out", exc)
                    report.no_audio.append(utt)
                    continue
                wav[utt] = str(flacs[utt].resolve())
                text[utt] = texts[utt]
                utt2spk[utt] = f"{reader}-{chapter}"
                utt2dur[utt] = duration
    if report.no_trans:
        log.warning(
            "%s: %d chapter(s) have no .trans.txt, their audio is skipped (e.g. %s)",
            set_dir,
            len(report.no_trans),
            ", ".join(report.no_trans[:_EXAMPLES]),
        )
    if not utt2spk:
        raise CorpusError(f"{set_dir}: no utterances (no .flac files with a transcript line)")
    for what, items in (
        ("transcript lines without audio", report.no_audio),
        ("audio files without a transcript line", report.no_text),
    ):
        if items:
            log.warning(
                "%s: %d %s skipped (e.g. %s)",
                set_dir,
                len(items),
                what,
                ", ".join(items[:_EXAMPLES]),
            )
    speakers_txt = set_dir.parent / "SPEAKERS.TXT"
    extra: dict[str, dict[str, str]] = {}
    if speakers_txt.is_file():
        genders = read_speakers(speakers_txt)
        spk2gender = {s: genders.get(s.split("-")[0], "") for s in set(utt2spk.values())}
        unknown = sorted(s for s, g in spk2gender.items() if not g)
        if unknown:
            log.warning("%s: readers of %s not listed; no spk2gender", speakers_txt, unknown[0])
        else:
            extra["spk2gender"] = spk2gender
    else:
        log.warning("%s not found; no spk2gender", speakers_txt)
    data = DataDir(
        path=Path(out_dir),
        utt2spk=utt2spk,
        spk2utt=spk2utt_from_utt2spk(utt2spk),
        wav_scp=wav,
        text=text,
        utt2dur=utt2dur,
        extra=extra,
    )
    save_replacing(data)
    report.utterances = len(utt2spk)
    report.speakers = len(set(utt2spk.values()))
    report.seconds = sum(utt2dur.values())
    expected = EXPECTED_UTTERANCES[set_name]
    if report.utterances != expected:
        log.warning(
            "%s: %d utterances; the full %s set has %d",
            out_dir,
            report.utterances,
            set_name,
            expected,
        )
    return report


def download_librispeech(
    dest_dir: str | os.PathLike, sets: Sequence[str], base_url: str = BASE_URL
) -> Path:
    """Fetch and unpack the ``sets`` into ``dest_dir`` (``dest_dir/LibriSpeech/<set>``), each
    archive MD5-checked; interrupted downloads resume. A set already unpacked is skipped, and
    an archive is deleted once unpacked (the sets take 60 GB as it is). Returns ``dest_dir``."""
    dest = Path(dest_dir)
    for name in check_set_names(sets):
        if (dest / "LibriSpeech" / name).is_dir():
            log.info("%s: already unpacked", dest / "LibriSpeech" / name)
            continue
        archive = dest / f"{name}.tar.gz"
        if not (archive.is_file() and md5_of(archive) == SET_MD5[name]):
            download(f"{base_url}/12/{name}.tar.gz", archive, md5=SET_MD5[name])
        _unpack(archive, dest, name)
    return dest


def _unpack(archive: Path, dest: Path, name: str) -> None:
    # Every archive holds LibriSpeech/<set>/ plus the shared LibriSpeech/*.TXT files, so each
    # unpacks into a staging folder whose set (and missing .TXT files) move into place.
    staging = dest / f".unpack.{name}"
    if staging.exists():
        shutil.rmtree(staging)
    extract_tar_safely(archive, staging)
    source = staging / "LibriSpeech"
    if not (source / name).is_dir():
        raise CorpusError(f"{archive}: holds no LibriSpeech/{name}/ folder")
    (dest / "LibriSpeech").mkdir(parents=True, exist_ok=True)
    for item in sorted(source.iterdir()):
        target = dest / "LibriSpeech" / item.name
        if not target.exists():
            os.replace(item, target)
    shutil.rmtree(staging)
    archive.unlink()


def download_lm_resources(
    dest_dir: str | os.PathLike,
    names: Sequence[str] = ("3-gram.pruned.1e-7.arpa.gz", "librispeech-lexicon.txt"),
    base_url: str = BASE_URL,
) -> list[Path]:
    """Fetch OpenSLR 11 files (the official n-gram LMs, lexicon, vocabulary, LM text) into
    ``dest_dir``, MD5- and size-checked; files already there and correct are kept."""
    dest = Path(dest_dir)
    out = []
    for name in names:
        if name not in LM_RESOURCES:
            raise CorpusError(
                f"unknown LibriSpeech LM resource {name!r} (one of {', '.join(LM_RESOURCES)})"
            )
        md5, size = LM_RESOURCES[name]
        target = dest / name
        if not (target.is_file() and md5_of(target) == md5):
            download(f"{base_url}/11/{name}", target, md5=md5, size=size)
        out.append(target)
    return out
