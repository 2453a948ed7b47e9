"""Benchmark: peak memory of ``asr train`` at 1 h and 10 h of features, and the data loader's
frames/s against what the training step consumes.

Memory (targets: streamed, the 10 h run's peak within 10% of the 1 h run's). Random 80-dim
features (seeded) are written as Kaldi data dirs (feats.ark/scp, utt2num_frames, per-speaker
cmvn.scp, text of 50 words, utt2spk) of 360,000 and 3,600,000 frames (1 h and 10 h at 10 ms;
float32 1.15 GB) plus a 0.1 h dev dir, under ``--work-dir`` (default: a temp dir, deleted
afterwards). ``asr train`` then runs in a child process on each with the same model and batches
(3x192 BLSTM, stack 3 / skip 3, batch_frames 8000, fp32, no SpecAugment, ``--threads``) and is
stopped after ``--steps`` optimisation steps by the project's fault point
(``ASR_FAULT_AT=batch:N:TERM``: SIGTERM, so that its DataLoader workers are shut down and
waited for). For each run: the training process's peak RSS (``ru_maxrss`` from ``os.wait4``:
the largest of the process and the descendants it waited for, not their sum) and, sampled every
0.1 s, the peak of the summed PSS of the process and its workers (PSS shares the pages that
forked workers have in common with their parent between them, so the sum is what the tree
holds). Configurations: streamed from the ark (``cache_features: false``) with 0 and 2 workers,
and ``cache_features: auto`` at its default limit (2000 MB: both sizes are cached) for
contrast; the ratio 10 h / 1 h of each.

Throughput (target: the loader at least 5x the step). In this process, the 10 h training set
streamed from the ark (``asr.training.setup.load_training_data``, ``cache_features: false``), its
batches built as the trainer builds them, read through the trainer's own loader
(``asr.training.trainer.batch_loader``) with 0, 1 and 2 workers: frames/s over ``--batches``
batches, worker start-up included. Against it, ``TrainStep`` (the same model, fp32,
``--threads``) on batches from the same list: frames/s consumed. Frames are real input frames
(10 ms), the same count on both sides. The ark is in the page cache after being written: this
measures reading and normalizing, not a cold disk.

    .venv/bin/python bench/bench_train_rss.py [--work-dir DIR] [--steps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import kaldiio
import numpy as np
import torch
import yaml

from asr.features.dataset import make_batches
from asr.fileio import FAULT_ENV
from asr.nn.model import AcousticModel, ModelConfig
from asr.training.config import TrainConfig
from asr.training.setup import load_training_data
from asr.training.step import TrainStep
from asr.training.trainer import batch_loader

REPO_ROOT = Path(__file__).resolve().parent.parent
DIM = 80
FRAMES_PER_HOUR = 360_000
VOCAB = [f"w{i:02d}" for i in range(50)]
MODEL = {"num_layers": 3, "hidden_size": 192, "stack": 3, "skip": 3}
TRAINING = {
    "batch_frames": 8000,
    "precision": "fp32",
    "max_epochs": 1,
    "plateau_patience": 0,
    "tensorboard": False,
}
UTTS_PER_SPEAKER = 20


def write_datadir(path: Path, frames: int, seed: int) -> int:
    """A data dir as ``asr features`` leaves it, of ``frames`` random frames in utterances of
    5-15 s; returns the number of utterances. Written one utterance at a time."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    lengths: list[int] = []
    while frames - sum(lengths) > 1500:
        lengths.append(int(rng.integers(500, 1501)))
    lengths.append(frames - sum(lengths))
    if lengths[-1] < 300 and len(lengths) > 1:  # too short for its words: join the previous
        lengths[-2] += lengths.pop()
    stats: dict[str, np.ndarray] = {}
    text, utt2spk, num_frames = [], [], []
    spec = f"ark,scp:{path / 'feats.ark'},{path / 'feats.scp'}"
    with kaldiio.WriteHelper(spec) as writer:
        for i, n in enumerate(lengths):
            spk = f"spk{i // UTTS_PER_SPEAKER:04d}"
            utt = f"{spk}-utt{i:06d}"
            mat = rng.standard_normal((n, DIM), dtype=np.float32) + rng.standard_normal(DIM)
            writer(utt, mat.astype(np.float32))
            s = stats.setdefault(spk, np.zeros((2, DIM + 1)))
            s[0, :DIM] += mat.sum(0, dtype=np.float64)
            s[1, :DIM] += np.square(mat, dtype=np.float64).sum(0)
            s[0, DIM] += n
            words = rng.choice(VOCAB, size=n // 50)
            text.append(f"{utt} {' '.join(words)}\n")
            utt2spk.append(f"{utt} {spk}\n")
            num_frames.append(f"{utt} {n}\n")
    kaldiio.save_ark(str(path / "cmvn.ark"), stats, scp=str(path / "cmvn.scp"))
    (path / "text").write_text("".join(text), encoding="utf-8")
    (path / "utt2spk").write_text("".join(utt2spk), encoding="utf-8")
    (path / "utt2num_frames").write_text("".join(num_frames), encoding="utf-8")
    config = {"kind": "fbank", "options": {"num_mel_bins": DIM}, "cmvn": "speaker"}
    (path / "feats.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return len(lengths)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``/proc/PID/task/*/children``)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as handle:
                    todo.extend(int(c) for c in handle.read().split())
        except OSError:
            continue  # it ended meanwhile
    return found


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass  # ended meanwhile
    return 0


def train_peak(
    conf: Path, train_dir: Path, dev_dir: Path, exp: Path, steps: int, threads: int
) -> dict[str, float | int | str]:
    """Run ``asr train`` until ``steps`` steps are done; its peak memory (GB) and process count."""
    cmd = [sys.executable, "-m", "asr", "train", "--config", str(conf)]
    cmd += ["--train-dir", str(train_dir), "--dev-dir", str(dev_dir), "--exp-dir", str(exp)]
    cmd += ["--threads", str(threads), "--no-progress", "--seed", "1"]
    env = os.environ | {FAULT_ENV: f"batch:{steps}:TERM", "OMP_NUM_THREADS": str(threads)}
    log = exp.with_suffix(".log")
    exp.parent.mkdir(parents=True, exist_ok=True)
    peak = {"pss": 0, "procs": 0}
    with open(log, "w") as out:
        child = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=out)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.1):
                pids = _tree(child.pid)
                peak["pss"] = max(peak["pss"], sum(_pss_kb(p) for p in pids))
                peak["procs"] = max(peak["procs"], len(pids))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        start = time.monotonic()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    text = log.read_text()
    # 143: stopped by the fault point's SIGTERM, as asked
    if child.returncode not in (143, -signal.SIGTERM):
        raise SystemExit(f"asr train exited {child.returncode}:\n{text[-3000:]}")
    note = next((line for line in text.splitlines() if "features (normalized" in line), "")
    return {
        "maxrss": usage.ru_maxrss / 1e6,  # kB -> GB
        "pss": peak["pss"] / 1e6,
        "procs": peak["procs"],
        "seconds": time.monotonic() - start,
        "note": note.split(": ", 1)[-1],
    }


