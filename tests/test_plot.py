"""``asr plot``: several runs' curves in one PNG, drawn from their history.tsv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.cli import main
from asr.training.curves import plot_runs

HEADER = "epoch\ttrain_loss\tdev_loss\tdev_ter\tlr\ttime\n"


def _run(folder: Path, ters: list[float]) -> Path:
    folder.mkdir(parents=True)
    rows = [f"{i}\t1.0\t1.0\t{ter}\t0.001\t1.0\n" for i, ter in enumerate(ters, 1)]
    (folder / "history.tsv").write_text(HEADER + "".join(rows))
    return folder


def _pixels(path: Path) -> np.ndarray:
    from matplotlib import image

    return image.imread(str(path))


def test_plot_draws_one_line_per_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _run(tmp_path / "lstm", [90.0, 40.0, 20.0])
    b = _run(tmp_path / "rnn", [95.0, 80.0, 60.0, 50.0])
    out = tmp_path / "both.png"
    assert main(["plot", str(out), f"lstm-bi={a}", str(b)]) == 0
    assert "2 runs" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = tmp_path / "one.png"
    assert main(["plot", str(one), str(a)]) == 0
    # the second run adds coloured pixels the first alone does not have
    both, single = _pixels(out), _pixels(one)
    assert both.shape == single.shape
    assert np.abs(both - single).sum() > 100


def test_plot_names_a_folder_without_history(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "x.png"), str(tmp_path / "empty")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty/history.tsv: file not found" in err[0]
    assert not (tmp_path / "x.png").exists()


def test_plot_runs_rejects_a_missing_metric(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="run a: no dev_ter at epoch 1"):
        plot_runs({"a": [{"epoch": 1, "dev_loss": 1.0}]}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
