"""Checkpoint averaging: the mean of known weights, epoch selection, the package written, errors."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import torch

from asr.cli import average as average_command
from asr.errors import ConfigError, PackageError
from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.package import ModelPackage, load_package, save_package
from asr.training.average import average_checkpoints, average_state_dicts
from asr.training.history import HISTORY_FIELDS

TOKENS = ["<blk>", "a", "b"]


def write_history(exp: Path, dev_loss: list[float], dev_ter: list[float] | None = None) -> None:
    dev_ter = dev_ter or [10.0] * len(dev_loss)
    lines = ["\t".join(HISTORY_FIELDS)]
    for epoch, (loss, ter) in enumerate(zip(dev_loss, dev_ter, strict=True), 1):
        lines.append("\t".join(map(repr, (epoch, 1.0, loss, ter, 1e-3, 2.0, 1.0))))
    (exp / "history.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def save_epoch(exp: Path, epoch: int, state_dict: dict, tokens: list[str] = TOKENS) -> None:
    package = ModelPackage(
        state_dict=state_dict,
        model_config={"input_dim": 2, "num_tokens": len(tokens)},
        tokens=tokens,
        feature_config={"kind": "fbank"},
        extra={"epoch": epoch, "unit": "word"},
    )
    save_package(package, exp / f"epoch-{epoch}.pt")


def simple(value: float, counter: int = 0) -> dict[str, torch.Tensor]:
    return {
        "w": torch.full((2, 3), value),
        "b": torch.full((3,), -value, dtype=torch.float64),
        "steps": torch.tensor(counter),
    }


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    """Five epochs whose weights equal their epoch number; dev loss best at 4, 5, 2."""
    exp = tmp_path / "exp"
    exp.mkdir()
    write_history(exp, [5.0, 3.0, 4.0, 1.0, 2.0], dev_ter=[9.0, 1.0, 2.0, 8.0, 7.0])
    for epoch in range(1, 6):
        save_epoch(exp, epoch, simple(float(epoch), counter=100 * epoch))
    return exp


def test_average_of_known_state_dicts_is_the_mean_and_integers_come_from_the_last() -> None:
    out = average_state_dicts([simple(1.0, 7), simple(2.0, 8), simple(6.0, 9)])
    assert torch.equal(out["w"], torch.full((2, 3), 3.0))
    assert out["w"].dtype == torch.float32
    assert torch.equal(out["b"], torch.full((3,), -3.0, dtype=torch.float64))
    assert out["steps"].item() == 9 and out["steps"].dtype == torch.int64


def test_averaging_accumulates_in_float64() -> None:
    # in float16 2048 + 1 rounds back to 2048: a float16 running sum would give 512, not 512.75
    dicts = [{"w": torch.tensor([2048.0], dtype=torch.float16)}] + [
        {"w": torch.tensor([1.0], dtype=torch.float16)} for _ in range(3)
    ]
    out = average_state_dicts(dicts)
    assert out["w"].dtype == torch.float16
    assert out["w"].item() == pytest.approx((2048 + 3) / 4, abs=0.5)


def test_mismatched_state_dicts_are_one_line_errors_naming_them() -> None:
    a, b = simple(1.0), simple(2.0)
    extra = dict(b, extra=torch.zeros(1))
    with pytest.raises(PackageError, match="epoch-1.pt: parameters differ .*only in epoch-2.pt: "):
        average_state_dicts([a, extra], ["epoch-1.pt", "epoch-2.pt"])
    wrong = dict(b, w=torch.zeros(3, 2))
    with pytest.raises(PackageError, match=r"epoch-1.pt: w has shape \(2, 3\) but \(3, 2\)"):
        average_state_dicts([a, wrong], ["epoch-1.pt", "epoch-2.pt"])
    with pytest.raises(ValueError):
        average_state_dicts([])


def test_best_n_by_dev_loss_and_by_dev_ter(exp: Path, tmp_path: Path) -> None:
    report = average_checkpoints(exp, tmp_path / "avg.pt", num=3)
    assert report.epochs == [2, 4, 5]  # dev loss 3, 1, 2
    assert report.values == {2: 3.0, 4: 1.0, 5: 2.0}
    package = load_package(tmp_path / "avg.pt")
    assert torch.allclose(package.state_dict["w"], torch.full((2, 3), 11.0 / 3))
    assert package.state_dict["steps"].item() == 500  # the newest chosen epoch's buffer
    assert package.extra["averaged_epochs"] == [2, 4, 5]
    assert package.extra["average_select"] == "best"
    assert package.extra["average_metric"] == "dev_loss"
    assert package.extra["epoch"] == 5 and package.extra["unit"] == "word"
    assert "averaged epochs 2, 4, 5 (best 3 by dev_loss" in report.line()

    by_ter = average_checkpoints(exp, tmp_path / "ter.pt", num=2, metric="dev_ter")
    assert by_ter.epochs == [2, 3]  # dev TER 1, 2
    ter = load_package(tmp_path / "ter.pt")
    assert torch.equal(ter.state_dict["w"], torch.full((2, 3), 2.5))
    assert ter.state_dict["steps"].item() == 300


def test_last_n(exp: Path, tmp_path: Path) -> None:
    report = average_checkpoints(exp, tmp_path / "avg.pt", num=2, select="last")
    assert report.epochs == [4, 5] and report.metric is None
    package = load_package(tmp_path / "avg.pt")
    assert torch.equal(package.state_dict["w"], torch.full((2, 3), 4.5))
    assert package.extra["average_select"] == "last"


def test_last_n_ignores_files_not_in_the_history_and_works_without_one(exp: Path) -> None:
    save_epoch(exp, 9, simple(900.0))  # left over from an older run in the same directory
    report = average_checkpoints(exp, exp / "avg.pt", num=2, select="last")
    assert report.epochs == [4, 5]
    (exp / "history.tsv").unlink()
    report = average_checkpoints(exp, exp / "avg.pt", num=2, select="last")
    assert report.epochs == [5, 9]
    assert (exp / "avg.pt").exists() and not (exp / "epoch-avg.pt").exists()


def test_best_skips_missing_files_and_nan_metrics(exp: Path, tmp_path: Path) -> None:
    (exp / "epoch-4.pt").unlink()
    write_history(exp, [5.0, 3.0, 4.0, 1.0, math.nan])
    report = average_checkpoints(exp, tmp_path / "avg.pt", num=2)
    assert report.epochs == [2, 3]


def test_averaged_package_loads_into_the_model(tmp_path: Path) -> None:
    config = ModelConfig(input_dim=4, num_tokens=3, num_layers=1, hidden_size=5)
    torch.manual_seed(0)
    model = AcousticModel(config)
    exp = tmp_path / "exp"
    state_dicts = []
    for epoch in range(1, 4):
        sd = {k: v + 0.1 * epoch * torch.randn_like(v) for k, v in model.state_dict().items()}
        state_dicts.append(sd)
        package = ModelPackage(
            state_dict=sd,
            model_config=config.to_dict(),
            tokens=TOKENS,
            feature_config={"kind": "fbank"},
            extra={"epoch": epoch},
        )
        save_package(package, exp / f"epoch-{epoch}.pt")
    write_history(exp, [3.0, 2.0, 1.0])
    average_checkpoints(exp, tmp_path / "avg.pt", num=3)

    package = load_package(tmp_path / "avg.pt")
    assert package.tokens == TOKENS and package.model_config == config.to_dict()
    loaded = AcousticModel(ModelConfig.from_dict(package.model_config))
    loaded.load_state_dict(package.state_dict)  # strict: every key, every shape
    for key, value in loaded.state_dict().items():
        manual = torch.stack([sd[key] for sd in state_dicts]).mean(dim=0)
        assert torch.allclose(value, manual, atol=1e-6), key
        assert not torch.allclose(value, state_dicts[-1][key])
    log_probs, _ = loaded(torch.randn(1, 7, 4), torch.tensor([7]))
    assert torch.isfinite(log_probs).all()


def one_line(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


def test_errors(exp: Path, tmp_path: Path) -> None:
    out = tmp_path / "avg.pt"
    with pytest.raises(ConfigError) as info:
        average_checkpoints(exp, out, num=0)
    assert "at least 1" in one_line(info)
    with pytest.raises(ConfigError, match="select must be one of best, last"):
        average_checkpoints(exp, out, select="first")
    with pytest.raises(ConfigError, match="metric must be one of"):
        average_checkpoints(exp, out, metric="train_loss")
    with pytest.raises(PackageError) as info:
        average_checkpoints(exp, out, num=6)
    assert "asked to average 6 epochs but only 5" in one_line(info)
    with pytest.raises(PackageError, match="not a directory"):
        average_checkpoints(tmp_path / "nowhere", out)

    save_epoch(exp, 3, simple(3.0), tokens=["<blk>", "x", "y"])
    with pytest.raises(PackageError) as info:
        average_checkpoints(exp, out, num=3, select="last")
    assert "epoch-3.pt: tokens differ from" in one_line(info)

    (exp / "history.tsv").unlink()
    with pytest.raises(PackageError) as info:
        average_checkpoints(exp, out, num=2)
    assert "history.tsv: not found" in one_line(info)
    (exp / "history.tsv").write_text("epoch\tdev_loss\n1\tlow\n", encoding="utf-8")
    with pytest.raises(PackageError, match="history.tsv: malformed"):
        average_checkpoints(exp, out, num=2)
    assert not out.exists()


def test_command(exp: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    average_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["average", str(exp), str(tmp_path / "avg.pt"), "--num", "2"])
    assert (args.select, args.metric) == ("best", "dev_loss")
    assert args.func(args) == 0
    assert "averaged epochs 4, 5 (best 2 by dev_loss: 1, 2)" in capsys.readouterr().out

    args = argparse.Namespace(
        exp_dir=str(exp), out=str(tmp_path / "last.pt"), num=3, select="last", metric="dev_loss"
    )
    assert average_command.run(args) == 0
    assert "averaged epochs 3, 4, 5 (last 3)" in capsys.readouterr().out
    assert load_package(tmp_path / "last.pt").extra["averaged_epochs"] == [3, 4, 5]
