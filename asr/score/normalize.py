"""Transcript normalisation for scoring: case, punctuation, GLM equivalences, fillers, phone maps.

A :class:`Normalizer` is applied identically to the reference and the hypothesis words before
they are aligned. Its steps run in this fixed order, each on the output of the one before:

1. **Case**: ``str.lower()``, as sclite ignores case unless run with ``-s`` (not
   ``casefold()``, which also rewrites ß as ss and so changes words, not just their case).
2. **Token clean-up**: punctuation, apostrophes, hyphens (see :meth:`Normalizer.clean_token`).
3. **GLM**: rewriting word sequences to a canonical form (:class:`Glm`).
4. **Fillers**: dropping hesitations and non-speech markers.
5. **Phone map**: relabelling phones (e.g. TIMIT 61 -> 39); a phone mapped to nothing goes.

Why this order: case and token clean-up come first so that every later table (GLM, fillers,
phone map) is matched against words in one normal form: ``Gonna,`` meets the GLM as ``gonna``
and ``Uh.`` meets the filler list as ``uh``. The GLM's own entries are passed through steps 1-2
too, so a rule written ``O.K. => OKAY`` still applies when case and punctuation are normalised.
The GLM runs before filler removal so that a GLM may map words onto a filler (NIST's GLMs map
``UH``, ``ER``... to ``%HESITATION``), which step 4 then removes. The phone map is last: it
changes the label set of what is left, and its table is written over phone symbols.

A token that becomes empty at any step disappears (``"--"`` with punctuation removal, a ``q``
under the TIMIT map). Non-speech markers (a token wrapped in ``[...]`` or ``<...>``, or one in
the filler list, such as ``%hesitation``) are left alone by step 2, so punctuation removal
does not turn ``[noise]`` into the word ``noise``.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asr import resources
from asr.errors import DataDirError
from asr.fileio import read_text_lines

# shipped in the package (asr/resources), so an installed wheel has them too
FILLERS_PATH = resources.path("score", "fillers.txt")
BUILTIN_PHONE_MAPS: dict[str, Path] = {
    "timit61-39": resources.path("phones", "timit_61_39.map"),
    "timit61-48": resources.path("phones", "timit_61_48.map"),
    "timit48-39": resources.path("phones", "timit_48_39.map"),
}

HYPHEN_MODES = ("keep", "split", "remove")
APOSTROPHE_MODES = ("keep", "remove")

# Apostrophe and hyphen look-alikes; with punctuation removal the kept ones are written in
# ASCII, so that "don’t" (U+2019) and "don't" score as the same word.
_APOSTROPHES = "'\u2019\u02bc"  # ' ’ ʼ
_HYPHENS = "-\u2010\u2011"  # - ‐ ‑
_APOSTROPHE_TO_ASCII = str.maketrans({c: "'" for c in _APOSTROPHES})
_HYPHEN_TO_ASCII = str.maketrans({c: "-" for c in _HYPHENS})
_NO_APOSTROPHES = str.maketrans({c: None for c in _APOSTROPHES})
# A run of hyphens with a character other than a hyphen on both sides joins a compound
# ("twenty-one"); one at either end of a token marks a word fragment ("th-", Switchboard and
# NIST style), which sclite's csrfilt -dh keeps too.
_INTERNAL_HYPHENS = re.compile(f"(?<=[^{_HYPHENS}])[{_HYPHENS}]+(?=[^{_HYPHENS}])")
# "." and "," between digits belong to a number (3.5, 1,000), not to the sentence.
_NUMBER_PUNCTUATION = ".,"


def _comment_free(line: str) -> str:
    """``line`` without a ``#`` comment: one at the start or after whitespace (``h#`` stays)."""
    return re.sub(r"(?:^|\s)#.*", "", line)


# ---------------------------------------------------------------------------------------------
# Fillers


def read_fillers(path: str | os.PathLike) -> frozenset[str]:
    """Filler tokens from a file: one token per line, ``#`` comments, blank lines ignored."""
    tokens: list[str] = []
    for number, line in enumerate(read_text_lines(path), 1):
        fields = _comment_free(line).split()
        if len(fields) > 1:
            raise DataDirError(f"{path}:{number}: expected one token per line, got {line!r}")
        tokens.extend(fields)
    return frozenset(tokens)


