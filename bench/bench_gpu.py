"""Benchmark: the GPU path (issue 21, item 4), every part in one run, each within a time budget.

Sections (``--sections`` picks some; all by default), each printed with its elapsed time:

- ``impls``: ``model.rnn_impl`` per_direction (two cuDNN calls per layer on the padded batch)
  against packed (one fused bidirectional call per layer over ``pack_padded_sequence``) on the
  same weights: the largest log-prob and gradient difference on a padded batch of unequal
  lengths (fp32; on CUDA with TF32 off, as TF32 alone moves results by ~1e-3), and forward +
  CTC + backward time per batch in fp32 and bf16 autocast, beside a bare ``nn.LSTM`` on the
  padded batch (not exact) and on the packed batch (exact, with its own weight buffer). A 4x320
  BLSTM on 16 utterances of 800-1000 frames of 80-dim features, then 5x1024 if time is left.
- ``trainer``: training frames/s of ``asr.training.step.TrainStep`` (what ``asr train`` runs per
  batch: autocast, CTC, guards, clipping, Adam; features handed over on the CPU, pinned, as the
  DataLoader does; SpecAugment off) against a bare ``nn.LSTM(num_layers=4, bidirectional=True)``
  forward + backward + Adam step of the same shape, alternating; the ratio (target >= 0.9) in
  fp32 and bf16 for each rnn_impl.
- ``precision``: bf16 autocast against fp32, the same init and batches, stepped in turn: step
  time and the dev loss per token after a fixed number of steps (200) on a synthetic task made
  here from a fixed seed (tokens are noisy prototype vectors held for 6-12 frames, silence
  between), with a 2x320 BLSTM, which learns it within those steps (dev loss 32.8 -> 0.04 in
  fp32 on CPU, Adam 2e-3), so the two losses say whether bf16 learns as fp32 does. The 4x320
  bf16 speed-up is in ``trainer``.
- ``distributed``: ``torchrun --standalone --nproc-per-node 1`` of this script's child mode:
  an NCCL process group (gloo on CPU), asr.training.distributed's all_sum / all_gather_objects
  / barrier, and TrainStep(distributed=True) on DistributedDataParallel for a few steps; then
  ``asr train`` itself under torchrun on a tiny data dir made here (``--device cuda``, and
  ``cuda:0``, with ``model.rnn_impl=packed``). asr's own ``distributed.init`` joins a process
  group only for a world of more than one, so the child initialises it itself.
- ``cuda_tests``: ``pytest -k "cuda or gpu_output"`` over the test files holding the CUDA tests,
  as a subprocess; pass / fail / skip counts.

    python bench/bench_gpu.py --device cuda --json gpu.json      # on a GPU: about 2-4 minutes
    python bench/bench_gpu.py --device cpu --quick --json q.json # tiny shapes, every part, CPU

On a GPU machine run ``bench/run_gpu_check.sh`` (its header says how). ``--quick`` is what
``tests/test_bench_gpu.py`` runs: it proves the script, not the GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from asr.nn.model import AcousticModel, ModelConfig, ctc_loss
from asr.nn.precision import autocast
from asr.training.step import TrainStep

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("impls", "trainer", "precision", "distributed", "cuda_tests")
# Seconds per section on a GPU: 7 minutes in all, under the 8 the check may take. Timing loops
# stop repeating once their section's time is spent, optional shapes are skipped, and
# subprocesses are killed at it; the precision run stops both precisions at the same step.
BUDGET_S = {"impls": 120, "trainer": 50, "precision": 100, "distributed": 80, "cuda_tests": 70}
TOKENS = 32  # output units, blank included
# largest |packed - per_direction| log-prob (fp32) that counts as equal
TOLERANCE = 1e-4
# a dev loss per token under this has left the CTC plateau (~3.5 on the precision task)
PLATEAU_EXIT = 1.0
CUDA_TEST_FILES = ("tests/test_model.py", "tests/test_model_packed.py", "tests/test_features.py")
CUDA_TEST_SELECTION = "cuda or gpu_output"


@dataclass(frozen=True)
class Shape:
    """A BLSTM and the batch it is timed on: ``batch`` utterances of up to ``frames`` frames."""

    layers: int
    hidden: int
    feat_dim: int
    batch: int
    frames: int

    def label(self) -> str:
        return (
            f"{self.layers}x{self.hidden} BLSTM, {self.batch} x <={self.frames} x {self.feat_dim}"
        )


@dataclass(frozen=True)
class Plan:
    """The sizes of one run: full on a GPU, tiny with --quick."""

    main: Shape
    big: Shape | None
    repeats: int  # timed repeats (at least 3 are always made)
    warmup: int
    task: Shape  # the precision section's model and batch
    steps: int  # precision: optimisation steps per precision
    dev_utts: int


FULL = Plan(
    main=Shape(4, 320, 80, 16, 1000),
    big=Shape(5, 1024, 80, 16, 1000),
    repeats=10,
    warmup=3,
    # 2 layers: a 4-layer BLSTM sat on the CTC plateau for the first 200 steps of this task
    # (4x96 on CPU), where both precisions would compare equal for want of learning
    task=Shape(2, 320, 80, 16, 400),
    steps=200,
    dev_utts=32,
)
QUICK = Plan(
    main=Shape(2, 16, 8, 4, 30),
    big=Shape(2, 24, 8, 4, 30),
    repeats=3,
    warmup=1,
    task=Shape(1, 24, 8, 4, 60),
    steps=8,
    dev_utts=4,
)


# --- helpers -----------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def no_tf32(device: torch.device):
    """fp32 as fp32: cuDNN otherwise runs fp32 RNNs in TF32 (Ampere and later)."""
    if device.type != "cuda":
        return nullcontext()
    return torch.backends.cudnn.flags(enabled=True, allow_tf32=False)


def timed(
    step: Callable[[], None], device: torch.device, plan: Plan, deadline: float
) -> list[float]:
    """Seconds per call of ``step``: ``plan.warmup`` untimed calls, then up to ``plan.repeats``
    timed ones (at least 3, fewer than asked once ``deadline`` has passed)."""
    for _ in range(plan.warmup):
        step()
    sync(device)
    times = []
    for number in range(plan.repeats):
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
        if number >= 2 and time.monotonic() > deadline:
            break
    return times


def ms(seconds: list[float]) -> float:
    return 1000.0 * statistics.median(seconds)


def padded_lengths(shape: Shape) -> torch.Tensor:
    """Unsorted lengths over 80-100% of ``frames`` and one short one: packing must sort and
    unsort, and the short utterance has most of its row in padding."""
    lengths = torch.linspace(shape.frames * 0.8, shape.frames, shape.batch).round().long()
    lengths = lengths.flip(0)
    lengths[-1] = max(1, shape.frames * 3 // 10)
    if shape.batch > 2:
        lengths[[0, 1]] = lengths[[1, 0]]
    return lengths


def random_batch(
    shape: Shape, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, T, D) features zero past each length, lengths, padded targets, target lengths."""
    lengths = padded_lengths(shape)
    feats = torch.randn(shape.batch, shape.frames, shape.feat_dim, generator=generator)
    time_index = torch.arange(shape.frames)[None, :, None]
    feats = feats.masked_fill(time_index >= lengths[:, None, None], 0.0)
    target_lengths = (lengths // 10).clamp(min=1)
    targets = torch.randint(
        1, TOKENS, (shape.batch, int(target_lengths.max())), generator=generator
    )
    return feats, lengths, targets, target_lengths


def twin_models(shape: Shape, device: torch.device) -> dict[str, AcousticModel]:
    """A per_direction and a packed model on the same weights."""
    values = dict(
        input_dim=shape.feat_dim,
        num_tokens=TOKENS,
        num_layers=shape.layers,
        hidden_size=shape.hidden,
    )
    torch.manual_seed(0)
    models = {}
    for impl in ("per_direction", "packed"):
        models[impl] = AcousticModel(ModelConfig(**values, rnn_impl=impl))
    models["packed"].load_state_dict(models["per_direction"].state_dict())
    return {name: model.to(device) for name, model in models.items()}


# --- a. per_direction against packed -----------------------------------------------------------


def equality(models: dict[str, AcousticModel], shape: Shape, device: torch.device) -> dict:
    """Largest difference of log-probs (valid frames) and of gradients between the impls."""
    generator = torch.Generator().manual_seed(1)
    feats, lengths, targets, target_lengths = random_batch(shape, generator)
    feats, lengths = feats.to(device), lengths.to(device)
    outputs, grads = {}, {}
    with no_tf32(device):
        for name, model in models.items():
            model.train()  # gradients too; dropout is 0
            model.zero_grad(set_to_none=True)
            log_probs, out_lengths = model(feats, lengths)
            ctc_loss(log_probs, out_lengths, targets.to(device), target_lengths).backward()
            outputs[name] = log_probs.detach()
            grads[name] = {n: p.grad.detach() for n, p in model.named_parameters()}
    valid = (torch.arange(feats.shape[1], device=device)[None, :] < lengths[:, None])[..., None]
    diff = (outputs["packed"] - outputs["per_direction"]).abs().masked_fill(~valid, 0.0)
    grad_diff = max(
        float((grads["packed"][n] - g).abs().max()) for n, g in grads["per_direction"].items()
    )
    grad_scale = max(float(g.abs().max()) for g in grads["per_direction"].values())
    result = {
        "max_abs_logprob_diff": float(diff.max()),
        "max_abs_grad_diff": grad_diff,
        "max_abs_grad": grad_scale,
        "tolerance": TOLERANCE,
    }
    result["equal"] = result["max_abs_logprob_diff"] <= TOLERANCE
    return result


def impl_times(
    shape: Shape,
    models: dict[str, AcousticModel],
    device: torch.device,
    plan: Plan,
    deadline: float,
) -> dict[str, dict[str, float]]:
    """Milliseconds per forward + CTC + backward, by precision and implementation."""
    generator = torch.Generator().manual_seed(2)
    feats, lengths, targets, target_lengths = random_batch(shape, generator)
    feats, lengths, targets = feats.to(device), lengths.to(device), targets.to(device)
    bare = nn.LSTM(shape.feat_dim, shape.hidden, num_layers=shape.layers, bidirectional=True)
    bare = bare.to(device)
    bare_out = nn.Linear(2 * shape.hidden, TOKENS).to(device)
    x = feats.transpose(0, 1).contiguous()
    cpu_lengths = lengths.cpu()

    def model_step(model: AcousticModel, dtype: torch.dtype | None) -> Callable[[], None]:
        def step() -> None:
            model.zero_grad(set_to_none=True)
            with autocast(device, dtype):
                log_probs, out_lengths = model(feats, lengths)
            ctc_loss(log_probs.float(), out_lengths, targets, target_lengths).backward()

        return step

    def bare_step(packed: bool, dtype: torch.dtype | None) -> Callable[[], None]:
        def step() -> None:
            bare.zero_grad(set_to_none=True)
            bare_out.zero_grad(set_to_none=True)
            with autocast(device, dtype):
                if packed:
                    seq = nn.utils.rnn.pack_padded_sequence(x, cpu_lengths, enforce_sorted=False)
                    out, _ = nn.utils.rnn.pad_packed_sequence(bare(seq)[0], total_length=len(x))
                else:
                    out, _ = bare(x)
                logits = bare_out(out)
            log_probs = logits.float().log_softmax(-1).transpose(0, 1)
            ctc_loss(log_probs, lengths, targets, target_lengths).backward()

        return step

    results: dict[str, dict[str, float]] = {}
    for dtype_name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        row = {}
        for name, model in models.items():
            model.train()
            row[name] = ms(timed(model_step(model, dtype), device, plan, deadline))
        row["bare_lstm_padded"] = ms(timed(bare_step(False, dtype), device, plan, deadline))
        row["bare_lstm_packed"] = ms(timed(bare_step(True, dtype), device, plan, deadline))
        row["packed_speedup"] = row["per_direction"] / row["packed"]
        results[dtype_name] = row
    return results


def section_impls(device: torch.device, plan: Plan, deadline: float) -> dict[str, Any]:
    shapes = []
    started = time.monotonic()
    for shape in (plan.main, plan.big):
        if shape is None:
            continue
        if shapes:
            # small-batch recurrences are bound by latency more than by FLOPs: guess the
            # big shape's time as (hidden ratio) x (layers ratio) of the main one's
            scale = (shape.hidden / plan.main.hidden) * shape.layers / plan.main.layers
            estimate = (time.monotonic() - started) * scale
            if time.monotonic() + estimate > deadline:
                shapes.append(
                    {"shape": asdict(shape), "skipped": f"needs ~{estimate:.0f} s, over budget"}
                )
                print(f"  {shape.label()}: skipped (estimated {estimate:.0f} s, over budget)")
                continue
        models = twin_models(shape, device)
        entry: dict[str, Any] = {"shape": asdict(shape), "label": shape.label()}
        entry["equality"] = equality(models, shape, device)
        if device.type == "cuda":
            # what training sees: cuDNN's default TF32 in both implementations
            entry["max_abs_logprob_diff_tf32"] = max_diff_default_math(models, shape, device)
        entry["ms_per_batch"] = impl_times(shape, models, device, plan, deadline)
        shapes.append(entry)
        print_impls(entry)
        del models
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"shapes": shapes}


