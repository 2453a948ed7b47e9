"""Weight noise (Graves 2013, "Speech recognition with deep recurrent neural networks"): each
batch's forward and backward pass run on weights with Gaussian noise added, and the update is
applied to the clean weights.

A regulariser for small training sets: the gradient is that of the loss averaged over nearby
weights, which favours flat minima. Graves used it on TIMIT (3,696 utterances) after training
without it had converged. Here it is a training option (``training.weight_noise``, the noise's
standard deviation; 0 turns it off).

The noise comes from a generator seeded per batch, so a run is reproducible and a resumed run
draws the same noise as an uninterrupted one. The clean weights are copied back bit for bit
(not recovered by subtracting the noise, which would round).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch


@contextlib.contextmanager
def noisy_weights(
    parameters: Iterable[torch.nn.Parameter], std: float, seed: int
) -> Iterator[list[torch.Tensor]]:
    """Within the block every parameter holds its value plus N(0, std^2) noise (drawn on the
    CPU from ``seed``, so the draw is the same on every device); on leaving it, however it is
    left, the clean values are back. Yields the noise tensors, in parameter order."""
    params = list(parameters)
    if std <= 0:
        yield []
        return
    generator = torch.Generator(device="cpu").manual_seed(seed)
    clean = [p.detach().clone() for p in params]
    noise = [
        torch.randn(p.shape, generator=generator, dtype=torch.float32).to(p.device, p.dtype) * std
        for p in params
    ]
    with torch.no_grad():
        for p, n in zip(params, noise, strict=True):
            p.add_(n)
    try:
        yield noise
    finally:
        with torch.no_grad():
            for p, c in zip(params, clean, strict=True):
                p.copy_(c)
