"""Split work run as jobs (asr.jobs.launcher, ``--nj N --cmd SPEC``): the merged result equals one
job's, a failed job names itself and its log and nothing is merged, and bad specs are one line.
The same commands through a real Slurm cluster: tests/test_slurm.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
from test_train import write_synthetic
from test_transcribe import make_package, signal

from asr.errors import ConfigError
from asr.jobs.launcher import JobError, Launcher, run_jobs

RATE = 16000
SPEAKERS = ("spk_a", "spk_b", "spk_c", "spk_d")


def make_audio_datadir(root: Path, per_speaker: int = 3) -> Path:
    """Speakers with a few recordings each of tones in noise (lengths and pitches differ)."""
    rng = np.random.default_rng(0)
    data = root / "data"
    (data / "wav").mkdir(parents=True)
    scp, text, utt2spk = [], [], []
    for s, speaker in enumerate(SPEAKERS):
        for k in range(per_speaker):
            utt = f"{speaker}-u{k}"
            seconds = 0.4 + 0.3 * k + 0.1 * s
            t = np.arange(int(seconds * RATE)) / RATE
            wave = 0.2 * np.sin(2 * np.pi * (200 + 150 * s + 40 * k) * t)
            wave += 0.01 * rng.standard_normal(len(t))
            path = data / "wav" / f"{utt}.wav"
            sf.write(str(path), wave.astype(np.float32), RATE)
            scp.append(f"{utt} {path}\n")
            text.append(f"{utt} word{k}\n")
            utt2spk.append(f"{utt} {speaker}\n")
    (data / "wav.scp").write_text("".join(scp))
    (data / "text").write_text("".join(text))
    (data / "utt2spk").write_text("".join(utt2spk))
    return data


def asr(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "asr", *args], capture_output=True, text=True, env=env, timeout=600
    )


def read_scp(path: Path) -> list[tuple[str, np.ndarray]]:
    return [(key, np.array(value)) for key, value in kaldiio.load_scp_sequential(str(path))]


def assert_same_features(one: Path, many: Path) -> None:
    """Equal outputs: feats.scp order and matrices, utt2num_frames, cmvn stats, feats.yaml."""
    a, b = read_scp(one / "feats.scp"), read_scp(many / "feats.scp")
    assert [k for k, _ in a] == [k for k, _ in b]
    for (_, x), (_, y) in zip(a, b, strict=True):
        assert np.array_equal(x, y)
    for name in ("utt2num_frames", "feats.yaml"):
        assert (one / name).read_bytes() == (many / name).read_bytes(), name
    sa, sb = read_scp(one / "cmvn.scp"), read_scp(many / "cmvn.scp")
    assert [k for k, _ in sa] == [k for k, _ in sb]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(sa, sb, strict=True))
    assert np.array_equal(
        kaldiio.load_mat(str(one / "cmvn_global.ark")),
        kaldiio.load_mat(str(many / "cmvn_global.ark")),
    )


@pytest.fixture
def two_copies(tmp_path: Path) -> tuple[Path, Path]:
    data = make_audio_datadir(tmp_path / "src")
    one, many = tmp_path / "one", tmp_path / "many"
    for copy in (one, many):
        shutil.copytree(data, copy)
        scp = (copy / "wav.scp").read_text().replace(str(data), str(copy))
        (copy / "wav.scp").write_text(scp)  # each copy reads its own audio files
    return one, many


def test_features_in_jobs_equal_one_job(two_copies: tuple[Path, Path]) -> None:
    one, many = two_copies
    assert asr("features", str(one), "--no-progress").returncode == 0
    done = asr("features", str(many), "--nj", "3", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert_same_features(one, many)
    logs = sorted((many / "log").glob("make_features.*.log"))
    assert [p.name for p in logs] == [f"make_features.{j}.log" for j in (1, 2, 3)]
    # each log starts with the command it ran, as Kaldi's run.pl writes it
    assert all(p.read_text().startswith("# ") and "--part-of" in p.read_text() for p in logs)
    # every ark in the ark dir is one the scp files use: nothing left from the jobs
    used = {line.split()[1].rpartition(":")[0] for line in (many / "feats.scp").open()}
    used |= {line.split()[1].rpartition(":")[0] for line in (many / "cmvn.scp").open()}
    assert {str(p) for p in (many / "data").glob("*.ark")} == used
    # more jobs than speakers: reduced, with a note, same result
    again = asr("features", str(many), "--nj", "9", "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "4 speaker(s): --nj 9 reduced to 4" in again.stderr
    assert_same_features(one, many)
    assert {str(p) for p in (many / "data").glob("*.ark")} != used  # the old arks are gone


def test_a_failed_job_names_itself_and_nothing_is_merged(two_copies: tuple[Path, Path]) -> None:
    _, many = two_copies
    assert asr("features", str(many), "--no-progress").returncode == 0
    before = {name: (many / name).read_bytes() for name in ("feats.scp", "cmvn.scp")}
    arks_before = sorted((many / "data").glob("*.ark"))
    # every recording of the second part's speakers unreadable: that job fails
    for wav in [*(many / "wav").glob("spk_c-*.wav"), *(many / "wav").glob("spk_d-*.wav")]:
        wav.write_bytes(b"not audio")
    done = asr("features", str(many), "--nj", "2", "--no-progress")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1
    assert lines[-1] == (
        f"asr features: error: make_features: job 2 of 2 failed (exit status 1); see "
        f"{many / 'log' / 'make_features.2.log'}"
    )
    assert "no utterance gave features" in (many / "log" / "make_features.2.log").read_text()
    # the data dir still reads its old features, every one from an ark that exists
    assert {n: (many / n).read_bytes() for n in before} == before
    assert sorted((many / "data").glob("*.ark")) == arks_before
    assert len(read_scp(many / "feats.scp")) == 3 * len(SPEAKERS)


def test_decode_in_jobs_equals_one_job(tmp_path: Path, tiny_trained_model) -> None:
    model, _ = tiny_trained_model
    data = tmp_path / "test"
    write_synthetic(data, 24, seed=7)  # 3 speakers (utt2spk), 8 utterances each
    for options in ([], ["--beam-size", "4"]):
        one, many = tmp_path / f"one{len(options)}", tmp_path / f"many{len(options)}"
        assert (
            asr("decode", str(model), str(data), str(one), "--no-progress", *options).returncode
            == 0
        )
        done = asr(
            "decode", str(model), str(data), str(many), "--no-progress", "--nj", "3", *options
        )
        assert done.returncode == 0, done.stderr
        assert (one / "text").read_bytes() == (many / "text").read_bytes()
        assert sorted(p.name for p in (many / "log").iterdir()) == [
            "decode.1.log",
            "decode.2.log",
            "decode.3.log",
        ]


def test_launcher_specs_and_local_failures(tmp_path: Path) -> None:
    assert Launcher.parse("local").kind == "local"
    slurm = Launcher.parse("slurm --mem 4G --cpus 2 --gpus 1 --partition gpu --time 1:00:00")
    argv = slurm.command(["echo", "hi"], "job.1", tmp_path / "job.1.log")
    assert argv[0] == "srun" and argv[-2:] == ["echo", "hi"]
    for option in ("--mem=4G", "--cpus-per-task=2", "--gres=gpu:1", "--partition=gpu"):
        assert option in argv
    for spec, message in [
        ("pbs --mem 4G", "must start with local or slurm"),
        ("slurm --memory 4G", "unknown option"),
        ("local --max-jobs 0", "--max-jobs must be at least 1"),
        ("slurm --cpus two", "invalid int value"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Launcher.parse(spec)
    jobs = [
        [sys.executable, "-c", f"import sys; print('job {j}'); sys.exit({j % 2})"]
        for j in (1, 2, 3)
    ]
    with pytest.raises(
        JobError,
        match=r"^x: job 1 of 3 failed \(exit status 1\); see .*x\.1\.log \(2 of 3 jobs failed\)$",
    ):
        run_jobs(Launcher.parse("local --max-jobs 2"), "x", jobs, tmp_path / "log")
    assert (tmp_path / "log" / "x.2.log").read_text().splitlines()[1] == "job 2"
    # no Slurm tools on PATH: one line before anything is split or started
    data = make_audio_datadir(tmp_path / "x")
    env_path = tmp_path / "empty-bin"
    env_path.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "asr", "features", str(data), "--nj", "2", "--cmd", "slurm"],
        capture_output=True,
        text=True,
        env={"PATH": str(env_path)},
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "asr features: error: slurm launcher: srun not found (install Slurm's client tools, "
        "e.g. Debian's slurm-client, or use the local launcher)\n"
    )
    assert not (data / "split2").exists() and not (data / "log").exists()


def test_transcribe_a_data_dir_with_segments_in_jobs(tmp_path: Path) -> None:
    """asr transcribe DATA_DIR --data-dir: every utterance (a segment of a recording, here) by
    its id, the same text in 1 job and in 3 (tone words, so the text is known)."""
    package = make_package(tmp_path / "tones.pt")
    data = tmp_path / "data"
    data.mkdir()
    scp, segments, utt2spk, expected = [], [], [], {}
    for s, speaker in enumerate(SPEAKERS):
        # one recording per speaker: "lo hi" then, after a pause, "mid"
        parts = [("sil", 0.3), ("lo", 0.3), ("sil", 0.2), ("hi", 0.3), ("sil", 0.6)]
        parts += [("mid", 0.3), ("sil", 0.3)]
        wav = tmp_path / "wav" / f"{speaker}.wav"
        wav.parent.mkdir(exist_ok=True)
        sf.write(str(wav), signal(parts, seed=s), RATE)
        scp.append(f"{speaker} {wav}\n")
        for k, (start, end, words) in enumerate(((0.0, 1.4, "hi yo"), (1.5, 2.3, "ho"))):
            utt = f"{speaker}-{k}"
            segments.append(f"{utt} {speaker} {start} {end}\n")
            utt2spk.append(f"{utt} {speaker}\n")
            expected[utt] = words
    (data / "wav.scp").write_text("".join(scp))
    (data / "segments").write_text("".join(segments))
    (data / "utt2spk").write_text("".join(utt2spk))
    outputs = {}
    for nj in (1, 3):
        out = tmp_path / f"out{nj}"
        done = asr(
            "transcribe",
            str(package),
            "--data-dir",
            str(data),
            "--output-dir",
            str(out),
            "--nj",
            str(nj),
            "--format",
            "json",
            "--no-progress",
        )
        assert done.returncode == 0, done.stderr
        outputs[nj] = (out / "text").read_bytes()
        lines = (out / "text").read_text().splitlines()
        assert dict(line.split(" ", 1) for line in lines) == expected
        assert sorted(p.stem for p in out.glob("*.json")) == sorted(expected)
    assert outputs[1] == outputs[3]
    done = asr("transcribe", str(package), str(data), "--data-dir", "--no-progress")
    assert done.returncode == 1
    assert done.stderr.strip().endswith("--data-dir needs --output-dir (for OUTPUT_DIR/text)")
