"""Benchmark: `asr transcribe` real-time factor on CPU, per stage, and peak memory for one hour.

The model is a 4x320 BLSTM with stack 3 / skip 3 (the synth recipe's shape), untrained (speed
does not depend on the weights), packaged in a temporary directory with the synth recipe's
feature config (40 log-mel bins + deltas + delta-deltas, per-recording CMVN). Inputs are
generated: ``--files`` recordings of 2-10 s of espeak-ng speech (grammar prompts, several
voices, resampled to 16 kHz WAV), and a one-hour FLAC of synthesized sentences separated by
pauses of 0.3-1.5 s. Everything runs with ``--threads`` torch threads (2 by default), greedy, in
fp32 (bf16, where the CPU has it, is bench/bench_transcribe_decoder.py's).

Measured, in this process:
- end to end: ``Recognizer.transcribe_many`` over the files (reading, features, network, greedy
  spans and timed words: everything but writing output files), and ``asr transcribe DIR`` through
  ``asr.cli.main`` (adds finding the files and printing the text); RTF = seconds / audio seconds;
- per stage, calling the library's steps in the order the transcriber does: read
  (``load_audio`` at the model's rate), features (``extract_features`` + per-recording CMVN and
  deltas), network (padded length-sorted batches of at most ``--batch-seconds`` through the
  model under ``inference_mode``), decode (``greedy_spans`` + ``timed_units``); RTF of each, and
  their sum against the end-to-end figure (the difference is the transcriber's own overhead).
Each figure is the median of ``--repeats`` runs. Then the one-hour FLAC through
``Recognizer.transcribe`` (the long-audio window path) in a fresh subprocess: wall time, RTF, and
the peak resident memory (``VmHWM`` of /proc/self/status) against the resident size after
loading the model.

    .venv/bin/python bench/bench_transcribe.py [--threads 2] [--files 100] [--repeats 3]
        [--batch-seconds 60] [--work-dir DIR] [--no-long] [--long-minutes 60]

``--work-dir`` keeps the generated audio (and reuses it on the next run); by default it goes in
a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

RATE = 16000
VOICES = ("en-us", "en-gb", "en-029", "en-gb-scotland", "en-gb-x-rp", "en-us+f2", "en-gb+f4")
FEATURE_CONFIG = {
    "kind": "fbank",
    "sample_rate": RATE,
    "options": {"num_mel_bins": 40, "frame_length": 25.0, "frame_shift": 10.0, "dither": 0.0},
    "delta_order": 2,
    "cmvn": "speaker",
    "norm_vars": True,
}
CHARS = ["<blk>", "'", "<space>", *"abcdefghijklmnopqrstuvwxyz"]


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def espeak(text: str, voice: str, speed: int, path: Path) -> np.ndarray:
    """Synthesize ``text`` with espeak-ng and return it as float32 at 16 kHz."""
    from asr.data.audio import resample

    raw = path.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    wave, rate = sf.read(str(raw), dtype="float32")
    raw.unlink()
    return resample(wave, rate, RATE)


def make_files(directory: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` WAV files of 2-10 s of speech (reused when already there)."""
    from asr.corpora.synthetic.prompts import generate_prompts

    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"utt{n:04d}.wav" for n in range(count)]
    if all(p.is_file() for p in paths):
        return paths
    rng = random.Random(seed)
    prompts = generate_prompts(count * 3, seed)
    jobs = []
    for n, path in enumerate(paths):
        # one, two or three prompts per file, so lengths spread over 2-10 s
        text = ". ".join(prompts[3 * n : 3 * n + rng.choice((1, 1, 2, 2, 3))])
        jobs.append((text, rng.choice(VOICES), rng.randint(150, 190), path))

    def work(job: tuple[str, str, int, Path]) -> None:
        text, voice, speed, path = job
        wave = espeak(text, voice, speed, path)
        if len(wave) < 2 * RATE:  # pad short ones with silence to 2 s
            wave = np.concatenate([wave, np.zeros(2 * RATE - len(wave), np.float32)])
        sf.write(str(path), wave[: 10 * RATE], RATE, subtype="PCM_16")

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(work, jobs))
    return paths


