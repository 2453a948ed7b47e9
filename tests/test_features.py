"""asr.features: framing, deltas, CMVN, configs, and `asr features` on a small data dir."""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from asr.cli import main
from asr.errors import ConfigError
from asr.features.cmvn import (
    add_deltas,
    apply_cmvn,
    compute_cmvn_stats,
    read_global_cmvn,
    read_speaker_cmvn,
)
from asr.features.config import (
    FeatureConfig,
    extract_features,
    load_feature_config,
    normalize_features,
)
from asr.features.extract import compute_datadir_features, utterance_seed
from asr.features.kaldi import all_finite, fbank, mel_scale, mfcc, num_frames


def noise(num_samples: int, seed: int = 0, scale: float = 1000.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(num_samples, generator=generator) * scale


# --- framing and spectra ------------------------------------------------------------------------


@pytest.mark.parametrize("num_samples", [0, 399, 400, 401, 559, 560, 16000, 16123])
@pytest.mark.parametrize("snip_edges", [True, False])
def test_frame_count_follows_kaldi_formula(num_samples, snip_edges):
    # Kaldi's NumFrames with 400-sample windows and 160-sample shifts (16 kHz, 25/10 ms).
    if snip_edges:
        expected = 0 if num_samples < 400 else 1 + (num_samples - 400) // 160
    else:
        expected = (num_samples + 80) // 160
    assert num_frames(num_samples, 16000, snip_edges=snip_edges) == expected
    if num_samples:
        feats = fbank(noise(num_samples), 16000, dither=0.0, snip_edges=snip_edges)
        assert feats.shape == (expected, 23)


def test_mel_scale_known_values():
    assert mel_scale(0.0) == 0.0
    assert mel_scale(700.0) == pytest.approx(1127.0 * math.log(2.0))
    assert float(mel_scale(torch.tensor(700.0, dtype=torch.float64))) == pytest.approx(
        1127.0 * math.log(2.0)
    )


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0, 6000.0])
def test_pure_tone_peaks_in_the_mel_bin_centred_nearest_it(freq):
    rate, num_bins = 16000, 40
    t = torch.arange(rate, dtype=torch.float64) / rate
    tone = 10000.0 * torch.sin(2 * math.pi * freq * t)
    feats = fbank(tone, rate, dither=0.0, num_mel_bins=num_bins, high_freq=0.0)
    # Centres of Kaldi's triangular bins: equally spaced on the mel scale between 20 Hz and 8 kHz.
    low, high = mel_scale(20.0), mel_scale(8000.0)
    centres = [low + (b + 1) * (high - low) / (num_bins + 1) for b in range(num_bins)]
    nearest = int(np.argmin([abs(c - mel_scale(freq)) for c in centres]))
    peaks = feats.argmax(dim=1)
    assert abs(int(peaks.median()) - nearest) <= 1
    assert feats.dtype == torch.float64  # float64 input keeps float64


def test_integer_and_float_input_agree():
    samples = noise(8000).round().clamp(-32768, 32767)
    as_int = fbank(samples.to(torch.int16), 8000, dither=0.0)
    as_float = fbank(samples.to(torch.float32), 8000, dither=0.0)
    assert as_int.dtype == torch.float32
    torch.testing.assert_close(as_int, as_float)


def test_float32_output_is_the_float64_result_rounded():
    samples = noise(16000, seed=3)
    got32 = fbank(samples.float(), 16000, dither=0.0, num_mel_bins=80)
    got64 = fbank(samples.double(), 16000, dither=0.0, num_mel_bins=80)
    assert (got32.double() - got64).abs().max() < 1e-5


def test_batch_of_random_signals_equals_single_calls():
    batch = torch.stack([noise(5000, seed=s) for s in range(3)])
    for func, dim in ((fbank, 24), (mfcc, 13)):
        opts = {"use_energy": True} if func is fbank else {}
        out = func(batch, 16000, dither=0.0, **opts)
        assert out.shape == (3, num_frames(5000), dim)
        for i in range(3):
            torch.testing.assert_close(out[i], func(batch[i], 16000, dither=0.0, **opts))


