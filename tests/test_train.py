"""Training end to end on a tiny synthetic task: learning, packages, resume, schedules, outputs.

The task: each word of the transcript is a run of frames where one feature dimension (the
word's) is high, with noisy silence between words. A one-layer BiLSTM learns it in a few epochs,
so the tests check real learning, not just that the loop runs.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from asr.errors import ConfigError, PackageError, TrainingError
from asr.nn.package import load_checkpoint, load_package
from asr.training.config import load_train_config
from asr.training.history import read_history
from asr.training.trainer import error_rate, train
from asr.units.tokens import TokenList

DIM = 6
VOCAB = ("a", "b", "c")


def write_synthetic(path: Path, n: int, seed: int, cmvn: str = "global") -> dict[str, str]:
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    feats, texts = {}, {}
    for i in range(n):
        labels = rng.integers(0, len(VOCAB), size=int(rng.integers(1, 5)))
        rows = [np.zeros((int(rng.integers(1, 4)), DIM))]
        for label in labels:
            word = np.zeros((int(rng.integers(3, 7)), DIM))
            word[:, label] = 3.0
            rows += [word, np.zeros((int(rng.integers(1, 4)), DIM))]
        mat = np.concatenate(rows)
        feats[f"utt{i:03d}"] = (mat + 0.3 * rng.standard_normal(mat.shape)).astype(np.float32)
        texts[f"utt{i:03d}"] = " ".join(VOCAB[j] for j in labels)
    kaldiio.save_ark(str(path / "feats.ark"), feats, scp=str(path / "feats.scp"))
    (path / "text").write_text("".join(f"{u} {t}\n" for u, t in texts.items()), encoding="utf-8")
    (path / "utt2spk").write_text("".join(f"{u} s{int(u[3:]) % 3}\n" for u in texts))
    config = {"kind": "fbank", "options": {"num_mel_bins": DIM}, "cmvn": cmvn}
    (path / "feats.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return texts


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    write_synthetic(root / "train", 60, seed=1)
    write_synthetic(root / "dev", 12, seed=2)
    return root / "train", root / "dev"


def config(**training) -> dict:
    # fp32 unless a test asks otherwise: the numbers compared here must not depend on whether
    # the CPU runs bf16 natively (``auto`` would train in bf16 on one that does)
    base = {"lr": 0.02, "max_epochs": 6, "batch_frames": 80, "precision": "fp32"}
    base.update(training)
    return {"model": {"num_layers": 1, "hidden_size": 24}, "training": base}


def run(cfg: dict, data, exp: Path, **kwargs):
    return train(cfg, data[0], data[1], exp, threads=1, progress=False, **kwargs)


def test_learns_the_synthetic_task_and_writes_a_loadable_package(data, tmp_path) -> None:
    exp = tmp_path / "exp"
    summary = run(config(), data, exp)
    history = summary.history
    assert len(history) == 6
    assert history[-1]["train_loss"] < 0.1 * history[0]["train_loss"]
    assert summary.best_dev_ter <= 5.0  # percent
    assert summary.best_dev_loss == min(h["dev_loss"] for h in history)

    # final.pt is a safe-loading package of the best epoch
    raw = torch.load(exp / "final.pt", weights_only=True)
    assert raw["extra"]["epoch"] == summary.best_epoch
    package = load_package(exp / "final.pt")
    assert package.tokens == TokenList.load(exp / "tokens.txt").symbols == ["<blk>", "a", "b", "c"]
    assert package.model_config["input_dim"] == DIM and package.model_config["num_tokens"] == 4
    assert package.feature_config["cmvn"] == "global"
    assert package.cmvn_stats.shape == (2, DIM + 1)
    assert package.extra["train_config"]["training"]["lr"] == 0.02
    best = load_checkpoint(exp / f"epoch-{summary.best_epoch}.pt")["state_dict"]
    assert all(torch.equal(package.state_dict[k], best[k]) for k in best)

    # the package alone (weights + feature config + stats) transcribes the dev set
    from asr.decoding.greedy import greedy_decode
    from asr.features.config import FeatureConfig, normalize_features
    from asr.nn.model import AcousticModel, ModelConfig

    model = AcousticModel(ModelConfig.from_dict(package.model_config))
    model.load_state_dict(package.state_dict)
    model.eval()
    tokens = TokenList(package.tokens)
    feature_config = FeatureConfig.from_dict(package.feature_config)
    texts = dict(line.split(" ", 1) for line in (data[1] / "text").read_text().splitlines())
    correct = 0
    for utt, mat in kaldiio.load_scp(str(data[1] / "feats.scp")).items():
        x = normalize_features(torch.from_numpy(np.array(mat)), feature_config, package.cmvn_stats)
        with torch.no_grad():
            log_probs, lengths = model(x[None].float(), torch.tensor([len(x)]))
        correct += tokens.decode(greedy_decode(log_probs, lengths)[0]) == texts[utt]
    assert correct >= 10  # of 12

    # log: one line per epoch whose numbers match history.tsv; the plot is a PNG
    log_lines = (exp / "train.log").read_text().splitlines()
    epoch_lines = [line for line in log_lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 6
    assert read_history(exp / "history.tsv") == history
    for line, h in zip(epoch_lines, history, strict=True):
        fields = dict(re.findall(r"(\w+) ([-\d.e+]+)", line))
        assert int(fields["epoch"]) == h["epoch"]
        assert float(fields["train_loss"]) == pytest.approx(h["train_loss"], abs=1e-4)
        assert float(fields["dev_loss"]) == pytest.approx(h["dev_loss"], abs=1e-4)
        assert float(fields["dev_ter"]) == pytest.approx(h["dev_ter"], abs=0.01)
        assert float(fields["lr"]) == pytest.approx(h["lr"], rel=1e-3)
    assert log_lines[-1].startswith("# done: best epoch")
    assert (exp / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in exp.glob("epoch-*.pt")) == sorted(
        f"epoch-{i}.pt" for i in range(1, 7)
    )


class Killed(Exception):
    """Stands in for the process being killed right after an epoch's checkpoint."""


