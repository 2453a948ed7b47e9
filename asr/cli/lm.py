"""``asr lm``: n-gram language models with KenLM: train (lmplz), binary, perplexity, check."""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.lm.arpa import check_arpa, normalize_arpa
from asr.lm.kenlm import perplexity, to_binary, train_arpa


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "lm",
        help=help,
        description="Word (or token) n-gram language models with KenLM's tools, built by "
        "tools/install_kenlm.sh (make setup) and found in $ASR_KENLM_BIN, tools/kenlm/bin or "
        "PATH.",
    )
    actions = parser.add_subparsers(dest="lm_command", required=True, metavar="ACTION")

    train = actions.add_parser(
        "train",
        help="train a modified Kneser-Ney ARPA model with lmplz",
        description="Stream TEXT files (one sentence per line; gzip/bzip2/xz read as such; Kaldi "
        "text files with --skip-ids) into lmplz and write OUT.arpa atomically, then check it. "
        "lmplz prints its own progress; a summary line ends the run.",
    )
    train.add_argument("texts", nargs="+", metavar="TEXT", help="training text file(s)")
    train.add_argument("out", metavar="OUT.arpa", help="the ARPA file to write")
    train.add_argument("--order", type=int, required=True, metavar="N", help="n-gram order (1-6)")
    train.add_argument(
        "--prune",
        type=int,
        nargs="+",
        default=[],
        metavar="C",
        help="drop n-grams seen at most C times, one threshold per order, non-decreasing, the "
        "first 0 (e.g. 0 0 1: singleton trigrams and above; give it after OUT.arpa); default: no "
        "pruning",
    )
    train.add_argument(
        "--skip-ids", action="store_true", help="drop the first field of each line (Kaldi text)"
    )
    train.add_argument(
        "--characters",
        action="store_true",
        help="an LM over characters (each sentence spelled out, <space> between words): the "
        "token LM of a char model's lexicon-free search (asr decode --token-lm)",
    )
    train.add_argument(
        "--limit-vocab",
        metavar="WORDS",
        help="a word list (whitespace-separated): n-grams with other words are pruned",
    )
    train.add_argument(
        "--skip-symbols",
        action="store_true",
        help="treat <s>, </s> and <unk> in the text as whitespace (lmplz refuses them otherwise)",
    )
    train.add_argument(
        "--no-discount-fallback",
        dest="discount_fallback",
        action="store_false",
        help="fail, as lmplz does by default, where Kneser-Ney discounts cannot be estimated "
        "(small corpora); by default lmplz's fallback discounts are used",
    )
    train.add_argument(
        "--memory",
        default="20%",
        metavar="SIZE",
        help="lmplz's sorting memory, like GNU sort (20%%, 2G; default 20%%)",
    )
    train.add_argument(
        "--binary", metavar="OUT.bin", help="also write a KenLM binary model (see --type)"
    )
    _add_type(train)
    train.set_defaults(func=run_train)

    binary = actions.add_parser(
        "binary",
        help="convert an ARPA file to KenLM's binary format (build_binary)",
        description="Check ARPA and convert it with build_binary into OUT.bin (loads much faster).",
    )
    binary.add_argument("arpa", metavar="ARPA", help="ARPA file (plain or compressed)")
    binary.add_argument("out", metavar="OUT.bin", help="the binary model to write")
    _add_type(binary)
    binary.set_defaults(func=run_binary)

    perplexity = actions.add_parser(
        "perplexity",
        help="perplexity of an LM on a text (query)",
        description="Score TEXT (one sentence per line, each with its </s>) with LM (ARPA or "
        "KenLM binary) and print 'perplexity P (N sentences, W words, K OOVs)'; OOV words score "
        "as <unk>.",
    )
    perplexity.add_argument("lm", metavar="LM", help="ARPA file or KenLM binary model")
    perplexity.add_argument("text", metavar="TEXT", help="text file")
    perplexity.add_argument(
        "--skip-ids", action="store_true", help="drop the first field of each line (Kaldi text)"
    )
    perplexity.add_argument(
        "--characters", action="store_true", help="spell TEXT out in characters, as train does"
    )
    perplexity.set_defaults(func=run_perplexity)

    check = actions.add_parser(
        "check",
        help="validate an ARPA file",
        description="Read ARPA (plain or compressed) once and report its order and n-gram counts, "
        "or the first problem as FILE:LINE: problem (exit status 1).",
    )
    check.add_argument("arpa", metavar="ARPA", help="ARPA file")
    check.set_defaults(func=run_check)

    normalize = actions.add_parser(
        "normalize",
        help="rewrite an ARPA file in the tab-separated layout KenLM loads",
        description="Read ARPA (plain or compressed; fields separated by any whitespace, as "
        "SRILM and older toolkits allow) and write OUT.arpa with tabs where KenLM needs them, "
        "for the flashlight decoder and build_binary.",
    )
    normalize.add_argument("arpa", metavar="ARPA", help="ARPA file")
    normalize.add_argument("out", metavar="OUT.arpa", help="the plain ARPA file to write")
    normalize.set_defaults(func=run_normalize)


def _add_type(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--type",
        choices=("probing", "trie"),
        default="probing",
        help="binary data structure: probing (fastest, default) or trie (smallest)",
    )


def run_train(args: argparse.Namespace) -> int:
    summary = train_arpa(
        args.texts,
        args.out,
        order=args.order,
        prune=args.prune,
        discount_fallback=args.discount_fallback,
        memory=args.memory,
        skip_ids=args.skip_ids,
        limit_vocab=args.limit_vocab,
        skip_symbols=args.skip_symbols,
        progress=True,
        characters=args.characters,
    )
    if args.binary:
        # the ARPA file was just checked by train_arpa
        to_binary(summary.path, args.binary, kind=args.type, check=False)
        print(summary.line() + f"; binary ({args.type}) {args.binary}")
    else:
        print(summary.line())
    return 0


def run_binary(args: argparse.Namespace) -> int:
    out = to_binary(args.arpa, args.out, kind=args.type)
    size = Path(out).stat().st_size
    print(f"wrote {out} ({args.type}, {size / 1e6:.1f} MB) from {args.arpa}")
    return 0


def run_perplexity(args: argparse.Namespace) -> int:
    print(perplexity(args.lm, args.text, skip_ids=args.skip_ids, characters=args.characters).line())
    return 0


def run_check(args: argparse.Namespace) -> int:
    print(check_arpa(args.arpa).line())
    return 0


def run_normalize(args: argparse.Namespace) -> int:
    info = normalize_arpa(args.arpa, args.out)
    counts = " ".join(f"{n}={c}" for n, c in enumerate(info.counts, 1))
    print(f"wrote {args.out}: order {info.order}, ngram {counts}")
    return 0
