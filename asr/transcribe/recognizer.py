"""Audio in, text with word times out: the Python API behind ``asr transcribe``.

>>> import asr
>>> recognizer = asr.load_model("exp/word/final.pt")
>>> transcript = recognizer.transcribe("speech.flac")
>>> transcript.text, transcript.words[0].start

A :class:`Recognizer` wraps a model package (:func:`asr.nn.load.load_network`) and runs the same
pipeline as training, from audio: read and resample to the package's feature rate (mono), Kaldi
features with the package's feature config, CMVN, the network, greedy CTC decoding with frame
spans (:func:`asr.decoding.timing.greedy_spans`) turned into timed words and units
(:func:`asr.decoding.timing.timed_units`).

CMVN: a model trained with ``global`` CMVN gets the training set's statistics, which the package
carries. A model trained with ``speaker`` or ``utterance`` CMVN gets statistics over the whole
input recording: a file is one speaker as far as we can know, and that is what ``utterance``
means. (Long recordings: the statistics are accumulated window by window, each frame counted
once, before any window is normalised, so every window sees the same whole-recording stats.)

Recordings longer than ``max_window_seconds`` are cut into overlapping windows at low-energy
points (:mod:`asr.transcribe.long_audio`), each window is decoded alone and the words are
merged on absolute times (the LM's context starts afresh in each window, and an n-best list is
given for recordings of one window only). Shorter inputs of :meth:`Recognizer.transcribe_many`
are batched by length.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from asr.data.audio import load_audio, resample
from asr.decoding.timing import DEFAULT_END_EXTENSION, TimedUnit, extend_ends
from asr.decoding.vtln import frame_entropy, nearest_one_first
from asr.errors import AsrError, AudioError, ConfigError, PackageError
from asr.features.cmvn import add_deltas, compute_cmvn_stats, running_cmvn, running_prior
from asr.features.config import FeatureConfig, extract_features, normalize_features
from asr.features.vtlp import MelAxis, warp_features
from asr.nn.export import export_network, onnx_session
from asr.nn.load import LoadedNetwork, load_network
from asr.nn.precision import autocast, precision_name, resolve_precision
from asr.transcribe.long_audio import Window, merge_units, plan_windows
from asr.transcribe.search import Alternative, Decoded, make_search
from asr.transcribe.segments import whisper_segments
from asr.units.tokens import UNITS, TokenList, infer_unit

# An input of transcribe_many: a path, or a (waveform, sample_rate) pair.
AudioInput = str | os.PathLike | tuple[Any, int]

DEFAULT_BATCH_SECONDS = 300.0
DEFAULT_MAX_WINDOW_SECONDS = 30.0
DEFAULT_OVERLAP_SECONDS = 2.0
# what runs the network: torch (eager, any device and precision) or onnxruntime (the network
# exported to ONNX at load time and checked against torch, as `asr export` does; CPU, fp32)
BACKENDS = ("torch", "onnxruntime")
# whisper's "language" field: the recipes here are all English; a package may say otherwise
DEFAULT_LANGUAGE = "en"
# transcribe_many reads this many inputs ahead, sorts them by length and batches them: enough for
# well-filled batches, few enough that memory stays small with any number of inputs.
_READ_AHEAD = 64


@dataclass
class Transcript:
    """The transcription of one input.

    ``words`` are words for word and character models and for any model decoded with a
    lexicon, and phones for a phone model without one (its "words" are then its units);
    ``units`` are the model's tokens (characters, phones or words) with their times. Times are
    seconds from the start of the input; ``duration`` is the input's length. ``nbest``: the
    best hypotheses with their scores when more than one was asked for; ``decoder``: the
    search that made the transcript.
    """

    source: str
    text: str
    words: list[TimedUnit] = field(default_factory=list)
    units: list[TimedUnit] = field(default_factory=list)
    duration: float = 0.0
    unit: str = "word"
    nbest: list[Alternative] = field(default_factory=list)
    decoder: str = "greedy"
    language: str = DEFAULT_LANGUAGE
    precision: str = "fp32"
    warp: float | None = None  # test-time VTLN's factor for this recording (None: no VTLN)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; times rounded to the millisecond, confidences to 4 decimals.

        whisper's fields (``text``, ``segments``, ``language``; see
        :mod:`asr.transcribe.segments`) come first, so tools that read whisper's JSON read
        ours; then ours: ``source``, ``duration``, ``unit``, ``decoder``, ``precision`` (the
        network's arithmetic), ``words`` and
        ``units`` (text, start, end, confidence) and, when asked for, ``nbest`` and
        ``vtln_warp`` (the warp factor test-time VTLN chose).
        """

        def timed(items: list[TimedUnit]) -> list[dict[str, Any]]:
            return [
                {
                    "text": u.text,
                    "start": round(u.start, 3),
                    "end": round(u.end, 3),
                    "confidence": round(u.confidence, 4),
                }
                for u in items
            ]

        data = {
            "text": self.text,
            "segments": whisper_segments(self.words),
            "language": self.language,
            "source": self.source,
            "duration": round(self.duration, 3),
            "unit": self.unit,
            "decoder": self.decoder,
            "precision": self.precision,
            "words": timed(self.words),
            "units": timed(self.units),
        }
        if self.nbest:
            data["nbest"] = [alternative.to_dict() for alternative in self.nbest]
        if self.warp is not None:
            data["vtln_warp"] = self.warp
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        """The inverse of :meth:`to_dict` (e.g. to read a transcript's JSON file back)."""

        def timed(items: list[dict[str, Any]]) -> list[TimedUnit]:
            return [
                TimedUnit(
                    str(u["text"]), float(u["start"]), float(u["end"]), float(u["confidence"])
                )
                for u in items
            ]

        return cls(
            source=str(data["source"]),
            text=str(data["text"]),
            words=timed(data.get("words", [])),
            units=timed(data.get("units", [])),
            duration=float(data.get("duration", 0.0)),
            unit=str(data.get("unit", "word")),
            nbest=[
                Alternative(
                    str(a["text"]),
                    float(a["score"]),
                    float(a.get("am_score", a["score"])),
                    float(a.get("lm_score", 0.0)),
                )
                for a in data.get("nbest", [])
            ],
            decoder=str(data.get("decoder", "greedy")),
            language=str(data.get("language", DEFAULT_LANGUAGE)),
            precision=str(data.get("precision", "fp32")),
            warp=float(data["vtln_warp"]) if "vtln_warp" in data else None,
        )


