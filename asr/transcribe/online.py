"""Online decoding: a forward-only model transcribes audio as it arrives, word by word.

:class:`OnlineRecognizer` takes samples in chunks of any size (:meth:`~OnlineRecognizer.accept`)
and returns the words that became final; :meth:`~OnlineRecognizer.finish` ends the recording and
returns the whole :class:`~asr.transcribe.recognizer.Transcript`. Every stage keeps just the
state it needs between chunks, so the frames it produces are those of one pass over the whole
recording:

1. **Frames.** Kaldi's framing with ``snip_edges`` (frame ``i`` covers samples ``i * shift ..
   i * shift + length``) makes each frame from its own samples only, so frames are computed as
   soon as their samples are in and the rest of the samples wait for the next chunk.
2. **CMVN.** A model trained with global CMVN gets the package's statistics, as offline. One
   trained with per-speaker or per-utterance CMVN cannot have the recording's statistics before
   the recording ends; it gets *running* CMVN (:func:`asr.features.cmvn.running_cmvn`): each
   frame normalised by the statistics of the frames up to it, on a prior of the training set's
   statistics counted as 200 frames (Kaldi's online CMVN, without its 600-frame window).
   Offline decoding with ``running_cmvn=True`` (:class:`~asr.transcribe.recognizer.Recognizer`)
   normalises the same way, and is what online decoding equals on complete audio.
3. **Deltas** need ``order * 2`` frames of right context (Kaldi's ``add-deltas``): a frame is
   passed on when they have arrived, and the last ones at the end, clamped as offline.
4. **Frame stacking** looks ``stack - 1`` frames ahead; an output frame is made when they are in.
5. **The network** runs each new stacked frame through the layers with the recurrent state of
   the previous chunk (:meth:`asr.nn.model.AcousticModel.forward_stacked`).
6. **Greedy CTC**: a token is final when the path leaves its label, and a word when the token
   that ends it starts (a character model's ``<space>``, a BPE model's next word-start piece;
   for word and phone models every token is a word). Words are returned with their raw times
   (the end is the label's last frame; offline moves ends towards the next word, which online
   cannot know yet: the Transcript of :meth:`~OnlineRecognizer.finish` does the same).

The delay of a word beyond the audio is then the CTC spike's own delay, 40 ms of delta context
(order 2), ``stack - 1`` frames of stacking, and the chunk; docs/benchmarks.md measures it.
A bidirectional model is refused: its first output frame depends on the last input frame.
"""

from __future__ import annotations

import numpy as np
import torch

from asr.decoding.timing import DEFAULT_END_EXTENSION, TimedUnit, extend_ends
from asr.errors import ConfigError, PackageError
from asr.features.cmvn import add_deltas, apply_cmvn, running_cmvn, running_prior
from asr.features.config import FeatureConfig, extract_features
from asr.features.kaldi import FBANK_DEFAULTS, MFCC_DEFAULTS, frame_sizes, resolve_options
from asr.nn.load import LoadedNetwork, load_network
from asr.nn.precision import autocast, precision_name, resolve_precision
from asr.transcribe.recognizer import DEFAULT_LANGUAGE, Transcript
from asr.units.tokens import SPACE, UNITS, WORD_START, TokenList, infer_unit, join_pieces

DELTA_WINDOW = 2  # add-deltas' window, as asr.features.cmvn.add_deltas uses it


