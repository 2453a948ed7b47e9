"""recipes/timit/run.sh end to end on the ../shared TIMIT sample at a CI size.

The sample's own run (30 epochs, stage 5 with the synthetic-speech model) is in
recipes/timit/RESULTS. Here a 2x64 model trains 4 epochs: enough to check every stage, the
48 -> 39 scoring and the per-speaker reports, not the accuracy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "timit"


@pytest.mark.integration
@pytest.mark.slow
def test_timit_recipe_on_the_sample(timit_dir: Path, tmp_path: Path) -> None:
    conf = yaml.safe_load((RECIPE / "conf" / "train_cpu.yaml").read_text())
    conf["model"].update(num_layers=2, hidden_size=64)
    conf["training"].update(max_epochs=4, precision="fp32")
    small = tmp_path / "train.yaml"
    small.write_text(yaml.safe_dump(conf))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = ["bash", str(RECIPE / "run.sh"), "--corpus-dir", str(timit_dir), "--sample"]
    command += ["--conf", str(small), "--threads", "2", "--beam-size", "4"]
    command += ["--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    split = (tmp_path / "data" / "split.txt").read_text().split("\n")
    held_out = [line.split() for line in split if line.startswith(("dev ", "test "))]
    assert len(held_out) == 4 and {gender for _, _, gender, *_ in held_out} == {"f", "m"}
    # Scored on 39 phones: every reference phone of the test speakers, folded from 48.
    test_text = (tmp_path / "data" / "test" / "text").read_text().splitlines()
    phones = sum(len(line.split()) - 1 for line in test_text)
    for decoder in ("greedy", "beam4", "beam4_bigram"):
        line = re.search(rf"^blstm {decoder} %PER (\S+) \[ (\d+) / (\d+),", done.stdout, re.M)
        assert line, done.stdout[-2000:]
        assert int(line.group(3)) == phones
        sys_file = tmp_path / "exp" / "blstm" / f"decode_{decoder}" / "scoring" / "text.sys"
        table = sys_file.read_text(encoding="utf-8")
        for kind, speaker, *_ in held_out:  # a row per test speaker, none for dev speakers
            assert bool(re.search(rf"\|\s+{speaker}\s+\|", table)) == (kind == "test")
        assert "timit48-39" in table


@pytest.mark.integration
@pytest.mark.slow
def test_timit_recipe_cross_validates_over_folds(timit_dir: Path, tmp_path: Path) -> None:
    """--sample --folds 2: each fold's %PER lines, then the pooled rate over every sample
    speaker (each tested once) with its bootstrap interval, equal to the folds' errors summed."""
    conf = yaml.safe_load((RECIPE / "conf" / "train_cpu.yaml").read_text())
    conf["model"].update(num_layers=1, hidden_size=32)
    conf["training"].update(max_epochs=2, precision="fp32")
    small = tmp_path / "train.yaml"
    small.write_text(yaml.safe_dump(conf))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = ["bash", str(RECIPE / "run.sh"), "--corpus-dir", str(timit_dir), "--sample"]
    command += ["--folds", "2", "--conf", str(small), "--threads", "2", "--beam-size", "2"]
    command += ["--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout

    everyone = (tmp_path / "data" / "all" / "text").read_text().splitlines()
    phones = sum(len(line.split()) - 1 for line in everyone)
    for decoder in ("greedy", "beam2", "beam2_bigram"):
        folds = [
            re.search(rf"^fold{k} blstm {decoder} %PER \S+ \[ (\d+) / (\d+),", out, re.M)
            for k in (1, 2)
        ]
        assert all(folds), out[-2000:]
        pooled = re.search(rf"^pooled blstm {decoder} %PER (\S+) \[ (\d+) / (\d+),", out, re.M)
        assert pooled, out[-2000:]
        # every utterance of the sample scored once: the folds add up to the pooled count
        assert int(pooled.group(3)) == phones == sum(int(f.group(2)) for f in folds if f)
        assert int(pooled.group(2)) == sum(int(f.group(1)) for f in folds if f)
        ci = re.search(
            rf"^pooled blstm {decoder} .*\n  %PER \S+, 95% CI \[(\S+), (\S+)\]", out, re.M
        )
        assert ci, out[-2000:]
        assert float(ci.group(1)) <= float(pooled.group(1)) <= float(ci.group(2))
    assert "no test sentence was read by a training speaker of its fold" in out
