"""Benchmark: peak resident memory of training a 4x320 BLSTM on batches of 20,000 frames.

Each configuration runs in a fresh Python process: a few ``asr.training.step.TrainStep`` steps
(SpecAugment on, precision auto) on a batch of 40 utterances x 500 input frames of 40-dim
features, then reports ``ru_maxrss``. The reference is the same process having imported torch
and built the model and optimizer, before the first step; the difference is what training adds.
Budget: 4 GB.

    .venv/bin/python bench/bench_train_memory.py [--threads 2] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

CHILD = r"""
import json, resource, sys, torch
from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.precision import resolve_precision
from asr.nn.spec_augment import SpecAugmentConfig
from asr.training.step import TrainStep
stack, skip, steps, threads = map(int, sys.argv[1:5])
torch.set_num_threads(threads)
torch.manual_seed(0)
config = ModelConfig(input_dim=40, num_tokens=62, num_layers=4, hidden_size=320,
                     stack=stack, skip=skip)
model = AcousticModel(config).train()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
device = torch.device("cpu")
step = TrainStep(model, model, optimizer, device, 5.0, resolve_precision("auto", device),
                 SpecAugmentConfig(time_warp=5))
batch, frames = 40, 500
feats = torch.randn(batch, frames, 40)
lengths = torch.full((batch,), frames)
target_lengths = torch.full((batch,), 30)
targets = torch.randint(1, 62, (batch * 30,))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for n in range(steps):
    assert step(feats, lengths, targets, target_lengths, n).loss is not None
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "peak_kb": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print("4x320 BLSTM, batch 40 x 500 = 20,000 input frames of 40 dims, SpecAugment on")
    for stack, skip in ((3, 3), (1, 1)):
        argv = [str(v) for v in (stack, skip, args.steps, args.threads)]
        out = subprocess.run(
            [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=True
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])
        peak, before = got["peak_kb"] / 2**20, got["before_kb"] / 2**20
        verdict = "within" if peak <= 4.0 else "OVER"
        print(
            f"stack {stack} / skip {skip}: peak RSS {peak:.2f} GB ({verdict} the 4 GB budget); "
            f"before the first step {before:.2f} GB, so training adds {peak - before:.2f} GB"
        )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"(this parent process: {own:.2f} GB)")


if __name__ == "__main__":
    main()