@pytest.mark.parametrize("interruption", ["kill", "max_epochs"])
def test_resume_gives_the_same_weights_as_a_straight_run(data, tmp_path, interruption) -> None:
    # dropout and a second layer: the RNG state must be restored too, not just the weights
    cfg = config(max_epochs=4, lr=0.01)
    cfg["model"].update(num_layers=2, dropout=0.3)
    straight = run(cfg, data, tmp_path / "straight", seed=7)

    exp = tmp_path / "resumed"
    if interruption == "kill":

        def kill_after_two(record: dict) -> None:
            if record["epoch"] == 2:
                raise Killed

        with pytest.raises(Killed):
            run(cfg, data, exp, seed=7, epoch_callback=kill_after_two)
        assert not (exp / "final.pt").exists()
    else:
        short = {"model": cfg["model"], "training": {**cfg["training"], "max_epochs": 2}}
        run(short, data, exp, seed=7)
    assert load_checkpoint(exp / "checkpoint.pt")["train_state"]["epoch"] == 2
    with pytest.raises(ConfigError, match="--resume"):
        run(cfg, data, exp, seed=7)
    # a resumed run keeps its own seed (the batch order derives from it), whatever is passed
    resumed = run(cfg, data, exp, seed=7 if interruption == "kill" else 99, resume=True)

    a = load_package(tmp_path / "straight" / "final.pt").state_dict
    b = load_package(exp / "final.pt").state_dict
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for key in ("train_loss", "dev_loss", "dev_ter", "lr"):
        assert [h[key] for h in resumed.history] == [h[key] for h in straight.history]
    assert "resumed after epoch 2" in (exp / "train.log").read_text()


