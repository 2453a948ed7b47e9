"""FeatureSet normalization, transcript pairing with skip counts, CTC fit, frame-budget batching."""

from __future__ import annotations

import random
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from asr.errors import DataDirError
from asr.features.dataset import (
    FeatureSet,
    collate,
    ctc_min_frames,
    fits_ctc,
    load_examples,
    make_batches,
)
from asr.units.tokens import TokenList

DIM = 3


def write_datadir(
    path: Path,
    feats: dict[str, np.ndarray],
    texts: dict[str, str],
    utt2spk: dict[str, str] | None = None,
    cmvn: str = "none",
    delta_order: int = 0,
    speaker_stats: bool = False,
) -> Path:
    """A data dir as 'asr features' leaves it: feats.scp/ark, feats.yaml, text, utt2spk."""
    path.mkdir(parents=True, exist_ok=True)
    kaldiio.save_ark(str(path / "feats.ark"), feats, scp=str(path / "feats.scp"))
    (path / "text").write_text("".join(f"{u} {t}\n" for u, t in texts.items()), encoding="utf-8")
    utt2spk = utt2spk or {u: "spk" for u in feats}
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utt2spk.items()))
    config = {"kind": "fbank", "options": {"num_mel_bins": DIM}, "cmvn": cmvn}
    config["delta_order"] = delta_order
    (path / "feats.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    if speaker_stats:
        stats = {}
        for utt, mat in feats.items():
            m = mat.astype(np.float64)
            s = np.zeros((2, DIM + 1))
            s[0, :DIM], s[1, :DIM], s[0, DIM] = m.sum(0), (m**2).sum(0), len(m)
            spk = utt2spk[utt]
            stats[spk] = stats[spk] + s if spk in stats else s
        kaldiio.save_ark(str(path / "cmvn.ark"), stats, scp=str(path / "cmvn.scp"))
    return path


def random_feats(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        f"u{i}": (rng.standard_normal((int(rng.integers(5, 30)), DIM)) + i).astype(np.float32)
        for i in range(n)
    }


@pytest.mark.parametrize("with_cmvn_scp", [True, False])
def test_speaker_cmvn_subtracts_the_speaker_mean(tmp_path, with_cmvn_scp) -> None:
    feats = random_feats(4)
    spk = {"u0": "A", "u1": "A", "u2": "B", "u3": "B"}
    data = write_datadir(
        tmp_path / "d", feats, {u: "x" for u in feats}, spk, "speaker", speaker_stats=with_cmvn_scp
    )
    fs = FeatureSet(data)
    assert fs.ids == ["u0", "u1", "u2", "u3"]
    assert fs.num_frames == {u: len(m) for u, m in feats.items()}
    mean_a = np.concatenate([feats["u0"], feats["u1"]]).astype(np.float64).mean(0)
    mean_b = np.concatenate([feats["u2"], feats["u3"]]).astype(np.float64).mean(0)
    np.testing.assert_allclose(fs["u1"].numpy(), feats["u1"] - mean_a, atol=1e-5)
    np.testing.assert_allclose(fs["u3"].numpy(), feats["u3"] - mean_b, atol=1e-5)
    all_frames = np.concatenate(list(feats.values())).astype(np.float64)
    assert fs.global_stats[0, DIM].item() == len(all_frames)
    np.testing.assert_allclose(fs.global_stats[0, :DIM].numpy(), all_frames.sum(0), rtol=1e-9)


def test_global_cmvn_and_override(tmp_path) -> None:
    feats = random_feats(3)
    data = write_datadir(tmp_path / "d", feats, {u: "x" for u in feats}, cmvn="global")
    fs = FeatureSet(data, cache=True)
    mean = np.concatenate(list(feats.values())).astype(np.float64).mean(0)
    np.testing.assert_allclose(fs["u2"].numpy(), feats["u2"] - mean, atol=1e-5)
    assert fs["u2"] is fs["u2"]  # cached
    other = torch.zeros(2, DIM + 1, dtype=torch.float64)
    other[0, :DIM], other[0, DIM] = 10.0, 1.0  # mean 10 everywhere
    np.testing.assert_allclose(
        FeatureSet(data, global_stats=other)["u0"].numpy(), feats["u0"] - 10.0, atol=1e-5
    )


def test_preload_fills_the_cache_without_rereading(tmp_path) -> None:
    feats = random_feats(3)
    data = write_datadir(tmp_path / "d", feats, {u: "x" for u in feats}, cmvn="global")
    fs = FeatureSet(data, cache=True)
    uncached = FeatureSet(data, cache=False)
    fs.preload()
    uncached.preload()  # a no-op without a cache
    (data / "feats.ark").unlink()  # every later read must come from the cache
    mean = np.concatenate(list(feats.values())).astype(np.float64).mean(0)
    for utt in feats:
        np.testing.assert_allclose(fs[utt].numpy(), feats[utt] - mean, atol=1e-5)
    with pytest.raises(DataDirError, match="cannot load features"):
        uncached["u0"]


def test_deltas_set_the_feature_dim(tmp_path) -> None:
    feats = random_feats(2)
    data = write_datadir(tmp_path / "d", feats, {u: "x" for u in feats}, delta_order=2)
    fs = FeatureSet(data)
    assert fs.feature_dim == 3 * DIM
    np.testing.assert_allclose(fs["u1"][:, :DIM].numpy(), feats["u1"])  # cmvn none: static part


def test_missing_files_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(DataDirError) as info:
        FeatureSet(tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'feats.scp'}: file not found (run 'asr features' on this directory first)"
    )
    feats = random_feats(1)
    data = write_datadir(tmp_path / "d", feats, {"u0": "x"})
    (data / "feats.yaml").unlink()
    with pytest.raises(DataDirError, match="feats.yaml: file not found"):
        FeatureSet(data)


