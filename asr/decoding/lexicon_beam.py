"""CTC beam search with a lexicon and an n-gram language model (flashlight-text + KenLM).

Two searches, both flashlight-text's C++ decoders over a model's per-frame log posteriors:

* **lexicon** (:class:`flashlight.lib.text.decoder.LexiconDecoder`): hypotheses are word
  sequences; every word is spelled in the model's tokens by a lexicon (char: its letters; bpe:
  its sentencepiece pieces; phone: its pronunciation), the spellings form a prefix tree, and a
  word n-gram LM (KenLM, ARPA or binary) scores each word as it is completed. The tree carries
  each word's unigram LM score smeared to its prefixes (look-ahead), which only guides pruning:
  the look-ahead terms cancel when the word ends, so a finished hypothesis scores exactly
  ``am + lm_weight * lm + word_score * words``.
* **lexicon-free** (:class:`~flashlight.lib.text.decoder.LexiconFreeDecoder`): hypotheses are
  token sequences and the LM is over the model's tokens (a char LM trained on space-separated
  characters with ``<space>`` for the word gap, or a BPE LM on pieces).

Scores are natural logs throughout. KenLM (and flashlight's wrapper of it) gives log10
probabilities; we multiply the LM weight by ln 10 before handing it to flashlight, so that
``lm_weight`` weighs natural-log LM probabilities against the natural-log acoustic scores (as
Kaldi's LM weight and pyctcdecode's ``alpha`` do), and report ``lm_score`` in natural log.

Word ends and flashlight's lexicon search: the search emits a word on the frame where its last
tree token starts and goes back to the tree root, where only blank or the silence token can be
held, so the last token of a word cannot last more than one frame. Our BiLSTM-CTC models often
hold a token over two or more frames, and the search then reads a held last token as a new
word (lexicon-only decoding of the synth test set gave 570 insertions, 64% WER against 55%
greedy). We avoid this exactly: each word's tree spelling ends with a separator token, so the
word ends on the separator and its last real token is an inner tree node that can be held. The
separator is a char model's ``<space>`` (its own word gap, also the silence token, held at the
root as silence) and otherwise the blank (held at the root as blank; the cost: two words need a
blank frame between them, which CTC models nearly always put there). One extra frame where the
separator has probability 1 ends the last word (it adds 0 to the score). The brute-force test in
tests/test_lexicon_decoder.py scores alignments under exactly this topology.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import torch

from asr.errors import AsrError, ConfigError
from asr.lm.arpa import arpa_unigrams, check_arpa
from asr.lm.kenlm import is_binary_lm
from asr.units.tokens import SPACE, TokenList

log = logging.getLogger(__name__)

# KenLM's probabilities are log10; flashlight adds lm_weight * log10 p. This converts a weight
# on natural-log probabilities to the one flashlight needs.
LN10 = math.log(10.0)
UNK_WORD = "<unk>"
# Silence tokens of phone models, tried in this order.
PHONE_SILENCES = ("sil", "SIL", "<sil>", "sp")

Lexicon = Mapping[str, Sequence[Sequence[str]]]


class LanguageModelError(AsrError):
    """A language model file cannot be used (missing, malformed, or KenLM refused it)."""


@dataclass
class DecoderOptions:
    """Search settings (flashlight's names).

    ``beam_size``: hypotheses kept per frame. ``beam_size_token``: tokens tried per frame (None:
    all). ``beam_threshold``: hypotheses scoring more than this below the frame's best are
    dropped. ``lm_weight``: weight of the natural-log LM probability. ``word_score``: added per
    word (lexicon search; a word insertion bonus, negative = penalty). ``unk_score``: score of a
    token sequence that spells no lexicon word (-inf: never). ``sil_score``: added per frame of
    the silence token. ``log_add``: merge hypotheses that reach the same state by log-sum-exp
    instead of max. ``nbest``: hypotheses returned.
    """

    beam_size: int = 50
    beam_size_token: int | None = None
    beam_threshold: float = 25.0
    lm_weight: float = 1.0
    word_score: float = 0.0
    unk_score: float = -math.inf
    sil_score: float = 0.0
    log_add: bool = False
    nbest: int = 1

    def check(self) -> None:
        if self.beam_size < 1:
            raise ConfigError(f"beam size {self.beam_size}: must be at least 1")
        if self.beam_size_token is not None and self.beam_size_token < 1:
            raise ConfigError(f"token beam size {self.beam_size_token}: must be at least 1")
        if not self.beam_threshold > 0:
            raise ConfigError(f"beam threshold {self.beam_threshold}: must be positive")
        if self.nbest < 1:
            raise ConfigError(f"nbest {self.nbest}: must be at least 1")
        for name in ("lm_weight", "word_score", "sil_score"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} {getattr(self, name)}: must be a finite number")


@dataclass
class Hypothesis:
    """One decoding result. ``score`` is the search's total (natural log): ``am_score`` +
    ``lm_weight * lm_score`` + word scores (+ silence scores). ``tokens`` are the CTC-collapsed
    token ids without blanks (with the silence token where the search put one).
    ``frame_tokens``: the path, one token id per frame of the input; ``word_frames``: for a
    lexicon search, the frame on which each of ``words`` was completed (its separator's first
    frame: the word's own tokens lie before it); empty for lexicon-free search."""

    words: list[str]
    tokens: list[int]
    score: float
    am_score: float
    lm_score: float
    frame_tokens: list[int] = field(default_factory=list)
    word_frames: list[int] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass
class LexiconReport:
    """What building the decoder left out or mapped, for one log line each."""

    words: int = 0
    entries_skipped: int = 0
    words_skipped: list[str] = field(default_factory=list)
    bad_units: list[str] = field(default_factory=list)
    words_not_in_lm: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _stderr_captured() -> Iterator[IO[bytes]]:
    """Send the C++ code's stderr (KenLM's loading progress bar) to a file for the duration."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield sink
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def load_kenlm(path: str | os.PathLike, symbols: Sequence[str]):
    """Load a KenLM model (ARPA, checked first, or binary) for a dictionary of ``symbols``.

    Symbols the LM does not know are mapped by KenLM to its ``<unk>``.
    """
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    path = Path(path)
    if not path.is_file():
        raise LanguageModelError(f"{path}: language model file not found")
    if not is_binary_lm(path):
        check_arpa(path)  # KenLM's own errors do not name the line
    with _stderr_captured() as captured:
        try:
            return KenLM(str(path), Dictionary(list(symbols)))
        except Exception as exc:  # KenLM throws its own exception types through pybind
            detail = str(exc).strip().splitlines()
            captured.seek(0)
            text = captured.read().decode(errors="replace").strip().splitlines()
            reason = (detail or text or ["unknown error"])[-1]
            raise LanguageModelError(f"{path}: KenLM cannot load it ({reason})") from None


def _silence_token(tokens: TokenList) -> int:
    """The token the search may put between words: <space> for char models, a phone model's
    silence phone; models without one (bpe, word) get the blank, which CTC already allows."""
    if SPACE in tokens:
        return tokens.symbols.index(SPACE)
    for name in PHONE_SILENCES:
        if name in tokens:
            return tokens.symbols.index(name)
    return 0


class LexiconDecoder:
    """Lexicon + word LM CTC beam search, or lexicon-free search with a token LM.

    ``lexicon``: word -> pronunciations (each a sequence of the model's token symbols; a Kaldi
    ``lexicon.txt`` read by :func:`asr.units.lexicon.read_lexicon`). For char models a plain
    spelling lexicon works: the word separator ``<space>`` is not part of an entry; the search
    uses it as the optional silence between words. ``lm``: an ARPA or KenLM binary file, over
    words with a lexicon and over the model's token symbols without one. With a lexicon and no
    LM the search is constrained to lexicon words with no LM score.
    """

    def __init__(
        self,
        tokens: TokenList,
        lexicon: Lexicon | None = None,
        lm: str | os.PathLike | None = None,
        options: DecoderOptions | None = None,
        unk_word: str = UNK_WORD,
        _shared: LexiconDecoder | None = None,
    ) -> None:
        import flashlight.lib.text.decoder as fl

        self.tokens = tokens
        self.options = options or DecoderOptions()
        self.options.check()
        self.unk_word = unk_word
        self.lm_path = Path(lm) if lm is not None else None
        self.blank = 0
        self.silence = _silence_token(tokens)
        # Every word in the tree ends with this token (see the module docstring).
        self.separator = tokens.symbols.index(SPACE) if SPACE in tokens else self.blank
        self.report = LexiconReport()
        if lexicon is None and lm is None:
            raise ConfigError("lexicon decoding needs a lexicon, a language model, or both")
        self.lexicon_free = lexicon is None
        if _shared is not None:  # same lexicon and LM, other options: reuse the loaded parts
            self.words, self.report = _shared.words, _shared.report
            self._lm, self._trie = _shared._lm, _shared._trie
        elif self.lexicon_free:
            self.words = []
            self._lm = load_kenlm(self.lm_path, tokens.symbols)
            self._trie = None
        else:
            self.words, spellings = self._spellings(lexicon)
            if self.lm_path is not None:
                self._lm = load_kenlm(self.lm_path, self.words)
                self._report_lm_vocabulary()
            else:
                self._lm = fl.ZeroLM()
            self._trie = self._build_trie(spellings)
        self._decoder = self._make_decoder()

    def with_options(self, options: DecoderOptions) -> LexiconDecoder:
        """A decoder with the same lexicon and LM (not reloaded) and other search settings."""
        return LexiconDecoder(
            self.tokens,
            None if self.lexicon_free else {},
            self.lm_path,
            options,
            self.unk_word,
            _shared=self,
        )

    def _spellings(self, lexicon: Lexicon) -> tuple[list[str], list[tuple[int, list[int]]]]:
        """Word list (with the unk word last if the lexicon lacks it) and (word, token ids)
        pairs; entries with units the model does not have are counted and left out."""
        words: list[str] = []
        spellings: list[tuple[int, list[int]]] = []
        index = {s: i for i, s in enumerate(self.tokens.symbols)}
        bad: dict[str, None] = {}
        for word, prons in lexicon.items():
            usable = []
            for pron in prons:
                ids = [index.get(u, -1) for u in pron]
                if ids and ids[-1] == self.separator != self.blank:
                    ids = ids[:-1]  # a spelling that already ends with <space>
                if not ids or any(i <= 0 for i in ids):
                    self.report.entries_skipped += 1
                    bad.update((u, None) for u in pron if index.get(u, 0) <= 0)
                    continue
                usable.append([*ids, self.separator])
            if not usable:
                self.report.words_skipped.append(word)
                continue
            word_id = len(words)
            words.append(word)
            spellings.extend((word_id, ids) for ids in usable)
        self.report.bad_units = list(bad)
        self.report.words = len(words)
        if self.report.entries_skipped:
            log.warning(
                "lexicon: %d pronunciations (%d words left without one) use units the model "
                "does not have (e.g. %s); left out",
                self.report.entries_skipped,
                len(self.report.words_skipped),
                ", ".join(repr(u) for u in self.report.bad_units[:5]),
            )
        if not spellings:
            raise ConfigError("lexicon: no entry can be spelled in the model's tokens")
        if self.unk_word not in words:
            words.append(self.unk_word)
        return words, spellings

    def _report_lm_vocabulary(self) -> None:
        if self.lm_path is None or is_binary_lm(self.lm_path):
            return  # a binary file's vocabulary is not readable without KenLM's own API
        vocabulary = arpa_unigrams(self.lm_path)
        missing = [w for w in self.words if w != self.unk_word and w not in vocabulary]
        self.report.words_not_in_lm = missing
        if missing:
            log.warning(
                "%d of %d lexicon words are not in %s (e.g. %s); they get its <unk> probability",
                len(missing),
                self.report.words,
                self.lm_path,
                ", ".join(missing[:5]),
            )

    def _build_trie(self, spellings: list[tuple[int, list[int]]]):
        import flashlight.lib.text.decoder as fl

        trie = fl.Trie(len(self.tokens), self.silence)
        start = self._lm.start(False)
        unigram: dict[int, float] = {}
        for word_id, ids in spellings:
            if word_id not in unigram:
                unigram[word_id] = self._lm.score(start, word_id)[1]
            trie.insert(ids, word_id, unigram[word_id])
        # Each prefix node gets the best score of the words below it: the LM look-ahead.
        trie.smear(fl.SmearingMode.MAX)
        return trie

    def _make_decoder(self):
        import flashlight.lib.text.decoder as fl

        opt = self.options
        token_beam = opt.beam_size_token or len(self.tokens)
        if self.lexicon_free:
            fl_options = fl.LexiconFreeDecoderOptions(
                beam_size=opt.beam_size,
                beam_size_token=token_beam,
                beam_threshold=opt.beam_threshold,
                lm_weight=opt.lm_weight * LN10,
                sil_score=opt.sil_score,
                log_add=opt.log_add,
                criterion_type=fl.CriterionType.CTC,
            )
            return fl.LexiconFreeDecoder(fl_options, self._lm, self.silence, self.blank, [])
        fl_options = fl.LexiconDecoderOptions(
            beam_size=opt.beam_size,
            beam_size_token=token_beam,
            beam_threshold=opt.beam_threshold,
            lm_weight=opt.lm_weight * LN10,
            word_score=opt.word_score,
            unk_score=opt.unk_score,
            sil_score=opt.sil_score,
            log_add=opt.log_add,
            criterion_type=fl.CriterionType.CTC,
        )
        unk = self.words.index(self.unk_word)
        return fl.LexiconDecoder(
            fl_options, self._trie, self._lm, self.silence, self.blank, unk, [], False
        )

    def decode(self, log_probs: torch.Tensor | np.ndarray) -> list[Hypothesis]:
        """Decode one utterance's (T, V) log posteriors: up to ``nbest`` distinct hypotheses
        (distinct word sequences; token sequences for lexicon-free search), best first."""
        emissions = np.ascontiguousarray(
            log_probs.detach().cpu().numpy() if isinstance(log_probs, torch.Tensor) else log_probs,
            dtype=np.float32,
        )
        if emissions.ndim != 2 or emissions.shape[1] != len(self.tokens):
            raise ConfigError(
                f"emissions of shape {tuple(emissions.shape)} do not match the "
                f"{len(self.tokens)} tokens of the model"
            )
        frames = emissions.shape[0]
        if frames == 0:
            return [Hypothesis([], [], 0.0, 0.0, 0.0)]
        if not self.lexicon_free:
            # one frame that can only be the separator, with log prob 0: ends the last word
            end = np.full((1, emissions.shape[1]), -1e30, dtype=np.float32)
            end[0, self.separator] = 0.0
            emissions = np.concatenate([emissions, end])
        results = self._decoder.decode(
            emissions.ctypes.data, emissions.shape[0], emissions.shape[1]
        )
        hypotheses: list[Hypothesis] = []
        seen: set[tuple] = set()
        for result in sorted(results, key=lambda r: -r.score):
            # result.tokens and result.words: one entry per frame, with a padding entry before
            # the first frame (so entry k + 1 is frame k; the end frame added above is frame T)
            path = list(result.tokens)[1 : frames + 1]
            tokens = _collapse(path)
            word_frames: list[int] = []
            if self.lexicon_free:
                words = self.tokens.decode(tokens).split()
            else:
                words = []
                for k, w in enumerate(list(result.words)[1:]):
                    if w >= 0:
                        words.append(self.words[w])
                        word_frames.append(k)
            key = tuple(words)
            if key in seen:
                continue
            seen.add(key)
            hypotheses.append(
                Hypothesis(
                    words,
                    tokens,
                    float(result.score),
                    float(result.emittingModelScore),
                    float(result.lmScore) * LN10,
                    path,
                    word_frames,
                )
            )
            if len(hypotheses) == self.options.nbest:
                break
        return hypotheses


def _collapse(frame_tokens: list[int]) -> list[int]:
    """Frame labels -> CTC output: merge repeats, drop blanks (index 0)."""
    out: list[int] = []
    previous = -1
    for token in frame_tokens:
        if token != previous and token != 0:
            out.append(token)
        previous = token
    return out
