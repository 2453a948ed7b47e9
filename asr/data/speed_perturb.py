"""Speed perturbation of a data directory, as Kaldi's ``utils/data/perturb_data_dir_speed_3way.sh``.

Factor ``f`` changes tempo and pitch together, like sox's ``speed f``: the samples are read as if
recorded at ``rate * f`` and resampled to ``rate``, so the copy has ``len / f`` samples. Copies
get Kaldi's ids (``sp0.9-<utt>``, speaker ``sp0.9-<spk>``) so per-speaker CMVN keeps them apart;
factor 1.0 keeps the original utterances and their wav.scp/segments lines untouched.

Kaldi writes sox pipes into wav.scp; here each perturbed utterance is written once as a 16-bit
FLAC file (its segment cut first), so the output needs no sox and reading it costs no resampling.
``AugmentedDirWriter`` (the output tables and audio files) is shared with ``asr.data.noise``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from asr.data.audio import write_flac
from asr.data.datadir import DataDir, Segment, save_replacing, spk2utt_from_utt2spk
from asr.errors import AsrError, ConfigError, DataDirError

log = logging.getLogger(__name__)

DEFAULT_FACTORS = (0.9, 1.0, 1.1)
# The largest float that 16-bit PCM holds without clipping (libsndfile scales by 32768).
PCM16_MAX = 32767 / 32768
# The tables DataDir keeps as plain strings in ``extra``.
EXTRA_TABLES = ("spk2gender", "reco2dur", "reco2file_and_channel")


def perturb_speed(wave: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """sox ``speed factor``: ``len / factor`` samples at the same rate, pitch scaled by factor."""
    if factor == 1.0:
        return wave
    # soxr takes real-valued rates: reading the input as rate*factor is exactly sox's speed.
    return soxr.resample(wave, sample_rate * factor, sample_rate, quality="HQ").astype(
        np.float32, copy=False
    )


def audio_file_name(utt_id: str) -> str:
    """A file name for an utterance id: '%' and '/' escaped, so distinct ids never collide."""
    return utt_id.replace("%", "%25").replace("/", "%2F") + ".flac"


class AugmentedDirWriter:
    """The output of a data-dir augmentation: originals kept as they are plus derived copies.

    ``keep(utt)`` copies an utterance's lines (wav.scp entry, segment, text, ...) unchanged;
    ``add(utt, prefix, wave, rate)`` writes ``wave`` as ``AUDIO_DIR/<prefix><utt>.flac`` and adds
    utterance ``<prefix><utt>`` of speaker ``<prefix><spk>`` pointing at that whole file. When
    the source has ``segments`` and originals are kept, the copies get a segment spanning their
    whole file so that one ``segments`` table covers every utterance. Features (feats.scp,
    cmvn.scp, utt2num_frames) are not carried over: the audio changed, compute them again.
    Each audio file is written atomically as it is made, the tables only by ``save()`` at the
    end, so a run that fails part way leaves complete audio files but no half data directory.
    """

    def __init__(self, source: DataDir, dst: Path, audio_dir: Path) -> None:
        self.source = source
        self.dst = dst
        self.audio_dir = audio_dir
        self.utt2spk: dict[str, str] = {}
        self.text: dict[str, str] = {}
        self.wav_scp: dict[str, str] = {}
        self.segments: dict[str, Segment] = {}  # originals of a segmented source
        self.copy_lengths: dict[str, float] = {}  # copies: seconds of audio written
        self.utt2dur: dict[str, float] = {}
        # spk2gender, reco2dur, reco2file_and_channel: carried over when the source has them.
        self.extra: dict[str, dict[str, str]] = {n: {} for n in EXTRA_TABLES if n in source.extra}

    def _recording(self, utt: str) -> str:
        segments = self.source.segments
        return segments[utt].recording if segments is not None else utt

    def _lookup(self, name: str, table: dict, utt: str) -> object:
        if utt not in table:
            raise DataDirError(f"{self.source.path / name}: utterance '{utt}' is not in {name}")
        return table[utt]

    def _add_utterance(self, new: str, utt: str, spk: str, reco: str, wav_entry: str) -> None:
        if new in self.utt2spk:
            raise DataDirError(
                f"{self.source.path / 'utt2spk'}: new utterance id '{new}' (from '{utt}') "
                "is already taken: the source already holds augmented copies with this prefix"
            )
        if self.wav_scp.get(reco, wav_entry) != wav_entry:
            raise DataDirError(
                f"{self.source.path / 'wav.scp'}: new recording id '{reco}' (from '{utt}') "
                "is already taken by a different recording"
            )
        self.utt2spk[new] = spk
        self.wav_scp[reco] = wav_entry
        if self.source.text is not None:
            self.text[new] = self._lookup("text", self.source.text, utt)
        gender = self.source.extra.get("spk2gender", {}).get(self.source.utt2spk[utt])
        if gender is not None:
            self.extra["spk2gender"][spk] = gender

    def keep(self, utt: str) -> None:
        """Copy utterance ``utt`` of the source into the output unchanged."""
        source = self.source
        reco = self._recording(utt)
        self._add_utterance(utt, utt, source.utt2spk[utt], reco, source.wav_scp[reco])
        if source.segments is not None:
            self.segments[utt] = source.segments[utt]
        if source.utt2dur is not None:
            self.utt2dur[utt] = self._lookup("utt2dur", source.utt2dur, utt)
        for name in ("reco2dur", "reco2file_and_channel"):
            value = source.extra.get(name, {}).get(reco)
            if value is not None:
                self.extra[name][reco] = value

    def add(self, utt: str, prefix: str, wave: np.ndarray, sample_rate: int) -> str:
        """Write ``wave`` as the audio of a new utterance ``prefix + utt``; returns its id."""
        new = prefix + utt
        path = (self.audio_dir / audio_file_name(new)).resolve()
        spk = prefix + self.source.utt2spk[utt]
        # Check the ids before writing, so that a clash leaves no stray file behind.
        self._add_utterance(new, utt, spk, new, str(path))
        write_flac(path, wave, sample_rate)
        seconds = len(wave) / sample_rate
        self.copy_lengths[new] = seconds
        if self.source.utt2dur is not None:
            self.utt2dur[new] = seconds
        if "reco2dur" in self.extra:
            self.extra["reco2dur"][new] = repr(seconds)
        channels = self.source.extra.get("reco2file_and_channel")
        if channels is not None and self._recording(utt) in channels:
            file_id, _, channel = channels[self._recording(utt)].partition(" ")
            # Kaldi prefixes the file id as well; a cut segment is a file of its own.
            file_id = prefix + file_id if self.source.segments is None else new
            self.extra["reco2file_and_channel"][new] = f"{file_id} {channel}".strip()
        return new

    def save(self) -> DataDir:
        """Write the tables into ``dst`` (each atomically) and remove stale tables left there."""
        if not self.utt2spk:
            raise DataDirError(f"{self.source.path}: no utterance could be read; nothing written")
        source = self.source
        segments = None
        if self.segments:
            segments = dict(self.segments)
            for new, seconds in self.copy_lengths.items():
                segments[new] = Segment(new, 0.0, seconds)
        data = DataDir(
            path=self.dst,
            utt2spk=self.utt2spk,
            spk2utt=spk2utt_from_utt2spk(self.utt2spk),
            wav_scp=self.wav_scp,
            text=self.text if source.text is not None else None,
            segments=segments,
            utt2dur=self.utt2dur if source.utt2dur is not None else None,
            extra=self.extra,
        )
        save_replacing(data)
        return data


def check_new_ids(source: DataDir, prefixes: Iterable[str], keep_originals: bool) -> None:
    """Fail before writing anything if a copy's id would clash with a kept original's."""
    if not keep_originals:
        return
    for prefix in prefixes:
        for utt in source.utt_ids:
            if prefix + utt in source.utt2spk:
                raise DataDirError(
                    f"{source.where('utt2spk', prefix + utt)}: copy '{prefix}{utt}' of '{utt}' "
                    "would replace this utterance: the source already holds copies with "
                    f"prefix '{prefix}'"
                )


def check_destination(source: Path, dst: Path) -> None:
    """Refuse to write an augmented directory over its own source."""
    if dst.resolve() == source.resolve():
        raise DataDirError(f"{dst}: the output cannot overwrite its source data directory")


# --- speed perturbation ------------------------------------------------------------------------


@dataclass
class SpeedPerturbReport:
    """What ``speed_perturb_datadir`` wrote and which utterances it skipped (id -> error)."""

    path: Path
    factors: tuple[float, ...]
    utterances: int = 0  # in the source
    written: int = 0  # in the output, originals included
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        factors = " ".join(format(f, "g") for f in self.factors)
        return (
            f"{self.path}: {self.written} utterances from {self.utterances} "
            f"(speed factors {factors}); {len(self.failed)} unreadable, skipped"
        )


def speed_prefix(factor: float) -> str:
    """Kaldi's id prefix for a speed factor: ``sp0.9-``."""
    return f"sp{factor:g}-"


