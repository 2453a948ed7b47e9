"""The decoder a transcription runs: greedy, CTC prefix beam search, or the package's lexicon + LM.

A package made by ``asr package --lexicon L --lm LM --tuned-on DEV_DECODE_DIR`` carries (or
points to, with a checked SHA-256) a lexicon and an n-gram LM, and in ``extra["decoder"]`` the
LM weight and word score the recipe's grid chose on dev. :func:`make_search` turns that, and
the caller's overrides, into a :class:`Search`:

==========================================  =================================================
package / options                           search
==========================================  =================================================
lexicon and/or LM, ``use_lm`` (default)     flashlight's lexicon (+ word LM) beam search, as
                                            ``asr decode --lexicon/--word-lm``; an LM alone is
                                            a token LM (lexicon-free search, ``--token-lm``)
neither, or ``use_lm=False``, beam 1        greedy best path (``asr decode``'s default)
neither, or ``use_lm=False``, beam N > 1    CTC prefix beam search of width N
==========================================  =================================================

Settings: ``beam_size`` (lexicon search: the package's ``decoder.beam_size``, else 50),
``lm_weight`` and ``word_score`` (the package's tuned values, else ``asr decode``'s defaults 1.0
and 0). So transcribing a recording gives what ``asr decode`` gives with the same settings on
its features (tests/test_transcribe_search.py checks the text is equal).

Word times: greedy and prefix beam hypotheses are token sequences aligned to the frames
(:func:`asr.decoding.timing.forced_align` for the beam's choice); the lexicon search keeps its
own frame path and the frame each word was completed on
(:func:`asr.decoding.timing.searched_words`), so its words are lexicon words with the times of
the tokens that spelled them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from asr.decoding.lexicon_beam import (
    DecoderOptions,
    LanguageModelError,
    LexiconDecoder,
)
from asr.decoding.prefix_beam import prefix_beam_search
from asr.decoding.timing import (
    DEFAULT_END_EXTENSION,
    TimedUnit,
    forced_align,
    greedy_spans,
    path_spans,
    searched_words,
    timed_units,
)
from asr.errors import AsrError, ConfigError, PackageError
from asr.nn.package import NO_LM_HINT, ModelPackage, read_resource, resource_file
from asr.units.lexicon import parse_lexicon
from asr.units.tokens import TokenList

DEFAULT_LEXICON_BEAM = 50  # asr decode's default with a lexicon or LM


@dataclass
class Alternative:
    """One of the n-best hypotheses: its words and the search's scores (natural log).

    ``score`` is the search's total; for the lexicon search ``am_score`` + ``lm_weight`` *
    ``lm_score`` + ``word_score`` per word, for prefix beam search the log probability summed
    over the sequence's alignments (``lm_score`` 0)."""

    text: str
    score: float
    am_score: float
    lm_score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "score": round(self.score, 4),
            "am_score": round(self.am_score, 4),
            "lm_score": round(self.lm_score, 4),
        }


@dataclass
class Decoded:
    """What one search returns: timed words and units, and the n-best list (best first)."""

    words: list[TimedUnit]
    units: list[TimedUnit]
    nbest: list[Alternative]


