"""FeatureConfig (what ``asr features`` computes, saved as feats.yaml) and the per-utterance
pipeline it defines: raw features from a waveform, and CMVN + deltas at read time.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from asr.config import apply_overrides, check_known_keys, load_yaml_mapping
from asr.errors import AudioError, ConfigError
from asr.features.cmvn import add_deltas, apply_cmvn, compute_cmvn_stats
from asr.features.kaldi import (
    CMVN_MODES,
    FBANK_DEFAULTS,
    KINDS,
    MFCC_DEFAULTS,
    all_finite,
    fbank,
    frame_sizes,
    mel_matrix,
    mfcc,
    resolve_options,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FeatureConfig:
    """What ``asr features`` computes and how readers normalize it (saved as feats.yaml)."""

    kind: str = "fbank"
    sample_rate: int = 16000
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    delta_order: int = 0
    cmvn: str = "speaker"
    norm_vars: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"feature kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.cmvn not in CMVN_MODES:
            raise ConfigError(f"cmvn {self.cmvn!r} is not one of {', '.join(CMVN_MODES)}")
        if not isinstance(self.sample_rate, int) or self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be a positive integer, got {self.sample_rate!r}")
        if not isinstance(self.delta_order, int) or self.delta_order < 0:
            raise ConfigError(f"delta_order must be an integer >= 0, got {self.delta_order!r}")
        if not isinstance(self.options, dict):
            raise ConfigError(f"options must be a mapping, got {type(self.options).__name__}")
        self.options = dict(self.options)
        for name, value in self.options.items():
            # YAML 1.1 reads 1.0e9 (no sign after the e) as a string; accept it as a number,
            # as the training config does.
            if isinstance(self.defaults.get(name), float) and isinstance(value, str):
                try:
                    self.options[name] = float(value)
                except ValueError:
                    pass  # the type check below names the option
        for name, value in self.options.items():
            if name not in self.defaults:
                continue  # resolve_options lists the unknown ones
            default = self.defaults[name]
            if isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, int):
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            else:
                ok = isinstance(value, str)
            if not ok:
                raise ConfigError(
                    f"{self.kind} option {name}={value!r}: expected {type(default).__name__}"
                )
        # the list of known options makes a misspelt one (here or on the command line) quick to fix
        check_known_keys(self.options, self.defaults, f"{self.kind} options", "option")
        opts = resolve_options(self.defaults, self.options, f"{self.kind} options")
        if self.kind == "mfcc" and opts["num_ceps"] > opts["num_mel_bins"]:
            raise ConfigError(
                f"mfcc options: num_ceps={opts['num_ceps']} must be at most "
                f"num_mel_bins={opts['num_mel_bins']}"
            )
        # Frame and mel-bank sizes depend on the sample rate: check them now, not at the first
        # utterance of a long batch job.
        _, _, padded = frame_sizes(self.sample_rate, opts)
        mel_matrix(
            int(opts["num_mel_bins"]),
            padded,
            float(self.sample_rate),
            float(opts["low_freq"]),
            float(opts["high_freq"]),
            torch.device("cpu"),
            torch.float64,
        )

    @property
    def defaults(self) -> dict[str, Any]:
        return FBANK_DEFAULTS if self.kind == "fbank" else MFCC_DEFAULTS

    @property
    def raw_dim(self) -> int:
        """Dimension of the stored (raw) features."""
        opts = {**self.defaults, **self.options}
        if self.kind == "mfcc":
            return int(opts["num_ceps"])
        return int(opts["num_mel_bins"]) + int(bool(opts["use_energy"]))

    @property
    def dim(self) -> int:
        """Dimension after ``normalize_features`` (deltas included): the model's input_dim."""
        return self.raw_dim * (self.delta_order + 1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        check_known_keys(data, (f.name for f in dataclasses.fields(cls)), "feature config", "key")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_feature_config(
    path: str | os.PathLike | None, overrides: Sequence[str] = ()
) -> FeatureConfig:
    """Read a feature config YAML (the FeatureConfig fields; ``options`` holds Kaldi options).

    ``path`` None starts from the defaults (Kaldi's fbank at 16 kHz). ``overrides`` are
    ``dotted.key=value`` strings (``options.num_mel_bins=80``, ``delta_order=2``) set before the
    config is checked (:func:`asr.config.apply_overrides`); errors then name the file "with
    command-line overrides".
    """
    source = "default feature config" if path is None else str(path)
    if overrides:
        source += " (with command-line overrides)"
    data = {} if path is None else load_yaml_mapping(path, "feature config")
    data = apply_overrides(data, overrides, source)
    try:
        return FeatureConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def extract_features(
    wave: np.ndarray | torch.Tensor, sample_rate: int, config: FeatureConfig
) -> torch.Tensor:
    """Raw features of one waveform in [-1, 1] at ``config.sample_rate``: ``(frames, raw_dim)``.

    The waveform must already be at the configured rate (``load_audio(..., sample_rate=...)``
    resamples); a mismatch is a ConfigError rather than silently different features.
    """
    if int(sample_rate) != config.sample_rate:
        raise ConfigError(
            f"audio at {sample_rate} Hz but the feature config expects {config.sample_rate} Hz"
        )
    samples = torch.as_tensor(
        np.asarray(wave, dtype=np.float32) if not torch.is_tensor(wave) else wave
    )
    if samples.dim() != 1:
        raise ValueError(
            f"extract_features: expected a mono (T,) waveform, got {tuple(samples.shape)}"
        )
    samples = samples.to(torch.float32)
    if not all_finite(samples):
        raise AudioError("audio contains NaN or infinite samples")
    scaled = samples * 32768.0  # Kaldi's int16 sample scale
    if not all_finite(scaled):
        raise AudioError(
            f"features are not finite: the samples are too large (peak "
            f"{float(samples.abs().max()):.3g}; float audio is expected in [-1, 1])"
        )
    func = fbank if config.kind == "fbank" else mfcc
    return func(scaled, float(config.sample_rate), **config.options)


def normalize_features(
    feats: torch.Tensor, config: FeatureConfig, cmvn_stats: torch.Tensor | None = None
) -> torch.Tensor:
    """CMVN (per ``config.cmvn``) then deltas: stored raw features -> model input.

    ``cmvn_stats`` are the speaker's stats for "speaker", the global stats for "global", ignored
    for "utterance" (the utterance's own stats) and "none".
    """
    if config.cmvn == "utterance":
        if feats.shape[0] > 0:
            feats = apply_cmvn(feats, compute_cmvn_stats(feats), config.norm_vars)
    elif config.cmvn in ("speaker", "global"):
        if cmvn_stats is None:
            raise ConfigError(f"cmvn is {config.cmvn!r} but no CMVN statistics were given")
        feats = apply_cmvn(feats, cmvn_stats, config.norm_vars)
    return add_deltas(feats, config.delta_order) if config.delta_order > 0 else feats
