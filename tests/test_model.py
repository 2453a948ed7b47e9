"""The acoustic model: stacking, exact padded batches, cells, causality, config, dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from asr.errors import ConfigError
from asr.nn.model import (
    AcousticModel,
    ModelConfig,
    ctc_loss,
    load_model_config,
    output_lengths,
    stack_frames,
)
from asr.nn.precision import autocast

# nn.LSTM(proj_size=...) warns that oneDNN does not support it; that is expected here
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

CELLS = ("lstm", "gru", "rnn")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and the test machine's cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(**overrides) -> ModelConfig:
    values = dict(input_dim=4, num_tokens=6, num_layers=2, hidden_size=12)
    values.update(overrides)
    return ModelConfig(**values)


@pytest.mark.parametrize(("stack", "skip"), [(1, 1), (3, 3), (2, 3), (5, 2), (1, 4)])
def test_stacking_known_frames(stack: int, skip: int) -> None:
    # feature value = 100 * utterance + frame, so each output names the frames it holds
    lengths = torch.tensor([10, 7, 1])
    feats = torch.zeros(3, 10, 2)
    for b, length in enumerate(lengths.tolist()):
        for t in range(length):
            feats[b, t] = 100 * b + t
    stacked, out_lengths = stack_frames(feats, lengths, stack, skip)
    assert stacked.shape == (-(-10 // skip), 3, 2 * stack)
    assert out_lengths.tolist() == [-(-n // skip) for n in lengths.tolist()]
    for b, length in enumerate(lengths.tolist()):
        for j in range(out_lengths[b]):
            expected = [100 * b + min(j * skip + i, length - 1) for i in range(stack)]
            assert stacked[j, b, ::2].tolist() == expected


@pytest.mark.parametrize(("stack", "skip"), [(1, 1), (3, 3), (8, 3), (2, 1)])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_output_shapes_and_lengths(stack: int, skip: int, bidirectional: bool) -> None:
    config = small_config(stack=stack, skip=skip, bidirectional=bidirectional)
    model = AcousticModel(config).eval()
    lengths = torch.tensor([17, 9, 3, 1])
    log_probs, out_lengths = model(torch.randn(4, 17, 4), lengths)
    assert log_probs.shape == (4, -(-17 // skip), 6)
    assert out_lengths.tolist() == [-(-n // skip) for n in (17, 9, 3, 1)]
    assert torch.equal(model.output_lengths(lengths), out_lengths)
    # log-softmax: each frame is a distribution
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]), atol=1e-5)


def test_output_lengths_is_ceiling() -> None:
    lengths = torch.arange(0, 20)
    assert output_lengths(lengths, 3).tolist() == [(n + 2) // 3 for n in range(20)]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("projection", [0, 5])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_utterance_alone_equals_in_padded_batch(
    cell: str, projection: int, bidirectional: bool
) -> None:
    torch.manual_seed(0)
    config = small_config(
        cell=cell, projection_size=projection, bidirectional=bidirectional, stack=3, skip=3
    )
    model = AcousticModel(config).eval()
    short, long = torch.randn(1, 14, 4), torch.randn(1, 40, 4)
    batch = torch.zeros(2, 40, 4)
    batch[0, :14], batch[1] = short[0], long[0]
    alone, alone_len = model(short, torch.tensor([14]))
    batched, batched_len = model(batch, torch.tensor([14, 40]))
    assert alone_len.item() == batched_len[0].item() == 5
    torch.testing.assert_close(batched[0, :5], alone[0], atol=1e-5, rtol=0)
    long_alone, _ = model(long, torch.tensor([40]))
    torch.testing.assert_close(batched[1], long_alone[0], atol=1e-5, rtol=0)


def test_matches_packed_bidirectional_lstm_reference() -> None:
    # Known answer: torch's own nn.LSTM over a packed batch with the same weights
    torch.manual_seed(1)
    config = small_config(num_layers=3, hidden_size=10)
    model = AcousticModel(config).eval()
    reference = nn.LSTM(4, 10, num_layers=3, bidirectional=True)
    with torch.no_grad():
        for number, layer in enumerate(model.layers):
            for name, param in layer.fwd.named_parameters():
                getattr(reference, f"{name[:-1]}{number}").copy_(param)
            for name, param in layer.bwd.named_parameters():
                getattr(reference, f"{name[:-1]}{number}_reverse").copy_(param)
    feats = torch.randn(3, 25, 4)
    lengths = torch.tensor([25, 11, 4])
    packed = nn.utils.rnn.pack_padded_sequence(feats, lengths, batch_first=True)
    hidden, _ = nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True)
    expected = model.output(hidden).log_softmax(-1)
    log_probs, _ = model(feats, lengths)
    for b, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(log_probs[b, :length], expected[b, :length], atol=1e-5, rtol=0)


def test_batch_gradient_equals_sum_of_utterance_gradients() -> None:
    # padding must not leak into the backward pass either
    torch.manual_seed(2)
    model = AcousticModel(small_config(stack=2, skip=2))
    feats = torch.randn(2, 30, 4)
    lengths = torch.tensor([30, 13])
    targets = torch.tensor([[1, 2, 3, 4], [5, 1, 0, 0]])
    target_lengths = torch.tensor([4, 2])

    def grads(x, x_lengths, y, y_lengths) -> list[torch.Tensor]:
        model.zero_grad()
        log_probs, out_lengths = model(x, x_lengths)
        ctc_loss(log_probs, out_lengths, y, y_lengths).backward()
        return [p.grad.clone() for p in model.parameters()]

    together = grads(feats, lengths, targets, target_lengths)
    first = grads(feats[:1], lengths[:1], targets[:1], target_lengths[:1])
    second = grads(feats[1:, :13], lengths[1:], targets[1:, :2], target_lengths[1:])
    for g, g1, g2 in zip(together, first, second, strict=True):
        torch.testing.assert_close(g, g1 + g2, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [True, False])
def test_each_cell_overfits_a_tiny_ctc_task(cell: str, bidirectional: bool) -> None:
    torch.manual_seed(0)
    config = small_config(
        cell=cell, bidirectional=bidirectional, hidden_size=24, stack=2, skip=2, num_tokens=5
    )
    model = AcousticModel(config).train()
    feats = torch.randn(4, 24, 4)
    lengths = torch.tensor([24, 22, 20, 18])
    targets = torch.randint(1, 5, (4, 3))
    target_lengths = torch.full((4,), 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        log_probs, out_lengths = model(feats, lengths)
        loss = ctc_loss(log_probs, out_lengths, targets, target_lengths, reduction="mean")
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses[::10]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(("stack", "skip"), [(1, 1), (3, 3), (4, 2)])
def test_forward_only_model_is_causal(cell: str, stack: int, skip: int) -> None:
    torch.manual_seed(0)
    model = AcousticModel(small_config(cell=cell, bidirectional=False, stack=stack, skip=skip))
    model.eval()
    feats = torch.randn(1, 30, 4)
    lengths = torch.tensor([30])
    before, _ = model(feats, lengths)
    changed = feats.clone()
    cut = 15
    changed[:, cut:] = torch.randn(1, 30 - cut, 4)
    after, _ = model(changed, lengths)
    # output frame j reads input frames up to j*skip + stack - 1
    unaffected = [j for j in range(before.shape[1]) if j * skip + stack - 1 < cut]
    affected = [j for j in range(before.shape[1]) if j not in unaffected]
    torch.testing.assert_close(after[0, unaffected], before[0, unaffected], atol=0, rtol=0)
    assert not torch.allclose(after[0, affected[0]], before[0, affected[0]])


def test_bidirectional_model_sees_the_future() -> None:
    # the contrast to the causality test: the backward direction must be wired in
    torch.manual_seed(0)
    model = AcousticModel(small_config()).eval()
    feats = torch.randn(1, 20, 4)
    before, _ = model(feats, torch.tensor([20]))
    feats[:, 5] += 1.0
    after, _ = model(feats, torch.tensor([20]))
    assert (after[0, 0] - before[0, 0]).abs().max() > 1e-4


@pytest.mark.parametrize("cell", CELLS)
def test_projection_sizes(cell: str) -> None:
    model = AcousticModel(small_config(cell=cell, projection_size=5, hidden_size=12))
    assert model.output.in_features == 10
    first = model.layers[0]
    if cell == "lstm":
        assert first.fwd.weight_hr_l0.shape == (5, 12)  # recurrent projection
        assert first.proj is None
    else:
        assert first.proj.in_features == 24 and first.proj.out_features == 10
    assert model.layers[1].fwd.input_size == 10


def test_dropout_off_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = AcousticModel(small_config(dropout=0.5, num_layers=3))
    feats, lengths = torch.randn(2, 15, 4), torch.tensor([15, 10])
    model.train()
    first, _ = model(feats, lengths)
    second, _ = model(feats, lengths)
    assert not torch.allclose(first, second)  # dropout is live when training
    model.eval()
    first, _ = model(feats, lengths)
    second, _ = model(feats, lengths)
    assert torch.equal(first, second)


def test_state_dict_round_trip_gives_same_output() -> None:
    config = small_config(cell="gru", projection_size=4)
    model = AcousticModel(config).eval()
    copy = AcousticModel(ModelConfig.from_dict(config.to_dict())).eval()
    copy.load_state_dict(model.state_dict())
    feats, lengths = torch.randn(2, 9, 4), torch.tensor([9, 5])
    assert torch.equal(model(feats, lengths)[0], copy(feats, lengths)[0])


def test_config_round_trip() -> None:
    config = ModelConfig(
        input_dim=120,
        num_tokens=40,
        cell="gru",
        num_layers=3,
        hidden_size=64,
        bidirectional=False,
        projection_size=32,
        dropout=0.2,
        stack=3,
        skip=3,
    )
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig.from_dict({"input_dim": 3, "num_tokens": 4}) == ModelConfig(3, 4)


def test_config_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown model option.*hiden_size"):
        ModelConfig.from_dict({"input_dim": 3, "num_tokens": 4, "hiden_size": 10})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cell": "transformer"}, "cell must be one of"),
        ({"num_layers": 0}, "num_layers must be >= 1"),
        ({"hidden_size": "320"}, "hidden_size must be an integer"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"bidirectional": "yes"}, "bidirectional must be true or false"),
        ({"projection_size": 12, "hidden_size": 12}, "projection_size .12. must be smaller"),
        ({"skip": 0}, "skip must be >= 1"),
    ],
)
def test_config_bad_values(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelConfig.from_dict({"input_dim": 3, "num_tokens": 4, **values})


def test_load_model_config_from_yaml(tmp_path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(
        "model:\n  cell: rnn\n  num_layers: 2\n  hidden_size: 16\n  stack: 3\n  skip: 3\n"
        "training:\n  lr: 0.001\n"
    )
    config = load_model_config(path, input_dim=13, num_tokens=5)
    assert config == ModelConfig(13, 5, cell="rnn", num_layers=2, hidden_size=16, stack=3, skip=3)
    path.write_text("model:\n  hidden: 16\n")
    with pytest.raises(ConfigError, match=r"train\.yaml: unknown model option"):
        load_model_config(path, input_dim=13, num_tokens=5)
    path.write_text("model:\n  input_dim: 16\n")
    with pytest.raises(ConfigError, match="input_dim is taken from the data"):
        load_model_config(path, input_dim=13, num_tokens=5)
    with pytest.raises(ConfigError, match="file not found"):
        load_model_config(tmp_path / "missing.yaml", input_dim=13, num_tokens=5)


def rnn_kernels(module: nn.Module, *inputs: torch.Tensor) -> set[str]:
    """The recurrent ATen kernels a forward pass runs (e.g. oneDNN or cuDNN)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        module(*inputs)
    return {event.key for event in profiler.key_averages() if "rnn" in event.key}