def test_load_examples_skips_and_counts_bad_utterances(tmp_path) -> None:
    feats = random_feats(5)
    texts = {"u0": "yes no", "u1": "", "u2": "yes maybe", "u3": "no", "x9": "yes"}
    data = write_datadir(tmp_path / "d", feats, texts)
    (data / "text").write_text(
        "u0 yes no\nu1\nu2 yes maybe\nu3 no\nx9 yes\n", encoding="utf-8"
    )  # u1's line has no words at all
    tokens = TokenList.from_texts(["yes no"])
    examples, report = load_examples(FeatureSet(data), tokens)
    by_id = {e.utt_id: e for e in examples}
    assert sorted(by_id) == ["u0", "u2", "u3"]
    assert by_id["u0"].labels == tokens.encode("yes no")
    assert by_id["u2"].labels is None and by_id["u2"].ref == ["yes", "maybe"]
    counts = {reason.split(" (")[0]: n for reason, n in report.counts.items()}
    assert counts == {
        "in feats.scp but not in text": 1,  # u4
        "with an empty transcript": 1,  # u1
        "with unknown tokens": 1,  # u2
        "in text but not in feats.scp": 1,  # x9
    }
    lines = report.lines("train")
    assert len(lines) == 4 and any("u4" in line for line in lines)


def test_ctc_min_frames_counts_repeats() -> None:
    assert ctc_min_frames([]) == 0
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([1, 1, 2]) == 4  # a blank must separate the two 1s
    assert ctc_min_frames([5, 5, 5, 5]) == 7


def test_fits_ctc_uses_the_models_output_lengths(tmp_path) -> None:
    from asr.features.dataset import Example

    skip3 = lambda n: (n + 2) // 3  # noqa: E731  (ceil(L / 3), the model with skip 3)
    examples = [
        Example("ok", 9, ["a", "b", "c"], [1, 2, 3]),  # 3 frames out >= 3
        Example("repeat", 9, ["a", "a", "b"], [1, 1, 2]),  # 3 frames out < 4
        Example("short", 5, ["a", "b", "c"], [1, 2, 3]),  # 2 frames out < 3
        Example("unknown", 1, ["x", "y"], None),  # no labels: kept for scoring
    ]
    fit, short = fits_ctc(examples, skip3)
    assert [e.utt_id for e in fit] == ["ok", "unknown"]
    assert [e.utt_id for e in short] == ["repeat", "short"]


def test_batches_respect_budget_and_cover_each_utterance_once() -> None:
    rng = random.Random(3)
    lengths = {f"utt{i}": rng.randint(5, 400) for i in range(300)}
    lengths["huge"] = 5000  # above the budget: goes alone
    budget = 1200
    batches = make_batches(lengths, budget)
    flat = [u for batch in batches for u in batch]
    assert sorted(flat) == sorted(lengths)
    for batch in batches:
        padded = len(batch) * max(lengths[u] for u in batch)
        assert padded <= budget or len(batch) == 1
    assert ["huge"] in batches
    # sorted by length: the padding waste stays small
    waste = sum(len(b) * max(lengths[u] for u in b) - sum(lengths[u] for u in b) for b in batches)
    assert waste < 0.05 * sum(lengths.values())
    limited = make_batches(lengths, budget, max_utts=4)
    assert max(len(b) for b in limited) == 4


def test_batch_order_is_a_deterministic_shuffle() -> None:
    lengths = {f"utt{i}": 10 + i for i in range(60)}
    plain = make_batches(lengths, 50)
    one = make_batches(lengths, 50, shuffle_seed=1)
    assert one == make_batches(list(reversed(list(lengths.items()))), 50, shuffle_seed=1)
    assert one != plain and sorted(one) == sorted(plain)
    assert make_batches(lengths, 50, shuffle_seed=2) != one


def test_collate_pads_and_concatenates_targets(tmp_path) -> None:
    feats = random_feats(2)
    data = write_datadir(tmp_path / "d", feats, {"u0": "a b", "u1": "b"})
    tokens = TokenList.from_texts(["a b"])
    fs = FeatureSet(data)
    examples, _ = load_examples(fs, tokens)
    x, lengths, targets, target_lengths = collate(fs, examples)
    n0, n1 = len(feats["u0"]), len(feats["u1"])
    assert x.shape == (2, max(n0, n1), DIM)
    assert lengths.tolist() == [n0, n1]
    assert targets.tolist() == [1, 2, 2] and target_lengths.tolist() == [2, 1]
    short = min(range(2), key=lambda i: lengths[i])
    assert torch.all(x[short, lengths[short] :] == 0)