def max_diff_default_math(
    models: dict[str, AcousticModel], shape: Shape, device: torch.device
) -> float:
    generator = torch.Generator().manual_seed(1)
    feats, lengths, _, _ = random_batch(shape, generator)
    feats, lengths = feats.to(device), lengths.to(device)
    with torch.no_grad():
        a, out_lengths = models["per_direction"].eval()(feats, lengths)
        b, _ = models["packed"].eval()(feats, lengths)
    valid = (torch.arange(a.shape[1], device=device)[None, :] < out_lengths[:, None])[..., None]
    return float((a - b).abs().masked_fill(~valid, 0.0).max())


def print_impls(entry: dict[str, Any]) -> None:
    eq = entry["equality"]
    print(f"  {entry['label']}")
    print(
        f"    equality (fp32, TF32 off): max |log-prob diff| {eq['max_abs_logprob_diff']:.2e}"
        f" (tolerance {eq['tolerance']:.0e}: {'equal' if eq['equal'] else 'NOT EQUAL'}),"
        f" max |grad diff| {eq['max_abs_grad_diff']:.2e} of max |grad| {eq['max_abs_grad']:.2e}"
    )
    if "max_abs_logprob_diff_tf32" in entry:
        print(f"    with cuDNN's default TF32: {entry['max_abs_logprob_diff_tf32']:.2e}")
    for dtype_name, row in entry["ms_per_batch"].items():
        print(
            f"    {dtype_name}: per_direction {row['per_direction']:8.2f} ms  packed"
            f" {row['packed']:8.2f} ms  ({row['packed_speedup']:.2f}x);  bare nn.LSTM padded"
            f" {row['bare_lstm_padded']:8.2f} ms, packed {row['bare_lstm_packed']:8.2f} ms"
        )


