"""``--nj N --cmd SPEC``: the options of the commands that split their work into jobs, and the
split itself (by speaker, as Kaldi's ``split_data.sh``); the jobs run through
:mod:`asr.jobs.launcher`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from asr.data.datadir import DataDir
from asr.data.subset import split_datadir
from asr.errors import ConfigError

# How a job runs an asr subcommand: this interpreter's asr, whatever PATH a job gets
ASR = [sys.executable, "-m", "asr"]


def add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--nj",
        type=int,
        default=1,
        help="jobs: DATA_DIR is split by speaker into DATA_DIR/splitN/1..N, each part runs as "
        "one job (logs in DATA_DIR/log/) and the results are merged in the data dir's order, "
        "equal to one job's (default 1; more jobs than speakers are reduced, with a note)",
    )
    parser.add_argument(
        "--cmd",
        default=os.environ.get("ASR_CMD", "local"),
        metavar="SPEC",
        help="how the jobs run, as Kaldi's cmd.sh: 'local [--max-jobs K]' or 'slurm [--mem 4G] "
        "[--cpus N] [--gpus N] [--partition P] [--time T] [--account A]' (default $ASR_CMD, "
        "else local)",
    )


def split_for_jobs(data_dir: str | os.PathLike, nj: int) -> list[Path]:
    """DATA_DIR/splitN/1..N for ``nj`` jobs, N reduced to the speakers there are (a note)."""
    if nj < 1:
        raise ConfigError(f"--nj {nj}: must be at least 1")
    speakers = len(DataDir.load(data_dir).speakers)
    if speakers < nj:
        print(
            f"asr: note: {data_dir} has {speakers} speaker(s): --nj {nj} reduced to {speakers} "
            "(a speaker is never split)",
            file=sys.stderr,
        )
        nj = speakers
    return split_datadir(data_dir, nj)
