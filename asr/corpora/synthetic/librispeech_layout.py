"""The synthetic corpus in LibriSpeech's own layout, so the LibriSpeech recipe runs on it unchanged.

``prepare_synth_librispeech`` synthesises a corpus from text files (:mod:`.corpus`, with
``chapter_utts`` set, so that a voice reads runs of consecutive sentences of one book as a
LibriSpeech reader reads a chapter) and writes it as OpenSLR 12 unpacks::

    OUT/LibriSpeech/SPEAKERS.TXT CHAPTERS.TXT BOOKS.TXT README.TXT
    OUT/LibriSpeech/<subset>/<reader>/<chapter>/<reader>-<chapter>-<NNNN>.flac
    OUT/LibriSpeech/<subset>/<reader>/<chapter>/<reader>-<chapter>.trans.txt
    OUT/lm/librispeech-lm-norm.txt   OUT/lm/librispeech-vocab.txt

with OpenSLR 11's LM text and vocabulary beside it. The mapping:

* subsets: train -> ``train-clean-100``, dev -> ``dev-clean``, test -> ``test-clean`` (the
  names are LibriSpeech's; the sizes are what ``--hours`` asked for). There is no "other"
  half: the unseen test voices are what is hard here.
* readers are voices, numbered from 1 in the order of their names; chapters are (voice, book)
  pairs, numbered from 1 over the whole corpus, as LibriSpeech's chapter ids are unique; books
  are the text files. A voice's gender comes from its name (espeak-ng's ``+fN`` variants and
  ``linda``, the ``slt`` voices are female).
* transcripts and the LM text are upper case, as LibriSpeech's; the LM text is every sentence
  of the books except the dev and test ones (``local/lm_text`` of the synthesis), and the
  vocabulary its words.

Dev is read half by held-out voices and half by training voices (as ``asr prepare synth``
makes it); SPEAKERS.TXT names each reader once, with the first subset it reads in. The
synthesis happens in ``OUT/.synth`` (Kaldi data directories), whose FLAC files are then moved
into the tree; the tree appears under its name only when complete.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asr.corpora.synthetic.corpus import SPLITS, SynthConfig, SynthReport, prepare_synth
from asr.corpora.synthetic.voice import Voice
from asr.data.datadir import read_kaldi_map
from asr.errors import ConfigError, CorpusError
from asr.fileio import atomic_write, read_text_lines

SUBSETS = {"train": "train-clean-100", "dev": "dev-clean", "test": "test-clean"}
LM_TEXT = "librispeech-lm-norm.txt"
VOCAB = "librispeech-vocab.txt"
_FEMALE = re.compile(r"\+f\d|\+linda\b|(^|_)slt(_|$)|^slt$")


def voice_gender(voice: Voice) -> str:
    """``F`` or ``M`` for a synthetic voice, from its name (see the module doc)."""
    return "F" if _FEMALE.search(voice.name) else "M"


@dataclass
class LayoutReport:
    """What the tree holds: per subset, utterances, readers, chapters and hours."""

    out_dir: Path
    utterances: dict[str, int] = field(default_factory=dict)
    readers: dict[str, int] = field(default_factory=dict)
    chapters: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)
    lm_sentences: int = 0
    vocabulary: int = 0

    def summary(self) -> str:
        parts = [
            f"{name} {self.utterances[name]} utts {self.hours[name]:.2f} h "
            f"{self.readers[name]} readers {self.chapters[name]} chapters"
            for name in self.utterances
        ]
        return (
            f"{self.out_dir / 'LibriSpeech'}: " + "; ".join(parts) + f"; lm/{LM_TEXT} "
            f"{self.lm_sentences} sentences, {self.vocabulary} words"
        )


@dataclass
class _Utt:
    utt_id: str
    subset: str
    voice: Voice
    book: str
    text: str
    flac: Path
    seconds: float


def _read_split(synth_dir: Path, split: str) -> list[_Utt]:
    split_dir = synth_dir / split
    wav = read_kaldi_map(split_dir / "wav.scp")
    text = read_kaldi_map(split_dir / "text")
    durations = read_kaldi_map(split_dir / "utt2dur")
    books = read_kaldi_map(split_dir / "utt2book") if (split_dir / "utt2book").is_file() else {}
    voices = {}
    for line in read_text_lines(split_dir / "utt2voice"):
        utt, voice, *_ = line.split()
        voices[utt] = Voice.parse(voice)
    return [
        _Utt(
            utt,
            SUBSETS[split],
            voices[utt],
            books.get(utt, "grammar"),
            text[utt].upper(),
            Path(wav[utt]),
            float(durations[utt]),
        )
        for utt in sorted(wav)
    ]


def write_librispeech_layout(
    synth_dir: str | os.PathLike, out_dir: str | os.PathLike
) -> LayoutReport:
    """Move a synthesised corpus (``asr prepare synth`` output: ``train/ dev/ test/`` and
    ``local/lm_text``) into LibriSpeech's tree under ``out_dir`` (see the module doc)."""
    synth_dir, out_dir = Path(synth_dir), Path(out_dir)
    utts = [u for split in SPLITS for u in _read_split(synth_dir, split)]
    if not utts:
        raise CorpusError(f"{synth_dir}: no utterances to lay out")
    reader_of = {v: n for n, v in enumerate(sorted({u.voice for u in utts}), 1)}
    book_ids = {b: n for n, b in enumerate(dict.fromkeys(u.book for u in utts), 1)}
    chapter_of: dict[tuple[Voice, str], int] = {}
    for u in utts:  # in subset order, then by utterance id: train's chapters come first
        chapter_of.setdefault((u.voice, u.book), len(chapter_of) + 1)

    tree = out_dir / "LibriSpeech"
    staging = out_dir / ".LibriSpeech.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    chapters: dict[tuple[str, int, int], list[_Utt]] = defaultdict(list)
    for u in utts:
        chapters[(u.subset, reader_of[u.voice], chapter_of[(u.voice, u.book)])].append(u)
    report = LayoutReport(out_dir)
    for (subset, reader, chapter), members in sorted(chapters.items()):
        folder = staging / subset / str(reader) / str(chapter)
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for number, u in enumerate(members):
            name = f"{reader}-{chapter}-{number:04d}"
            os.replace(u.flac, folder / f"{name}.flac")
            lines.append(f"{name} {u.text}\n")
        with atomic_write(folder / f"{reader}-{chapter}.trans.txt") as handle:
            handle.writelines(lines)
    for subset in dict.fromkeys(u.subset for u in utts):
        mine = [u for u in utts if u.subset == subset]
        report.utterances[subset] = len(mine)
        report.readers[subset] = len({u.voice for u in mine})
        report.chapters[subset] = len({(u.voice, u.book) for u in mine})
        report.hours[subset] = round(sum(u.seconds for u in mine) / 3600.0, 4)
    _write_tables(staging, utts, reader_of, chapter_of, book_ids)
    if tree.exists():
        shutil.rmtree(tree)
    os.replace(staging, tree)
    report.lm_sentences, report.vocabulary = _write_lm(synth_dir / "local" / "lm_text", out_dir)
    return report


