"""Prompts for the synthetic corpus: sentences read from text files, or generated from a grammar.

Every prompt is already normalised (``asr.corpora.synthetic.normalize``): the prompt is the
transcript.

Two sources:

- ``read_prompt_files``: prose (Project Gutenberg books, speeches) split into sentences. The
  Gutenberg licence header and footer and ``[bracketed]`` editorial text (``[Applause]``, the
  ``[Emma by Jane Austen 1816]`` title line) are skipped.
- ``generate_prompts``: sentences from a grammar in the spirit of DARPA Resource Management (naval
  resource database queries), ``asr/resources/synth/grammar.txt``; the format is described at
  its top.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from asr import resources
from asr.corpora.synthetic.normalize import normalize_sentence
from asr.errors import AsrError

__all__ = [
    "PromptError",
    "Grammar",
    "split_sentences",
    "read_prompt_files",
    "generate_prompts",
    "grammar_path",
    "load_grammar",
    "strip_gutenberg",
]


class PromptError(AsrError):
    """A prompt file or grammar is missing, undecodable or malformed, or asks for too much."""


# --- sentence splitting -----------------------------------------------------------------------

# a period after these never ends a sentence: a name follows
_TITLES = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "messrs",
    "mme",
    "mlle",
    "prof",
    "gen",
    "col",
    "capt",
    "cmdr",
    "lt",
    "sgt",
    "adm",
    "gov",
    "sen",
    "rep",
    "rev",
    "hon",
    "fr",
    "mt",
    "vs",
}
# ... nor after these when a number follows ("No. 5", "Jan. 20", "Vol. 3")
_BEFORE_NUMBER = set(
    "no nos vol ch chap p pp art sec fig jan feb mar apr jun jul aug sep sept oct nov dec".split()
)

# terminal punctuation, closing quotes/brackets, whitespace, then what may open a sentence
_BOUNDARY = re.compile(r"([.!?]+)([\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]*([A-Z0-9]))")
_WORD_BEFORE = re.compile(r"([A-Za-z.]+)$")


def _is_boundary(text: str, match: re.Match) -> bool:
    if match.group(1) != ".":
        return True  # "?", "!", "..." before a capital
    before = _WORD_BEFORE.search(text[max(0, match.start() - 40) : match.start()])
    if before is None:
        return True
    word = before.group(1)
    if "." in word.strip("."):
        return False  # "U.S." or "G.K." -- an abbreviation, most likely mid-sentence
    key = word.strip(".").lower()
    if len(key) == 1 and word[-1].isupper():
        return False  # an initial: "Harry S. Truman"
    if key in _TITLES:
        return False
    return not (key in _BEFORE_NUMBER and match.group(3).isdigit())


def _paragraphs(text: str) -> list[str]:
    """Blank lines separate paragraphs; wrapped lines inside one are joined with a space.

    A line in capitals is a heading and a paragraph of its own, and a line ending in a colon
    before a capitalised line ends the paragraph: speeches put section titles ("ATOMIC ENERGY")
    and the salutation ("Mr. Speaker, Members of the Congress:") on lines of their own.
    """
    paragraphs: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        # "ATOMIC ENERGY", "CHAPTER IV": a line of its own (a lone "I" is only a pronoun)
        heading = stripped.isupper() and sum(ch.isalpha() for ch in stripped) >= 2
        if current and (heading or (current[-1].endswith(":") and stripped[0].isupper())):
            paragraphs.append(" ".join(current))
            current = []
        current.append(stripped)
        if heading:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences (not normalised).

    Paragraphs (blank-line separated) never share a sentence. Inside one, a sentence ends at
    ``. ! ?`` (and any closing quotes) followed by a capital letter or a digit; a period after a
    title (``Mr.``, ``Dr.``, ``St.``), an initial (``S.``) or a dotted abbreviation (``U.S.``) does
    not end one, nor does ``?``/``!`` before a lower-case word (``"Who?" said he``).
    """
    sentences: list[str] = []
    for paragraph in _paragraphs(text):
        paragraph = re.sub(r"\s+", " ", paragraph)
        start = 0
        for match in _BOUNDARY.finditer(paragraph):
            if _is_boundary(paragraph, match):
                end = match.start() + len(match.group(1)) + len(match.group(2))
                sentence = paragraph[start:end].strip()
                if sentence:
                    sentences.append(sentence)
                start = match.end()
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences


