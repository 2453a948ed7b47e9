"""VTLP on stored log-mel features, checked against Kaldi's own VTLN-warped filterbank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import required_module
from test_train import config, run, write_synthetic

from asr.errors import ConfigError
from asr.features.config import FeatureConfig
from asr.features.vtlp import MelAxis, vtln_warp_freq, vtlp
from asr.training.config import load_train_config
from asr.training.step import TrainStep

RATE = 16000
BINS = 40


def _kaldi_log_mel(power: np.ndarray, alpha: float) -> np.ndarray:
    """Log-mel energies of power spectra through kaldi-native-fbank's MelBanks (VTLN factor)."""
    knf = required_module("kaldi_native_fbank", "pip install kaldi-native-fbank")
    mel_opts = knf.MelBanksOptions()
    mel_opts.num_bins = BINS
    frame_opts = knf.FrameExtractionOptions()
    frame_opts.samp_freq = RATE
    banks = knf.MelBanks(mel_opts, frame_opts, alpha)
    return np.stack([np.log(banks.compute(p.astype(np.float32)) + 1e-10) for p in power])


def _power_spectra(freqs: list[float], frames: int = 20) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(400) / RATE
    window = np.hanning(400)
    spectra = []
    for _ in range(frames):
        wave = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) for f in freqs)
        wave = (wave + 0.01 * rng.standard_normal(400)) * window
        spectra.append(np.abs(np.fft.rfft(wave, 512)) ** 2)
    return np.stack(spectra)


def _axis() -> MelAxis:
    return MelAxis.of(FeatureConfig(kind="fbank", sample_rate=RATE, options={"num_mel_bins": BINS}))


def test_warp_function_is_kaldis() -> None:
    # between the cut-offs f / alpha; the band edges stay put; continuous at the cut-offs
    for alpha in (0.9, 1.0, 1.12):
        assert vtln_warp_freq(1000.0, alpha, 20.0, 8000.0, nyquist=8000.0) == pytest.approx(
            1000.0 / alpha
        )
        assert vtln_warp_freq(20.0, alpha, 20.0, 8000.0, nyquist=8000.0) == pytest.approx(20.0)
        assert vtln_warp_freq(8000.0, alpha, 20.0, 8000.0, nyquist=8000.0) == pytest.approx(8000.0)
        high = 7500.0 * min(1.0, alpha)
        left = vtln_warp_freq(high - 1e-6, alpha, 20.0, 8000.0, nyquist=8000.0)
        right = vtln_warp_freq(high + 1e-6, alpha, 20.0, 8000.0, nyquist=8000.0)
        assert left == pytest.approx(right, abs=1e-3)


@pytest.mark.parametrize("alpha", [0.9, 1.1])
def test_warping_features_matches_kaldis_warped_filterbank(alpha: float) -> None:
    power = _power_spectra([700.0, 2500.0])
    plain = _kaldi_log_mel(power, 1.0)
    reference = _kaldi_log_mel(power, alpha)
    warped = (torch.from_numpy(plain).float() @ _axis().warp_matrix(alpha).T).numpy()
    # the two spectral peaks move to the bins Kaldi's warped filterbank puts them in ...
    for lo, hi in ((5, 16), (17, 30)):
        assert np.argmax(reference.mean(0)[lo:hi]) == np.argmax(warped.mean(0)[lo:hi])
        assert np.argmax(plain.mean(0)[lo:hi]) != np.argmax(reference.mean(0)[lo:hi])
    # ... and the whole warped spectrum is far closer to Kaldi's than the unwarped one
    assert np.abs(warped - reference).mean() < 0.35 * np.abs(plain - reference).mean()


def test_every_block_is_warped_alike_and_factors_are_drawn_in_range() -> None:
    axis = _axis()
    generator = torch.Generator().manual_seed(0)
    static = torch.randn(6, 30, BINS, generator=generator)
    feats = torch.cat([static, 2 * static], dim=2)  # a "delta" block that is twice the static
    warped, alphas = vtlp(feats, axis, 0.1, torch.Generator().manual_seed(5), blocks=2)
    assert torch.all((alphas >= 0.9) & (alphas <= 1.1)) and len(set(alphas.tolist())) == 6
    assert torch.allclose(warped[..., BINS:], 2 * warped[..., :BINS], atol=1e-5)
    for b in range(6):
        expected = static[b] @ axis.warp_matrix(float(alphas[b])).T
        assert torch.allclose(warped[b, :, :BINS], expected, atol=1e-5)
    assert not torch.allclose(warped, feats, atol=1e-2)
    again, _ = vtlp(feats, axis, 0.1, torch.Generator().manual_seed(5), blocks=2)
    assert torch.equal(again, warped)
    # factor 1 is the identity
    assert torch.allclose(static[0] @ axis.warp_matrix(1.0).T, static[0], atol=1e-5)


def test_the_train_step_warps_with_vtlp_and_not_without() -> None:
    axis = _axis()
    feats = torch.randn(2, 20, BINS)
    lengths = torch.tensor([20, 15])
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    plain = TrainStep(model, model, optimizer, torch.device("cpu"))
    warping = TrainStep(model, model, optimizer, torch.device("cpu"), vtlp=(axis, 0.1))
    assert torch.equal(plain.augment(feats, lengths, 3), feats)
    out = warping.augment(feats, lengths, 3)
    assert not torch.allclose(out, feats, atol=1e-3)
    assert torch.equal(out, warping.augment(feats, lengths, 3))  # seeded per batch
    assert not torch.equal(out, warping.augment(feats, lengths, 4))


def test_bad_settings_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    for value in ("1.0", "1.5", "-0.1"):
        path.write_text(f"training:\n  vtlp_max_warp: {value}\n")
        with pytest.raises(ConfigError, match=r"train.yaml: vtlp_max_warp must be in \[0, 1\)"):
            load_train_config(path)
    mfcc = FeatureConfig(kind="mfcc", sample_rate=RATE)
    with pytest.raises(ConfigError, match="feats.yaml: VTLP warps log-mel filterbanks; these"):
        MelAxis.of(mfcc, "data/train/feats.yaml")
    with pytest.raises(ConfigError, match="features have 41 dimensions, not 1 blocks of 40"):
        vtlp(torch.zeros(1, 5, 41), _axis(), 0.1, torch.Generator())


def test_training_with_vtlp_logs_it_and_refuses_mfcc(tmp_path: Path) -> None:
    data = (tmp_path / "train", tmp_path / "dev")
    write_synthetic(data[0], 30, seed=1)
    write_synthetic(data[1], 6, seed=2)
    summary = run(config(vtlp_max_warp=0.1, max_epochs=2), data, tmp_path / "a", seed=1)
    assert len(summary.history) == 2
    assert "VTLP max warp 0.1" in (tmp_path / "a" / "train.log").read_text()
    mfcc = {"kind": "mfcc", "options": {"num_mel_bins": 6, "num_ceps": 6}, "cmvn": "global"}
    for d in data:  # train and dev must agree, or that is the error
        (d / "feats.yaml").write_text(yaml.safe_dump(mfcc))
    with pytest.raises(ConfigError, match=r"train/feats.yaml: VTLP warps log-mel"):
        run(config(vtlp_max_warp=0.1, max_epochs=1), data, tmp_path / "b", seed=1)
