"""Test-time VTLN (asr.decoding.vtln): the warp grid, the entropy, and a factor per speaker that
undoes a known shift of the spectrum; asr decode --vtln end to end, in one job and in two."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml
from test_train import config, run, write_synthetic

from asr.decoding.datadir import decode_datadir
from asr.decoding.vtln import choose_warps, frame_entropy, parse_warp_grid
from asr.errors import ConfigError
from asr.features.config import FeatureConfig
from asr.features.dataset import FeatureSet
from asr.features.kaldi import mel_scale
from asr.features.vtlp import MelAxis, vtlp, warp_features
from asr.score import read_transcripts

BINS = 40
RATE = 16000


def test_the_grid_takes_min_max_step_and_always_holds_one() -> None:
    assert parse_warp_grid("0.8:1.2:0.1") == [0.8, 0.9, 1.0, 1.1, 1.2]
    assert parse_warp_grid("0.80:1.25:0.025")[8] == 1.0  # not 0.9999999999999999
    assert len(parse_warp_grid("0.80:1.25:0.025")) == 19
    assert parse_warp_grid("0.85:1.2:0.1") == [0.85, 0.95, 1.0, 1.05, 1.15]
    assert parse_warp_grid("1.1:1.1:0.05") == [1.0, 1.1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0:1.2:0.1", "warp factors must be positive"),
        ("1.2:0.8:0.1", "MAX 0.8 is below MIN 1.2"),
        ("0.8:1.2:0", "STEP must be positive"),
        ("0.8:1.2", "expected MIN:MAX:STEP"),
        ("a:b:c", "expected MIN:MAX:STEP"),
        ("0.8:inf:0.1", "finite"),
        ("0.5:2:0.001", "at most 401"),
    ],
)
def test_a_bad_grid_is_one_line_naming_the_option(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_warp_grid(text)
    assert str(caught.value).startswith(f"--vtln {text!r}") and "\n" not in str(caught.value)


def test_entropy_is_that_of_each_frame_and_ignores_padding() -> None:
    uniform = torch.full((1, 3, 8), -math.log(8.0))
    certain = torch.full((1, 3, 8), -1e4)
    certain[..., 2] = 0.0
    batch = torch.cat([uniform, certain])
    batch[0, 2] = certain[0, 0]  # a padded frame of utterance 0: must not count
    sums = frame_entropy(batch, torch.tensor([2, 3]))
    assert sums[0].item() == pytest.approx(2 * math.log(8.0), rel=1e-5)
    assert sums[1].item() == pytest.approx(0.0, abs=1e-6)
    # a probability of exactly 0 (log -inf) adds nothing, not NaN
    zero = torch.log(torch.tensor([[[0.5, 0.5, 0.0]]]))
    assert frame_entropy(zero, torch.tensor([1])).item() == pytest.approx(math.log(2.0))


def _axis() -> MelAxis:
    return MelAxis.of(FeatureConfig(kind="fbank", sample_rate=RATE, options={"num_mel_bins": BINS}))


def test_warping_one_utterance_is_what_vtlp_does_to_it() -> None:
    axis = _axis()
    feats = torch.randn(1, 25, 2 * BINS, generator=torch.Generator().manual_seed(1))
    warped, alphas = vtlp(feats, axis, 0.1, torch.Generator().manual_seed(4), blocks=2)
    assert torch.equal(warp_features(feats[0], axis, float(alphas[0]), blocks=2), warped[0])
    assert torch.allclose(warp_features(feats[0], axis, 1.0, blocks=2), feats[0], atol=1e-5)
    with pytest.raises(ConfigError, match="features have 81 dimensions, not 2 blocks of 40"):
        warp_features(torch.zeros(5, 2 * BINS + 1), axis, 1.1, blocks=2)


def _bump(axis: MelAxis, peak_hz: float, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Log-mel frames with one formant-like bump at ``peak_hz`` (its width 150 mel)."""
    centres = np.array([mel_scale(c) for c in axis.centers()])
    row = 6.0 * np.exp(-0.5 * ((centres - mel_scale(peak_hz)) / 150.0) ** 2)
    return (row + 0.05 * rng.standard_normal((frames, len(centres)))).astype(np.float32)


class _FormantDetector(torch.nn.Module):
    """A stand-in acoustic model that is sure of itself (token 1) when the spectrum has the
    bump of ``template`` (a matched filter), and unsure (uniform over 8 tokens) when it does
    not: the shape of a network trained on voices whose formant sits there."""

    def __init__(self, template: np.ndarray) -> None:
        super().__init__()
        self.template = torch.from_numpy(template / np.linalg.norm(template)).float()

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        logits = torch.zeros(*feats.shape[:2], 8)
        # the cosine with the template: how well the shape matches, whatever its energy
        logits[..., 1] = 8.0 * (feats @ self.template) / feats.norm(dim=-1).clamp(min=1e-6)
        return logits.log_softmax(-1), lengths