def make_long(path: Path, sources: list[Path], minutes: float, seed: int = 1) -> Path:
    """A FLAC of ``minutes`` of the source files' speech with pauses, written block by block."""
    if path.is_file() and abs(sf.info(str(path)).duration - 60 * minutes) < 1:
        return path
    rng = np.random.default_rng(seed)
    target = int(60 * minutes * RATE)
    waves = [sf.read(str(p), dtype="float32")[0] for p in sources]
    written = 0
    partial = path.with_suffix(".partial.flac")
    with sf.SoundFile(str(partial), "w", RATE, 1, subtype="PCM_16", format="FLAC") as out:
        while written < target:
            wave = waves[int(rng.integers(len(waves)))]
            pause = rng.normal(0, 1e-3, int(rng.uniform(0.3, 1.5) * RATE)).astype(np.float32)
            block = np.concatenate([wave, pause])[: target - written]
            out.write(block)
            written += len(block)
    partial.replace(path)
    return path


def make_package(path: Path, layers: int, hidden: int) -> Path:
    """An untrained 4x320 BLSTM (stack 3 / skip 3) char model package with the synth features."""
    from asr.nn.model import AcousticModel, ModelConfig
    from asr.nn.package import ModelPackage, save_package

    torch.manual_seed(0)
    config = ModelConfig(
        input_dim=40 * 3,
        num_tokens=len(CHARS),
        num_layers=layers,
        hidden_size=hidden,
        stack=3,
        skip=3,
    )
    model = AcousticModel(config)
    save_package(
        ModelPackage(
            state_dict=model.state_dict(),
            model_config=config.to_dict(),
            tokens=CHARS,
            feature_config=FEATURE_CONFIG,
            extra={"unit": "char"},
        ),
        path,
    )
    return path


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def stages(recognizer, paths: list[Path], batch_seconds: float) -> dict[str, float]:
    """Seconds per stage, calling the library's steps in the order the transcriber does."""
    import dataclasses

    from asr.data.audio import load_audio
    from asr.decoding.timing import greedy_spans, timed_units
    from asr.features.cmvn import compute_cmvn_stats
    from asr.features.config import extract_features, normalize_features

    config = recognizer.feature_config
    rate = recognizer.sample_rate
    # per-recording statistics, applied the way "speaker" CMVN applies given statistics
    per_recording = dataclasses.replace(config, cmvn="speaker")
    seconds = dict.fromkeys(("read", "features", "network", "decode"), 0.0)

    begin = time.perf_counter()
    waves = [load_audio(p, rate)[0] for p in paths]
    seconds["read"] = time.perf_counter() - begin

    # longest first, batches of at most batch_seconds of padded audio (as transcribe_many)
    waves.sort(key=len, reverse=True)
    batches: list[list[np.ndarray]] = [[]]
    for wave in waves:
        batch = batches[-1]
        if batch and len(batch[0]) * (len(batch) + 1) > batch_seconds * rate:
            batches.append(batch := [])
        batch.append(wave)

    for batch in batches:
        begin = time.perf_counter()
        feats = []
        for wave in batch:
            raw = extract_features(wave, rate, config)
            feats.append(normalize_features(raw, per_recording, compute_cmvn_stats(raw)))
        middle = time.perf_counter()
        lengths = torch.tensor([f.shape[0] for f in feats])
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        with torch.inference_mode():
            log_probs, out_lengths = recognizer.model(padded, lengths)
        network = time.perf_counter()
        for b in range(len(batch)):
            spans = greedy_spans(log_probs[b], int(out_lengths[b]))
            timed_units(spans, recognizer.tokens, recognizer.frame_seconds)
        end = time.perf_counter()
        seconds["features"] += middle - begin
        seconds["network"] += network - middle
        seconds["decode"] += end - network
    return seconds


def end_to_end(recognizer, paths: list[Path], batch_seconds: float) -> float:
    begin = time.perf_counter()
    for item, result in recognizer.transcribe_many(paths, batch_seconds=batch_seconds):
        if not hasattr(result, "text"):
            raise SystemExit(f"{item}: {result}")
    return time.perf_counter() - begin


def cli(package: Path, directory: Path, threads: int, batch_seconds: float) -> float:
    from asr.cli import main

    argv = ["transcribe", str(package), str(directory), "--threads", str(threads)]
    argv += ["--precision", "fp32"]  # as the stage rows, which run the model in fp32
    argv += ["--batch-seconds", str(batch_seconds), "--no-progress"]
    out, err = io.StringIO(), io.StringIO()
    begin = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    seconds = time.perf_counter() - begin
    if code != 0:
        raise SystemExit(f"asr transcribe failed ({code}): {err.getvalue().strip()}")
    return seconds


