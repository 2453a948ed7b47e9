"""``asr score REF HYP`` and ``asr score --compare HYP_A HYP_B REF``: thin, over asr.score."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from asr.score.formats import FORMATS
from asr.score.reports import REPORT_FORMATS

log = logging.getLogger(__name__)

FORMAT_CHOICES = ("auto", *FORMATS)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score hypotheses against references (sclite's numbers, Kaldi's %%WER line)",
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
        "<..> token; the list is data/score/fillers.txt or --fillers)",
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
    from asr.errors import ConfigError

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
    result = _score(args, ref_path, hyp_path)
    _print_result(args, result)
    _write_outputs(args, result, formats, Path(hyp_path).name)
    return 0


def _normalizer(args: argparse.Namespace):
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
    from asr.score.normalize import (
        DEFAULT_FILLERS,
        Normalizer,
        load_phone_map,
        read_fillers,
        read_glm,
    )

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


def _read(path: str, fmt: str, args: argparse.Namespace):
    from asr.score import formats

    return formats.read(path, fmt, id_key=args.id_key, text_key=args.text_key)


def _speakers(args: argparse.Namespace, ref) -> Mapping[str, str] | Callable[[str], str] | None:
    from asr.datadir import read_kaldi_map

    if args.utt2spk:
        return read_kaldi_map(Path(args.utt2spk))
    if ref.format == "kaldi":
        beside = Path(ref.path).with_name("utt2spk")
        if beside.is_file():
            utt2spk = read_kaldi_map(beside)
            if all(u in utt2spk for u in ref.texts):
                return utt2spk
            log.warning("%s does not cover every utterance of %s; not used", beside, ref.path)
    if ref.speakers:
        return ref.speakers
    if args.speaker_sep:
        return _prefix_rule(args.speaker_sep)
    return None


def _prefix_rule(separators: str):
    def speaker_of(utt_id: str) -> str:
        cut = min((i for i in (utt_id.find(c) for c in separators) if i > 0), default=-1)
        return utt_id[:cut] if cut > 0 else utt_id

    return speaker_of


def _score(args: argparse.Namespace, ref_path: str, hyp_path: str, ref=None):
    """Read REF and HYP, check they match, and score them with the options in ``args``."""
    from asr import score
    from asr.errors import ConfigError
    from asr.score import formats
    from asr.score.align import LEVENSHTEIN_COSTS, SCLITE_COSTS

    ref = ref if ref is not None else _read(ref_path, args.ref_format, args)
    hyp_format = args.hyp_format
    if hyp_format == "auto":
        hyp_format = formats.detect_format(hyp_path)
        # Every Kaldi text is also a valid plain file and the guess between the two can go
        # either way on a short file; a hypothesis is written like its reference.
        if {hyp_format, ref.format} == {"kaldi", "plain"}:
            hyp_format = ref.format
    hyp = _read(hyp_path, hyp_format, args)
    log.info("reference %s: %s; hypothesis %s: %s", ref_path, ref.format, hyp_path, hyp.format)
    if ref.format == "stm" and hyp.format == "ctm":
        # sclite's ctm-against-stm mode: each hypothesis word goes to the segment it falls in.
        from asr.score.timed import segment_ctm_by_stm

        hyp = segment_ctm_by_stm(ref, hyp)
    ref_words = sum(len(t.split()) for t in ref.texts.values())
    if ref_words == 0:
        raise score.ScoreError(
            f"{ref_path}: the reference has no words (an error rate of nothing is undefined)"
        )
    unit = {"WER": "word", "CER": "char", "PER": "phone"}[args.metric]
    times = None
    if args.time_mediated:
        if ref.times is None or hyp.times is None:
            raise ConfigError("--time-mediated needs word times on both sides (CTM files)")
        if unit == "char":
            raise ConfigError("--time-mediated aligns words or phones, not characters")
        times = (ref.times, hyp.times)
    return score.wer(
        ref.texts,
        hyp.texts,
        unit=unit,
        metric=args.metric,
        missing="deletions" if args.missing_as_deletions else "error",
        costs=SCLITE_COSTS if args.costs == "sclite" else LEVENSHTEIN_COSTS,
        normalizer=_normalizer(args),
        char_spaces=not args.cer_without_spaces,
        speakers=_speakers(args, ref),
        timed_words=times,
        ref_name=ref_path,
        hyp_name=hyp_path,
    )


def _print_result(args: argparse.Namespace, result) -> None:
    from asr import score
    from asr.score.reports import speaker_groups

    for name, value in result.settings:
        log.info("%s: %s", name, value)
    for line in score.summary_lines(result):
        print(line)
    if args.per_speaker:
        # Speakers as the .sys report has them: known ones, else sclite's id rule.
        for speaker, utterances in speaker_groups(result):
            part = result.subset(a.utt_id for a in utterances)
            print(f"{speaker}: {score.kaldi_line(part)} {score.ser_line(part)}")
    if args.confusions > 0:
        _print_confusions(result, args.confusions)
    if args.bootstrap > 0:
        from asr.score.significance import bootstrap_interval

        errors, ref_words = _per_utterance(result)
        interval = bootstrap_interval(
            errors, ref_words, samples=args.bootstrap, confidence=args.confidence, seed=args.seed
        )
        print(
            f"%{result.metric} {interval.wer:.2f}, {args.confidence:.0%} CI "
            f"[{interval.low:.2f}, {interval.high:.2f}] (bootstrap over {result.sentences} "
            f"utterances, {args.bootstrap} samples)"
        )


def _print_confusions(result, top: int) -> None:
    from asr.score.reports import confusions

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


def _per_utterance(result):
    import numpy as np

    errors = np.fromiter((a.errors for a in result.utterances), dtype=np.int64)
    ref_words = np.fromiter((len(a.ref) for a in result.utterances), dtype=np.int64)
    return errors, ref_words


def _write_outputs(args: argparse.Namespace, result, formats: list[str], name: str) -> None:
    from asr import score

    if args.alignments:
        score.write_alignments(result, args.alignments)
        log.info("wrote alignments of %d utterances to %s", result.sentences, args.alignments)
    if args.reports:
        from asr.score.report_files import write_reports

        paths = write_reports(result, args.reports, args.report_name or name, formats)
        log.info("wrote %s", ", ".join(os.fspath(p) for p in paths))


def _compare(args: argparse.Namespace, formats: list[str]) -> int:
    from asr import score
    from asr.score.significance import mapsswe, paired_bootstrap, sign_test

    hyp_a, hyp_b, ref_path = args.files
    ref = _read(ref_path, args.ref_format, args)
    result_a = _score(args, ref_path, hyp_a, ref=ref)
    result_b = _score(args, ref_path, hyp_b, ref=ref)
    metric = result_a.metric
    print(f"A {hyp_a}: {score.kaldi_line(result_a)}")
    print(f"B {hyp_b}: {score.kaldi_line(result_b)}")
    errors_a, ref_words = _per_utterance(result_a)
    errors_b, _ = _per_utterance(result_b)
    samples = args.bootstrap or 10_000
    boot = paired_bootstrap(
        errors_a, errors_b, ref_words, samples=samples, confidence=args.confidence, seed=args.seed
    )
    matched = mapsswe(result_a, result_b)
    signs = sign_test(errors_a, errors_b)
    lines = [
        f"B - A: {boot.delta:+.2f} %{metric} points, {args.confidence:.0%} CI "
        f"[{boot.low:+.2f}, {boot.high:+.2f}] (paired bootstrap over {result_a.sentences} "
        f"utterances, {samples} samples); B better in {boot.p_b_better:.1%} of samples",
        f"MAPSSWE: {matched.segments} segments, z = {matched.z:+.3f}, p = {_p(matched.p)}",
        f"Sign test over utterances: A better {signs.a_better}, B better {signs.b_better}, "
        f"ties {signs.ties}, p = {_p(signs.p)}",
    ]
    for line in lines:
        print(line)
    if args.reports:
        _write_comparison(args, formats, (result_a, result_b), lines)
    return 0


def _write_comparison(args: argparse.Namespace, formats: list[str], results, notes) -> None:
    """Each system's reports, and one HTML page with both systems and the tests' results."""
    from asr.fileio import atomic_write
    from asr.score.html import format_html
    from asr.score.report_files import write_reports

    written = []
    for label, result in zip("AB", results, strict=True):
        stem = f"{args.report_name}.{label}" if args.report_name else Path(result.hyp_name).name
        written += write_reports(result, args.reports, stem, formats)
    if "html" in formats:
        page = Path(args.reports) / f"{args.report_name or 'compare'}.html"
        html = format_html(
            results[0],
            title=f"{results[0].hyp_name} (A) against {results[1].hyp_name} (B)",
            comparison=results[1],
            notes=[("Test", line) for line in notes],
        )
        with atomic_write(page) as handle:
            handle.write(html)
        written.append(page)
    log.info("wrote %s", ", ".join(os.fspath(p) for p in written))


def _p(value: float) -> str:
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"
