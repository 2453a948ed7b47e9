"""A token bigram language model for shallow fusion in CTC prefix beam search.

Trained from a Kaldi ``text`` file (``utt-id token token ...``, e.g. a phone transcript) over a
model's token list, with add-k smoothing: P(w | h) = (c(h, w) + k) / (c(h) + k * N), where the
N outcomes are every non-blank token plus the sentence end ``</s>`` and the contexts are every
non-blank token plus the sentence start ``<s>``. Every probability is finite, and for each
context those of the N outcomes sum to one.

Token ids are those of the token list (the blank, index 0, never occurs in a sequence); the
context ``None`` (or the blank index) is the sentence start. Saved as a small JSON file of the
token list, ``k`` and the non-zero bigram counts (no pickle).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from asr.errors import ConfigError
from asr.fileio import atomic_write, read_text_lines
from asr.units.tokens import TokenList, UnknownTokenError

START = "<s>"
END = "</s>"
FORMAT = "asr-bigram-lm"


class BigramLM:
    """Add-k smoothed token bigram model over ``tokens`` (a :class:`TokenList` or its symbols)."""

    def __init__(
        self, tokens: TokenList | Sequence[str], counts: np.ndarray | None = None, k: float = 0.1
    ) -> None:
        if not isinstance(tokens, TokenList):
            tokens = TokenList(list(tokens))
        if not k > 0 or not math.isfinite(k):
            raise ConfigError(f"bigram smoothing k {k}: must be a positive number")
        vocab = len(tokens)
        if counts is None:
            counts = np.zeros((vocab, vocab))
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != (vocab, vocab):
            raise ConfigError(f"bigram counts of shape {counts.shape} for {vocab} tokens")
        self.tokens = tokens
        self.k = float(k)
        # counts[h, w]: row 0 is the context <s>, column 0 the outcome </s>.
        self.counts = counts
        table = np.log(counts + k) - np.log(counts.sum(1, keepdims=True) + k * vocab)
        self._table = table
        self._rows = table.tolist()

    @classmethod
    def from_sequences(
        cls, tokens: TokenList | Sequence[str], sequences: Iterable[Sequence[int]], k: float = 0.1
    ) -> BigramLM:
        """Count bigrams (with start and end) of token-id sequences."""
        if not isinstance(tokens, TokenList):
            tokens = TokenList(list(tokens))
        counts = np.zeros((len(tokens), len(tokens)))
        for seq in sequences:
            ids = [0, *(int(i) for i in seq), 0]
            for h, w in zip(ids[:-1], ids[1:], strict=False):
                counts[h, w] += 1
        return cls(tokens, counts, k)

    @classmethod
    def from_text(cls, path: str | os.PathLike, tokens: TokenList, k: float = 0.1) -> BigramLM:
        """Train from a Kaldi text file, split into symbols the way ``tokens`` splits text."""
        sequences = []
        for lineno, line in enumerate(read_text_lines(path), 1):
            parts = line.split(maxsplit=1)
            if not parts:
                continue
            try:
                sequences.append(tokens.encode(parts[1] if len(parts) > 1 else ""))
            except UnknownTokenError as exc:
                raise ConfigError(f"{path}:{lineno}: {exc}") from None
        if not sequences:
            raise ConfigError(f"{path}: no transcripts to train a bigram model on")
        return cls.from_sequences(tokens, sequences, k)

    def __len__(self) -> int:
        return len(self.tokens)

    def log_prob(self, prev: int | None, token: int) -> float:
        """log P(token | prev); ``prev`` None (or 0) is the sentence start."""
        if token == 0:
            raise ValueError("the blank is not a token of the language model")
        return self._rows[prev or 0][token]

    def end_log_prob(self, prev: int | None) -> float:
        """log P(</s> | prev); ``prev`` None (or 0) is the sentence start (an empty sequence)."""
        return self._rows[prev or 0][0]

    def sequence_log_prob(self, seq: Sequence[int]) -> float:
        """log P of a whole token-id sequence, start and end included."""
        ids = [0, *seq, 0]
        return float(sum(self._rows[h][w] for h, w in zip(ids[:-1], ids[1:], strict=False)))

    def table(self) -> np.ndarray:
        """(V, V) log probs: [h, w] = log P(w | h), row 0 the start context, column 0 the end."""
        return self._table.copy()

    def save(self, path: str | os.PathLike) -> None:
        symbols = [START, *self.tokens.symbols[1:]]
        outcomes = [END, *self.tokens.symbols[1:]]
        counts = [
            [symbols[h], outcomes[w], float(self.counts[h, w])]
            for h, w in zip(*np.nonzero(self.counts), strict=True)
        ]
        doc = {
            "format": FORMAT,
            "version": 1,
            "tokens": self.tokens.symbols,
            "unit": self.tokens.unit,
            "k": self.k,
            "counts": counts,
        }
        with atomic_write(path) as handle:
            json.dump(doc, handle, indent=1)
            handle.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> BigramLM:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                raise ConfigError(f"{path}: not a bigram language model ({FORMAT}) file")
            tokens = TokenList(doc["tokens"], unit=doc.get("unit", "word"))
            index = {s: i for i, s in enumerate(tokens.symbols) if i}
            index_h = {**index, START: 0}
            index_w = {**index, END: 0}
            counts = np.zeros((len(tokens), len(tokens)))
            for h, w, n in doc["counts"]:
                counts[index_h[h], index_w[w]] = float(n)
            return cls(tokens, counts, float(doc["k"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: cannot read bigram model ({exc})") from None