@dataclass
class _Pending:
    """One input read and waiting for the network."""

    index: int
    item: Any
    source: str
    wave: np.ndarray


class Recognizer:
    """A loaded model package ready to transcribe audio (see the module docstring).

    ``beam_size``, ``lm_weight``, ``word_score``, ``use_lm`` and ``nbest`` choose the search
    (:func:`asr.transcribe.search.make_search`; None: the package's settings). ``precision``:
    the network's autocast (:func:`asr.nn.precision.resolve_precision`: ``auto`` is bf16 where
    the device runs it natively, fp32 otherwise; ``bf16`` where it is not is refused with the
    reason); ``bf16=True`` is the older spelling of ``precision="bf16"``. ``backend``: torch,
    or onnxruntime (the network exported to ONNX when loaded, checked against torch as
    ``asr export`` does, then run by onnxruntime on the CPU in fp32). ``running_cmvn``: a model
    trained with per-speaker or per-utterance CMVN normalises each frame by the statistics up
    to it, as online decoding must (:mod:`asr.transcribe.online`; recordings up to the max
    window).
    """

    def __init__(
        self,
        loaded: LoadedNetwork,
        bf16: bool = False,
        max_window_seconds: float = DEFAULT_MAX_WINDOW_SECONDS,
        overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
        source: str = "model",
        beam_size: int | None = None,
        lm_weight: float | None = None,
        word_score: float | None = None,
        use_lm: bool = True,
        nbest: int = 1,
        precision: str = "auto",
        backend: str = "torch",
        running_cmvn: bool = False,
        vtln: Sequence[float] | None = None,
    ) -> None:
        package = loaded.package
        if not package.feature_config:
            raise PackageError(f"{source}: the package has no feature config; cannot read audio")
        try:
            self.feature_config = FeatureConfig.from_dict(package.feature_config)
        except (ConfigError, TypeError) as exc:
            raise PackageError(f"{source}: bad feature config in the package ({exc})") from None
        if self.feature_config.cmvn == "global" and package.cmvn_stats is None:
            raise PackageError(
                f"{source}: the model uses global CMVN but the package has no CMVN statistics"
            )
        if max_window_seconds <= 2 * overlap_seconds:
            raise ConfigError(
                f"max window {max_window_seconds} s must be more than twice the overlap "
                f"({overlap_seconds} s)"
            )
        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        # the package's own unit (phone models have no <space> and would pass for words)
        unit = package.extra.get("unit") if isinstance(package.extra, dict) else None
        if unit not in UNITS:
            unit = infer_unit(package.tokens)
        self.unit: str = unit
        self.tokens = TokenList(package.tokens, unit=unit)
        self.search = make_search(
            package, self.tokens, source, beam_size, lm_weight, word_score, use_lm, nbest
        )
        language = package.extra.get("language") if isinstance(package.extra, dict) else None
        self.language = str(language) if language else DEFAULT_LANGUAGE
        self.sample_rate = self.feature_config.sample_rate
        shift_ms = float(self.feature_config.options.get("frame_shift", 10.0))
        self.frame_shift = shift_ms / 1000.0
        # output frame k covers input frames k*skip ... (asr.nn.model): it starts k*skip shifts in
        self.frame_seconds = self.frame_shift * self.model.config.skip
        # online decoding's causal CMVN (asr.transcribe.online), for models trained with
        # per-speaker or per-utterance CMVN: what online decoding equals on complete audio
        self.running_cmvn = bool(running_cmvn) and self.feature_config.cmvn in (
            "speaker",
            "utterance",
        )
        self.max_window_seconds = float(max_window_seconds)
        self.overlap_seconds = float(overlap_seconds)
        # test-time VTLN (asr.decoding.vtln): factors tried nearest 1.0 first, so that a tie
        # keeps the one nearer 1.0, as asr decode --vtln does
        self.vtln = nearest_one_first(vtln) if vtln else None
        if self.vtln:
            if running_cmvn:
                raise ConfigError(
                    "VTLN chooses a warp factor from the whole recording; online decoding has "
                    "only what has arrived (use one or the other)"
                )
            self._axis = MelAxis.of(self.feature_config, source=f"{source}: VTLN")
            self._blocks = self.feature_config.delta_order + 1  # static, delta, ...
        if backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.backend = backend
        self._onnx = None
        if backend == "onnxruntime":
            if bf16 or precision not in ("auto", "fp32"):
                raise ConfigError("the onnxruntime backend runs the exported network in fp32")
            if self.device.type != "cpu":
                raise ConfigError("the onnxruntime backend runs on the CPU: use --device cpu")
            # exported here and checked against the eager model, as asr export does
            data, _ = export_network(loaded, "onnx", source=source)
            self._onnx = onnx_session(data, threads=torch.get_num_threads())
            self.dtype = None
        else:
            self.dtype = resolve_precision("bf16" if bf16 else precision, self.device)
        self.precision = precision_name(self.dtype)

    # --- public API -----------------------------------------------------------------------

    def transcribe(
        self, audio: str | os.PathLike | np.ndarray | torch.Tensor, sample_rate: int | None = None
    ) -> Transcript:
        """Transcribe one recording: a path, or a 1-D waveform in [-1, 1] with its sample rate.

        Raises AudioError (one line naming the input) for unreadable, empty or non-audio input.
        """
        item: AudioInput
        if isinstance(audio, np.ndarray | torch.Tensor):
            if sample_rate is None:
                raise AudioError("<waveform>: a waveform needs its sample_rate")
            item = (audio, sample_rate)
        else:
            item = audio  # a file: its header gives the rate
        result = next(iter(self.transcribe_many([item])))[1]
        if isinstance(result, AsrError):
            raise result
        return result

    def transcribe_many(
        self,
        inputs: Iterable[AudioInput],
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        progress: bool = False,
    ) -> Iterator[tuple[AudioInput, Transcript | AsrError]]:
        """Yield ``(input, Transcript or AsrError)`` for each input, in input order.

        An input is a path or a ``(waveform, sample_rate)`` pair. Inputs are read a few dozen
        ahead; the short ones are sorted by length and run in batches of at most
        ``batch_seconds`` of (padded) audio; a recording longer than the max window goes
        through overlapping windows on its own. A bad input yields its error and the others go on.
        """
        if batch_seconds <= 0:
            raise ConfigError(f"batch seconds {batch_seconds}: must be positive")
        items = list(inputs) if progress else inputs
        bar = tqdm(
            total=len(items) if isinstance(items, list) else None,
            desc="transcribe",
            unit="file",
            disable=not progress,
        )
        group: list[tuple[int, Any]] = []
        try:
            for index, item in enumerate(items):
                group.append((index, item))
                if len(group) >= _READ_AHEAD:
                    yield from self._run_group(group, batch_seconds, bar)
                    group = []
            if group:
                yield from self._run_group(group, batch_seconds, bar)
        finally:
            bar.close()

    # --- reading ----------------------------------------------------------------------------

    def read(self, item: AudioInput) -> tuple[str, np.ndarray]:
        """(source name, mono float32 waveform at the feature rate) of one input."""
        if isinstance(item, tuple):
            wave, rate = item
            source = "<waveform>"
            if torch.is_tensor(wave):
                wave = wave.detach().cpu().numpy()
            wave = np.asarray(wave, dtype=np.float32)
            if wave.ndim != 1:
                raise AudioError(f"{source}: expected a 1-D waveform, got shape {wave.shape}")
            if wave.size == 0:
                raise AudioError(f"{source}: zero-length audio (no samples)")
            if not np.all(np.isfinite(wave)):
                raise AudioError(f"{source}: audio contains NaN or infinite samples")
            if not isinstance(rate, int | np.integer) or rate <= 0:
                raise AudioError(f"{source}: sample rate {rate!r} is not a positive integer")
            return source, np.ascontiguousarray(resample(wave, int(rate), self.sample_rate))
        source = os.fspath(item)
        try:
            wave, _ = load_audio(source, self.sample_rate)
        except OSError as exc:
            # load_audio names most problems itself; an OS error from below it (permission
            # denied, an I/O error) must still be this input's one line, not the batch's end
            raise AudioError(f"{source}: cannot read ({exc.strerror or exc})") from None
        return source, wave

    # --- the pipeline -----------------------------------------------------------------------

    def _run_group(
        self, group: list[tuple[int, Any]], batch_seconds: float, bar: tqdm
    ) -> Iterator[tuple[AudioInput, Transcript | AsrError]]:
        results: dict[int, Transcript | AsrError] = {}
        short: list[_Pending] = []
        max_samples = int(self.max_window_seconds * self.sample_rate)
        for index, item in group:
            try:
                source, wave = self.read(item)
            except AsrError as exc:
                results[index] = exc
                continue
            pending = _Pending(index, item, source, wave)
            if len(wave) > max_samples:
                try:
                    results[index] = self._transcribe_long(pending, batch_seconds)
                except AsrError as exc:
                    results[index] = exc
            else:
                short.append(pending)
        # longest first, so the first batch shows at once whether memory suffices
        short.sort(key=lambda p: len(p.wave), reverse=True)
        batch: list[_Pending] = []
        limit = batch_seconds * self.sample_rate
        for pending in short:
            if batch and len(batch[0].wave) * (len(batch) + 1) > limit:
                results.update(self._transcribe_batch(batch))
                batch = []
            batch.append(pending)
        if batch:
            results.update(self._transcribe_batch(batch))
        for index, item in group:
            bar.update(1)
            yield item, results[index]

    def _cmvn_stats(self, raw: list[torch.Tensor]) -> torch.Tensor | None:
        """The statistics normalize_features needs: the package's, or over this recording."""
        mode = self.feature_config.cmvn
        if mode == "global":
            return self.loaded.package.cmvn_stats
        if mode in ("speaker", "utterance"):
            frames = [m for m in raw if m.shape[0] > 0]
            return compute_cmvn_stats(frames) if frames else None
        return None

    def _normalize(self, raw: torch.Tensor, stats: torch.Tensor | None) -> torch.Tensor:
        config = self.feature_config
        if self.running_cmvn and raw.shape[0] > 0:
            prior = running_prior(self.loaded.package.cmvn_stats, raw.shape[1])
            normed, _ = running_cmvn(raw, prior, config.norm_vars)
            return add_deltas(normed, config.delta_order) if config.delta_order else normed
        if config.cmvn in ("speaker", "utterance"):
            if stats is None or raw.shape[0] == 0:
                return raw.new_zeros(raw.shape[0], config.dim)
            # per-recording stats were computed by the caller (over all windows for long audio)
            config = dataclasses.replace(config, cmvn="speaker")
        return normalize_features(raw, config, stats)

    def _network(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T', V) float32 log-probs on the CPU and output lengths, for a list of (T, D)."""
        lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(self.device)
        if self._onnx is not None:
            return self._onnx(padded, lengths)
        with torch.inference_mode(), autocast(self.device, self.dtype):
            log_probs, out_lengths = self.model(padded, lengths.to(self.device))
        return log_probs.float().cpu(), out_lengths.cpu()

    def _warped_network(
        self, feats: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, list[float | None]]:
        """:meth:`_network`, with each recording warped by the VTLN factor of the lowest mean
        entropy per frame (one pass per factor); the factors (None without VTLN)."""
        if not self.vtln:
            log_probs, out_lengths = self._network(feats)
            return log_probs, out_lengths, [None] * len(feats)
        best: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        factors = torch.zeros(len(feats), dtype=torch.float64)
        for alpha in self.vtln:
            log_probs, out_lengths = self._network(
                [warp_features(f, self._axis, alpha, self._blocks) for f in feats]
            )
            # in float64, as asr decode --vtln divides, so that both choose alike
            entropy = frame_entropy(log_probs, out_lengths).double() / out_lengths.clamp(min=1)
            if best is None:
                # a copy: the network's outputs are inference tensors, which refuse updates
                best = (log_probs.clone(), out_lengths, entropy.clone())
                factors.fill_(alpha)
                continue
            better = entropy < best[2]
            best[0][better] = log_probs[better]
            best[2][better] = entropy[better]
            factors[better] = alpha
        assert best is not None
        return best[0], best[1], factors.tolist()

    def _choose_warp(
        self, raws: list[torch.Tensor], stats: torch.Tensor | None, per_batch: int
    ) -> float | None:
        """One recording's VTLN factor from all its windows' raw features (normalised
        ``per_batch`` windows at a time, as the decoding pass does, to keep memory small)."""
        if not self.vtln:
            return None
        means: dict[float, float] = {}
        for alpha in self.vtln:
            entropy, frames = 0.0, 0
            for first in range(0, len(raws), per_batch):
                feats = [self._normalize(raw, stats) for raw in raws[first : first + per_batch]]
                log_probs, out_lengths = self._network(
                    [warp_features(f, self._axis, alpha, self._blocks) for f in feats]
                )
                entropy += float(frame_entropy(log_probs, out_lengths).sum())
                frames += int(out_lengths.sum())
            means[alpha] = entropy / max(frames, 1)
        return min(self.vtln, key=means.__getitem__)  # ties: the first, nearest 1.0

    def _decode(
        self,
        log_probs: torch.Tensor,
        length: int,
        offset: float,
        end_extension: float = DEFAULT_END_EXTENSION,
    ) -> Decoded:
        return self.search.decode(log_probs[:length], self.frame_seconds, offset, end_extension)

    def _transcript(
        self,
        pending: _Pending,
        words: list[TimedUnit],
        units: list[TimedUnit],
        nbest: list[Alternative] | None = None,
        warp: float | None = None,
    ) -> Transcript:
        return Transcript(
            source=pending.source,
            text=" ".join(w.text for w in words),
            words=words,
            units=units,
            duration=len(pending.wave) / self.sample_rate,
            unit=self.unit,
            nbest=nbest or [],
            decoder=self.search.description,
            language=self.language,
            precision=self.precision,
            warp=warp,
        )

    def _transcribe_batch(self, batch: list[_Pending]) -> dict[int, Transcript | AsrError]:
        out: dict[int, Transcript | AsrError] = {}
        feats: list[torch.Tensor] = []
        ready: list[_Pending] = []
        for pending in batch:
            try:
                raw = extract_features(pending.wave, self.sample_rate, self.feature_config)
            except AsrError as exc:
                out[pending.index] = AudioError(f"{pending.source}: {exc}")
                continue
            if raw.shape[0] == 0:  # shorter than one frame: nothing to hear
                out[pending.index] = self._transcript(pending, [], [])
                continue
            feats.append(self._normalize(raw, self._cmvn_stats([raw])))
            ready.append(pending)
        if not ready:
            return out
        log_probs, out_lengths, warps = self._warped_network(feats)
        for b, pending in enumerate(ready):
            decoded = self._decode(log_probs[b], int(out_lengths[b]), 0.0)
            out[pending.index] = self._transcript(
                pending, decoded.words, decoded.units, decoded.nbest, warps[b]
            )
        return out

    def _transcribe_long(self, pending: _Pending, batch_seconds: float) -> Transcript:
        if self.running_cmvn:
            # windows overlap and are normalised on their own: no running statistics over them
            raise AudioError(
                f"{pending.source}: running CMVN covers recordings up to the max window "
                f"({self.max_window_seconds:g} s) offline; decode it online"
            )
        rate = self.sample_rate
        windows = plan_windows(pending.wave, rate, self.max_window_seconds, self.overlap_seconds)
        # Pass 1: raw features of each window (the 3x larger normalised ones are made a batch of
        # windows at a time below) and CMVN stats over the frames of each keep region, so every
        # frame of the recording counts once.
        shift = int(round(self.frame_shift * rate))
        raws: list[torch.Tensor] = []
        kept: list[torch.Tensor] = []
        for window in windows:
            raw = extract_features(
                pending.wave[window.start : window.end], rate, self.feature_config
            )
            raws.append(raw)
            first = -(-(window.keep_start - window.start) // shift)
            last = -(-(window.keep_end - window.start) // shift)
            kept.append(raw[first:last])
        stats = self._cmvn_stats(kept)
        del kept
        # Pass 2: the windows through the network in batches of up to batch_seconds of audio,
        # as short files are (one window at a time left the cores idle: docs/benchmarks.md).
        per_window: list[tuple[Window, list[TimedUnit]]] = []
        all_units: list[tuple[Window, list[TimedUnit]]] = []
        per_batch = max(1, int(batch_seconds // self.max_window_seconds))
        pairs = list(zip(windows, raws, strict=True))
        for window, raw in pairs:
            if raw.shape[0] == 0:  # nothing to hear (merge_units orders the windows by time)
                per_window.append((window, []))
                all_units.append((window, []))
        pairs = [(window, raw) for window, raw in pairs if raw.shape[0] > 0]
        # VTLN: one factor for the recording, from the entropy over all its windows
        warp = self._choose_warp([raw for _, raw in pairs], stats, per_batch)
        for first in range(0, len(pairs), per_batch):
            batch = pairs[first : first + per_batch]
            feats = [self._normalize(raw, stats) for _, raw in batch]
            if warp is not None:
                feats = [warp_features(f, self._axis, warp, self._blocks) for f in feats]
            log_probs, out_lengths = self._network(feats)
            for b, (window, _) in enumerate(batch):
                # Raw ends here: a window's last word has its next word in the next window.
                decoded = self._decode(
                    log_probs[b], int(out_lengths[b]), window.start / rate, end_extension=0.0
                )
                per_window.append((window, decoded.words))
                all_units.append((window, decoded.units))
        raws.clear()
        words = extend_ends(merge_units(per_window, rate), DEFAULT_END_EXTENSION)
        units = extend_ends(merge_units(all_units, rate), DEFAULT_END_EXTENSION)
        return self._transcript(pending, words, units, warp=warp)


def load_model(
    path: str | os.PathLike,
    device: str = "cpu",
    threads: int | None = None,
    bf16: bool = False,
    max_window_seconds: float = DEFAULT_MAX_WINDOW_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    beam_size: int | None = None,
    lm_weight: float | None = None,
    word_score: float | None = None,
    use_lm: bool = True,
    nbest: int = 1,
    precision: str = "auto",
    backend: str = "torch",
    running_cmvn: bool = False,
    vtln: Sequence[float] | None = None,
) -> Recognizer:
    """Load a model package for transcription (``asr.load_model``).

    ``threads`` sets torch's CPU threads (default: torch's own choice). ``precision``: ``auto``
    (the default) runs the network in bf16 where the device has it natively and fp32 elsewhere;
    ``fp32``; ``bf16`` (a ConfigError where the device has no native bf16; ``bf16=True`` says
    the same). ``backend="onnxruntime"`` runs the network exported to ONNX (fp32, CPU). The
    search: the
    package's lexicon + LM with its tuned weights when it has them, else greedy; ``beam_size``,
    ``lm_weight``, ``word_score``, ``use_lm=False`` (no lexicon, no LM) and ``nbest`` override
    (:mod:`asr.transcribe.search`). ``vtln``: a grid of warp factors
    (:func:`asr.decoding.vtln.parse_warp_grid`) for test-time VTLN, one factor per recording
    chosen by the network's posterior entropy (the Transcript's ``warp``).
    """
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads {threads}: must be at least 1")
        torch.set_num_threads(threads)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device}: CUDA is not available here (use --device cpu)")
    loaded = load_network(path, device)
    return Recognizer(
        loaded,
        bf16,
        max_window_seconds,
        overlap_seconds,
        source=str(path),
        beam_size=beam_size,
        lm_weight=lm_weight,
        word_score=word_score,
        use_lm=use_lm,
        nbest=nbest,
        precision=precision,
        backend=backend,
        running_cmvn=running_cmvn,
        vtln=vtln,
    )
