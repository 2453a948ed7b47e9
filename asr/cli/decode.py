"""``asr decode``: CTC decoding of a feature data directory: greedy, prefix beam search (with an
optional token bigram), or lexicon + n-gram LM beam search over a grid of LM weights."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from asr.cli.jobs import ASR, add_job_options, split_for_jobs
from asr.decoding.datadir import decode_datadir, merge_decode_parts, read_best
from asr.decoding.vtln import DEFAULT_WARPS, parse_warp_grid
from asr.errors import ConfigError
from asr.jobs.launcher import Launcher, run_jobs
from asr.nn.package import load_package
from asr.units.tokens import infer_unit

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "decode",
        help=help,
        description="Run MODEL (a package written by 'asr train') over DATA_DIR/feats.scp and "
        "write OUT_DIR/text with one hypothesis per utterance (greedy CTC best path, or CTC prefix "
        "beam search with --beam-size above 1). With --lexicon and/or --word-lm (or --token-lm "
        "alone), flashlight's lexicon beam search with a KenLM n-gram runs for every pair of "
        "--lm-weight x --word-score values; with several pairs each goes to "
        "OUT_DIR/lmwt_W_wip_P/text, is scored against DATA_DIR/text, and the best pair is "
        "written to OUT_DIR/best.json and OUT_DIR/text (apply it to test with --tuned-on).",
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
        default=None,
        help="1 (default without a lexicon/LM): greedy best path, the most probable token of each "
        "frame; N > 1: CTC prefix beam search, keeping the N most probable token sequences at "
        "each frame, each scored over all its alignments (runs in Python on the CPU, slower); "
        "with --lexicon/--word-lm/--token-lm: hypotheses kept per frame (default 50)",
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
        "--lm-weight",
        type=_floats,
        default=None,
        metavar="W[,W...]",
        help="weight of the LM's natural-log probabilities: one value for --bigram-lm (default "
        "0.5); one or a comma-separated grid with --word-lm/--token-lm (default 1.0)",
    )
    lexicon = parser.add_argument_group("lexicon and n-gram LM search (flashlight-text + KenLM)")
    lexicon.add_argument(
        "--lexicon",
        metavar="LEXICON",
        help="Kaldi lexicon.txt ('word unit unit ...', units in the model's tokens; made by "
        "'asr lexicon prepare'): the search outputs only its words",
    )
    lexicon.add_argument(
        "--word-lm", metavar="LM", help="word n-gram LM, ARPA (checked first) or KenLM binary"
    )
    lexicon.add_argument(
        "--token-lm",
        metavar="LM",
        help="lexicon-free search with an n-gram LM over the model's tokens (char: characters "
        "separated by spaces and <space> for the word gap; bpe: the pieces)",
    )
    lexicon.add_argument(
        "--word-score",
        type=_floats,
        default=None,
        metavar="P[,P...]",
        help="added per word (insertion bonus; negative = penalty): one value or a grid "
        "(default 0)",
    )
    lexicon.add_argument(
        "--beam-threshold",
        type=float,
        default=25.0,
        help="drop hypotheses scoring more than this below the best of the frame (default 25)",
    )
    lexicon.add_argument(
        "--beam-size-token",
        type=int,
        default=None,
        help="try only the N most probable tokens of each frame (default: all)",
    )
    lexicon.add_argument(
        "--nbest",
        type=int,
        default=1,
        help="also write OUT_DIR/nbest.txt with up to N hypotheses per utterance as "
        "'UTT-RANK<TAB>SCORE<TAB>WORDS' (default 1: text only)",
    )
    lexicon.add_argument(
        "--tuned-on",
        metavar="DEV_DECODE_DIR",
        help="use the LM weight and word score of DEV_DECODE_DIR/best.json (a grid decode of a "
        "dev set) instead of --lm-weight/--word-score",
    )
    lexicon.add_argument(
        "--ref-text",
        metavar="TEXT",
        help="word transcripts to score a grid against (default DATA_DIR/text, BPE pieces "
        "joined into words; needed for phone models, whose DATA_DIR/text holds phones)",
    )
    lexicon.add_argument(
        "--unk-word", default="<unk>", help="the word KenLM's unknown words map to (<unk>)"
    )
    parser.add_argument(
        "--insertion-bonus",
        type=float,
        default=0.0,
        help="added to the score per token of a hypothesis (default 0)",
    )
    parser.add_argument(
        "--vtln",
        nargs="?",
        const=DEFAULT_WARPS,
        default=None,
        metavar="MIN:MAX:STEP",
        help="test-time VTLN (log-mel features): warp each speaker's features by the factor of "
        f"the grid (default {DEFAULT_WARPS}) whose posteriors have the lowest mean entropy; "
        "unsupervised, one network pass per factor; the factors go to OUT_DIR/spk2warp",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: all cores)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_job_options(parser)
    parser.set_defaults(func=run)


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        message = f"'{text}' is not a comma-separated list of numbers"
        raise argparse.ArgumentTypeError(message) from None
    if not values:
        raise argparse.ArgumentTypeError("no value given")
    return values


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads {args.threads}: must be at least 1")
        torch.set_num_threads(args.threads)
    searching = any(x is not None for x in (args.lexicon, args.word_lm, args.token_lm))
    if args.beam_size is not None and args.beam_size < 1:
        raise ConfigError(f"--beam-size {args.beam_size}: must be at least 1 (1 = greedy)")
    if args.bigram_lm is not None and (args.beam_size or 1) <= 1:
        raise ConfigError("--bigram-lm needs --beam-size above 1 (greedy decoding uses no LM)")
    if not searching:
        for flag, value in (("--word-score", args.word_score), ("--tuned-on", args.tuned_on)):
            if value is not None:
                raise ConfigError(f"{flag} needs --lexicon, --word-lm or --token-lm")
    lm_weights, word_scores = args.lm_weight or [1.0], args.word_score or [0.0]
    if args.tuned_on is not None:
        if args.lm_weight is not None or args.word_score is not None:
            raise ConfigError("--tuned-on sets the LM weight and word score: give neither")
        lm_weight, word_score = read_best(args.tuned_on)
        lm_weights, word_scores = [lm_weight], [word_score]
        log.info("tuned on %s: LM weight %g, word score %g", args.tuned_on, lm_weight, word_score)
    if not searching and len(lm_weights) > 1:
        raise ConfigError("--lm-weight takes one value without --word-lm/--token-lm")
    if args.nbest < 1:
        raise ConfigError(f"--nbest {args.nbest}: must be at least 1")
    vtln = parse_warp_grid(args.vtln) if args.vtln is not None else None
    if args.nj > 1:
        return run_in_jobs(args, lm_weights, word_scores, searching)
    summary = decode_datadir(
        args.model,
        args.data_dir,
        args.out_dir,
        batch_frames=args.batch_frames,
        device=args.device,
        progress=not args.no_progress,
        beam_size=args.beam_size,
        lm=args.bigram_lm,
        lm_weight=args.lm_weight[0] if args.lm_weight else 0.5,
        insertion_bonus=args.insertion_bonus,
        lexicon=args.lexicon,
        word_lm=args.word_lm,
        token_lm=args.token_lm,
        lm_weights=lm_weights,
        word_scores=word_scores,
        beam_threshold=args.beam_threshold,
        beam_size_token=args.beam_size_token,
        ref_text=args.ref_text,
        nbest=args.nbest,
        unk_word=args.unk_word,
        vtln=vtln,
    )
    if summary.best is not None:
        log.info(
            "best of the grid: LM weight %g, word score %g, WER %.2f%%",
            summary.best["lm_weight"],
            summary.best["word_score"],
            summary.best["wer"],
        )
    log.info(
        "decoded %d utterances into %s/text, %d failed; real-time factor %.4f",
        summary.decoded,
        args.out_dir,
        len(summary.failed),
        summary.real_time_factor,
    )
    return 1 if summary.failed else 0


def _job_options(args: argparse.Namespace, lm_weights: list[float], word_scores: list[float]):
    """The options each job decodes with: the same search, the weights already resolved."""
    options = ["--batch-frames", str(args.batch_frames), "--device", args.device, "--no-progress"]
    pairs = [
        ("--beam-size", args.beam_size),
        ("--bigram-lm", args.bigram_lm),
        ("--lexicon", args.lexicon),
        ("--word-lm", args.word_lm),
        ("--token-lm", args.token_lm),
        ("--beam-size-token", args.beam_size_token),
        ("--threads", args.threads),
        ("--vtln", args.vtln),
    ]
    options += [item for flag, value in pairs if value is not None for item in (flag, str(value))]
    options += ["--beam-threshold", repr(args.beam_threshold), "--nbest", str(args.nbest)]
    options += ["--unk-word", args.unk_word, "--insertion-bonus", repr(args.insertion_bonus)]
    searching = any(x is not None for x in (args.lexicon, args.word_lm, args.token_lm))
    if searching:
        options += ["--lm-weight=" + ",".join(map(repr, lm_weights))]
        options += ["--word-score=" + ",".join(map(repr, word_scores))]
    elif args.lm_weight:
        options += ["--lm-weight", repr(args.lm_weight[0])]
    return options


def run_in_jobs(
    args: argparse.Namespace, lm_weights: list[float], word_scores: list[float], searching: bool
) -> int:
    """--nj: split by speaker, one `asr decode` per part, then the merge (and the grid's
    scoring, on the whole set)."""
    launcher = Launcher.parse(args.cmd)
    launcher.check()  # an unreachable scheduler is one line before anything is split
    data_dir, out_dir = Path(args.data_dir), Path(args.out_dir)
    parts = split_for_jobs(data_dir, args.nj)
    split = out_dir / parts[0].parent.name
    options = _job_options(args, lm_weights, word_scores)
    jobs = [
        [*ASR, "decode", args.model, str(part), str(split / part.name), *options] for part in parts
    ]
    run_jobs(launcher, "decode", jobs, out_dir / "log")
    grid = [(w, p) for w in lm_weights for p in word_scores] if searching else None
    best = merge_decode_parts(
        data_dir,
        out_dir,
        [split / part.name for part in parts],
        _unit(args.model),
        grid,
        args.nbest if searching else 1,  # n-best lists come from the lexicon/LM search only
        args.ref_text,
    )
    if best is not None:
        log.info(
            "best of the grid: LM weight %g, word score %g, WER %.2f%%",
            best["lm_weight"],
            best["word_score"],
            best["wer"],
        )
    log.info("decoded %s in %d jobs into %s/text", data_dir, len(parts), out_dir)
    return 0


def _unit(model: str) -> str:
    package = load_package(model)
    return package.extra.get("unit") or infer_unit(package.tokens)
