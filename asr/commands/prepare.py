"""``asr prepare CORPUS ...``: turn a corpus on disk into Kaldi data directories.

Each corpus is one sub-subcommand: a ``_add_<corpus>(subparsers)`` function below that
registers its parser and handler, listed in ``CORPORA``. Adding a corpus adds one function.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from asr.errors import ConfigError

log = logging.getLogger(__name__)


def _add_yesno(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "yesno",
        help="the yes/no corpus (OpenSLR 1): 30 train / 30 test utterances",
        description=(
            "Write DATA_DIR/train and DATA_DIR/test (Kaldi's train_yesno and test_yesno: the "
            "first and second half of the 60 wavs sorted by name). Give the wavs as CORPUS_DIR "
            "(or --corpus-dir), or --download DEST to fetch and check the archive first."
        ),
    )
    parser.add_argument(
        "corpus_pos", nargs="?", metavar="CORPUS_DIR", help="folder of the 60 yes/no wavs"
    )
    parser.add_argument("data_dir", metavar="DATA_DIR", help="where train/ and test/ go")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--corpus-dir", metavar="DIR", help="folder of the 60 yes/no wavs")
    source.add_argument(
        "--download",
        metavar="DEST",
        help="download waves_yesno.tar.gz into DEST (checked by SHA-256) and unpack it there",
    )
    parser.set_defaults(func=_run_yesno)


def _run_yesno(args: argparse.Namespace) -> int:
    from asr.corpora import yesno

    sources = [s for s in (args.corpus_pos, args.corpus_dir, args.download) if s]
    if len(sources) != 1:
        raise ConfigError(
            "prepare yesno: give exactly one of CORPUS_DIR, --corpus-dir DIR or --download DEST"
        )
    corpus_dir = yesno.download_yesno(args.download) if args.download else sources[0]
    dirs = yesno.prepare_yesno(corpus_dir, args.data_dir)
    log.info("prepared %s", ", ".join(str(d) for d in dirs.values()))
    return 0


def _add_fsdd(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fsdd",
        help="the Free Spoken Digit Dataset: train / dev / test by index or by speaker",
        description=(
            "Write DATA_DIR/train, DATA_DIR/dev and DATA_DIR/test from FSDD's recordings/. "
            "Official protocol: test = index 0-4 of every speaker (the dataset's test set), "
            "dev = index 5-9, train = the rest. With --test-speaker S: test = every recording "
            "of S, and the other speakers give dev (index 5-9) and train (the rest). Badly "
            "named or unreadable wavs are reported and skipped. Give the folder holding "
            "recordings/ as CORPUS_DIR (or --corpus-dir), or --download DEST to fetch the "
            "release first."
        ),
    )
    parser.add_argument(
        "corpus_pos", nargs="?", metavar="CORPUS_DIR", help="folder holding recordings/"
    )
    parser.add_argument("data_dir", metavar="DATA_DIR", help="where train/, dev/ and test/ go")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--corpus-dir", metavar="DIR", help="folder holding recordings/")
    source.add_argument(
        "--download",
        metavar="DEST",
        help="download the FSDD release archive into DEST (or re-use a complete copy there)",
    )
    parser.add_argument(
        "--test-speaker",
        metavar="S",
        help="leave-one-speaker-out: test on every recording of speaker S, train on the others",
    )
    parser.set_defaults(func=_run_fsdd)


def _run_fsdd(args: argparse.Namespace) -> int:
    from asr.corpora import fsdd
    from asr.datadir import DataDir

    sources = [s for s in (args.corpus_pos, args.corpus_dir, args.download) if s]
    if len(sources) != 1:
        raise ConfigError(
            "prepare fsdd: give exactly one of CORPUS_DIR, --corpus-dir DIR or --download DEST"
        )
    corpus_dir = fsdd.download_fsdd(args.download) if args.download else sources[0]
    dirs = fsdd.prepare_fsdd(corpus_dir, args.data_dir, test_speaker=args.test_speaker)
    for path in dirs.values():
        data = DataDir.load(path)
        speakers = len(data.speakers)
        print(
            f"{path}: {len(data.utt2spk)} utterances, "
            f"{speakers} speaker{'' if speakers == 1 else 's'}"
        )
    return 0


CORPORA: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "yesno": _add_yesno,
    "fsdd": _add_fsdd,
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="make Kaldi data directories from a corpus",
        description="Make Kaldi data directories (wav.scp, text, utt2spk, ...) from a corpus.",
    )
    corpora = parser.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    for add in CORPORA.values():
        add(corpora)