# --- b. the trainer's step against a bare nn.LSTM ----------------------------------------------


def section_trainer(device: torch.device, plan: Plan, deadline: float) -> dict[str, Any]:
    shape = plan.main
    generator = torch.Generator().manual_seed(3)
    feats, lengths, targets, target_lengths = random_batch(shape, generator)
    flat_targets = torch.cat([targets[i, : target_lengths[i]] for i in range(shape.batch)])
    if device.type == "cuda":
        feats = feats.pin_memory()  # as the trainer's DataLoader hands batches over
    frames = shape.batch * shape.frames  # padded frames, the same for both sides
    bare = nn.LSTM(shape.feat_dim, shape.hidden, num_layers=shape.layers, bidirectional=True)
    bare = bare.to(device)
    bare_optimizer = torch.optim.Adam(bare.parameters(), lr=1e-4)
    bare_input = feats.transpose(0, 1).contiguous().to(device)
    results: dict[str, Any] = {"shape": asdict(shape), "frames_per_batch": frames, "target": 0.9}
    for dtype_name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):

        def bare_step(dtype: torch.dtype | None = dtype) -> None:
            bare_optimizer.zero_grad(set_to_none=True)
            with autocast(device, dtype):
                out, _ = bare(bare_input)
            out.float().sum().backward()
            bare_optimizer.step()

        for impl in ("per_direction", "packed"):
            torch.manual_seed(0)
            config = ModelConfig(
                input_dim=shape.feat_dim,
                num_tokens=TOKENS,
                num_layers=shape.layers,
                hidden_size=shape.hidden,
                rnn_impl=impl,
            )
            model = AcousticModel(config).to(device).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
            step = TrainStep(model, model, optimizer, device, grad_clip=5.0, autocast_dtype=dtype)

            def our_step(step: TrainStep = step) -> None:
                result = step(feats, lengths, flat_targets, target_lengths)
                if result.loss is None:
                    raise RuntimeError(f"benchmark batch skipped: non-finite {result.skipped}")

            for _ in range(plan.warmup):
                our_step()
                bare_step()
            ours, refs = [], []
            for number in range(plan.repeats):  # alternating: both see the same conditions
                for fn, times in ((bare_step, refs), (our_step, ours)):
                    sync(device)
                    start = time.perf_counter()
                    fn()
                    sync(device)
                    times.append(time.perf_counter() - start)
                if number >= 2 and time.monotonic() > deadline:
                    break
            row = {
                "ms_ours": ms(ours),
                "ms_bare": ms(refs),
                "frames_per_s_ours": frames / statistics.median(ours),
                "frames_per_s_bare": frames / statistics.median(refs),
                "ratio_best": min(refs) / min(ours),
                "ratio_median": statistics.median(r / o for r, o in zip(refs, ours, strict=True)),
            }
            results[f"{dtype_name}_{impl}"] = row
            print(
                f"  {dtype_name} {impl:13s}: TrainStep {row['ms_ours']:8.2f} ms"
                f" ({row['frames_per_s_ours']:10.0f} frames/s), bare nn.LSTM + Adam"
                f" {row['ms_bare']:8.2f} ms; ratio {row['ratio_median']:.3f} (median),"
                f" {row['ratio_best']:.3f} (best)"
            )
            del model, optimizer, step
    return results


