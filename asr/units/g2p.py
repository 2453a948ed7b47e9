"""Offline letter-to-sound rules: flite's ``t2p``, batched, with a plain-text cache.

``t2p "some words"`` prints flite's phones for a whole utterance, ``pau`` at the phrase breaks
and stress digits on the vowels. One process per word costs ~3 ms, so words go in batches of a
few hundred joined by commas: each comma is a phrase break, so the output splits back into one
phone run per word at the ``pau`` marks (~0.3 ms a word). A batch whose runs do not line up
with its words (a word that made no phones, or a pause of its own) is redone a word at a time.
Only words of letters and apostrophes go in batches; anything else (digits, dots, hyphens) is
done alone, since flite's text normalisation may turn it into several phrases.

The phones come back as CMUdict's ARPAbet: lowercase, no stress, flite's reduced vowels and
syllabic consonants spelled as CMUdict spells them (``ax`` -> ``ah``, ``el`` -> ``ah l``).

The cache, ``CACHE_DIR/g2p_cache.txt``, holds ``word p1 p2 ...`` lines (a word alone: t2p gave
it nothing); it is rewritten atomically after every batch, and words found there never reach
t2p again, so a rerun over the same vocabulary needs no flite at all.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from asr.errors import AsrError
from asr.fileio import atomic_write, read_text_lines

CACHE_NAME = "g2p_cache.txt"

# flite's "radio" phone set -> CMUdict's (the rest are shared, stress digits aside)
_FLITE_TO_CMU: dict[str, tuple[str, ...]] = {
    "ax": ("ah",),
    "axr": ("er",),
    "ix": ("ih",),
    "ux": ("uw",),
    "el": ("ah", "l"),
    "em": ("ah", "m"),
    "en": ("ah", "n"),
    "nx": ("n",),
    "hv": ("hh",),
    "dx": ("t",),
}
CMU_PHONES = frozenset(
    "aa ae ah ao aw ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh t th uh uw "
    "v w y z zh".split()
)
_PAUSE = "pau"
_BATCHABLE = re.compile(r"[a-z][a-z']*")
# words t2p may try: some letter or digit, and only characters that text can hold in a word
_SPEAKABLE = re.compile(r"(?=.*[a-z0-9])[a-z0-9'.\-]+")


class G2pError(AsrError):
    """Letter-to-sound cannot run (no t2p) or its cache file is malformed."""


def flite_to_cmu(phones: Iterable[str]) -> tuple[str, ...]:
    """flite phones (stress digits, ``pau`` allowed) -> CMUdict phones; ValueError if unknown."""
    out: list[str] = []
    for phone in phones:
        symbol = phone.lower().rstrip("012")
        if symbol == _PAUSE:
            continue
        if symbol in _FLITE_TO_CMU:
            out.extend(_FLITE_TO_CMU[symbol])
        elif symbol in CMU_PHONES:
            out.append(symbol)
        else:
            raise ValueError(f"unknown flite phone '{phone}'")
    return tuple(out)


class FliteG2P:
    """Pronunciations from flite's letter-to-sound rules, cached in ``cache_dir`` if given.

    ``pronounce(words)`` returns CMUdict-style phones for each word it can do; a word missing
    from the answer has no pronunciation (t2p gave nothing, or it holds no letters at all).
    Words are looked up lowercased. ``t2p_calls`` counts the t2p processes run.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = 400,
        t2p: str | None = None,
    ) -> None:
        self.cache_path = Path(cache_dir) / CACHE_NAME if cache_dir is not None else None
        self.batch_size = max(1, batch_size)
        self._t2p = t2p
        self.t2p_calls = 0
        self._cache: dict[str, tuple[str, ...]] = {}
        if self.cache_path is not None and self.cache_path.exists():
            self._cache = _read_cache(self.cache_path)

    def _binary(self) -> str:
        if self._t2p is None:
            found = shutil.which("t2p")
            if found is None:
                raise G2pError(
                    "letter-to-sound needs flite's t2p, not found on PATH "
                    "(install the Debian package flite: apt-get install flite)"
                )
            self._t2p = found
        return self._t2p

    def _run(self, text: str) -> list[str]:
        self.t2p_calls += 1
        try:
            result = subprocess.run(
                [self._binary(), text], capture_output=True, text=True, check=False
            )
        except OSError as exc:
            raise G2pError(f"{self._t2p}: cannot run ({exc.strerror})") from None
        if result.returncode != 0:
            error = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise G2pError(f"{self._t2p} failed on '{text[:60]}': {error}")
        return result.stdout.split()

    def _one(self, word: str) -> tuple[str, ...]:
        return flite_to_cmu(self._run(word))

    def _batch(self, words: list[str]) -> list[tuple[str, ...]]:
        if len(words) == 1:
            return [self._one(words[0])]
        runs: list[list[str]] = [[]]
        for phone in self._run(", ".join(words)):
            if phone == _PAUSE:
                runs.append([])
            else:
                runs[-1].append(phone)
        runs = [r for r in runs if r]
        if len(runs) != len(words):
            # a word without phones or with a pause inside: the runs cannot be matched up
            return [self._one(w) for w in words]
        return [flite_to_cmu(r) for r in runs]

    def pronounce(self, words: Iterable[str]) -> dict[str, tuple[str, ...]]:
        asked = list(dict.fromkeys(words))
        keys = list(dict.fromkeys(w.lower() for w in asked))
        todo = [k for k in keys if k not in self._cache and _SPEAKABLE.fullmatch(k)]
        batchable = [k for k in todo if _BATCHABLE.fullmatch(k)]
        alone = [k for k in todo if not _BATCHABLE.fullmatch(k)]
        batches = [
            batchable[i : i + self.batch_size] for i in range(0, len(batchable), self.batch_size)
        ]
        batches.extend([k] for k in alone)
        for batch in batches:
            for key, phones in zip(batch, self._batch(batch), strict=True):
                self._cache[key] = phones
            self._save()
        out: dict[str, tuple[str, ...]] = {}
        for word in asked:
            phones = self._cache.get(word.lower(), ())
            if phones:
                out[word] = phones
        return out

    def _save(self) -> None:
        if self.cache_path is None:
            return
        with atomic_write(self.cache_path) as handle:
            for word, phones in self._cache.items():
                handle.write(" ".join((word, *phones)) + "\n")


def _read_cache(path: Path) -> dict[str, tuple[str, ...]]:
    cache: dict[str, tuple[str, ...]] = {}
    for lineno, line in enumerate(read_text_lines(path), 1):
        fields = line.split()
        if not fields:
            continue
        bad = [p for p in fields[1:] if p not in CMU_PHONES]
        if bad:
            raise G2pError(f"{path}:{lineno}: '{bad[0]}' is not a CMUdict phone")
        cache[fields[0]] = tuple(fields[1:])
    return cache
