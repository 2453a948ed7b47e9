"""Benchmark: greedy decoding real-time factor of a 4x320 BLSTM on CPU, and a bare-LSTM reference.

RTF = (network forward + greedy decode time) / audio duration, for utterances of 3-10 s at 10 ms
frames (random features), sorted by length and batched, under ``torch.inference_mode``. Runs the
low-frame-rate model (stack 3 / skip 3) and the full-rate one (stack 1 / skip 1). The reference is
a bare ``nn.LSTM(bidirectional=True)`` forward over the same (stacked) padded batches, timed in the
same process; the ratio is reference time over ours (1.0 = no toolkit overhead). Each figure is
the median of ``--repeats`` runs, alternating ours and the reference.

Then CTC prefix beam search (``asr decode --beam-size N``) against greedy decoding of the same
log-probs, both timed alternately in this process without the forward pass: on the stack 3 model's
own output (untrained, so nearly uniform over the tokens: no label is pruned, the worst case) and
on synthetic CTC-like posteriors (random logits of scale 3 with the blank raised by 3, so most
frames are blank and a few labels compete), plus the 150-frame, 40-token case of issue 4.

    .venv/bin/python bench/bench_decode.py [--threads 2] [--feat-dim 120] [--repeats 3]
        [--beam-sizes 10 20] [--no-skip1] [--no-beam]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from asr.decoding.greedy import greedy_decode
from asr.decoding.prefix_beam import beam_search_batch
from asr.nn.model import AcousticModel, ModelConfig, stack_frames

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


def ctc_like(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Random log-posteriors shaped like a trained CTC model's: mostly blank, a few peaks."""
    logits = 3.0 * torch.randn(*shape, generator=generator)
    logits[..., 0] += 3.0
    return logits.log_softmax(-1)


def time_beam(
    name: str,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    beam_sizes: list[int],
    repeats: int,
    forward: tuple[float, float] | None = None,
) -> None:
    """Beam search against greedy decoding over the same (log_probs, lengths) batches.

    ``forward``: (seconds of the network forward that made the batches, seconds of audio), to
    print the real-time factor of decoding with each.
    """
    utterances = sum(len(lengths) for _, lengths in batches)
    frames = sum(int(lengths.sum()) for _, lengths in batches)

    def decode(beam: int) -> float:
        start = time.perf_counter()
        for log_probs, lengths in batches:
            if beam > 1:
                beam_search_batch(log_probs, lengths, beam)
            else:
                greedy_decode(log_probs, lengths)
        return time.perf_counter() - start

    greedy_times = []
    beam_times: dict[int, list[float]] = {beam: [] for beam in beam_sizes}
    for _ in range(repeats):
        greedy_times.append(decode(1))
        for beam in beam_sizes:
            beam_times[beam].append(decode(beam))
    greedy = statistics.median(greedy_times)
    print(
        f"{name}: {utterances} utterances, {frames / utterances:.0f} frames each on average; "
        f"greedy {1000 * greedy / utterances:.3f} ms/utt"
    )
    if forward:
        print(f"  RTF forward + greedy {(forward[0] + greedy) / forward[1]:.4f}")
    for beam in beam_sizes:
        ours = statistics.median(beam_times[beam])
        print(
            f"  beam {beam}: {1000 * ours / utterances:.2f} ms/utt ({utterances / ours:.0f} utt/s, "
            f"{1e6 * ours / frames:.0f} us/frame); beam / greedy {ours / greedy:.0f}x"
        )
        if forward:
            print(f"    RTF forward + beam {beam} {(forward[0] + ours) / forward[1]:.4f}")


def run_beam(args: argparse.Namespace, lengths: list[int]) -> None:
    config = ModelConfig(
        input_dim=args.feat_dim,
        num_tokens=args.tokens,
        num_layers=args.layers,
        hidden_size=args.hidden,
        stack=3,
        skip=3,
    )
    model = AcousticModel(config).eval()
    generator = torch.Generator().manual_seed(0)
    outputs, synthetic = [], []
    forward_seconds = 0.0
    with torch.inference_mode():
        model(torch.randn(2, 300, args.feat_dim), torch.tensor([300, 200]))  # warm-up
        for start in range(0, len(lengths), args.batch):
            chunk = torch.tensor(lengths[start : start + args.batch])
            feats = torch.randn(len(chunk), int(chunk.max()), args.feat_dim, generator=generator)
            begin = time.perf_counter()
            log_probs, out_lengths = model(feats, chunk)
            forward_seconds += time.perf_counter() - begin
            outputs.append((log_probs, out_lengths))
            synthetic.append((ctc_like(tuple(log_probs.shape), generator), out_lengths))
    issue = [
        (ctc_like((args.batch, 150, 40), generator), torch.full((args.batch,), 150))
        for _ in range(max(1, args.utterances // args.batch))
    ]
    forward = (forward_seconds, sum(lengths) * FRAME_SHIFT_S)  # one forward run, not a median
    name = "stack 3 model output (near-uniform)"
    time_beam(name, outputs, args.beam_sizes, args.repeats, forward)
    time_beam("CTC-like posteriors, same lengths", synthetic, args.beam_sizes, args.repeats)
    time_beam("CTC-like posteriors, 150 frames x 40 tokens", issue, args.beam_sizes, args.repeats)


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
    parser.add_argument("--beam", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--beam-sizes", type=int, nargs="+", default=[10, 20])
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
    if args.beam:
        run_beam(args, lengths)


if __name__ == "__main__":
    main()
