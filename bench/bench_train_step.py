"""Benchmark: one training step of the acoustic model against a bare nn.LSTM forward+backward.

Our step is ``asr.training.step.TrainStep``, exactly what ``asr train`` runs per batch: SpecAugment
(on by default: 2 frequency masks of up to 8 bins, 2 time masks of up to 20 frames, time warp
5; ``--no-spec-augment`` turns it off), AcousticModel forward (frame stacking, exact
per-utterance bidirectional layers, CTC output) under the precision ``asr train`` picks (auto:
fp32 on a CPU without native bf16), CTC loss, NaN guards, backward, gradient clipping and an
Adam step. Reference: a bare
``nn.LSTM(bidirectional=True, num_layers=N)`` on the already stacked, zero-padded batch of the same
shape, forward plus backward of the summed output (no loss, no optimizer). Both are timed in the
same process, alternating; the best run of each and the median of per-repeat ratios are reported
(the machine may be shared). Frames are the subsampled frames the LSTMs see (the same count for
both), so the ratio is frames/s ours over reference.

    .venv/bin/python bench/bench_train_step.py [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.precision import precision_name, resolve_precision
from asr.nn.spec_augment import SpecAugmentConfig
from asr.training.step import TrainStep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=320)
    parser.add_argument("--feat-dim", type=int, default=40)
    parser.add_argument("--stack", type=int, default=3)
    parser.add_argument("--skip", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=300, help="longest subsampled length")
    parser.add_argument("--tokens", type=int, default=62)
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--precision", default="auto", help="as asr train's (default auto)")
    parser.add_argument("--no-spec-augment", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    # lengths spread over 80-100% of the longest, as a length-sorted batch has
    sub_lengths = torch.linspace(args.frames * 0.8, args.frames, args.batch).round().long()
    sub_lengths = sub_lengths.flip(0)
    in_lengths = sub_lengths * args.skip
    feats = torch.randn(args.batch, int(in_lengths.max()), args.feat_dim)
    targets = torch.randint(1, args.tokens, (args.batch, args.frames // 4))
    target_lengths = (sub_lengths // 4).clamp(max=targets.shape[1])

    config = ModelConfig(
        input_dim=args.feat_dim,
        num_tokens=args.tokens,
        cell=args.cell,
        num_layers=args.layers,
        hidden_size=args.hidden,
        stack=args.stack,
        skip=args.skip,
    )
    model = AcousticModel(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    device = torch.device("cpu")
    dtype = resolve_precision(args.precision, device)
    spec = None
    if not args.no_spec_augment:
        spec = SpecAugmentConfig(
            freq_masks=2, freq_width=8, time_masks=2, time_width=20, time_warp=5
        )
    train_step = TrainStep(
        model, model, optimizer, device, grad_clip=5.0, autocast_dtype=dtype, spec_augment=spec
    )
    flat_targets = torch.cat([targets[i, : target_lengths[i]] for i in range(args.batch)])
    seeds = iter(range(10**6))

    reference = nn.LSTM(
        args.feat_dim * args.stack, args.hidden, num_layers=args.layers, bidirectional=True
    )
    ref_input = torch.randn(args.frames, args.batch, args.feat_dim * args.stack)

    def our_step() -> None:
        result = train_step(feats, in_lengths, flat_targets, target_lengths, next(seeds))
        if result.loss is None:
            raise SystemExit(f"benchmark batch skipped: non-finite {result.skipped}")

    def reference_step() -> None:
        reference.zero_grad(set_to_none=True)
        out, _ = reference(ref_input)
        out.sum().backward()

    def network_only() -> None:
        # our layers without CTC, clipping and Adam: separates their cost from the layers'
        model.zero_grad(set_to_none=True)
        log_probs, _ = model(feats, in_lengths)
        log_probs.sum().backward()

    frames = args.batch * args.frames  # LSTM frames per step (padded), same for both
    our_step()  # warm-up: allocator, oneDNN primitives
    reference_step()
    ours, refs, nets = [], [], []
    cpu = {"ours": 0.0, "reference": 0.0}
    for _ in range(args.repeats):
        for step, times, name in (
            (reference_step, refs, "reference"),
            (our_step, ours, "ours"),
            (network_only, nets, ""),
        ):
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            times.append(time.perf_counter() - start)
            if name:
                cpu[name] += time.process_time() - start_cpu
    # the machine may be shared: the fastest run is the least disturbed one, and adjacent
    # runs see similar load, so also report the median of per-repeat ratios
    our_time, ref_time, net_time = min(ours), min(refs), min(nets)
    pair_ratio = statistics.median(r / o for r, o in zip(refs, ours, strict=True))
    print(
        f"shape: {args.layers}x{args.hidden} {args.cell} bidirectional, input {args.feat_dim}"
        f" x stack {args.stack} / skip {args.skip} = {args.feat_dim * args.stack} dims,"
        f" batch {args.batch} utterances of {int(sub_lengths.min())}-{args.frames}"
        f" subsampled frames, {args.tokens} tokens, threads {args.threads},"
        f" best of {args.repeats}; precision {precision_name(dtype)},"
        f" SpecAugment {'on' if spec else 'off'}"
    )
    print(f"reference nn.LSTM fwd+bwd: {ref_time:.3f} s/step  {frames / ref_time:9.0f} frames/s")
    print(f"asr train step:            {our_time:.3f} s/step  {frames / our_time:9.0f} frames/s")
    print(f"  of which model fwd+bwd:  {net_time:.3f} s/step  {frames / net_time:9.0f} frames/s")
    print(f"all reference steps (s): {' '.join(f'{t:.3f}' for t in refs)}")
    print(f"all our steps (s):       {' '.join(f'{t:.3f}' for t in ours)}")
    print(f"ratio (ours / reference frames per second), best runs: {ref_time / our_time:.3f}")
    print(f"ratio, median of per-repeat ratios: {pair_ratio:.3f}")
    # CPU seconds are less disturbed by other processes than wall time (exact at 1 thread)
    print(f"ratio of process CPU time (reference / ours): {cpu['reference'] / cpu['ours']:.3f}")


if __name__ == "__main__":
    main()
