"""Graves, Mohamed & Hinton 2013 as recipes/timit/conf/train_graves*.yaml: the gradient of
-ln p(z|x) per utterance (``training.loss_normalization``), uniform initial weights
(``model.init_uniform``), the recipe configs themselves, and the 61 TIMIT phones as tokens.

Every signal is made here and small: a one-layer BLSTM on a few random frames, or the tiny
synthetic task of test_train; the whole file runs in seconds.
"""

from __future__ import annotations

import copy
import math
import os
import re
import socket
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
import yaml
from torch.nn.parallel import DistributedDataParallel

from asr.cli import main
from asr.errors import ConfigError
from asr.features.config import load_feature_config
from asr.nn.load import load_network
from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.package import ModelPackage, load_package, save_package
from asr.training.config import TrainConfig, load_train_config
from asr.training.init_from import init_from_package
from asr.training.step import TrainStep
from asr.training.trainer import train

CPU = torch.device("cpu")
CONF = Path(__file__).resolve().parent.parent / "recipes" / "timit" / "conf"


# --- loss_normalization: what the gradient is of -------------------------------------------


def _tiny_model(seed: int = 0) -> AcousticModel:
    torch.manual_seed(seed)
    return AcousticModel(ModelConfig(input_dim=5, num_tokens=6, num_layers=1, hidden_size=8))


def _utterances() -> list[tuple[torch.Tensor, list[int]]]:
    """Three utterances (frames, labels) of different lengths and label counts."""
    generator = torch.Generator().manual_seed(7)
    return [
        (torch.randn(20, 5, generator=generator), [1, 2, 3]),
        (torch.randn(14, 5, generator=generator), [4, 5]),
        (torch.randn(17, 5, generator=generator), [2, 2, 1, 5]),
    ]


def _batch(utts: list[tuple[torch.Tensor, list[int]]]) -> tuple[torch.Tensor, ...]:
    lengths = torch.tensor([len(f) for f, _ in utts])
    feats = torch.zeros(len(utts), int(lengths.max()), 5)
    for i, (f, _) in enumerate(utts):
        feats[i, : len(f)] = f
    targets = torch.tensor([t for _, labels in utts for t in labels])
    return feats, lengths, targets, torch.tensor([len(labels) for _, labels in utts])


def _step_gradient(model: AcousticModel, batch: tuple, normalization: str) -> tuple[dict, float]:
    """The gradient TrainStep takes on ``batch`` (lr 0: the weights stay), and its loss."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    step = TrainStep(model, model, optimizer, CPU, grad_clip=0.0, loss_normalization=normalization)
    result = step(*batch)
    assert result.loss is not None
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return grads, result.loss


def _summed_loss_gradient(model: AcousticModel, batch: tuple) -> dict[str, torch.Tensor]:
    """d(sum over the batch of -ln p(z|x))/dw, with torch's own CTC: the reference."""
    feats, lengths, targets, target_lengths = batch
    model.zero_grad(set_to_none=True)
    log_probs, out_lengths = model(feats, lengths)
    loss = F.ctc_loss(
        log_probs.transpose(0, 1), targets, out_lengths, target_lengths, reduction="sum"
    )
    loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def _assert_grads(actual: dict, expected: dict, scale: float = 1.0) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name] * scale, rtol=1e-5, atol=1e-7)


def test_utterance_normalization_takes_the_gradient_of_minus_log_p_of_the_utterance() -> None:
    batch = _batch(_utterances()[:1])  # one utterance of 3 phones
    model = _tiny_model()
    reference = _summed_loss_gradient(copy.deepcopy(model), batch)

    by_utterance, loss_u = _step_gradient(copy.deepcopy(model), batch, "utterance")
    by_token, loss_t = _step_gradient(copy.deepcopy(model), batch, "token")

    _assert_grads(by_utterance, reference)
    _assert_grads(by_token, reference, 1.0 / 3)
    # the two really differ (by the token count), and what is reported does not: the summed
    # loss, which the trainer divides by the tokens for its logs
    assert not torch.allclose(by_utterance["output.weight"], by_token["output.weight"])
    assert loss_u == pytest.approx(loss_t, rel=1e-6)


