"""ARPA n-gram files: a streaming validator and a small reader.

KenLM's own loader stops at the first problem with a C++ exception that names neither the line nor,
sometimes, the file; ``check_arpa`` reads the file once, in constant memory apart from the
vocabulary, and raises ``ArpaError("FILE:LINE: problem")`` instead, so that a decoder can check an
ARPA file before KenLM loads it. gzip, bzip2 and xz files are read as KenLM reads them (by their
magic bytes, whatever the name).

``read_arpa`` loads a whole (small) model into a dict for tests and tools, with the standard
back-off scoring KenLM uses (``log10_prob``, ``sentence_log10``).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from asr.errors import AsrError
from asr.fileio import atomic_write

# KenLM gives words that are not in the model this log10 probability when the file has no <unk>.
DEFAULT_UNK_LOG10 = -100.0

_COUNT_RE = re.compile(rb"^ngram\s+(\d+)\s*=\s*(\d+)$")
_SECTION_RE = re.compile(rb"^\\(\d+)-grams:$")


class ArpaError(AsrError):
    """An ARPA file is malformed: the message is ``FILE:LINE: problem``."""


@dataclass(frozen=True)
class ArpaInfo:
    """What ``check_arpa`` found: the order and the n-gram count of each order (1 first)."""

    path: Path
    order: int
    counts: tuple[int, ...]

    def line(self) -> str:
        counts = " ".join(f"{n}={c}" for n, c in enumerate(self.counts, 1))
        return f"{self.path}: valid ARPA, order {self.order}, ngram {counts}"


def open_maybe_compressed(path: str | os.PathLike) -> IO[bytes]:
    """Open ``path`` for reading bytes, through gzip/bzip2/xz when its magic bytes say so."""
    path = Path(path)
    try:
        handle = open(path, "rb")  # returned open: the caller closes it
    except FileNotFoundError:
        raise ArpaError(f"{path}: file not found") from None
    except OSError as exc:
        raise ArpaError(f"{path}: cannot read ({exc.strerror})") from None
    magic = handle.read(6)
    handle.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(handle, "rb")  # type: ignore[return-value]
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(handle, "rb")  # type: ignore[return-value]
    return handle


def arpa_unigrams(path: str | os.PathLike) -> set[str]:
    """The words of an ARPA file's 1-gram section (streamed: stops at the 2-grams), e.g. to tell
    which lexicon words an LM lacks without reading the whole model."""
    words: set[str] = set()
    in_unigrams = False
    with open_maybe_compressed(path) as handle:
        for raw in handle:
            line = raw.strip()
            if line == b"\\1-grams:":
                in_unigrams = True
            elif in_unigrams and line:
                if line.startswith(b"\\"):
                    break
                fields = line.split()
                if len(fields) >= 2:
                    words.add(fields[1].decode("utf-8", "replace"))
    return words


def _float(field: bytes, what: str, where: str) -> float:
    try:
        value = float(field)
    except ValueError:
        raise ArpaError(f"{where}: {what} {_show(field)} is not a number") from None
    if math.isnan(value):
        raise ArpaError(f"{where}: {what} is NaN")
    return value


def _show(field: bytes) -> str:
    return repr(field.decode("utf-8", "replace"))


def _lines(handle: IO[bytes], path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for the lines that are not blank, without the newline (and a
    Windows carriage return); a decompression error becomes one ArpaError."""
    number = 0
    try:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip(b"\n")
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.strip():
                yield number, line
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise ArpaError(f"{path}:{number + 1}: cannot decompress ({exc})") from None


_NUMBER = rb"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
# The usual layout (lmplz's, SRILM's): one regex match instead of a dozen calls per line.
_USUAL_ENTRY = re.compile(rb"(%s)\t([^\t ]+(?: [^\t ]+)*)(?:\t(%s))?" % (_NUMBER, _NUMBER))


