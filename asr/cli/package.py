"""``asr package EXP_DIR OUT.pt``: the deployable model package of a training run."""

from __future__ import annotations

import argparse

from asr.cli.average import add_epoch_selection
from asr.training.average import package_experiment


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "package",
        help=help,
        description="Write OUT, one model package with everything inference needs: the weights "
        "(the mean of the best or last N epochs of EXP_DIR, as asr average; N=1 and best is the "
        "best epoch, as final.pt), model and feature config, tokens and CMVN stats. A lexicon "
        "and an LM are recorded by path (with size and SHA-256), or stored in the file with "
        "--embed. The file loads with torch.load(weights_only=True).",
    )
    parser.add_argument("exp_dir", metavar="EXP_DIR", help="training directory (asr train)")
    parser.add_argument("out", metavar="OUT.pt", help="the model package to write")
    parser.add_argument(
        "--average", type=int, default=1, metavar="N", help="epochs to average (default 1)"
    )
    add_epoch_selection(parser)
    parser.add_argument("--lexicon", metavar="FILE", help="a pronunciation lexicon to record")
    parser.add_argument("--lm", metavar="FILE", help="a language model file to record")
    parser.add_argument(
        "--embed",
        action="store_true",
        help="store the lexicon and LM contents in the package, not just their paths",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    package, epochs = package_experiment(
        args.exp_dir,
        args.out,
        average=args.average,
        select=args.select,
        metric=args.metric,
        lexicon=args.lexicon,
        lm=args.lm,
        embed=args.embed,
    )
    stored = [
        f"{name} {'embedded' if args.embed else 'by path'}"
        for name in ("lexicon", "lm")
        if name in package.extra and getattr(args, name) is not None
    ]
    how = f"{args.select} {len(epochs)}" + (f" by {args.metric}" if args.select == "best" else "")
    extras = f"; {', '.join(stored)}" if stored else ""
    print(f"packaged epochs {', '.join(map(str, epochs))} ({how}) into {args.out}{extras}")
    return 0
