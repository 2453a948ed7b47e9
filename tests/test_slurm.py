"""The slurm launcher against a real Slurm: a single-node cluster started here (munged,
slurmctld, slurmd on this machine, a minimal slurm.conf written by the test, no cgroups), through
which ``asr features --nj 2`` and a 2-job ``asr decode`` run; their outputs must equal the local
launcher's. Needs Debian's slurm-wlm and munge (``make setup`` installs them) and root (slurmd
runs jobs as their users); when CI=true their absence is an error, not a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from slurm_cluster import (
    ClusterError,
    free_port,
    missing,
    start_cluster,
    stop_cluster,
    tool,
    write_conf,
)
from test_jobs import asr, assert_same_features, make_audio_datadir
from test_train import write_synthetic

from asr.nn.package import load_package


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    reason = missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        env, daemons = start_cluster(tmp_path_factory.mktemp("slurm"))
    except ClusterError as exc:
        pytest.fail(str(exc))
    try:
        yield env
    finally:
        stop_cluster(daemons)


def test_features_through_slurm_equal_local(slurm_env: dict[str, str], tmp_path: Path) -> None:
    data = make_audio_datadir(tmp_path / "src")
    local, slurm = tmp_path / "local", tmp_path / "slurm"
    for copy in (local, slurm):
        shutil.copytree(data, copy)
    done = asr("features", str(local), "--nj", "2", "--no-progress", env=slurm_env)
    assert done.returncode == 0, done.stderr
    done = asr(
        "features",
        str(slurm),
        "--nj",
        "2",
        "--cmd",
        "slurm --mem 500M --cpus 1",
        "--no-progress",
        env=slurm_env,
    )
    assert done.returncode == 0, done.stderr
    assert_same_features(local, slurm)
    for j in (1, 2):
        log = (slurm / "log" / f"make_features.{j}.log").read_text()
        # the job went through srun, with the requests asked for, and ran to its end
        assert log.startswith(f"# srun --job-name=make_features.{j} ")
        assert "--mem=500M" in log.splitlines()[0] and "--cpus-per-task=1" in log.splitlines()[0]


def test_decode_through_slurm_equals_local(
    slurm_env: dict[str, str], tiny_trained_model, tmp_path: Path
) -> None:
    model, _ = tiny_trained_model
    data = tmp_path / "test"
    write_synthetic(data, 24, seed=7)
    one = tmp_path / "one"
    assert asr("decode", str(model), str(data), str(one), "--no-progress").returncode == 0
    jobs = tmp_path / "jobs"
    done = asr(
        "decode",
        str(model),
        str(data),
        str(jobs),
        "--nj",
        "2",
        "--cmd",
        "slurm",
        "--no-progress",
        env=slurm_env,
    )
    assert done.returncode == 0, done.stderr
    assert (one / "text").read_bytes() == (jobs / "text").read_bytes()
    assert (jobs / "log" / "decode.2.log").read_text().startswith("# srun --job-name=decode.2 ")


def test_a_scheduler_that_does_not_answer_is_one_line_before_any_job(tmp_path: Path) -> None:
    reason = missing()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    # a controller port where nothing listens, and a short message timeout
    conf = write_conf(tmp_path, tmp_path / "no-munge.socket", free_port(), timeout=2)
    data = make_audio_datadir(tmp_path / "src")
    done = asr(
        "features",
        str(data),
        "--nj",
        "2",
        "--cmd",
        "slurm",
        "--no-progress",
        env={**os.environ, "SLURM_CONF": str(conf)},
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        "asr features: error: slurm launcher: the Slurm controller does not answer ("
    )
    assert not (data / "split2").exists() and not (data / "feats.scp").exists()


def test_training_on_a_slurm_allocation_with_slurm_train_sh(
    slurm_env: dict[str, str], tmp_path: Path
) -> None:
    """recipes/utils/slurm_train.sh under sbatch: torchrun with two processes on the node,
    the rendezvous from Slurm's environment, one asr train run of two processes."""
    train, dev = tmp_path / "train", tmp_path / "dev"
    write_synthetic(train, 40, seed=1)
    write_synthetic(dev, 8, seed=2)
    conf = tmp_path / "train.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "model": {"num_layers": 1, "hidden_size": 16},
                "training": {"lr": 0.02, "max_epochs": 2, "batch_frames": 80, "precision": "fp32"},
            }
        )
    )
    exp, out = tmp_path / "exp", tmp_path / "slurm.out"
    script = Path(__file__).resolve().parents[1] / "recipes" / "utils" / "slurm_train.sh"
    env = {**slurm_env, "PROCS_PER_NODE": "2", "ASR_PYTHON": sys.executable}
    env["MASTER_PORT"] = str(free_port())
    done = subprocess.run(
        [
            tool("sbatch"),
            "--wait",
            "--nodes=1",
            f"--output={out}",
            str(script),
            "--config",
            str(conf),
            "--train-dir",
            str(train),
            "--dev-dir",
            str(dev),
            "--exp-dir",
            str(exp),
            "--threads",
            "1",
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stderr, out.read_text()[-2000:] if out.exists() else "")
    log = (exp / "train.log").read_text()
    assert "2 process(es) on cpu" in log.splitlines()[0]
    assert load_package(exp / "final.pt").extra["training_data"]["utterances"] == 40