# --- reading prompt files ---------------------------------------------------------------------

_GUTENBERG_START = re.compile(
    r"^\s*\*{3}\s*START OF (THE|THIS) PROJECT GUTENBERG|^\s*\*END\*\s*THE SMALL PRINT", re.I
)
_GUTENBERG_END = re.compile(
    r"^\s*\*{3}\s*END OF (THE|THIS) PROJECT GUTENBERG|^\s*End of (the )?Project Gutenberg"
    r"|^\s*\*{3}\s*START\**\s*THE SMALL PRINT",
    re.I,
)
# bracketed editorial text: "[Applause]", "[Illustration: ...]"; bounded so that a stray "["
# cannot swallow a chapter
_BRACKETED = re.compile(r"\[[^\[\]]{0,2000}\]")


def strip_gutenberg(lines: list[str]) -> list[str]:
    """The text between a Project Gutenberg header and footer (all lines if there are none)."""
    end = next((i for i, line in enumerate(lines) if _GUTENBERG_END.search(line)), len(lines))
    start = -1
    for i in range(end):
        if _GUTENBERG_START.search(lines[i]):
            start = i
    return lines[start + 1 : end]


# prose-only filters (the grammar's "c two" must stay valid, so they are not in normalize):
# a lone lower-case letter is a typo ("p eople"), an elision ("'t is") or "&c." (etcetera)
_LONE_LETTER = re.compile(
    r"(?<![A-Za-z])(?<![A-Za-z]['\u2019])[b-hj-np-z](?![A-Za-z])(?!['\u2019][A-Za-z])"
)
# an outline label or heading number opening the sentence: "(b) Food subsidies", "X. The Salad"
_LABEL = re.compile(r"^\W*\(?[A-Za-z]\)|^\W*[B-HJ-NP-Z]\.\s")


def _prose_ok(sentence: str) -> bool:
    return not (_LONE_LETTER.search(sentence) or _LABEL.search(sentence))


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PromptError(f"{path}: file not found") from None
    except OSError as exc:
        raise PromptError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PromptError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x})"
        ) from None
    return text.removeprefix("\ufeff")


def _without_brackets(text: str) -> str:
    # keep the line breaks a bracket spanned, so paragraphs stay apart
    return _BRACKETED.sub(lambda m: "\n" * m.group(0).count("\n") or " ", text)


def read_prompt_files(
    paths: Iterable[str | os.PathLike] | str | os.PathLike,
    min_words: int = 3,
    max_words: int = 20,
) -> list[str]:
    """Normalised sentences from UTF-8 text files, de-duplicated, in file order.

    Sentences that cannot be normalised (``normalize_sentence`` gives None) or have fewer than
    ``min_words`` or more than ``max_words`` words are left out, and so are sentences with a lone
    lower-case letter other than a, i, o (typos like "p eople", elisions like "'t is", "&c") or
    opening with an outline label ("(b) Food subsidies", "X. The Salad of Colonel Cray").
    A missing or unreadable file, or one that is not valid UTF-8, raises PromptError naming it
    (and the line of the bad byte).
    """
    if min_words < 1 or max_words < min_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    seen: set[str] = set()
    prompts: list[str] = []
    for path in paths:
        text = _read_text(Path(path))
        body = _without_brackets("\n".join(strip_gutenberg(text.splitlines())))
        for sentence in split_sentences(body):
            if not _prose_ok(sentence):
                continue
            prompt = normalize_sentence(sentence)
            if prompt is None or prompt in seen:
                continue
            if min_words <= len(prompt.split()) <= max_words:
                seen.add(prompt)
                prompts.append(prompt)
    return prompts


# --- grammar ----------------------------------------------------------------------------------

START_SYMBOL = "sentence"
_GRAMMAR_TOKEN = re.compile(r"\s*(?:(<[a-z0-9_]+>)|([a-z]+(?:'[a-z]+)*)|([\[\]()|])|(\S+))")


@dataclass
class _Alt:
    """A choice between sequences; each sequence is a list of str (a word) or _Alt/_Ref."""

    options: list[list] = field(default_factory=list)


@dataclass
class _Ref:
    name: str
    line: int
    target: _Alt | None = None


