"""``asr info MODEL.pt``: print a model package's model card."""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.nn.card import model_card
from asr.nn.package import load_package


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "info",
        help=help,
        description="Print MODEL's model card (Markdown with Hugging Face's YAML front matter): "
        "architecture and parameter count, units, feature config, the decoder it transcribes "
        "with, training data and hours, the results its recipe recorded with their test sets, "
        "precision, asr version, the command that trained it and the licence of its data. "
        "'asr package --card' writes the same text as MODEL_CARD.md beside a package.",
    )
    parser.add_argument("model", metavar="MODEL", help="model package, e.g. exp/word/final.pt")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    package = load_package(args.model)
    print(model_card(package, Path(args.model).name), end="")
    return 0
