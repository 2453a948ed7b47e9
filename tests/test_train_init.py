"""Fine-tuning: ``asr train --init-from PACKAGE`` (and ``training.init_from``).

The source model is trained for one epoch on the synthetic words a, b, c; the target data says
d where the source data said c, so the target token list <blk> a b d shares three symbols with
the source's and has one new one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_train import DIM, config, run, write_synthetic

import asr.training.trainer
from asr.errors import ConfigError, PackageError
from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.package import ModelPackage, load_checkpoint, load_package, save_package
from asr.training.init_from import init_from_package

OUTPUT = {"output.weight", "output.bias"}


def _rename(path: Path, old: str, new: str) -> None:
    lines = (path / "text").read_text().splitlines()
    renamed = [
        u + " " + " ".join(new if w == old else w for w in t.split())
        for u, _, t in (line.partition(" ") for line in lines)
    ]
    (path / "text").write_text("".join(line + "\n" for line in renamed))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, tuple[Path, Path]]:
    """A one-epoch model on a b c (tokens <blk> a b c) and target data on a b d."""
    root = tmp_path_factory.mktemp("init")
    write_synthetic(root / "src_train", 30, seed=1)
    write_synthetic(root / "src_dev", 6, seed=2)
    run(config(max_epochs=1), (root / "src_train", root / "src_dev"), root / "src_exp", seed=7)
    write_synthetic(root / "train", 30, seed=3)
    write_synthetic(root / "dev", 6, seed=4)
    for part in ("train", "dev"):
        _rename(root / part, "c", "d")
    return root / "src_exp" / "final.pt", (root / "train", root / "dev")


def _weights_before_training(monkeypatch) -> dict[str, torch.Tensor]:
    """Patch the training loop to record the model's weights just before the first step."""
    seen: dict[str, torch.Tensor] = {}
    fit = asr.training.trainer._Trainer.fit

    def recording_fit(self, callback):
        if not seen:
            seen.update({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return fit(self, callback)

    monkeypatch.setattr(asr.training.trainer._Trainer, "fit", recording_fit)
    return seen


def test_init_copies_hidden_weights_and_shared_output_rows(source, tmp_path, monkeypatch) -> None:
    package_path, data = source
    src = load_package(package_path)
    assert src.tokens == ["<blk>", "a", "b", "c"]
    before = _weights_before_training(monkeypatch)
    cfg = config(max_epochs=1)
    cfg["model"]["dropout"] = 0.1  # not architecture: may differ
    exp = tmp_path / "exp"
    run(cfg, data, exp, init_from=package_path)

    assert load_package(exp / "final.pt").tokens == ["<blk>", "a", "b", "d"]
    hidden = [k for k in before if k not in OUTPUT]
    assert hidden and all(torch.equal(before[k], src.state_dict[k]) for k in hidden)
    for name in OUTPUT:  # blank, a and b keep their rows; d is new
        assert torch.equal(before[name][:3], src.state_dict[name][:3])
        assert not torch.equal(before[name][3], src.state_dict[name][3])
    # the new row is the run's own initialisation (seed 0)
    torch.manual_seed(0)
    fresh = AcousticModel(ModelConfig.from_dict({**src.model_config, "dropout": 0.1}))
    assert torch.equal(before["output.weight"][3], fresh.output.weight.detach()[3])
    assert torch.equal(before["output.bias"][3], fresh.output.bias.detach()[3])

    # recorded: package extra, config snapshot, train.log
    extra = load_package(exp / "final.pt").extra
    assert extra["init_from"]["path"] == str(package_path.resolve())
    assert extra["init_from"]["mapped_tokens"] == 3
    assert extra["init_from"]["new_tokens"] == ["d"]
    assert extra["train_config"]["training"]["init_from"] == str(package_path)
    assert load_checkpoint(exp / "epoch-1.pt")["extra"]["init_from"]["mapped_tokens"] == 3
    log = (exp / "train.log").read_text()
    assert f"initialised from {package_path}: " in log
    assert "3 of 4 token rows mapped, 1 source token(s) dropped, 1 new (d)" in log


def _package(tmp_path: Path, **changes) -> Path:
    values = {"input_dim": DIM, "num_tokens": 4, "num_layers": 1, "hidden_size": 24}
    values.update(changes)
    model = AcousticModel(ModelConfig.from_dict(values))
    path = tmp_path / "other.pt"
    package = ModelPackage(
        state_dict=model.state_dict(),
        model_config=ModelConfig.from_dict(values).to_dict(),
        tokens=["<blk>", "a", "b", "c"],
        feature_config={},
    )
    save_package(package, path)
    return path


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"input_dim": DIM + 1}, "7-dim features"),
        ({"hidden_size": 16}, "hidden_size 16 vs 24"),
        ({"num_layers": 2}, "num_layers 2 vs 1"),
        ({"cell": "gru"}, "cell 'gru' vs 'lstm'"),
        ({"bidirectional": False}, "bidirectional False vs True"),
        ({"stack": 2, "skip": 2}, "stack 2 vs 1; skip 2 vs 1"),
    ],
)
def test_mismatched_architecture_is_one_clear_error(source, tmp_path, change, named) -> None:
    other = _package(tmp_path, **change)
    with pytest.raises(ConfigError) as info:
        run(config(max_epochs=1), source[1], tmp_path / "exp", init_from=other)
    message = str(info.value)
    assert "\n" not in message and named in message and str(other) in message
    assert not (tmp_path / "exp" / "checkpoint.pt").exists()