class Grammar:
    """A finite, non-recursive context-free grammar of prompt sentences (see grammar.txt)."""

    def __init__(self, rules: dict[str, _Alt], lines: dict[str, int], source: str) -> None:
        self.rules = rules
        self.lines = lines
        self.source = source
        self._counts: dict[int, int] = {}
        self._link()

    def _link(self) -> None:
        def visit(alt: _Alt) -> None:
            for seq in alt.options:
                for item in seq:
                    if isinstance(item, _Ref):
                        if item.name not in self.rules:
                            raise PromptError(
                                f"{self.source}:{item.line}: rule <{item.name}> is not defined"
                            )
                        item.target = self.rules[item.name]
                    elif isinstance(item, _Alt):
                        visit(item)

        if START_SYMBOL not in self.rules:
            raise PromptError(f"{self.source}: no <{START_SYMBOL}> rule")
        for alt in self.rules.values():
            visit(alt)
        # recursion would make the language infinite and the counting below loop forever
        state: dict[str, int] = {}

        def refs(alt: _Alt) -> Iterable[_Ref]:
            for seq in alt.options:
                for item in seq:
                    if isinstance(item, _Ref):
                        yield item
                    elif isinstance(item, _Alt):
                        yield from refs(item)

        def check(name: str) -> None:
            state[name] = 1
            for ref in refs(self.rules[name]):
                if state.get(ref.name) == 1:
                    raise PromptError(
                        f"{self.source}:{self.lines[ref.name]}: rule <{ref.name}> is recursive"
                    )
                if ref.name not in state:
                    check(ref.name)
            state[name] = 2

        for name in self.rules:
            if name not in state:
                check(name)

    def _count(self, node: _Alt | _Ref | str) -> int:
        if isinstance(node, str):
            return 1
        if isinstance(node, _Ref):
            node = node.target
        key = id(node)
        if key not in self._counts:
            self._counts[key] = sum(math.prod(self._count(i) for i in s) for s in node.options)
        return self._counts[key]

    def size(self) -> int:
        """Number of derivations of <sentence>: an upper bound on its distinct sentences."""
        return self._count(self.rules[START_SYMBOL])

    def vocabulary(self) -> set[str]:
        """Every word reachable from <sentence>."""
        words: set[str] = set()
        seen: set[int] = set()

        def visit(alt: _Alt) -> None:
            if id(alt) in seen:
                return
            seen.add(id(alt))
            for seq in alt.options:
                for item in seq:
                    if isinstance(item, str):
                        words.add(item)
                    else:
                        visit(item.target if isinstance(item, _Ref) else item)

        visit(self.rules[START_SYMBOL])
        return words

    def sample(self, rng: random.Random) -> str:
        """One random sentence."""
        out: list[str] = []
        self._expand(self.rules[START_SYMBOL], rng, out)
        return " ".join(out)

    def _expand(self, alt: _Alt, rng: random.Random, out: list[str]) -> None:
        # every alternative equally likely, as in RM's own sentence generation: weighting by the
        # number of fillings would make nearly every sentence the longest template
        options = alt.options
        for item in options[int(rng.random() * len(options))]:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, _Ref):
                self._expand(item.target, rng, out)
            else:
                self._expand(item, rng, out)

    def enumerate(self) -> set[str]:
        """All distinct sentences (use only when size() is small)."""
        cache: dict[int, list[tuple[str, ...]]] = {}

        def expand(alt: _Alt) -> list[tuple[str, ...]]:
            if id(alt) in cache:
                return cache[id(alt)]
            result: list[tuple[str, ...]] = []
            for seq in alt.options:
                partial: list[tuple[str, ...]] = [()]
                for item in seq:
                    if isinstance(item, str):
                        partial = [p + (item,) for p in partial]
                    else:
                        tails = expand(item.target if isinstance(item, _Ref) else item)
                        partial = [p + t for p in partial for t in tails]
                result.extend(partial)
            cache[id(alt)] = result
            return result

        return {" ".join(words) for words in expand(self.rules[START_SYMBOL])}


