"""`asr package` (averaged epochs, lexicon/LM, safe loading), version messages, `asr export`."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import asr.nn.export
from asr.cli import main
from asr.errors import AsrError, PackageError
from asr.nn.export import (
    ExportError,
    export_model,
    onnx_available,
    read_metadata,
    verify_export,
)
from asr.nn.load import load_network
from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.package import (
    OLDEST_READABLE_VERSION,
    PACKAGE_VERSION,
    ModelPackage,
    load_package,
    read_resource,
    save_package,
)
from asr.training.history import read_history

# TorchScript is deprecated in torch 2.13 but still the one self-contained format torch loads
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.*is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:LSTM with projections is not supported"),
]

TOKENS = ["<blk>", "a", "b", "c", "d", "e"]


def need_onnx() -> None:
    reason = onnx_available()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI installs the test extra, which has onnx: {reason}")
        pytest.skip(reason)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def mean_of(paths: list[Path]) -> dict[str, torch.Tensor]:
    sds = [weights(p) for p in paths]
    return {k: sum(sd[k].double() for sd in sds) / len(sds) for k in sds[0]}


def assert_weights_equal(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for key in want:
        torch.testing.assert_close(got[key].double(), want[key], rtol=0, atol=1e-7)


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------------------- asr package


def test_package_averages_the_last_n_epochs(tiny_trained_model, tmp_path, capsys) -> None:
    exp = tiny_trained_model[0].parent
    out = tmp_path / "model.pt"
    code, stdout, _ = run_cli(capsys, "package", exp, out, "--average", 3, "--select", "last")
    assert code == 0
    assert "packaged epochs 4, 5, 6 (last 3)" in stdout
    want = mean_of([exp / f"epoch-{e}.pt" for e in (4, 5, 6)])
    assert_weights_equal(weights(out), want)
    # not simply one epoch's weights: averaging changed something
    assert any(not torch.equal(weights(exp / "epoch-6.pt")[k].double(), want[k]) for k in want)
    payload = torch.load(out, map_location="cpu", weights_only=True)
    final = torch.load(exp / "final.pt", map_location="cpu", weights_only=True)
    for key in ("model_config", "tokens", "feature_config", "format", "version"):
        assert payload[key] == final[key]
    assert torch.equal(payload["cmvn_stats"], final["cmvn_stats"])
    assert payload["extra"]["averaged_epochs"] == [4, 5, 6]
    assert payload["extra"]["average_select"] == "last"
    assert "optimizer" not in payload  # a package, not a checkpoint


def test_package_averages_the_best_n_epochs_by_dev_loss(tiny_trained_model, tmp_path) -> None:
    exp = tiny_trained_model[0].parent
    history = read_history(exp / "history.tsv")
    best = sorted(sorted(history, key=lambda r: r["dev_loss"])[:2], key=lambda r: r["epoch"])
    epochs = [int(r["epoch"]) for r in best]
    out = tmp_path / "best2.pt"
    assert main(["package", str(exp), str(out), "--average", "2"]) == 0
    assert_weights_equal(weights(out), mean_of([exp / f"epoch-{e}.pt" for e in epochs]))
    package = load_package(out)
    assert package.extra["averaged_epochs"] == epochs
    assert package.extra["average_metric"] == "dev_loss"


def test_package_of_one_best_epoch_has_the_weights_of_final(tiny_trained_model, tmp_path) -> None:
    final, _ = tiny_trained_model
    out = tmp_path / "one.pt"
    assert main(["package", str(final.parent), str(out)]) == 0
    assert_weights_equal(weights(out), {k: v.double() for k, v in weights(final).items()})


def test_lexicon_and_lm_by_path_and_embedded(tiny_trained_model, tmp_path, capsys) -> None:
    exp = tiny_trained_model[0].parent
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("yes j e s\nno n o\n", encoding="utf-8")
    lm = tmp_path / "lm.arpa.gz"
    lm.write_bytes(bytes(range(256)))  # binary content survives as is
    by_path, embedded = tmp_path / "by_path.pt", tmp_path / "embedded.pt"
    code, stdout, _ = run_cli(capsys, "package", exp, by_path, "--lexicon", lexicon, "--lm", lm)
    assert code == 0 and "lexicon by path, lm by path" in stdout
    args = ("package", exp, embedded, "--lexicon", lexicon, "--lm", lm, "--embed")
    assert run_cli(capsys, *args)[0] == 0

    stored = torch.load(by_path, map_location="cpu", weights_only=True)["extra"]
    assert stored["lexicon"]["path"] == str(lexicon.resolve())
    assert "data" not in stored["lexicon"] and "data" not in stored["lm"]
    inside = torch.load(embedded, map_location="cpu", weights_only=True)["extra"]
    assert inside["lexicon"]["data"] == lexicon.read_bytes()
    assert inside["lm"]["data"] == bytes(range(256))
    assert inside["lm"]["size"] == 256

    for path in (by_path, embedded):
        assert read_resource(load_package(path), "lexicon") == lexicon.read_bytes()
    # the file moves away: the embedded package still works, the other names the file
    lexicon.unlink()
    assert read_resource(load_package(embedded), "lexicon").startswith(b"yes j e s")
    missing = "lexicon file is missing .or re-package with --embed.; decode without .*: --no-lm"
    with pytest.raises(PackageError, match=missing):
        read_resource(load_package(by_path), "lexicon")
    lm.write_bytes(b"changed")
    with pytest.raises(PackageError, match="lm file changed since it was packaged"):
        read_resource(load_package(by_path), "lm")
    assert read_resource(load_package(by_path), "nothing") is None


def test_package_errors_are_one_line(tiny_trained_model, tmp_path, capsys) -> None:
    exp = tiny_trained_model[0].parent
    out = tmp_path / "never.pt"
    cases = [
        (("--lexicon", tmp_path / "missing.txt"), "missing.txt: file not found"),
        (("--average", 7, "--select", "last"), "asked to average 7 epochs but only 6"),
    ]
    for extra, message in cases:
        code, _, err = run_cli(capsys, "package", exp, out, *extra)
        assert code == 1
        assert err.count("\n") == 1 and message in err, err
        assert not out.exists()
    code, _, err = run_cli(capsys, "package", tmp_path / "nope", out)
    assert code == 1 and err.count("\n") == 1 and "not a directory" in err


# ---------------------------------------------------------------------------- versions


def write_with_version(source: Path, out: Path, version: object) -> None:
    payload = torch.load(source, map_location="cpu", weights_only=True)
    payload["version"] = version
    torch.save(payload, out)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (PACKAGE_VERSION + 1, f"was written by a newer asr (format version {PACKAGE_VERSION + 1} "),
        (PACKAGE_VERSION + 1, "; upgrade asr"),
        (0, "older asr in format version 0"),
        (0, "re-package it with `asr package`"),
        ("2", "not an asr model package (format version '2')"),
    ],
)
def test_version_messages_are_one_line(
    tiny_trained_model, tmp_path, capsys, version, message
) -> None:
    model = tmp_path / "other.pt"
    write_with_version(tiny_trained_model[0], model, version)
    code, _, err = run_cli(capsys, "export", model, tmp_path / "out.ts")
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith(f"asr export: error: {model}: ") and message in err
    assert not (tmp_path / "out.ts").exists()


PACKAGES = Path(__file__).resolve().parent / "data" / "packages"


def test_a_committed_package_of_every_readable_version() -> None:
    """tests/data/packages/make_packages.py wrote each file with the asr of its version; when
    PACKAGE_VERSION is bumped, the file of the new version must be added next to the old ones."""
    committed = sorted(p.name for p in PACKAGES.glob("v*.pt"))
    readable = range(OLDEST_READABLE_VERSION, PACKAGE_VERSION + 1)
    assert committed == sorted(f"v{version}.pt" for version in readable)


@pytest.mark.parametrize("version", range(OLDEST_READABLE_VERSION, PACKAGE_VERSION + 1))
def test_committed_packages_of_older_versions_still_load_and_run(version: int) -> None:
    from asr.features.config import FeatureConfig
    from asr.nn.load import load_network

    path = PACKAGES / f"v{version}.pt"
    assert torch.load(path, map_location="cpu", weights_only=True)["version"] == version
    package = load_package(path)
    assert package.tokens == ["<blk>", "a", "b", "c"]
    assert package.model_config["input_dim"] == 6 and package.model_config["num_layers"] == 1
    assert FeatureConfig.from_dict(package.feature_config).dim == 6
    assert package.cmvn_stats is not None and package.cmvn_stats.shape == (2, 7)

    loaded = load_network(path)
    assert loaded.tokens.unit == "word" and not loaded.model.training
    ref = package.extra["reference"]
    with torch.no_grad():
        log_probs, out_lengths = loaded.model(ref["feats"], ref["lengths"])
    # the weights land where they did when the file was written: the same output, finite
    assert log_probs.shape == ref["log_probs"].shape == (2, 9, 4)
    assert torch.isfinite(log_probs).all()
    assert torch.equal(out_lengths, ref["out_lengths"])
    valid = torch.arange(9)[None, :] < out_lengths[:, None]
    assert torch.allclose(log_probs[valid], ref["log_probs"][valid], atol=1e-5)
    assert torch.allclose(log_probs[valid].exp().sum(-1), torch.ones(int(valid.sum())), atol=1e-5)


# ---------------------------------------------------------------------------- asr export

CONFIGS = {
    "blstm-stack3-skip3": dict(num_layers=2, hidden_size=16, stack=3, skip=3),
    "bgru-projection-stack2": dict(
        num_layers=2, hidden_size=12, cell="gru", projection_size=6, stack=2, skip=1
    ),  # fmt: skip
    "forward-rnn-skip2": dict(
        num_layers=2, hidden_size=10, cell="rnn", bidirectional=False, stack=1, skip=2
    ),  # fmt: skip
}


def untrained_package(path: Path, **config) -> Path:
    torch.manual_seed(0)
    model = AcousticModel(ModelConfig(input_dim=7, num_tokens=len(TOKENS), **config))
    # weights of a trained-looking scale, so that log-probs are not all near log(1/V)
    for param in model.parameters():
        param.data.normal_(0, 0.3)
    package = ModelPackage(
        state_dict=model.state_dict(),
        model_config=model.config.to_dict(),
        tokens=TOKENS,
        feature_config={"kind": "fbank", "cmvn": "utterance"},
    )
    save_package(package, path)
    return path


def run_exported(fmt: str, path: Path, feats: torch.Tensor, lengths: torch.Tensor):
    if fmt == "torchscript":
        module = torch.jit.load(str(path), map_location="cpu")
        with torch.inference_mode():
            log_probs, out_lengths = module(feats, lengths)
        return log_probs, out_lengths
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    log_probs, out_lengths = session.run(None, {"feats": feats.numpy(), "lengths": lengths.numpy()})
    return torch.from_numpy(log_probs), torch.from_numpy(out_lengths)


def check_against_eager(fmt: str, model_path: Path, exported: Path) -> float:
    """Independently of export's own check: two lengths in one batch, and each alone."""
    package = load_package(model_path)
    eager = AcousticModel(ModelConfig.from_dict(package.model_config))
    eager.load_state_dict(package.state_dict)
    eager.eval()
    dim = eager.config.input_dim
    rng = np.random.default_rng(5)
    long, short = 44, 17  # other lengths than export's own check uses
    feats = torch.zeros(2, long, dim)
    feats[0] = torch.from_numpy(rng.standard_normal((long, dim)).astype(np.float32))
    feats[1, :short] = torch.from_numpy(rng.standard_normal((short, dim)).astype(np.float32))
    worst = 0.0
    cases = [
        (feats, [long, short]),
        (feats[:1], [long]),
        (feats[1:, :short], [short]),
        (feats[[1, 0]], [short, long]),  # the short one first: padding in the first row
    ]
    for batch, lengths in cases:
        lengths_t = torch.tensor(lengths)
        with torch.inference_mode():
            want, want_lengths = eager(batch, lengths_t)
        got, got_lengths = run_exported(fmt, exported, batch.contiguous(), lengths_t)
        assert got.shape == want.shape
        assert got_lengths.tolist() == want_lengths.tolist()
        for b, n in enumerate(want_lengths.tolist()):
            worst = max(worst, float((got[b, :n] - want[b, :n]).abs().max()))
    assert worst <= 1e-4
    return worst


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_export_matches_eager(tmp_path, capsys, fmt, name) -> None:
    if fmt == "onnx":
        need_onnx()
    model = untrained_package(tmp_path / "model.pt", **CONFIGS[name])
    out = tmp_path / ("model.onnx" if fmt == "onnx" else "model.ts")
    code, stdout, _ = run_cli(capsys, "export", model, out, "--format", fmt)
    assert code == 0
    assert f"exported {fmt} to {out}; max |exported - eager| log-prob" in stdout
    reported = float(stdout.split("log-prob ")[1].split()[0])
    assert reported <= 1e-4
    check_against_eager(fmt, model, out)
    metadata = read_metadata(out)
    assert metadata["tokens"] == TOKENS
    assert metadata["model_config"] == load_package(model).model_config
    assert metadata["feature_config"]["cmvn"] == "utterance"


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_trained_model_with_global_cmvn(tiny_trained_model, tmp_path, fmt) -> None:
    if fmt == "onnx":
        need_onnx()
    model = tiny_trained_model[0]
    out = tmp_path / f"tiny.{fmt}"
    report = export_model(model, out, fmt)
    assert 0.0 <= report.max_abs_diff <= 1e-4
    assert sorted(len(c.lengths) for c in report.checks) == [1, 1, 2]
    check_against_eager(fmt, model, out)
    stats = load_package(model).cmvn_stats
    assert torch.tensor(read_metadata(out)["cmvn_stats"], dtype=torch.float64).allclose(
        stats.double()
    )