def test_utterance_normalization_divides_a_larger_batch_by_its_utterances() -> None:
    batch = _batch(_utterances())  # 3 utterances, 9 phones
    model = _tiny_model()
    reference = _summed_loss_gradient(copy.deepcopy(model), batch)
    by_utterance, _ = _step_gradient(copy.deepcopy(model), batch, "utterance")
    by_token, _ = _step_gradient(copy.deepcopy(model), batch, "token")
    _assert_grads(by_utterance, reference, 1.0 / 3)
    _assert_grads(by_token, reference, 1.0 / 9)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, world: int, port: int, state: dict, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = _tiny_model()
        model.load_state_dict(state)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        network = DistributedDataParallel(model)
        step = TrainStep(
            network, model, optimizer, CPU, distributed=True, loss_normalization="utterance"
        )
        utts = _utterances()
        # unequal shares: rank 0 one utterance, rank 1 two
        step(*_batch(utts[:1] if rank == 0 else utts[1:]))
        if rank == 0:
            torch.save({n: p.grad for n, p in model.named_parameters()}, out)
    finally:
        dist.destroy_process_group()


def test_utterance_normalization_under_ddp_divides_by_every_process_utterances(
    tmp_path,
) -> None:
    """Two gloo processes holding 1 and 2 utterances take the step one process would take on
    all 3: the summed-loss gradient over 3, not the mean of (1/1, 1/2)-scaled gradients."""
    model = _tiny_model()
    out = tmp_path / "grads.pt"
    mp.spawn(_ddp_worker, args=(2, _free_port(), model.state_dict(), str(out)), nprocs=2)
    reference = _summed_loss_gradient(model, _batch(_utterances()))
    _assert_grads(torch.load(out, weights_only=True), reference, 1.0 / 3)


