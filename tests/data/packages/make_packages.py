"""Writes the committed package file of each format version that asr reads (``v1.pt``, ...).

test_package_export loads these files as they were written by the asr of their time, so that a
change to the loader, the model or its state-dict keys that old files would not survive shows
up as a failing test. Run this only when adding the file of a NEW format version (after bumping
asr.nn.package.PACKAGE_VERSION); never rewrite an existing file, or the test checks nothing:

    .venv/bin/python tests/data/packages/make_packages.py

Each file holds a one-layer BiLSTM with 4 units per direction (6 inputs, 4 tokens), a global
CMVN, the feature config of test_train's synthetic task, and in ``extra["reference"]`` a small
batch of features with the log-probabilities and output lengths that network gave for them
when the file was written. A few KB each.
"""

from __future__ import annotations

from pathlib import Path

import torch

from asr.features.config import FeatureConfig
from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.package import PACKAGE_VERSION, ModelPackage, save_package

HERE = Path(__file__).resolve().parent
TOKENS = ["<blk>", "a", "b", "c"]
DIM = 6


def build() -> ModelPackage:
    torch.manual_seed(0)
    config = ModelConfig(input_dim=DIM, num_tokens=len(TOKENS), num_layers=1, hidden_size=4)
    model = AcousticModel(config).eval()
    features = FeatureConfig.from_dict(
        {"kind": "fbank", "options": {"num_mel_bins": DIM}, "cmvn": "global"}
    )
    # Kaldi-format global stats: sums and count, then sums of squares (10 frames of mean 1, var 4)
    stats = torch.zeros(2, DIM + 1, dtype=torch.float64)
    stats[0, :DIM], stats[0, DIM], stats[1, :DIM] = 10.0, 10.0, 50.0
    feats = torch.randn(2, 9, DIM, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([9, 5])
    with torch.no_grad():
        log_probs, out_lengths = model(feats, lengths)
    return ModelPackage(
        state_dict={k: v.clone() for k, v in model.state_dict().items()},
        model_config=config.to_dict(),
        tokens=TOKENS,
        feature_config=features.to_dict(),
        cmvn_stats=stats,
        extra={
            "unit": "word",
            "epoch": 1,
            "reference": {
                "feats": feats,
                "lengths": lengths,
                "log_probs": log_probs,
                "out_lengths": out_lengths,
            },
        },
    )


if __name__ == "__main__":
    path = HERE / f"v{PACKAGE_VERSION}.pt"
    if path.exists():
        raise SystemExit(f"{path} exists: committed package files are never rewritten")
    save_package(build(), path)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
