"""Output units: the token list that maps transcript symbols to CTC class indices and back.

Index 0 is always the CTC blank ``<blk>``. Units are whitespace-separated symbols (``word`` or
``phone``: the transcript already spells them out), characters (``char``: a run of whitespace
becomes the ``<space>`` token so that decoding gives back the words) or sentencepiece pieces
(``bpe``: the transcript was segmented by ``asr bpe encode`` into pieces separated by spaces,
``▁`` marking the start of a word; decoding joins the pieces and turns the marks back into
spaces). The list is stored as ``tokens.txt`` in the Kaldi/ESPnet "symbol id" format.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from asr.errors import AsrError, ConfigError, DataDirError
from asr.fileio import atomic_write, read_text_lines

BLANK = "<blk>"
SPACE = "<space>"
WORD_START = "\u2581"  # sentencepiece's word-start mark "▁" (LOWER ONE EIGHTH BLOCK)
UNITS = ("word", "phone", "char", "bpe")


class UnknownTokenError(AsrError):
    """A transcript holds a symbol that is not in the token list."""


def _check_unit(unit: str) -> str:
    if unit not in UNITS:
        raise ConfigError(f"unknown token unit '{unit}' (choose from {', '.join(UNITS)})")
    return unit


def infer_unit(symbols: Iterable[str]) -> str:
    """Guess the unit of a token list: ``char`` with ``<space>``, ``bpe`` with ``▁`` pieces.

    A phone list cannot be told from a word list by its symbols; both are "word" here, which
    decodes the same way (symbols joined by spaces).
    """
    symbols = list(symbols)
    if SPACE in symbols:
        return "char"
    if any(s.startswith(WORD_START) for s in symbols):
        return "bpe"
    return "word"


def join_pieces(pieces: Iterable[str]) -> str:
    """Sentencepiece pieces -> words: concatenate, and every ``▁`` becomes a word gap."""
    return " ".join("".join(pieces).replace(WORD_START, " ").split())


def split_text(text: str, unit: str = "word") -> list[str]:
    """Split a transcript into unit symbols (no ids, no checking against a list)."""
    _check_unit(unit)
    words = text.split()
    if unit != "char":
        return words
    symbols: list[str] = []
    for i, word in enumerate(words):
        if i:
            symbols.append(SPACE)
        symbols.extend(word)
    return symbols


class TokenList:
    """An ordered symbol inventory; the position of a symbol is its class index."""

    def __init__(self, symbols: Sequence[str], unit: str = "word") -> None:
        self.unit = _check_unit(unit)
        symbols = list(symbols)
        if not symbols or symbols[0] != BLANK:
            raise ConfigError(f"a token list must start with the blank symbol {BLANK}")
        if len(set(symbols)) != len(symbols):
            dup = next(s for s in symbols if symbols.count(s) > 1)
            raise ConfigError(f"token list has symbol '{dup}' twice")
        self.symbols = symbols
        self._index = {s: i for i, s in enumerate(symbols)}

    @classmethod
    def from_texts(cls, texts: Iterable[str], unit: str = "word") -> TokenList:
        """Collect every symbol of ``texts``; sorted so the list does not depend on data order."""
        seen: set[str] = set()
        for text in texts:
            seen.update(split_text(text, unit))
        if BLANK in seen:
            raise ConfigError(f"transcripts use the reserved blank symbol {BLANK}")
        return cls([BLANK, *sorted(seen)], unit)

    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenList) and self.symbols == other.symbols

    def split(self, text: str) -> list[str]:
        return split_text(text, self.unit)

    def encode_symbols(self, symbols: Iterable[str]) -> list[int]:
        ids = []
        for symbol in symbols:
            index = self._index.get(symbol)
            if index is None or index == 0:
                raise UnknownTokenError(f"unknown token '{symbol}' (not in the token list)")
            ids.append(index)
        return ids

    def encode(self, text: str) -> list[int]:
        """Transcript -> class indices; a symbol missing from the list is an UnknownTokenError."""
        return self.encode_symbols(self.split(text))

    def decode_symbols(self, ids: Iterable[int]) -> list[str]:
        """Class indices -> symbols, leaving out blanks."""
        return [self.symbols[int(i)] for i in ids if int(i) != 0]

    def decode(self, ids: Iterable[int]) -> str:
        """Class indices -> transcript text (``<space>`` back to a blank for ``char``, pieces
        joined into words at ``▁`` for ``bpe``)."""
        symbols = self.decode_symbols(ids)
        if self.unit == "bpe":
            return join_pieces(symbols)
        if self.unit != "char":
            return " ".join(symbols)
        return " ".join("".join(symbols).replace(SPACE, " ").split()) if symbols else ""

    def save(self, path: str | os.PathLike) -> None:
        with atomic_write(path) as handle:
            for i, symbol in enumerate(self.symbols):
                handle.write(f"{symbol} {i}\n")

    @classmethod
    def load(cls, path: str | os.PathLike, unit: str | None = None) -> TokenList:
        """Read ``tokens.txt``; ``unit`` defaults to :func:`infer_unit` of its symbols."""
        path = Path(path)
        symbols: list[str] = []
        for lineno, line in enumerate(read_text_lines(path), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise DataDirError(f"{path}:{lineno}: expected 'symbol id', got '{line.strip()}'")
            if int(parts[1]) != len(symbols):
                raise DataDirError(
                    f"{path}:{lineno}: id {parts[1]} out of order (expected {len(symbols)})"
                )
            symbols.append(parts[0])
        if unit is None:
            unit = infer_unit(symbols)
        try:
            return cls(symbols, unit)
        except ConfigError as exc:
            raise DataDirError(f"{path}: {exc}") from None
