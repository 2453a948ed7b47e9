"""Plot the training curves (train/dev loss and dev token error rate per epoch) to a PNG."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from asr.fileio import atomic_write


def plot_curves(history: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Write ``path`` (PNG): loss on the left, dev error rate (%) on the right; atomic."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot's import
    from matplotlib import pyplot as plt

    epochs = [int(h["epoch"]) for h in history]
    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
    try:
        ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
        ax_loss.plot(epochs, [h["dev_loss"] for h in history], "s-", label="dev")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("CTC loss per token")
        ax_loss.legend()
        ax_loss.grid(alpha=0.3)
        ax_err.plot(epochs, [h["dev_ter"] for h in history], "s-", color="tab:red")
        ax_err.set_xlabel("epoch")
        ax_err.set_ylabel("dev token error rate (%)")
        ax_err.grid(alpha=0.3)
        for ax in (ax_loss, ax_err):
            ax.xaxis.get_major_locator().set_params(integer=True)
        fig.tight_layout()
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=100)
    finally:
        plt.close(fig)
