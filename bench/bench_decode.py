"""Benchmark: greedy decoding real-time factor of a 4x320 BLSTM on CPU, and a bare-LSTM reference.

RTF = (network forward + greedy decode time) / audio duration, for utterances of 3-10 s at 10 ms
frames (random features), sorted by length and batched, under ``torch.inference_mode``. Runs the
low-frame-rate model (stack 3 / skip 3) and the full-rate one (stack 1 / skip 1). The reference is
a bare ``nn.LSTM(bidirectional=True)`` forward over the same (stacked) padded batches, timed in the
same process; the ratio is reference time over ours (1.0 = no toolkit overhead). Each figure is
the median of ``--repeats`` runs, alternating ours and the reference.

    .venv/bin/python bench/bench_decode.py [--threads 2] [--feat-dim 120] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from asr.decode import greedy_decode
from asr.model import AcousticModel, ModelConfig, stack_frames

FRAME_SHIFT_S = 0.01


def run(args: argparse.Namespace, stack: int, skip: int, lengths: list[int]) -> None:
    config = ModelConfig(
        input_dim=args.feat_dim,
        num_tokens=args.tokens,
        num_layers=args.layers,
        hidden_size=args.hidden,
        stack=stack,
        skip=skip,
    )
    model = AcousticModel(config).eval()
    reference = nn.LSTM(
        args.feat_dim * stack, args.hidden, num_layers=args.layers, bidirectional=True
    ).eval()
    generator = torch.Generator().manual_seed(0)
    batches = []
    for start in range(0, len(lengths), args.batch):
        chunk = torch.tensor(lengths[start : start + args.batch])
        feats = torch.randn(len(chunk), int(chunk.max()), args.feat_dim, generator=generator)
        stacked, _ = stack_frames(feats, chunk, stack, skip)
        batches.append((feats, chunk, stacked.contiguous()))

    def ours() -> float:
        start = time.perf_counter()
        for feats, chunk, _ in batches:
            log_probs, out_lengths = model(feats, chunk)
            greedy_decode(log_probs, out_lengths)
        return time.perf_counter() - start

    def bare() -> float:
        start = time.perf_counter()
        for _, _, stacked in batches:
            reference(stacked)
        return time.perf_counter() - start

    with torch.inference_mode():
        model(*batches[0][:2])  # warm-up
        reference(batches[0][2])
        our_times, ref_times = [], []
        for _ in range(args.repeats):
            ref_times.append(bare())
            our_times.append(ours())
    audio = sum(lengths) * FRAME_SHIFT_S
    our_time, ref_time = statistics.median(our_times), statistics.median(ref_times)
    print(
        f"stack {stack} / skip {skip}: RTF {our_time / audio:.4f} "
        f"(forward + greedy {our_time:.2f} s for {audio:.0f} s of audio; "
        f"runs {' '.join(f'{t:.2f}' for t in our_times)})"
    )
    print(
        f"  reference bare nn.LSTM forward: RTF {ref_time / audio:.4f} ({ref_time:.2f} s); "
        f"ratio reference / ours {ref_time / our_time:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--utterances", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=320)
    parser.add_argument("--feat-dim", type=int, default=120, help="40 fbank + deltas by default")
    parser.add_argument("--tokens", type=int, default=62)
    parser.add_argument("--skip1", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(1)
    # 3-10 s utterances, sorted so each batch holds similar lengths (as decoding batches them)
    lengths = sorted(torch.randint(300, 1001, (args.utterances,), generator=generator).tolist())
    print(
        f"{args.layers}x{args.hidden} BLSTM, {args.feat_dim}-dim input, {args.utterances}"
        f" utterances of 3-10 s ({sum(lengths) * FRAME_SHIFT_S:.0f} s), batches of {args.batch},"
        f" {args.threads} threads, inference_mode, median of {args.repeats}"
    )
    run(args, 3, 3, lengths)
    if args.skip1:
        run(args, 1, 1, lengths)


if __name__ == "__main__":
    main()
