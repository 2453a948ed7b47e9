"""Frame energy of a waveform and runs of flagged frames: what finding pauses is built on."""

from __future__ import annotations

import numpy as np


def frame_power(wave: np.ndarray, hop: int) -> np.ndarray:
    """Mean squared sample of each whole ``hop``-sample frame (a trailing partial one is
    dropped), in float64 whatever the wave's type."""
    frames = len(wave) // hop
    blocks = wave[: frames * hop].astype(np.float64).reshape(frames, hop)
    return (blocks * blocks).mean(axis=1)


def true_runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of each run of true values; an end is one past the run's last index."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
