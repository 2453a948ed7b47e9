"""TensorBoard event files of a training run, in ``EXP_DIR/tensorboard/`` (rank 0 writes them).

The x axis of every scalar is the global step: the optimisation steps (weight updates) of the
run so far, 1 for the first. A batch skipped for a non-finite loss or gradient updates nothing,
so it is no step; it is counted in the next step's ``train/skipped_batches``.

Per step: ``train/loss`` (the batch's CTC loss per token; under torchrun rank 0's batch),
``train/lr``, ``train/grad_norm`` (the global gradient norm before clipping) and
``train/skipped_batches`` (batches skipped so far). Per epoch, at its last step:
``epoch/train_loss``, ``dev/loss`` and ``dev/ter`` (%), the numbers ``history.tsv`` holds.

A resumed run goes on from the step count in its checkpoint. The run it resumes may have logged
steps after that checkpoint before it was killed; the writer's ``purge_step`` (the first step
this run logs) makes TensorBoard's reader drop the events read before it from that step on, so
each tag has exactly one value per step. A fresh run purges from step 1: whatever an earlier run
without a checkpoint left in the directory.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from asr.training.expdir import writing

TENSORBOARD_DIR = "tensorboard"
STEP_TAGS = ("train/loss", "train/lr", "train/grad_norm", "train/skipped_batches")
# tag -> the history record's key
EPOCH_TAGS = {"epoch/train_loss": "train_loss", "dev/loss": "dev_loss", "dev/ter": "dev_ter"}


class TensorBoardLog:
    """The scalars of one run (or of its resumed part) in ``log_dir``.

    ``start_step`` is the number of steps taken before this process started: 0 for a fresh run,
    the checkpoint's count when resuming.
    """

    def __init__(self, log_dir: Path, start_step: int = 0) -> None:
        _wait_for_a_new_second(log_dir)
        with writing(log_dir):
            self.writer = SummaryWriter(str(log_dir), purge_step=start_step + 1)

    def step(self, step: int, loss: float, lr: float, grad_norm: float, skipped: int) -> None:
        """One optimisation step; ``skipped`` counts the run's skipped batches so far."""
        for tag, value in zip(STEP_TAGS, (loss, lr, grad_norm, skipped), strict=True):
            self.writer.add_scalar(tag, value, step)

    def epoch(self, step: int, record: Mapping[str, float]) -> None:
        """One epoch's history record, at the epoch's last step."""
        for tag, key in EPOCH_TAGS.items():
            self.writer.add_scalar(tag, record[key], step)
        # the epoch's checkpoint comes next: what it covers should be on disk by then
        self.writer.flush()

    def flush(self) -> None:
        """Write out what is buffered: a mid-epoch checkpoint comes next."""
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def _wait_for_a_new_second(log_dir: Path) -> None:
    """TensorBoard reads a directory's event files in name order, and a name starts with the
    second its file was made in (then host, pid, counter: no order between runs). purge_step
    only drops events read before it, so a resumed run's file must sort after the files of
    the run it resumes: when one of them was made in this very second, wait for the next."""
    made = [p.name.split(".")[3] for p in log_dir.glob("events.out.tfevents.*")]
    latest = max((int(m) for m in made if m.isdigit()), default=None)
    if latest is not None:
        wait = latest + 1 - time.time()
        if 0 < wait <= 2:  # a file from a clock far ahead cannot be waited for
            time.sleep(wait)