def memory(work: Path, dirs: dict[str, Path], dev: Path, steps: int, threads: int) -> None:
    runs = [
        ("streamed, 0 workers", {"cache_features": False, "num_workers": 0}),
        ("streamed, 2 workers", {"cache_features": False, "num_workers": 2}),
        ("auto (default limit), 0 workers", {"cache_features": "auto", "num_workers": 0}),
    ]
    print(
        f"\npeak memory of asr train, {steps} steps: 3x192 BLSTM, stack 3 / skip 3, "
        f"batch_frames 8000, fp32, {threads} threads"
    )
    print(f"{'configuration':34s} {'data':>5s} {'peak RSS':>9s} {'peak PSS':>9s}  procs  time")
    for name, options in runs:
        conf = work / f"train-{len(options)}-{options['num_workers']}-{options['cache_features']}"
        conf = conf.with_suffix(".yaml")
        conf.write_text(yaml.safe_dump({"model": MODEL, "training": {**TRAINING, **options}}))
        got = {}
        for size, train_dir in dirs.items():
            exp = work / "exp" / f"{conf.stem}-{size}"
            got[size] = train_peak(conf, train_dir, dev, exp, steps, threads)
            shutil.rmtree(exp, ignore_errors=True)
            g = got[size]
            print(
                f"{name:34s} {size:>5s} {g['maxrss']:7.3f} GB {g['pss']:7.3f} GB  "
                f"{g['procs']:5d}  {g['seconds']:.0f} s"
            )
            print(f"{'':34s}   ({g['note']})")
        small, large = got[next(iter(dirs))], got[list(dirs)[-1]]
        rss, pss = large["maxrss"] / small["maxrss"], large["pss"] / small["pss"]
        what = f"ratio {list(dirs)[-1]} / {next(iter(dirs))}"
        print(f"{name:34s} {what}: peak RSS {rss:.3f}, peak PSS {pss:.3f}")


