"""The scaled-up training loop: reproducibility, workers, kill -9, torchrun, NaN, precision, CLI.

Every training here is tiny and single-threaded (the synthetic task of ``test_train``; the real
yes/no corpus for torchrun), so the whole file runs in well under a minute and a half on one core.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml
from conftest import cpu_flags_have_bf16
from test_train import config, write_synthetic

from asr.cli import main
from asr.errors import ConfigError, DataDirError, TrainingError
from asr.nn import precision
from asr.nn.package import load_checkpoint, load_package
from asr.nn.precision import resolve_precision
from asr.training.config import load_train_config
from asr.training.history import read_history
from asr.training.trainer import train

REPO_ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
SPEC = {"freq_masks": 1, "freq_width": 2, "time_masks": 1, "time_width": 3}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    write_synthetic(root / "train", 60, seed=1)
    write_synthetic(root / "dev", 12, seed=2)
    return root / "train", root / "dev"


def dropout_config(spec_augment: dict | None = SPEC, **training) -> dict:
    """Two layers with dropout between them: the global RNG matters, not just the weights."""
    cfg = config(**{"max_epochs": 3, "lr": 0.01, **training})
    cfg["model"].update(num_layers=2, dropout=0.3)
    if spec_augment is not None:
        cfg["training"]["spec_augment"] = dict(spec_augment)
    return cfg


def run(cfg: dict, data, exp: Path, **kwargs):
    return train(cfg, data[0], data[1], exp, threads=1, progress=False, **kwargs)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_package(path).state_dict


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """Trains each (name, config, seed) once per module; returns the exp dir."""
    root = tmp_path_factory.mktemp("runs")
    done: dict[str, Path] = {}

    def get(name: str, cfg: dict, seed: int) -> Path:
        if name not in done:
            run(cfg, data, root / name, seed=seed)
            done[name] = root / name
        return done[name]

    return get


# --- 1. reproducibility ---------------------------------------------------------------------


def test_same_seed_same_model_other_seed_other_model(runs) -> None:
    a = runs("spec_seed3", dropout_config(), 3)
    b = runs("spec_seed3_again", dropout_config(), 3)
    c = runs("spec_seed4", dropout_config(), 4)
    dev_a = [h["dev_loss"] for h in read_history(a / "history.tsv")]
    dev_b = [h["dev_loss"] for h in read_history(b / "history.tsv")]
    assert len(dev_a) == 3 and dev_b == pytest.approx(dev_a, abs=1e-6)
    assert same_weights(weights(a / "final.pt"), weights(b / "final.pt"))
    assert not same_weights(weights(a / "final.pt"), weights(c / "final.pt"))


def test_spec_augment_changes_training(runs) -> None:
    on = runs("spec_seed3", dropout_config(), 3)
    off = runs("nospec_seed3", dropout_config(spec_augment=None), 3)
    assert not same_weights(weights(on / "final.pt"), weights(off / "final.pt"))
    assert "SpecAugment on" in (on / "train.log").read_text()
    assert "SpecAugment off" in (off / "train.log").read_text()


def test_log_header_states_the_precision_used(data, tmp_path, cpu_bf16) -> None:
    # run as a CPU without and with native bf16: the header names what ran, and what was asked
    run(config(max_epochs=1, precision="auto"), data, tmp_path / "exp")
    header = (tmp_path / "exp" / "train.log").read_text().splitlines()[0]
    used = "bf16" if cpu_bf16 else "fp32"
    assert f"; precision {used} (asked: auto);" in header
    training = load_package(tmp_path / "exp" / "final.pt").extra["train_config"]["training"]
    assert training["precision"] == "auto"


# --- 2. data-loading workers ----------------------------------------------------------------


def test_workers_load_the_same_batches_as_the_main_process(data, tmp_path) -> None:
    # no dropout: the global RNG plays no part, so this isolates what the workers deliver
    cfg = dropout_config()
    cfg["model"]["dropout"] = 0.0
    run(cfg, data, tmp_path / "main", seed=3)
    cfg["training"]["num_workers"] = 2
    run(cfg, data, tmp_path / "workers", seed=3)
    assert same_weights(
        weights(tmp_path / "main" / "final.pt"), weights(tmp_path / "workers" / "final.pt")
    )


def test_workers_give_the_same_weights_with_dropout(runs, data, tmp_path) -> None:
    straight = runs("spec_seed3", dropout_config(), 3)
    run(dropout_config(num_workers=2), data, tmp_path / "workers", seed=3)
    assert same_weights(weights(straight / "final.pt"), weights(tmp_path / "workers" / "final.pt"))


# --- 3. kill -9 and --resume ----------------------------------------------------------------


# Where the kill lands, chosen with ASR_FAULT_AT (never a random delay, which sometimes fell
# after the end of the run): (point, epoch of the checkpoint it leaves or None, the output whose
# temp file it leaves or None). The renames of a 3-epoch run, in order: tokens.txt (1),
# config.yaml (2); per epoch epoch-N.pt, history.tsv, train.log, curves.png, checkpoint.pt
# (3-7, 8-12, 13-17); final.pt (18) and the reports again. An epoch is 17 batches.
KILL_POINTS = [
    ("batch:3", None, None),  # epoch 1, nothing saved yet
    ("before-rename:3", None, "epoch-1.pt"),
    ("after-rename:7", 1, None),  # epoch 1's checkpoint just in place
    ("batch:20", 1, None),  # mid epoch 2
    ("before-rename:12", 1, "checkpoint.pt"),  # epoch 2's checkpoint written, not renamed
    ("after-rename:12", 2, None),
    ("before-rename:18", 3, "final.pt"),
    ("after-rename:18", 3, None),  # final.pt in place, the last reports not rewritten
]


@pytest.mark.parametrize("point, checkpoint_epoch, temp", KILL_POINTS)
def test_kill_9_at_any_moment_then_resume_matches_a_straight_run(
    runs, data, tmp_path, point, checkpoint_epoch, temp
) -> None:
    cfg = dropout_config(max_epochs=3)  # fp32, one thread: the comparison below is exact
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    straight = runs("kill_straight", cfg, 5)

    exp = tmp_path / "exp"
    cmd = [sys.executable, "-m", "asr", "train", "--config", str(conf), "--train-dir"]
    cmd += [str(data[0]), "--dev-dir", str(data[1]), "--exp-dir", str(exp), "--seed", "5"]
    cmd += ["--threads", "1", "--no-progress"]
    killed = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env={**ENV, "ASR_FAULT_AT": point},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # the kill landed where it was meant to: the checkpoint, final.pt and temp file say so
    if checkpoint_epoch is None:
        assert not (exp / "checkpoint.pt").exists()
    else:
        assert load_checkpoint(exp / "checkpoint.pt")["train_state"]["epoch"] == checkpoint_epoch
    assert (exp / "final.pt").exists() == (point == "after-rename:18")
    temps = [p.name for p in exp.iterdir() if p.name.endswith(".tmp")]
    assert [t.startswith(f".{temp}.") for t in temps] == ([True] if temp else [])
    assert (exp / ".lock").exists()  # stale: its holder is dead, so it must not block

    result = subprocess.run(
        [*cmd, "--resume"], cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert same_weights(weights(straight / "final.pt"), weights(exp / "final.pt"))
    want = read_history(straight / "history.tsv")
    got = read_history(exp / "history.tsv")
    assert [h["epoch"] for h in got] == [1, 2, 3]
    for key in ("train_loss", "dev_loss", "dev_ter", "lr"):
        assert [h[key] for h in got] == [h[key] for h in want], key
    log = (exp / "train.log").read_text()
    if checkpoint_epoch is None:  # nothing to resume from: a fresh start
        assert "resumed after epoch" not in log
    else:
        assert log.count("resumed after epoch") == 1
        assert f"resumed after epoch {checkpoint_epoch} with 1 process(es)" in log

    # the rerun removed what the kill left (its temp file, the stale lock); every file loads
    assert not [p.name for p in exp.iterdir() if p.name.startswith(".")]
    expected = {"checkpoint.pt", "curves.png", "final.pt", "history.tsv", "tokens.txt"}
    expected |= {"train.log", "config.yaml", "tensorboard"} | {f"epoch-{i}.pt" for i in range(1, 4)}
    assert {p.name for p in exp.iterdir()} == expected
    for i in range(1, 4):
        assert load_checkpoint(exp / f"epoch-{i}.pt")["extra"]["epoch"] == i
    assert load_checkpoint(exp / "checkpoint.pt")["train_state"]["epoch"] == 3
    assert main(["average", str(exp), str(tmp_path / "avg.pt"), "--num", "3"]) == 0
    assert load_package(tmp_path / "avg.pt").state_dict.keys() == weights(exp / "final.pt").keys()


# --- 4. torchrun on the real yes/no corpus ---------------------------------------------------


def _dev_loss_of(package_path: Path, dev_dir: Path) -> float:
    """The dev loss per token of a package, computed in this one process over the whole set."""
    from asr.features.dataset import FeatureSet, collate, load_examples
    from asr.nn.load import load_network
    from asr.nn.model import ctc_loss

    loaded = load_network(package_path)
    dev = FeatureSet(dev_dir, global_stats=loaded.package.cmvn_stats)
    examples, _ = load_examples(dev, loaded.tokens)
    feats, lengths, targets, target_lengths = collate(dev, examples)
    with torch.no_grad():
        log_probs, out_lengths = loaded.model(feats, lengths)
        loss = ctc_loss(log_probs, out_lengths, targets, target_lengths)
    return float(loss) / int(target_lengths.sum())


@pytest.mark.integration
def test_torchrun_two_cpu_processes_then_resume_with_one(yesno_dir, tmp_path, capsys) -> None:
    data = tmp_path / "data"
    assert main(["prepare", "yesno", "--corpus-dir", str(yesno_dir), str(data)]) == 0
    assert main(["data", "subset", str(data / "train"), "--first", "25", str(data / "tr")]) == 0
    assert main(["data", "subset", str(data / "train"), "--last", "5", str(data / "dev")]) == 0
    assert main(["data", "subset", str(data / "test"), "--first", "6", str(data / "te")]) == 0
    fbank = REPO_ROOT / "recipes" / "yesno" / "conf" / "fbank.yaml"
    for name in ("tr", "dev", "te"):
        assert main(["features", str(data / name), "--config", str(fbank), "--no-progress"]) == 0

    cfg = {
        "model": {"num_layers": 1, "hidden_size": 32},
        # fp32: the dev loss recomputed from final.pt below (in fp32) must match the recorded one
        "training": {"lr": 0.005, "max_epochs": 4, "batch_frames": 700, "precision": "fp32"},
    }
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    exp = tmp_path / "exp"

    def train_args(conf: Path) -> list[str]:
        args = ["train", "--config", str(conf), "--train-dir", str(data / "tr"), "--dev-dir"]
        return [*args, str(data / "dev"), "--exp-dir", str(exp), "--threads", "1", "--no-progress"]

    torchrun = Path(sys.executable).parent / "torchrun"
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "asr", *train_args(conf)],
        cwd=REPO_ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    history = read_history(exp / "history.tsv")
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    log = (exp / "train.log").read_text().splitlines()
    assert len([line for line in log if line.startswith("# train ")]) == 1
    assert "2 process(es) on cpu" in log[0] and "; precision fp32 (asked: fp32);" in log[0]
    # one set of files, all complete (rank 0 writes; no second writer's temp files)
    names = {p.name for p in exp.iterdir()}
    expected = {"checkpoint.pt", "curves.png", "final.pt", "history.tsv", "tokens.txt"}
    expected |= {"train.log", "config.yaml", "tensorboard"}
    assert names == expected | {f"epoch-{i}.pt" for i in range(1, 5)}

    # the package loads and decodes; the dev loss gathered over two shards is the whole set's
    from asr.nn.load import load_network

    package = load_package(exp / "final.pt")
    assert set(package.tokens) == {"<blk>", "YES", "NO"}
    loaded = load_network(exp / "final.pt")
    assert loaded.model.config.num_layers == 1 and not loaded.model.training
    best = history[package.extra["epoch"] - 1]
    assert _dev_loss_of(exp / "final.pt", data / "dev") == pytest.approx(best["dev_loss"], rel=1e-4)
    assert (
        main(
            [
                "decode",
                str(exp / "final.pt"),
                str(data / "te"),
                str(tmp_path / "dec"),
                "--no-progress",
            ]
        )
        == 0
    )
    hyps = (tmp_path / "dec" / "text").read_text().splitlines()
    assert len(hyps) == 6
    assert all(set(line.split()[1:]) <= {"YES", "NO"} for line in hyps)

    # resume the two-process run in one process, one epoch further
    before = load_checkpoint(exp / "checkpoint.pt")["state_dict"]
    cfg["training"]["max_epochs"] = 5
    conf5 = tmp_path / "train5.yaml"
    conf5.write_text(yaml.safe_dump(cfg))
    capsys.readouterr()
    assert main([*train_args(conf5), "--resume"]) == 0
    resumed = read_history(exp / "history.tsv")
    assert [h["epoch"] for h in resumed] == [1, 2, 3, 4, 5]
    assert resumed[:4] == history
    text = (exp / "train.log").read_text()
    assert "resumed after epoch 4 with 1 process(es)" in text
    after = load_checkpoint(exp / "checkpoint.pt")
    assert after["train_state"]["epoch"] == 5
    assert not same_weights(before, after["state_dict"])
    # on from epoch 4's weights: a fresh model would start again near epoch 1's loss
    assert resumed[4]["train_loss"] < 2 * history[3]["train_loss"] < history[0]["train_loss"]


# --- 5. NaN and inf ------------------------------------------------------------------------


def _poison(train_dir: Path, which) -> None:
    feats = {u: np.array(m) for u, m in kaldiio.load_scp(str(train_dir / "feats.scp")).items()}
    for utt, mat in feats.items():
        if which(utt):
            mat[2, 1] = np.nan
    kaldiio.save_ark(str(train_dir / "feats.ark"), feats, scp=str(train_dir / "feats.scp"))


def test_a_nan_utterance_is_skipped_and_noted(tmp_path) -> None:
    # per-utterance CMVN: with global CMVN the NaN would reach every utterance via the stats
    write_synthetic(tmp_path / "train", 40, seed=5, cmvn="utterance")
    write_synthetic(tmp_path / "dev", 8, seed=6, cmvn="utterance")
    _poison(tmp_path / "train", lambda utt: utt == "utt007")
    exp = tmp_path / "exp"
    summary = train(
        config(max_epochs=2), tmp_path / "train", tmp_path / "dev", exp, threads=1, progress=False
    )
    assert summary.epochs == 2
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["dev_loss"]) for h in summary.history)
    assert all(torch.isfinite(w).all() for w in weights(exp / "final.pt").values())
    log = (exp / "train.log").read_text()
    for epoch in (1, 2):  # utt007 is in exactly one batch of each epoch
        assert f"# epoch {epoch}: 1 batch(es) with a non-finite loss or gradient skipped" in log


def test_all_nan_training_data_raises_one_line(tmp_path) -> None:
    write_synthetic(tmp_path / "train", 40, seed=5, cmvn="utterance")
    write_synthetic(tmp_path / "dev", 8, seed=6, cmvn="utterance")
    _poison(tmp_path / "train", lambda utt: True)
    cfg = config(max_epochs=2, max_nonfinite_batches=2)
    with pytest.raises(TrainingError) as info:
        train(
            cfg, tmp_path / "train", tmp_path / "dev", tmp_path / "exp", threads=1, progress=False
        )
    message = str(info.value)
    assert "\n" not in message and "NaN" in message and "3 batches in a row" in message
    assert not (tmp_path / "exp" / "final.pt").exists()


def test_torchrun_skips_a_nan_batch_in_every_process(tmp_path) -> None:
    # the skip decision is shared: a process that skipped alone would leave the other waiting
    # for its gradients forever (the timeout catches that)
    write_synthetic(tmp_path / "train", 40, seed=5, cmvn="utterance")
    write_synthetic(tmp_path / "dev", 8, seed=6, cmvn="utterance")
    _poison(tmp_path / "train", lambda utt: utt == "utt007")
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(config(max_epochs=3)))
    exp = tmp_path / "exp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "asr", "train"]
    cmd += ["--config", str(conf), "--train-dir", str(tmp_path / "train"), "--dev-dir"]
    cmd += [str(tmp_path / "dev"), "--exp-dir", str(exp), "--threads", "1", "--no-progress"]
    result = subprocess.run(
        cmd, cwd=REPO_ROOT, env=ENV, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(torch.isfinite(w).all() for w in weights(exp / "final.pt").values())
    log = (exp / "train.log").read_text()
    assert "2 process(es) on cpu" in log
    assert "batch(es) with a non-finite loss or gradient skipped" in log
    history = read_history(exp / "history.tsv")
    assert len(history) == 3 and history[-1]["train_loss"] < history[0]["train_loss"]


def test_consecutive_nan_batches_count_across_epochs(tmp_path) -> None:
    write_synthetic(tmp_path / "train", 40, seed=5, cmvn="utterance")
    write_synthetic(tmp_path / "dev", 8, seed=6, cmvn="utterance")
    _poison(tmp_path / "train", lambda utt: True)
    # one batch per epoch, four epochs: four non-finite batches in a row, three tolerated
    cfg = config(max_epochs=4, batch_frames=5000, max_nonfinite_batches=3)
    with pytest.raises(TrainingError, match="NaN"):
        train(
            cfg, tmp_path / "train", tmp_path / "dev", tmp_path / "exp", threads=1, progress=False
        )


# --- 6. precision --------------------------------------------------------------------------


def test_resolve_precision_on_cpu(cpu_bf16) -> None:
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)
    assert resolve_precision("fp32", CPU) is None
    with pytest.raises(ConfigError, match="precision must be one of"):
        resolve_precision("fp8", CPU)
    if cpu_bf16:
        assert resolve_precision("auto", CPU) is torch.bfloat16
        assert resolve_precision("bf16", CPU) is torch.bfloat16
    else:
        assert resolve_precision("auto", CPU) is None
        with pytest.raises(ConfigError, match="ASR_CPU_BF16=0 says this CPU has no native bf16"):
            resolve_precision("bf16", CPU)


@pytest.mark.parametrize("context", ["inference_mode", "no_grad"])
def test_bf16_detection_does_not_depend_on_the_first_callers_grad_mode(
    monkeypatch, context
) -> None:
    """The probe runs a backward pass; first called from inference code (no_grad or
    inference_mode) it used to fail there and cache "no native bf16" for the process."""
    monkeypatch.delenv("ASR_CPU_BF16", raising=False)
    native = cpu_flags_have_bf16()
    if native is None:
        pytest.skip("no /proc/cpuinfo flags line to check the detection against")
    precision._cpu_has_native_bf16.cache_clear()
    try:
        with getattr(torch, context)():
            assert precision.resolve_precision("auto", CPU) is (torch.bfloat16 if native else None)
    finally:
        precision._cpu_has_native_bf16.cache_clear()


def test_auto_chooses_bf16_exactly_where_the_cpu_flags_say(monkeypatch) -> None:
    """Without the switch, ``auto`` follows the hardware: checked against /proc/cpuinfo's flags,
    not against the library's own detection."""
    monkeypatch.delenv("ASR_CPU_BF16", raising=False)
    native = cpu_flags_have_bf16()
    if native is None:
        pytest.skip("no /proc/cpuinfo flags line to check the detection against")
    assert resolve_precision("auto", CPU) is (torch.bfloat16 if native else None)
    monkeypatch.setenv("ASR_CPU_BF16", "auto")  # the same as unset
    assert resolve_precision("auto", CPU) is (torch.bfloat16 if native else None)
    if native:
        assert resolve_precision("bf16", CPU) is torch.bfloat16
    else:
        with pytest.raises(ConfigError, match="no native bf16 \\(needs AVX-512 BF16 or AMX\\)"):
            resolve_precision("bf16", CPU)


