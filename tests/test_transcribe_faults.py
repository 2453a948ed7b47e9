"""``asr transcribe --output-dir`` stopped at chosen points (kill -9, SIGTERM) and on a full disk.

Every run is a real ``python -m asr transcribe`` process. ``ASR_FAULT_AT`` (asr.fileio.
fault_point) makes it kill itself at an exact place: after the Nth input ("utterance"), or just
before or after the Nth atomic rename of an output file. A full disk is RLIMIT_FSIZE in the
child with SIGXFSZ ignored, so that a write past the limit fails with EFBIG as on a full disk,
on any POSIX system and without root. The results are compared with a clean run's files.
"""

from __future__ import annotations

import os
import resource
import signal as signals
import subprocess
import sys
from pathlib import Path

import pytest
from test_transcribe import long_parts, make_package, signal, write_wav

from asr.fileio import FAULT_ENV

REPO = Path(__file__).resolve().parent.parent
FORMATS = "txt,json,srt"

SHORT_A = [("sil", 0.2), ("lo", 0.3), ("sil", 0.2)]
SHORT_B = [("sil", 0.2), ("hi", 0.3), ("sil", 0.1), ("mid", 0.3), ("sil", 0.2)]
SHORT_C = [("sil", 0.1), ("mid", 0.3), ("sil", 0.3)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The package, four inputs (two named x.wav, one long) and a clean run's files."""
    root = tmp_path_factory.mktemp("faults")
    package = make_package(root / "tones.pt")
    inputs = [
        write_wav(root / "in" / "a" / "x.wav", signal(SHORT_A, seed=1)),
        write_wav(root / "in" / "b" / "x.wav", signal(SHORT_B, seed=2)),
        write_wav(root / "in" / "long.wav", signal(long_parts(6.0), seed=3)),
        write_wav(root / "in" / "z.wav", signal(SHORT_C, seed=4)),
    ]
    clean_dir = root / "clean"
    result = transcribe(package, inputs, clean_dir)
    assert result.returncode == 0, result.stderr
    files = snapshot(clean_dir)
    assert len(files) == 4 * 3  # 4 inputs x 3 formats, none overwritten by another
    return {"root": root, "package": package, "inputs": inputs, "clean": files, "out": result}


def transcribe(
    package: Path,
    inputs: list[Path],
    out_dir: Path,
    fault: str | None = None,
    preexec=None,
    prefix: list[str] | None = None,
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    env["PYTHONPATH"] = str(REPO)
    argv = [*(prefix or []), sys.executable, "-m", "asr", "transcribe", str(package)]
    argv += [str(path) for path in inputs]
    argv += ["--format", FORMATS, "--output-dir", str(out_dir), "--no-progress", "--threads", "1"]
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=300, preexec_fn=preexec
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def temp_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob(".*.tmp"))


def check_consistent(files: dict[str, bytes], clean: dict[str, bytes]) -> None:
    """Every file there is whole and is the clean run's file of that name (its own input's)."""
    for name, data in files.items():
        assert name in clean, f"unexpected file {name}"
        assert data == clean[name], f"{name} differs from the clean run's"


# (the fault, whether it is SIGTERM); 3 formats per input, so rename 4 is input 2's first file
POINTS = [
    ("utterance:1", False),
    ("utterance:3:TERM", True),
    ("before-rename:1", False),
    ("before-rename:5:TERM", True),
    ("after-rename:4", False),
    ("after-rename:9:TERM", True),
    ("before-rename:11", False),
]


@pytest.mark.parametrize("fault, term", POINTS, ids=[p[0] for p in POINTS])
def test_killed_at_a_point_leaves_whole_files_and_a_rerun_completes(
    setup: dict, fault: str, term: bool
) -> None:
    out_dir = setup["root"] / f"out-{fault.replace(':', '-')}"
    result = transcribe(setup["package"], setup["inputs"], out_dir, fault)
    if term:
        assert result.returncode == 143, result.stderr
        assert result.stderr.splitlines()[-1] == "asr transcribe: terminated"
        assert "Traceback" not in result.stderr
        assert temp_files(out_dir) == []  # SIGTERM cleans up at once
    else:
        assert result.returncode == -signals.SIGKILL
    after = snapshot(out_dir)
    finished = {k: v for k, v in after.items() if not k.split("/")[-1].startswith(".")}
    check_consistent(finished, setup["clean"])
    # exactly the files done before the stop: 3 per input, in input order
    point, count = fault.split(":")[:2]
    done = {"utterance": 3 * int(count), "before-rename": int(count) - 1}.get(point, int(count))
    order = [f"{stem}.{fmt}" for stem in ("a/x", "b/x", "long", "z") for fmt in FORMATS.split(",")]
    assert sorted(finished) == sorted(order[:done])
    # the stdout lines printed before the stop are the clean run's first lines
    clean_lines = setup["out"].stdout.splitlines()
    printed = result.stdout.splitlines()
    assert printed == clean_lines[: len(printed)]
    # an input's line follows its last file: a rename stop is inside input (count - 1) // 3
    assert len(printed) == (int(count) if point == "utterance" else (int(count) - 1) // 3)

    rerun = transcribe(setup["package"], setup["inputs"], out_dir)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout == setup["out"].stdout
    assert temp_files(out_dir) == []  # a killed run's temp files are gone after the rerun
    assert snapshot(out_dir) == setup["clean"]


def test_kill_9_really_leaves_a_temp_file_that_the_rerun_removes(setup: dict) -> None:
    # the premise of the rerun check above: killed between fsync and rename, the temp file
    # of the first output is still there
    out_dir = setup["root"] / "out-premise"
    result = transcribe(setup["package"], setup["inputs"], out_dir, "before-rename:2")
    assert result.returncode == -signals.SIGKILL
    left = temp_files(out_dir)
    assert len(left) == 1 and Path(left[0]).name.startswith(".x.json.")
    assert transcribe(setup["package"], setup["inputs"], out_dir).returncode == 0
    assert temp_files(out_dir) == []


def test_a_full_disk_is_one_line_and_loses_no_transcript(setup: dict) -> None:
    clean = setup["clean"]
    small = max(len(v) for k, v in clean.items() if not k.startswith("long."))
    assert len(clean["long.json"]) > small + 1  # the long input's JSON is the biggest file
    limit = small + 1

    def full_disk() -> None:
        signals.signal(signals.SIGXFSZ, signals.SIG_IGN)  # EFBIG instead of a core dump
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out_dir = setup["root"] / "out-full"
    result = transcribe(setup["package"], setup["inputs"], out_dir, preexec=full_disk)
    assert result.returncode == 1
    # every input's line is on stdout, the one after the failure too
    assert result.stdout == setup["out"].stdout
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and "Traceback" not in result.stderr, result.stderr
    assert errors[0].startswith(f"asr transcribe: error: {out_dir / 'long.json'}: cannot write (")
    assert "no more files are written" in errors[0]
    assert "2 files transcribed" in errors[1] and "2 failed" in errors[1]
    files = snapshot(out_dir)
    check_consistent(files, clean)  # nothing half-written, no temp file
    assert sorted(files) == sorted(
        [f"{d}/x.{f}" for d in "ab" for f in ("txt", "json", "srt")] + ["long.txt"]
    )
    # with room again, a rerun writes everything
    assert transcribe(setup["package"], setup["inputs"], out_dir).returncode == 0
    assert snapshot(out_dir) == clean


# --- permissions, with the modes really enforced (tests/unreadable.py: also as root) ---------


def test_a_file_without_read_permission_is_one_line_and_the_others_go_on(setup: dict) -> None:
    from unreadable import unreadable

    locked = write_wav(setup["root"] / "locked" / "locked.wav", signal(SHORT_A, seed=5))
    prefix = unreadable(locked)
    inputs = [setup["inputs"][0], locked, setup["inputs"][3]]
    out_dir = setup["root"] / "out-locked"
    out_dir.mkdir()
    result = transcribe(setup["package"], inputs, out_dir, prefix=prefix)
    assert result.returncode == 1
    clean_lines = setup["out"].stdout.splitlines()
    assert result.stdout.splitlines() == [clean_lines[0], clean_lines[3]]
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and "Traceback" not in result.stderr, result.stderr
    assert errors[0].startswith(f"asr transcribe: error: {locked}: ")
    assert "permission denied" in errors[0].lower()
    assert "2 files transcribed" in errors[1] and "1 failed" in errors[1]
    # a/x.wav is the only x.wav here, so its files are x.*; nothing of the locked input
    clean = {k.removeprefix("a/"): v for k, v in setup["clean"].items() if k[0] in "az"}
    assert snapshot(out_dir) == clean


def test_an_unwritable_output_folder_is_one_line(setup: dict) -> None:
    from unreadable import unwritable

    out_dir = setup["root"] / "out-readonly"
    out_dir.mkdir()
    prefix = unwritable(out_dir)
    result = transcribe(setup["package"], setup["inputs"][:2], out_dir, prefix=prefix)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"asr transcribe: error: {out_dir}: output folder is not writable\n"
    assert list(out_dir.iterdir()) == []
