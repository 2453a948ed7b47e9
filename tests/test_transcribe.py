"""asr.load_model / Recognizer, the transcript writers and ``asr transcribe``.

The model is a real AcousticModel package with hand-set weights, so that what it hears is
known: a one-layer tanh RNN (no recurrence) whose units detect a low (300 Hz), a middle
(1500 Hz) and a high (4000 Hz) tone in the log-mel features, and an output layer that makes
each tone a token and silence the blank. Word models say "hi", "ho", "yo"; the character model
says "a", "<space>", "b". Signals are tone bursts and quiet noise made in the test, so every
transcript and word time is known in advance.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import asr
import asr.decoding.vtln
import asr.transcribe.recognizer
from asr.cli import main
from asr.data.audio import read_sphere_header
from asr.decoding.timing import DEFAULT_END_EXTENSION, TimedUnit, extend_ends
from asr.errors import AudioError, ConfigError, PackageError
from asr.features.cmvn import compute_cmvn_stats
from asr.features.config import FeatureConfig, extract_features
from asr.nn.load import load_network
from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.package import ModelPackage, load_package, save_package
from asr.transcribe import load_model
from asr.transcribe.recognizer import Recognizer, Transcript
from asr.transcribe.writers import (
    CUE_MAX_SECONDS,
    FORMATS,
    LINE_MAX_CHARS,
    format_transcript,
    parse_formats,
    write_transcript,
)

RATE = 16000
TONES = {"lo": 300.0, "mid": 1500.0, "hi": 4000.0}
WORDS = {"lo": "hi", "mid": "ho", "hi": "yo"}  # what the word model says for each tone
MEL_BINS = 10
# mel bins each tone lights up, and thresholds on their mean log energy (tone ~24-28, quiet
# noise ~10-16: measured with these settings); with per-recording CMVN the mean is subtracted
# first, so the thresholds are lower
BINS = {"lo": (0, 1), "hi": (7, 8), "mid": (3, 4)}
THRESHOLDS = {
    "none": {"lo": 17.0, "hi": 22.0, "mid": 19.0},
    "utterance": {"lo": 5.0, "hi": 6.0, "mid": 6.0},
}


def make_package(path: Path, unit: str = "word", cmvn: str = "none", **overrides) -> Path:
    """A tone-detector package (see the module docstring); skip 2 so that frames are 20 ms."""
    features = FeatureConfig(
        kind="fbank",
        sample_rate=RATE,
        options={"num_mel_bins": MEL_BINS, "dither": 0.0},
        cmvn=cmvn,
    )
    tokens = ["<blk>", "hi", "ho", "yo"] if unit == "word" else ["<blk>", "a", "<space>", "b"]
    config = ModelConfig(
        input_dim=MEL_BINS,
        num_tokens=4,
        cell="rnn",
        num_layers=1,
        hidden_size=3,
        bidirectional=False,
        stack=2,
        skip=2,
    )
    model = AcousticModel(config)
    state = {name: torch.zeros_like(value) for name, value in model.state_dict().items()}
    thresholds = THRESHOLDS[cmvn]
    # hidden unit h = tanh(mean of the tone's bins - threshold), from the first stacked frame
    for unit_index, tone in enumerate(("lo", "mid", "hi")):
        for b in BINS[tone]:
            state["layers.0.fwd.weight_ih_l0"][unit_index, b] = 1.0 / len(BINS[tone])
        state["layers.0.fwd.bias_ih_l0"][unit_index] = -thresholds[tone]
    # token i+1 <- hidden unit i; the blank's logit stays 0, so silence (all h = -1) is blank
    for unit_index in range(3):
        state["output.weight"][unit_index + 1, unit_index] = 6.0
    model.load_state_dict(state)
    package = ModelPackage(
        state_dict=model.state_dict(),
        model_config=config.to_dict(),
        tokens=tokens,
        feature_config=features.to_dict(),
        extra={"unit": unit, **overrides},
    )
    save_package(package, path)
    return path


def signal(parts: list[tuple[str, float]], gain: float = 1.0, seed: int = 0) -> np.ndarray:
    """Concatenate ("lo"|"mid"|"hi"|"sil", seconds) pieces over quiet noise."""
    rng = np.random.default_rng(seed)
    pieces = []
    for kind, seconds in parts:
        n = int(round(seconds * RATE))
        piece = 0.001 * rng.standard_normal(n)
        if kind != "sil":
            piece += 0.3 * np.sin(2 * np.pi * TONES[kind] * np.arange(n) / RATE)
        pieces.append(piece)
    return (gain * np.concatenate(pieces)).astype(np.float32)


def onsets(parts: list[tuple[str, float]]) -> list[tuple[str, float, float]]:
    """(word, start, end) of each tone in ``parts``."""
    out, t = [], 0.0
    for kind, seconds in parts:
        if kind != "sil":
            out.append((WORDS[kind], t, t + seconds))
        t += seconds
    return out


# tolerance for word times: a 25 ms frame, 20 ms output frames and a partly covered frame
TIME_TOLERANCE = 0.06

SHORT = [
    ("sil", 0.3),
    ("lo", 0.3),
    ("sil", 0.3),
    ("hi", 0.4),
    ("sil", 0.2),
    ("mid", 0.3),
    ("sil", 0.3),
]


def long_parts(seconds: float = 14.0) -> list[tuple[str, float]]:
    """Words of 0.3-0.5 s and pauses of 0.3-0.7 s, cycling through the tones."""
    rng = np.random.default_rng(7)
    parts, total, kinds = [("sil", 0.4)], 0.4, ["lo", "mid", "hi"]
    i = 0
    while total < seconds:
        word, pause = float(rng.uniform(0.3, 0.5)), float(rng.uniform(0.3, 0.7))
        parts += [(kinds[i % 3], round(word, 3)), ("sil", round(pause, 3))]
        total += word + pause
        i += 1
    return parts


def write_wav(path: Path, wave: np.ndarray, rate: int = RATE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wave, rate)
    return path


def check_words(words: list[TimedUnit], expected: list[tuple[str, float, float]]) -> None:
    """The words and their times; the true ends moved as asr moves every CTC end (towards the
    next start: see asr.decoding.timing.extend_ends), since this model's spans are exact."""
    assert [w.text for w in words] == [e[0] for e in expected]
    moved = extend_ends([TimedUnit(*e, 1.0) for e in expected], DEFAULT_END_EXTENSION)
    expected = [(u.text, u.start, u.end) for u in moved]
    for word, (_, start, end) in zip(words, expected, strict=True):
        assert abs(word.start - start) <= TIME_TOLERANCE, (word, start)
        assert abs(word.end - end) <= TIME_TOLERANCE, (word, end)
        assert 0.5 < word.confidence <= 1.0


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_package(tmp_path_factory.mktemp("pkg") / "tones.pt")