def test_a_bad_cpu_bf16_switch_is_a_one_line_error(monkeypatch) -> None:
    monkeypatch.setenv("ASR_CPU_BF16", "yes")
    with pytest.raises(ConfigError) as info:
        resolve_precision("auto", CPU)
    assert str(info.value) == "ASR_CPU_BF16 must be 0, 1 or auto, got 'yes'"
    assert resolve_precision("fp32", CPU) is None  # fp32 never consults the CPU


def test_bf16_is_refused_on_a_cpu_without_native_bf16(data, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ASR_CPU_BF16", "0")  # any CPU answers as one without native bf16
    assert resolve_precision("auto", CPU) is None
    with pytest.raises(ConfigError) as info:
        run(config(max_epochs=1, precision="bf16"), data, tmp_path / "exp")
    assert "\n" not in str(info.value) and "no native bf16" in str(info.value)

    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(config(max_epochs=1)))
    args = ["train", "--config", str(conf), "--train-dir", str(data[0]), "--dev-dir"]
    args += [str(data[1]), "--exp-dir", str(tmp_path / "cli"), "--threads", "1"]
    capsys.readouterr()
    assert main([*args, "--no-progress", "--precision", "bf16"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("asr train: error:") and "\n" not in err and "bf16" in err
    assert not (tmp_path / "cli" / "checkpoint.pt").exists()


def test_bf16_training_learns(data, tmp_path, monkeypatch) -> None:
    # ASR_CPU_BF16=1: native bf16 where the CPU has it, PyTorch's emulation (slower) elsewhere
    monkeypatch.setenv("ASR_CPU_BF16", "1")
    summary = run(config(max_epochs=4, precision="bf16"), data, tmp_path / "exp")
    assert summary.history[-1]["train_loss"] < 0.5 * summary.history[0]["train_loss"]
    assert "precision bf16 (asked: bf16)" in (tmp_path / "exp" / "train.log").read_text()


# --- 7. command-line overrides -------------------------------------------------------------


def test_cli_no_spec_augment_equals_a_config_without_it(runs, data, tmp_path) -> None:
    without = runs("nospec_seed3", dropout_config(spec_augment=None), 3)
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(dropout_config()))
    exp = tmp_path / "exp"
    args = ["train", "--config", str(conf), "--train-dir", str(data[0]), "--dev-dir"]
    args += [str(data[1]), "--exp-dir", str(exp), "--seed", "3", "--threads", "1"]
    assert main([*args, "--no-progress", "--no-spec-augment", "--precision", "fp32"]) == 0
    assert same_weights(weights(without / "final.pt"), weights(exp / "final.pt"))
    header = (exp / "train.log").read_text().splitlines()[0]
    assert "SpecAugment off" in header and "precision fp32 (asked: fp32)" in header
    training = load_package(exp / "final.pt").extra["train_config"]["training"]
    assert training["spec_augment"] is None and training["precision"] == "fp32"


def test_unknown_spec_augment_option_is_a_one_line_error(data, tmp_path, capsys) -> None:
    cfg = config(max_epochs=1)
    cfg["training"]["spec_augment"] = {"freq_masks": 1, "freq_wdith": 4}
    conf = tmp_path / "train.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="freq_wdith") as info:
        load_train_config(conf)
    assert "\n" not in str(info.value)
    args = ["train", "--config", str(conf), "--train-dir", str(data[0]), "--dev-dir"]
    args += [str(data[1]), "--exp-dir", str(tmp_path / "exp"), "--threads", "1", "--no-progress"]
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("asr train: error:") and "\n" not in err and "freq_wdith" in err
    assert not (tmp_path / "exp").exists()


def test_nan_features_under_global_cmvn_name_the_statistics(tmp_path) -> None:
    # one NaN utterance poisons the shared statistics: that is reported, not trained on
    write_synthetic(tmp_path / "train", 20, seed=5, cmvn="global")
    write_synthetic(tmp_path / "dev", 8, seed=6, cmvn="global")
    _poison(tmp_path / "train", lambda utt: utt == "utt007")
    with pytest.raises(DataDirError) as info:
        train(
            config(max_epochs=1),
            tmp_path / "train",
            tmp_path / "dev",
            tmp_path / "exp",
            threads=1,
            progress=False,
        )
    message = str(info.value)
    assert "global CMVN statistics" in message and "not finite" in message
    assert "\n" not in message
