"""Word (or token) n-gram language models with KenLM's command-line tools.

``train_arpa`` streams text files (plain or compressed, Kaldi ``text`` with ``skip_ids``) into
``lmplz`` (modified Kneser-Ney), ``to_binary`` runs ``build_binary``, ``perplexity`` runs
``query``. The tools are built by ``tools/install_kenlm.sh`` (``make setup`` runs it); they are
looked for in ``$ASR_KENLM_BIN``, then ``tools/kenlm/bin`` of this checkout, then ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from asr.errors import AsrError
from asr.fileio import atomic_write
from asr.lm.arpa import ArpaError, check_arpa, open_maybe_compressed
from asr.units.tokens import split_text

REPO_ROOT = Path(__file__).resolve().parents[2]
# tools/install_kenlm.sh builds with KenLM's default KENLM_MAX_ORDER: query and build_binary (and
# flashlight-text's KenLM) cannot load a model of a higher order.
MAX_ORDER = 6
BINARY_TYPES = ("probing", "trie")
# The first bytes of every KenLM binary file (lm/binary_format.cc's kMagicBeforeVersion).
_BINARY_MAGIC = b"mmap lm http://kheafield.com/code"
_INSTALL_HINT = "run tools/install_kenlm.sh (or make setup)"


class LmError(AsrError):
    """A KenLM tool is missing or failed, or its input is unusable."""


@dataclass(frozen=True)
class LmSummary:
    """What ``train_arpa`` wrote: the ARPA file, its order and n-gram counts, the text it read."""

    path: Path
    order: int
    counts: tuple[int, ...]
    sentences: int
    words: int
    seconds: float

    def line(self) -> str:
        counts = "/".join(str(c) for c in self.counts)
        return (
            f"wrote {self.path}: {self.order}-gram, {counts} n-grams from {self.sentences} "
            f"sentences ({self.words} words) in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class Perplexity:
    """``query``'s summary: perplexity with OOVs scored as <unk>, and without the OOV words.

    ``words`` excludes the ``</s>`` of each sentence, which the perplexity does count (as KenLM
    and SRILM do: ``10 ** (-log10 P / (words + sentences))``).
    """

    perplexity: float
    perplexity_no_oov: float
    sentences: int
    words: int
    oovs: int

    def line(self) -> str:
        return (
            f"perplexity {self.perplexity:.2f} ({self.sentences} sentences, {self.words} words, "
            f"{self.oovs} OOVs)"
        )


def kenlm_binary(name: str) -> Path:
    """The KenLM program ``name`` (lmplz, build_binary, query, filter): ``$ASR_KENLM_BIN``, then
    this checkout's ``tools/kenlm/bin``, then ``PATH``; missing -> one-line LmError."""
    env_dir = os.environ.get("ASR_KENLM_BIN")
    candidates = [Path(env_dir) / name] if env_dir else []
    candidates.append(REPO_ROOT / "tools" / "kenlm" / "bin" / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    where = "$ASR_KENLM_BIN, " if env_dir else ""
    raise LmError(
        f"KenLM's {name} not found (looked in {where}{REPO_ROOT / 'tools/kenlm/bin'} and PATH): "
        f"{_INSTALL_HINT}"
    )


def _status(code: int) -> str:
    # KenLM reports exceptions by abort(): a signal, not an exit status
    return f"signal {-code}" if code < 0 else f"exit {code}"


def _tool_error(stderr_tail: Sequence[str]) -> str:
    """The useful line(s) of a KenLM failure: the message after 'threw X because ...'."""
    lines = [line.strip() for line in stderr_tail if line.strip()]
    for i, line in enumerate(lines):
        if " threw " in line and i + 1 < len(lines):
            return " ".join(lines[i + 1 :])
    for line in reversed(lines):
        if not line.startswith("Name:"):  # KenLM's resource-usage line
            return line
    return "no message"


def _as_characters(line: bytes) -> bytes:
    """``the cat`` -> ``t h e <space> c a t``: the units of a character CTC model
    (asr.units.tokens), so that an LM over them can drive lexicon-free search."""
    return " ".join(split_text(line.decode("utf-8", "replace"), "char")).encode("utf-8")


def _text_lines(
    paths: Sequence[str | os.PathLike], skip_ids: bool, characters: bool = False
) -> Iterator[bytes]:
    """The non-empty sentences of ``paths`` as bytes lines ending in a newline (spelled out in
    characters with ``characters``)."""
    for path in paths:
        path = Path(path)
        try:
            handle = open_maybe_compressed(path)
        except ArpaError as exc:  # it names the file: not found / unreadable
            raise LmError(str(exc)) from None
        with handle:
            try:
                for raw in handle:
                    if skip_ids:
                        # Kaldi text: "utt-id word word ...": the id is no word of the LM
                        parts = raw.split(maxsplit=1)
                        line = parts[1].strip() if len(parts) == 2 else b""
                    else:
                        line = raw.strip()
                    if line and characters:
                        line = _as_characters(line)
                    if line:
                        yield line + b"\n"
            except (OSError, EOFError) as exc:
                raise LmError(f"{path}: cannot read ({exc})") from None


_TOKENS_RE = re.compile(r"^Unigram tokens (\d+) types \d+")


class _StderrReader(threading.Thread):
    """Drains a child's stderr (so a full pipe never blocks it), echoing it when asked and
    keeping the last lines for the error message."""

    def __init__(self, stream: IO[bytes], echo: bool) -> None:
        super().__init__(daemon=True)
        self.stream, self.echo = stream, echo
        self.tail: deque[str] = deque(maxlen=20)
        self.tokens: int | None = None

    def run(self) -> None:
        for raw in self.stream:
            line = raw.decode("utf-8", "replace")
            self.tail.append(line.rstrip("\n"))
            match = _TOKENS_RE.match(line)
            if match:  # lmplz counts the words for us: "Unigram tokens 12 types 9"
                self.tokens = int(match[1])
            if self.echo:
                sys.stderr.write(line)
                sys.stderr.flush()


def _feed(process: subprocess.Popen, lines: Iterator[bytes]) -> int:
    """Write ``lines`` to the child's stdin in blocks; the number of lines written."""
    assert process.stdin is not None
    sentences = 0
    block: list[bytes] = []
    try:
        for line in lines:
            block.append(line)
            sentences += 1
            if len(block) == 4096:
                process.stdin.write(b"".join(block))
                block.clear()
        process.stdin.write(b"".join(block))
        process.stdin.close()
    except BrokenPipeError:
        pass  # the tool died: its exit status and stderr say why
    return sentences


def train_arpa(
    texts: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    order: int,
    prune: Sequence[int] = (),
    discount_fallback: bool = True,
    memory: str = "20%",
    skip_ids: bool = False,
    limit_vocab: str | os.PathLike | Sequence[str] | None = None,
    skip_symbols: bool = False,
    progress: bool = False,
    characters: bool = False,
) -> LmSummary:
    """Train a modified Kneser-Ney ARPA model of ``order`` on ``texts`` with KenLM's lmplz.

    ``texts``: plain or compressed files of one sentence per line (Kaldi ``text`` files with
    ``skip_ids``, which drops each line's first field); blank lines are left out. ``prune``:
    lmplz's count thresholds per order (e.g. 0 0 1 drops singleton trigrams and above).
    ``discount_fallback`` lets small or artificial corpora (where Kneser-Ney discounts cannot be
    estimated) train with lmplz's fallback discounts. ``memory``: lmplz's sorting memory (-S, like
    GNU sort: "20%", "2G"). ``limit_vocab``: a word-list file or the words themselves; n-grams with
    other words are pruned (lmplz --limit_vocab_file). ``skip_symbols``: <s>, </s> and <unk> in
    the text become whitespace instead of an error. ``progress`` echoes lmplz's own progress to
    stderr. ``characters``: an LM over characters, each sentence spelled out with ``<space>``
    between words (the units of a char model, for lexicon-free decoding). The ARPA file is
    written atomically and checked with ``asr.lm.arpa.check_arpa``.
    """
    out = Path(out)
    if not texts:
        raise LmError("no training text given")
    if not 1 <= order <= MAX_ORDER:
        raise LmError(f"order {order}: KenLM here supports orders 1 to {MAX_ORDER}")
    prune = [int(p) for p in prune]
    if prune and (
        any(p < 0 for p in prune) or any(a > b for a, b in zip(prune, prune[1:], strict=False))
    ):
        raise LmError(f"prune {' '.join(map(str, prune))}: thresholds must be >= 0, non-decreasing")
    if prune and len(prune) > order:
        raise LmError(f"prune has {len(prune)} thresholds for an order-{order} model")
    if prune and prune[0] != 0:
        raise LmError("prune: lmplz cannot prune unigrams: the first threshold must be 0")
    for text in texts:
        if not Path(text).is_file():
            raise LmError(f"{text}: file not found")
    lmplz = kenlm_binary("lmplz")

    start = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    # lmplz's sort spills to -T: keep it beside the output (often a bigger disk than /tmp).
    with contextlib.ExitStack() as stack:
        tmp_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix=".lmplz.", dir=out.parent))
        command = [str(lmplz), "-o", str(order), "-S", memory, "-T", tmp_dir + "/"]
        if discount_fallback:
            command.append("--discount_fallback")
        if skip_symbols:
            command.append("--skip_symbols")
        if prune:
            command += ["--prune", *map(str, prune)]
        if limit_vocab is not None:
            if isinstance(limit_vocab, (str, os.PathLike)):
                if not Path(limit_vocab).is_file():
                    raise LmError(f"{limit_vocab}: vocabulary file not found")
                vocab_file = Path(limit_vocab)
            else:
                vocab_file = Path(tmp_dir) / "vocab.txt"
                vocab_file.write_text("\n".join(limit_vocab) + "\n", encoding="utf-8")
            command += ["--limit_vocab_file", str(vocab_file)]
        handle = stack.enter_context(atomic_write(out, "wb"))
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=handle, stderr=subprocess.PIPE
        )
        reader = _StderrReader(process.stderr, progress)
        reader.start()
        try:
            sentences = _feed(process, _text_lines(texts, skip_ids, characters))
        except BaseException:
            process.kill()
            process.wait()
            raise
        status = process.wait()
        reader.join()
        if status != 0:
            message = _tool_error(reader.tail)
            if "--skip_symbols" in message:
                message += " (asr lm train --skip-symbols; train_arpa(skip_symbols=True))"
            raise LmError(f"lmplz failed ({_status(status)}): {message}")
        if sentences == 0:
            # lmplz happily writes a model without </s> from no text: refuse it here.
            raise LmError(f"no sentences in {', '.join(map(str, texts))}")
    try:
        info = check_arpa(out)
    except ArpaError as exc:
        raise LmError(f"lmplz wrote an invalid ARPA file: {exc}") from None
    return LmSummary(
        path=out,
        order=info.order,
        counts=info.counts,
        sentences=sentences,
        words=reader.tokens if reader.tokens is not None else -1,
        seconds=time.monotonic() - start,
    )


