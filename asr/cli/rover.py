"""``asr rover HYP HYP ... -o OUT``: combine systems' hypotheses by word voting (NIST ROVER)."""

from __future__ import annotations

import argparse

from asr.score.rover import combine_transcripts
from asr.score.scoring import read_transcripts, write_transcripts


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "rover",
        help=help,
        description=(
            "Combine the hypotheses of several systems (Kaldi text files with the same "
            "utterance ids) into one, as NIST SCTK's rover with -m meth1 -a 1: the words are "
            "aligned into one word network and each slot takes the word most systems put "
            "there (nothing, if most put nothing). A tie goes to the earliest of the tied "
            "systems in the order given. Writes OUT as Kaldi text."
        ),
    )
    parser.add_argument("hyps", nargs="+", metavar="HYP", help="hypothesis files, by priority")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="combined text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    systems = [read_transcripts(path) for path in args.hyps]
    combined, ties = combine_transcripts(systems, names=args.hyps)
    write_transcripts(args.output, combined)
    words = sum(len(text.split()) for text in combined.values())
    print(
        f"asr rover: {len(systems)} system{'s' * (len(systems) > 1)}, {len(combined)} "
        f"utterances, {words} words "
        f"-> {args.output}; {ties} slot(s) decided by a tie (to the earliest system)"
    )
    return 0
