"""``asr features``: compute raw fbank/MFCC features and CMVN statistics for a data directory."""

from __future__ import annotations

import argparse
import sys

from asr.features.config import FeatureConfig, load_feature_config
from asr.features.extract import compute_datadir_features


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
    parser.add_argument(
        "--ark-dir", metavar="DIR", help="where the ark files go (default: DATA_DIR/data)"
    )
    parser.add_argument(
        "--allow-pipes",
        action="store_true",
        help="run wav.scp entries that are shell commands ('cmd |'); off by default",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_feature_config(args.config) if args.config else FeatureConfig()
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