@pytest.fixture(scope="module")
def recognizer(package: Path) -> Recognizer:
    return load_model(package)


# --- the Python API ------------------------------------------------------------------------


def test_import_asr_stays_light_and_load_model_is_lazy(package: Path) -> None:
    code = (
        "import sys, asr; assert 'torch' not in sys.modules, 'import asr pulled in torch'; "
        f"r = asr.load_model({str(package)!r}); print(type(r).__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Recognizer"
    assert asr.load_model is load_model


def test_waveform_numpy_torch_and_file_at_another_rate(recognizer: Recognizer, tmp_path) -> None:
    wave = signal(SHORT)
    expected = onsets(SHORT)
    result = recognizer.transcribe(wave, sample_rate=RATE)
    assert result.text == "hi yo ho"
    assert result.unit == "word" and result.words == result.units
    assert result.duration == pytest.approx(len(wave) / RATE)
    assert result.source == "<waveform>"
    check_words(result.words, expected)
    assert recognizer.transcribe(torch.from_numpy(wave), RATE).text == "hi yo ho"
    # a 22.05 kHz file is resampled to the model's 16 kHz
    resampled = np.interp(np.arange(0, len(wave), RATE / 22050), np.arange(len(wave)), wave)
    path = write_wav(tmp_path / "x.wav", resampled.astype(np.float32), 22050)
    from_file = recognizer.transcribe(path)
    assert from_file.source == str(path)
    check_words(from_file.words, expected)
    # a 8 kHz waveform (the high tone is above its Nyquist frequency: gone)
    low_rate = recognizer.transcribe(wave[::2].copy(), sample_rate=8000)
    assert low_rate.text == "hi ho"
    with pytest.raises(AudioError, match="sample_rate"):
        recognizer.transcribe(wave)
    with pytest.raises(AudioError, match="1-D"):
        recognizer.transcribe(np.stack([wave, wave]), sample_rate=RATE)


def test_character_model_groups_letters_into_words(tmp_path) -> None:
    recognizer = load_model(make_package(tmp_path / "char.pt", unit="char"))
    parts = [("sil", 0.3), ("lo", 0.3), ("hi", 0.3), ("mid", 0.3), ("lo", 0.4), ("sil", 0.3)]
    result = recognizer.transcribe(signal(parts), RATE)
    assert result.unit == "char"
    assert result.text == "ab a"
    assert [u.text for u in result.units] == ["a", "b", "a"]  # <space> only separates
    first, second = result.words
    assert first.text == "ab" and abs(first.start - 0.3) <= TIME_TOLERANCE
    # its true end 0.9 moved halfway to the next word (1.2), at most DEFAULT_END_EXTENSION
    assert abs(first.end - (0.9 + min(0.15, DEFAULT_END_EXTENSION))) <= TIME_TOLERANCE
    assert second.text == "a" and abs(second.start - 1.2) <= TIME_TOLERANCE


def test_transcribe_many_keeps_order_reports_bad_inputs_and_batching_changes_nothing(
    recognizer: Recognizer, tmp_path
) -> None:
    good = [
        signal([("sil", 0.2), ("lo", 0.3), ("sil", 0.2)], seed=1),
        signal(SHORT, seed=2),
        signal([("sil", 0.1), ("hi", 0.3), ("sil", 0.5), ("hi", 0.3), ("sil", 0.1)], seed=3),
    ]
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    inputs = [(good[0], RATE), str(empty), (good[1], RATE), (good[2], RATE)]
    # one second per batch: every input gets a batch of its own; 100: all in one
    for batch_seconds in (1.0, 100.0):
        results = list(recognizer.transcribe_many(inputs, batch_seconds=batch_seconds))
        assert [r[0] is i for r, i in zip(results, inputs, strict=True)] == [True] * 4
        assert isinstance(results[1][1], AudioError) and "empty.wav" in str(results[1][1])
        texts = [r[1].text for r in results if isinstance(r[1], Transcript)]
        assert texts == ["hi", "hi yo ho", "yo yo"]
        alone = [recognizer.transcribe(w, RATE) for w in good]
        batched = [r[1] for r in results if isinstance(r[1], Transcript)]
        for a, b in zip(alone, batched, strict=True):
            assert a.words == b.words  # padding in a batch does not change any result


def test_long_recording_goes_through_windows_with_absolute_times(package: Path) -> None:
    parts = long_parts(14.0)
    wave = signal(parts, seed=5)
    expected = onsets(parts)
    windowed = load_model(package, max_window_seconds=3.0, overlap_seconds=0.6)
    calls: list[list[int]] = []
    network = windowed._network

    def spy(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append([f.shape[0] for f in feats])
        return network(feats)

    windowed._network = spy  # type: ignore[method-assign]
    result = windowed.transcribe(wave, RATE)
    # the windows go through the network together (300 s of audio per batch by default)
    assert len(calls) == 1 and len(calls[0]) >= 5
    assert max(calls[0]) <= 300  # windows of at most 3 s (10 ms frames)
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    check_words(result.words, expected)  # none lost or doubled at the cuts, times absolute
    assert result.duration == pytest.approx(len(wave) / RATE)
    whole = load_model(package, max_window_seconds=60.0).transcribe(wave, RATE)
    assert whole.text == result.text
    # one window per batch (batch_seconds = the window) gives the same words and times
    calls.clear()
    ((_, alone),) = list(windowed.transcribe_many([(wave, RATE)], batch_seconds=3.0))
    assert len(calls) >= 5 and all(len(c) == 1 for c in calls)
    for ours, theirs in ((alone.words, result.words), (alone.units, result.units)):
        assert [(u.text, u.start, u.end) for u in ours] == [
            (u.text, u.start, u.end) for u in theirs
        ]
        assert [u.confidence for u in ours] == pytest.approx([u.confidence for u in theirs])


def _shifted(parts: list[tuple[str, float]], factor: float, seed: int = 0) -> np.ndarray:
    """``signal(parts)`` with every tone's frequency times ``factor`` (another "voice")."""
    saved = dict(TONES)
    TONES.update({kind: hz * factor for kind, hz in saved.items()})
    try:
        return signal(parts, seed=seed)
    finally:
        TONES.update(saved)


def test_vtln_warps_each_recording_back_towards_the_tones_the_model_knows(package) -> None:
    grid = asr.decoding.vtln.parse_warp_grid("0.80:1.25:0.025")
    recognizer = load_model(package, vtln=grid)
    plain = load_model(package)
    # the warped bin at c reads the spectrum at c / factor: tones moved up need a factor
    # below 1, tones moved down one above 1, and the model's own tones none
    for shift, sign in ((1.0, 0), (1.15, -1), (0.87, 1)):
        wave = _shifted(SHORT, shift)
        result = recognizer.transcribe(wave, sample_rate=RATE)
        assert result.warp in grid
        assert np.sign(round(result.warp - 1.0, 6)) == sign, (shift, result.warp)
        assert result.text == "hi yo ho"
        assert result.to_dict()["vtln_warp"] == result.warp
        assert Transcript.from_dict(result.to_dict()).warp == result.warp
        assert plain.transcribe(wave, sample_rate=RATE).warp is None
    assert "vtln_warp" not in plain.transcribe(_shifted(SHORT, 1.0), RATE).to_dict()
    # a long recording (windows) gets one factor for all its windows
    long_wave = _shifted(long_parts(14.0), 1.15)
    windowed = load_model(package, vtln=grid, max_window_seconds=4.0, overlap_seconds=0.5)
    assert windowed.transcribe(long_wave, sample_rate=RATE).warp < 1.0
    # MFCC packages cannot be warped, and online decoding has no whole recording to choose on
    mfcc = load_package(package)
    mfcc.feature_config = {**mfcc.feature_config, "kind": "mfcc"}
    mfcc.feature_config["options"] = {**mfcc.feature_config["options"], "num_ceps": MEL_BINS}
    save_package(mfcc, package.parent / "mfcc.pt")
    with pytest.raises(ConfigError, match="VTLN: VTLP warps log-mel filterbanks; these features"):
        load_model(package.parent / "mfcc.pt", vtln=grid)
    with pytest.raises(ConfigError, match="online decoding has only what has arrived"):
        Recognizer(load_network(package), vtln=grid, running_cmvn=True)


def test_per_recording_cmvn_ignores_gain_and_windows_share_the_stats(tmp_path) -> None:
    # thresholds made for mean-normalised features: without CMVN this model hears "hi"
    # everywhere, so these transcripts show that CMVN ran, over the whole recording
    path = make_package(tmp_path / "cmvn.pt", cmvn="utterance")
    parts = [("sil", 0.4), ("lo", 0.4), ("sil", 0.4), ("hi", 0.4)] * 6 + [("sil", 0.4)]
    expected = onsets(parts)
    short = load_model(path, max_window_seconds=60.0)
    loud = short.transcribe(signal(parts, gain=1.0), RATE)
    quiet = short.transcribe(signal(parts, gain=0.05), RATE)
    check_words(loud.words, expected)
    assert [w.text for w in quiet.words] == [w.text for w in loud.words]
    # in windows, every window is normalised with the same stats: those of the whole recording
    windowed = load_model(path, max_window_seconds=3.0, overlap_seconds=0.6)
    seen: list[torch.Tensor] = []
    normalize = windowed._normalize

    def spy(raw: torch.Tensor, stats: torch.Tensor | None) -> torch.Tensor:
        seen.append(stats)
        return normalize(raw, stats)

    windowed._normalize = spy  # type: ignore[method-assign]
    wave = signal(parts)
    check_words(windowed.transcribe(wave, RATE).words, expected)
    assert len(seen) >= 4 and all(s is seen[0] for s in seen)
    whole = compute_cmvn_stats(extract_features(wave, RATE, windowed.feature_config))
    frames = float(whole[0, -1])
    assert float(seen[0][0, -1]) == pytest.approx(frames, abs=len(seen))  # each frame once
    mean = seen[0][0, :-1] / seen[0][0, -1]
    assert torch.allclose(mean, whole[0, :-1] / frames, atol=0.05)


def test_global_cmvn_without_stats_and_bad_packages_are_one_line(tmp_path) -> None:
    with pytest.raises(PackageError, match="global CMVN"):
        load_model(_global(tmp_path))
    (tmp_path / "text.pt").write_text("not a model\n")
    with pytest.raises(PackageError, match="not a loadable model file"):
        load_model(tmp_path / "text.pt")


def _global(tmp_path: Path) -> Path:
    path = make_package(tmp_path / "none.pt")
    payload = torch.load(path, weights_only=True)
    payload["feature_config"]["cmvn"] = "global"
    torch.save(payload, tmp_path / "global.pt")
    return tmp_path / "global.pt"


# --- writers -------------------------------------------------------------------------------


def sample_transcript() -> Transcript:
    """Words with a pause, a long run (> 7 s, > 84 characters) and times past one hour."""
    words, t = [], 0.5
    for i in range(40):
        text = ["alpha", "beta", "gamma", "delta", "epsilon"][i % 5]
        if i == 10:
            t += 2.0  # a pause: a new cue
        if i == 30:
            t = 3600.0 + 61.25  # into the second hour
        words.append(TimedUnit(text, t, t + 0.3, 0.5 + i / 100))
        t += 0.4
    return Transcript("a b.wav", " ".join(w.text for w in words), words, list(words), 3700.0)


SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d\d\d)"
VTT_TIME = r"(\d\d):(\d\d):(\d\d)\.(\d\d\d)"


def _seconds(match: tuple[str, ...]) -> float:
    h, m, s, ms = (int(x) for x in match)
    return h * 3600 + m * 60 + s + ms / 1000


def _check_cues(cues: list[tuple[float, float, list[str]]], transcript: Transcript) -> None:
    assert len(cues) >= 4  # the pause, the characters and the hour jump all split
    previous_end = 0.0
    for start, end, lines in cues:
        assert previous_end <= start < end
        assert end - start <= CUE_MAX_SECONDS + 1e-6
        assert 1 <= len(lines) <= 2 and all(len(line) <= LINE_MAX_CHARS for line in lines)
        previous_end = end
    assert " ".join(" ".join(lines) for _, _, lines in cues) == transcript.text
    assert any(abs(c[0] - 3661.25) < 1e-3 for c in cues)  # the jump starts a cue


def test_srt_and_vtt_syntax_and_times() -> None:
    transcript = sample_transcript()
    srt = format_transcript(transcript, "srt")
    blocks = srt.strip("\n").split("\n\n")
    cues = []
    for number, block in enumerate(blocks, 1):
        lines = block.split("\n")
        assert lines[0] == str(number)
        match = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", lines[1])
        assert match, lines[1]
        groups = match.groups()
        cues.append((_seconds(groups[:4]), _seconds(groups[4:]), lines[2:]))
    _check_cues(cues, transcript)
    assert "01:01:01,250 --> " in srt  # hours, minutes, seconds, milliseconds

    vtt = format_transcript(transcript, "vtt")
    assert vtt.startswith("WEBVTT\n\n")
    vtt_cues = []
    for block in vtt.strip("\n").split("\n\n")[1:]:
        lines = block.split("\n")
        match = re.fullmatch(f"{VTT_TIME} --> {VTT_TIME}", lines[0])
        assert match, lines[0]
        groups = match.groups()
        vtt_cues.append((_seconds(groups[:4]), _seconds(groups[4:]), lines[1:]))
    assert vtt_cues == cues


def test_tsv_ctm_txt_and_json_round_trip(tmp_path) -> None:
    transcript = sample_transcript()
    tsv = format_transcript(transcript, "tsv").splitlines()
    assert tsv[0] == "start\tend\ttext"
    rows = [line.split("\t") for line in tsv[1:]]
    assert all(len(r) == 3 and r[0].isdigit() and r[1].isdigit() for r in rows)
    assert int(rows[0][0]) == 500 and int(rows[-1][1]) == round((transcript.words[-1].end) * 1000)
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)

    ctm = format_transcript(transcript, "ctm", stem="a b").splitlines()
    assert len(ctm) == len(transcript.words)
    for line, word in zip(ctm, transcript.words, strict=True):
        stem, channel, start, dur, text, conf = line.split(" ")
        assert (stem, channel, text) == ("a_b", "1", word.text)
        assert float(start) == pytest.approx(word.start, abs=5e-4)
        assert float(start) + float(dur) == pytest.approx(word.end, abs=1e-3)
        assert float(conf) == pytest.approx(word.confidence, abs=5e-4)

    paths = write_transcript(transcript, tmp_path / "out", "sub/x", FORMATS)
    assert [p.name for p in paths] == [f"x.{f}" for f in FORMATS]
    assert (tmp_path / "out" / "sub" / "x.txt").read_text() == transcript.text + "\n"
    data = json.loads((tmp_path / "out" / "sub" / "x.json").read_text())
    back = Transcript.from_dict(data)
    assert back.to_dict() == transcript.to_dict()
    assert back.text == transcript.text and len(back.words) == 40
    assert back.words[7].start == pytest.approx(transcript.words[7].start, abs=1e-3)
    assert sorted(p.name for p in (tmp_path / "out" / "sub").iterdir()) == sorted(
        f"x.{f}" for f in FORMATS
    )  # no temporary files left


