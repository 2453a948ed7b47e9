"""``asr train``: train a CTC acoustic model from feature data directories."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from asr.errors import ConfigError
from asr.training.distributed import world_from_env
from asr.training.trainer import train


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "train",
        help=help,
        description=(
            "Train a BiLSTM-CTC model on the features of TRAIN_DIR (from 'asr features'), "
            "validating on DEV_DIR each epoch. Writes EXP_DIR/final.pt (the model package of "
            "the best dev-loss epoch), checkpoint.pt, epoch-N.pt, tokens.txt, config.yaml (the "
            "config with its overrides applied), train.log, history.tsv, curves.png and "
            "TensorBoard event files in EXP_DIR/tensorboard/ (tensorboard --logdir EXP_DIR). "
            "KEY=VALUE arguments set any key of the config: asr train --config c.yaml "
            "training.lr=0.0005 model.hidden_size=320 ... Under torchrun (torchrun "
            "--nproc_per_node N -m asr train ...) it trains with DistributedDataParallel: gloo "
            "on CPU, NCCL on GPU. "
            "One run at a time per EXP_DIR: a second one stops with an error naming the first."
        ),
    )
    parser.add_argument("--config", required=True, help="training YAML (model: and training:)")
    overrides = parser.add_argument(
        "overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="optional: set a key of the config: training.lr=0.0005 model.hidden_size=320; "
        "the value is read as YAML (true, 0.5, [1, 2], null); write them together, not split "
        "by options",
    )
    # "+" made optional: a "*" positional is used up, empty, before the first option and would
    # leave every KEY=VALUE unparsed
    overrides.required = False
    parser.add_argument("--train-dir", required=True, help="training data dir with feats.scp")
    parser.add_argument("--dev-dir", required=True, help="dev data dir with feats.scp")
    parser.add_argument("--exp-dir", required=True, help="output directory")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from EXP_DIR/checkpoint.pt (starts fresh when there is none), at the "
        "epoch or batch where it was written, exactly as the uninterrupted run would; refused "
        "when the data dirs or an option that changes the result differ",
    )
    parser.add_argument(
        "--save-every-steps",
        type=int,
        default=None,
        metavar="N",
        help="also write EXP_DIR/checkpoint.pt every N optimisation steps within an epoch, so "
        "that a killed run loses at most N steps (default: the config's "
        "training.save_every_steps; 0: at epoch ends only)",
    )
    parser.add_argument(
        "--init-from",
        metavar="PACKAGE",
        default=None,
        help="start from the weights of this model package (fine-tuning): same features and "
        "architecture, any token list (shared symbols keep their output rows); overrides the "
        "config's training.init_from; ignored when --resume finds a checkpoint",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"CPU threads for torch (default: all cores, {os.cpu_count()})",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default=None,
        help="autocast dtype (default: the config's, else auto = bf16 where the hardware has "
        "it natively, fp16 on older GPUs, else fp32); fp32 turns mixed precision off",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="data-loading processes (default: the config's)"
    )
    parser.add_argument(
        "--no-spec-augment", action="store_true", help="turn off the config's SpecAugment"
    )
    parser.add_argument(
        "--no-tensorboard",
        action="store_true",
        help="write no TensorBoard event files (training.tensorboard: false)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: must be at least 1")
    overrides: dict[str, object] = {}
    if args.precision is not None:
        overrides["precision"] = args.precision
    if args.workers is not None:
        overrides["num_workers"] = args.workers
    if args.save_every_steps is not None:
        overrides["save_every_steps"] = args.save_every_steps
    if args.no_spec_augment:
        overrides["spec_augment"] = None
    if args.no_tensorboard:
        overrides["tensorboard"] = False
    summary = train(
        args.config,
        args.train_dir,
        args.dev_dir,
        args.exp_dir,
        resume=args.resume,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        progress=not args.no_progress,
        overrides=overrides,
        init_from=args.init_from,
        command=shlex.join(["asr", *sys.argv[1:]]),
        config_overrides=args.overrides,
    )

    if world_from_env().is_main:  # one summary, not one per torchrun process
        print(summary.line())
    return 0