def test_export_refuses_a_mismatch_and_writes_nothing(tmp_path) -> None:
    model = untrained_package(tmp_path / "model.pt", **CONFIGS["blstm-stack3-skip3"])
    out = tmp_path / "model.ts"
    # no export can beat a negative tolerance: the check runs and refuses
    with pytest.raises(ExportError, match="differs from the eager model by .* > -1; nothing"):
        export_model(model, out, "torchscript", tolerance=-1.0)
    assert not out.exists()


def test_onnx_lstm_with_projection_is_a_clear_error(tmp_path, capsys) -> None:
    need_onnx()
    model = untrained_package(tmp_path / "model.pt", num_layers=1, hidden_size=8, projection_size=4)
    code, _, err = run_cli(capsys, "export", model, tmp_path / "m.onnx")
    assert code == 1 and err.count("\n") == 1
    assert "use --format torchscript" in err
    assert not (tmp_path / "m.onnx").exists()
    # TorchScript handles it
    assert export_model(model, tmp_path / "m.ts", "torchscript").max_abs_diff <= 1e-4


def test_export_of_a_non_package_is_one_line(tmp_path, capsys) -> None:
    bogus = tmp_path / "bogus.pt"
    buffer = io.BytesIO()
    torch.save({"hello": 1}, buffer)
    bogus.write_bytes(buffer.getvalue())
    code, _, err = run_cli(capsys, "export", bogus, tmp_path / "x.ts")
    assert code == 1 and err.count("\n") == 1 and "not an asr model package" in err


