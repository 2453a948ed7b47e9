"""``asr bpe``: train a sentencepiece subword model and segment Kaldi text files with it."""

from __future__ import annotations

import argparse

from asr.units.bpe import BpeModel, encode_text_file, train_bpe


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "bpe",
        help=help,
        description="Subword units for the 'bpe' token unit: 'train' learns a sentencepiece "
        "model from transcripts, 'encode' rewrites a Kaldi text file as space-separated pieces "
        "(a piece starting with ▁ starts a word), which 'asr train' with unit: bpe trains on.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    train = actions.add_parser(
        "train",
        help="learn a sentencepiece model (OUT_PREFIX.model, OUT_PREFIX.vocab)",
        description="Train a sentencepiece model on Kaldi text files (the utterance id, the "
        "first field, is skipped; --no-skip-ids for plain text). Deterministic: the same text "
        "gives the same model. Every character of the text is covered; <unk> is the only "
        "special piece and counts in --vocab-size.",
    )
    train.add_argument("texts", metavar="TEXT", nargs="+", help="Kaldi text file(s)")
    train.add_argument("out_prefix", metavar="OUT_PREFIX", help="e.g. data/lang_bpe/bpe500")
    train.add_argument(
        "--vocab-size", type=int, required=True, metavar="N", help="pieces, <unk> included"
    )
    train.add_argument(
        "--model-type",
        choices=("unigram", "bpe"),
        default="unigram",
        help="sentencepiece algorithm (default unigram)",
    )
    train.add_argument(
        "--no-skip-ids",
        dest="skip_ids",
        action="store_false",
        help="the text files have no utterance ids (plain text, one sentence a line)",
    )
    train.add_argument(
        "--threads",
        type=int,
        default=1,
        help="training threads (default 1: more is faster but may change the pieces)",
    )
    train.set_defaults(func=run_train)

    encode = actions.add_parser(
        "encode",
        help="rewrite a Kaldi text file as sentencepiece pieces",
        description="Segment IN_TEXT (utt word word ...) into OUT_TEXT (utt piece piece ...) "
        "with MODEL; the utterance ids are kept.",
    )
    encode.add_argument("model", metavar="MODEL", help="sentencepiece .model file")
    encode.add_argument("in_text", metavar="IN_TEXT")
    encode.add_argument("out_text", metavar="OUT_TEXT")
    encode.add_argument(
        "--no-skip-ids",
        dest="skip_ids",
        action="store_false",
        help="plain text lines without utterance ids",
    )
    encode.set_defaults(func=run_encode)


def run_train(args: argparse.Namespace) -> int:
    path = train_bpe(
        args.texts,
        args.out_prefix,
        args.vocab_size,
        model_type=args.model_type,
        skip_ids=args.skip_ids,
        num_threads=args.threads,
    )
    model = BpeModel(path)
    print(f"wrote {path} ({len(model)} {args.model_type} pieces)")
    return 0


def run_encode(args: argparse.Namespace) -> int:
    report = encode_text_file(args.model, args.in_text, args.out_text, skip_ids=args.skip_ids)
    line = f"wrote {args.out_text}: {report.lines} lines, {report.pieces} pieces"
    if report.unknown:
        line += f", {report.unknown} unknown to the model (characters it never saw)"
    print(line)
    return 0