def check_factors(factors: Iterable[float]) -> tuple[float, ...]:
    """Factors as floats; ConfigError for none, a non-positive one or a duplicate."""
    values = tuple(float(f) for f in factors)
    if not values:
        raise ConfigError("speed perturbation needs at least one factor")
    seen: dict[str, float] = {}
    for value in values:
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"speed factor {value:g} must be a positive number")
        prefix = speed_prefix(value)
        if prefix in seen:
            raise ConfigError(
                f"speed factor {value!r} is given twice (as {seen[prefix]!r}; "
                f"both name copies '{prefix}')"
            )
        seen[prefix] = value
    return values


def speed_perturb_datadir(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    factors: Iterable[float] = DEFAULT_FACTORS,
    audio_dir: str | os.PathLike | None = None,
    progress: bool = True,
    allow_pipe: bool = False,
) -> SpeedPerturbReport:
    """Write ``dst`` with a copy of every utterance of ``src`` per speed factor.

    Copies for ``f != 1`` are ``sp{f}-<utt>`` of speaker ``sp{f}-<spk>``, written as FLAC files
    under ``audio_dir`` (default ``dst/audio``); ``f == 1`` keeps the original lines. text,
    utt2spk, spk2utt, spk2gender and utt2dur (the copies' true lengths) follow. An utterance
    whose audio cannot be read is logged in one line and skipped (every copy of it).
    """

    values = check_factors(factors)
    source = DataDir.load(src)
    dst = Path(dst)
    check_destination(source.path, dst)
    if not source.wav_scp:
        raise DataDirError(f"{source.path / 'wav.scp'}: file not found (needed for audio)")
    check_new_ids(source, [speed_prefix(f) for f in values if f != 1.0], 1.0 in values)
    writer = AugmentedDirWriter(source, dst, Path(audio_dir) if audio_dir else dst / "audio")
    report = SpeedPerturbReport(dst, values, utterances=len(source.utt2spk))
    with logging_redirect_tqdm():
        for utt in tqdm(source.utt_ids, desc=f"speed {dst}", unit="utt", disable=not progress):
            try:
                wave, rate = source.load_audio(utt, allow_pipe=allow_pipe)
            except AsrError as exc:
                log.warning("skipped: %s", exc)
                report.failed[utt] = str(exc)
                continue
            for factor in values:
                if factor == 1.0:
                    writer.keep(utt)
                else:
                    writer.add(utt, speed_prefix(factor), perturb_speed(wave, rate, factor), rate)
    data = writer.save()
    report.written = len(data.utt2spk)
    log.debug("%s", report.summary())
    return report
