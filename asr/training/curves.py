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


def plot_runs(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | os.PathLike,
    metric: str = "dev_ter",
    ylabel: str = "dev token error rate (%)",
) -> None:
    """One PNG with ``metric`` per epoch of several runs (name -> history), one line each."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        for name, history in runs.items():
            missing = [h.get("epoch") for h in history if metric not in h]
            if missing:
                raise KeyError(f"run {name}: no {metric} at epoch {missing[0]}")
            # forward-only runs dashed, so the bidirectional/unidirectional pairs stand out
            style = "--" if "uni" in name or "forward" in name else "-"
            ax.plot([int(h["epoch"]) for h in history], [h[metric] for h in history], style,
                    marker="o", markersize=3, label=name)  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=100)
    finally:
        plt.close(fig)
