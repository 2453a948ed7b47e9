"""Benchmark: split jobs (``--nj``): features in 2 jobs against 1, and what the Slurm launcher
adds per job over the local one.

1. ``asr features DATA --nj 1`` and ``--nj 2`` on a data dir (default: the synth recipe's
   training set, ``make demo``) listed ``--copies`` times (10: 10 hours from the 1-hour demo,
   so that the work outweighs the jobs' start-up of about 2 s), one after the other, in
   ``--rounds`` alternating pairs (a VM's speed drifts between minutes: a pair run back to back
   shares the drift); each pair's ratio of wall times, their median, and a check that the
   outputs are equal.
2. With Slurm installed and root (as tests/test_slurm.py needs), a throwaway single-node cluster
   is started and ``--jobs`` trivial jobs (``python -c pass``) and the same ``--nj 2`` features
   run through ``slurm`` and ``local``: the extra seconds per job.

    .venv/bin/python bench/bench_jobs.py [--data recipes/synth/data/train] [--jobs 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from slurm_cluster import ClusterError, missing, start_cluster, stop_cluster  # noqa: E402
from test_jobs import assert_same_features  # noqa: E402

from asr.jobs.launcher import Launcher, run_jobs  # noqa: E402

CONF = ROOT / "recipes" / "synth" / "conf" / "fbank.yaml"


def copy_tables(source: Path, target: Path, copies: int = 1) -> Path:
    """The data dir's tables, its utterances listed ``copies`` times under new utterance and
    speaker ids (``cK-``), so that the work is larger than the jobs' start-up."""
    target.mkdir(parents=True)
    for name in ("wav.scp", "text", "utt2spk"):
        lines = (source / name).read_text(encoding="utf-8").splitlines()
        out = []
        for k in range(copies):
            for line in lines:
                key, _, rest = line.partition(" ")
                if name == "utt2spk":
                    rest = f"c{k}-{rest}"
                out.append(f"c{k}-{key} {rest}\n")
        (target / name).write_text("".join(sorted(out)), encoding="utf-8")
    return target


def features(data: Path, nj: int, cmd: str, env: dict | None = None) -> float:
    begin = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "asr",
            "features",
            str(data),
            "--config",
            str(CONF),
            "--no-progress",
            "--nj",
            str(nj),
            "--cmd",
            cmd,
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    return time.perf_counter() - begin


def trivial_jobs(launcher: Launcher, count: int, log_dir: Path) -> float:
    jobs = [[sys.executable, "-c", "pass"] for _ in range(count)]
    begin = time.perf_counter()
    run_jobs(launcher, "noop", jobs, log_dir)
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "recipes/synth/data/train")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--copies", type=int, default=10, help="the data dir listed K times")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of --nj 1 and --nj 2 runs")
    args = parser.parse_args()
    if not (args.data / "wav.scp").is_file():
        print(f"skipped: {args.data}/wav.scp missing (run make demo first)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        tmp = Path(tmp)
        ratios = []
        for r in range(1, args.rounds + 1):
            for name in (f"one{r - 1}", f"two{r - 1}"):  # a gigabyte a round at 10 hours
                shutil.rmtree(tmp / name, ignore_errors=True)
            one = copy_tables(args.data, tmp / f"one{r}", args.copies)
            two = copy_tables(args.data, tmp / f"two{r}", args.copies)
            utts = sum(1 for _ in (one / "wav.scp").open())
            t1 = features(one, 1, "local")
            t2 = features(two, 2, "local")
            assert_same_features(one, two)
            ratios.append(t1 / t2)
            print(
                f"round {r}: asr features on {args.data} x {args.copies} ({utts} utterances): "
                f"--nj 1 {t1:.1f} s, --nj 2 {t2:.1f} s: {t1 / t2:.2f}x (outputs equal)",
                flush=True,
            )
        print(
            f"--nj 2 against --nj 1: median {statistics.median(ratios):.2f}x over {args.rounds} "
            f"rounds (min {min(ratios):.2f}x, max {max(ratios):.2f}x)",
            flush=True,
        )
        reason = missing()
        if reason:
            print(f"slurm: skipped ({reason})")
            return
        try:
            env, daemons = start_cluster(tmp / "cluster")
        except ClusterError as exc:
            print(f"slurm: skipped ({exc})")
            return
        try:
            saved = dict(os.environ)
            os.environ.update(env)
            try:
                local = trivial_jobs(Launcher.parse("local"), args.jobs, tmp / "log")
                slurm = trivial_jobs(Launcher.parse("slurm"), args.jobs, tmp / "log")
            finally:
                os.environ.clear()
                os.environ.update(saved)
            print(
                f"{args.jobs} trivial jobs: local {local:.2f} s, slurm {slurm:.2f} s: "
                f"{(slurm - local) / args.jobs:.2f} s more per job"
            )
            three = copy_tables(args.data, tmp / "three", args.copies)
            t3 = features(three, 2, "slurm", env)
            assert_same_features(one, three)
            print(
                f"asr features --nj 2 --cmd slurm: {t3:.1f} s against {t2:.1f} s local: "
                f"{(t3 - t2) / 2:.2f} s more per job (outputs equal)"
            )
        finally:
            stop_cluster(daemons)


if __name__ == "__main__":
    main()
