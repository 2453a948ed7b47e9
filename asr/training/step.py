"""One optimisation step of CTC training: augmentation, autocast, loss, guarded update.

Kept apart from the epoch loop so that the benchmark times exactly what ``asr train`` runs.
A batch whose loss or gradient is NaN or infinite changes nothing: the step is skipped and
counted. Under DistributedDataParallel every process makes the same skip decision (the loss
flag is summed over processes, and gradients are already identical after their all-reduce),
so no process waits forever for a gradient that another skipped.

**What the gradient is of** (``loss_normalization``). The batch's CTC loss is summed over its
utterances; the backward pass takes it divided by the batch's target tokens (``token``) or by
its utterances (``utterance``: with one utterance a batch, the gradient of -ln p(z|x), the
objective of Graves et al. 2013). Under DistributedDataParallel, which averages the processes'
gradients, ``token`` divides by each process's own tokens (so the step is the mean of the
processes' per-token gradients), while ``utterance`` divides by the utterances of all the
processes' batches together (all-reduced with the skip flag, no extra collective): the step is
then the gradient of the summed loss over every process's utterances divided by their number,
as one process with the union of the batches would take it. Either way the
:class:`StepResult` reports the summed loss and the token count, so what the trainer logs
stays the loss per token whatever the normalisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist

from asr.features.vtlp import MelAxis, vtlp
from asr.nn.model import ctc_loss
from asr.nn.precision import autocast
from asr.nn.spec_augment import spec_augment
from asr.training.weight_noise import noisy_weights


@dataclass
class StepResult:
    """What one step did: the summed CTC loss (None when skipped), its token count and the
    global gradient norm before clipping (None when the loss was not finite: no backward)."""

    loss: float | None
    tokens: int
    skipped: str = ""  # "loss" or "gradient" when the batch was skipped
    grad_norm: float | None = None


class TrainStep:
    """Forward, CTC loss, backward, clipping and update of ``network`` with ``optimizer``.

    ``network`` may be the model or its DistributedDataParallel wrapper; ``model`` is the bare
    model (for its output lengths and parameters). ``spec_augment`` is a SpecAugmentConfig or
    None; ``autocast_dtype`` None trains in fp32. fp16 uses a gradient scaler, bf16 needs none.
    ``delta_blocks`` is the number of (static + delta) blocks in the feature dimension.
    ``weight_noise`` > 0: the forward and backward pass of each batch run on weights with that
    much Gaussian noise (drawn from the batch's augmentation seed), the update goes to the clean
    weights (:mod:`asr.training.weight_noise`). ``vtlp`` = (mel axis, max warp): each
    utterance's log-mel axis is warped by a random factor (:mod:`asr.features.vtlp`).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        grad_clip: float = 0.0,
        autocast_dtype: torch.dtype | None = None,
        spec_augment: object | None = None,
        distributed: bool = False,
        delta_blocks: int = 1,
        weight_noise: float = 0.0,
        vtlp: tuple[MelAxis, float] | None = None,
        loss_normalization: str = "token",
    ) -> None:
        self.network, self.model, self.optimizer = network, model, optimizer
        self.device, self.grad_clip, self.dtype = device, grad_clip, autocast_dtype
        self.spec_augment = spec_augment
        self.distributed = distributed
        use_scaler = autocast_dtype == torch.float16 and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
        # a frequency mask covers the same bins in the static and every delta block
        self.delta_blocks = delta_blocks
        self.weight_noise = weight_noise
        self.vtlp = vtlp
        if loss_normalization not in ("token", "utterance"):
            raise ValueError(f"loss_normalization must be token or utterance: {loss_normalization}")
        self.loss_normalization = loss_normalization

    def augment(self, feats: torch.Tensor, lengths: torch.Tensor, seed: int | None) -> torch.Tensor:
        if seed is None:
            return feats
        if self.vtlp is not None:
            # its own stream, so that turning VTLP on leaves the SpecAugment masks as they were
            warp_generator = torch.Generator(device="cpu").manual_seed(seed ^ 0x7F4A7C15)
            axis, max_warp = self.vtlp
            feats, _ = vtlp(feats, axis, max_warp, warp_generator, blocks=self.delta_blocks)
        if self.spec_augment is None:
            return feats

        generator = torch.Generator(device="cpu").manual_seed(seed)
        return spec_augment(feats, lengths, self.spec_augment, generator, blocks=self.delta_blocks)

    def _all_processes(self, bad: bool, utterances: int) -> tuple[bool, int]:
        """Whether any process's loss is bad, and the utterances of all the processes'
        batches: one all-reduce (a world of one: the values as they are)."""
        if not self.distributed:
            return bad, utterances

        values = torch.tensor(
            [1.0 if bad else 0.0, float(utterances)], dtype=torch.float64, device=self.device
        )
        dist.all_reduce(values)
        return bool(values[0].item() > 0), int(values[1].item())

    def _divisor(self, num_tokens: int, utterances: int) -> float:
        """What this process's summed loss is divided by for the backward pass."""
        if self.loss_normalization == "token":
            return float(max(num_tokens, 1))  # this process's own tokens, as ever
        # DistributedDataParallel divides the summed gradients by the number of processes:
        # multiplying that back makes the step the gradient of the loss of every process's
        # utterances over their count
        world = dist.get_world_size() if self.distributed else 1
        return max(utterances, 1) / world

    def __call__(
        self,
        feats: torch.Tensor,
        lengths: torch.Tensor,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
        augment_seed: int | None = None,
    ) -> StepResult:
        feats = self.augment(feats, lengths, augment_seed)
        feats = feats.to(self.device, non_blocking=True)
        lengths = lengths.to(self.device, non_blocking=True)
        num_tokens = int(target_lengths.sum())
        noise_std = self.weight_noise if augment_seed is not None else 0.0
        # the gradient is taken at the noisy weights; leaving the block restores the clean ones,
        # which the optimizer then updates
        with noisy_weights(self.model.parameters(), noise_std, augment_seed or 0):
            with autocast(self.device, self.dtype):
                log_probs, out_lengths = self.network(feats, lengths)
            # CTC in fp32: its log-space sums lose too much in 16 bits
            loss = ctc_loss(log_probs.float(), out_lengths, targets.to(self.device), target_lengths)
            bad, utterances = self._all_processes(
                not bool(torch.isfinite(loss)), int(target_lengths.numel())
            )
            if bad:
                # zero_infinity covers impossible alignments; a NaN means diverged numerics,
                # and one bad step would poison the weights for good
                return StepResult(None, num_tokens, "loss")
            divisor = self._divisor(num_tokens, utterances)
            self.optimizer.zero_grad(set_to_none=True)
            # only the gradient is normalised here; the result below carries the summed loss
            # and the token count, so the logged losses stay per token
            self.scaler.scale(loss / divisor).backward()
        self.scaler.unscale_(self.optimizer)
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        # with no clipping an infinite limit still returns the norm the NaN guard needs
        limit = self.grad_clip if self.grad_clip > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(parameters, limit))
        if not math.isfinite(norm) and not self.scaler.is_enabled():
            self.optimizer.zero_grad(set_to_none=True)
            return StepResult(None, num_tokens, "gradient", grad_norm=norm)
        # with fp16 the scaler skips inf/NaN gradients itself and lowers its scale
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return StepResult(float(loss.detach()), num_tokens, grad_norm=norm)