def throughput(train_dir: Path, dev_dir: Path, batches: int, steps: int, threads: int) -> None:
    torch.set_num_threads(threads)
    cfg = TrainConfig.from_dict({**TRAINING, "cache_features": False})
    data = load_training_data(cfg, train_dir, dev_dir)
    examples = {e.utt_id: e for e in data.train_examples}
    order = make_batches(
        {u: e.num_frames for u, e in examples.items()}, cfg.batch_frames, 0, shuffle_seed=1
    )
    numbered = [(n, [examples[u] for u in group]) for n, group in enumerate(order[:batches])]
    frames = sum(e.num_frames for _, batch in numbered for e in batch)
    print(
        f"\nloader against step: {len(numbered)} batches of {train_dir.name} "
        f"({frames} frames, batch_frames {cfg.batch_frames}), streamed from the ark"
    )
    rates = {}
    for workers in (0, 1, 2):
        start = time.perf_counter()
        for _ in batch_loader(data.train_set, numbered, workers):
            pass
        rates[workers] = frames / (time.perf_counter() - start)
        print(f"loader, {workers} worker(s): {rates[workers]:10.0f} frames/s")
    assert not data.train_set._cache  # streamed: nothing kept

    config = ModelConfig(input_dim=data.train_set.feature_dim, num_tokens=len(data.tokens), **MODEL)
    torch.manual_seed(0)
    model = AcousticModel(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = TrainStep(model, model, optimizer, torch.device("cpu"), grad_clip=5.0)
    loaded = list(batch_loader(data.train_set, numbered[: steps + 1], 0))
    step(*loaded[0][1])  # warm-up: allocator, oneDNN primitives
    step_frames, start = 0, time.perf_counter()
    for _, (feats, lengths, targets, target_lengths) in loaded[1:]:
        step(feats, lengths, targets, target_lengths)
        step_frames += int(lengths.sum())
    step_rate = step_frames / (time.perf_counter() - start)
    print(
        f"TrainStep ({steps} steps, fp32, {threads} threads): {step_rate:10.0f} frames/s consumed"
    )
    for workers, rate in rates.items():
        verdict = "meets" if rate >= 5 * step_rate else "BELOW"
        print(f"ratio loader / step, {workers} worker(s): {rate / step_rate:6.1f}x ({verdict} 5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=60, help="batches the loader reads")
    parser.add_argument("--step-batches", type=int, default=5, help="batches the step times")
    parser.add_argument("--hours", type=float, nargs=2, default=(1.0, 10.0))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_train_rss.", dir=args.work_dir))
    try:
        dirs = {}
        for hours in args.hours:
            name = f"{hours:g}h"
            start = time.monotonic()
            frames = round(hours * FRAMES_PER_HOUR)
            utts = write_datadir(work / name, frames, seed=int(hours * 10))
            size = (work / name / "feats.ark").stat().st_size / 1e9
            print(
                f"{name}: {frames} frames x {DIM} dims, {utts} utterances, ark {size:.2f} GB "
                f"(written in {time.monotonic() - start:.0f} s)"
            )
            dirs[name] = work / name
        dev = work / "dev"
        write_datadir(dev, FRAMES_PER_HOUR // 10, seed=7)
        memory(work, dirs, dev, args.steps, args.threads)
        big = dirs[f"{max(args.hours):g}h"]
        throughput(big, dev, args.batches, args.step_batches, args.threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