def test_failed_checkpoint_write_keeps_the_previous_one(data, tmp_path, monkeypatch) -> None:
    exp = tmp_path / "exp"
    run(config(max_epochs=1), data, exp)
    before = (exp / "checkpoint.pt").read_bytes()
    real_save = torch.save

    def save_half_then_fail(obj, handle, *args, **kwargs):
        if isinstance(obj, dict) and "optimizer" in obj:  # only the checkpoint
            real_save(obj, handle, *args, **kwargs)
            handle.truncate(handle.tell() // 2)
            raise OSError("No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    # one line naming the file, not a traceback
    with pytest.raises(TrainingError, match=r"checkpoint\.pt: cannot write \(No space left"):
        run(config(max_epochs=2), data, exp, resume=True)
    monkeypatch.undo()
    assert (exp / "checkpoint.pt").read_bytes() == before
    assert load_checkpoint(exp / "checkpoint.pt")["train_state"]["epoch"] == 1
    assert not list(exp.glob(".*.tmp"))  # no temp file left behind
    # and the run goes on from the intact checkpoint
    assert run(config(max_epochs=2), data, exp, resume=True).epochs == 2

    (exp / "checkpoint.pt").write_bytes(before[: len(before) // 3])  # damaged by other means
    with pytest.raises(PackageError, match="checkpoint.pt: not a loadable model file"):
        run(config(max_epochs=3), data, exp, resume=True)


def test_lr_halving_and_early_stopping(data, tmp_path) -> None:
    # min_improvement 0.9: after epoch 1 no epoch counts as an improvement. At lr 0.004 the
    # run is still on the CTC plateau when early stopping ends it; plateau restarts (tested in
    # test_plateau) would start it over, so they are off: this test is about the schedule.
    cfg = config(
        max_epochs=20,
        lr=0.004,
        min_improvement=0.9,
        lr_halving_patience=1,
        early_stopping_patience=3,
        plateau_patience=0,
    )
    exp = tmp_path / "exp"
    summary = run(cfg, data, exp)
    assert summary.epochs == 4 and summary.stop_reason.startswith("early stop")
    assert [h["lr"] for h in summary.history] == pytest.approx([0.004, 0.004, 0.002, 0.001])
    assert summary.best_epoch == 1
    final = load_package(exp / "final.pt").state_dict
    first = load_checkpoint(exp / "epoch-1.pt")["state_dict"]
    last = load_checkpoint(exp / "epoch-4.pt")["state_dict"]
    assert all(torch.equal(final[k], first[k]) for k in final)
    assert not all(torch.equal(final[k], last[k]) for k in final)
    state = load_checkpoint(exp / "checkpoint.pt")
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0005)


def test_bad_utterances_are_dropped_counted_and_logged(data, tmp_path) -> None:
    train_dir, dev_dir = tmp_path / "train", tmp_path / "dev"
    texts = write_synthetic(train_dir, 20, seed=3)
    write_synthetic(dev_dir, 6, seed=4)
    # utt000 gets a transcript that 3 frames cannot carry after skip 2 (needs 4 frames)
    short = np.zeros((5, DIM), dtype=np.float32)
    feats = {u: np.array(m) for u, m in kaldiio.load_scp(str(train_dir / "feats.scp")).items()}
    feats["utt000"] = short
    feats["zextra"] = short  # features without a transcript
    kaldiio.save_ark(str(train_dir / "feats.ark"), feats, scp=str(train_dir / "feats.scp"))
    texts["utt000"] = "a a b"
    texts["utt001"] = ""  # empty transcript
    texts["ghost"] = "a"  # transcript without features
    lines = [f"{u} {t}".rstrip() for u, t in sorted(texts.items())]
    (train_dir / "text").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dev_text = (dev_dir / "text").read_text().splitlines()
    dev_text[0] = dev_text[0].split()[0] + " a zzz"  # unknown word in dev
    (dev_dir / "text").write_text("\n".join(dev_text) + "\n", encoding="utf-8")

    cfg = config(max_epochs=1)
    cfg["model"]["skip"] = 2
    cfg["model"]["stack"] = 2
    summary = train(cfg, train_dir, dev_dir, tmp_path / "exp", threads=1, progress=False)
    log = (tmp_path / "exp" / "train.log").read_text()
    assert "train (18 utts)" in log  # 20 - utt000 - utt001
    assert re.search(r"train: 1 utterance\(s\) too short for their labels.*\(utt000\)", log)
    assert re.search(r"train: 1 utterance\(s\) with an empty transcript.*\(utt001\)", log)
    assert re.search(r"train: 1 utterance\(s\) in feats.scp but not in text.*\(zextra\)", log)
    assert re.search(r"train: 1 utterance\(s\) in text but not in feats.scp.*\(ghost\)", log)
    assert re.search(r"dev: 1 utterance\(s\) with unknown tokens", log)
    assert math.isfinite(summary.best_dev_loss)


def test_unknown_reference_tokens_count_as_errors() -> None:
    refs = {"u1": ["a", "zzz"], "u2": ["b", "c"]}
    hyps = {"u1": ["a"], "u2": ["b", "b"]}
    assert error_rate(refs, hyps) == pytest.approx(50.0)  # 1 deletion + 1 substitution / 4


def test_config_errors_are_one_line(tmp_path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("model:\n  hidden_size: 8\ntraining:\n  lr: 1e-3\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"train.yaml: unknown training option\(s\) epochs"):
        load_train_config(path)
    path.write_text("model:\n  input_dim: 8\n")
    with pytest.raises(ConfigError, match="input_dim is taken from the data"):
        load_train_config(path)
    path.write_text("modle: {}\n")
    with pytest.raises(ConfigError, match=r"unknown section\(s\) modle"):
        load_train_config(path)
    path.write_text("training:\n  lr: 1e-3\n  optimizer: sgd\n")
    model, cfg = load_train_config(path)
    assert model == {} and cfg.lr == 0.001 and cfg.optimizer == "sgd"
    with pytest.raises(ConfigError, match="optimizer"):
        load_train_config({"training": {"optimizer": "adagrad"}})


def test_cli_trains_and_refuses_to_overwrite(data, tmp_path, capsys) -> None:
    from asr.cli import main

    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(config(max_epochs=2, optimizer="sgd", lr=0.05, momentum=0.9)))
    args = ["train", "--config", str(conf), "--train-dir", str(data[0]), "--dev-dir"]
    args += [str(data[1]), "--exp-dir", str(tmp_path / "exp"), "--threads", "1", "--no-progress"]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("best epoch")
    assert (
        load_package(tmp_path / "exp" / "final.pt").extra["train_config"]["training"]["optimizer"]
        == "sgd"
    )
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "checkpoint.pt: exists; pass --resume" in err