def test_cpu_layers_use_the_same_kernel_as_a_bare_lstm() -> None:
    # exactness without packing must not fall back to a slower kernel than nn.LSTM's own
    model = AcousticModel(small_config()).eval()
    bare = nn.LSTM(4, 12, num_layers=2, bidirectional=True)
    expected = rnn_kernels(bare, torch.randn(10, 2, 4))
    assert expected  # e.g. aten::mkldnn_rnn_layer
    assert expected <= rnn_kernels(model, torch.randn(2, 10, 4), torch.tensor([10, 6]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_uses_cudnn_and_matches_cpu() -> None:
    torch.manual_seed(0)
    model = AcousticModel(small_config(stack=3, skip=3)).eval()
    feats, lengths = torch.randn(2, 30, 4), torch.tensor([30, 17])
    expected, _ = model(feats, lengths)
    model.cuda()
    # cuDNN runs fp32 RNNs in TF32 by default on Ampere and later (~1e-3 off): compare in fp32
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        got, _ = model(feats.cuda(), lengths.cuda())
        torch.testing.assert_close(got.cpu(), expected, atol=1e-4, rtol=0)
        alone, _ = model(feats[1:, :17].cuda(), lengths[1:].cuda())
        torch.testing.assert_close(got[1, :6], alone[0], atol=1e-5, rtol=0)
    if torch.backends.cudnn.is_available():
        assert "aten::_cudnn_rnn" in rnn_kernels(model, feats.cuda(), lengths.cuda())


def test_log_probs_are_a_distribution_in_fp32_under_bf16_autocast() -> None:
    """Under bf16 autocast the output layer runs in bf16, but its log-softmax must not: in bf16
    a confident frame's log-probs summed (in probability) to 1 +- ~1e-2, and CTC losses went
    below zero in bf16 training of the yes/no recipe."""
    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(input_dim=8, num_tokens=3, hidden_size=16, num_layers=1))
    # a large output bias makes the blank near-certain, where bf16's error showed most
    with torch.no_grad():
        model.output.bias.copy_(torch.tensor([12.0, 0.0, 0.0]))
    feats, lengths = torch.randn(2, 20, 8), torch.tensor([20, 14])
    with autocast(torch.device("cpu"), torch.bfloat16):
        log_probs, _ = model(feats, lengths)
    assert log_probs.dtype == torch.float32
    total = torch.logsumexp(log_probs, dim=-1)
    assert torch.allclose(total, torch.zeros_like(total), atol=1e-5)
    assert bool((log_probs <= 0).all())
