"""Subword units with sentencepiece: train a model on transcripts, segment Kaldi text files.

A model trained here (``unigram`` or ``bpe``) keeps the text as it is (no NFKC normalisation,
so joining the pieces gives back the words), covers every character of the training text, has
``<unk>`` as its only special piece (no ``<s>``/``</s>``: CTC has no use for them) and is
trained deterministically (fixed random seed, one thread by default, input not shuffled or
sampled), so the same transcripts always give the same pieces and the same ``tokens.txt``.

The segmented transcript (``asr bpe encode``) is what the ``bpe`` token unit of
:mod:`asr.units.tokens` trains on: pieces separated by spaces, ``▁`` starting each word.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr.errors import ConfigError, DataDirError
from asr.fileio import atomic_write, read_bytes, read_text_lines
from asr.units.tokens import join_pieces

MODEL_TYPES = ("unigram", "bpe")
SEED = 1234  # sentencepiece's own generator (seed pieces, sampling): fixed for repeatability


def _has_fileno(stream: object) -> bool:
    try:
        stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _text_lines(path: Path, skip_ids: bool) -> Iterator[str]:
    for line in read_text_lines(path):
        if skip_ids:
            parts = line.split(maxsplit=1)
            line = parts[1] if len(parts) == 2 else ""
        line = " ".join(line.split())
        if line:
            yield line


def train_bpe(
    texts: Sequence[str | os.PathLike],
    model_prefix: str | os.PathLike,
    vocab_size: int,
    model_type: str = "unigram",
    skip_ids: bool = True,
    num_threads: int = 1,
) -> Path:
    """Train a sentencepiece model on ``texts`` and write ``MODEL_PREFIX.model`` (+ ``.vocab``).

    ``skip_ids`` drops the first field of each line (Kaldi ``text`` files). ``vocab_size``
    counts ``<unk>``; a size the text cannot fill is a ConfigError that says the largest one.
    Returns the path of the ``.model`` file.
    """
    import sentencepiece as spm

    if model_type not in MODEL_TYPES:
        raise ConfigError(f"unknown BPE model type '{model_type}' (choose unigram or bpe)")
    if vocab_size < 2:
        raise ConfigError(f"vocabulary size must be at least 2, got {vocab_size}")
    if not texts:
        raise ConfigError("no training text given for the BPE model")
    sentences: list[str] = []
    for text in texts:
        sentences.extend(_text_lines(Path(text), skip_ids))
    if not sentences:
        names = ", ".join(str(t) for t in texts)
        raise DataDirError(f"{names}: no transcript text to train a BPE model on")
    model_path = Path(f"{model_prefix}.model")
    writer = io.BytesIO()
    spm.set_random_generator_seed(SEED)
    try:
        with open(os.devnull, "w") as devnull:
            spm.SentencePieceTrainer.train(
                # sentencepiece logs a page per run to fd 2; it can only redirect it from a
                # real stderr (not pytest's capture or an IDE's stream)
                **({"logstream": devnull} if _has_fileno(sys.stderr) else {}),
                sentence_iterator=iter(sentences),
                model_writer=writer,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                normalization_rule_name="identity",
                bos_id=-1,
                eos_id=-1,
                num_threads=num_threads,
                shuffle_input_sentence=False,
                input_sentence_size=0,
                max_sentence_length=1 << 20,
            )
    except RuntimeError as exc:
        # sentencepiece's messages start with a source location; keep the readable part
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        message = message.split("] ", 1)[-1]
        raise ConfigError(f"{model_path}: sentencepiece training failed: {message}") from None
    with atomic_write(model_path, "wb") as handle:
        handle.write(writer.getvalue())
    model = BpeModel(model_path)
    with atomic_write(Path(f"{model_prefix}.vocab")) as handle:
        for i in range(len(model)):
            handle.write(f"{model.piece(i)}\t{model.score(i):g}\n")
    return model_path


class BpeModel:
    """A trained sentencepiece model: text -> pieces -> text."""

    def __init__(self, path: str | os.PathLike) -> None:
        import sentencepiece as spm

        self.path = Path(path)
        data = read_bytes(self.path)
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.load_from_serialized_proto(data)
        except (RuntimeError, OSError):
            raise DataDirError(f"{self.path}: not a sentencepiece model") from None

    def __len__(self) -> int:
        return self._sp.get_piece_size()

    def piece(self, index: int) -> str:
        return self._sp.id_to_piece(index)

    def score(self, index: int) -> float:
        return self._sp.get_score(index)

    @property
    def pieces(self) -> list[str]:
        """Every piece of the model, by id (``<unk>`` first)."""
        return [self._sp.id_to_piece(i) for i in range(len(self))]

    def encode(self, text: str) -> list[str]:
        """Words -> pieces; a character the model never saw comes back as itself."""
        return self._sp.encode(" ".join(text.split()), out_type=str)

    def decode(self, pieces: Sequence[str]) -> str:
        """Pieces -> words (the inverse of :meth:`encode` for text the model covers)."""
        return join_pieces(pieces)


@dataclass
class EncodeReport:
    lines: int
    pieces: int
    unknown: int  # pieces that are not in the model (characters it never saw)


def encode_text_file(
    model: BpeModel | str | os.PathLike,
    in_text: str | os.PathLike,
    out_text: str | os.PathLike,
    skip_ids: bool = True,
) -> EncodeReport:
    """Segment a Kaldi ``text`` file: ``utt w1 w2`` -> ``utt ▁w1 ... ▁w2 ...`` (ids kept)."""
    if not isinstance(model, BpeModel):
        model = BpeModel(model)
    known = set(model.pieces)
    report = EncodeReport(0, 0, 0)
    lines: list[str] = []
    for line in read_text_lines(in_text):
        if not line.strip():
            continue
        if skip_ids:
            parts = line.split(maxsplit=1)
            head, words = parts[0], parts[1] if len(parts) == 2 else ""
        else:
            head, words = None, line
        pieces = model.encode(words)
        report.lines += 1
        report.pieces += len(pieces)
        report.unknown += sum(1 for p in pieces if p not in known)
        body = " ".join(pieces)
        lines.append(f"{head} {body}".rstrip() if head is not None else body)
    with atomic_write(out_text) as handle:
        for line in lines:
            handle.write(line + "\n")
    return report