def test_empty_transcript_and_format_names(tmp_path) -> None:
    empty = Transcript("e.wav", "", [], [], 1.0)
    assert format_transcript(empty, "srt") == ""
    assert format_transcript(empty, "vtt") == "WEBVTT\n"
    assert format_transcript(empty, "tsv") == "start\tend\ttext\n"
    assert format_transcript(empty, "ctm") == ""
    assert parse_formats("all") == list(FORMATS)
    assert parse_formats("vtt,srt") == ["srt", "vtt"]
    with pytest.raises(Exception, match="unknown output format 'doc'"):
        parse_formats("txt,doc")


# --- the command line ----------------------------------------------------------------------


def run_cli(capsys, *args: str) -> tuple[int, list[str], list[str]]:
    code = main(["transcribe", *args, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err.splitlines()


def test_cli_files_directories_globs_and_stdin(
    package: Path, tmp_path, capsys, monkeypatch
) -> None:
    audio = tmp_path / "audio"
    one = write_wav(audio / "one.wav", signal([("sil", 0.2), ("lo", 0.3), ("sil", 0.2)]))
    two = write_wav(audio / "deep" / "er" / "two.flac", signal([("sil", 0.2), ("hi", 0.3)]))
    (audio / "notes.txt").write_text("not audio, not picked up from a directory\n")
    three = write_wav(tmp_path / "other" / "three.wav", signal([("mid", 0.3), ("sil", 0.2)]))

    code, out, err = run_cli(capsys, str(package), str(audio))
    assert code == 0, err
    assert out == [f"{two}\tyo", f"{one}\thi"]  # recursive, sorted, notes.txt skipped
    assert "2 files transcribed" in err[-1]

    code, out, _ = run_cli(capsys, str(package), str(tmp_path / "*" / "t*.wav"), str(one))
    assert code == 0 and out == [f"{three}\tho", f"{one}\thi"]
    code, out, _ = run_cli(capsys, str(package), str(tmp_path / "**" / "*.flac"))
    assert out == [f"{two}\tyo"]

    data = io.BytesIO()
    sf.write(data, signal(SHORT), RATE, format="FLAC")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.getvalue())))
    code, out, err = run_cli(capsys, str(package), "-", "--format", "json", "--output-dir",
                             str(tmp_path / "out"))  # fmt: skip
    assert code == 0, err
    assert out == ["stdin\thi yo ho"]
    saved = json.loads((tmp_path / "out" / "stdin.json").read_text())
    assert saved["source"] == "stdin" and saved["text"] == "hi yo ho"
    assert not list(Path(tempfile.gettempdir()).glob("asr-stdin-*"))  # the temporary copy is gone