def _entry(
    line: bytes, order: int, highest: bool, path: Path, number: int, lenient: bool = False
) -> tuple[float, list[bytes], float]:
    """Parse ``log10prob<TAB>w1 .. wN[<TAB>backoff]`` exactly as KenLM's reader does.

    KenLM wants a tab after the probability and before the backoff (spaces there fail to load,
    unlike SRILM); the words may be separated by spaces or tabs."""
    match = _USUAL_ENTRY.fullmatch(line)
    if match is not None:
        words = match[2].split(b" ")
        prob = float(match[1])
        backoff = float(match[3]) if match[3] is not None else 0.0
        if len(words) == order and prob <= 0 and not (highest and backoff != 0):
            return prob, words, backoff
    # anything else, valid or not, takes the careful path, which names the problem
    where = f"{path}:{number}"
    if lenient:
        return _lenient_entry(line, order, highest, where)
    prob_field, tab, rest = line.partition(b"\t")
    prob_field = prob_field.lstrip()
    if not tab or prob_field != prob_field.rstrip():
        raise ArpaError(
            f"{where}: expected a tab after the log10 probability (KenLM needs one; "
            "'asr lm normalize' rewrites the file with tabs)"
        )
    prob = _float(prob_field, "log10 probability", where)
    if prob > 0:
        raise ArpaError(f"{where}: log10 probability {prob_field.decode()} is above 0")
    fields = rest.split()
    backoff = 0.0
    if len(fields) == order + 1:
        words_part, _, backoff_field = rest.rpartition(b"\t")
        if words_part.split() != fields[:order] or backoff_field != backoff_field.strip():
            raise ArpaError(
                f"{where}: expected a tab before the backoff, then the line's end "
                "('asr lm normalize' rewrites the file with tabs)"
            )
        backoff = _float(backoff_field, "backoff", where)
        if math.isinf(backoff):
            raise ArpaError(f"{where}: backoff is infinite")
        if highest and backoff != 0:
            raise ArpaError(f"{where}: a backoff on a {order}-gram, the highest order")
        words_part_end = words_part
    elif len(fields) == order:
        words_part_end = rest
    else:
        backoff_text = "" if highest else ", [backoff]"
        plural = "s" if order > 1 else ""
        raise ArpaError(
            f"{where}: a {order}-gram line needs log10 prob, {order} word{plural}{backoff_text}; "
            f"found {len(fields) + 1} fields"
        )
    if words_part_end != words_part_end.rstrip():
        raise ArpaError(f"{where}: whitespace after the last word (KenLM wants a tab or the end)")
    return prob, fields[:order], backoff


def _lenient_entry(
    line: bytes, order: int, highest: bool, where: str
) -> tuple[float, list[bytes], float]:
    """Any whitespace between fields (SRILM, arpa2fst and older toolkits accept spaces)."""
    fields = line.split()
    if len(fields) not in (order + 1, order + 2):
        raise ArpaError(f"{where}: a {order}-gram line needs log10 prob and {order} words")
    prob = _float(fields[0], "log10 probability", where)
    if prob > 0:
        raise ArpaError(f"{where}: log10 probability {fields[0].decode()} is above 0")
    backoff = _float(fields[-1], "backoff", where) if len(fields) == order + 2 else 0.0
    if math.isinf(backoff) or (highest and backoff != 0):
        raise ArpaError(f"{where}: bad backoff {fields[-1].decode()} on a {order}-gram")
    return prob, fields[1 : order + 1], backoff


