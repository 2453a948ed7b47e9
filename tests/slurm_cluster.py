"""A throwaway single-node Slurm cluster on this machine, for tests/test_slurm.py and
bench/bench_jobs.py: munged (its own key and socket), slurmctld and slurmd in the foreground
with a minimal slurm.conf (free ports, no cgroups, no accounting), stopped afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("srun", "sbatch", "scontrol", "sinfo")


def tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def missing() -> str | None:
    absent = [name for name in (*DAEMONS, *CLIENTS) if tool(name) is None]
    if absent:
        return f"Slurm is not installed ({', '.join(absent)} missing; make setup installs it)"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs; this test runs as another user"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 // 2
    return 1024


def node_name() -> str:
    return socket.gethostname().split(".")[0]


def write_conf(root: Path, munge_socket: Path, ctld_port: int, timeout: int = 10) -> Path:
    # the addresses are given, so that nothing depends on the host name resolving
    host = node_name()
    cpus = os.cpu_count() or 1
    conf = root / "slurm.conf"
    conf.write_text(
        f"""ClusterName=asrtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "slurmctld.log"}
SlurmdLogFile={root / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MessageTimeout={timeout}
# a job that asks for no memory gets a CPU's share, not the whole node (as clusters set it)
DefMemPerCPU={_memory_mb() // cpus}
ReturnToService=2
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={_memory_mb()} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
    )
    return conf


class ClusterError(RuntimeError):
    """The cluster did not come up."""


def start_cluster(root: Path) -> tuple[dict[str, str], list[subprocess.Popen]]:
    """Start munged, slurmctld and slurmd under ``root``; (the environment whose SLURM_CONF
    points at it, the daemons). Raises ClusterError, with the daemons' last log lines, when the
    node is not idle within a minute; stop the daemons with :func:`stop_cluster` either way."""
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    munge_socket = root / "munge" / "munge.socket"
    conf = write_conf(root, munge_socket, free_port())
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = [
        subprocess.Popen(
            [
                tool("munged"),
                "--foreground",
                # pytest's folders are private (0700), which munged calls insecure
                "--force",
                f"--key-file={key}",
                f"--socket={munge_socket}",
                f"--pid-file={root / 'munge' / 'munged.pid'}",
                f"--seed-file={root / 'munge' / 'seed'}",
            ],
            stdout=(root / "munged.log").open("w"),
            stderr=subprocess.STDOUT,
        )
    ]
    deadline = time.monotonic() + 20
    while not munge_socket.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    for daemon in ("slurmctld", "slurmd"):
        daemons.append(
            subprocess.Popen(
                [tool(daemon), "-D", "-f", str(conf)]
                + (["-N", node_name()] if daemon == "slurmd" else []),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline:
        done = subprocess.run(
            [tool("sinfo"), "-h", "-o", "%t"], env=env, capture_output=True, text=True
        )
        state = done.stdout.strip()
        if state == "idle":
            return env, daemons
        time.sleep(0.5)
    logs = "".join(
        (root / f"{d}.log").read_text()[-600:]
        for d in ("munged", "slurmctld", "slurmd")
        if (root / f"{d}.log").exists()
    )
    stop_cluster(daemons)
    raise ClusterError(f"the test cluster did not come up (node state {state!r}): {logs}")


def stop_cluster(daemons: list[subprocess.Popen]) -> None:
    for process in reversed(daemons):
        process.terminate()
    for process in daemons:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