def _two_phone_data(path: Path, n: int, seed: int) -> None:
    """Utterances of exactly two labels each: there, a step on -ln p(z|x) with learning rate
    lr is a step on the per-token loss with 2 * lr."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    feats, texts = {}, {}
    for i in range(n):
        labels = rng.integers(0, 3, size=2)
        rows = [np.zeros((2, 4))]
        for label in labels:
            word = np.zeros((4, 4))
            word[:, label] = 3.0
            rows += [word, np.zeros((2, 4))]
        mat = np.concatenate(rows)
        feats[f"u{i:02d}"] = (mat + 0.3 * rng.standard_normal(mat.shape)).astype(np.float32)
        texts[f"u{i:02d}"] = " ".join("abc"[j] for j in labels)
    kaldiio.save_ark(str(path / "feats.ark"), feats, scp=str(path / "feats.scp"))
    (path / "text").write_text("".join(f"{u} {t}\n" for u, t in texts.items()))
    (path / "utt2spk").write_text("".join(f"{u} s\n" for u in texts))
    feats_yaml = {"kind": "fbank", "options": {"num_mel_bins": 4}, "cmvn": "global"}
    (path / "feats.yaml").write_text(yaml.safe_dump(feats_yaml))


def test_train_passes_the_normalization_to_each_step(tmp_path) -> None:
    """Through asr.training.trainer.train: per utterance with lr equals per token with 2 lr
    on two-token utterances (SGD is linear in the gradient), and differs from per token with
    lr; the losses logged stay per token."""
    _two_phone_data(tmp_path / "train", 8, seed=1)
    _two_phone_data(tmp_path / "dev", 3, seed=2)

    def run(name: str, normalization: str, lr: float) -> tuple[dict, list]:
        cfg = {
            "model": {"num_layers": 1, "hidden_size": 8},
            "training": {
                "optimizer": "sgd",
                "lr": lr,
                "momentum": 0.9,
                "max_batch_utts": 1,
                "grad_clip": 0.0,
                "max_epochs": 2,
                "precision": "fp32",
                "loss_normalization": normalization,
            },
        }
        summary = train(
            cfg, tmp_path / "train", tmp_path / "dev", tmp_path / name, threads=1, progress=False
        )
        return load_package(tmp_path / name / "epoch-2.pt").state_dict, summary.history

    by_utterance, history_u = run("u", "utterance", 0.01)
    by_token_2lr, history_t = run("t2", "token", 0.02)
    by_token, _ = run("t", "token", 0.01)
    for name, tensor in by_utterance.items():
        torch.testing.assert_close(tensor, by_token_2lr[name], rtol=1e-4, atol=1e-6)
    assert max((by_utterance[k] - by_token[k]).abs().max() for k in by_token) > 1e-3
    for a, b in zip(history_u, history_t, strict=True):  # per token, both of them
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["dev_loss"] == pytest.approx(b["dev_loss"], rel=1e-4)
    assert "gradient of the loss per utterance" in (tmp_path / "u" / "train.log").read_text()


# --- init_uniform -------------------------------------------------------------------------


def _graves_layer(init_uniform: float | None, seed: int = 5) -> AcousticModel:
    values = {"input_dim": 40, "num_tokens": 62, "num_layers": 2, "hidden_size": 250}
    if init_uniform is not None:
        values["init_uniform"] = init_uniform
    torch.manual_seed(seed)
    return AcousticModel(ModelConfig.from_dict(values))


def test_init_uniform_fills_the_interval_for_every_parameter() -> None:
    model = _graves_layer(0.1)
    for name, parameter in model.named_parameters():
        p = parameter.detach()
        assert float(p.abs().max()) <= 0.1, name
        if p.numel() >= 1000:
            # PyTorch's own init stays within 1/sqrt(250) = 0.063 (LSTM) and 1/sqrt(500)
            # (output layer): these fail without the option
            assert float(p.abs().max()) > 0.09, name
            assert float(p.mean()) == pytest.approx(0.0, abs=0.01), name
            assert float(p.std()) == pytest.approx(0.1 / math.sqrt(3), rel=0.05), name
    # reproducible from the seed, and the seed matters
    again, other = _graves_layer(0.1), _graves_layer(0.1, seed=6)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in again.state_dict().items())
    assert not torch.equal(state["output.weight"], other.state_dict()["output.weight"])


def test_init_uniform_zero_is_pytorch_init_and_leaves_the_generator_where_it_was() -> None:
    without = _graves_layer(None)
    after_without = torch.rand(3)
    zero = _graves_layer(0.0)
    after_zero = torch.rand(3)
    assert all(torch.equal(without.state_dict()[k], v) for k, v in zero.state_dict().items())
    assert torch.equal(after_without, after_zero)  # dropout etc. draw what they drew before
    assert "init_uniform" not in zero.config.to_dict()  # packages written as before
    graves = ModelConfig.from_dict({"input_dim": 3, "num_tokens": 4, "init_uniform": 0.1})
    assert graves.to_dict()["init_uniform"] == 0.1
    assert ModelConfig.from_dict(graves.to_dict()) == graves


def test_a_package_without_the_key_loads_and_runs_as_before(tmp_path) -> None:
    model = _tiny_model(3)
    old_config = {  # what asr wrote before init_uniform existed
        "input_dim": 5,
        "num_tokens": 6,
        "cell": "lstm",
        "num_layers": 1,
        "hidden_size": 8,
        "bidirectional": True,
        "projection_size": 0,
        "dropout": 0.0,
        "stack": 1,
        "skip": 1,
    }
    package = ModelPackage(
        state_dict=model.state_dict(),
        model_config=old_config,
        tokens=["<blk>", "a", "b", "c", "d", "e"],
        feature_config={"kind": "fbank", "options": {"num_mel_bins": 5}, "cmvn": "none"},
    )
    save_package(package, tmp_path / "old.pt")
    loaded = load_network(tmp_path / "old.pt")
    assert loaded.model.config.init_uniform == 0.0
    feats, lengths, _, _ = _batch(_utterances())
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.model(feats, lengths)[0], model(feats, lengths)[0])

    # and it can start a Graves run (init_uniform is not architecture)
    fresh = _tiny_model(4)
    graves = {**fresh.config.to_dict(), "init_uniform": 0.1}
    report = init_from_package(fresh, graves, package.tokens, load_package(tmp_path / "old.pt"))
    assert report["tensors"] == report["total"]
    assert torch.equal(fresh.output.weight, model.output.weight)


# --- the recipe's configs ------------------------------------------------------------------


def test_the_recipe_configs_say_what_the_paper_says() -> None:
    features = load_feature_config(CONF / "fbank_graves.yaml")
    assert features.raw_dim == 41 and features.delta_order == 2 and features.dim == 123
    assert features.cmvn == "global" and features.norm_vars is True
    # the same features as conf/fbank.yaml in every other respect
    base = load_feature_config(CONF / "fbank.yaml").to_dict()
    assert {**base, "cmvn": "global"} == features.to_dict()

    phases = {}
    for name in ("train_graves.yaml", "train_graves_noise.yaml"):
        section, cfg = load_train_config(CONF / name)
        model = ModelConfig.from_dict({**section, "input_dim": features.dim, "num_tokens": 62})
        assert (model.cell, model.num_layers, model.hidden_size) == ("lstm", 5, 250)
        assert model.bidirectional and model.projection_size == 0 and model.dropout == 0.0
        assert (model.stack, model.skip, model.init_uniform) == (1, 1, 0.1)
        # Table 1 of the paper: 6.8M weights for CTC-5l-250h (61 phones + blank)
        assert round(AcousticModel(model).num_parameters() / 1e6, 1) == 6.8
        assert (cfg.unit, cfg.optimizer, cfg.lr, cfg.momentum) == ("phone", "sgd", 1e-4, 0.9)
        assert cfg.max_batch_utts == 1 and cfg.loss_normalization == "utterance"
        assert cfg.grad_clip == 0.0 and cfg.spec_augment is None and cfg.weight_decay == 0.0
        assert cfg.lr_halving_patience == 0  # a constant learning rate
        assert cfg.early_stopping_patience > 0
        phases[name] = (section, cfg.to_dict())
    (model_1, train_1), (model_2, train_2) = phases.values()
    assert train_1["weight_noise"] == 0.0 and train_2["weight_noise"] == 0.075
    # phase 2 is phase 1 plus the noise (and no plateau restart, which would drop phase 1)
    assert model_1 == model_2
    differ = {k for k in train_1 if train_1[k] != train_2[k]}
    assert differ == {"weight_noise", "plateau_patience"} and train_2["plateau_patience"] == 0


# --- bad values ------------------------------------------------------------------------------


def _assert_one_line_file_error(path: Path, section: str, key: str, value: object) -> None:
    """A config file setting ``section.key: value`` fails to load in one line naming the
    file and the key."""
    path.write_text(yaml.safe_dump({section: {key: value}}))
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and key in message


@pytest.mark.parametrize("value", ["sequence", "", None, 1, ["token"]])
def test_a_bad_loss_normalization_is_a_one_line_error(tmp_path, value) -> None:
    with pytest.raises(ConfigError, match="loss_normalization must be one of token, utterance"):
        TrainConfig.from_dict({"loss_normalization": value})
    _assert_one_line_file_error(tmp_path / "c.yaml", "training", "loss_normalization", value)


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf"), True, "0.1", None])
def test_a_bad_init_uniform_is_a_one_line_error(tmp_path, value) -> None:
    with pytest.raises(ConfigError, match="init_uniform must be a"):
        ModelConfig.from_dict({"input_dim": 3, "num_tokens": 4, "init_uniform": value})
    _assert_one_line_file_error(tmp_path / "c.yaml", "model", "init_uniform", value)


def test_the_cli_names_a_bad_option_in_one_line(tmp_path, capsys) -> None:
    _two_phone_data(tmp_path / "train", 2, seed=1)
    code = main(
        [
            "train",
            "--config",
            str(CONF / "train_graves.yaml"),
            "--train-dir",
            str(tmp_path / "train"),
            "--dev-dir",
            str(tmp_path / "train"),
            "--exp-dir",
            str(tmp_path / "exp"),
            "training.loss_normalization=frame",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "loss_normalization" in err


# --- the 61 TIMIT phones as tokens ---------------------------------------------------------

# the phones61 symbols that are not plain letters, and two that are
PHONES61 = ("h#", "q", "pau", "epi", "ax-h", "aa")


def test_timit61_symbols_train_decode_and_score_on_39(tmp_path, capsys) -> None:
    """h# (a '#'), ax-h (a '-'), q (deleted in scoring), pau and epi (sil) go through tokens,
    training, decoding and scoring with timit61-39 like any symbol."""
    rng = np.random.default_rng(0)
    for part, n in (("train", 60), ("dev", 10)):
        path = tmp_path / part
        path.mkdir()
        feats, texts = {}, {}
        for i in range(n):
            labels = ["h#", *rng.choice(PHONES61[1:], size=int(rng.integers(1, 4))), "h#"]
            rows = [np.zeros((1, len(PHONES61)))]
            for label in labels:
                block = np.zeros((int(rng.integers(3, 6)), len(PHONES61)))
                block[:, PHONES61.index(label)] = 3.0
                rows += [block, np.zeros((1, len(PHONES61)))]
            mat = np.concatenate(rows)
            utt = f"{part}{i:03d}"
            feats[utt] = (mat + 0.3 * rng.standard_normal(mat.shape)).astype(np.float32)
            texts[utt] = " ".join(labels)
        kaldiio.save_ark(str(path / "feats.ark"), feats, scp=str(path / "feats.scp"))
        (path / "text").write_text("".join(f"{u} {t}\n" for u, t in texts.items()))
        (path / "utt2spk").write_text("".join(f"{u} s{i % 3}\n" for i, u in enumerate(texts)))
        config = {"kind": "fbank", "options": {"num_mel_bins": len(PHONES61)}, "cmvn": "global"}
        (path / "feats.yaml").write_text(yaml.safe_dump(config))
    cfg = {
        "model": {"num_layers": 1, "hidden_size": 24},
        "training": {"unit": "phone", "lr": 0.02, "max_epochs": 8, "batch_frames": 120},
    }
    cfg["training"]["precision"] = "fp32"
    summary = train(cfg, tmp_path / "train", tmp_path / "dev", tmp_path / "exp", threads=1)
    assert summary.best_dev_ter < 20.0  # learnt, not just run
    tokens = (tmp_path / "exp" / "tokens.txt").read_text().split()[::2]
    assert tokens == ["<blk>", *sorted(PHONES61)]

    hyp_dir = tmp_path / "exp" / "decode"
    assert (
        main(["decode", str(tmp_path / "exp" / "final.pt"), str(tmp_path / "dev"), str(hyp_dir)])
        == 0
    )
    hyps = (hyp_dir / "text").read_text()
    assert "h#" in hyps  # the symbol comes back whole
    capsys.readouterr()
    ref = tmp_path / "dev" / "text"
    assert (
        main(
            [
                "score",
                str(ref),
                str(hyp_dir / "text"),
                "--metric",
                "PER",
                "--phone-map",
                "timit61-39",
            ]
        )
        == 0
    )
    line = capsys.readouterr().out
    # q deleted, h# pau epi all sil: the reference counted on 39 phones is the 61-phone one
    # without its q
    refs = [r.split()[1:] for r in ref.read_text().splitlines()]
    folded = sum(len([p for p in r if p != "q"]) for r in refs)
    assert folded < sum(map(len, refs))
    match = re.search(r"%PER [\d.]+ \[ \d+ / (\d+),", line)
    assert match is not None and int(match.group(1)) == folded, line
