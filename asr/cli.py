"""The ``asr`` command line: a thin layer that parses arguments and calls the library.

Each subcommand lives in ``asr/commands/<name>.py`` with two functions: ``add_parser(subparsers)``
registers its arguments and sets ``func``; the function it sets receives the parsed namespace and
returns an exit status. Library errors (``AsrError``) are printed as one line, never a traceback.
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

COMMANDS = (
    "prepare",
    "data",
    "features",
    "train",
    "average",
    "package",
    "export",
    "lexicon",
    "bpe",
    "lm",
    "decode",
    "transcribe",
    "score",
    "plot",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr", description="BiLSTM-CTC speech recognition toolkit"
    )
    parser.add_argument("--version", action="version", version=f"asr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"asr.commands.{name}").add_parser(subparsers)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised where the process is so that every ``finally`` and temp-file cleanup runs.

    Not a KeyboardInterrupt subclass: library code that treats Ctrl-C specially should not
    mistake a scheduler's kill for a user's key press; both end the command the same way.
    """


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
