"""``asr lexicon prepare``: a pronunciation lexicon for a word list, in a model's units."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from asr.errors import ConfigError
from asr.fileio import atomic_write, read_text_lines
from asr.units.bpe import BpeModel
from asr.units.lexicon import (
    NOT_WORDS,
    LexiconReport,
    bpe_lexicon,
    cmudict_lexicon,
    spelling_lexicon,
    write_lexicon,
)


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "lexicon",
        help=help,
        description="Pronunciation lexicons for lexicon-constrained decoding.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    prepare = actions.add_parser(
        "prepare",
        help="write OUT_DIR/lexicon.txt and OUT_DIR/oov.txt for a word list",
        description="Write OUT_DIR/lexicon.txt (Kaldi 'word u1 u2 ...') for the words of WORDS "
        "in the model's units: phones (CMUdict, stress removed; words it lacks by flite's "
        "letter-to-sound, cached in OUT_DIR/g2p_cache.txt), characters (the spelling) or "
        "sentencepiece pieces. OUT_DIR/oov.txt lists the words CMUdict lacks, with their "
        "counts and what became of them (g2p, or none: left out, the decoder maps them to "
        "<unk>). Markers such as <unk>, <s>, </s> get no entry.",
    )
    prepare.add_argument(
        "words",
        metavar="WORDS",
        nargs="+",
        help="a word list (one word a line; a second field is ignored), or with --from-text "
        "Kaldi text files whose words are collected",
    )
    prepare.add_argument("out_dir", metavar="OUT_DIR")
    prepare.add_argument("--units", choices=("phone", "char", "bpe"), required=True)
    prepare.add_argument("--bpe-model", metavar="M", help="sentencepiece model (--units bpe)")
    prepare.add_argument(
        "--phone-set",
        choices=("cmu", "lee-hon39"),
        default="cmu",
        help="cmu: CMUdict's 39 phones; lee-hon39: folded into the synth recipes' 39-phone set "
        "(default cmu)",
    )
    prepare.add_argument(
        "--g2p",
        choices=("flite", "none"),
        default="flite",
        help="letter-to-sound for words not in CMUdict (default flite: Debian package flite)",
    )
    prepare.add_argument(
        "--from-text",
        action="store_true",
        help="WORDS are Kaldi text files (utt word word ...): use their words, sorted",
    )
    prepare.set_defaults(func=run_prepare)


def _read_words(paths: list[str], from_text: bool) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in paths:
        for line in read_text_lines(path):
            fields = line.split()
            if from_text:
                counts.update(fields[1:])
            elif fields:
                counts[fields[0]] += 1
    return counts


def run_prepare(args: argparse.Namespace) -> int:
    out_dir = Path(args.out_dir)
    counts = _read_words(args.words, args.from_text)
    words = sorted(counts) if args.from_text else list(counts)
    report: LexiconReport | None = None
    if args.units == "phone":
        lexicon, report = cmudict_lexicon(
            words, phone_set=args.phone_set, g2p=args.g2p, cache_dir=out_dir
        )
        oov = [(w, "g2p") for w in report.from_g2p] + [(w, "none") for w in report.missing]
    elif args.units == "char":
        lexicon = spelling_lexicon(words)
        oov = []
    else:
        if not args.bpe_model:
            raise ConfigError("--units bpe needs --bpe-model (a sentencepiece .model file)")

        lexicon = bpe_lexicon(words, BpeModel(args.bpe_model))
        oov = []
    if not lexicon:
        raise ConfigError(f"{', '.join(args.words)}: no word got a pronunciation")
    # any other word left out (a BPE word with a character the model never saw)
    listed = {w for w, _ in oov}
    oov += [
        (w, "none") for w in words if w not in lexicon and w not in NOT_WORDS and w not in listed
    ]
    write_lexicon(lexicon, out_dir / "lexicon.txt")
    oov.sort(key=lambda item: (-counts[item[0]], item[0]))
    with atomic_write(out_dir / "oov.txt") as handle:
        for word, how in oov:
            handle.write(f"{word} {counts[word]} {how}\n")
    if report is not None:
        print(report.summary())
    elif oov:
        print(f"{len(oov)} of {len(words)} words without a pronunciation (see oov.txt)")
    print(
        f"wrote {out_dir / 'lexicon.txt'}: {len(lexicon)} words, {lexicon.num_entries} "
        f"pronunciations, {len(lexicon.units())} {args.units} units"
    )
    return 0