def test_cli_writes_every_format_with_directory_stems(package: Path, tmp_path, capsys) -> None:
    audio = tmp_path / "audio"
    write_wav(audio / "a" / "x.wav", signal(SHORT))
    write_wav(audio / "b" / "x.wav", signal([("sil", 0.2), ("lo", 0.3)]))
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, str(package), str(audio), "--format", "all",
                             "--output-dir", str(out_dir))  # fmt: skip
    assert code == 0, err
    assert len(out) == 2
    for stem in ("a/x", "b/x"):
        for fmt in FORMATS:
            assert (out_dir / f"{stem}.{fmt}").is_file()
    assert (out_dir / "a" / "x.txt").read_text() == "hi yo ho\n"
    assert (out_dir / "a" / "x.ctm").read_text().split("\n")[0].startswith("x 1 0.")
    # --output-dir alone writes txt
    code, _, _ = run_cli(capsys, str(package), str(audio / "b" / "x.wav"), "--output-dir",
                         str(tmp_path / "txt"))  # fmt: skip
    assert code == 0 and [p.name for p in (tmp_path / "txt").iterdir()] == ["x.txt"]


def test_cli_long_input_in_windows(package: Path, tmp_path, capsys) -> None:
    parts = long_parts(12.0)
    path = write_wav(tmp_path / "long.wav", signal(parts, seed=9))
    code, out, err = run_cli(capsys, str(package), str(path), "--max-window-seconds", "2.5",
                             "--format", "ctm", "--output-dir", str(tmp_path))  # fmt: skip
    assert code == 0, err
    rows = [line.split() for line in (tmp_path / "long.ctm").read_text().splitlines()]
    words = [TimedUnit(r[4], float(r[2]), float(r[2]) + float(r[3]), float(r[5])) for r in rows]
    assert [w.start for w in words] == sorted(w.start for w in words)
    check_words(words, onsets(parts))
    assert out == [f"{path}\t" + " ".join(w.text for w in words)]