# ------------------------------------------------------------------- packages checked on load


def damaged_package(tmp_path: Path, name: str, change) -> Path:
    """An untrained package with ``change(payload)`` applied to its saved dict."""
    path = untrained_package(tmp_path / f"{name}.pt", num_layers=1, hidden_size=6)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    change(payload)
    torch.save(payload, path)
    return path


def _set_nan(payload: dict) -> None:
    payload["state_dict"]["output.weight"][1, 0] = float("nan")


def _set_inf(payload: dict) -> None:
    payload["state_dict"]["layers.0.fwd.bias_hh_l0"][0] = float("inf")


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("no-features", lambda p: p.pop("feature_config"), "has no 'feature_config'"),
        ("no-tokens", lambda p: p.pop("tokens"), "has no 'tokens'"),
        ("no-weights", lambda p: p.pop("state_dict"), "has no 'state_dict'"),
        ("list-config", lambda p: p.update(model_config=[1]), "'model_config' is a list"),
        ("bad-config", lambda p: p["model_config"].update(hidden_size=0), "hidden_size must be"),
        (
            "extra-token",
            lambda p: p.update(tokens=[*TOKENS, "f"]),
            f"{len(TOKENS) + 1} tokens, but the network has {len(TOKENS)} outputs",
        ),
        (
            "short-tokens",
            lambda p: p.update(tokens=TOKENS[:-1]),
            f"{len(TOKENS) - 1} tokens, but the network has {len(TOKENS)} outputs",
        ),
        ("nan", _set_nan, "weight output.weight holds NaN or infinite values"),
        ("inf", _set_inf, "weight layers.0.fwd.bias_hh_l0 holds NaN or infinite values"),
    ],
)
def test_a_damaged_package_is_one_line_naming_the_file(
    tmp_path, capsys, name, change, message
) -> None:
    path = damaged_package(tmp_path, name, change)
    with pytest.raises(AsrError) as info:  # ConfigError for bad values, else PackageError
        load_network(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    for argv in (("export", path, tmp_path / "out.ts"), ("transcribe", path, tmp_path / "x.wav")):
        code, out, err = run_cli(capsys, *argv)
        assert code == 1 and out == "", (argv, err)
        assert err == f"asr {argv[0]}: error: {info.value}\n"
    assert not (tmp_path / "out.ts").exists()


def test_a_good_package_loads(tmp_path) -> None:
    # the checks above refuse damaged packages only
    path = damaged_package(tmp_path, "good", lambda p: None)
    assert load_network(path).tokens.symbols == TOKENS


def test_export_check_counts_nan_as_a_difference(tmp_path) -> None:
    # NaN != NaN: a comparison by max() skips it and reported "difference 0" for a NaN network
    path = untrained_package(tmp_path / "model.pt", num_layers=1, hidden_size=6)
    eager = load_network(path).model.eval()

    def nan_at_one_frame(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            log_probs = eager(feats, lengths)[0].clone()
            log_probs[0, 3, 2] = float("nan")
        return log_probs

    checks = verify_export(eager, nan_at_one_frame, eager.config.input_dim)
    assert [c.max_abs_diff for c in checks] == [float("inf")] * 3

    def same(feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return eager(feats, lengths)[0]

    assert all(c.max_abs_diff == 0.0 for c in verify_export(eager, same, 7))


def test_export_refuses_non_finite_weights_even_past_the_loader(tmp_path, monkeypatch) -> None:
    # the package loader already refuses them; export checks the network it was handed too
    path = untrained_package(tmp_path / "model.pt", num_layers=1, hidden_size=6)
    real = asr.nn.export.load_network

    def load_then_break(model_path, device="cpu"):
        loaded = real(model_path, device)
        with torch.no_grad():
            loaded.model.output.bias[0] = float("nan")
        return loaded

    monkeypatch.setattr(asr.nn.export, "load_network", load_then_break)
    with pytest.raises(ExportError, match=r"weight output\.bias holds NaN"):
        export_model(path, tmp_path / "out.ts")
    assert not (tmp_path / "out.ts").exists()


# ------------------------------------------- SIGTERM and kill -9 while package/average/export


def _writers(exp: Path, out: Path) -> dict[str, list[str]]:
    return {
        "package": ["package", str(exp), str(out), "--average", "2", "--select", "last"],
        "average": ["average", str(exp), str(out), "--num", "2", "--select", "last"],
        "export": ["export", str(exp / "final.pt"), str(out)],
    }


@pytest.mark.parametrize("command", ["package", "average", "export"])
def test_sigterm_and_kill_9_leave_the_old_file_and_no_temp_file(
    tiny_trained_model, tmp_path, command
) -> None:
    import subprocess
    import sys

    exp = tiny_trained_model[0].parent
    out = tmp_path / "out" / "model.bin"
    out.parent.mkdir()
    out.write_bytes(b"the previous version\n")
    argv = [sys.executable, "-m", "asr", *_writers(exp, out)[command]]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

    def run(fault: str | None) -> subprocess.CompletedProcess:
        extra = {"ASR_FAULT_AT": fault} if fault else {}
        return subprocess.run(argv, env={**env, **extra}, capture_output=True, text=True)

    # SIGTERM between the temp file's fsync and its rename: the old file, no temp file
    term = run("before-rename:1:TERM")
    assert term.returncode == 143 and term.stderr.endswith(f"asr {command}: terminated\n")
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.bin"]
    assert out.read_bytes() == b"the previous version\n"
    # kill -9 there: the temp file stays (nothing can run) and the next run removes it
    kill = run("before-rename:1")
    assert kill.returncode == -9
    left = [p.name for p in out.parent.iterdir() if p.name != "model.bin"]
    assert len(left) == 1 and left[0].startswith(".model.bin.") and left[0].endswith(".tmp")
    assert out.read_bytes() == b"the previous version\n"
    done = run(None)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.bin"]
    assert out.read_bytes() != b"the previous version\n"