def test_dither_uses_torch_rng():
    samples = noise(8000, scale=5.0)
    torch.manual_seed(123)
    first = fbank(samples, 8000)  # Kaldi's default dither=1.0
    torch.manual_seed(123)
    again = fbank(samples, 8000)
    plain = fbank(samples, 8000, dither=0.0)
    torch.testing.assert_close(first, again)
    assert (first - plain).abs().max() > 1e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_all_finite_agrees_with_isfinite(dtype):
    generator = torch.Generator().manual_seed(0)
    specials = [math.nan, math.inf, -math.inf]
    for case in range(300):
        size = int(torch.randint(1, 2000, (1,), generator=generator))
        x = (torch.randn(size, generator=generator) * 1e4).to(dtype)
        # a third of the cases finite; the others get 1-3 specials at random places, in some
        # cases the first or the last element
        count = 0 if case % 3 == 0 else int(torch.randint(1, 4, (1,), generator=generator))
        for k in range(count):
            where = int(torch.randint(0, size, (1,), generator=generator))
            if k == 0 and case % 5 < 2:
                where = 0 if case % 5 == 0 else size - 1
            x[where] = specials[int(torch.randint(0, 3, (1,), generator=generator))]
        assert all_finite(x) == bool(torch.isfinite(x).all()), (case, x)
    assert all_finite(torch.empty(0, dtype=dtype))
    assert all_finite(torch.tensor([[1.0, 2.0], [3.0, math.inf]], dtype=dtype)) is False
    assert all_finite(torch.tensor([3, -7, 2**40]))  # integers are always finite
    assert not all_finite(torch.tensor([1 + 1j, complex(math.nan, 0)]))
    assert all_finite(torch.tensor([1 + 1j, 2 - 3j]))


def test_dither_in_a_data_dir_is_seeded_by_utterance_id_on_the_cpu_only(tmp_path, monkeypatch):
    """Each utterance's dither comes from its id (so --nj splits give the same features), from
    the CPU generator alone: the GPU generators are neither seeded nor queued for seeding."""
    data = tmp_path / "data"
    data.mkdir()
    lines = []
    for i in range(3):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, (noise(4000 + 800 * i, seed=i, scale=0.01)).numpy(), 8000, "PCM_16")
        lines.append((f"spk-u{i}", str(path)))
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in lines))
    (data / "utt2spk").write_text("".join(f"{u} spk\n" for u, _ in lines))
    config = FeatureConfig(sample_rate=8000, options={"num_mel_bins": 15})  # dither 1.0
    torch.manual_seed(5)
    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: seeded.append(seed))
    before = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    compute_datadir_features(data, config, progress=False)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG untouched
    assert torch.get_num_threads() == threads  # one intra-op thread inside, restored after
    assert seeded == []
    feats = dict(kaldiio.load_scp_sequential(str(data / "feats.scp")))
    for utt, path in lines:
        wave, _ = sf.read(path, dtype="float32")
        generator_state = torch.random.get_rng_state()
        torch.default_generator.manual_seed(utterance_seed(utt))
        expected = extract_features(wave, 8000, config)
        torch.random.set_rng_state(generator_state)
        np.testing.assert_array_equal(feats[utt], expected.numpy())
        undithered = extract_features(wave, 8000, FeatureConfig(sample_rate=8000, options={
            "num_mel_bins": 15, "dither": 0.0}))  # fmt: skip
        assert np.abs(feats[utt] - undithered.numpy()).max() > 1e-3


def test_thread_count_is_restored_and_results_do_not_depend_on_it():
    samples = noise(16000 * 30, scale=5.0)  # 12 blocks of frames: 2 threads use the block pool
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            torch.manual_seed(7)  # dither on: each block's noise must not depend on the threads
            results.append(fbank(samples, 16000))
            assert torch.get_num_threads() == threads
        torch.testing.assert_close(results[0], results[1])

        # Concurrent callers share one save/restore of torch's process-wide thread count.
        torch.set_num_threads(2)
        with ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(lambda s: fbank(s, 16000, dither=0.0), [samples] * 4))
        assert torch.get_num_threads() == 2
        for out in outs:
            torch.testing.assert_close(out, outs[0])
    finally:
        torch.set_num_threads(before)


def test_min_duration_gives_no_frames():
    samples = noise(8000)  # 0.5 s
    assert fbank(samples, 16000, min_duration=1.0, dither=0.0).shape == (0, 23)
    assert mfcc(samples, 16000, min_duration=1.0, dither=0.0).shape == (0, 13)
    assert fbank(samples, 16000, min_duration=0.4, dither=0.0).shape[0] > 0