def test_cli_bad_inputs_are_one_line_each_and_leave_no_files(
    package: Path, tmp_path, capsys
) -> None:
    good = write_wav(tmp_path / "in" / "good.wav", signal(SHORT))
    empty = tmp_path / "in" / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "in" / "text.wav"
    text.write_text("this is a text file, not audio\n" * 20)
    missing = tmp_path / "in" / "missing.wav"
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, str(package), str(empty), str(good), str(text),
                             str(missing), str(tmp_path / "nothing*.wav"), "--format", "all",
                             "--output-dir", str(out_dir))  # fmt: skip
    assert code == 1
    assert out == [f"{good}\thi yo ho"]
    errors = [line for line in err if line.startswith("asr transcribe: error:")]
    assert len(errors) == 4, err
    for bad in (empty, text, missing, "nothing*.wav"):
        assert sum(str(bad) in line for line in errors) == 1, (bad, errors)
    assert not any("Traceback" in line for line in err)
    assert "1 file transcribed" in err[-1] and "4 failed" in err[-1]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"good.{f}" for f in FORMATS)


def test_cli_bad_model_files_are_one_clear_line(tmp_path, capsys) -> None:
    audio = write_wav(tmp_path / "x.wav", signal(SHORT))
    (tmp_path / "notes.pt").write_text("hello\n")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    newer = make_package(tmp_path / "newer.pt")
    payload = torch.load(newer, weights_only=True)
    payload["version"] = 99
    torch.save(payload, newer)
    for name, message in (
        ("notes.pt", "not a loadable model file"),
        ("other.pt", "not an asr model package"),
        ("newer.pt", "version"),
        ("absent.pt", "not found"),
    ):
        code, out, err = run_cli(capsys, str(tmp_path / name), str(audio))
        assert code == 1 and out == []
        assert len(err) == 1 and err[0].startswith("asr transcribe: error:"), err
        assert name in err[0] and message in err[0]


