"""Features kept in memory or streamed from the ark: the ``cache_features: auto`` rule, a
streaming FeatureSet that keeps nothing, and training that gives the same weights either way."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_dataset import random_feats, write_datadir
from test_train import config, write_synthetic
from test_train_scaling import same_weights, weights

from asr.errors import ConfigError
from asr.features.dataset import Example, FeatureSet, collate
from asr.training.config import TrainConfig, load_train_config
from asr.training.setup import load_training_data, plan_cache
from asr.training.trainer import batch_loader, train

MB = 10**6


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    write_synthetic(root / "train", 24, seed=1)
    write_synthetic(root / "dev", 6, seed=2)
    return root / "train", root / "dev"


def limit(mb: int, setting: bool | str = "auto") -> TrainConfig:
    return TrainConfig.from_dict({"cache_features": setting, "cache_limit_mb": mb})


# --- the rule ---------------------------------------------------------------------------------


def test_auto_caches_what_fits_under_the_limit_train_first() -> None:
    one = limit(1)  # 1 MB = 10^6 bytes
    assert (plan_cache(one, MB, 0).train, plan_cache(one, MB + 1, 0).train) == (True, False)
    # the budget is shared, the training set first: what auto keeps never passes the limit
    both = plan_cache(one, 600_000, 400_000)
    assert (both.train, both.dev) == (True, True)
    no_room = plan_cache(one, 600_000, 400_001)
    assert (no_room.train, no_room.dev) == (True, False)
    dev_only = plan_cache(one, 5 * MB, 400_000)
    assert (dev_only.train, dev_only.dev) == (False, True)
    assert dev_only.line == (
        "features (normalized, float32): train 5.0 MB, dev 0.4 MB; cache_features auto, "
        "limit 1.0 MB (training.cache_limit_mb): train streamed from the ark, dev kept in memory"
    )
    # true and false are taken as they are, whatever the sizes
    forced_on = plan_cache(limit(0, True), 10**12, 10**9)
    assert (forced_on.train, forced_on.dev) == (True, True)
    forced_off = plan_cache(limit(10**6, False), 1, 1)
    assert (forced_off.train, forced_off.dev) == (False, False)
    assert forced_off.line.endswith(
        "cache_features false: train streamed from the ark, dev streamed from the ark"
    )


def test_the_rule_at_both_sides_of_a_limit_set_in_the_config(data, caplog) -> None:
    train_dir, dev_dir = data
    size = FeatureSet(train_dir).normalized_bytes
    assert 0 < size < MB  # a tiny set: limit 1 MB caches it, limit 0 streams it
    for mb, cached in ((1, True), (0, False)):
        _, cfg = load_train_config(config(), [f"training.cache_limit_mb={mb}"])
        assert cfg.cache_features == "auto"  # the default
        with caplog.at_level("INFO", logger="asr.training.setup"):
            loaded = load_training_data(cfg, train_dir, dev_dir)
        assert (loaded.train_set.cache, loaded.dev_set.cache) == (cached, cached)
        fate = "kept in memory" if cached else "streamed from the ark"
        assert loaded.cache_note.endswith(f"train {fate}, dev {fate}")
        assert loaded.cache_note in caplog.messages


def test_the_size_is_known_before_any_ark_is_read(tmp_path) -> None:
    feats = random_feats(4)
    data = write_datadir(tmp_path / "d", feats, {u: "x" for u in feats}, delta_order=1)
    (data / "utt2num_frames").write_text("".join(f"{u} {len(m)}\n" for u, m in feats.items()))
    (data / "feats.ark").unlink()
    fs = FeatureSet(data)
    # 3 dims + their deltas, 4 bytes each
    assert fs.normalized_bytes == sum(len(m) for m in feats.values()) * 6 * 4


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_cache_features_takes_booleans_as_before_and_auto(value) -> None:
    # configs and packages written before auto hold a YAML boolean; they still load
    text = yaml.safe_dump({"training": {"cache_features": value}})
    assert TrainConfig.from_dict(yaml.safe_load(text)["training"]).cache_features == value


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_cache_features_refuses_anything_else(value) -> None:
    with pytest.raises(ConfigError, match="cache_features must be auto, true or false"):
        TrainConfig.from_dict({"cache_features": value})


# --- streaming --------------------------------------------------------------------------------


def test_a_streaming_set_keeps_no_matrix_and_rereads_the_ark(tmp_path) -> None:
    feats = random_feats(5)
    data = write_datadir(tmp_path / "d", feats, {u: "x" for u in feats}, cmvn="global")
    fs = FeatureSet(data)
    fs.global_stats  # noqa: B018 -- read the stats first: only the feature reads are counted
    reads: list[str] = []
    load = fs._raw._loader  # kaldiio's per-utterance read (open, seek, read, close)
    fs._raw._loader = lambda where: reads.append(where) or load(where)
    for _ in range(2):
        for utt in fs.ids:
            fs[utt]
    assert len(reads) == 2 * len(feats) and not fs._cache
    fs.preload()  # a no-op: nothing to keep
    assert not fs._cache and len(reads) == 2 * len(feats)


@pytest.mark.parametrize("workers", [0, 1])
def test_streamed_batches_are_the_cached_ones(data, workers) -> None:
    streamed, cached = FeatureSet(data[0]), FeatureSet(data[0], cache=True)
    cached.preload()
    examples = [Example(u, n, ["x"], [1]) for u, n in streamed.num_frames.items()]
    batches = [(n, examples[i : i + 5]) for n, i in enumerate(range(0, len(examples), 5))]
    got = list(batch_loader(streamed, batches, workers))
    assert [n for n, _ in got] == list(range(len(batches)))
    for (_, tensors), (_, batch) in zip(got, batches, strict=True):
        assert all(a.equal(b) for a, b in zip(tensors, collate(cached, batch), strict=True))
    assert not streamed._cache


def test_training_streamed_or_cached_gives_the_same_weights(data, tmp_path) -> None:
    runs = {
        "cached": {"cache_features": True},
        "streamed": {"cache_features": False},
        "streamed, 1 worker": {"cache_features": False, "num_workers": 1},
    }
    for name, options in runs.items():
        cfg = config(max_epochs=2, tensorboard=False, **options)  # fp32: see test_train.config
        train(cfg, *data, tmp_path / name, seed=3, threads=1, progress=False)
    first = weights(tmp_path / "cached" / "final.pt")
    for name in runs:
        assert same_weights(first, weights(tmp_path / name / "final.pt")), name
    log = (tmp_path / "streamed" / "train.log").read_text()
    assert "cache_features false: train streamed from the ark, dev streamed from the ark" in log