LONG_CHILD = """
import json, sys, time, torch
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
import asr
recognizer = asr.load_model(sys.argv[1], threads=int(sys.argv[3]), precision="fp32")
loaded = rss("VmRSS:")
begin = time.perf_counter()
transcript = recognizer.transcribe(sys.argv[2])
seconds = time.perf_counter() - begin
print(json.dumps({"seconds": seconds, "loaded_mb": loaded, "peak_mb": rss("VmHWM:"),
                  "duration": transcript.duration, "words": len(transcript.words)}))
"""


def long_audio(package: Path, flac: Path, threads: int) -> dict:
    """Transcribe the long FLAC in a fresh process; its wall time and peak resident memory."""
    done = subprocess.run(
        [sys.executable, "-c", LONG_CHILD, str(package), str(flac), str(threads)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"long-audio run failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def work_dir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    temp = Path(tempfile.mkdtemp(prefix="bench-transcribe-"))
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-seconds", type=float, default=None, help="default: the API's")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=320)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--long", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--long-minutes", type=float, default=60.0)
    args = parser.parse_args()

    import asr
    from asr.transcribe.recognizer import DEFAULT_BATCH_SECONDS

    batch_seconds = args.batch_seconds or DEFAULT_BATCH_SECONDS
    torch.set_num_threads(args.threads)
    with work_dir(args.work_dir) as root:
        begin = time.perf_counter()
        paths = make_files(root / "files", args.files)
        audio = sum(sf.info(str(p)).duration for p in paths)
        package = make_package(root / "model.pt", args.layers, args.hidden)
        print(
            f"{args.layers}x{args.hidden} BLSTM, stack 3 / skip 3, untrained char model; "
            f"{len(paths)} files, {audio:.0f} s of audio ({audio / len(paths):.1f} s each on "
            f"average); {args.threads} threads; batches of <= {batch_seconds:g} s; greedy; "
            f"median of {args.repeats} runs, load average {os.getloadavg()[0]:.1f} "
            f"(inputs ready in {time.perf_counter() - begin:.0f} s)"
        )
        recognizer = asr.load_model(package, threads=args.threads, precision="fp32")
        end_to_end(recognizer, paths[:4], batch_seconds)  # warm-up
        runs: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            for name, seconds in stages(recognizer, paths, batch_seconds).items():
                runs.setdefault(name, []).append(seconds)
            runs.setdefault("transcribe_many", []).append(
                end_to_end(recognizer, paths, batch_seconds)
            )
            runs.setdefault("asr transcribe (CLI)", []).append(
                cli(package, root / "files", args.threads, batch_seconds)
            )
        median = {name: statistics.median(times) for name, times in runs.items()}
        best = {name: min(times) for name, times in runs.items()}
        stage_sum = sum(median[n] for n in ("read", "features", "network", "decode"))
        for name in ("read", "features", "network", "decode"):
            print(
                f"  {name:9s} RTF {median[name] / audio:.5f} ({median[name]:6.2f} s, "
                f"{100 * median[name] / stage_sum:4.1f}% of the stages; best {best[name]:.2f} s)"
            )
        print(f"  stages together      RTF {stage_sum / audio:.5f} ({stage_sum:.2f} s)")
        for name in ("transcribe_many", "asr transcribe (CLI)"):
            print(
                f"  {name:20s} RTF {median[name] / audio:.5f} ({median[name]:.2f} s; runs "
                f"{' '.join(f'{t:.2f}' for t in runs[name])}); stages / this "
                f"{stage_sum / median[name]:.2f}"
            )
        if args.long:
            flac = make_long(root / "long.flac", paths, args.long_minutes)
            result = long_audio(package, flac, args.threads)
            print(
                f"one {result['duration'] / 60:.0f}-minute FLAC through the long-audio path, "
                f"fresh process: {result['seconds']:.1f} s, RTF "
                f"{result['seconds'] / result['duration']:.5f}; peak RSS (VmHWM) "
                f"{result['peak_mb']:.0f} MB, {result['loaded_mb']:.0f} MB after loading the "
                f"model; {result['words']} words"
            )


if __name__ == "__main__":
    main()