class OnlineRecognizer:
    """Greedy online decoding of one recording at a time (see the module docstring)."""

    def __init__(self, loaded: LoadedNetwork, source: str = "model", precision: str = "auto"):
        package = loaded.package
        config = loaded.model.config
        if config.bidirectional:
            raise ConfigError(
                f"{source}: online decoding needs a forward-only model; this one is "
                "bidirectional (its backward layers read the recording from its end, so no word "
                "is final before the audio ends): transcribe without --online"
            )
        if not package.feature_config:
            raise PackageError(f"{source}: the package has no feature config; cannot read audio")
        self.features = FeatureConfig.from_dict(package.feature_config)
        options = resolve_options(
            FBANK_DEFAULTS | MFCC_DEFAULTS, dict(self.features.options), "online"
        )
        if not options["snip_edges"]:
            raise ConfigError(
                f"{source}: online decoding needs snip_edges features (each frame from its own "
                "samples); this model's frames reach past both ends of the recording"
            )
        if float(options["dither"]) != 0.0:
            raise ConfigError(
                f"{source}: online decoding needs dither 0 (random dither would make every "
                "chunk's frames differ from one pass over the recording)"
            )
        self.loaded = loaded
        self.model = loaded.model
        self.device = loaded.device
        self.source = source
        self.sample_rate = self.features.sample_rate
        self.window, self.shift, _ = frame_sizes(float(self.sample_rate), options)
        unit = package.extra.get("unit") if isinstance(package.extra, dict) else None
        self.unit: str = unit if unit in UNITS else infer_unit(package.tokens)
        self.tokens = TokenList(package.tokens, unit=self.unit)
        self.frame_seconds = self.shift / self.sample_rate * config.skip
        self.dtype = resolve_precision(precision, self.device)
        self.precision = precision_name(self.dtype)
        language = package.extra.get("language") if isinstance(package.extra, dict) else None
        self.language = str(language) if language else DEFAULT_LANGUAGE
        if self.features.cmvn == "global" and package.cmvn_stats is None:
            raise PackageError(
                f"{source}: the model uses global CMVN but the package has no CMVN statistics"
            )
        # the CMVN applied: global (the package's statistics), running (for a model trained
        # with per-speaker or per-utterance statistics) or none
        self.cmvn = (
            "running" if self.features.cmvn in ("speaker", "utterance") else self.features.cmvn
        )
        self.reset()

    # --- the stream ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the recording so far: the next :meth:`accept` starts a new one."""
        self._samples = np.zeros(0, dtype=np.float32)
        self._seen_samples = 0
        self._stats: torch.Tensor | None = None
        # normalised frames not yet through the deltas, with the context before them
        self._normed = torch.zeros(0, 0)
        self._normed_first = 0  # global index of self._normed[0]
        self._delta_next = 0  # next frame to leave the deltas
        self._inputs = torch.zeros(0, 0)  # model-input frames not yet stacked
        self._inputs_first = 0
        self._inputs_total = 0
        self._out_next = 0  # next output frame
        self._states = None
        # greedy path
        self._label = 0
        self._run_start = 0
        self._run_probs: list[float] = []
        self._units: list[TimedUnit] = []
        self._group: list[TimedUnit] = []
        self._words: list[TimedUnit] = []

    def accept(self, samples: np.ndarray | torch.Tensor) -> list[TimedUnit]:
        """Feed mono float samples in [-1, 1] at the model's rate; the words now final."""
        chunk = np.asarray(
            samples.detach().cpu().numpy() if torch.is_tensor(samples) else samples,
            dtype=np.float32,
        ).reshape(-1)
        if not np.all(np.isfinite(chunk)):
            raise ConfigError(f"{self.source}: audio contains NaN or infinite samples")
        self._samples = np.concatenate([self._samples, chunk])
        self._seen_samples += chunk.size
        before = len(self._words)
        self._frames(final=False)
        return self._words[before:]

    def finish(self, source: str = "<stream>") -> tuple[list[TimedUnit], Transcript]:
        """End the recording: returns the words that only now became final (raw ends, as
        :meth:`accept` returns them) and the whole Transcript (ends moved towards the next
        word's start, as offline), and resets for the next recording."""
        before = len(self._words)
        self._frames(final=True)
        self._close_run(self._out_next)
        self._close_word()
        last = self._words[before:]
        words = extend_ends(self._words, DEFAULT_END_EXTENSION)
        units = extend_ends(self._units, DEFAULT_END_EXTENSION)
        transcript = Transcript(
            source=source,
            text=" ".join(w.text for w in words),
            words=words,
            units=units,
            duration=self._seen_samples / self.sample_rate,
            unit=self.unit,
            decoder="greedy, online",
            language=self.language,
            precision=self.precision,
        )
        self.reset()
        return last, transcript

    @property
    def final_words(self) -> list[TimedUnit]:
        """Every word final so far in this recording (raw ends)."""
        return list(self._words)

    # --- stages --------------------------------------------------------------------------------

    def _frames(self, final: bool) -> None:
        """Samples -> raw frames -> CMVN -> deltas -> stacking -> network -> greedy path."""
        count = 0
        if len(self._samples) >= self.window:
            count = 1 + (len(self._samples) - self.window) // self.shift
        raw = None
        if count:
            used = (count - 1) * self.shift + self.window
            raw = extract_features(self._samples[:used], self.sample_rate, self.features)
            self._samples = self._samples[count * self.shift :]
        normed = self._cmvn(raw) if raw is not None else None
        inputs = self._deltas(normed, final)
        self._stack_and_run(inputs, final)

    def _cmvn(self, raw: torch.Tensor) -> torch.Tensor:
        if self.cmvn == "global":
            return apply_cmvn(raw, self.loaded.package.cmvn_stats, self.features.norm_vars)
        if self.cmvn == "running":
            if self._stats is None:
                self._stats = running_prior(self.loaded.package.cmvn_stats, raw.shape[1])
            normed, self._stats = running_cmvn(raw, self._stats, self.features.norm_vars)
            return normed
        return raw

    def _deltas(self, normed: torch.Tensor | None, final: bool) -> torch.Tensor | None:
        order = self.features.delta_order
        if order == 0:
            return normed
        if normed is not None:
            self._normed = (
                normed if self._normed.numel() == 0 else torch.cat([self._normed, normed])
            )
        total = self._normed_first + self._normed.shape[0]
        reach = order * DELTA_WINDOW
        ready_end = total if final else total - reach  # frames whose right context is in
        if ready_end <= self._delta_next or self._normed.shape[0] == 0:
            return None
        # add_deltas clamps at the edges of what it is given: give it the true left context
        # (clamping only at the recording's start) and, until the end, the full right context
        window = self._normed
        deltas = add_deltas(window, order, DELTA_WINDOW)
        out = deltas[self._delta_next - self._normed_first : ready_end - self._normed_first]
        self._delta_next = ready_end
        keep_from = max(self._normed_first, self._delta_next - reach)
        self._normed = self._normed[keep_from - self._normed_first :]
        self._normed_first = keep_from
        return out

    def _stack_and_run(self, inputs: torch.Tensor | None, final: bool) -> None:
        config = self.model.config
        if inputs is not None and inputs.shape[0]:
            self._inputs = (
                inputs if self._inputs.numel() == 0 else torch.cat([self._inputs, inputs])
            )
            self._inputs_total += inputs.shape[0]
        total = self._inputs_total
        if total == 0:
            return
        rows = []
        j = self._out_next
        while j * config.skip < total and (final or j * config.skip + config.stack - 1 < total):
            index = [
                min(j * config.skip + i, total - 1) - self._inputs_first
                for i in range(config.stack)
            ]
            rows.append(self._inputs[index].reshape(-1))
            j += 1
        if not rows:
            return
        first_out = self._out_next
        self._out_next = j
        drop = j * config.skip - self._inputs_first
        if drop > 0 and not final:
            self._inputs = self._inputs[drop:]
            self._inputs_first += drop
        x = torch.stack(rows)[:, None, :].to(self.device)
        with torch.inference_mode(), autocast(self.device, self.dtype):
            log_probs, self._states = self.model.forward_stacked(x, self._states)
        self._path(log_probs[0].float().cpu(), first_out)

    # --- greedy path -----------------------------------------------------------------------------

    def _path(self, log_probs: torch.Tensor, first: int) -> None:
        scores = log_probs.double().numpy()
        labels = scores.argmax(axis=1)
        for k, label in enumerate(labels.tolist()):
            frame = first + k
            if label != self._label:
                self._close_run(frame)
                self._label, self._run_start = label, frame
                self._run_probs = []
                if label != 0:
                    self._token_starts(label)
            if label != 0:
                self._run_probs.append(float(np.exp(scores[k, label])))

    def _close_run(self, end: int) -> None:
        if self._label == 0 or not self._run_probs:
            self._label = 0
            return
        symbol = self.tokens.symbols[self._label]
        span = TimedUnit(
            symbol,
            self._run_start * self.frame_seconds,
            end * self.frame_seconds,
            float(np.mean(self._run_probs)),
        )
        self._label = 0
        if self.unit == "char" and symbol == SPACE:
            return
        self._units.append(span)
        if self.unit in ("char", "bpe"):
            self._group.append(span)
        else:
            self._words.append(span)

    def _token_starts(self, label: int) -> None:
        """A new token starts: the word before it is final if the token begins a new word."""
        symbol = self.tokens.symbols[label]
        if (self.unit == "char" and symbol == SPACE) or (
            self.unit == "bpe" and symbol.startswith(WORD_START)
        ):
            self._close_word()

    def _close_word(self) -> None:
        if not self._group:
            return
        text = join_pieces([u.text for u in self._group])
        if text:
            conf = sum(u.confidence for u in self._group) / len(self._group)
            self._words.append(TimedUnit(text, self._group[0].start, self._group[-1].end, conf))
        self._group = []


def load_online_model(
    path: str,
    device: str = "cpu",
    threads: int | None = None,
    precision: str = "auto",
) -> OnlineRecognizer:
    """Load a forward-only model package for online decoding (see the module docstring)."""
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads {threads}: must be at least 1")
        torch.set_num_threads(threads)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device}: CUDA is not available here (use --device cpu)")
    return OnlineRecognizer(load_network(path, device), source=str(path), precision=precision)
