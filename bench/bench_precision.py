"""Benchmark: a training step under bf16 autocast against the same step in fp32 (CPU).

Both are ``asr.training.step.TrainStep`` (what ``asr train`` runs per batch) on the same 4x320
BLSTM and batch, alternating, in one process; the ratio is fp32 time over bf16 time (above 1:
bf16 is faster). bf16 needs native CPU support (AVX-512 BF16 or AMX, through oneDNN); where it
is missing, ``asr train``'s ``precision: auto`` trains in fp32 and this prints so. Then
``--fallback`` measures what forcing bf16 would cost anyway: oneDNN off, PyTorch's generic
kernels, at a smaller shape (the generic bf16 LSTM is too slow for the full one).

    .venv/bin/python bench/bench_precision.py [--threads 2] [--repeats 3] [--fallback]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.precision import cpu_supports_bf16
from asr.training.step import TrainStep


def make_step(args: argparse.Namespace, dtype: torch.dtype | None) -> tuple[TrainStep, tuple]:
    torch.manual_seed(0)
    config = ModelConfig(
        input_dim=40,
        num_tokens=62,
        num_layers=args.layers,
        hidden_size=args.hidden,
        stack=3,
        skip=3,
    )
    model = AcousticModel(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    step = TrainStep(model, model, optimizer, torch.device("cpu"), 5.0, autocast_dtype=dtype)
    sub = torch.linspace(args.frames * 0.8, args.frames, args.batch).round().long().flip(0)
    feats = torch.randn(args.batch, int(sub.max()) * 3, 40)
    target_lengths = sub // 4
    targets = torch.randint(1, 62, (int(target_lengths.sum()),))
    return step, (feats, sub * 3, targets, target_lengths)


def compare(args: argparse.Namespace) -> None:
    fp32, batch = make_step(args, None)
    bf16, _ = make_step(args, torch.bfloat16)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for step in (fp32, bf16):
        step(*batch)  # warm-up: allocator, oneDNN primitives
    for _ in range(args.repeats):
        for name, step in (("fp32", fp32), ("bf16", bf16)):
            start = time.perf_counter()
            result = step(*batch)
            times[name].append(time.perf_counter() - start)
            if result.loss is None:
                raise SystemExit(f"{name} step skipped: non-finite {result.skipped}")
    frames = args.batch * args.frames
    for name, values in times.items():
        best = min(values)
        print(f"{name}: {best:.3f} s/step (best of {args.repeats})  {frames / best:8.0f} frames/s")
    ratio = min(times["fp32"]) / min(times["bf16"])
    median = statistics.median(a / b for a, b in zip(times["fp32"], times["bf16"], strict=True))
    print(f"ratio bf16 / fp32 frames per second: {ratio:.3f} (median of pairs {median:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=300, help="longest subsampled length")
    parser.add_argument("--fallback", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}; {args.layers}x{args.hidden} BLSTM, stack 3 / skip 3")
    if cpu_supports_bf16():
        print(f"batch {args.batch} x {args.frames} subsampled frames")
        compare(args)
        return
    print("bf16 autocast: no native bf16 on this CPU; asr train's precision auto uses fp32")
    if args.fallback:
        torch.backends.mkldnn.enabled = False
        args.layers, args.hidden, args.batch, args.frames = 2, 128, 8, 100
        print(
            f"forced fallback (oneDNN off): {args.layers}x{args.hidden} BLSTM, "
            f"batch {args.batch} x {args.frames} subsampled frames"
        )
        compare(args)


if __name__ == "__main__":
    main()
