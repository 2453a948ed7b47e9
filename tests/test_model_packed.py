"""``model.rnn_impl: packed``: one fused bidirectional RNN over a packed batch per layer, on the
same weights as the default per-direction layers, with the same outputs and gradients."""

from __future__ import annotations

import copy
import warnings
from dataclasses import replace

import pytest
import torch

from asr.errors import ConfigError
from asr.nn.export import export_model, onnx_available
from asr.nn.load import load_network
from asr.nn.model import (
    AcousticModel,
    ModelConfig,
    ctc_loss,
    load_model_config,
    stack_frames,
)
from asr.nn.package import ModelPackage, load_package, save_package

# nn.LSTM(proj_size=...) warns that oneDNN does not support it; that is expected here
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

LENGTHS = [31, 17, 5, 24]  # unsorted, so packing must sort and unsort


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def twin_models(**overrides) -> tuple[AcousticModel, AcousticModel]:
    """A per-direction model and a packed one holding the same weights."""
    values = dict(input_dim=4, num_tokens=6, num_layers=2, hidden_size=12, stack=2, skip=2)
    values.update(overrides)
    torch.manual_seed(0)
    ours = AcousticModel(ModelConfig(**values))
    packed = AcousticModel(ModelConfig(**values, rnn_impl="packed"))
    packed.load_state_dict(ours.state_dict())
    return ours, packed


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    lengths = torch.tensor(LENGTHS)
    feats = torch.randn(len(LENGTHS), max(LENGTHS), 4)
    for b, length in enumerate(LENGTHS):
        feats[b, length:] = 0.0
    return feats, lengths


def assert_same_valid_frames(a: torch.Tensor, b: torch.Tensor, lengths: torch.Tensor) -> None:
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(a[row, :n], b[row, :n], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("cell", "projection"), [("lstm", 0), ("lstm", 5), ("gru", 4), ("rnn", 0)])
def test_packed_gives_the_per_direction_log_probs(cell: str, projection: int) -> None:
    ours, packed = twin_models(cell=cell, projection_size=projection)
    feats, lengths = padded_batch()
    want, want_lengths = ours.eval()(feats, lengths)
    got, got_lengths = packed.eval()(feats, lengths)
    assert torch.equal(got_lengths, want_lengths)
    assert_same_valid_frames(got, want, want_lengths)
    # and a short utterance alone gets what it gets in the batch
    alone, _ = packed(feats[2:3, :5], lengths[2:3])
    assert_same_valid_frames(alone, got[2:3], want_lengths[2:3])


