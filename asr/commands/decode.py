"""``asr decode``: CTC decoding (greedy or prefix beam search) of a feature data directory."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("asr.decode")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decode",
        help="decode a data directory's features into a Kaldi text file of hypotheses",
        description="Run MODEL (a package written by 'asr train') over DATA_DIR/feats.scp and "
        "write OUT_DIR/text with one hypothesis per utterance (greedy CTC best path, or CTC prefix "
        "beam search with --beam-size above 1).",
    )
    parser.add_argument("model", metavar="MODEL", help="model package, e.g. exp/blstm/final.pt")
    parser.add_argument("data_dir", metavar="DATA_DIR", help="data directory with feats.scp")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="where to write text")
    parser.add_argument(
        "--batch-frames", type=int, default=20000, help="padded frames per batch (default 20000)"
    )
    parser.add_argument(
        "--beam-size",
        type=int,
        default=1,
        help="1 (default): greedy best path, the most probable token of each frame; N > 1: CTC "
        "prefix beam search, keeping the N most probable token sequences at each frame, each "
        "scored over all its alignments (runs in Python on the CPU, slower)",
    )
    parser.add_argument(
        "--bigram-lm",
        metavar="TEXT",
        default=None,
        help="shallow fusion with a token bigram language model (add-k smoothed) trained at "
        "decode time from TEXT, a Kaldi text file of transcripts in the model's tokens (e.g. "
        "data/train/text), or loaded from a saved .json model; needs --beam-size above 1",
    )
    parser.add_argument(
        "--lm-weight", type=float, default=0.5, help="weight of the LM log probs (default 0.5)"
    )
    parser.add_argument(
        "--insertion-bonus",
        type=float,
        default=0.0,
        help="added to the score per token of a hypothesis (default 0)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: all cores)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from asr.errors import ConfigError
    from asr.inference import decode_datadir

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads {args.threads}: must be at least 1")
        torch.set_num_threads(args.threads)
    if args.beam_size < 1:
        raise ConfigError(f"--beam-size {args.beam_size}: must be at least 1 (1 = greedy)")
    if args.bigram_lm is not None and args.beam_size <= 1:
        raise ConfigError("--bigram-lm needs --beam-size above 1 (greedy decoding uses no LM)")
    summary = decode_datadir(
        args.model,
        args.data_dir,
        args.out_dir,
        batch_frames=args.batch_frames,
        device=args.device,
        progress=not args.no_progress,
        beam_size=args.beam_size,
        lm=args.bigram_lm,
        lm_weight=args.lm_weight,
        insertion_bonus=args.insertion_bonus,
    )
    log.info(
        "decoded %d utterances into %s/text, %d failed; real-time factor %.4f",
        summary.decoded,
        args.out_dir,
        len(summary.failed),
        summary.real_time_factor,
    )
    return 1 if summary.failed else 0