def test_bad_options_are_config_errors():
    samples = noise(4000)
    with pytest.raises(ConfigError, match="num_bins"):
        fbank(samples, num_bins=40)  # knf's name, not Kaldi's command-line name
    with pytest.raises(ConfigError, match="window_type"):
        fbank(samples, window_type="kaiser")
    with pytest.raises(ConfigError, match="vtln_warp"):
        fbank(samples, vtln_warp=0.9)
    with pytest.raises(ConfigError, match="high_freq"):
        fbank(samples, 16000, high_freq=9000.0)
    with pytest.raises(ConfigError, match="num_ceps"):
        mfcc(samples, num_ceps=30)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_gpu_output_matches_cpu():
    batch = torch.stack([noise(16000, seed=s) for s in range(2)])
    for func in (fbank, mfcc):
        cpu = func(batch, 16000, dither=0.0)
        gpu = func(batch.cuda(), 16000, dither=0.0)
        assert gpu.device.type == "cuda"
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-5)


# --- deltas -------------------------------------------------------------------------------------


def clamped(feats: np.ndarray, t: int) -> np.ndarray:
    return feats[min(max(t, 0), len(feats) - 1)]


def textbook_delta_kernel(window: int) -> np.ndarray:
    """d_t = sum_n n (c_{t+n} - c_{t-n}) / (2 sum_n n^2), as taps for offsets -window..window."""
    denom = 2 * sum(n * n for n in range(1, window + 1))
    return np.array([n / denom for n in range(-window, window + 1)])


def test_first_order_delta_is_the_regression_formula():
    feats = np.random.default_rng(0).normal(size=(7, 3))
    out = add_deltas(torch.from_numpy(feats), order=1, window=2).numpy()
    assert out.shape == (7, 6)
    np.testing.assert_allclose(out[:, :3], feats)
    for t in range(7):
        expected = sum(n * (clamped(feats, t + n) - clamped(feats, t - n)) for n in (1, 2)) / (
            2 * (1 + 4)
        )
        np.testing.assert_allclose(out[t, 3:], expected, atol=1e-12)


def test_second_order_delta_is_one_clamped_filter():
    # Kaldi applies delta-delta as ONE 9-tap filter (the delta kernel convolved with itself)
    # with clamping at the edges, which differs from the delta of the delta near the edges.
    feats = np.random.default_rng(1).normal(size=(11, 2))
    out = add_deltas(torch.from_numpy(feats), order=2, window=2).numpy()
    kernel = np.convolve(textbook_delta_kernel(2), textbook_delta_kernel(2))
    assert len(kernel) == 9
    for t in range(11):
        expected = sum(kernel[j + 4] * clamped(feats, t + j) for j in range(-4, 5))
        np.testing.assert_allclose(out[t, 4:], expected, atol=1e-12)
    # Away from the edges it is exactly the delta of the delta.
    first = add_deltas(torch.from_numpy(feats), order=1)[:, 2:]
    delta_of_delta = add_deltas(first, order=1)[:, 2:].numpy()
    np.testing.assert_allclose(out[4:7, 4:], delta_of_delta[4:7], atol=1e-12)
    assert not np.allclose(out[0, 4:], delta_of_delta[0])


def test_deltas_on_a_batch_and_on_zero_frames():
    feats = torch.randn(2, 6, 4, dtype=torch.float64)
    out = add_deltas(feats, order=2)
    assert out.shape == (2, 6, 12)
    torch.testing.assert_close(out[1], add_deltas(feats[1], order=2))
    assert add_deltas(torch.zeros(0, 4), order=2).shape == (0, 12)
    assert add_deltas(feats, order=0) is feats


# --- CMVN ---------------------------------------------------------------------------------------


def test_cmvn_stats_use_kaldi_layout():
    feats = torch.tensor([[1.0, 2.0], [3.0, -4.0], [5.0, 0.5]])
    stats = compute_cmvn_stats(feats)
    assert stats.dtype == torch.float64
    expected = [[9.0, -1.5, 3.0], [1.0 + 9.0 + 25.0, 4.0 + 16.0 + 0.25, 0.0]]
    torch.testing.assert_close(stats, torch.tensor(expected, dtype=torch.float64))
    # Stats of several matrices accumulate like stats of their concatenation.
    more = torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(
        compute_cmvn_stats([feats, more]), compute_cmvn_stats(torch.cat([feats, more]))
    )


