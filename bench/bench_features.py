"""80-bin fbank throughput of asr.features against kaldi-native-fbank on 10 minutes of speech.

Both run in this process on the same waveform (TIMIT sample utterances concatenated to 10 min at
16 kHz, int16 scale, dither 0). kaldi-native-fbank is single-threaded C++ and gets the whole
waveform in one accept_waveform call; the conversion to a Python list it needs is done before the
clock starts, and reading its frames back out is not timed either. asr.features is timed from a
float32 tensor to the finished (frames, 80) tensor, with torch limited to 1 thread (the fair
comparison) and then 2 threads. Each measurement alternates the two tools ``--repeats`` times
and reports the median, so a machine shared with other jobs hurts both sides alike.

    .venv/bin/python bench/bench_features.py [--repeats 7] [--minutes 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from asr.features.kaldi import fbank  # noqa: E402

SHARED = Path(os.environ.get("ASR_SHARED", REPO.parent / "shared"))
SAMPLE_RATE = 16000


def speech(minutes: float) -> np.ndarray:
    """TIMIT sample utterances (16 kHz) end to end, repeated up to ``minutes``."""
    paths = sorted((SHARED / "corpora" / "timit-sample" / "TIMIT").glob("*/*/*/*.WAV"))
    if not paths:
        sys.exit(f"no TIMIT sample under {SHARED} (set ASR_SHARED)")
    pieces = []
    for path in paths:
        samples, rate = sf.read(str(path), dtype="int16")
        assert rate == SAMPLE_RATE, path
        pieces.append(samples.astype(np.float32))
    audio = np.concatenate(pieces)
    total = int(minutes * 60 * SAMPLE_RATE)
    return np.tile(audio, total // len(audio) + 1)[:total]


def time_knf(samples: list[float]) -> tuple[float, int]:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80
    start = time.perf_counter()
    computer = knf.OnlineFbank(opts)
    computer.accept_waveform(SAMPLE_RATE, samples)
    computer.input_finished()
    elapsed = time.perf_counter() - start
    return elapsed, computer.num_frames_ready


def time_ours(wave: torch.Tensor) -> tuple[float, int]:
    start = time.perf_counter()
    feats = fbank(wave, SAMPLE_RATE, num_mel_bins=80, dither=0.0)
    if feats.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, feats.shape[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()

    audio = speech(args.minutes)
    as_list = audio.tolist()
    wave = torch.from_numpy(audio)
    audio_seconds = len(audio) / SAMPLE_RATE
    print(f"audio: {audio_seconds / 60:.1f} min at {SAMPLE_RATE} Hz; 80-bin fbank, dither 0")
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs visible, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )

    fbank(wave[:SAMPLE_RATE], SAMPLE_RATE, num_mel_bins=80, dither=0.0)  # build caches
    for threads in (1, 2):
        torch.set_num_threads(threads)
        knf_times, our_times = [], []
        for _ in range(args.repeats):
            t, knf_frames = time_knf(as_list)
            knf_times.append(t)
            t, our_frames = time_ours(wave)
            our_times.append(t)
        assert knf_frames == our_frames, (knf_frames, our_frames)
        knf_median = statistics.median(knf_times)
        our_median = statistics.median(our_times)
        print(
            f"torch threads={threads}: kaldi-native-fbank (1 thread) {knf_median:.3f} s "
            f"({audio_seconds / knf_median:.0f}x real time), asr.features {our_median:.3f} s "
            f"({audio_seconds / our_median:.0f}x real time); ratio {knf_median / our_median:.2f}x "
            f"[medians of {args.repeats}; ours min {min(our_times):.3f} max {max(our_times):.3f}, "
            f"knf min {min(knf_times):.3f} max {max(knf_times):.3f}]"
        )
    if torch.cuda.is_available():
        gpu = wave.cuda()
        time_ours(gpu)
        times = [time_ours(gpu)[0] for _ in range(args.repeats)]
        print(
            f"cuda ({torch.cuda.get_device_name()}): asr.features {statistics.median(times):.4f} s"
        )


if __name__ == "__main__":
    main()
