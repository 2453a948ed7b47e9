"""``asr package EXP_DIR OUT.pt``: the deployable model package of a training run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from asr.cli.average import add_epoch_selection
from asr.decoding.datadir import read_tuning
from asr.errors import ConfigError
from asr.fileio import atomic_write
from asr.nn.card import model_card, read_score_line
from asr.training.average import package_experiment

CARD_NAME = "MODEL_CARD.md"


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "package",
        help=help,
        description="Write OUT, one model package with everything inference needs: the weights "
        "(the mean of the best or last N epochs of EXP_DIR, as asr average; N=1 and best is the "
        "best epoch, as final.pt), model and feature config, tokens and CMVN stats. A lexicon "
        "and an LM are recorded by path (with size and SHA-256), or stored in the file with "
        "--embed. The file loads with torch.load(weights_only=True). With a lexicon and/or LM, "
        "'asr transcribe' decodes with them by default, using the LM weight and word score "
        "of --tuned-on. --result, --license and --language go into the model card "
        "('asr info', --card).",
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
    parser.add_argument(
        "--tuned-on",
        metavar="DEV_DECODE_DIR",
        help="record the LM weight and word score the grid chose there (its best.json, "
        "written by asr decode --lm-weight/--word-score grids) for transcription",
    )
    parser.add_argument(
        "--beam-size",
        type=int,
        default=None,
        help="record the beam of the lexicon + LM search (default 50, asr decode's)",
    )
    parser.add_argument(
        "--result",
        action="append",
        default=[],
        metavar="TEST_SET=SCORE_FILE",
        help="record a result for the model card: the first %%WER/%%PER line of an asr score "
        "output, under the test set's name (repeatable)",
    )
    parser.add_argument("--license", default=None, help="the licence of the training data")
    parser.add_argument("--language", default=None, help="the language (default en)")
    parser.add_argument(
        "--card", action="store_true", help=f"also write {CARD_NAME} beside OUT (asr info's text)"
    )
    parser.set_defaults(func=run)


def _metadata(args: argparse.Namespace) -> dict[str, Any]:
    """What the model card and transcription read from the package's ``extra``."""
    if args.beam_size is not None and args.beam_size < 1:
        raise ConfigError(f"--beam-size {args.beam_size}: must be at least 1")
    searching = args.lexicon is not None or args.lm is not None
    if (args.tuned_on or args.beam_size) and not searching:
        raise ConfigError("--tuned-on and --beam-size describe a search: give --lexicon or --lm")
    metadata: dict[str, Any] = {}
    if searching:
        decoder: dict[str, Any] = {"beam_size": args.beam_size or 50}
        if args.tuned_on:
            tuning = read_tuning(args.tuned_on)
            decoder.update(
                lm_weight=tuning["lm_weight"],
                word_score=tuning["word_score"],
                tuned_on=args.tuned_on,
            )
            if "wer" in tuning:
                decoder["dev_wer"] = tuning["wer"]
        metadata["decoder"] = decoder
    results = []
    for spec in args.result:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--result {spec}: expected TEST_SET=SCORE_FILE")
        results.append({"test_set": name, **read_score_line(path)})
    if results:
        metadata["results"] = results
    if args.license:
        metadata["license"] = args.license
    if args.language:
        metadata["language"] = args.language
    return metadata


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
        metadata=_metadata(args),
    )
    stored = [
        f"{name} {'embedded' if args.embed else 'by path'}"
        for name in ("lexicon", "lm")
        if name in package.extra and getattr(args, name) is not None
    ]
    how = f"{args.select} {len(epochs)}" + (f" by {args.metric}" if args.select == "best" else "")
    extras = f"; {', '.join(stored)}" if stored else ""
    print(f"packaged epochs {', '.join(map(str, epochs))} ({how}) into {args.out}{extras}")
    if args.card:
        card = Path(args.out).parent / CARD_NAME
        with atomic_write(card) as handle:
            handle.write(model_card(package, Path(args.out).name))
        print(f"model card: {card}")
    return 0