def test_missing_or_bad_source_is_an_error(source, tmp_path) -> None:
    with pytest.raises(PackageError, match="not found"):
        run(config(max_epochs=1), source[1], tmp_path / "a", init_from=tmp_path / "none.pt")
    cfg = config(max_epochs=1, init_from=5)
    with pytest.raises(ConfigError, match="init_from must be the path of a model package"):
        run(cfg, source[1], tmp_path / "b")


def test_resume_wins_over_init(source, tmp_path, monkeypatch) -> None:
    package_path, data = source
    # a plain run, interrupted after epoch 1, resumed with --init-from: not re-initialised
    exp = tmp_path / "exp"
    run(config(max_epochs=1), data, exp)
    calls = []
    monkeypatch.setattr(
        asr.training.trainer._Trainer, "init_from", lambda self, path: calls.append(path)
    )
    run(config(max_epochs=2), data, exp, resume=True, init_from=package_path)
    assert calls == []
    straight = tmp_path / "straight"
    run(config(max_epochs=2), data, straight)
    resumed = load_checkpoint(exp / "epoch-2.pt")["state_dict"]
    expected = load_checkpoint(straight / "epoch-2.pt")["state_dict"]
    assert all(torch.equal(resumed[k], expected[k]) for k in expected)
    assert "init_from" not in load_package(exp / "final.pt").extra
    monkeypatch.undo()

    # a run started from the package, resumed without it, still records where it started
    fine = tmp_path / "fine"
    run(config(max_epochs=1), data, fine, init_from=package_path)
    run(config(max_epochs=2), data, fine, resume=True)
    extra = load_package(fine / "final.pt").extra
    assert extra["init_from"]["path"] == str(package_path.resolve())
    log = (fine / "train.log").read_text()
    assert log.count("initialised from") == 1 and "resumed after epoch 1" in log


def test_config_key_and_cli_flag(source, tmp_path, monkeypatch) -> None:
    import yaml

    from asr.cli import main

    package_path, data = source
    before = _weights_before_training(monkeypatch)
    exp = tmp_path / "by_config"
    run(config(max_epochs=1, init_from=str(package_path)), data, exp)
    src = load_package(package_path).state_dict
    assert torch.equal(before["layers.0.fwd.weight_ih_l0"], src["layers.0.fwd.weight_ih_l0"])
    assert load_package(exp / "final.pt").extra["init_from"]["mapped_tokens"] == 3

    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(config(max_epochs=1)))
    args = ["train", "--config", str(conf), "--train-dir", str(data[0]), "--dev-dir"]
    args += [str(data[1]), "--exp-dir", str(tmp_path / "cli"), "--threads", "1", "--no-progress"]
    assert main([*args, "--init-from", str(package_path)]) == 0
    extra = load_package(tmp_path / "cli" / "final.pt").extra
    assert extra["init_from"]["new_tokens"] == ["d"]


def test_init_from_package_directly() -> None:
    values = {"input_dim": 3, "num_tokens": 3, "num_layers": 1, "hidden_size": 4}
    torch.manual_seed(1)
    src_model = AcousticModel(ModelConfig.from_dict(values))
    package = ModelPackage(
        state_dict=src_model.state_dict(),
        model_config=ModelConfig.from_dict(values).to_dict(),
        tokens=["<blk>", "x", "y"],
        feature_config={},
    )
    target_config = ModelConfig.from_dict({**values, "num_tokens": 4})
    torch.manual_seed(2)
    model = AcousticModel(target_config)
    fresh = model.output.weight.detach().clone()
    result = init_from_package(model, target_config.to_dict(), ["<blk>", "y", "z", "x"], package)
    assert result == {"tensors": 10, "total": 10, "mapped": 3, "new": ["z"], "dropped": 0}
    w, src_w = model.output.weight.detach(), src_model.output.weight.detach()
    assert torch.equal(w[0], src_w[0]) and torch.equal(w[1], src_w[2])
    assert torch.equal(w[3], src_w[1]) and torch.equal(w[2], fresh[2])
    assert torch.equal(model.output.bias.detach()[1], src_model.output.bias.detach()[2])