def test_apply_cmvn_gives_zero_mean_unit_variance():
    feats = torch.randn(500, 5, dtype=torch.float64) * torch.tensor([1.0, 2.0, 5.0, 0.1, 30.0])
    feats = feats + torch.tensor([3.0, -7.0, 100.0, 0.0, -1.0])
    stats = compute_cmvn_stats(feats)
    normed = apply_cmvn(feats, stats, norm_vars=True)
    torch.testing.assert_close(
        normed.mean(0), torch.zeros(5, dtype=torch.float64), atol=1e-9, rtol=0
    )
    torch.testing.assert_close(
        normed.var(0, unbiased=False), torch.ones(5, dtype=torch.float64), atol=1e-9, rtol=0
    )
    centred = apply_cmvn(feats, stats)
    torch.testing.assert_close(centred, feats - feats.mean(0))
    with pytest.raises(ValueError, match="dim"):
        apply_cmvn(feats[:, :3], stats)


def test_normalize_features_modes():
    feats = torch.randn(50, 4, dtype=torch.float64) + 10.0
    other = torch.randn(80, 4, dtype=torch.float64) - 3.0
    speaker_stats = compute_cmvn_stats([feats, other])
    base = {"kind": "fbank", "options": {"num_mel_bins": 4}}
    utt = normalize_features(feats, FeatureConfig(**base, cmvn="utterance"))
    torch.testing.assert_close(utt.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-9, rtol=0)
    spk = normalize_features(feats, FeatureConfig(**base, cmvn="speaker"), speaker_stats)
    torch.testing.assert_close(spk, feats - torch.cat([feats, other]).mean(0))
    none = normalize_features(feats, FeatureConfig(**base, cmvn="none", delta_order=2))
    assert none.shape == (50, 12)
    torch.testing.assert_close(none[:, :4], feats)
    with pytest.raises(ConfigError, match="no CMVN statistics"):
        normalize_features(feats, FeatureConfig(**base, cmvn="global"))


# --- configuration ------------------------------------------------------------------------------