def _parse_rule(text: str, source: str, line: int) -> _Alt:
    tokens: list[tuple[str, str]] = []
    for m in _GRAMMAR_TOKEN.finditer(text):
        ref, word, sym, bad = m.groups()
        if bad is not None:
            raise PromptError(f"{source}:{line}: bad token {bad!r} (words are [a-z'] only)")
        if ref:
            tokens.append(("ref", ref[1:-1]))
        elif word:
            tokens.append(("word", word))
        elif sym:
            tokens.append(("sym", sym))
    pos = 0

    def alternatives(closing: str | None) -> _Alt:
        nonlocal pos
        alt = _Alt(options=[[]])
        while pos < len(tokens):
            kind, value = tokens[pos]
            pos += 1
            if kind == "word":
                alt.options[-1].append(value)
            elif kind == "ref":
                alt.options[-1].append(_Ref(value, line))
            elif value == "|":
                alt.options.append([])
            elif value in "[(":
                inner = alternatives("]" if value == "[" else ")")
                if value == "[":
                    inner.options.insert(0, [])  # optional: the empty sequence is a choice
                alt.options[-1].append(inner)
            elif value == closing:
                return checked(alt)
            else:
                raise PromptError(f"{source}:{line}: unexpected {value!r}")
        if closing is not None:
            raise PromptError(f"{source}:{line}: missing {closing!r}")
        return checked(alt)

    def checked(alt: _Alt) -> _Alt:
        if any(not seq for seq in alt.options):
            raise PromptError(
                f"{source}:{line}: empty alternative (use [ ... ] for optional words)"
            )
        return alt

    return alternatives(None)


_RULE_HEAD = re.compile(r"^<([a-z0-9_]+)>\s*=(.*)$")


def load_grammar(path: str | os.PathLike | None = None) -> Grammar:
    """Parse a grammar file (default: ``grammar_path()``); errors name the file and line."""
    path = Path(path) if path is not None else grammar_path()
    text = _read_text(path)
    bodies: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    current: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        head = _RULE_HEAD.match(line)
        if head:
            current = head.group(1)
            if current in bodies:
                raise PromptError(
                    f"{path}:{number}: rule <{current}> already defined on line {lines[current]}"
                )
            bodies[current] = [head.group(2)]
            lines[current] = number
        elif line.startswith("|") and current is not None:
            bodies[current].append(line)
        else:
            raise PromptError(f"{path}:{number}: expected '<name> = ...' or a '| ...' line")
    rules = {
        name: _parse_rule(" ".join(body), str(path), lines[name]) for name, body in bodies.items()
    }
    return Grammar(rules, lines, str(path))


def grammar_path() -> Path:
    """The grammar shipped with the package: ``asr/resources/synth/grammar.txt``."""
    return resources.path("synth", "grammar.txt")


_ENUMERATE_LIMIT = 2_000_000  # derivations; enumerating more would take too long
_cache: dict[tuple[str, float], Grammar] = {}


def _cached_grammar(path: Path) -> Grammar:
    try:
        key = (str(path.resolve()), path.stat().st_mtime)
    except FileNotFoundError:
        raise PromptError(f"{path}: file not found") from None
    if key not in _cache:
        _cache[key] = load_grammar(path)
    return _cache[key]


def generate_prompts(count: int, seed: int, grammar: str | os.PathLike | None = None) -> list[str]:
    """``count`` distinct sentences from the grammar, the same ones for the same seed.

    Raises PromptError when the grammar cannot produce ``count`` distinct sentences.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    path = Path(grammar) if grammar is not None else grammar_path()
    gram = _cached_grammar(path)
    total = gram.size()
    if count > total:
        raise PromptError(f"{path}: the grammar makes at most {total} sentences, {count} asked")
    rng = random.Random(seed)
    if total <= _ENUMERATE_LIMIT and count * 4 > total:
        return _from_enumeration(gram, path, count, rng)
    seen: set[str] = set()
    prompts: list[str] = []
    # duplicates are rare when the grammar is much larger than count; the cap only stops a
    # grammar whose distinct sentences are far fewer than its derivations
    for _ in range(20 * count + 1000):
        if len(prompts) == count:
            return prompts
        sentence = gram.sample(rng)
        if sentence not in seen:
            seen.add(sentence)
            prompts.append(sentence)
    if len(prompts) == count:
        return prompts
    if total <= _ENUMERATE_LIMIT:
        return _from_enumeration(gram, path, count, rng)
    raise PromptError(f"{path}: found only {len(prompts)} distinct sentences of the {count} asked")


def _from_enumeration(gram: Grammar, path: Path, count: int, rng: random.Random) -> list[str]:
    everything = sorted(gram.enumerate())
    if count > len(everything):
        raise PromptError(
            f"{path}: the grammar makes {len(everything)} distinct sentences, {count} asked"
        )
    return rng.sample(everything, count)