def test_packed_gives_the_per_direction_gradients() -> None:
    ours, packed = twin_models(num_layers=3)
    feats, lengths = padded_batch()
    targets = torch.tensor([[1, 2, 3, 4], [5, 1, 2, 0], [3, 0, 0, 0], [2, 2, 4, 0]])
    target_lengths = torch.tensor([4, 3, 1, 3])
    grads = []
    for model in (ours, packed):
        model.train()
        log_probs, out_lengths = model(feats, lengths)
        ctc_loss(log_probs, out_lengths, targets, target_lengths).backward()
        grads.append({name: p.grad for name, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-5, rtol=1e-5, msg=name)


def test_one_state_dict_for_both_implementations() -> None:
    # the packed layer runs on the fwd/bwd parameters themselves: nothing to convert
    ours, packed = twin_models()
    assert list(ours.state_dict()) == list(packed.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in packed.named_parameters()]
    ours.load_state_dict(packed.state_dict(), strict=True)
    packed.load_state_dict(ours.state_dict(), strict=True)
    # the fused template holds no memory and is no part of the model
    layer = packed.layers[0]
    assert layer._fused and layer._fused[0].weight_ih_l0.is_meta
    assert not any(t.is_meta for t in packed.state_dict().values())


def test_a_deep_copy_runs_on_its_own_weights() -> None:
    # the fused template lives outside the module tree; a copy must not use the original's
    _, packed = twin_models()
    feats, lengths = padded_batch()
    before, _ = packed.eval()(feats, lengths)
    twin = copy.deepcopy(packed)
    with torch.no_grad():
        for param in twin.parameters():
            param.add_(0.1)
    assert torch.equal(packed(feats, lengths)[0], before)
    assert not torch.allclose(twin(feats, lengths)[0], before)


def test_packed_model_trains_and_its_package_loads_either_way(tmp_path) -> None:
    ours, packed = twin_models()
    feats, lengths = padded_batch()
    targets, target_lengths = torch.tensor([[1, 2], [3, 4], [5, 0], [2, 1]]), torch.full((4,), 2)
    target_lengths[2] = 1
    optimizer = torch.optim.Adam(packed.parameters(), lr=0.05)
    for _ in range(3):
        optimizer.zero_grad()
        log_probs, out_lengths = packed.train()(feats, lengths)
        ctc_loss(log_probs, out_lengths, targets, target_lengths).backward()
        optimizer.step()
    path = tmp_path / "packed.pt"
    package = ModelPackage(
        state_dict=packed.state_dict(),
        model_config=packed.config.to_dict(),
        tokens=["<blk>", "a", "b", "c", "d", "e"],
        feature_config={"kind": "fbank", "cmvn": "utterance"},
    )
    save_package(package, path)
    assert load_package(path).model_config["rnn_impl"] == "packed"
    loaded = load_network(path).model
    # on a CPU the package runs per direction (the faster way there), on the same weights
    assert loaded.config.rnn_impl == "per_direction"
    want, _ = packed.eval()(feats, lengths)
    got, out_lengths = loaded(feats, lengths)
    assert_same_valid_frames(got, want, out_lengths)
    # the same weights into a per-direction model: the trained weights moved, outputs too
    ours.load_state_dict(load_package(path).state_dict)
    got, _ = ours.eval()(feats, lengths)
    assert_same_valid_frames(got, want, out_lengths)


def test_default_config_serialises_as_before() -> None:
    config = ModelConfig(input_dim=3, num_tokens=4)
    assert config.rnn_impl == "per_direction"
    assert "rnn_impl" not in config.to_dict()  # packages and checkpoints written as before
    assert ModelConfig.from_dict(config.to_dict()) == config  # a package without the key
    packed = replace(config, rnn_impl="packed")
    assert packed.to_dict()["rnn_impl"] == "packed"
    assert ModelConfig.from_dict(packed.to_dict()) == packed
    with pytest.raises(ConfigError, match="rnn_impl must be one of per_direction, packed"):
        ModelConfig.from_dict({"input_dim": 3, "num_tokens": 4, "rnn_impl": "fused"})


def test_rnn_impl_from_yaml(tmp_path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("model:\n  hidden_size: 16\n  rnn_impl: packed\n")
    assert load_model_config(path, input_dim=13, num_tokens=5).rnn_impl == "packed"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forward_only_models_run_alike_and_online(cell: str) -> None:
    ours, packed = twin_models(cell=cell, bidirectional=False)
    assert not packed.layers[0]._fused  # nothing to pack: padding follows the valid frames
    feats, lengths = padded_batch()
    want, out_lengths = ours.eval()(feats, lengths)
    got, _ = packed.eval()(feats, lengths)
    assert_same_valid_frames(got, want, out_lengths)
    # online decoding: chunk by chunk, as forward over the whole utterance
    x, _ = stack_frames(feats[:1], lengths[:1], 2, 2)
    first, state = packed.forward_stacked(x[:7])
    second, _ = packed.forward_stacked(x[7:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), got[:1], atol=1e-5, rtol=0)


def test_packed_under_bf16_autocast_on_cpu_matches_fp32_roughly() -> None:
    ours, packed = twin_models()
    feats, lengths = padded_batch()
    with torch.inference_mode():
        want, out_lengths = ours.eval()(feats, lengths)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got, _ = packed.eval()(feats, lengths)
    assert got.dtype == torch.float32  # the log-softmax stays in fp32
    for row, n in enumerate(out_lengths.tolist()):
        assert float((got[row, :n] - want[row, :n]).abs().max()) < 0.1


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_a_packed_package_exports(tmp_path, fmt: str) -> None:
    # export rebuilds the per-direction computation from fwd/bwd and checks it against the
    # eager (here packed) model
    if fmt == "onnx" and onnx_available() is not None:
        pytest.skip(f"onnx: {onnx_available()}")
    _, packed = twin_models(input_dim=7, num_tokens=4, stack=1, skip=1)
    for param in packed.parameters():
        param.data.normal_(0, 0.3)
    path = tmp_path / "model.pt"
    save_package(
        ModelPackage(
            state_dict=packed.state_dict(),
            model_config=packed.config.to_dict(),
            tokens=["<blk>", "a", "b", "c"],
            feature_config={"kind": "fbank", "cmvn": "utterance"},
        ),
        path,
    )
    report = export_model(path, tmp_path / f"model.{fmt}", fmt)
    assert max(c.max_abs_diff for c in report.checks) <= 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_packed_matches_per_direction_in_one_cudnn_call() -> None:
    ours, packed = twin_models(num_layers=3)
    ours.cuda().train()
    packed.cuda().train()
    feats, lengths = padded_batch()
    feats, lengths = feats.cuda(), lengths.cuda()
    # TF32 (cuDNN's default for fp32 RNNs on Ampere and later) rounds to ~1e-3: compare in fp32
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        want, out_lengths = ours(feats, lengths)
        got, _ = packed(feats, lengths)
        assert_same_valid_frames(got, want, out_lengths)
        got.sum().backward()  # cuDNN's backward needs training mode in the fused template
        # after the first call the weights sit in one cuDNN buffer: no per-call copy, which
        # cuDNN would announce ("... not part of single contiguous chunk of memory ...")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            packed(feats, lengths)
        assert not [w for w in caught if "contiguous chunk" in str(w.message)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        packed(feats, lengths)
    calls = [e for e in profiler.key_averages() if e.key == "aten::_cudnn_rnn"]
    assert calls and calls[0].count == 3  # one fused call per layer, both directions
