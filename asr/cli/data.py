"""``asr data``: validate, fix, split, subset, combine and augment Kaldi data directories."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from asr.data.codec import CODECS, codec_datadir
from asr.data.combine import combine_datadirs
from asr.data.datadir import DataDir, read_kaldi_map
from asr.data.fix import fix_datadir
from asr.data.lhotse_io import from_lhotse, to_lhotse
from asr.data.noise import add_noise_datadir
from asr.data.pause_crops import crop_at_pauses
from asr.data.reverb import reverberate_datadir
from asr.data.speed_perturb import speed_perturb_datadir
from asr.data.subset import copy_datadir, split_datadir, subset_datadir, subset_datadir_by_speaker
from asr.data.trim import trim_silence_datadir
from asr.data.utt2dur import compute_utt2dur
from asr.data.validate import validate_datadir
from asr.data.word_splice import splice_words


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "data",
        help=help,
        description="Check, repair, split, subset, combine or augment Kaldi data directories "
        "(wav.scp, text, utt2spk, spk2utt, segments, ...).",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    validate = actions.add_parser(
        "validate",
        help="print one line per problem; exit 1 if there is any",
        description="Check a data directory as Kaldi's utils/validate_data_dir.sh does: "
        "UTF-8, sorted unique ids, the same utterances in every table, spk2utt matching "
        "utt2spk, non-empty transcripts and existing audio files.",
    )
    validate.add_argument("data_dir", metavar="DIR")
    validate.add_argument(
        "--no-check-files",
        dest="check_files",
        action="store_false",
        help="do not check that the audio and feature files exist",
    )
    validate.set_defaults(func=run_validate)

    fix = actions.add_parser(
        "fix",
        help="drop broken utterances, re-sort, regenerate spk2utt (backup in DIR/.backup)",
        description="Repair a data directory in place as Kaldi's utils/fix_data_dir.sh does: "
        "drop utterances missing from a table, with an empty transcript or missing audio; "
        "sort every table; regenerate spk2utt. The old files are kept in DIR/.backup/.",
    )
    fix.add_argument("data_dir", metavar="DIR")
    fix.set_defaults(func=run_fix)

    split = actions.add_parser(
        "split",
        help="split by speaker into DIR/splitN/{1..N}",
        description="Split a data directory by speaker into DIR/splitN/1 ... DIR/splitN/N, "
        "as Kaldi's utils/split_data.sh (no speaker is divided between parts).",
    )
    split.add_argument("data_dir", metavar="DIR")
    split.add_argument("num_splits", metavar="N", type=int)
    split.set_defaults(func=run_split)

    utt2dur = actions.add_parser(
        "utt2dur",
        help="write DIR/utt2dur (duration of each utterance in seconds)",
        description="Write DIR/utt2dur as Kaldi's utils/data/get_utt2dur.sh: file headers give "
        "the durations, segments their times; utterances whose audio cannot be read are "
        "reported and skipped (exit status 1).",
    )
    utt2dur.add_argument("data_dir", metavar="DIR")
    utt2dur.add_argument(
        "--allow-pipes", action="store_true", help="run wav.scp entries that are shell pipes"
    )
    utt2dur.set_defaults(func=run_utt2dur)

    to_lh = actions.add_parser(
        "to-lhotse",
        help="write Lhotse manifests (recordings, supervisions) of a data directory",
        description="Write OUT_DIR/recordings.jsonl.gz and OUT_DIR/supervisions.jsonl.gz "
        "(Lhotse's RecordingSet and SupervisionSet, as icefall reads them) for DIR: one "
        "recording per wav.scp entry (its audio's sample rate, channels and samples), one "
        "supervision per utterance (segment times, text, speaker, gender). DIR must be valid.",
    )
    to_lh.add_argument("data_dir", metavar="DIR")
    to_lh.add_argument("out_dir", metavar="OUT_DIR")
    to_lh.add_argument(
        "--allow-pipes", action="store_true", help="run wav.scp entries that are shell pipes"
    )
    to_lh.set_defaults(func=run_to_lhotse)

    from_lh = actions.add_parser(
        "from-lhotse",
        help="write a data directory from Lhotse recordings and supervisions manifests",
        description="Write DIR (wav.scp, text, utt2spk, spk2utt, utt2dur, spk2gender when "
        "known; segments and reco2dur when a supervision is not a whole recording) from a "
        "folder holding one *recordings*.jsonl.gz and one *supervisions*.jsonl.gz, or from "
        "the two files. DIR is validated before it replaces anything.",
    )
    from_lh.add_argument("manifests", metavar="MANIFESTS", nargs="+", help="folder or 2 files")
    from_lh.add_argument("data_dir", metavar="DIR")
    from_lh.set_defaults(func=run_from_lhotse)

    trim = actions.add_parser(
        "trim-silence",
        help="cut each utterance to its speech (segments), for isolated-word corpora",
        description="Write OUT_DIR with a segments file that cuts every utterance to the span "
        "from its first to its last speech frame (10 ms frame energy within THRESHOLD_DB of "
        "the utterance's loudest frame), widened by MARGIN seconds. Audio is not rewritten. "
        "Unreadable utterances are reported and skipped (exit status 1).",
    )
    trim.add_argument("data_dir", metavar="DIR")
    trim.add_argument("out_dir", metavar="OUT_DIR")
    trim.add_argument("--threshold-db", type=float, default=-30.0, help="default: -30")
    trim.add_argument("--margin", type=float, default=0.05, help="seconds (default: 0.05)")
    trim.add_argument("--allow-pipes", action="store_true", help="run wav.scp shell pipes")
    trim.add_argument("--no-progress", action="store_true")
    trim.set_defaults(func=run_trim_silence)

    subset = actions.add_parser(
        "subset",
        help="copy chosen utterances into a new data directory",
        description="Write chosen utterances into a new data directory, every table filtered, "
        "as Kaldi's utils/subset_data_dir.sh: those listed in a file (first token of each line, "
        "so a text or utt2spk file works), the first or last N in sorted order, or those of "
        "the speakers listed in a file (or of all speakers but those; a spk2utt file works).",
    )
    subset.add_argument("data_dir", metavar="DIR")
    subset.add_argument("out_dir", metavar="OUT_DIR")
    choice = subset.add_mutually_exclusive_group(required=True)
    choice.add_argument("--utt-list", metavar="FILE", help="utterance ids")
    choice.add_argument("--first", type=int, metavar="N", help="the first N utterances")
    choice.add_argument("--last", type=int, metavar="N", help="the last N utterances")
    choice.add_argument(
        "--spk-list", metavar="FILE", help="speaker ids: keep every utterance of these speakers"
    )
    choice.add_argument(
        "--exclude-spk-list",
        metavar="FILE",
        help="speaker ids: keep every utterance of all other speakers",
    )
    subset.set_defaults(func=run_subset)

    crop = actions.add_parser(
        "crop-at-pauses",
        help="add sub-utterance crops of word spans, cut at pauses (isolated-word corpora)",
        description="Write OUT_DIR with every utterance of DIR whole plus up to N random spans "
        "of its words as new utterances (a segments file), cut in the middle of the pauses "
        "between words. Only recordings whose energy splits into as many speech runs as the "
        "transcript has words are cut; the rest are kept whole.",
    )
    crop.add_argument("data_dir", metavar="DIR")
    crop.add_argument("out_dir", metavar="OUT_DIR")
    crop.add_argument("--per-utt", type=int, default=5, metavar="N", help="crops per recording")
    crop.add_argument("--seed", type=int, default=0, help="which spans are chosen")
    crop.add_argument(
        "--allow-pipes", action="store_true", help="run wav.scp entries that are shell pipes"
    )
    crop.set_defaults(func=run_crop)

    splice = actions.add_parser(
        "splice-words",
        help="add utterances spliced from random words of the recordings (isolated words)",
        description="Write OUT_DIR with every utterance of DIR plus N new ones, each a random "
        "sequence of 1 to --max-words words cut from one speaker's recordings at their "
        "pauses, joined by pauses of random length (down to none) between a leading and a "
        "trailing silence of theirs. Only recordings whose energy splits into as many speech "
        "runs as the transcript has words give words. New utterances are <spk>-splice<k>, "
        "FLAC files under OUT_DIR/audio.",
    )
    splice.add_argument("data_dir", metavar="DIR")
    splice.add_argument("out_dir", metavar="OUT_DIR")
    splice.add_argument("--count", type=int, required=True, metavar="N", help="new utterances")
    splice.add_argument(
        "--max-words", type=int, default=8, metavar="M", help="words per utterance (default 8)"
    )
    splice.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    splice.add_argument(
        "--fragments",
        type=float,
        default=0.0,
        metavar="P",
        help="chance that a new utterance starts in the tail of a word, and that it ends in "
        "the onset of one, neither transcribed (default 0)",
    )
    splice.add_argument(
        "--fragment-label",
        metavar="WORD",
        help="transcribe each fragment as WORD (e.g. [noise], which asr score --remove-fillers "
        "drops) instead of leaving it out of the transcript",
    )
    splice.add_argument(
        "--no-originals",
        dest="keep_originals",
        action="store_false",
        help="leave DIR's utterances out of OUT_DIR",
    )
    splice.add_argument(
        "--allow-pipes", action="store_true", help="run wav.scp entries that are shell pipes"
    )
    splice.set_defaults(func=run_splice)

    copy = actions.add_parser(
        "copy",
        help="copy a data directory, optionally with other transcripts",
        description="Copy DIR to OUT_DIR (Kaldi's utils/copy_data_dir.sh), feature files and "
        "all. With --text FILE the copy's transcripts are FILE (a Kaldi table covering the "
        "same utterances), e.g. the phone transcripts of a synthetic corpus.",
    )
    copy.add_argument("data_dir", metavar="DIR")
    copy.add_argument("out_dir", metavar="OUT_DIR")
    copy.add_argument("--text", metavar="FILE", help="transcripts for the copy")
    copy.set_defaults(func=run_copy)

    combine = actions.add_parser(
        "combine",
        help="write the union of data directories",
        description="Write the union of data directories into DST, as Kaldi's "
        "utils/combine_data.sh: an utterance id in two sources is an error; a table missing "
        "from some source is left out; segments are made for sources without them.",
    )
    combine.add_argument("out_dir", metavar="DST")
    combine.add_argument("sources", metavar="SRC", nargs="+")
    combine.set_defaults(func=run_combine)

    speed = actions.add_parser(
        "speed-perturb",
        help="add speed-perturbed copies (sp0.9-, sp1.1-) of every utterance",
        description="Write DST with a copy of every utterance of SRC per speed factor, as "
        "Kaldi's utils/data/perturb_data_dir_speed_3way.sh: factor f changes tempo and pitch "
        "as sox 'speed f'; copies are utterances sp<f>-<utt> of speakers sp<f>-<spk>, written "
        "as FLAC files; factor 1 keeps the originals as they are. Unreadable utterances are "
        "reported and skipped (exit status 1).",
    )
    speed.add_argument("data_dir", metavar="SRC")
    speed.add_argument("out_dir", metavar="DST")
    speed.add_argument(
        "--factors",
        type=float,
        nargs="+",
        default=[0.9, 1.0, 1.1],
        metavar="F",
        help="speed factors (default: 0.9 1.0 1.1)",
    )
    _add_augment_options(speed)
    speed.set_defaults(func=run_speed_perturb)

    noise = actions.add_parser(
        "add-noise",
        help="add noisy copies (noise1-, ...) of every utterance at random SNRs",
        description="Write DST with noisy copies of every utterance of SRC, as Kaldi's "
        "steps/data/augment_data_dir.py: copy k is utterance noise<k>-<utt> of speaker "
        "noise<k>-<spk>, with noise at an SNR drawn uniformly from a range, taken from the "
        "audio files under a folder or generated. The same seed gives the same audio. "
        "Unreadable or silent utterances are reported and skipped (exit status 1).",
    )
    noise.add_argument("data_dir", metavar="SRC")
    noise.add_argument("out_dir", metavar="DST")
    noise.add_argument(
        "--snr",
        type=_number_range("an SNR range in dB such as 5:20"),
        default=(5.0, 20.0),
        metavar="LOW:HIGH",
        help="SNR range in dB (default 5:20; one number for a fixed SNR)",
    )
    source = noise.add_mutually_exclusive_group()
    source.add_argument("--noise-dir", metavar="DIR", help="noise audio files (any format)")
    source.add_argument(
        "--noise-type",
        choices=("white", "pink", "brown"),
        default="white",
        help="generated noise when there is no --noise-dir (default white)",
    )
    noise.add_argument("--copies", type=int, default=1, metavar="N", help="noisy copies each")
    noise.add_argument(
        "--no-clean",
        dest="keep_clean",
        action="store_false",
        help="leave the clean utterances out of DST",
    )
    noise.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _add_augment_options(noise)
    noise.set_defaults(func=run_add_noise)

    reverb = actions.add_parser(
        "reverberate",
        help="add reverberant copies (rev1-, ...) through simulated rooms or RIR files",
        description="Write DST with reverberant copies of every utterance of SRC, as Kaldi's "
        "steps/data/reverberate_data_dir.py: copy k is utterance rev<k>-<utt> of speaker "
        "rev<k>-<spk>, the utterance convolved with a room impulse response, direct sound at "
        "time 0, as long and as loud (in power) as the original. Responses are simulated "
        "(image-source method, shoebox rooms of 3-10 x 3-8 x 2.5-4 m, a bank of --rooms rooms "
        "with RT60s drawn from --rt60) or taken from the audio files under --rir-dir. The same "
        "seed gives the same audio. Unreadable or silent utterances are reported and skipped "
        "(exit status 1).",
    )
    reverb.add_argument("data_dir", metavar="SRC")
    reverb.add_argument("out_dir", metavar="DST")
    reverb.add_argument(
        "--rt60",
        type=_number_range("a range in seconds such as 0.2:0.6"),
        default=(0.2, 0.6),
        metavar="LOW:HIGH",
        help="reverberation time range of the simulated rooms, seconds (default 0.2:0.6)",
    )
    reverb.add_argument(
        "--rooms", type=int, default=50, metavar="N", help="simulated rooms (default 50)"
    )
    reverb.add_argument("--rir-dir", metavar="DIR", help="impulse responses (audio files)")
    reverb.add_argument("--copies", type=int, default=1, metavar="N", help="copies each")
    reverb.add_argument(
        "--no-clean",
        dest="keep_clean",
        action="store_false",
        help="leave the original utterances out of DST",
    )
    reverb.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _add_augment_options(reverb)
    reverb.set_defaults(func=run_reverberate)

    codec = actions.add_parser(
        "codec",
        help="add copies through a telephone band and lossy codecs (telephone-, mp3-, ...)",
        description="Write DST with one copy of every utterance of SRC per codec, encoded and "
        "decoded again by ffmpeg at the utterance's own rate and length: telephone (300-3400 "
        "Hz, 8 kHz G.711 mu-law), gsm (the same band, GSM 06.10), mp3 (8-32 kbit/s) and opus "
        "(6-16 kbit/s), the bit rate drawn per copy. Copy ids are <codec>-<utt> of speaker "
        "<codec>-<spk>. Unreadable utterances are reported and skipped (exit status 1).",
    )
    codec.add_argument("data_dir", metavar="SRC")
    codec.add_argument("out_dir", metavar="DST")
    codec.add_argument(
        "--codecs",
        type=lambda text: [c for c in text.split(",") if c],
        default=list(CODECS),
        metavar="C,C,...",
        help=f"codecs, one copy each (default {','.join(CODECS)})",
    )
    codec.add_argument(
        "--one-each",
        action="store_true",
        help="one copy per utterance, codec-<utt>, through a codec drawn from --codecs",
    )
    codec.add_argument(
        "--no-clean",
        dest="keep_clean",
        action="store_false",
        help="leave the original utterances out of DST",
    )
    codec.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _add_augment_options(codec)
    codec.set_defaults(func=run_codec)


def _add_augment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--audio-dir", metavar="DIR", help="where the new audio files go (default DST/audio)"
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    parser.add_argument(
        "--allow-pipes", action="store_true", help="run wav.scp entries that are shell pipes"
    )


def _number_range(what: str) -> Callable[[str], tuple[float, float]]:
    """An argparse type for ``LOW:HIGH`` (or one number for both), named ``what`` in errors."""

    def parse(text: str) -> tuple[float, float]:
        low, sep, high = text.partition(":")
        try:
            return (float(low), float(high)) if sep else (float(low), float(low))
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {what}") from None

    return parse


def run_validate(args: argparse.Namespace) -> int:
    problems = validate_datadir(args.data_dir, check_files=args.check_files)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{args.data_dir}: {len(problems)} problem(s) found", file=sys.stderr)
        return 1
    data = DataDir.load(args.data_dir)
    print(f"{args.data_dir}: valid ({len(data.utt2spk)} utterances, {len(data.spk2utt)} speakers)")
    return 0


def run_fix(args: argparse.Namespace) -> int:
    report = fix_datadir(args.data_dir)
    for line in report.summary_lines():
        print(line)
    return 1 if report.unfixable else 0


def run_split(args: argparse.Namespace) -> int:
    for path in split_datadir(args.data_dir, args.num_splits):
        print(path)
    return 0


def run_utt2dur(args: argparse.Namespace) -> int:
    report = compute_utt2dur(args.data_dir, allow_pipe=args.allow_pipes)
    for error in report.failed.values():
        print(error, file=sys.stderr)
    print(f"{report.path}: {report.written} utterances, {len(report.failed)} failed")
    return 1 if report.failed else 0


def run_to_lhotse(args: argparse.Namespace) -> int:
    recordings, supervisions = to_lhotse(args.data_dir, args.out_dir, allow_pipe=args.allow_pipes)
    print(f"{recordings}\n{supervisions}")
    return 0


def run_from_lhotse(args: argparse.Namespace) -> int:
    data = from_lhotse(args.manifests, args.data_dir)
    segments = ", with segments" if data.segments is not None else ""
    print(f"{data.path}: {len(data.utt2spk)} utterances, {len(data.spk2utt)} speakers{segments}")
    return 0


def run_subset(args: argparse.Namespace) -> int:
    if args.spk_list is not None or args.exclude_spk_list is not None:
        listed = args.spk_list if args.spk_list is not None else args.exclude_spk_list
        speakers = list(read_kaldi_map(listed, allow_empty=True))
        exclude = args.spk_list is None
        out = subset_datadir_by_speaker(args.data_dir, speakers, args.out_dir, exclude=exclude)
        data = DataDir.load(out)
        print(f"{out}: {len(data.utt2spk)} utterances, {len(data.spk2utt)} speakers")
        return 0
    if args.utt_list is not None:
        utt_ids = list(read_kaldi_map(args.utt_list, allow_empty=True))
    else:
        count = args.first if args.first is not None else args.last
        if count <= 0:
            raise SystemExit(f"asr data subset: --first/--last needs a positive count, not {count}")
        all_ids = DataDir.load(args.data_dir).utt_ids
        utt_ids = all_ids[:count] if args.first is not None else all_ids[-count:]
    out = subset_datadir(args.data_dir, utt_ids, args.out_dir)
    print(f"{out}: {len(utt_ids)} utterances")
    return 0


def run_copy(args: argparse.Namespace) -> int:
    out = copy_datadir(args.data_dir, args.out_dir, text=args.text)
    print(f"{out}: {len(DataDir.load(out).utt2spk)} utterances")
    return 0


def run_crop(args: argparse.Namespace) -> int:
    report = crop_at_pauses(
        args.data_dir, args.out_dir, args.per_utt, seed=args.seed, allow_pipe=args.allow_pipes
    )
    print(f"{args.out_dir}: {report.summary()}")
    return 1 if report.failed else 0


def run_splice(args: argparse.Namespace) -> int:
    report = splice_words(
        args.data_dir,
        args.out_dir,
        args.count,
        max_words=args.max_words,
        seed=args.seed,
        keep_originals=args.keep_originals,
        allow_pipe=args.allow_pipes,
        fragments=args.fragments,
        fragment_label=args.fragment_label,
    )
    print(f"{args.out_dir}: {report.summary()}")
    return 1 if report.failed else 0


def run_combine(args: argparse.Namespace) -> int:
    data = combine_datadirs(args.sources, args.out_dir)
    print(
        f"{data.path}: {len(data.utt2spk)} utterances, {len(data.spk2utt)} speakers "
        f"from {len(args.sources)} directories"
    )
    # As Kaldi, whose combine_data.sh ends with fix_data_dir.sh: say what is still wrong.
    problems = validate_datadir(data.path, check_files=False)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def run_speed_perturb(args: argparse.Namespace) -> int:
    report = speed_perturb_datadir(
        args.data_dir,
        args.out_dir,
        factors=args.factors,
        audio_dir=args.audio_dir,
        progress=args.progress,
        allow_pipe=args.allow_pipes,
    )
    print(report.summary())
    return 1 if report.failed else 0


def run_add_noise(args: argparse.Namespace) -> int:
    report = add_noise_datadir(
        args.data_dir,
        args.out_dir,
        snr_range=args.snr,
        noise_dir=args.noise_dir,
        noise_type=args.noise_type,
        copies=args.copies,
        keep_clean=args.keep_clean,
        seed=args.seed,
        audio_dir=args.audio_dir,
        progress=args.progress,
        allow_pipe=args.allow_pipes,
    )
    print(report.summary())
    return 1 if report.failed else 0


def run_reverberate(args: argparse.Namespace) -> int:
    report = reverberate_datadir(
        args.data_dir,
        args.out_dir,
        rt60_range=args.rt60,
        rir_dir=args.rir_dir,
        rooms=args.rooms,
        copies=args.copies,
        keep_clean=args.keep_clean,
        seed=args.seed,
        audio_dir=args.audio_dir,
        progress=args.progress,
        allow_pipe=args.allow_pipes,
    )
    print(report.summary())
    return 1 if report.failed else 0


def run_codec(args: argparse.Namespace) -> int:
    report = codec_datadir(
        args.data_dir,
        args.out_dir,
        codecs=args.codecs,
        one_each=args.one_each,
        keep_clean=args.keep_clean,
        seed=args.seed,
        audio_dir=args.audio_dir,
        progress=args.progress,
        allow_pipe=args.allow_pipes,
    )
    print(report.summary())
    return 1 if report.failed else 0


def run_trim_silence(args: argparse.Namespace) -> int:
    report = trim_silence_datadir(
        args.data_dir,
        args.out_dir,
        threshold_db=args.threshold_db,
        margin=args.margin,
        allow_pipe=args.allow_pipes,
        progress=not args.no_progress,
    )
    print(f"{args.out_dir}: {report.summary()}")
    return 1 if report.failed else 0