def _parse(
    path: str | os.PathLike,
    entry: Callable[[int, tuple[bytes, ...], float, float], None] | None = None,
    lenient: bool = False,
) -> ArpaInfo:
    """Validate ``path``; call ``entry(order, words, log10 prob, log10 backoff)`` per n-gram.

    Blank lines are insignificant (KenLM skips them too); the checks follow KenLM's reader
    (lm/read_arpa.cc) so that a file that passes here loads there."""
    path = Path(path)
    with open_maybe_compressed(path) as handle:
        lines = _lines(handle, path)
        # \data\ first; KenLM allows only blank lines and '#' comments before it
        number, line = 0, b""
        for number, line in lines:  # noqa: B007
            if not line.startswith(b"#"):
                break
        else:
            raise ArpaError(f"{path}:{number + 1}: no \\data\\ header (empty file?)")
        if line != b"\\data\\":
            raise ArpaError(f"{path}:{number}: expected \\data\\, found {_show(line[:40])}")

        counts: list[int] = []
        for number, line in lines:
            match = _COUNT_RE.match(line.strip())
            if match is None:
                if line.startswith(b"ngram"):
                    raise ArpaError(
                        f"{path}:{number}: expected 'ngram N=count', found {_show(line[:40])}"
                    )
                break
            if not counts:
                first_count_line = number
            order, count = int(match[1]), int(match[2])
            if order != len(counts) + 1:
                raise ArpaError(
                    f"{path}:{number}: expected 'ngram {len(counts) + 1}=count', got order {order}"
                )
            counts.append(count)
        else:
            raise ArpaError(f"{path}:{number + 1}: unexpected end of file in the \\data\\ header")
        if not counts:
            raise ArpaError(f"{path}:{number}: expected 'ngram 1=count', found {_show(line[:40])}")
        if counts[0] == 0:
            raise ArpaError(f"{path}:{first_count_line}: 'ngram 1=0': a model needs unigrams")

        max_order = len(counts)
        vocab: set[bytes] = set()
        for order in range(1, max_order + 1):
            # ``line`` is the first line after the previous block: this section's header
            if line != b"\\%d-grams:" % order:
                raise ArpaError(
                    f"{path}:{number}: expected \\{order}-grams:, found {_show(line[:40])}"
                )
            declared, seen = counts[order - 1], 0
            highest = order == max_order
            for number, line in lines:
                if line.startswith(b"\\"):
                    break
                seen += 1
                if seen > declared:
                    raise ArpaError(
                        f"{path}:{number}: more {order}-grams than the {declared} the header "
                        "declares"
                    )
                prob, words, backoff = _entry(line, order, highest, path, number, lenient)
                if order == 1:
                    if words[0] in vocab:
                        raise ArpaError(f"{path}:{number}: unigram {_show(words[0])} appears twice")
                    vocab.add(words[0])
                else:
                    for word in words:
                        # KenLM maps <unk>/<UNK> even when the unigrams do not list it
                        if word not in vocab and word not in (b"<unk>", b"<UNK>"):
                            raise ArpaError(
                                f"{path}:{number}: word {_show(word)} is not among the unigrams "
                                "(they must list the whole vocabulary)"
                            )
                if entry is not None:
                    entry(order, tuple(words), prob, backoff)
            else:
                what = f"\\{order + 1}-grams:" if order < max_order else "\\end\\"
                raise ArpaError(
                    f"{path}:{number + 1}: unexpected end of file after {seen} of the "
                    f"{declared} {order}-grams (expected {what})"
                )
            if seen != declared:
                raise ArpaError(
                    f"{path}:{number}: {seen} {order}-grams, but the header declares {declared}"
                )
            if order == 1:
                for special in (b"<s>", b"</s>"):
                    if special not in vocab:
                        raise ArpaError(f"{path}:{number}: the unigrams have no {special.decode()}")

        if line != b"\\end\\":
            raise ArpaError(f"{path}:{number}: expected \\end\\, found {_show(line[:40])}")
        for number, line in lines:
            raise ArpaError(f"{path}:{number}: text after \\end\\: {_show(line[:40])}")
    return ArpaInfo(path=path, order=max_order, counts=tuple(counts))


def check_arpa(path: str | os.PathLike) -> ArpaInfo:
    """Validate an ARPA file (plain, gzip, bzip2 or xz) in one streaming pass.

    Checks the ``\\data\\`` header, ``ngram N=count`` lines for N = 1.., the ``\\N-grams:``
    sections in order with ``log10prob<TAB>w1 .. wN[<TAB>backoff]`` lines (tabs where KenLM
    needs them; no backoff at the highest order),
    the counts against the header, numbers (not NaN, probabilities <= 0), unique unigrams that
    include ``<s>`` and ``</s>``, every word of a higher-order n-gram among the unigrams, and
    ``\\end\\``. Any problem -> ArpaError ``FILE:LINE: problem``.
    """
    return _parse(path)


