"""``asr average EXP_DIR OUT.pt``: average the weights of several epochs into one model package."""

from __future__ import annotations

import argparse

from asr.training.average import average_checkpoints


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "average",
        help=help,
        description="Average the weights of N epochs of a training run (EXP_DIR/epoch-K.pt) "
        "into OUT, a model package like final.pt, as ESPnet's average_checkpoints and Kaldi's "
        "nnet3-average: the N epochs with the lowest dev loss (or dev TER) in "
        "EXP_DIR/history.tsv, or the last N. Integer buffers and the rest of the package come "
        "from the newest epoch averaged. Fewer than N epoch files is an error.",
    )
    parser.add_argument("exp_dir", metavar="EXP_DIR", help="training directory (asr train)")
    parser.add_argument("out", metavar="OUT.pt", help="the averaged model package to write")
    parser.add_argument(
        "--num", type=int, default=5, metavar="N", help="epochs to average (default 5)"
    )
    add_epoch_selection(parser)
    parser.set_defaults(func=run)


def add_epoch_selection(parser: argparse.ArgumentParser) -> None:
    """--select and --metric: which epochs to average (shared with ``asr package``)."""
    parser.add_argument(
        "--select",
        choices=("best", "last"),
        default="best",
        help="best: the N epochs with the lowest --metric; last: the N newest (default best)",
    )
    parser.add_argument(
        "--metric",
        choices=("dev_loss", "dev_ter"),
        default="dev_loss",
        help="what 'best' ranks by (default dev_loss)",
    )


def run(args: argparse.Namespace) -> int:
    report = average_checkpoints(
        args.exp_dir, args.out, num=args.num, select=args.select, metric=args.metric
    )
    print(report.line())
    return 0
