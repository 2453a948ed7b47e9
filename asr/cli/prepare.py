"""``asr prepare CORPUS ...``: turn a corpus on disk into Kaldi data directories.

Each corpus is one sub-subcommand: a ``_add_<corpus>(subparsers)`` function below that
registers its parser and handler, listed in ``CORPORA``. Adding a corpus adds one function.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from asr.corpora import fsdd, librispeech, timit, wsj, yesno
from asr.corpora.synthetic import corpus as synth
from asr.corpora.synthetic.librispeech_layout import prepare_synth_librispeech
from asr.data.datadir import DataDir
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


def _add_synth(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="make a corpus of read speech with espeak-ng, flite and festival (no download)",
        description=(
            "Synthesise OUT_DIR/train, OUT_DIR/dev and OUT_DIR/test (FLAC audio, word "
            "transcripts in text, the phones each engine said in phones and their times in "
            "phones.ctm). Sentences come from the built-in naval-database grammar or from "
            "--text files; test sentences and test voices never occur in training. With --text, "
            "OUT_DIR/local/lm_text holds every sentence of the files (any length) except the "
            "dev and test ones, for a language model. The same seed gives the same corpus, "
            "whatever --jobs."
        ),
    )
    parser.add_argument(
        "out_dir", nargs="?", metavar="OUT_DIR", help="where train/, dev/ and test/ go"
    )
    parser.add_argument(
        "--hours", type=float, default=1.0, help="hours of training speech (default 1.0)"
    )
    parser.add_argument(
        "--dev-utts", type=int, default=0, help="dev utterances (default: 5%% of train, >= 200)"
    )
    parser.add_argument(
        "--test-utts", type=int, default=0, help="test utterances (default: as --dev-utts)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--text", nargs="+", metavar="FILE", help="prompts from UTF-8 text files, not the grammar"
    )
    parser.add_argument("--min-words", type=int, default=3, help="with --text (default 3)")
    parser.add_argument("--max-words", type=int, default=20, help="with --text (default 20)")
    parser.add_argument(
        "--test-voices",
        nargs="+",
        metavar="ENGINE:VOICE",
        help="voices held out for test (default: flite:rms, festival:ked_diphone and four "
        "espeak-ng voices; see --list-voices)",
    )
    parser.add_argument(
        "--dev-voices",
        nargs="*",
        metavar="ENGINE:VOICE",
        help="voices held out for dev (default: three espeak-ng voices; none: all dev "
        "utterances in training voices)",
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=tuple(synth.ENGINE_MODULES),
        default=list(synth.DEFAULT_ENGINES),
        help="engines to use, those installed of them (default: the Debian ones, "
        f"{' '.join(synth.DEFAULT_ENGINES)}; piper, a neural voice from PyPI, when named)",
    )
    parser.add_argument(
        "--jobs", type=int, default=0, help="worker processes (default: one per core)"
    )
    parser.add_argument(
        "--vocal-tract",
        type=_factor_range,
        default=(1.0, 1.0),
        metavar="LOW:HIGH",
        help="voice transformation of flite's, festival's and piper's training utterances: "
        "formants "
        "scaled by a factor from this range, tempo and pitch kept (e.g. 0.85:1.15; default "
        "1:1, off)",
    )
    parser.add_argument(
        "--layout",
        choices=("kaldi", "librispeech"),
        default="kaldi",
        help="kaldi: Kaldi data directories (the default); librispeech: OUT_DIR/LibriSpeech/ "
        "as OpenSLR 12 unpacks (train-clean-100, dev-clean, test-clean; voices as readers, "
        "books as chapters) and OUT_DIR/lm/ (LM text, vocabulary), for "
        "recipes/librispeech; needs --text",
    )
    parser.add_argument(
        "--chapter-utts",
        type=int,
        default=0,
        help="a voice reads runs of up to N consecutive sentences of one text file (0: a "
        "voice per sentence; --layout librispeech: 20)",
    )
    parser.add_argument("--list-voices", action="store_true", help="list the voices and stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_synth)


def _factor_range(text: str) -> tuple[float, float]:
    low, sep, high = text.partition(":")
    try:
        pair = (float(low), float(high)) if sep else (float(low), float(low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a range such as 0.85:1.15") from None
    if not (0.5 <= pair[0] <= pair[1] <= 2.0):
        raise argparse.ArgumentTypeError(
            f"'{text}': factors must be within 0.5-2.0, low before high"
        )
    return pair


def _run_synth(args: argparse.Namespace) -> int:
    if args.list_voices:
        usable, missing = synth.available_engines(args.engines)
        held_out = {v: "test" for v in synth.DEFAULT_TEST_VOICES}
        held_out.update({v: "dev" for v in synth.DEFAULT_DEV_VOICES})
        for engine in usable:
            for voice in synth.engine_module(engine).voices():
                print(f"{voice} {held_out.get(str(voice), 'train')}")
        for engine, packages in missing.items():
            print(f"# {engine}: not installed ({packages})")
        return 0
    if not args.out_dir:
        raise ConfigError("prepare synth: give OUT_DIR (or --list-voices)")
    config = synth.SynthConfig(
        hours=args.hours,
        dev_utts=args.dev_utts,
        test_utts=args.test_utts or args.dev_utts,
        seed=args.seed,
        text_files=list(args.text or []),
        min_words=args.min_words,
        max_words=args.max_words,
        test_voices=list(
            synth.DEFAULT_TEST_VOICES if args.test_voices is None else args.test_voices
        ),
        dev_voices=list(synth.DEFAULT_DEV_VOICES if args.dev_voices is None else args.dev_voices),
        engines=list(args.engines),
        train_vocal_tract=args.vocal_tract,
        chapter_utts=args.chapter_utts,
    )
    if args.chapter_utts < 0:
        raise ConfigError(f"--chapter-utts {args.chapter_utts}: must be 0 or more")
    if args.layout == "librispeech":
        report, layout = prepare_synth_librispeech(
            args.out_dir, config, jobs=args.jobs or None, progress=not args.no_progress
        )
        print(layout.summary())
    else:
        report = synth.prepare_synth(
            args.out_dir, config, jobs=args.jobs or None, progress=not args.no_progress
        )
        print(f"{args.out_dir}: {report.summary()}")
    print(
        f"synthesised in {report.seconds:.0f} s: "
        f"{report.real_time_factor_per_core:.0f}x real time per core"
    )
    return 0


def _add_timit(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "timit",
        help="TIMIT (LDC93S1): Kaldi's 462-speaker train, 50-speaker dev, 24-speaker core test",
        description=(
            "Write DATA_DIR/train, DATA_DIR/dev and DATA_DIR/test as Kaldi's TIMIT recipe: "
            "SA sentences left out, train = every TRAIN speaker, dev and test = the listed TEST "
            "speakers; text in the 48-phone set (q deleted), plus phones61, words, utt2dialect, "
            "phones.ctm and phones61.ctm, and DATA_DIR/split.txt naming each set's speakers. "
            "CORPUS_DIR holds TRAIN/ and TEST/ (LDC layout, upper or lower case). With --sample "
            "(an excerpt such as ../shared's), TEST may be absent and two dev and two test "
            "speakers are held out of the corpus's own; with --sample --folds N, cross-"
            "validation instead: DATA_DIR/all and DATA_DIR/fold<k>/{train,dev,test}, each "
            "speaker tested in one fold, DATA_DIR/folds.txt, and DATA_DIR/full/{train,dev} "
            "(every speaker: for the model trained on the whole sample)."
        ),
    )
    parser.add_argument("corpus_dir", metavar="CORPUS_DIR", help="folder holding TRAIN/ and TEST/")
    parser.add_argument("data_dir", metavar="DATA_DIR", help="where train/, dev/ and test/ go")
    parser.add_argument(
        "--sample",
        action="store_true",
        help="a TIMIT excerpt: hold out 2 dev and 2 test speakers of its own (a woman and a man "
        "each, from different dialect regions)",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        metavar="N",
        help="with --sample: N cross-validation folds, each testing a woman and a man (of "
        "neighbouring dialect regions in the sample) and training on the other speakers, whose "
        "first SI sentences are its dev set",
    )
    parser.add_argument(
        "--dev-speakers",
        metavar="FILE",
        help="dev speaker list (default: asr/resources/timit/dev_spk.list, Kaldi's 50 speakers)",
    )
    parser.add_argument(
        "--test-speakers",
        metavar="FILE",
        help="test speaker list (default: asr/resources/timit/test_spk.list, the 24-speaker core "
        "test set)",
    )
    parser.set_defaults(func=_run_timit)


def _run_timit(args: argparse.Namespace) -> int:
    if args.sample and (args.dev_speakers or args.test_speakers):
        raise ConfigError("prepare timit: --sample chooses its own speakers; no speaker lists")
    if args.folds and not args.sample:
        raise ConfigError("prepare timit: --folds is for a --sample corpus")
    dirs = timit.prepare_timit(
        args.corpus_dir,
        args.data_dir,
        sample=args.sample,
        dev_list=args.dev_speakers or timit.DEV_SPEAKER_LIST,
        test_list=args.test_speakers or timit.TEST_SPEAKER_LIST,
        folds=args.folds,
    )
    for name, path in dirs.items():
        data = DataDir.load(path)
        speakers = data.speakers
        # the held-out speakers by name (a fold's dev set is every training speaker: not named)
        named = args.sample and (name == "dev" or name.endswith("test"))
        shown = f": {' '.join(speakers)}" if named else ""
        print(f"{path}: {len(data.utt2spk)} utterances, {len(speakers)} speakers{shown}")
    return 0


def _add_librispeech(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "librispeech",
        help="LibriSpeech (OpenSLR 12): one Kaldi data directory per set, optionally downloaded",
        description=(
            "Write DATA_DIR/<set> (dashes as underscores: dev-clean -> dev_clean) for each of "
            "--sets as Kaldi's recipe: utterance ids from the FLAC names, speaker = "
            "reader-chapter, text upper case as distributed (as the official LM and lexicon), "
            "wav.scp pointing at the FLAC files, spk2gender from SPEAKERS.TXT, utt2dur. "
            "CORPUS_DIR holds LibriSpeech/ (or is it). With --download the sets are fetched "
            "into CORPUS_DIR first (MD5-checked, interrupted downloads resume); --lm also "
            "fetches OpenSLR 11 files into CORPUS_DIR/lm."
        ),
    )
    parser.add_argument("corpus_dir", metavar="CORPUS_DIR", help="folder holding LibriSpeech/")
    parser.add_argument("data_dir", metavar="DATA_DIR", help="where the data directories go")
    parser.add_argument(
        "--sets",
        nargs="+",
        default=list(librispeech.SETS),
        choices=librispeech.SETS,
        metavar="SET",
        help=f"sets to prepare (default: all seven: {', '.join(librispeech.SETS)})",
    )
    parser.add_argument("--download", action="store_true", help="download the sets first")
    parser.add_argument(
        "--lm",
        nargs="*",
        metavar="FILE",
        help="also download OpenSLR 11 files into CORPUS_DIR/lm (default with no names: "
        "3-gram.pruned.1e-7.arpa.gz and librispeech-lexicon.txt)",
    )
    parser.set_defaults(func=_run_librispeech)


def _run_librispeech(args: argparse.Namespace) -> int:
    if args.download:
        librispeech.download_librispeech(args.corpus_dir, args.sets)
    if args.lm is not None:
        names = args.lm or ["3-gram.pruned.1e-7.arpa.gz", "librispeech-lexicon.txt"]
        for path in librispeech.download_lm_resources(Path(args.corpus_dir) / "lm", names):
            print(f"{path}: downloaded and checked")
    for name in args.sets:
        out = Path(args.data_dir) / librispeech.data_dir_name(name)
        report = librispeech.prepare_librispeech(args.corpus_dir, name, out)
        print(report.summary())
    return 0


def _add_wsj(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "wsj",
        help="Wall Street Journal (WSJ0 + WSJ1): Kaldi's train_si284, test_dev93, test_eval92",
        description=(
            "Write DATA_DIR/<set> for each of --sets as Kaldi's wsj_data_prep.sh: sets from the "
            ".ndx indices, transcripts from the .dot files normalised as normalize_transcript.pl "
            "(noises -> <NOISE>), speaker = the first 3 characters of the utterance id. The "
            ".wv1 audio (shorten SPHERE) is read through sph2pipe pipes when sph2pipe is on "
            "PATH, else decoded once to FLAC with ffmpeg. --lm-dir also writes the standard 20k "
            "open-vocabulary trigram (tcb20onp.z) as ARPA, and its vocabulary."
        ),
    )
    parser.add_argument(
        "wsj_dirs",
        nargs="+",
        metavar="WSJ_DIR",
        help="the LDC93S6B and LDC94S13B folders (or their disk folders 11-1.1, ...)",
    )
    parser.add_argument("data_dir", metavar="DATA_DIR", help="where the data directories go")
    parser.add_argument(
        "--sets",
        nargs="+",
        default=list(wsj.DEFAULT_SETS),
        choices=list(wsj.SETS),
        metavar="SET",
        help=f"sets (default: {' '.join(wsj.DEFAULT_SETS)}; any of {', '.join(wsj.SETS)})",
    )
    parser.add_argument(
        "--audio",
        choices=("auto", "sph2pipe", "flac"),
        default="auto",
        help="sph2pipe pipes in wav.scp, or FLAC files decoded with ffmpeg (default: auto)",
    )
    parser.add_argument("--flac-dir", metavar="DIR", help="where FLAC goes (DATA_DIR/flac)")
    parser.add_argument("--jobs", type=int, default=0, help="ffmpeg processes (default: cores)")
    parser.add_argument("--lm-dir", metavar="DIR", help="write lm_tg.arpa and vocab.txt here")
    parser.set_defaults(func=_run_wsj)


def _run_wsj(args: argparse.Namespace) -> int:
    reports = wsj.prepare_wsj(
        args.wsj_dirs,
        args.data_dir,
        sets=args.sets,
        audio=args.audio,
        flac_dir=args.flac_dir,
        jobs=args.jobs,
    )
    for report in reports:
        print(report.summary())
    if args.lm_dir:
        print(f"{wsj.prepare_wsj_lm(args.wsj_dirs, args.lm_dir)}: the 20k trigram (tcb20onp)")
    return 0


CORPORA: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "yesno": _add_yesno,
    "fsdd": _add_fsdd,
    "synth": _add_synth,
    "timit": _add_timit,
    "librispeech": _add_librispeech,
    "wsj": _add_wsj,
}


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help=help,
        description="Make Kaldi data directories (wav.scp, text, utt2spk, ...) from a corpus.",
    )
    corpora = parser.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    for add in CORPORA.values():
        add(corpora)
