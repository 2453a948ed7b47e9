"""``asr score REF HYP`` and ``asr score --compare HYP_A HYP_B REF``: thin, over asr.score."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from asr.errors import ConfigError
from asr.score.compare import compare_files, write_comparison
from asr.score.files import FileOptions, per_utterance, score_files
from asr.score.formats import FORMATS
from asr.score.normalize import DEFAULT_FILLERS, Normalizer, load_phone_map, read_fillers, read_glm
from asr.score.report_files import write_reports
from asr.score.reports import REPORT_FORMATS, confusions, speaker_groups
from asr.score.result import ScoreResult
from asr.score.scoring import kaldi_line, ser_line, summary_lines, write_alignments
from asr.score.significance import bootstrap_interval

log = logging.getLogger(__name__)

FORMAT_CHOICES = ("auto", *FORMATS)


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "score",
        help=help,
        description=(
            "Align each hypothesis with its reference as NIST sclite does and print Kaldi "
            "compute-wer's lines: %WER (or %CER/%PER), %SER and the number scored. "
            "Inputs are Kaldi text, sclite trn, CTM, STM, JSON lines or plain line-aligned "
            "files (detected, or given with --ref-format/--hyp-format). Utterances present in "
            "one file only are listed and stop scoring unless --missing-as-deletions. "
            "With --compare HYP_A HYP_B REF: both systems' rates, the difference with a "
            "paired-bootstrap confidence interval, NIST's MAPSSWE test and a sign test."
        ),
    )
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="REF HYP; with --compare: HYP_A HYP_B REF",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="compare two systems on the same reference: FILE arguments are HYP_A HYP_B REF",
    )
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--ref-format", choices=FORMAT_CHOICES, default="auto")
    inputs.add_argument("--hyp-format", choices=FORMAT_CHOICES, default="auto")
    inputs.add_argument("--id-key", help="JSON lines: the key holding the utterance id")
    inputs.add_argument("--text-key", help="JSON lines: the key holding the transcript")
    inputs.add_argument(
        "--missing-as-deletions",
        action="store_true",
        help="score reference utterances absent from a hypothesis file as empty hypotheses "
        "(default: list them and stop)",
    )
    inputs.add_argument(
        "--utt2spk",
        metavar="FILE",
        help="speaker of each utterance, for per-speaker results (default: utt2spk beside a "
        "Kaldi text reference, the speaker column of an STM reference, else --speaker-sep)",
    )
    inputs.add_argument(
        "--speaker-sep",
        metavar="CHARS",
        help="take the speaker from the utterance id, up to the first of CHARS "
        "(e.g. '-' for sclite's spu_id ids 'spk-utt')",
    )

    measure = parser.add_argument_group("what is counted")
    measure.add_argument(
        "--metric",
        choices=("WER", "CER", "PER"),
        default="WER",
        help="WER: words; CER: characters, the spaces between words included (as ESPnet); "
        "PER: phones, whitespace-separated, optionally mapped with --phone-map (default: WER)",
    )
    measure.add_argument(
        "--cer-without-spaces",
        action="store_true",
        help="CER: do not count the spaces between words (as sclite -c)",
    )
    measure.add_argument(
        "--phone-map",
        metavar="NAME|FILE",
        help="map phones before scoring: a file of 'phone target' lines (no target: deleted) "
        "or a built-in map name (timit61-39)",
    )
    measure.add_argument(
        "--costs",
        choices=("sclite", "levenshtein"),
        default="sclite",
        help="sclite: NIST's weighted alignment (substitution 4, insertion and deletion 3), "
        "sclite's numbers; levenshtein: Kaldi compute-wer's minimal edit distance "
        "(default: sclite)",
    )
    measure.add_argument(
        "--time-mediated",
        action="store_true",
        help="CTM reference and hypothesis: align with word times as sclite -T does",
    )

    norm = parser.add_argument_group("normalisation (applied to both sides, shown in reports)")
    norm.add_argument("--lowercase", action="store_true", help="fold case (sclite without -s)")
    norm.add_argument(
        "--remove-punctuation", action="store_true", help="drop punctuation characters"
    )
    norm.add_argument(
        "--hyphens",
        choices=("keep", "split", "remove"),
        default="keep",
        help="split: 'well-known' -> 'well known'; remove: -> 'wellknown' (default: keep)",
    )
    norm.add_argument(
        "--apostrophes",
        choices=("keep", "remove"),
        default="keep",
        help="remove: \"don't\" -> 'dont' (default: keep)",
    )
    norm.add_argument(
        "--remove-fillers",
        action="store_true",
        help="drop filler words and non-speech tokens (uh, um, <unk>, [noise], any [..] or "
        "<..> token; the list is asr/resources/score/fillers.txt or --fillers)",
    )
    norm.add_argument("--fillers", metavar="FILE", help="filler words, one per line")
    norm.add_argument(
        "--glm",
        metavar="FILE",
        help="equivalences in the spirit of sclite's GLM ('gonna => going to', 'ok => okay "
        "/ o.k.'), applied to both sides",
    )

    out = parser.add_argument_group("reports")
    out.add_argument(
        "--alignments",
        metavar="FILE",
        help="write the summary lines and every utterance's alignment (sclite .pra blocks)",
    )
    out.add_argument(
        "--reports",
        metavar="DIR",
        help="write sclite's .sys, .pra and .dtl files, a .json and a self-contained .html",
    )
    out.add_argument(
        "--report-name",
        metavar="NAME",
        help="file name stem of the reports (default: the hypothesis file's name)",
    )
    out.add_argument(
        "--report-formats",
        default=",".join(REPORT_FORMATS),
        help=f"comma-separated subset of {','.join(REPORT_FORMATS)} (default: all)",
    )
    out.add_argument("--per-speaker", action="store_true", help="print a line per speaker")
    out.add_argument(
        "--confusions",
        type=int,
        default=0,
        metavar="N",
        help="print the N most frequent substitutions, insertions and deletions",
    )
    out.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="SAMPLES",
        help="print a bootstrap confidence interval of the error rate from SAMPLES resamplings "
        "of the utterances (with --compare: default 10000)",
    )
    out.add_argument("--confidence", type=float, default=0.95, help="interval level (0.95)")
    out.add_argument("--seed", type=int, default=0, help="bootstrap seed (0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    formats = [f.strip() for f in args.report_formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in REPORT_FORMATS]
    if unknown:
        raise ConfigError(f"--report-formats: unknown format(s) {', '.join(unknown)}")
    if not 0.5 <= args.confidence < 1:
        raise ConfigError(f"--confidence must be in [0.5, 1), not {args.confidence}")
    if args.compare:
        if len(args.files) != 3:
            raise ConfigError("--compare takes three files: HYP_A HYP_B REF")
        return _compare(args, formats)
    if len(args.files) != 2:
        raise ConfigError("give two files, REF HYP (or --compare HYP_A HYP_B REF)")
    ref_path, hyp_path = args.files
    result = score_files(ref_path, hyp_path, _options(args))
    _print_result(args, result)
    _write_outputs(args, result, formats, Path(hyp_path).name)
    return 0


def _options(args: argparse.Namespace) -> FileOptions:
    return FileOptions(
        ref_format=args.ref_format,
        hyp_format=args.hyp_format,
        id_key=args.id_key,
        text_key=args.text_key,
        metric=args.metric,
        missing="deletions" if args.missing_as_deletions else "error",
        costs=args.costs,
        normalizer=_normalizer(args),
        char_spaces=not args.cer_without_spaces,
        utt2spk=args.utt2spk,
        speaker_sep=args.speaker_sep,
        time_mediated=args.time_mediated,
    )


def _normalizer(args: argparse.Namespace) -> Normalizer | None:
    wanted = (
        args.lowercase
        or args.remove_punctuation
        or args.hyphens != "keep"
        or args.apostrophes != "keep"
        or args.remove_fillers
        or args.glm
        or args.phone_map
    )
    if not wanted:
        return None
    return Normalizer(
        lowercase=args.lowercase,
        remove_punctuation=args.remove_punctuation,
        hyphens=args.hyphens,
        apostrophes=args.apostrophes,
        remove_fillers=args.remove_fillers or bool(args.fillers),
        fillers=frozenset(read_fillers(args.fillers)) if args.fillers else DEFAULT_FILLERS,
        glm=read_glm(args.glm) if args.glm else None,
        phone_map=load_phone_map(args.phone_map) if args.phone_map else None,
    )


def _print_result(args: argparse.Namespace, result: ScoreResult) -> None:
    for name, value in result.settings:
        log.info("%s: %s", name, value)
    for line in summary_lines(result):
        print(line)
    if args.per_speaker:
        # Speakers as the .sys report has them: known ones, else sclite's id rule.
        for speaker, utterances in speaker_groups(result):
            part = result.subset(a.utt_id for a in utterances)
            print(f"{speaker}: {kaldi_line(part)} {ser_line(part)}")
    if args.confusions > 0:
        _print_confusions(result, args.confusions)
    if args.bootstrap > 0:
        errors, ref_words = per_utterance(result)
        interval = bootstrap_interval(
            errors, ref_words, samples=args.bootstrap, confidence=args.confidence, seed=args.seed
        )
        print(
            f"%{result.metric} {interval.wer:.2f}, {args.confidence:.0%} CI "
            f"[{interval.low:.2f}, {interval.high:.2f}] (bootstrap over {result.sentences} "
            f"utterances, {args.bootstrap} samples)"
        )


def _print_confusions(result: ScoreResult, top: int) -> None:
    found = confusions(result, top=top)
    print(f"Top {top} substitutions (ref -> hyp: count):")
    for ref, hyp, count in found.pairs:
        print(f"  {ref} -> {hyp}: {count}")
    print(f"Top {top} insertions:")
    for word, count in found.insertions:
        print(f"  {word}: {count}")
    print(f"Top {top} deletions:")
    for word, count in found.deletions:
        print(f"  {word}: {count}")


def _write_outputs(
    args: argparse.Namespace, result: ScoreResult, formats: list[str], name: str
) -> None:
    if args.alignments:
        write_alignments(result, args.alignments)
        log.info("wrote alignments of %d utterances to %s", result.sentences, args.alignments)
    if args.reports:
        paths = write_reports(result, args.reports, args.report_name or name, formats)
        log.info("wrote %s", ", ".join(os.fspath(p) for p in paths))


def _compare(args: argparse.Namespace, formats: list[str]) -> int:
    hyp_a, hyp_b, ref_path = args.files
    comparison = compare_files(
        hyp_a,
        hyp_b,
        ref_path,
        _options(args),
        samples=args.bootstrap or 10_000,
        confidence=args.confidence,
        seed=args.seed,
    )
    print(f"A {hyp_a}: {kaldi_line(comparison.a)}")
    print(f"B {hyp_b}: {kaldi_line(comparison.b)}")
    for line in comparison.lines():
        print(line)
    if args.reports:
        written = write_comparison(comparison, args.reports, args.report_name, formats)
        log.info("wrote %s", ", ".join(os.fspath(p) for p in written))
    return 0
