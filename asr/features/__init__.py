"""Features: Kaldi-compatible fbank/MFCC, deltas and CMVN, their config, and data-dir extraction.

``asr.features.fbank`` and ``asr.features.mfcc`` are the public entry points (see
:mod:`asr.features.kaldi`); :mod:`asr.features.extract` runs them over a data directory and
:mod:`asr.features.dataset` reads the result back for training and decoding.
"""

from asr.features.cmvn import add_deltas, apply_cmvn, compute_cmvn_stats
from asr.features.config import (
    FeatureConfig,
    extract_features,
    load_feature_config,
    normalize_features,
)
from asr.features.kaldi import fbank, mfcc, num_frames

__all__ = [
    "FeatureConfig",
    "add_deltas",
    "apply_cmvn",
    "compute_cmvn_stats",
    "extract_features",
    "fbank",
    "load_feature_config",
    "mfcc",
    "normalize_features",
    "num_frames",
]
