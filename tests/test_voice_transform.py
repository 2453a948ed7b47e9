"""Voice transformation at synthesis time: formants scaled, tempo and pitch kept.

The same tiny flite corpus is made with and without ``train_vocal_tract``; because the factor
comes from its own generator, every utterance has the same sentence, voice and prosody in both,
so the two renditions can be compared utterance by utterance.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from asr.corpora.synthetic import corpus as synth
from asr.data.datadir import DataDir

FACTOR = 1.15


def _corpus(root: Path, vocal_tract: tuple[float, float]) -> DataDir:
    config = synth.SynthConfig(hours=0.01, dev_utts=2, test_utts=2, seed=0, engines=["flite"],
                               train_speed=(1.0, 1.0), train_vocal_tract=vocal_tract)  # fmt: skip
    synth.prepare_synth(root, config, jobs=1, progress=False)
    return DataDir.load(root / "train")


def _ltas(wave: np.ndarray) -> np.ndarray:
    """Long-term average log spectrum of the loud frames (512-point FFT)."""
    frames = np.lib.stride_tricks.sliding_window_view(wave, 512)[::160] * np.hanning(512)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    energy = power.sum(axis=1)
    return np.log(power[energy > 0.1 * energy.max()].mean(axis=0) + 1e-12)


def _spectral_scale(plain: np.ndarray, scaled: np.ndarray, rate: int) -> float:
    """The factor s for which ``scaled``'s spectrum best matches ``plain``'s stretched by s."""
    freqs = np.fft.rfftfreq(512, 1.0 / rate)
    band = (freqs > 200) & (freqs < 5000)
    candidates = np.arange(0.8, 1.3, 0.005)
    fits = [np.corrcoef(np.interp(freqs[band] / s, freqs, plain), scaled[band])[0, 1]
            for s in candidates]  # fmt: skip
    return float(candidates[int(np.argmax(fits))])


def _median_f0(wave: np.ndarray, rate: int) -> float:
    """Median F0 of the loud, clearly periodic frames (autocorrelation, 70-400 Hz)."""
    frames = np.lib.stride_tricks.sliding_window_view(wave, 640)[::160]
    energy = (frames**2).sum(axis=1)
    f0 = []
    for frame in frames[energy > 0.2 * energy.max()]:
        frame = frame - frame.mean()
        ac = np.correlate(frame, frame, "full")[639:]
        lo, hi = rate // 400, rate // 70
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            f0.append(rate / lag)
    return float(np.median(f0))


def test_vocal_tract_scaling_moves_formants_and_keeps_tempo_and_pitch(tmp_path: Path) -> None:
    usable, missing = synth.available_engines(["flite"])
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"flite missing: {missing}")
        pytest.skip(f"flite missing: {missing}")
    plain = _corpus(tmp_path / "plain", (1.0, 1.0))
    scaled = _corpus(tmp_path / "scaled", (FACTOR, FACTOR))
    assert sorted(plain.utt2spk) == sorted(scaled.utt2spk)
    assert plain.text == scaled.text
    voices = dict(
        line.split(" ", 1) for line in (tmp_path / "scaled" / "train" / "utt2voice").read_text()
        .splitlines()
    )  # fmt: skip
    scales, durations, pitches = [], [], []
    for utt in sorted(plain.utt2spk):
        assert f"vtl={FACTOR}" in voices[utt]
        a, rate = plain.load_audio(utt)
        b, _ = scaled.load_audio(utt)
        durations.append(len(b) / len(a))
        scales.append(_spectral_scale(_ltas(a), _ltas(b), rate))
        if not voices[utt].startswith("flite:rms"):  # rms cannot change its pitch
            pitches.append(_median_f0(b, rate) / _median_f0(a, rate))
    assert len(scales) >= 5 and len(pitches) >= 3
    assert np.median(scales) == pytest.approx(FACTOR, abs=0.03)  # formants moved by the factor
    assert np.max(np.abs(np.array(durations) - 1.0)) < 0.03  # tempo kept
    assert np.median(pitches) == pytest.approx(1.0, abs=0.05)  # pitch kept
    # the test and dev splits are never transformed
    assert "vtl=" not in (tmp_path / "scaled" / "test" / "utt2voice").read_text()


def test_off_by_default_and_the_corpus_is_unchanged(tmp_path: Path) -> None:
    assert synth.SynthConfig().train_vocal_tract == (1.0, 1.0)
    config = synth.SynthConfig(hours=0.05, dev_utts=2, test_utts=2, seed=3)
    plan, _ = synth.plan_corpus(config, ["espeak-ng", "flite", "festival"])
    assert all(u.vocal_tract == 1.0 for u in plan)
    transformed = synth.SynthConfig(hours=0.05, dev_utts=2, test_utts=2, seed=3,
                                    train_vocal_tract=(0.85, 1.15))  # fmt: skip
    plan2, _ = synth.plan_corpus(transformed, ["espeak-ng", "flite", "festival"])
    assert [(u.utt_id, u.text, u.voice) for u in plan] == [
        (u.utt_id, u.text, u.voice) for u in plan2
    ]
    factors = {u.voice.engine: [] for u in plan2}
    for u in plan2:
        factors[u.voice.engine].append(u.vocal_tract)
    assert set(factors["espeak-ng"]) == {1.0}  # espeak-ng has voices enough
    for engine in ("flite", "festival"):
        train = [u for u in plan2 if u.voice.engine == engine and u.split == "train"]
        assert all(0.85 <= u.vocal_tract <= 1.15 for u in train)
        assert len({u.vocal_tract for u in train}) > len(train) // 2
