"""bench/bench_gpu.py in its CPU mode: every section runs, with tiny shapes, so that the minutes
of a lent GPU go to measuring, not to debugging the script."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("impls", "trainer", "precision", "distributed", "cuda_tests")


def numbers(value: Any, where: str = "") -> list[tuple[str, float]]:
    """Every int and float in a JSON document, with its path."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [(where, float(value))]
    if isinstance(value, dict):
        return [n for key, item in value.items() for n in numbers(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [n for i, item in enumerate(value) for n in numbers(item, f"{where}[{i}]")]
    return []


def test_quick_cpu_run_covers_every_section(tmp_path) -> None:
    out = tmp_path / "bench.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "bench/bench_gpu.py", "--device", "cpu", "--quick", "--json", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    sections = results["sections"]
    assert set(sections) == set(SECTIONS)
    for name, section in sections.items():
        assert section["status"] == "ok", (name, section.get("error"))
        assert section["elapsed_s"] >= 0
        # each section printed its elapsed time
        assert f"[{name}] ok in " in proc.stdout
    bad = [(path, value) for path, value in numbers(sections) if not math.isfinite(value)]
    assert not bad, bad

    # a. the two implementations agree on a padded batch, and both were timed
    for shape in sections["impls"]["shapes"]:
        equality = shape["equality"]
        assert equality["equal"]
        assert equality["max_abs_logprob_diff"] <= equality["tolerance"] <= 1e-4
        assert equality["max_abs_grad_diff"] <= 1e-4 * max(1.0, equality["max_abs_grad"])
        for row in shape["ms_per_batch"].values():
            assert {"per_direction", "packed", "bare_lstm_padded", "bare_lstm_packed"} <= set(row)
            assert all(value > 0 for value in row.values())
    # b. trainer against bare nn.LSTM, each precision and implementation
    trainer = sections["trainer"]
    for key in ("fp32_per_direction", "fp32_packed", "bf16_per_direction", "bf16_packed"):
        assert trainer[key]["ratio_median"] > 0 and trainer[key]["frames_per_s_ours"] > 0
    # c. both precisions ran the same number of steps without a skipped batch
    precision = sections["precision"]
    assert precision["steps_done"] == precision["steps_asked"]
    for name in ("fp32", "bf16"):
        assert precision[name]["skipped_steps"] == 0
        assert precision[name]["dev_loss_end"] < precision[name]["dev_loss_start"]
    # d. torchrun: the child's process group (gloo here) and asr train under torchrun
    distributed = sections["distributed"]
    assert distributed["process_group"]["rc"] == 0 and distributed["process_group"]["ok"]
    assert distributed["process_group"]["backend"] == "gloo"
    assert distributed["asr_train_cpu"]["rc"] == 0 and distributed["asr_train_cpu"]["final_pt"]
    # e. the CUDA tests were found and skip here
    counts = sections["cuda_tests"]["counts"]
    assert counts.get("skipped", 0) >= 3 and not counts.get("failed") and not counts.get("error")
    assert results["env"]["device"] == "cpu" and results["env"]["torch"] == torch.__version__