@pytest.mark.integration
def test_cli_reads_timit_sphere_files(
    timit_dir: Path, package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The TIMIT sample's .WAV files are NIST SPHERE: a directory search finds them by their
    # upper-case extension, and every one is read at its full length.
    speaker = next(p for p in sorted(timit_dir.glob("TRAIN/DR*/*")) if p.is_dir())
    out = tmp_path / "out"
    argv = ["transcribe", str(package), str(speaker), "--format", "json", "--no-progress"]
    assert main([*argv, "--output-dir", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    wavs = sorted(speaker.glob("*.WAV"))
    assert len(lines) == len(wavs) == 10
    for wav in wavs:
        result = json.loads((out / f"{wav.stem}.json").read_text(encoding="utf-8"))
        samples = int(read_sphere_header(wav)["sample_count"])
        assert result["duration"] == pytest.approx(samples / 16000, abs=1e-3)


# --- output names, repeated inputs, odd names, unreadable inputs, unwritable outputs --------

LO = [("sil", 0.2), ("lo", 0.3), ("sil", 0.2)]
HI = [("sil", 0.2), ("hi", 0.3), ("sil", 0.2)]
MID = [("sil", 0.2), ("mid", 0.3), ("sil", 0.2)]


def test_cli_inputs_of_the_same_name_never_share_an_output(package: Path, tmp_path, capsys):
    # x-2.wav is also the name the old "-2" suffix gave the second x.wav: three inputs, three
    # files, each holding its own input's transcript
    one = write_wav(tmp_path / "sub1" / "x.wav", signal(LO))
    two = write_wav(tmp_path / "sub2" / "x.wav", signal(HI))
    three = write_wav(tmp_path / "c" / "x-2.wav", signal(MID))
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, str(package), str(one), str(two), str(three),
                             "--output-dir", str(out_dir))  # fmt: skip
    assert code == 0, err
    assert out == [f"{one}\thi", f"{two}\tyo", f"{three}\tho"]
    written = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    assert written == ["sub1/x.txt", "sub2/x.txt", "x-2.txt"]
    assert (out_dir / "sub1" / "x.txt").read_text() == "hi\n"
    assert (out_dir / "sub2" / "x.txt").read_text() == "yo\n"
    assert (out_dir / "x-2.txt").read_text() == "ho\n"
    # only the extension differs: it stays in the names
    flac = write_wav(tmp_path / "sub1" / "x.flac", signal(MID))
    code, _, err = run_cli(capsys, str(package), str(one), str(flac), "--output-dir",
                           str(tmp_path / "o2"))  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "o2" / "x.wav.txt").read_text() == "hi\n"
    assert (tmp_path / "o2" / "x.flac.txt").read_text() == "ho\n"


def test_cli_an_input_given_twice_is_transcribed_once(package: Path, tmp_path, capsys) -> None:
    one = write_wav(tmp_path / "a" / "x.wav", signal(LO))
    other = write_wav(tmp_path / "b" / "y.wav", signal(HI))
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, str(package), str(one), str(other),
                             str(tmp_path / "a" / "." / "x.wav"), str(tmp_path / "a"),
                             "--output-dir", str(out_dir))  # fmt: skip
    assert code == 0, err
    assert out == [f"{one}\thi", f"{other}\tyo"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["x.txt", "y.txt"]
    assert "2 files transcribed" in err[-1] and "2 repeated inputs skipped" in err[-1]


def test_assign_stems_is_collision_free_and_deterministic(tmp_path) -> None:
    from asr.transcribe.writers import assign_stems

    def stems(inputs: list[tuple[Path | str, str]]) -> list[str]:
        pairs, repeats = assign_stems([(str(path), stem) for path, stem in inputs])
        assert repeats == 0 and [p for p, _ in pairs] == [str(p) for p, _ in inputs]
        return [stem for _, stem in pairs]

    t = tmp_path
    # dir d searched (stem sub1/x), files p/sub1/x.wav and p/sub2/x.wav given (both x), and a
    # searched f/sub1/x-2.wav: the renamed p/sub1/x meets d's, and -2 is f's, so it gets -3
    inputs = [(t / "d/sub1/x.wav", "sub1/x"), (t / "p/sub1/x.wav", "x"),
              (t / "p/sub2/x.wav", "x"), (t / "f/sub1/x-2.wav", "sub1/x-2")]  # fmt: skip
    assert stems(inputs) == ["sub1/x", "sub1/x-3", "sub2/x", "sub1/x-2"]
    assert stems(inputs) == stems(inputs)
    # X and x are one file on a case-insensitive file system; stdin.wav keeps its extension
    # next to stdin's "stdin"
    inputs = [
        (t / "a/X.wav", "X"),
        (t / "b/x.wav", "x"),
        ("-", "stdin"),
        (t / "stdin.wav", "stdin"),
    ]
    assert stems(inputs) == ["a/X", "b/x", "stdin", "stdin.wav"]


def test_cli_a_name_with_a_newline_or_tab_stays_on_one_line(
    package: Path, tmp_path, capsys
) -> None:
    odd = write_wav(tmp_path / "two\nlines\tand\\.wav", signal(LO))
    bad = tmp_path / "bad\nname.wav"
    bad.write_bytes(b"not audio at all" * 10)
    code, out, err = run_cli(capsys, str(package), str(odd), str(bad), "--output-dir",
                             str(tmp_path / "out"))  # fmt: skip
    assert code == 1
    assert out == [f"{tmp_path}/two\\nlines\\tand\\\\.wav\thi"]
    errors = [line for line in err if "error" in line]
    assert len(errors) == 1 and f"{tmp_path}/bad\\nname.wav" in errors[0], err
    # the file keeps the real name
    assert (tmp_path / "out" / "two\nlines\tand\\.txt").read_text() == "hi\n"


def test_cli_an_unreadable_input_is_one_line_and_the_rest_go_on(
    package: Path, tmp_path, capsys, monkeypatch
) -> None:
    first = write_wav(tmp_path / "first.wav", signal(LO))
    locked = write_wav(tmp_path / "locked.wav", signal(MID))
    last = write_wav(tmp_path / "last.wav", signal(HI))
    real = asr.transcribe.recognizer.load_audio

    def load(path, rate=None):
        if str(path) == str(locked):  # as open() fails on a file without read permission
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, rate)

    # the OS error raised where the read happens (tests/test_transcribe_faults.py also makes a
    # real unreadable file, as root too)
    monkeypatch.setattr(asr.transcribe.recognizer, "load_audio", load)
    code, out, err = run_cli(capsys, str(package), str(first), str(locked), str(last),
                             "--output-dir", str(tmp_path / "out"))  # fmt: skip
    assert code == 1
    assert out == [f"{first}\thi", f"{last}\tyo"]
    assert err[0] == f"asr transcribe: error: {locked}: cannot read (Permission denied)"
    assert "2 files transcribed" in err[-1] and "1 failed" in err[-1] and len(err) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["first.txt", "last.txt"]