def test_feature_config_round_trip_and_dims(tmp_path):
    config = FeatureConfig(
        kind="mfcc", sample_rate=8000, options={"num_ceps": 20, "num_mel_bins": 30}, delta_order=2
    )
    assert config.raw_dim == 20 and config.dim == 60
    assert FeatureConfig.from_dict(config.to_dict()) == config
    assert FeatureConfig(options={"use_energy": True, "num_mel_bins": 80}).dim == 81
    path = tmp_path / "fbank.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert load_feature_config(path) == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: spectrogram\n", "kind"),
        ("kind: fbank\nbogus: 1\n", "bogus"),
        ("kind: fbank\noptions: {num_ceps: 13}\n", "num_ceps"),  # an MFCC option for fbank
        ("options: {num_mel_bins: forty}\n", "num_mel_bins"),
        ("options: {snip_edges: 0}\n", "snip_edges"),
        ("cmvn: sometimes\n", "cmvn"),
        ("delta_order: -1\n", "delta_order"),
        ("- a\n- b\n", "mapping"),
        ("kind: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_feature_config_is_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_feature_config(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_extract_features_uses_kaldi_scale_and_checks_rate():
    wave = (noise(8000, scale=0.1)).numpy().clip(-1, 1)
    config = FeatureConfig(sample_rate=8000, options={"dither": 0.0, "num_mel_bins": 15})
    feats = extract_features(wave, 8000, config)
    expected = fbank(torch.from_numpy(wave) * 32768.0, 8000, dither=0.0, num_mel_bins=15)
    torch.testing.assert_close(feats, expected)
    with pytest.raises(ConfigError, match="16000 Hz"):
        extract_features(wave, 16000, config)


# --- `asr features` on a data directory ---------------------------------------------------------


def make_data_dir(tmp_path: Path, yesno_dir: Path, extra_wav: dict[str, str] | None = None) -> Path:
    files = sorted(yesno_dir.glob("*.wav"))[:4]
    wav = {f"spk{i % 2}-{f.stem}": str(f) for i, f in enumerate(files)}
    wav.update(extra_wav or {})
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    utt2spk = {utt: utt.split("-")[0] for utt in wav}
    (data / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in sorted(wav.items())))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    spk2utt: dict[str, list[str]] = {}
    for utt, spk in sorted(utt2spk.items()):
        spk2utt.setdefault(spk, []).append(utt)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in spk2utt.items()))
    return data


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "fbank.yaml"
    config = {
        "kind": "fbank",
        "sample_rate": 8000,
        "options": {"num_mel_bins": 23, "dither": 0.0},
        "cmvn": "speaker",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.integration
def test_asr_features_writes_features_and_cmvn(tmp_path, yesno_dir):
    data = make_data_dir(tmp_path, yesno_dir)
    ark_dir = tmp_path / "feats"
    argv = ["features", str(data), "--config", str(write_config(tmp_path))]
    assert main([*argv, "--ark-dir", str(ark_dir), "--no-progress"]) == 0

    feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
    wav = dict(line.split(maxsplit=1) for line in (data / "wav.scp").read_text().splitlines())
    assert sorted(feats) == sorted(wav)
    # one raw and one CMVN ark, under names of this run (crash safety: see test_features_faults)
    assert sorted(p.name.split(".")[0] for p in ark_dir.glob("*.ark")) == [
        "cmvn_fbank",
        "raw_fbank",
    ]
    frames = {}
    for utt, path in wav.items():
        samples, rate = sf.read(path, dtype="int16")
        expected = fbank(torch.from_numpy(samples.astype(np.float32)), rate, dither=0.0)
        np.testing.assert_allclose(feats[utt], expected.numpy(), atol=1e-4)
        frames[utt] = len(feats[utt])
    utt2num_frames = dict(
        line.split() for line in (data / "utt2num_frames").read_text().splitlines()
    )
    assert {u: int(n) for u, n in utt2num_frames.items()} == frames

    speaker_stats = read_speaker_cmvn(data)
    assert sorted(speaker_stats) == ["spk0", "spk1"]
    for spk, stats in speaker_stats.items():
        utts = [u for u in feats if u.startswith(spk + "-")]
        assert stats.shape == (2, 24)
        assert stats[0, -1] == sum(frames[u] for u in utts)
        np.testing.assert_allclose(
            stats[0, :-1].numpy(), np.concatenate([feats[u] for u in utts]).sum(0), rtol=1e-5
        )
    global_stats = read_global_cmvn(data)
    assert global_stats[0, -1] == sum(frames.values())
    torch.testing.assert_close(global_stats, sum(speaker_stats.values()))

    saved = load_feature_config(data / "feats.yaml")
    assert saved.sample_rate == 8000 and saved.options["num_mel_bins"] == 23
    assert not list(ark_dir.glob("*.tmp")) and not list(data.glob(".*.tmp"))


@pytest.mark.integration
def test_asr_features_skips_unreadable_utterances(tmp_path, yesno_dir, caplog):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00")
    data = make_data_dir(
        tmp_path,
        yesno_dir,
        {"spk0-zz-missing": str(tmp_path / "nope.wav"), "spk1-zz-bad": str(broken)},
    )
    config = write_config(tmp_path)
    with caplog.at_level(logging.WARNING, logger="asr.features"):
        status = main(["features", str(data), "--config", str(config), "--no-progress"])
    assert status == 1  # 2 of 6 failed: more than Kaldi's 5% allowance
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(skipped) == 2 and all("\n" not in m for m in skipped)
    assert any("nope.wav" in m for m in skipped)
    feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
    assert len(feats) == 4 and "spk0-zz-missing" not in feats
    assert read_global_cmvn(data)[0, -1] == sum(len(m) for m in feats.values())


@pytest.mark.integration
def test_asr_features_leaves_no_half_files_when_everything_fails(tmp_path, yesno_dir, capsys):
    data = tmp_path / "bad"
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 {tmp_path / 'missing.wav'}\n")
    (data / "utt2spk").write_text("u1 s1\n")
    ark_dir = tmp_path / "ark"
    status = main(["features", str(data), "--ark-dir", str(ark_dir), "--no-progress"])
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("asr features: error:") and "no utterance" in err[-1]
    assert not (data / "feats.scp").exists() and not (data / "cmvn.scp").exists()
    assert list(ark_dir.iterdir()) == []
