"""``asr plot``: the dev curves of several training runs in one PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.errors import DataDirError
from asr.training.curves import plot_runs
from asr.training.history import read_history


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "plot",
        help=help,
        description="Read EXP_DIR/history.tsv of each experiment and draw METRIC per epoch, "
        "one line per experiment named by its folder (or NAME=EXP_DIR).",
    )
    parser.add_argument("out", metavar="OUT.png")
    parser.add_argument("exp_dirs", metavar="[NAME=]EXP_DIR", nargs="+")
    parser.add_argument(
        "--metric",
        default="dev_ter",
        choices=("dev_ter", "dev_loss", "train_loss"),
        help="column of history.tsv (default dev_ter)",
    )
    parser.set_defaults(func=run)


_LABELS = {
    "dev_ter": "dev token error rate (%)",
    "dev_loss": "dev CTC loss per token",
    "train_loss": "train CTC loss per token",
}


def run(args: argparse.Namespace) -> int:
    runs = {}
    for item in args.exp_dirs:
        name, sep, folder = item.partition("=")
        if not sep:
            name, folder = Path(item).name, item
        history_path = Path(folder) / "history.tsv"
        if not history_path.is_file():
            raise DataDirError(f"{history_path}: file not found (not a training run?)")
        runs[name] = read_history(history_path)
    plot_runs(runs, args.out, args.metric, _LABELS[args.metric])
    print(f"{args.out}: {len(runs)} runs")
    return 0