def test_each_speaker_gets_the_factor_that_moves_its_formant_home(tmp_path: Path) -> None:
    # The "training voices" have their formant at 1000 Hz. Speaker hi's sits 15% higher, lo's
    # 15% lower. The warped bin at c reads the spectrum at c / alpha (Kaldi's warp), so the
    # factor that brings f back to 1000 Hz is 1000 / f: about 0.87 for hi, 1.18 for lo.
    axis = _axis()
    rng = np.random.default_rng(0)
    peaks = {"hi": 1150.0, "lo": 850.0, "same": 1000.0}
    feats, utt2spk = {}, {}
    for spk, peak in peaks.items():
        for i in range(3):
            feats[f"{spk}-{i}"] = _bump(axis, peak, 20 + 5 * i, rng)
            utt2spk[f"{spk}-{i}"] = spk
    kaldiio.save_ark(str(tmp_path / "feats.ark"), feats, scp=str(tmp_path / "feats.scp"))
    (tmp_path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    config = {"kind": "fbank", "options": {"num_mel_bins": BINS}, "cmvn": "none"}
    (tmp_path / "feats.yaml").write_text(yaml.safe_dump(config))
    grid = parse_warp_grid("0.80:1.25:0.025")
    detector = _FormantDetector(_bump(axis, 1000.0, 1, np.random.default_rng(1))[0])
    choice = choose_warps(detector, FeatureSet(tmp_path), grid, batch_frames=50)
    assert choice.factors["same"] == 1.0
    for spk, peak in peaks.items():
        assert choice.factors[spk] == pytest.approx(1000.0 / peak, abs=0.0125), spk
        # the chosen factor is the grid's lowest mean entropy, and it beats no warp
        means = choice.entropy[spk]
        assert set(means) == set(grid)
        assert means[choice.factors[spk]] == min(means.values())
    assert choice.entropy["hi"][choice.factors["hi"]] < 0.6 * choice.entropy["hi"][1.0]
    assert choice.to_lines() == [f"{spk} {choice.factors[spk]:g}" for spk in ("hi", "lo", "same")]


def test_mfcc_features_are_refused_in_one_line(tmp_path: Path) -> None:
    write_synthetic(tmp_path, 3, seed=0)
    (tmp_path / "feats.yaml").write_text(yaml.safe_dump({"kind": "mfcc", "cmvn": "none"}))
    with pytest.raises(ConfigError, match="VTLP warps log-mel filterbanks; these features are"):
        choose_warps(_FormantDetector(np.ones(BINS)), FeatureSet(tmp_path), [1.0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("vtln")
    write_synthetic(root / "train", 60, seed=1)
    write_synthetic(root / "dev", 12, seed=2)
    run(config(max_epochs=4), (root / "train", root / "dev"), root / "exp")
    return root / "exp" / "final.pt", root / "dev"


def test_decode_writes_spk2warp_and_a_grid_of_one_is_plain_decoding(trained, tmp_path) -> None:
    model, dev = trained
    decode_datadir(model, dev, tmp_path / "plain", progress=False)
    decode_datadir(model, dev, tmp_path / "one", progress=False, vtln=[1.0])
    assert (tmp_path / "one" / "text").read_bytes() == (tmp_path / "plain" / "text").read_bytes()
    decode_datadir(
        model, dev, tmp_path / "vtln", progress=False, vtln=parse_warp_grid("0.9:1.1:0.05")
    )
    lines = (tmp_path / "vtln" / "spk2warp").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["s0", "s1", "s2"]
    assert all(float(line.split()[1]) in (0.9, 0.95, 1.0, 1.05, 1.1) for line in lines)
    assert set(read_transcripts(tmp_path / "vtln" / "text")) == set(read_transcripts(dev / "text"))


def test_the_cli_in_two_jobs_gives_what_one_job_gives(trained, tmp_path) -> None:
    model, dev = trained
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outs = {}
    for nj in (1, 2):
        out = tmp_path / f"nj{nj}"
        command = [sys.executable, "-m", "asr", "decode", str(model), str(dev), str(out)]
        command += ["--vtln", "0.9:1.1:0.05", "--no-progress", "--nj", str(nj), "--threads", "1"]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        if nj == 1:  # the jobs of --nj 2 log to OUT/log
            assert "VTLN: warp factors of 3 speakers chosen by posterior entropy" in done.stderr
        outs[nj] = out
    for name in ("text", "spk2warp"):
        assert (outs[2] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    bad = subprocess.run(
        [sys.executable, "-m", "asr", "decode", str(model), str(dev), str(tmp_path / "bad"),
         "--vtln", "1.2:0.8:0.1"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert bad.returncode != 0 and "--vtln '1.2:0.8:0.1': MAX 0.8 is below MIN 1.2" in bad.stderr
    assert not (tmp_path / "bad").exists()