class Search:
    """Decode one utterance's (T, V) log-probs into timed words (see the module docstring)."""

    def __init__(
        self,
        tokens: TokenList,
        beam_size: int = 1,
        nbest: int = 1,
        lexicon_decoder: LexiconDecoder | None = None,
    ) -> None:
        if beam_size < 1:
            raise ConfigError(f"beam size {beam_size}: must be at least 1")
        if nbest < 1:
            raise ConfigError(f"nbest {nbest}: must be at least 1")
        if nbest > 1 and lexicon_decoder is None and beam_size < nbest:
            raise ConfigError(
                f"nbest {nbest} needs a beam of at least {nbest} hypotheses (beam size "
                f"{beam_size}{'' if beam_size > 1 else ': greedy decoding keeps one'})"
            )
        self.tokens = tokens
        self.beam_size = beam_size
        self.nbest = nbest
        self.lexicon_decoder = lexicon_decoder
        # tokens that only separate words in a lexicon search's path (not part of any word)
        self._between = (
            [lexicon_decoder.silence, lexicon_decoder.separator] if lexicon_decoder else []
        )

    @property
    def description(self) -> str:
        """One line for logs and the JSON: which search, with its settings."""
        d = self.lexicon_decoder
        if d is None:
            return (
                "greedy"
                if self.beam_size == 1
                else f"CTC prefix beam search, beam {self.beam_size}"
            )
        o = d.options
        if d.lexicon_free:
            return (
                f"lexicon-free beam search with a token LM, beam {o.beam_size}, "
                f"LM weight {o.lm_weight:g}"
            )
        lm = f"word LM weight {o.lm_weight:g}" if d.lm_path is not None else "no LM"
        return f"lexicon beam search, beam {o.beam_size}, {lm}, word score {o.word_score:g}"

    def decode(
        self,
        log_probs: torch.Tensor,
        frame_seconds: float,
        offset: float = 0.0,
        end_extension: float = DEFAULT_END_EXTENSION,
    ) -> Decoded:
        """Search ``log_probs`` ((T, V) natural-log posteriors of one utterance or window)."""
        scores = log_probs.float().cpu().numpy()
        if self.lexicon_decoder is not None:
            return self._lexicon(scores, frame_seconds, offset, end_extension)
        if self.beam_size == 1:
            spans = greedy_spans(scores)
            words, units = timed_units(spans, self.tokens, frame_seconds, offset, end_extension)
            return Decoded(words, units, [])
        hypotheses = prefix_beam_search(scores, self.beam_size) or [([], -math.inf)]
        best = hypotheses[0][0]
        spans = forced_align(scores, best) if best else []
        words, units = timed_units(spans, self.tokens, frame_seconds, offset, end_extension)
        nbest = [
            Alternative(self.tokens.decode(seq), score, score, 0.0)
            for seq, score in hypotheses[: self.nbest]
        ]
        return Decoded(words, units, nbest if self.nbest > 1 else [])

    def _lexicon(
        self, scores: np.ndarray, frame_seconds: float, offset: float, end_extension: float
    ) -> Decoded:
        decoder = self.lexicon_decoder
        assert decoder is not None
        hypotheses = decoder.decode(scores)
        best = hypotheses[0]
        spans = path_spans(best.frame_tokens, scores) if best.frame_tokens else []
        if decoder.lexicon_free:
            words, units = timed_units(spans, self.tokens, frame_seconds, offset, end_extension)
        else:
            words, units = searched_words(
                spans,
                best.words,
                best.word_frames,
                self.tokens,
                frame_seconds,
                offset,
                end_extension,
                between_words=self._between,
            )
        nbest = [Alternative(h.text, h.score, h.am_score, h.lm_score) for h in hypotheses]
        return Decoded(words, units, nbest if self.nbest > 1 else [])


def package_decoder_settings(package: ModelPackage) -> dict[str, Any]:
    """The package's recorded search settings (``asr package --tuned-on``), or {}."""
    settings = package.extra.get("decoder") if isinstance(package.extra, dict) else None
    return dict(settings) if isinstance(settings, dict) else {}


def make_search(
    package: ModelPackage,
    tokens: TokenList,
    source: str,
    beam_size: int | None = None,
    lm_weight: float | None = None,
    word_score: float | None = None,
    use_lm: bool = True,
    nbest: int = 1,
) -> Search:
    """The search for ``package`` with the caller's overrides (None: the package's or the
    default; see the module docstring). A lexicon or LM the package names but that is missing,
    changed or unreadable raises one PackageError naming the file and ``--no-lm``."""
    if nbest < 1:
        raise ConfigError(f"nbest {nbest}: must be at least 1")
    has_lexicon = "lexicon" in package.extra
    has_lm = "lm" in package.extra
    if not (use_lm and (has_lexicon or has_lm)):
        if lm_weight is not None or word_score is not None:
            why = "use_lm is off" if not use_lm else "the package has no lexicon or LM"
            raise ConfigError(f"an LM weight or word score needs the lexicon + LM search ({why})")
        return Search(tokens, beam_size or 1, nbest)
    recorded = package_decoder_settings(package)
    options = DecoderOptions(
        beam_size=beam_size or int(recorded.get("beam_size", DEFAULT_LEXICON_BEAM)),
        lm_weight=float(lm_weight if lm_weight is not None else recorded.get("lm_weight", 1.0)),
        word_score=float(word_score if word_score is not None else recorded.get("word_score", 0.0)),
        nbest=nbest,
    )
    if not has_lm:
        options.lm_weight = 0.0
    if not has_lexicon and options.word_score != 0.0:
        raise ConfigError("a word score needs a lexicon: the package's LM is a token LM")
    lexicon = None
    if has_lexicon:
        data = read_resource(package, "lexicon")
        assert data is not None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PackageError(f"{source}: its lexicon is not UTF-8 text; {NO_LM_HINT}") from None
        name = str(package.extra["lexicon"].get("path", "lexicon"))
        try:
            lexicon = parse_lexicon(text.splitlines(), name)
        except AsrError as exc:
            raise PackageError(f"{exc}; {NO_LM_HINT}") from None
    try:
        with resource_file(package, "lm") as lm_path:
            decoder = LexiconDecoder(tokens, lexicon, lm_path, options)
    except (LanguageModelError, ConfigError) as exc:
        raise PackageError(f"{source}: {exc}; {NO_LM_HINT}") from None
    return Search(tokens, options.beam_size, nbest, decoder)


__all__ = [
    "Alternative",
    "Decoded",
    "Search",
    "make_search",
    "package_decoder_settings",
]
