"""Online decoding (asr.transcribe.online, asr transcribe --online): on complete audio it gives
offline decoding's words whatever the chunks, words become final while the audio still arrives,
a WAV stream on stdin is read as it comes, and what cannot be decoded online is refused.

The models are test_transcribe's forward-only tone detectors (a tone per word, so the right
answer and its times are known), and a variant with deltas, global CMVN and 3-frame stacking,
so that every stage that carries state between chunks is exercised.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_transcribe import (
    BINS,
    MEL_BINS,
    RATE,
    THRESHOLDS,
    long_parts,
    make_package,
    onsets,
    signal,
    write_wav,
)

from asr.data.wav_stream import wav_stream
from asr.errors import AudioError, ConfigError
from asr.features.cmvn import running_cmvn, running_prior
from asr.features.config import FeatureConfig
from asr.nn.load import load_network
from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.package import ModelPackage, load_package, save_package
from asr.transcribe import load_model
from asr.transcribe.online import OnlineRecognizer


def deltas_package(path: Path) -> Path:
    """The tone detector reading 3 stacked frames of fbank + deltas + delta-deltas with global
    CMVN (statistics of mean 0, variance 1: the thresholds of raw features hold), skip 3."""
    features = FeatureConfig(
        kind="fbank",
        sample_rate=RATE,
        options={"num_mel_bins": MEL_BINS, "dither": 0.0},
        delta_order=2,
        cmvn="global",
        norm_vars=True,
    )
    dim = 3 * MEL_BINS
    config = ModelConfig(
        input_dim=dim,
        num_tokens=4,
        cell="lstm",
        num_layers=2,
        hidden_size=3,
        bidirectional=False,
        stack=3,
        skip=3,
    )
    model = AcousticModel(config)
    state = {name: torch.zeros_like(value) for name, value in model.state_dict().items()}
    # layer 1: LSTM cell gates; the cell input ("g", rows 6-8) carries the tone evidence with
    # the input and output gates held open, so h = tanh(c) follows the tone; layer 2 copies it
    for unit, tone in enumerate(("lo", "mid", "hi")):
        for b in BINS[tone]:
            state["layers.0.fwd.weight_ih_l0"][6 + unit, b] = 1.0 / len(BINS[tone])
        state["layers.0.fwd.bias_ih_l0"][6 + unit] = -THRESHOLDS["none"][tone]
        state["layers.1.fwd.weight_ih_l0"][6 + unit, unit] = 5.0
    for layer in (0, 1):
        bias = state[f"layers.{layer}.fwd.bias_ih_l0"]
        bias[0:3] = 20.0  # input gate open
        bias[3:6] = -20.0  # forget gate shut: no memory beyond the frame
        bias[9:12] = 20.0  # output gate open
    for unit in range(3):
        state["output.weight"][unit + 1, unit] = 8.0
    model.load_state_dict(state)
    stats = torch.zeros(2, MEL_BINS + 1, dtype=torch.float64)
    stats[0, MEL_BINS] = 1000.0
    stats[1, :MEL_BINS] = 1000.0  # variance 1
    save_package(
        ModelPackage(
            state_dict=model.state_dict(),
            model_config=config.to_dict(),
            tokens=["<blk>", "hi", "ho", "yo"],
            feature_config=features.to_dict(),
            cmvn_stats=stats,
            extra={"unit": "word"},
        ),
        path,
    )
    return path


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("online")
    return {
        "word": make_package(root / "word.pt"),
        "char_utterance": make_package(root / "char.pt", unit="char", cmvn="utterance"),
        "deltas_global": deltas_package(root / "deltas.pt"),
    }


def stream(recognizer: OnlineRecognizer, wave: np.ndarray, sizes: list[int]):
    """Feed ``wave`` in chunks of the given sizes (cycled); (words with the samples fed when
    each became final, the transcript)."""
    emitted, fed, k = [], 0, 0
    while fed < len(wave):
        n = sizes[k % len(sizes)]
        k += 1
        for word in recognizer.accept(wave[fed : fed + n]):
            emitted.append((word, fed + n))
        fed += n
    last, transcript = recognizer.finish()
    emitted += [(word, len(wave)) for word in last]
    return emitted, transcript


@pytest.mark.parametrize("name", ["word", "char_utterance", "deltas_global"])
def test_online_equals_offline_whatever_the_chunks(packages: dict[str, Path], name: str) -> None:
    parts = long_parts(9.0)
    wave = signal(parts, seed=11)
    offline = load_model(
        packages[name], precision="fp32", running_cmvn=True, max_window_seconds=60.0
    ).transcribe(wave, RATE)
    expected = [w for w, _, _ in onsets(parts)]
    if name != "char_utterance":  # a tone per word: the offline answer is known exactly
        assert offline.text.split() == expected
    online = OnlineRecognizer(load_network(packages[name]), precision="fp32")
    rng = np.random.default_rng(0)
    for sizes in ([1600], [len(wave)], [int(n) for n in rng.integers(1, 3000, size=50)], [7]):
        emitted, transcript = stream(online, wave, sizes)
        assert transcript.text == offline.text, sizes[:3]
        assert [w.text for w, _ in emitted] == offline.text.split()
        assert [(w.start, w.end) for w in transcript.words] == [
            (w.start, w.end) for w in offline.words
        ]
        assert [w.confidence for w in transcript.words] == pytest.approx(
            [w.confidence for w in offline.words], abs=1e-5
        )
        assert transcript.duration == pytest.approx(len(wave) / RATE)


def test_words_are_final_while_the_audio_still_arrives(packages: dict[str, Path]) -> None:
    parts = long_parts(9.0)
    wave = signal(parts, seed=11)
    chunk = 1600  # 100 ms
    emitted, _ = stream(OnlineRecognizer(load_network(packages["deltas_global"])), wave, [chunk])
    assert len(emitted) == len(onsets(parts))
    for word, fed in emitted[:-1]:
        # final once the label's run ends: the raw end + the deltas' 4 frames + stacking's 2
        # frames + one frame's window; fed a chunk at a time
        latency = fed / RATE - word.end
        assert 0.0 <= latency <= 0.04 + 0.02 + 0.03 + 0.025 + chunk / RATE, (word, fed)


def test_running_cmvn_in_chunks_is_exactly_one_pass() -> None:
    feats = torch.randn(301, 5) * 3 + 2
    prior = running_prior(
        torch.tensor([[10.0, 0, 0, 0, 0, 5], [30.0, 5, 5, 5, 5, 0]], dtype=torch.float64), 5
    )
    whole, end = running_cmvn(feats, prior, norm_vars=True)
    stats, pieces = prior, []
    for cut in np.split(np.arange(301), [1, 2, 50, 51, 200]):
        out, stats = running_cmvn(feats[cut], stats, norm_vars=True)
        pieces.append(out)
    assert torch.equal(torch.cat(pieces), whole) and torch.equal(stats, end)
    # frame t by the statistics of the prior and frames 0..t
    t = 37
    seen = torch.cat([feats[: t + 1].double()])
    count = 200 + t + 1
    mean = (prior[0, :5] + seen.sum(0)) / count
    var = (prior[1, :5] + seen.square().sum(0)) / count - mean.square()
    assert torch.allclose(whole[t].double(), (feats[t].double() - mean) / var.sqrt(), atol=1e-5)


def _wav_bytes(wave: np.ndarray, subtype: str, channels: int = 1, unknown: bool = False) -> bytes:
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    buffer = io.BytesIO()
    sf.write(buffer, data, RATE, format="WAV", subtype=subtype)
    raw = bytearray(buffer.getvalue())
    if unknown:  # a recorder's header: it did not know the length when it wrote it
        at = raw.index(b"data")
        raw[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFFF)
    return bytes(raw)


@pytest.mark.parametrize(
    "subtype,channels,unknown",
    [("PCM_16", 1, True), ("PCM_24", 2, False), ("FLOAT", 1, False), ("PCM_32", 1, True)],
)
def test_wav_stream_reads_what_soundfile_reads(subtype: str, channels: int, unknown: bool) -> None:
    wave = signal([("lo", 0.2), ("sil", 0.1), ("hi", 0.2)], seed=2) * 0.9
    data = _wav_bytes(wave, subtype, channels, unknown)
    rate, blocks = wav_stream(io.BytesIO(data), "pipe", block_samples=333)
    got = np.concatenate(list(blocks))
    want, _ = sf.read(io.BytesIO(_wav_bytes(wave, subtype, channels)), dtype="float32")
    want = want.mean(axis=1) if channels > 1 else want
    assert rate == RATE and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_wav_stream_problems_are_one_line() -> None:
    wave = signal([("lo", 0.2)], seed=2)
    data = _wav_bytes(wave, "PCM_16")
    for broken, message in [
        (b"RIFX" + data[4:], "pipe: not a WAV stream"),
        (data[:30], "pipe: the stream ended inside the WAV"),
        (data[:-101], "pipe: the stream ended 101 bytes before its WAV data did"),
    ]:
        with pytest.raises(AudioError, match=message):
            rate, blocks = wav_stream(io.BytesIO(broken), "pipe")
            list(blocks)


def _cli(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "asr", "transcribe", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
    )


def test_cli_online_file_and_stdin_stream(packages: dict[str, Path], tmp_path: Path) -> None:
    parts = long_parts(6.0)
    wave = signal(parts, seed=4)
    wav = write_wav(tmp_path / "talk.wav", wave)
    offline = load_model(packages["deltas_global"], precision="fp32").transcribe(wav)
    done = _cli(
        [
            str(packages["deltas_global"]),
            str(wav),
            "--online",
            "--precision",
            "fp32",
            "--format",
            "json",
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.decode().splitlines()]
    assert [r[3] for r in rows] == offline.text.split()
    assert all(r[0] == str(wav) for r in rows)
    assert [float(r[1]) for r in rows] == pytest.approx([w.start for w in offline.words], abs=0.006)
    assert "1 file transcribed online" in done.stderr.decode()
    assert '"decoder": "greedy, online"' in (tmp_path / "out" / "talk.json").read_text()
    piped = _cli(
        [str(packages["deltas_global"]), "-", "--online", "--precision", "fp32"],
        stdin=_wav_bytes(wave, "PCM_16", unknown=True),
    )
    assert piped.returncode == 0, piped.stderr
    words = [line.split("\t")[3] for line in piped.stdout.decode().splitlines()]
    assert words == offline.text.split()
    assert all(line.startswith("stdin\t") for line in piped.stdout.decode().splitlines())
    # a stream at another rate cannot be resampled as it arrives: one line
    other = io.BytesIO()
    sf.write(other, wave[::2], RATE // 2, format="WAV", subtype="PCM_16")
    slow = _cli([str(packages["word"]), "-", "--online"], stdin=other.getvalue())
    assert slow.returncode == 1
    assert slow.stderr.decode().splitlines()[0] == (
        "asr transcribe: error: stdin: 8000 Hz audio; online decoding of a stream needs the "
        "model's 16000 Hz (e.g. sox - -r 16000 -t wav -)"
    )


def test_bidirectional_models_and_offline_options_are_refused(
    packages: dict[str, Path], tmp_path: Path
) -> None:
    config = ModelConfig(input_dim=MEL_BINS, num_tokens=4, num_layers=1, hidden_size=4)
    features = FeatureConfig(kind="fbank", sample_rate=RATE, options={"num_mel_bins": MEL_BINS})
    bidirectional = tmp_path / "blstm.pt"
    save_package(
        ModelPackage(
            AcousticModel(config).state_dict(),
            config.to_dict(),
            ["<blk>", "a", "b", "c"],
            {**features.to_dict(), "options": {"num_mel_bins": MEL_BINS, "dither": 0.0}},
        ),
        bidirectional,
    )
    wav = write_wav(tmp_path / "x.wav", signal([("lo", 0.3)]))
    done = _cli([str(bidirectional), str(wav), "--online"])
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1
    assert "online decoding needs a forward-only model; this one is bidirectional" in lines[0]
    dithered = load_package(packages["word"])
    dithered.feature_config["options"]["dither"] = 1.0
    save_package(dithered, tmp_path / "dither.pt")
    with pytest.raises(ConfigError, match="needs dither 0"):
        OnlineRecognizer(load_network(tmp_path / "dither.pt"))
    done = _cli([str(packages["word"]), str(wav), "--online", "--nbest", "2", "--beam-size", "4"])
    assert done.returncode == 1 and done.stderr.decode().strip() == (
        "asr transcribe: error: online decoding is greedy with torch: --beam-size, --nbest do "
        "not apply"
    )
