"""SpecAugment: reproducible from the generator, masks of the right widths, padding untouched."""

from __future__ import annotations

import pytest
import torch

from asr.errors import ConfigError
from asr.nn.spec_augment import SpecAugmentConfig, spec_augment


def batch(b: int = 6, t: int = 60, d: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(b, t, d, generator=g)  # never exactly a mask value
    lengths = torch.randint(t // 2, t + 1, (b,), generator=g)
    lengths[0] = t
    return feats, lengths


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def runs(flags: torch.Tensor) -> list[tuple[int, int]]:
    """(start, width) of each run of True in a 1-D bool tensor."""
    out, start = [], None
    for i, f in enumerate(flags.tolist() + [False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            out.append((start, i - start))
            start = None
    return out


FULL = SpecAugmentConfig(freq_masks=2, freq_width=4, time_masks=2, time_width=10, time_warp=3)


def test_same_seed_same_output_and_different_seed_differs() -> None:
    feats, lengths = batch()
    a = spec_augment(feats, lengths, FULL, gen(7))
    b = spec_augment(feats, lengths, FULL, gen(7))
    c = spec_augment(feats, lengths, FULL, gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, feats)


def test_uses_only_the_given_generator() -> None:
    feats, lengths = batch()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    spec_augment(feats, lengths, FULL, gen(0))
    assert torch.equal(torch.get_rng_state(), before)


def test_input_is_not_modified() -> None:
    feats, lengths = batch()
    copy = feats.clone()
    out = spec_augment(feats, lengths, FULL, gen(1))
    assert torch.equal(feats, copy)
    assert out.data_ptr() != feats.data_ptr()


def test_padding_frames_are_unchanged() -> None:
    feats, lengths = batch(b=16)
    cfg = SpecAugmentConfig(freq_masks=3, freq_width=6, time_masks=3, time_width=30, time_warp=5)
    for seed in range(5):
        out = spec_augment(feats, lengths, cfg, gen(seed))
        for b, length in enumerate(lengths.tolist()):
            assert torch.equal(out[b, length:], feats[b, length:])


def test_no_masks_and_no_warp_returns_an_equal_copy() -> None:
    feats, lengths = batch()
    cfg = SpecAugmentConfig(freq_masks=0, time_masks=0, time_warp=0)
    assert not cfg.active
    out = spec_augment(feats, lengths, cfg, gen(0))
    assert torch.equal(out, feats)
    assert out.data_ptr() != feats.data_ptr()


def test_frequency_masks_are_whole_bands_of_width_at_most_f() -> None:
    feats, lengths = batch(b=200, t=30, d=20)
    cfg = SpecAugmentConfig(freq_masks=1, freq_width=8, time_masks=0, mask_value=-2.5)
    out = spec_augment(feats, lengths, cfg, gen(3))
    widths = set()
    for b, length in enumerate(lengths.tolist()):
        changed = out[b, :length] != feats[b, :length]
        assert torch.all(out[b, :length][changed] == -2.5)
        columns = changed.all(dim=0)
        # every changed value lies in a fully masked column (a band across all valid frames)
        assert torch.equal(changed, columns[None, :].expand_as(changed))
        bands = runs(columns)
        assert len(bands) <= 1
        width = bands[0][1] if bands else 0
        assert width <= 8
        widths.add(width)
    assert widths == set(range(9))  # uniform in [0, F], both ends reached


def test_two_frequency_masks_cover_at_most_two_widths() -> None:
    feats, lengths = batch(b=100, d=20)
    cfg = SpecAugmentConfig(freq_masks=2, freq_width=5, time_masks=0)
    out = spec_augment(feats, lengths, cfg, gen(4))
    counts = [int((out[b, 0] == 0.0).sum()) for b in range(100)]
    assert max(counts) <= 10
    assert max(counts) > 5  # two masks do add up


def test_time_masks_stay_inside_the_utterance_and_respect_both_caps() -> None:
    feats, lengths = batch(b=200, t=100, d=8)
    cfg = SpecAugmentConfig(freq_masks=0, time_masks=1, time_width=20, time_width_ratio=0.2)
    out = spec_augment(feats, lengths, cfg, gen(5))
    hit_cap = 0
    for b, length in enumerate(lengths.tolist()):
        changed = out[b] != feats[b]
        rows = changed.all(dim=1)
        assert torch.equal(changed, rows[:, None].expand_as(changed))  # whole frames
        assert torch.all(out[b][changed] == 0.0)
        bands = runs(rows)
        assert len(bands) <= 1
        if bands:
            start, width = bands[0]
            cap = min(20, int(0.2 * length))
            assert start + width <= length
            assert width <= cap
            hit_cap += width == cap
    assert hit_cap > 0


def test_time_mask_width_is_capped_at_a_short_utterance_length() -> None:
    feats = torch.randn(50, 10, 4, generator=gen(0))
    lengths = torch.full((50,), 3)
    cfg = SpecAugmentConfig(freq_masks=0, time_masks=1, time_width=20)
    out = spec_augment(feats, lengths, cfg, gen(6))
    masked = (out[:, :, 0] == 0.0).sum(dim=1)
    assert int(masked.max()) == 3  # a whole 3-frame utterance can be masked, never more
    assert torch.equal(out[:, 3:], feats[:, 3:])


def test_time_warp_preserves_length_and_endpoints_and_changes_the_middle() -> None:
    frames, window = 50, 5
    lengths = torch.tensor([50, 45, 40, 33, 30, 27, 20, 10])  # 10 <= 2W: not warped
    ramp = torch.arange(frames, dtype=torch.float32)[None, :, None].repeat(8, 1, 3)
    cfg = SpecAugmentConfig(freq_masks=0, time_masks=0, time_warp=window)
    changed = 0
    for seed in range(4):
        out = spec_augment(ramp, lengths, cfg, gen(seed))
        assert out.shape == ramp.shape
        for b, length in enumerate(lengths.tolist()):
            valid = out[b, :length, 0]
            assert valid[0] == 0.0 and valid[-1] == length - 1  # endpoints kept exactly
            assert torch.all(valid[1:] >= valid[:-1])  # a monotone resampling of the ramp
            assert torch.equal(out[b, length:], ramp[b, length:])
            assert torch.equal(out[b, :, 0], out[b, :, 2])  # every dimension warped alike
            if not torch.equal(valid, ramp[b, :length, 0]):
                changed += 1
                # piecewise linear with one kink: input frame c now sits at w, |w - c| <= W
                slopes = torch.round(valid[1:] - valid[:-1], decimals=4)
                assert len(set(slopes.tolist())) == 2
                kink = int((slopes != slopes[0]).nonzero()[0])
                assert valid[kink] == round(float(valid[kink]))
                assert 0 < abs(float(valid[kink]) - kink) <= window
        assert torch.equal(out[7], ramp[7])
    assert changed >= 20  # of 28 warpable cases; a zero shift (no change) is rare


def test_blocks_mask_the_same_bins_in_each_delta_block() -> None:
    feats, lengths = batch(b=40, d=30)
    cfg = SpecAugmentConfig(freq_masks=2, freq_width=4, time_masks=0)
    out = spec_augment(feats, lengths, cfg, gen(9), blocks=3)
    total = 0
    for b in range(40):
        columns = out[b, 0] == 0.0
        assert torch.equal(columns[:10], columns[10:20])
        assert torch.equal(columns[:10], columns[20:])
        total += int(columns[:10].sum())
    assert total > 0
    with pytest.raises(ValueError, match="blocks"):
        spec_augment(feats, lengths, cfg, gen(9), blocks=4)


def test_config_round_trip_and_one_line_errors() -> None:
    cfg = SpecAugmentConfig.from_dict({"time_warp": 5, "time_width_ratio": "5e-2"})
    assert cfg.time_width_ratio == 0.05 and cfg.time_warp == 5
    assert SpecAugmentConfig.from_dict(cfg.to_dict()) == cfg
    bad = [
        ({"freq_maks": 2}, "unknown spec_augment option"),
        ({"freq_masks": -1}, "freq_masks must not be negative"),
        ({"time_warp": True}, "time_warp must be an integer"),
        ({"time_width": 2.5}, "time_width must be an integer"),
        ({"time_width_ratio": 1.5}, "time_width_ratio must be in"),
        ({"mask_value": "low"}, "mask_value must be a number"),
    ]
    for values, message in bad:
        with pytest.raises(ConfigError, match=message) as info:
            SpecAugmentConfig.from_dict(values, source="conf/train.yaml")
        assert "\n" not in str(info.value)
        assert str(info.value).startswith("conf/train.yaml: ")
    with pytest.raises(ConfigError, match="freq_width"):
        SpecAugmentConfig(freq_width=-3)
