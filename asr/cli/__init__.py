"""The ``asr`` command line: a thin layer that parses arguments and calls the library.

Each subcommand lives in ``asr/cli/<name>.py`` with two functions: ``add_parser(subparsers, help)``
registers its arguments and sets ``func``; the function it sets receives the parsed namespace and
returns an exit status. Library errors (``AsrError``) are printed as one line, never a traceback.

Only the subcommand being run is imported (``importlib``, by name from ``COMMANDS``): the
modules import the library at their top, and ``asr train`` needs torch while ``asr score`` and
``asr --help`` should start in a fraction of a second without it. The one-line help of each
subcommand is therefore written here, where ``asr --help`` reads it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from types import FrameType

from asr import __version__
from asr.errors import AsrError

COMMANDS: dict[str, str] = {
    "prepare": "make Kaldi data directories from a corpus",
    "data": "check, repair, split, subset, combine or augment Kaldi data directories",
    "features": "compute fbank/MFCC features (Kaldi ark/scp) and CMVN stats for a data dir",
    "train": "train a CTC model",
    "average": "average the weights of the best or last N epochs into one model package",
    "package": "write the deployable model package of a run (averaged epochs, lexicon, LM)",
    "info": "print what a model package is: its model card (architecture, data, results)",
    "export": "export a model package as TorchScript or ONNX (features in, log-probs out)",
    "lexicon": "make a pronunciation lexicon (phones from CMUdict + letter-to-sound, chars, BPE)",
    "bpe": "train a sentencepiece (unigram or BPE) subword model, segment transcripts",
    "lm": "train, convert, evaluate and check KenLM n-gram language models",
    "decode": "decode a data directory's features into a Kaldi text file of hypotheses",
    "transcribe": "transcribe audio files with a model package",
    "score": "score hypotheses against references (sclite's numbers, Kaldi's %%WER line)",
    "rover": "combine several systems' hypotheses by word voting (NIST ROVER)",
    "plot": "plot a metric of several experiments against the epoch, in one PNG",
}


def requested_command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv``: the first argument that is not an option (the top-level
    options, ``-v`` and ``--version``, take no value)."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: the full parser of the subcommand it names (of every subcommand
    when ``argv`` is None), and a one-line entry for each of the others."""
    parser = argparse.ArgumentParser(
        prog="asr", description="BiLSTM-CTC speech recognition toolkit"
    )
    parser.add_argument("--version", action="version", version=f"asr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = set(COMMANDS) if argv is None else {requested_command(argv)}
    for name, help in COMMANDS.items():
        if name in wanted:
            importlib.import_module(f"asr.cli.{name}").add_parser(subparsers, help)
        else:
            subparsers.add_parser(name, help=help, add_help=False)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised where the process is so that every ``finally`` and temp-file cleanup runs.

    Not a KeyboardInterrupt subclass: library code that treats Ctrl-C specially should not
    mistake a scheduler's kill for a user's key press; both end the command the same way.
    """


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    # Python's default SIGTERM ends the process at once, skipping the cleanup that removes
    # half-written temp files; a batch scheduler's kill deserves the same care as Ctrl-C.
    signal.signal(signal.SIGTERM, _raise_terminated)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args) or 0)
    except AsrError as exc:
        print(f"asr {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"asr {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"asr {args.command}: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:
        # the reader stopped early (asr score ... | head -1): not an error of ours; point
        # stdout at devnull so the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
