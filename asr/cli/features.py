"""``asr features``: compute raw fbank/MFCC features and CMVN statistics for a data directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from asr.cli.jobs import ASR, add_job_options, split_for_jobs
from asr.features.config import FeatureConfig, load_feature_config
from asr.features.extract import compute_datadir_features, compute_features_in_parts, extract_part
from asr.fileio import atomic_write
from asr.jobs.launcher import Launcher, run_jobs


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "features",
        help=help,
        description="Compute raw Kaldi-compatible features for every utterance of DATA_DIR, as "
        "Kaldi's steps/make_fbank.sh + steps/compute_cmvn_stats.sh do. Writes ARK_DIR/raw_<kind>"
        ".ark and ARK_DIR/cmvn_<kind>.ark; DATA_DIR/feats.scp, utt2num_frames, cmvn.scp (per "
        "speaker), cmvn_global.ark and feats.yaml (the config, read by training and decoding). "
        "Features are stored without CMVN or deltas: those are applied when they are read.",
    )
    parser.add_argument("data_dir", metavar="DATA_DIR")
    parser.add_argument(
        "--config",
        metavar="YAML",
        help="feature config (kind, sample_rate, options: Kaldi options, delta_order, cmvn, "
        "norm_vars); default: Kaldi's fbank defaults at 16 kHz",
    )
    overrides = parser.add_argument(
        "overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="optional: set a key of the feature config, dotted for options "
        "(options.num_mel_bins=80 delta_order=2); the value is read as YAML; write them "
        "together, after DATA_DIR",
    )
    # "+" made optional: a "*" positional would be used up, empty, by DATA_DIR alone, leaving
    # KEY=VALUE after --config unparsed
    overrides.required = False
    parser.add_argument(
        "--ark-dir", metavar="DIR", help="where the ark files go (default: DATA_DIR/data)"
    )
    parser.add_argument(
        "--allow-pipes",
        action="store_true",
        help="run wav.scp entries that are shell commands ('cmd |'); off by default",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_job_options(parser)
    # internal: one job of an --nj run (its run name); the parent merges the parts
    parser.add_argument("--part-of", metavar="RUN", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_feature_config(args.config, args.overrides)
    if args.part_of:
        extract_part(args.data_dir, config, args.ark_dir, args.part_of, args.allow_pipes)
        return 0
    launcher = Launcher.parse(args.cmd)
    if args.nj > 1:
        launcher.check()  # an unreachable scheduler is one line before anything is split
        summary = run_in_jobs(args, config, launcher)
    else:
        summary = compute_datadir_features(
            args.data_dir,
            config,
            ark_dir=args.ark_dir,
            allow_pipe=args.allow_pipes,
            progress=not args.no_progress,
        )
    if summary.num_failed:
        # Kaldi's make_fbank.sh: a few failures only need `fix_data_dir`; under 95% is an error.
        total = summary.num_done + summary.num_failed
        print(
            f"asr features: {summary.num_failed} of {total} utterance(s) skipped (see the log "
            f"above); run `asr data fix {args.data_dir}` to drop them from the data dir",
            file=sys.stderr,
        )
        if summary.num_done < total - total // 20:
            return 1
    return 0


def run_in_jobs(args: argparse.Namespace, config: FeatureConfig, launcher: Launcher):
    """--nj: split by speaker, one `asr features --part-of` job per part, then the merge."""
    data_dir = Path(args.data_dir)
    parts = split_for_jobs(data_dir, args.nj)
    ark_dir = Path(args.ark_dir) if args.ark_dir else data_dir / "data"
    # the jobs read the config as resolved here (defaults and any overrides included)
    conf = parts[0].parent / "feats_job.yaml"
    with atomic_write(conf) as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)
    pipes = ["--allow-pipes"] if args.allow_pipes else []

    def run_parts(run: str) -> None:
        jobs = [
            [*ASR, "features", str(part), "--config", str(conf), "--ark-dir", str(ark_dir),
             "--part-of", f"{run}.{j}", "--no-progress", *pipes]
            for j, part in enumerate(parts, start=1)
        ]  # fmt: skip
        run_jobs(launcher, "make_features", jobs, data_dir / "log")

    return compute_features_in_parts(data_dir, config, parts, run_parts, ark_dir)
