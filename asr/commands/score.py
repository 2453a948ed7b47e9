"""``asr score REF HYP``: print Kaldi's %WER/%SER lines for two Kaldi text files."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score hypotheses against references (Kaldi %%WER line)",
        description=(
            "Align each hypothesis with its reference (minimal edit distance) and print Kaldi "
            "compute-wer's lines: %WER (or %PER/%CER), %SER and the number scored. "
            "REF and HYP are Kaldi text files: utterance id, then the words; an id alone is "
            "an empty transcript."
        ),
    )
    parser.add_argument("ref", metavar="REF", help="reference Kaldi text file")
    parser.add_argument("hyp", metavar="HYP", help="hypothesis Kaldi text file")
    parser.add_argument(
        "--metric",
        choices=("WER", "PER", "CER"),
        default="WER",
        help="WER: words; PER: phones (whitespace-separated tokens, like WER, printed as "
        "%%PER); CER: characters, the spaces between words included (default: WER)",
    )
    parser.add_argument(
        "--alignments",
        metavar="FILE",
        help="write per-utterance alignments (sclite .pra layout) to FILE",
    )
    parser.add_argument(
        "--missing-as-deletions",
        action="store_true",
        help="score reference utterances absent from HYP as empty hypotheses "
        "(default: list them and stop)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr import score

    refs = score.read_transcripts(args.ref)
    hyps = score.read_transcripts(args.hyp)
    result = score.wer(
        refs,
        hyps,
        unit="char" if args.metric == "CER" else "word",
        missing="deletions" if args.missing_as_deletions else "error",
        ref_name=args.ref,
        hyp_name=args.hyp,
    )
    for line in score.summary_lines(result, args.metric):
        print(line)
    if args.alignments:
        score.write_alignments(result, args.alignments, args.metric)
        log.info("wrote alignments of %d utterances to %s", result.sentences, args.alignments)
    return 0