def test_cli_an_output_folder_that_cannot_be_made_is_one_line(
    package: Path, tmp_path, capsys
) -> None:
    audio = write_wav(tmp_path / "x.wav", signal(LO))
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should be\n")
    for out_dir in (blocker, blocker / "out"):
        code, out, err = run_cli(capsys, str(package), str(audio), "--output-dir", str(out_dir))
        assert code == 1 and out == [] and len(err) == 1, err
        assert err[0].startswith(f"asr transcribe: error: {out_dir}: cannot create the output")


def test_stale_temp_files_of_the_outputs_are_removed(package: Path, tmp_path, capsys) -> None:
    from asr.transcribe.writers import remove_stale_temps

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    stale = [out_dir / ".x.txt.k2_9ab0q.tmp", out_dir / ".x.json.abcdefgh.tmp"]
    others = [out_dir / ".y.txt.abcdefgh.tmp", out_dir / ".x.txt.notours.tmp", out_dir / "x.tmp"]
    for path in stale + others:
        path.write_text("half a file\n")
    assert remove_stale_temps(out_dir / "x.txt") == [stale[0]]
    audio = write_wav(tmp_path / "x.wav", signal(LO))
    code, _, err = run_cli(capsys, str(package), str(audio), "--format", "txt,json",
                           "--output-dir", str(out_dir))  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        ["x.txt", "x.json"] + [p.name for p in others]
    )