class ArpaModel(dict):
    """A whole ARPA model: ``{(w1, ..., wN): (log10 prob, log10 backoff)}`` plus scoring.

    Scoring follows the standard back-off recursion that KenLM and SRILM use:
    p(w | h) = p(w | h) if the n-gram h+w is listed, else backoff(h) + p(w | h minus its oldest
    word); words not in the vocabulary score as ``<unk>`` (or -100 without one).
    """

    def __init__(self, info: ArpaInfo) -> None:
        super().__init__()
        self.info = info
        self.order = info.order
        self.vocab: set[str] = set()

    def log10_prob(self, history: Sequence[str], word: str) -> float:
        """log10 p(word | history), backing off; only the last order-1 history words count."""
        if word not in self.vocab:
            word = "<unk>"
        keep = max(0, len(history) - (self.order - 1))
        context = tuple(w if w in self.vocab else "<unk>" for w in history[keep:])
        backoff = 0.0
        while True:
            entry = self.get((*context, word))
            if entry is not None:
                return backoff + entry[0]
            if not context:
                return backoff + DEFAULT_UNK_LOG10  # <unk> not in the model
            context_entry = self.get(context)
            if context_entry is not None:
                backoff += context_entry[1]
            context = context[1:]

    def sentence_log10(self, words: Sequence[str], eos: bool = True) -> list[float]:
        """log10 probabilities of each word after ``<s>`` (and of ``</s>`` when ``eos``)."""
        history: list[str] = ["<s>"]
        scores = []
        for word in [*words, "</s>"] if eos else list(words):
            scores.append(self.log10_prob(history, word))
            history.append(word)
        return scores


def normalize_arpa(src: str | os.PathLike, out: str | os.PathLike) -> ArpaInfo:
    """Rewrite ``src`` (plain or compressed) in the layout KenLM loads: fields separated by
    tabs where KenLM needs them, blank lines and comments dropped, plain text.

    ARPA files from older toolkits (SRILM accepts spaces; e.g. WSJ's distributed LMs) may
    separate fields with spaces, which KenLM, and so the flashlight decoder, refuses. Other
    problems are ArpaErrors as in ``check_arpa``. ``out`` is written atomically and checked.
    """
    info = _parse(src, lenient=True)  # validate (and count) before writing anything
    with atomic_write(out, "wb") as handle:
        handle.write(b"\\data\\\n")
        for order, count in enumerate(info.counts, 1):
            handle.write(b"ngram %d=%d\n" % (order, count))
        current = [0]
        # float repr round-trips the decimal value; "%r" of -99.0 is "-99.0", which KenLM reads
        pieces: list[bytes] = []

        def write(order: int, words: tuple[bytes, ...], prob: float, backoff: float) -> None:
            if order != current[0]:
                handle.write(b"".join(pieces))
                pieces.clear()
                for missing in range(current[0] + 1, order + 1):  # empty sections too
                    handle.write(b"\n\\%d-grams:\n" % missing)
                current[0] = order
            line = b"%s\t%s" % (repr(prob).encode(), b" ".join(words))
            if order < info.order:
                line += b"\t%s" % repr(backoff).encode()
            pieces.append(line + b"\n")
            if len(pieces) >= 8192:
                handle.write(b"".join(pieces))
                pieces.clear()

        _parse(src, write, lenient=True)
        handle.write(b"".join(pieces))
        for missing in range(current[0] + 1, info.order + 1):
            handle.write(b"\n\\%d-grams:\n" % missing)
        handle.write(b"\n\\end\\\n")
    return check_arpa(out)


def read_arpa(path: str | os.PathLike) -> ArpaModel:
    """Load a (small) ARPA file, validated as ``check_arpa`` does, into an ``ArpaModel`` dict."""
    entries: list[tuple[int, tuple[bytes, ...], float, float]] = []
    info = _parse(
        path, lambda order, words, prob, backoff: entries.append((order, words, prob, backoff))
    )
    model = ArpaModel(info)
    for order, words, prob, backoff in entries:
        try:
            key = tuple(w.decode("utf-8") for w in words)
        except UnicodeDecodeError:
            raise ArpaError(f"{path}: a word is not valid UTF-8: {words!r}") from None
        model[key] = (prob, backoff)
        if order == 1:
            model.vocab.add(key[0])
    return model
