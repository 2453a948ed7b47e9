"""Graves' weight noise: noisy weights for the forward and backward pass, clean ones updated."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_train import config, run, write_synthetic

from asr.errors import ConfigError
from asr.nn.model import AcousticModel, ModelConfig, ctc_loss
from asr.nn.package import load_package
from asr.training.config import load_train_config
from asr.training.step import TrainStep
from asr.training.weight_noise import noisy_weights


def _model(seed: int = 0) -> AcousticModel:
    torch.manual_seed(seed)
    return AcousticModel(ModelConfig(input_dim=5, num_tokens=4, num_layers=1, hidden_size=50))


def _batch() -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(3)
    feats = torch.randn(2, 30, 5, generator=generator)
    return feats, torch.tensor([30, 25]), torch.tensor([1, 2, 3, 1, 2]), torch.tensor([3, 2])


def test_noise_has_the_asked_spread_and_the_clean_weights_come_back_exactly() -> None:
    model = _model()
    clean = [p.detach().clone() for p in model.parameters()]

    def same() -> bool:
        return all(torch.equal(p, c) for p, c in zip(model.parameters(), clean, strict=True))

    with noisy_weights(model.parameters(), 0.075, seed=11) as noise:
        params = list(model.parameters())
        shifted = torch.cat(
            [(p - c).detach().flatten() for p, c in zip(params, clean, strict=True)]
        )
        drawn = torch.cat([n.flatten() for n in noise])
    assert shifted.numel() > 10_000
    assert torch.allclose(shifted, drawn, atol=1e-6)
    assert float(shifted.std()) == pytest.approx(0.075, rel=0.03)
    assert abs(float(shifted.mean())) < 0.003
    assert same()  # bit for bit
    # the same seed draws the same noise; another seed other noise
    with noisy_weights(model.parameters(), 0.075, seed=11) as again:
        assert all(torch.equal(a, b) for a, b in zip(noise, again, strict=True))
    with noisy_weights(model.parameters(), 0.075, seed=12) as other:
        assert not torch.equal(noise[0], other[0])
    with pytest.raises(RuntimeError), noisy_weights(model.parameters(), 0.1, seed=1):
        raise RuntimeError("a failing forward pass")
    assert same()
    with noisy_weights(model.parameters(), 0.0, seed=1) as none:
        assert none == [] and same()


def test_the_step_takes_the_gradient_at_the_noisy_weights_and_updates_the_clean_ones() -> None:
    feats, lengths, targets, target_lengths = _batch()
    lr, std, seed = 0.1, 0.05, 123
    model = _model()
    clean = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    step = TrainStep(model, model, optimizer, torch.device("cpu"), weight_noise=std)
    result = step(feats, lengths, targets, target_lengths, augment_seed=seed)

    # the same gradient by hand: noise from the same seed, loss, backward
    reference = _model()
    with noisy_weights(reference.parameters(), std, seed):
        log_probs, out_lengths = reference(feats, lengths)
        loss = ctc_loss(log_probs.float(), out_lengths, targets, target_lengths)
        (loss / int(target_lengths.sum())).backward()
    assert result.loss == pytest.approx(float(loss.detach()), rel=1e-6)
    for p, c, r in zip(model.parameters(), clean, reference.parameters(), strict=True):
        assert torch.allclose(p, c - lr * r.grad, atol=1e-6)

    # without noise the step's loss is that of the clean weights, a different number
    plain = _model()
    step = TrainStep(plain, plain, torch.optim.SGD(plain.parameters(), lr=lr), torch.device("cpu"))
    clean_loss = step(feats, lengths, targets, target_lengths, augment_seed=seed).loss
    assert abs(clean_loss - result.loss) > 1e-3 * abs(clean_loss)


def test_training_with_weight_noise_is_logged_reproducible_and_still_learns(tmp_path) -> None:
    data = (tmp_path / "train", tmp_path / "dev")
    write_synthetic(data[0], 60, seed=1)
    write_synthetic(data[1], 12, seed=2)
    noisy = config(weight_noise=0.02, max_epochs=4)
    first = run(noisy, data, tmp_path / "a", seed=5)
    second = run(noisy, data, tmp_path / "b", seed=5)
    plain = run(config(max_epochs=4), data, tmp_path / "c", seed=5)
    a = load_package(tmp_path / "a" / "final.pt").state_dict
    b = load_package(tmp_path / "b" / "final.pt").state_dict
    c = load_package(tmp_path / "c" / "final.pt").state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)  # the noise is drawn from the run's seed
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert first.history[-1]["train_loss"] != plain.history[-1]["train_loss"]
    assert first.best_dev_ter <= 10.0 and second.best_dev_ter == first.best_dev_ter
    assert "weight noise 0.02" in (tmp_path / "a" / "train.log").read_text()
    assert "weight noise 0;" in (tmp_path / "c" / "train.log").read_text()


def test_a_negative_weight_noise_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("training:\n  weight_noise: -0.1\n")
    with pytest.raises(ConfigError, match=r"train.yaml.*weight_noise must not be negative"):
        load_train_config(path)
    path.write_text("training:\n  weight_noise: .nan\n")
    with pytest.raises(ConfigError, match=r"train.yaml.*weight_noise must be a finite number"):
        load_train_config(path)
