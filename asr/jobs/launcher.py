"""Run N jobs and wait for them: locally in a process pool, or through Slurm. Kaldi's ``cmd.sh``.

A recipe chooses its launcher once, in ``recipes/<corpus>/cmd.sh``, as Kaldi's recipes choose
``run.pl`` or ``slurm.pl``, and passes it to the commands that split their work (``asr features
--nj N --cmd "$train_cmd"``). The spec is a string:

- ``local [--max-jobs K]``: the jobs run here, at most K at a time (default: the CPU cores);
- ``slurm [--mem 4G] [--cpus 2] [--gpus 1] [--partition P] [--time 1:00:00] [--account A]
  [--max-jobs K]``: each job is one ``srun`` (an allocation and one task, waited for; srun
  returns when the job ends, where ``sbatch --wait`` polls every few seconds).

Every job writes its output (stdout and stderr) to ``LOG_DIR/NAME.J.log`` (J from 1), which
starts with the command line, as Kaldi's ``run.pl`` writes it. :func:`run_jobs` returns when
all have finished; if any failed it raises one :class:`JobError` that names the first failed job
and its log, so the caller never merges partial results. The Slurm launcher checks, before any
job starts, that ``srun`` is there and that the controller answers (``scontrol ping``), so an
unreachable scheduler is one line at once, not N failed jobs.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import AsrError, ConfigError

KINDS = ("local", "slurm")


class JobError(AsrError):
    """A job failed, or the launcher cannot start jobs at all."""


@dataclass
class Launcher:
    """How jobs run: ``kind`` local or slurm, with the Slurm requests of each job."""

    kind: str = "local"
    max_jobs: int | None = None
    mem: str | None = None
    cpus: int | None = None
    gpus: int | None = None
    partition: str | None = None
    time_limit: str | None = None
    account: str | None = None
    extra: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str) -> Launcher:
        """``"local"``, ``"slurm --mem 4G --cpus 2"``... (see the module docstring)."""
        words = shlex.split(spec or "local")
        if not words or words[0] not in KINDS:
            raise ConfigError(
                f"job launcher {spec!r}: must start with {' or '.join(KINDS)} "
                "(e.g. 'local', 'slurm --mem 4G')"
            )
        parser = argparse.ArgumentParser(prog=words[0], add_help=False, exit_on_error=False)
        parser.add_argument("--max-jobs", type=int)
        if words[0] == "slurm":
            parser.add_argument("--mem")
            parser.add_argument("--cpus", type=int)
            parser.add_argument("--gpus", type=int)
            parser.add_argument("--partition")
            parser.add_argument("--time", dest="time_limit")
            parser.add_argument("--account")
        try:
            options, unknown = parser.parse_known_args(words[1:])
        except (argparse.ArgumentError, ValueError) as exc:
            raise ConfigError(f"job launcher {spec!r}: {exc}") from None
        if unknown:
            raise ConfigError(f"job launcher {spec!r}: unknown option(s) {' '.join(unknown)}")
        if options.max_jobs is not None and options.max_jobs < 1:
            raise ConfigError(f"job launcher {spec!r}: --max-jobs must be at least 1")
        return cls(kind=words[0], **vars(options))

    def describe(self) -> str:
        return shlex.join([self.kind, *self._slurm_options()]) if self.kind == "slurm" else "local"

    def _slurm_options(self) -> list[str]:
        options = []
        if self.mem:
            options.append(f"--mem={self.mem}")
        if self.cpus:
            options.append(f"--cpus-per-task={self.cpus}")
        if self.gpus:
            options.append(f"--gres=gpu:{self.gpus}")
        if self.partition:
            options.append(f"--partition={self.partition}")
        if self.time_limit:
            options.append(f"--time={self.time_limit}")
        if self.account:
            options.append(f"--account={self.account}")
        return options + list(self.extra)

    def check(self) -> None:
        """Can jobs start at all? One JobError line, before any job, when they cannot."""
        if self.kind != "slurm":
            return
        for tool in ("srun", "scontrol"):
            if shutil.which(tool) is None:
                raise JobError(
                    f"slurm launcher: {tool} not found (install Slurm's client tools, e.g. "
                    "Debian's slurm-client, or use the local launcher)"
                )
        try:
            done = subprocess.run(
                ["scontrol", "ping"], capture_output=True, text=True, timeout=30, check=False
            )
        except subprocess.TimeoutExpired:
            raise JobError("slurm launcher: scontrol ping got no answer in 30 s") from None
        answer = (done.stdout + done.stderr).strip()
        if done.returncode != 0 or "UP" not in answer:
            first = answer.splitlines()[0] if answer else f"exit status {done.returncode}"
            raise JobError(f"slurm launcher: the Slurm controller does not answer ({first})")

    def job_env(self, parallel: int) -> dict[str, str]:
        """The environment of each job: the threads of its math libraries set to its share of
        the cores (local: the cores over the jobs running at once; Slurm: its --cpus), unless
        the caller set them. N jobs with all the cores each fight over them: two feature jobs
        on 2 cores ran 3x slower than one job alone (docs/benchmarks.md)."""
        if self.kind == "local":
            share = max(1, (os.cpu_count() or 1) // max(1, parallel))
        else:
            share = self.cpus or 1
        env = dict(os.environ)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, str(share))
        return env

    def command(self, job: Sequence[str], name: str, log: Path) -> list[str]:
        """The command line that runs ``job`` as job ``name``, its output in ``log``."""
        if self.kind == "local":
            return list(job)
        return [
            "srun",
            f"--job-name={name}",
            f"--output={log}",
            "--open-mode=append",  # after the header line we wrote
            "--ntasks=1",
            "--quiet",
            *self._slurm_options(),
            *job,
        ]


def run_jobs(
    launcher: Launcher,
    name: str,
    jobs: Sequence[Sequence[str]],
    log_dir: str | os.PathLike,
) -> list[float]:
    """Run every job (an argv list) through ``launcher``; logs ``LOG_DIR/NAME.J.log``.

    Returns each job's wall seconds. Raises JobError naming the first failed job (by number)
    and its log when any job failed, after all have ended."""
    if not jobs:
        return []
    launcher.check()
    log_dir = Path(log_dir)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobError(f"{log_dir}: cannot create the log folder ({exc.strerror})") from None
    limit = launcher.max_jobs or (len(jobs) if launcher.kind == "slurm" else os.cpu_count() or 1)
    parallel = min(limit, len(jobs))
    env = launcher.job_env(parallel)

    def one(index: int) -> tuple[int, float]:
        log = log_dir / f"{name}.{index}.log"
        argv = launcher.command(jobs[index - 1], f"{name}.{index}", log)
        begin = time.monotonic()
        with open(log, "w", encoding="utf-8") as handle:
            handle.write(f"# {shlex.join(argv)}\n")
            handle.flush()
            # under Slurm, srun appends the job's output to the log itself, and its own
            # complaints (an allocation refused) come here and go there too
            code = subprocess.run(
                argv, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False
            ).returncode
        return code, time.monotonic() - begin

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        outcomes = list(pool.map(one, range(1, len(jobs) + 1)))
    failed = [(j, code) for j, (code, _) in enumerate(outcomes, start=1) if code != 0]
    if failed:
        first, code = failed[0]
        others = f" ({len(failed)} of {len(jobs)} jobs failed)" if len(failed) > 1 else ""
        raise JobError(
            f"{name}: job {first} of {len(jobs)} failed (exit status {code}); see "
            f"{log_dir / f'{name}.{first}.log'}{others}"
        )
    return [seconds for _, seconds in outcomes]