def _load_default_fillers() -> frozenset[str]:
    try:
        return read_fillers(FILLERS_PATH)
    except DataDirError as exc:
        raise DataDirError(f"default filler list unavailable: {exc}") from None


DEFAULT_FILLERS: frozenset[str] = _load_default_fillers()


def is_marker(token: str) -> bool:
    """Whether ``token`` is wrapped in ``[...]`` or ``<...>``: non-speech by convention."""
    return len(token) >= 2 and (
        (token[0] == "[" and token[-1] == "]") or (token[0] == "<" and token[-1] == ">")
    )


# ---------------------------------------------------------------------------------------------
# GLM: word-sequence equivalences


Words = tuple[str, ...]


@dataclass(frozen=True)
class GlmRule:
    """One GLM line: ``variants`` (its left side and further alternatives) equal ``canonical``.

    An empty ``canonical`` deletes the variants.
    """

    canonical: Words
    variants: tuple[Words, ...]
    line: int = 0


@dataclass(frozen=True)
class Glm:
    """Equivalences between word sequences, each rewritten to one canonical form.

    Semantics: the rules define equivalence classes. A rule puts its left side and all its
    right-side alternatives in one class; rules that share a word sequence merge their classes
    (so ``a => b`` and ``b => c`` make ``a``, ``b`` and ``c`` one class); the class's
    canonical form is the first alternative of its earliest rule. :meth:`apply` scans the
    words left to right and, at each position, rewrites the LONGEST member of any class that
    starts there to its canonical form, then continues after it: the output of a rewrite is
    never rewritten again. Canonical forms are members too, so ``going to be`` is segmented
    the same way whether it was written so or came from ``gonna be``.

    Matching is exact unless ``case_sensitive`` is false; then it ignores case, and a
    rewritten sequence takes the case of what it replaced when that was all lower or all
    upper case (``gonna`` -> ``going to``, ``GONNA`` -> ``GOING TO``), else the rule's.
    """

    rules: tuple[GlmRule, ...]
    case_sensitive: bool = True
    name: str = ""
    _table: dict[Words, Words] = field(init=False, repr=False, compare=False)
    _lengths: dict[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        table = self._build_table()
        lengths: dict[str, set[int]] = {}
        for words in table:
            lengths.setdefault(words[0], set()).add(len(words))
        object.__setattr__(self, "_table", table)
        object.__setattr__(
            self, "_lengths", {k: tuple(sorted(v, reverse=True)) for k, v in lengths.items()}
        )

    def _key(self, words: Words) -> Words:
        return words if self.case_sensitive else tuple(w.lower() for w in words)

    def _build_table(self) -> dict[Words, Words]:
        # Union-find over word sequences; a class's root remembers the earliest rule in it.
        parent: dict[Words, Words] = {}
        first_rule: dict[Words, int] = {}

        def find(key: Words) -> Words:
            while parent[key] != key:
                parent[key] = parent[parent[key]]
                key = parent[key]
            return key

        for index, rule in enumerate(self.rules):
            members = [self._key(m) for m in (rule.canonical, *rule.variants) if m]
            if not members:
                continue
            roots = {find(m) for m in members if m in parent}
            root = min(roots, key=first_rule.__getitem__) if roots else None
            if root is None:
                # A deletion rule's class is keyed by its first variant.
                root = members[0]
                parent[root] = root
                first_rule[root] = index
            for other in roots - {root}:
                parent[other] = root
            for member in members:
                if member not in parent:
                    parent[member] = root
        return {member: self.rules[first_rule[find(member)]].canonical for member in parent}

    def __len__(self) -> int:
        return len(self.rules)

    def apply(self, words: Sequence[str]) -> list[str]:
        """``words`` with every GLM match rewritten (longest first, left to right, once)."""
        keys = words if self.case_sensitive else [w.lower() for w in words]
        table, lengths = self._table, self._lengths
        if lengths.keys().isdisjoint(keys):  # the usual case, at C speed
            return list(words)
        out: list[str] = []
        i, n = 0, len(words)
        while i < n:
            for length in lengths.get(keys[i], ()):
                if i + length <= n:
                    canonical = table.get(tuple(keys[i : i + length]))
                    if canonical is not None:
                        out.extend(self._cased(canonical, words[i : i + length]))
                        i += length
                        break
            else:
                out.append(words[i])
                i += 1
        return out

    def _cased(self, canonical: Words, matched: Sequence[str]) -> Words:
        if self.case_sensitive:
            return canonical
        text = " ".join(matched)
        if text == text.lower():
            return tuple(w.lower() for w in canonical)
        if text == text.upper():
            return tuple(w.upper() for w in canonical)
        return canonical

    def transformed(
        self, clean: Callable[[Sequence[str]], list[str]], lowered: bool = False
    ) -> Glm:
        """This GLM with every side passed through ``clean`` (the normalizer's token steps).

        ``lowered``: ``clean`` folds case, so the result is matched exactly. A rule whose
        left side and alternatives all clean to nothing is dropped.
        """
        rules = []
        for rule in self.rules:
            variants = tuple(v for v in (tuple(clean(v)) for v in rule.variants) if v)
            if variants:
                rules.append(GlmRule(tuple(clean(rule.canonical)), variants, rule.line))
        return Glm(tuple(rules), self.case_sensitive or lowered, self.name)


# GLM file syntax -----------------------------------------------------------------------------

# A '/' separates alternatives (or introduces sclite's context) when it stands alone: after
# whitespace, a bracket or the start, and before whitespace, a bracket or the end. So a word
# such as "and/or" is not split.
_SEPARATOR_BEFORE = " \t])}"
_SEPARATOR_AFTER = " \t[({"
_TRUE = {"T", "TRUE", "YES", "Y"}
_FALSE = {"F", "FALSE", "NO", "N"}
_HEADER = re.compile(r"^\*\s*([A-Za-z_]+)\s*[=:]?\s*([\"'])(.*)\2\s*$")


def _split_top_level(text: str, where: str) -> list[str]:
    """``text`` split at standalone '/' outside [] and {}; raises on unbalanced brackets."""
    parts: list[str] = []
    depth = {"[": 0, "{": 0}
    closing = {"]": "[", "}": "{"}
    start = 0
    for i, char in enumerate(text):
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                raise DataDirError(f"{where}: unbalanced '{char}'")
        elif char == "/" and not any(depth.values()):
            before = text[i - 1] if i else " "
            after = text[i + 1] if i + 1 < len(text) else " "
            if before in _SEPARATOR_BEFORE and after in _SEPARATOR_AFTER:
                parts.append(text[start:i])
                start = i + 1
    if any(depth.values()):
        open_bracket = next(b for b, d in depth.items() if d)
        raise DataDirError(f"{where}: unbalanced '{open_bracket}'")
    parts.append(text[start:])
    return parts


def _unwrap(text: str) -> str:
    """``text`` stripped, without one pair of enclosing [] or "" (sclite's string quoting)."""
    text = text.strip()
    if len(text) >= 2 and (text[0], text[-1]) in (("[", "]"), ('"', '"')):
        text = text[1:-1].strip()
    return text


def _words(text: str, where: str, side: str) -> Words:
    words = tuple(text.split())
    for bad in ("[", "]", "{", "}", "=>"):
        if any(bad in w for w in words):
            raise DataDirError(f"{where}: unexpected '{bad}' in {side} {text.strip()!r}")
    if "/" in words:
        raise DataDirError(f"{where}: alternatives ('/') are only allowed on the right side")
    # sclite writes an empty alternative as '@'
    return () if words == ("@",) else words


def _check_context(text: str, where: str) -> None:
    """Accept sclite's ``C __ D`` context only where C and D just ask for word boundaries."""
    left, _, right = text.partition("__")
    for side in (left, right):
        if "__" in side or _unwrap(side).strip("_ \t"):
            raise DataDirError(
                f"{where}: context '/ {text.strip()}' is not supported: rules always match "
                "whole words, and only a word-boundary context such as '/ [ ] __ [ ]' is allowed"
            )


def _parse_rule(text: str, where: str, number: int) -> GlmRule:
    if text.count("=>") != 1:
        raise DataDirError(f"{where}: expected one '=>' in a rule, got {text.strip()!r}")
    left, right = text.split("=>")
    lhs = _words(_unwrap(left), where, "left side")
    if not lhs:
        raise DataDirError(f"{where}: empty left side")
    parts = _split_top_level(right, where)
    if len(parts) > 1 and "__" in parts[-1]:
        _check_context(parts.pop(), where)
    alternatives: list[Words] = []
    for part in parts:
        part = _unwrap(part)
        if part.startswith("{") and part.endswith("}"):
            pieces = _split_top_level(part[1:-1], where)
        else:
            pieces = [part]
        alternatives.extend(_words(p, where, "right side") for p in pieces)
    if len(alternatives) > 1 and not all(alternatives[1:]):
        raise DataDirError(f"{where}: only the first (canonical) alternative may be empty")
    return GlmRule(alternatives[0], (lhs, *alternatives[1:]), number)


def parse_glm(lines: Iterable[str], name: str = "<glm>") -> Glm:
    """A :class:`Glm` from the lines of a GLM file (see :func:`read_glm` for the syntax)."""
    rules: list[GlmRule] = []
    case_sensitive = True
    for number, raw in enumerate(lines, 1):
        where = f"{name}:{number}"
        line = raw.split(";;", 1)[0]
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.startswith("*"):
            match = _HEADER.match(line.strip())
            if match is None:
                raise DataDirError(f'{where}: expected a header line like * name = "value"')
            key, value = match.group(1).lower(), match.group(3).strip().upper()
            if key == "case_sensitive":
                if value not in _TRUE | _FALSE:
                    raise DataDirError(f"{where}: case_sensitive must be T or F, not {value!r}")
                case_sensitive = value in _TRUE
            elif key == "format" and value != "NIST1":
                raise DataDirError(f"{where}: only format 'NIST1' is supported, not {value!r}")
            elif key == "copy_no_hit" and value in _FALSE:
                raise DataDirError(f"{where}: copy_no_hit = 'F' (dropping words) is not supported")
            continue  # name, desc, max_nrules: documentation only
        rules.append(_parse_rule(line, where, number))
    return Glm(tuple(rules), case_sensitive, name)


def read_glm(path: str | os.PathLike) -> Glm:
    """Read a GLM file: word-sequence equivalences in the spirit of NIST sclite's GLMs.

    One rule per line, ``LEFT => RIGHT``: ``gonna => going to``. The right side may list
    alternatives, each equal to the left side, the first being the canonical form that all of
    them are rewritten to: ``okay => ok / o.k.``, or in sclite's braces ``i'd => {i had / i
    would}``. sclite's syntax is accepted: sides in ``[...]`` or ``"..."`` (``[gonna] =>
    [going to]``), an empty alternative written ``@``, a header of ``* key = "value"`` lines
    (``case_sensitive`` is honoured, ``name``/``desc``/``max_nrules`` are ignored), and a
    trailing context ``/ [ ] __ [ ]`` as long as it only asks for word boundaries (every rule
    here matches whole words); a context naming words is an error. ``;;`` starts a comment
    anywhere, ``#`` at the start of a line. An empty right side deletes the left side.
    Errors are one line, ``PATH:LINE: problem``. See :class:`Glm` for how rules apply.
    """
    return parse_glm(read_text_lines(path), str(path))


# ---------------------------------------------------------------------------------------------
# Phone maps


class PhoneMap(dict):
    """``{phone: target}``; a target of ``""`` deletes the phone. ``name`` says where it is from."""

    def __init__(self, mapping: Mapping[str, str] | None = None, name: str = "") -> None:
        super().__init__(mapping or {})
        self.name = name


def read_phone_map(path: str | os.PathLike) -> PhoneMap:
    """A phone map file: ``PHONE TARGET`` per line, or ``PHONE`` alone to delete the phone.

    ``#`` starts a comment at the start of a line or after whitespace (``h#`` is a phone).
    """
    mapping = PhoneMap(name=str(path))
    for number, line in enumerate(read_text_lines(path), 1):
        fields = _comment_free(line).split()
        if not fields:
            continue
        if len(fields) > 2:
            raise DataDirError(f"{path}:{number}: expected 'PHONE [TARGET]', got {line.strip()!r}")
        if fields[0] in mapping:
            raise DataDirError(f"{path}:{number}: phone {fields[0]!r} mapped twice")
        mapping[fields[0]] = fields[1] if len(fields) == 2 else ""
    if not mapping:
        raise DataDirError(f"{path}: no phones in the map")
    return mapping


def load_phone_map(name_or_path: str | os.PathLike) -> PhoneMap:
    """A built-in phone map by name (:data:`BUILTIN_PHONE_MAPS`) or a map file by path."""
    builtin = BUILTIN_PHONE_MAPS.get(str(name_or_path))
    if builtin is not None:
        mapping = read_phone_map(builtin)
        mapping.name = str(name_or_path)
        return mapping
    if not Path(name_or_path).is_file():
        known = ", ".join(sorted(BUILTIN_PHONE_MAPS))
        raise DataDirError(f"{name_or_path}: not a phone map file nor a built-in map ({known})")
    return read_phone_map(name_or_path)


# ---------------------------------------------------------------------------------------------
# The normalizer


@dataclass(frozen=True)
class Normalizer:
    """Word-list normalisation applied identically to references and hypotheses.

    ``lowercase``: fold case with ``str.lower()``. ``remove_punctuation``: delete every Unicode
    punctuation character (categories P*) from inside tokens, except apostrophes and the
    hyphens inside a compound, which ``apostrophes`` and ``hyphens`` govern (kept ones are
    written as ASCII ``'`` and ``-``), and ``.`` or ``,`` between digits (3.5); a hyphen at
    a token's edge (fragment ``th-``) is punctuation. ``hyphens``: ``"split"`` makes
    ``twenty-one`` two words (as sclite's ``csrfilt.sh -dh``), ``"remove"`` joins them into
    ``twentyone``. ``apostrophes="remove"``: ``don't`` -> ``dont``. ``remove_fillers``: drop
    tokens in ``fillers`` (ignoring case) and any token wrapped in ``[...]`` or ``<...>``.
    ``glm``: rewrite with a :class:`Glm`. ``phone_map``: relabel tokens found in it (others
    pass through); a ``""`` target deletes. The order of the steps is in the module docstring.
    """

    lowercase: bool = False
    remove_punctuation: bool = False
    hyphens: str = "keep"
    apostrophes: str = "keep"
    remove_fillers: bool = False
    fillers: frozenset[str] = frozenset(DEFAULT_FILLERS)
    glm: Glm | None = None
    phone_map: Mapping[str, str] | None = field(default=None, hash=False)
    _folded_fillers: frozenset[str] = field(init=False, repr=False, compare=False)
    _glm: Glm | None = field(init=False, repr=False, compare=False)
    # Per-word results of steps 1-2 and of the filler test: a corpus has far fewer distinct
    # words than words.
    _cache: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _filler_cache: dict[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.hyphens not in HYPHEN_MODES:
            raise ValueError(f"hyphens must be one of {HYPHEN_MODES}, not {self.hyphens!r}")
        if self.apostrophes not in APOSTROPHE_MODES:
            raise ValueError(
                f"apostrophes must be one of {APOSTROPHE_MODES}, not {self.apostrophes!r}"
            )
        object.__setattr__(self, "fillers", frozenset(self.fillers))
        object.__setattr__(self, "_folded_fillers", frozenset(f.lower() for f in self.fillers))
        object.__setattr__(self, "_cache", {})
        object.__setattr__(self, "_filler_cache", {})
        glm = self.glm
        if glm is not None and self._cleans_tokens:
            glm = glm.transformed(self.clean_words, lowered=self.lowercase)
        object.__setattr__(self, "_glm", glm)

    @property
    def _cleans_tokens(self) -> bool:
        return (
            self.lowercase
            or self.remove_punctuation
            or self.hyphens != "keep"
            or self.apostrophes != "keep"
        )

    def __call__(self, words: Sequence[str]) -> list[str]:
        out = self.clean_words(words) if self._cleans_tokens else list(words)
        if self._glm is not None:
            out = self._glm.apply(out)
        if self.remove_fillers:
            verdicts = self._filler_cache
            kept = []
            for word in out:
                filler = verdicts.get(word)
                if filler is None:
                    filler = verdicts[word] = self.is_filler(word)
                if not filler:
                    kept.append(word)
            out = kept
        if self.phone_map is not None:
            mapping = self.phone_map
            out = [m for m in (mapping.get(w, w) for w in out) if m]
        return out

    def is_filler(self, word: str) -> bool:
        """Whether step 4 drops ``word``: listed (ignoring case) or wrapped in [] or <>."""
        return word.lower() in self._folded_fillers or is_marker(word)

    def clean_words(self, words: Sequence[str]) -> list[str]:
        """Steps 1-2 (case, punctuation, apostrophes, hyphens) over a word list."""
        cache = self._cache
        out: list[str] = []
        for word in words:
            cleaned = cache.get(word)
            if cleaned is None:
                cleaned = cache[word] = tuple(self.clean_token(word))
            out.extend(cleaned)
        return out

    def clean_token(self, token: str) -> list[str]:
        """One token after case folding and punctuation/apostrophe/hyphen handling.

        Gives 0 tokens (all punctuation), 1, or several (split hyphens). Non-speech markers
        (``[noise]``, ``<unk>``, a listed filler such as ``%hesitation``) are only case-folded.
        """
        if self.lowercase:
            token = token.lower()
        if is_marker(token) or token.lower() in self._folded_fillers:
            return [token] if token else []
        if self.apostrophes == "remove":
            token = token.translate(_NO_APOSTROPHES)
        if self.remove_punctuation:
            token = _strip_punctuation(token)
        if self.hyphens != "keep":
            joiner = " " if self.hyphens == "split" else ""
            token = _INTERNAL_HYPHENS.sub(joiner, token)
        return token.split()

    def settings(self) -> list[tuple[str, str]]:
        """What is switched on, as ``(name, value)`` pairs in the order the steps run."""
        out: list[tuple[str, str]] = []
        if self.lowercase:
            out.append(("case", "folded to lower case"))
        if self.remove_punctuation:
            out.append(("punctuation", "removed"))
        if self.hyphens == "split":
            out.append(("hyphens", "split into words"))
        elif self.hyphens == "remove":
            out.append(("hyphens", "removed (parts joined)"))
        if self.apostrophes == "remove":
            out.append(("apostrophes", "removed"))
        if self.glm is not None:
            name = self.glm.name or "<glm>"
            out.append(("glm", f"{name} ({len(self.glm)} rules)"))
        if self.remove_fillers:
            which = "default list" if self.fillers == DEFAULT_FILLERS else "custom list"
            count = len(self._folded_fillers)
            out.append(
                ("fillers", f"removed ({count} words, {which}, and any [...] or <...> token)")
            )
        if self.phone_map is not None:
            name = getattr(self.phone_map, "name", "") or "<phone map>"
            deleted = sum(1 for target in self.phone_map.values() if not target)
            out.append(("phone map", f"{name} ({len(self.phone_map)} phones, {deleted} deleted)"))
        return out


def _strip_punctuation(token: str) -> str:
    """``token`` without punctuation, keeping apostrophes, inner hyphens and 3.5-style points.

    Apostrophes and hyphens that stay are written in ASCII; a token left with nothing but
    apostrophes and hyphens is all punctuation and becomes empty.
    """
    if len(token) >= 2 and token[0] == "\u2018" and token[-1] == "\u2019":
        token = token[1:-1]  # 'quoted' in typographic quotes: the closing one is no apostrophe
    token = token.translate(_APOSTROPHE_TO_ASCII).translate(_HYPHEN_TO_ASCII)
    chars = []
    last = len(token) - 1
    for i, char in enumerate(token):
        if char in "'-" or not unicodedata.category(char).startswith("P"):
            chars.append(char)
        elif (
            char in _NUMBER_PUNCTUATION
            and 0 < i < last
            and token[i - 1].isdigit()
            and token[i + 1].isdigit()
        ):
            chars.append(char)
    token = "".join(chars).strip("-")
    return token if token.strip("'-") else ""
