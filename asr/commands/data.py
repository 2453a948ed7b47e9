"""``asr data``: validate, fix, split and subset Kaldi data directories."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="check, repair, split or subset a Kaldi data directory",
        description="Check, repair, split or subset a Kaldi data directory "
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

    subset = actions.add_parser(
        "subset",
        help="copy chosen utterances into a new data directory",
        description="Write chosen utterances into a new data directory, every table filtered, "
        "as Kaldi's utils/subset_data_dir.sh: those listed in a file (first token of each line, "
        "so a text or utt2spk file works), or the first or last N in sorted order.",
    )
    subset.add_argument("data_dir", metavar="DIR")
    subset.add_argument("out_dir", metavar="OUT_DIR")
    choice = subset.add_mutually_exclusive_group(required=True)
    choice.add_argument("--utt-list", metavar="FILE", help="utterance ids")
    choice.add_argument("--first", type=int, metavar="N", help="the first N utterances")
    choice.add_argument("--last", type=int, metavar="N", help="the last N utterances")
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


def run_validate(args: argparse.Namespace) -> int:
    from asr.datadir import DataDir, validate_datadir

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
    from asr.datadir import fix_datadir

    report = fix_datadir(args.data_dir)
    for line in report.summary_lines():
        print(line)
    return 1 if report.unfixable else 0


def run_split(args: argparse.Namespace) -> int:
    from asr.datadir import split_datadir

    for path in split_datadir(args.data_dir, args.num_splits):
        print(path)
    return 0


def run_utt2dur(args: argparse.Namespace) -> int:
    from asr.datadir import compute_utt2dur

    report = compute_utt2dur(args.data_dir, allow_pipe=args.allow_pipes)
    for error in report.failed.values():
        print(error, file=sys.stderr)
    print(f"{report.path}: {report.written} utterances, {len(report.failed)} failed")
    return 1 if report.failed else 0


def run_subset(args: argparse.Namespace) -> int:
    from asr.datadir import DataDir, read_kaldi_map, subset_datadir

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


def run_crop(args: argparse.Namespace) -> int:
    from asr.pause_crops import crop_at_pauses

    report = crop_at_pauses(
        args.data_dir, args.out_dir, args.per_utt, seed=args.seed, allow_pipe=args.allow_pipes
    )
    print(f"{args.out_dir}: {report.summary()}")
    return 1 if report.failed else 0
