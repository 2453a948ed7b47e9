"""``asr export MODEL.pt OUT --format torchscript|onnx``: a deployable network, verified."""

from __future__ import annotations

import argparse

from asr.nn.export import export_model


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "export",
        help=help,
        description="Export MODEL (a model package) as a network that maps normalized features "
        "(batch, time, dim) and lengths (batch,) to CTC log-probs (batch, time', tokens) and "
        "output lengths, with dynamic batch and time; tokens, feature config and CMVN stats "
        "ride along as asr.json metadata. Before writing, the export is run on random inputs "
        "of two lengths (batched and alone) and compared with the eager model: a max absolute "
        "difference above --tolerance is an error and nothing is written. ONNX needs "
        "pip install 'asr[export]'.",
    )
    parser.add_argument("model", metavar="MODEL.pt", help="model package (asr train/package)")
    parser.add_argument("out", metavar="OUT", help="file to write (.ts/.pt or .onnx)")
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=("torchscript", "onnx"),
        default=None,
        help="default: onnx for an OUT ending in .onnx, else torchscript",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        metavar="T",
        help="largest allowed |exported - eager| log-prob (default 1e-4)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    fmt = args.fmt or ("onnx" if str(args.out).lower().endswith(".onnx") else "torchscript")
    report = export_model(args.model, args.out, fmt, tolerance=args.tolerance)
    print(report.line())
    return 0