def is_binary_lm(path: str | os.PathLike) -> bool:
    """True for a KenLM binary model (by its magic bytes), False for anything else (ARPA)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(_BINARY_MAGIC)) == _BINARY_MAGIC
    except FileNotFoundError:
        raise LmError(f"{path}: file not found") from None
    except OSError as exc:
        raise LmError(f"{path}: cannot read ({exc.strerror})") from None


def _run(command: list[str], what: str, stdin: IO[bytes] | None = None) -> str:
    """Run a KenLM tool to completion; stdout on success, one-line LmError on failure."""
    result = subprocess.run(command, stdin=stdin, capture_output=True)
    if result.returncode != 0:
        tail = result.stderr.decode("utf-8", "replace").splitlines()[-20:]
        raise LmError(f"{what} failed ({_status(result.returncode)}): {_tool_error(tail)}")
    return result.stdout.decode("utf-8", "replace")


def to_binary(
    arpa: str | os.PathLike, out: str | os.PathLike, kind: str = "probing", check: bool = True
) -> Path:
    """Convert an ARPA file to KenLM's binary format (``probing``: fastest; ``trie``: smallest),
    written atomically. ``check`` validates the ARPA file first for a FILE:LINE message."""
    if kind not in BINARY_TYPES:
        raise LmError(f"binary type {kind!r}: choose one of {', '.join(BINARY_TYPES)}")
    arpa, out = Path(arpa), Path(out)
    if is_binary_lm(arpa):
        raise LmError(f"{arpa}: already a KenLM binary model, not an ARPA file")
    if check:
        check_arpa(arpa)
    build_binary = kenlm_binary("build_binary")
    out.parent.mkdir(parents=True, exist_ok=True)
    # build_binary writes by name (it mmaps the output), so the atomic rename is done here.
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        _run([str(build_binary), "-S", "20%", kind, str(arpa), tmp], "build_binary")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return out


_SUMMARY_RE = {
    "perplexity": re.compile(r"^Perplexity including OOVs:\s*(\S+)$", re.M),
    "perplexity_no_oov": re.compile(r"^Perplexity excluding OOVs:\s*(\S+)$", re.M),
    "oovs": re.compile(r"^OOVs:\s*(\d+)$", re.M),
    "tokens": re.compile(r"^Tokens:\s*(\d+)$", re.M),
}


def perplexity(
    lm: str | os.PathLike,
    text: str | os.PathLike,
    skip_ids: bool = False,
    check: bool = True,
    characters: bool = False,
) -> Perplexity:
    """Perplexity of ``lm`` (ARPA or KenLM binary) on ``text`` (one sentence per line; Kaldi
    ``text`` with ``skip_ids``; spelled out as for :func:`train_arpa` with ``characters``) with
    KenLM's query; blank lines are left out, as in training. Each sentence is scored from
    ``<s>`` with its ``</s>``; OOV words score as ``<unk>``."""
    lm = Path(lm)
    if not is_binary_lm(lm) and check:
        check_arpa(lm)
    if not Path(text).is_file():
        raise LmError(f"{text}: file not found")
    query = kenlm_binary("query")
    with tempfile.TemporaryFile() as feed:
        sentences = 0
        for line in _text_lines([text], skip_ids, characters):
            feed.write(line)
            sentences += 1
        if sentences == 0:
            raise LmError(f"{text}: no sentences")
        feed.seek(0)
        output = _run([str(query), "-v", "summary", str(lm)], "query", stdin=feed)
    values: dict[str, str] = {}
    for key, pattern in _SUMMARY_RE.items():
        match = pattern.search(output)
        if match is None:
            raise LmError(f"query printed no '{key}' line for {lm} (is it a KenLM query?)")
        values[key] = match[1]
    tokens = int(values["tokens"])
    return Perplexity(
        perplexity=float(values["perplexity"]),
        perplexity_no_oov=float(values["perplexity_no_oov"]),
        sentences=sentences,
        words=tokens - sentences,
        oovs=int(values["oovs"]),
    )
