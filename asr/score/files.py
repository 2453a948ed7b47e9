"""Scoring transcript files as ``asr score`` does: read both sides, pair them, score them.

The library form of the command, for Python users: :func:`score_files` reads a reference and a
hypothesis in any format :mod:`asr.score.formats` knows (detected when not given), assigns the
words of a CTM hypothesis to the segments of an STM reference as sclite does, finds each
utterance's speaker and calls :func:`asr.score.scoring.wer`. :mod:`asr.score.compare` builds
the comparison of two systems on it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.data.datadir import read_kaldi_map
from asr.errors import ConfigError
from asr.score import formats
from asr.score.align import LEVENSHTEIN_COSTS, SCLITE_COSTS
from asr.score.normalize import Normalizer
from asr.score.result import ScoreError, ScoreResult
from asr.score.scoring import wer
from asr.score.timed import segment_ctm_by_stm

log = logging.getLogger(__name__)

UNIT_OF_METRIC = {"WER": "word", "CER": "char", "PER": "phone"}
COSTS = {"sclite": SCLITE_COSTS, "levenshtein": LEVENSHTEIN_COSTS}


@dataclass(frozen=True)
class FileOptions:
    """How :func:`score_files` reads and scores (the options of ``asr score``)."""

    ref_format: str = "auto"  # or one of asr.score.formats.FORMATS
    hyp_format: str = "auto"
    id_key: str | None = None  # JSON lines: the keys of the id and the transcript
    text_key: str | None = None
    metric: str = "WER"  # WER (words), CER (characters) or PER (phones)
    missing: str = "error"  # or "deletions": a missing hypothesis scores as empty
    costs: str = "sclite"  # or "levenshtein" (Kaldi compute-wer's edit distance)
    normalizer: Normalizer | None = None
    char_spaces: bool = True  # CER: count the spaces between words (False: sclite -c)
    utt2spk: str | os.PathLike | None = None
    speaker_sep: str | None = None  # speaker = the id up to the first of these characters
    time_mediated: bool = False  # CTM on both sides: align with word times (sclite -T)


def read_file(path: str | os.PathLike, fmt: str, options: FileOptions) -> formats.Transcripts:
    """One transcript file in format ``fmt`` ("auto": detected from its content)."""
    return formats.read(path, fmt, id_key=options.id_key, text_key=options.text_key)


def speakers_of(
    ref: formats.Transcripts,
    utt2spk: str | os.PathLike | None = None,
    speaker_sep: str | None = None,
) -> Mapping[str, str] | Callable[[str], str] | None:
    """Each reference utterance's speaker: ``utt2spk`` when given, else a ``utt2spk`` beside a
    Kaldi text reference (when it covers every utterance), the speaker column of an STM, or the
    id up to the first of ``speaker_sep``; None when nothing says."""
    if utt2spk:
        return read_kaldi_map(Path(utt2spk))
    if ref.format == "kaldi":
        beside = Path(ref.path).with_name("utt2spk")
        if beside.is_file():
            table = read_kaldi_map(beside)
            if all(u in table for u in ref.texts):
                return table
            log.warning("%s does not cover every utterance of %s; not used", beside, ref.path)
    if ref.speakers:
        return ref.speakers
    if speaker_sep:
        return prefix_rule(speaker_sep)
    return None


def prefix_rule(separators: str) -> Callable[[str], str]:
    """sclite's speaker-from-id rule: the id up to the first of ``separators`` (past position 0)."""

    def speaker_of(utt_id: str) -> str:
        cut = min((i for i in (utt_id.find(c) for c in separators) if i > 0), default=-1)
        return utt_id[:cut] if cut > 0 else utt_id

    return speaker_of


def score_files(
    ref_path: str | os.PathLike,
    hyp_path: str | os.PathLike,
    options: FileOptions | None = None,
    ref: formats.Transcripts | None = None,
) -> ScoreResult:
    """Read REF and HYP, check they match, and score them (``ref``: REF already read)."""
    options = options or FileOptions()
    if options.metric not in UNIT_OF_METRIC:
        raise ConfigError(f"metric {options.metric!r}: use one of {', '.join(UNIT_OF_METRIC)}")
    if options.costs not in COSTS:
        raise ConfigError(f"costs {options.costs!r}: use one of {', '.join(COSTS)}")
    ref_name, hyp_name = os.fspath(ref_path), os.fspath(hyp_path)
    ref = ref if ref is not None else read_file(ref_path, options.ref_format, options)
    hyp_format = options.hyp_format
    if hyp_format == "auto":
        hyp_format = formats.detect_format(hyp_path)
        # Every Kaldi text is also a valid plain file and the guess between the two can go
        # either way on a short file; a hypothesis is written like its reference.
        if {hyp_format, ref.format} == {"kaldi", "plain"}:
            hyp_format = ref.format
    hyp = read_file(hyp_path, hyp_format, options)
    log.info("reference %s: %s; hypothesis %s: %s", ref_name, ref.format, hyp_name, hyp.format)
    if ref.format == "stm" and hyp.format == "ctm":
        # sclite's ctm-against-stm mode: each hypothesis word goes to the segment it falls in.
        hyp = segment_ctm_by_stm(ref, hyp)
    ref_words = sum(len(t.split()) for t in ref.texts.values())
    if ref_words == 0:
        raise ScoreError(
            f"{ref_name}: the reference has no words (an error rate of nothing is undefined)"
        )
    unit = UNIT_OF_METRIC[options.metric]
    times = None
    if options.time_mediated:
        if ref.times is None or hyp.times is None:
            raise ConfigError("--time-mediated needs word times on both sides (CTM files)")
        if unit == "char":
            raise ConfigError("--time-mediated aligns words or phones, not characters")
        times = (ref.times, hyp.times)
    return wer(
        ref.texts,
        hyp.texts,
        unit=unit,
        metric=options.metric,
        missing=options.missing,
        costs=COSTS[options.costs],
        normalizer=options.normalizer,
        char_spaces=options.char_spaces,
        speakers=speakers_of(ref, options.utt2spk, options.speaker_sep),
        timed_words=times,
        ref_name=ref_name,
        hyp_name=hyp_name,
    )


def per_utterance(result: ScoreResult) -> tuple[np.ndarray, np.ndarray]:
    """Each scored utterance's error count and reference length, for the significance tests."""
    errors = np.fromiter((a.errors for a in result.utterances), dtype=np.int64)
    ref_words = np.fromiter((len(a.ref) for a in result.utterances), dtype=np.int64)
    return errors, ref_words