# --- c. bf16 against fp32 on a learnable synthetic task ----------------------------------------


def synthetic_batch(
    generator: torch.Generator, prototypes: torch.Tensor, shape: Shape
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Utterances of tokens, each a prototype vector held 6-12 frames with 1-3 frames of
    silence (zeros) around it, plus noise; targets are the tokens. Up to ``shape.frames``."""

    def draw(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    utterances, labels = [], []
    for _ in range(shape.batch):
        rows, tokens, total = [torch.zeros(draw(1, 3), shape.feat_dim)], [], 0
        while True:
            token = draw(1, len(prototypes) - 1)
            if tokens and token == tokens[-1]:
                continue  # CTC needs a blank between repeats; keep the task clean
            hold, gap = draw(6, 12), draw(1, 3)
            if total + hold + gap + rows[0].shape[0] > shape.frames and tokens:
                break
            rows += [prototypes[token].expand(hold, -1), torch.zeros(gap, shape.feat_dim)]
            tokens.append(token)
            total += hold + gap
        utterances.append(torch.cat(rows)[: shape.frames])
        labels.append(torch.tensor(tokens))
    lengths = torch.tensor([len(u) for u in utterances])
    feats = torch.zeros(shape.batch, int(lengths.max()), shape.feat_dim)
    for b, utt in enumerate(utterances):
        noise = torch.randn(utt.shape, generator=generator)
        feats[b, : len(utt)] = utt + 0.5 * noise
    target_lengths = torch.tensor([len(t) for t in labels])
    return feats, lengths, torch.cat(labels), target_lengths


def dev_loss(model: AcousticModel, dev: list[tuple], device: torch.device) -> float:
    """CTC loss per target token over the dev batches, fp32, eval mode."""
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad(), no_tf32(device):
        for feats, lengths, targets, target_lengths in dev:
            log_probs, out_lengths = model(feats.to(device), lengths.to(device))
            loss = ctc_loss(log_probs, out_lengths, targets.to(device), target_lengths)
            total += float(loss)
            tokens += int(target_lengths.sum())
    model.train()
    return total / max(tokens, 1)


def section_precision(device: torch.device, plan: Plan, deadline: float) -> dict[str, Any]:
    shape = plan.task
    task_generator = torch.Generator().manual_seed(1234)
    prototypes = torch.randn(TOKENS, shape.feat_dim, generator=task_generator)
    prototypes[0] = 0.0  # index 0 is the blank; never a token
    dev_shape = Shape(**{**asdict(shape), "batch": plan.dev_utts})
    dev = [synthetic_batch(torch.Generator().manual_seed(99), prototypes, dev_shape)]
    runs: dict[str, dict[str, Any]] = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        torch.manual_seed(0)  # the same initial weights for both
        config = ModelConfig(
            input_dim=shape.feat_dim,
            num_tokens=TOKENS,
            num_layers=shape.layers,
            hidden_size=shape.hidden,
        )
        model = AcousticModel(config).to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
        step = TrainStep(model, model, optimizer, device, grad_clip=5.0, autocast_dtype=dtype)
        runs[name] = {
            "model": model,
            "step": step,
            "times": [],
            "losses": [],
            "dev_loss_start": dev_loss(model, dev, device),
        }
    done = 0
    for number in range(plan.steps):
        batch = synthetic_batch(
            torch.Generator().manual_seed(10_000 + number), prototypes, shape
        )  # the same batch for both precisions
        for run in runs.values():
            sync(device)
            start = time.perf_counter()
            result = run["step"](*batch)
            sync(device)
            run["times"].append(time.perf_counter() - start)
            tokens = max(int(batch[3].sum()), 1)
            run["losses"].append(result.loss / tokens if result.loss is not None else math.nan)
        done = number + 1
        if done == plan.steps // 2:
            for run in runs.values():
                run["dev_loss_mid"] = dev_loss(run["model"], dev, device)
        if time.monotonic() > deadline:
            print(f"  budget spent: stopped both precisions after {done} steps")
            break
    results: dict[str, Any] = {
        "shape": asdict(shape),
        "steps_asked": plan.steps,
        "steps_done": done,
    }
    for name, run in runs.items():
        times = run["times"][min(3, len(run["times"]) - 1) :]  # past the warm-up steps
        final = dev_loss(run["model"], dev, device)
        losses = run["losses"]
        skipped = sum(1 for value in losses if math.isnan(value))
        tail = [value for value in losses[-10:] if not math.isnan(value)]
        results[name] = {
            "ms_per_step": ms(times),
            "dev_loss_start": run["dev_loss_start"],
            "dev_loss_mid": run.get("dev_loss_mid", math.nan),
            "dev_loss_end": final,
            "train_loss_last10": statistics.mean(tail) if tail else math.nan,
            "skipped_steps": skipped,
        }
        print(
            f"  {name}: {results[name]['ms_per_step']:8.2f} ms/step; dev loss per token"
            f" {run['dev_loss_start']:.4f} -> {results[name]['dev_loss_mid']:.4f} after"
            f" {plan.steps // 2} -> {final:.4f} after {done} steps"
            f" ({skipped} skipped)"
        )
    results["bf16_speedup"] = results["fp32"]["ms_per_step"] / results["bf16"]["ms_per_step"]
    results["dev_loss_diff_bf16_minus_fp32"] = (
        results["bf16"]["dev_loss_end"] - results["fp32"]["dev_loss_end"]
    )
    # below the CTC plateau (~3.5 per token here: log 31 tokens, no alignment learnt yet)
    results["learned"] = results["fp32"]["dev_loss_end"] < PLATEAU_EXIT
    print(
        f"  bf16 speed-up {results['bf16_speedup']:.2f}x; dev loss bf16 - fp32"
        f" {results['dev_loss_diff_bf16_minus_fp32']:+.4f}; fp32 learned the task:"
        f" {results['learned']}"
    )
    return results


# --- d. torchrun: NCCL (gloo on CPU) and asr train ---------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun would warn and set it anyway
    return env


def run_child(argv: list[str], deadline: float) -> dict[str, Any]:
    """Run ``argv`` in the repository; rc, seconds and the output's last lines (rc None: it was
    killed at ``deadline``)."""
    start = time.monotonic()
    timeout = max(5.0, deadline - start)
    try:
        proc = subprocess.run(
            argv, cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=timeout
        )
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        parts = [exc.stdout, exc.stderr]  # bytes here, whatever text= said
        output = "".join(
            p.decode(errors="replace") if isinstance(p, bytes) else p or "" for p in parts
        )
        rc, output = None, f"{output}\ntimed out after {timeout:.0f} s"
    lines = [line for line in output.splitlines() if line.strip()]
    return {"rc": rc, "seconds": time.monotonic() - start, "tail": lines[-15:]}


def torchrun() -> list[str]:
    # the module, not the torchrun script: the same interpreter, whatever is on PATH
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1"]


def write_data_dir(path: Path, utterances: int, seed: int, dim: int = 6) -> None:
    """A tiny Kaldi data dir with features (as tests/test_train.py's): words a, b, c."""
    import kaldiio
    import numpy as np

    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    vocab = ("a", "b", "c")
    feats, texts = {}, {}
    for i in range(utterances):
        labels = rng.integers(0, len(vocab), size=int(rng.integers(1, 5)))
        rows = [np.zeros((int(rng.integers(1, 4)), dim))]
        for label in labels:
            word = np.zeros((int(rng.integers(3, 7)), dim))
            word[:, label] = 3.0
            rows += [word, np.zeros((int(rng.integers(1, 4)), dim))]
        mat = np.concatenate(rows)
        feats[f"utt{i:03d}"] = (mat + 0.3 * rng.standard_normal(mat.shape)).astype(np.float32)
        texts[f"utt{i:03d}"] = " ".join(vocab[j] for j in labels)
    kaldiio.save_ark(str(path / "feats.ark"), feats, scp=str(path / "feats.scp"))
    (path / "text").write_text("".join(f"{u} {t}\n" for u, t in texts.items()))
    (path / "utt2spk").write_text("".join(f"{u} s{int(u[3:]) % 3}\n" for u in texts))
    (path / "feats.yaml").write_text(
        f"kind: fbank\noptions:\n  num_mel_bins: {dim}\ncmvn: global\n"
    )


def section_distributed(device: torch.device, plan: Plan, deadline: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        root = Path(tmp)
        out = root / "child.json"
        argv = torchrun() + [str(Path(__file__).resolve()), "--ddp-child", "--device"]
        argv += [device.type, "--json", str(out)]
        run = run_child(argv, deadline)
        if run["rc"] == 0 and out.exists():
            run.update(json.loads(out.read_text()))
        results["process_group"] = run
        print(
            f"  torchrun child ({run.get('backend', '?')}): rc {run['rc']},"
            f" {run['seconds']:.1f} s; {run.get('summary', (run['tail'] or [''])[-1])}"
        )
        write_data_dir(root / "train", 24, seed=1)
        write_data_dir(root / "dev", 6, seed=2)
        config = root / "train.yaml"
        config.write_text(
            "model:\n  num_layers: 1\n  hidden_size: 24\n"
            "training:\n  lr: 0.02\n  max_epochs: 1\n  batch_frames: 80\n  precision: fp32\n"
        )
        devices = ["cuda", "cuda:0"] if device.type == "cuda" else ["cpu"]
        for name in devices:
            exp = root / f"exp-{name.replace(':', '')}"
            argv = torchrun() + ["-m", "asr", "train", "--config", str(config)]
            argv += ["--train-dir", str(root / "train"), "--dev-dir", str(root / "dev")]
            argv += ["--exp-dir", str(exp), "--device", name, "--no-tensorboard"]
            argv += ["model.rnn_impl=packed"]
            run = run_child(argv, deadline)
            run["final_pt"] = (exp / "final.pt").exists()
            results[f"asr_train_{name}"] = run
            last = (run["tail"] or [""])[-1]
            print(f"  torchrun asr train --device {name}: rc {run['rc']}, {run['seconds']:.1f} s;")
            print(f"    {last[:160]}")
    return results


def ddp_child(device_type: str, json_path: str) -> int:
    """Run under torchrun: a process group through the trainer's helpers, DDP steps."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from asr.training import distributed

    world = distributed.world_from_env()
    if "LOCAL_RANK" not in os.environ:
        raise SystemExit("--ddp-child runs under torchrun")
    if device_type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    backend = "nccl" if device.type == "cuda" else "gloo"
    # distributed.init joins only a world of more than one (a world of one needs no group):
    # join it here, then use the trainer's helpers on it as a larger world would
    dist.init_process_group(backend)
    sums = distributed.all_sum([1.0, 2.5])
    gathered = distributed.all_gather_objects({"rank": world.rank})
    distributed.barrier()
    shape = Shape(2, 16, 8, 4, 30)
    torch.manual_seed(0)
    config = ModelConfig(
        input_dim=shape.feat_dim,
        num_tokens=TOKENS,
        num_layers=2,
        hidden_size=16,
        rnn_impl="packed",  # the fused call's weights under DDP's gradient hooks
    )
    model = AcousticModel(config).to(device).train()
    ids = [device.index] if device.type == "cuda" else None
    network = DistributedDataParallel(model, device_ids=ids)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = TrainStep(network, model, optimizer, device, grad_clip=5.0, distributed=True)
    feats, lengths, targets, target_lengths = random_batch(shape, torch.Generator().manual_seed(5))
    flat = torch.cat([targets[i, : target_lengths[i]] for i in range(shape.batch)])
    losses = [step(feats, lengths, flat, target_lengths).loss for _ in range(3)]
    distributed.shutdown()
    ok = (
        sums == [1.0, 2.5]
        and gathered == [{"rank": 0}]
        and all(loss is not None and math.isfinite(loss) for loss in losses)
    )
    record = {
        "backend": backend,
        "world_size": world.size,
        "all_sum": sums,
        "losses": losses,
        "ok": ok,
        "summary": f"{backend}: all_sum {sums}, 3 DDP TrainSteps, losses finite: {ok}",
    }
    Path(json_path).write_text(json.dumps(record))
    return 0 if ok else 1


# --- e. the CUDA tests -------------------------------------------------------------------------


def section_cuda_tests(device: torch.device, plan: Plan, deadline: float) -> dict[str, Any]:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k"]
    argv += [CUDA_TEST_SELECTION, *CUDA_TEST_FILES]
    run = run_child(argv, deadline)
    summary = next((line for line in reversed(run["tail"]) if " in " in line), "")
    counts = {
        word: int(number)
        for number, word in re.findall(r"(\d+) (passed|failed|skipped|deselected|error)", summary)
    }
    run["counts"] = counts
    run["summary"] = summary
    print(f"  pytest -k '{CUDA_TEST_SELECTION}': {summary or run['tail'][-1:]}")
    return run


# --- the run -----------------------------------------------------------------------------------


def environment(device: torch.device, quick: bool) -> dict[str, Any]:
    env: dict[str, Any] = {
        "device": str(device),
        "quick": quick,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=torch.cuda.get_device_name(device),
            capability=".".join(map(str, torch.cuda.get_device_capability(device))),
            memory_gib=round(props.total_memory / 2**30, 1),
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
            matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        )
    else:
        env.update(gpu=None, threads=torch.get_num_threads())
    return env


@contextmanager
def section(name: str, scale: float, results: dict[str, Any]) -> Iterator[float]:
    budget = BUDGET_S[name] * scale
    start = time.monotonic()
    print(f"[{name}] budget {budget:.0f} s", flush=True)
    record: dict[str, Any] = {"budget_s": budget}
    results[name] = record
    try:
        yield start + budget
        record["status"] = "ok"
    except Exception as exc:  # one broken section must not lose the others' figures
        record["status"] = "failed"
        record["error"] = f"{exc.__class__.__name__}: {exc}"
        traceback.print_exc()
    record["elapsed_s"] = time.monotonic() - start
    print(f"[{name}] {record['status']} in {record['elapsed_s']:.1f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", default="auto", help="cuda, cpu, or auto (default: cuda; without one, skip)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny shapes: test the script")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated")
    parser.add_argument("--steps", type=int, help="precision: steps (default 200, quick 8)")
    parser.add_argument("--ddp-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ddp_child:
        return ddp_child(args.device, args.json)
    if args.device == "auto":
        if not torch.cuda.is_available():
            # `make bench` runs every bench: on a machine without a GPU this one has nothing
            # to measure, which is not a failure
            print("bench_gpu: no CUDA device here, nothing measured (--device cpu --quick "
                  "tests the script)")  # fmt: skip
            return 0
        args.device = "cuda"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device; use --device cpu --quick to test the script")
    chosen = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    plan = QUICK if args.quick else FULL
    if args.steps:
        plan = replace(plan, steps=args.steps)
    if device.type == "cpu":
        torch.set_num_threads(1)  # tiny shapes; the test machine's cores are shared
    begin = time.monotonic()
    env = environment(device, args.quick)
    print(
        f"device {env['gpu'] or 'cpu'}; torch {env['torch']}, CUDA {env['cuda']},"
        f" cuDNN {env['cudnn']}; python {env['python']}"
        + (f"; cuDNN TF32 {env['cudnn_allow_tf32']}" if device.type == "cuda" else "")
    )
    sections: dict[str, Any] = {}
    functions = {
        "impls": section_impls,
        "trainer": section_trainer,
        "precision": section_precision,
        "distributed": section_distributed,
        "cuda_tests": section_cuda_tests,
    }
    scale = 1.0 if device.type == "cuda" else 0.5
    for name in SECTIONS:
        if name not in chosen:
            continue
        with section(name, scale, sections) as deadline:
            sections[name].update(functions[name](device, plan, deadline))
    results = {"env": env, "sections": sections, "elapsed_s": time.monotonic() - begin}
    print(f"total {results['elapsed_s']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0 if all(s.get("status") == "ok" for s in sections.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