def _write_tables(
    root: Path,
    utts: Sequence[_Utt],
    reader_of: dict[Voice, int],
    chapter_of: dict[tuple[Voice, str], int],
    book_ids: dict[str, int],
) -> None:
    minutes: dict[object, float] = defaultdict(float)
    first_subset: dict[Voice, str] = {}
    chapter_subset: dict[tuple[Voice, str], str] = {}
    for u in utts:
        minutes[u.voice] += u.seconds / 60.0
        minutes[(u.voice, u.book)] += u.seconds / 60.0
        first_subset.setdefault(u.voice, u.subset)
        chapter_subset.setdefault((u.voice, u.book), u.subset)
    with atomic_write(root / "SPEAKERS.TXT") as handle:
        handle.write(";ID  |SEX| SUBSET           |MINUTES| NAME\n")
        for voice, reader in sorted(reader_of.items(), key=lambda item: item[1]):
            handle.write(
                f"{reader:<5}| {voice_gender(voice)} | {first_subset[voice]:<17}|"
                f" {minutes[voice]:5.2f} | {voice} (synthetic)\n"
            )
    with atomic_write(root / "CHAPTERS.TXT") as handle:
        handle.write(
            ";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE\n"
        )
        for (voice, book), chapter in sorted(chapter_of.items(), key=lambda item: item[1]):
            handle.write(
                f"{chapter:<7}| {reader_of[voice]:<5}| {minutes[(voice, book)]:5.2f} | "
                f"{chapter_subset[(voice, book)]:<17}| {book_ids[book]:<5}| {book_ids[book]:<6}| "
                f"{book} | {book}\n"
            )
    with atomic_write(root / "BOOKS.TXT") as handle:
        handle.write(";ID    |BOOK TITLE\n")
        for book, number in book_ids.items():
            handle.write(f"{number:<7}| {book}\n")
    with atomic_write(root / "README.TXT") as handle:
        handle.write(
            "Synthetic read speech made by `asr prepare synth --layout librispeech`: readers "
            "are synthetic voices (SPEAKERS.TXT names them), chapters are (voice, book) pairs, "
            "books are the text files read. Not LibriSpeech: only its layout.\n"
        )


def _write_lm(lm_text: Path, out_dir: Path) -> tuple[int, int]:
    """OpenSLR 11's LM text and vocabulary, from the synthesis's ``local/lm_text``."""
    if not lm_text.is_file():
        raise CorpusError(f"{lm_text}: no LM text (the corpus must be made from --text files)")
    sentences = [line.upper() for line in read_text_lines(lm_text) if line.strip()]
    words = sorted({w for line in sentences for w in line.split()})
    lm_dir = out_dir / "lm"
    lm_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(lm_dir / LM_TEXT) as handle:
        handle.writelines(f"{line}\n" for line in sentences)
    with atomic_write(lm_dir / VOCAB) as handle:
        handle.writelines(f"{w}\n" for w in words)
    return len(sentences), len(words)


def prepare_synth_librispeech(
    out_dir: str | os.PathLike,
    config: SynthConfig,
    jobs: int | None = None,
    progress: bool = True,
) -> tuple[SynthReport, LayoutReport]:
    """Synthesise ``config`` (text files needed) in ``OUT/.synth`` and lay it out as
    LibriSpeech under ``out_dir`` (see the module doc). ``config.chapter_utts`` 0 becomes 20."""
    if not config.text_files:
        raise ConfigError("--layout librispeech reads books: give --text FILE ...")
    if config.chapter_utts <= 0:
        config.chapter_utts = 20
    out_dir = Path(out_dir)
    staging = out_dir / ".synth"
    synth_report = prepare_synth(staging, config, jobs=jobs, progress=progress)
    layout = write_librispeech_layout(staging, out_dir)
    shutil.move(staging / "synth_info.json", out_dir / "synth_info.json")
    shutil.rmtree(staging)
    return synth_report, layout
