"""Two systems on one reference: both rates and whether their difference is real.

:func:`compare_files` scores each hypothesis file (:func:`asr.score.files.score_files`) and runs
the paired bootstrap, NIST's MAPSSWE and a sign test over utterances
(:mod:`asr.score.significance`); :func:`write_comparison` writes each system's reports and one
HTML page holding both. ``asr score --compare`` prints :meth:`Comparison.lines`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asr.fileio import atomic_write
from asr.score.files import FileOptions, per_utterance, read_file, score_files
from asr.score.html import format_html
from asr.score.report_files import write_reports
from asr.score.result import ScoreResult
from asr.score.significance import (
    Mapsswe,
    PairedBootstrap,
    SignTest,
    mapsswe,
    paired_bootstrap,
    sign_test,
)


@dataclass
class Comparison:
    """System A and B scored on one reference, and the three tests of B - A."""

    a: ScoreResult
    b: ScoreResult
    bootstrap: PairedBootstrap
    mapsswe: Mapsswe
    sign: SignTest
    samples: int
    confidence: float

    def lines(self) -> list[str]:
        """The three result lines ``asr score --compare`` prints after the two rates."""
        boot, matched, signs = self.bootstrap, self.mapsswe, self.sign
        return [
            f"B - A: {boot.delta:+.2f} %{self.a.metric} points, {self.confidence:.0%} CI "
            f"[{boot.low:+.2f}, {boot.high:+.2f}] (paired bootstrap over {self.a.sentences} "
            f"utterances, {self.samples} samples); B better in {boot.p_b_better:.1%} of samples",
            f"MAPSSWE: {matched.segments} segments, z = {matched.z:+.3f}, p = {_p(matched.p)}",
            f"Sign test over utterances: A better {signs.a_better}, B better {signs.b_better}, "
            f"ties {signs.ties}, p = {_p(signs.p)}",
        ]


def compare_files(
    hyp_a: str | os.PathLike,
    hyp_b: str | os.PathLike,
    ref_path: str | os.PathLike,
    options: FileOptions | None = None,
    samples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Score HYP_A and HYP_B against REF (read once) and test their difference."""
    options = options or FileOptions()
    ref = read_file(ref_path, options.ref_format, options)
    result_a = score_files(ref_path, hyp_a, options, ref=ref)
    result_b = score_files(ref_path, hyp_b, options, ref=ref)
    errors_a, ref_words = per_utterance(result_a)
    errors_b, _ = per_utterance(result_b)
    boot = paired_bootstrap(
        errors_a, errors_b, ref_words, samples=samples, confidence=confidence, seed=seed
    )
    return Comparison(
        a=result_a,
        b=result_b,
        bootstrap=boot,
        mapsswe=mapsswe(result_a, result_b),
        sign=sign_test(errors_a, errors_b),
        samples=samples,
        confidence=confidence,
    )


def write_comparison(
    comparison: Comparison,
    out_dir: str | os.PathLike,
    name: str | None,
    formats: Sequence[str],
) -> list[Path]:
    """Each system's reports (stems ``NAME.A``/``NAME.B``, else the hypothesis file names) and,
    with "html" among ``formats``, one page ``NAME.html`` (``compare.html``) with both systems
    and the tests' lines. Returns the files written."""
    results = (comparison.a, comparison.b)
    written: list[Path] = []
    for label, result in zip("AB", results, strict=True):
        stem = f"{name}.{label}" if name else Path(result.hyp_name).name
        written += write_reports(result, out_dir, stem, formats)
    if "html" in formats:
        page = Path(out_dir) / f"{name or 'compare'}.html"
        html = format_html(
            results[0],
            title=f"{results[0].hyp_name} (A) against {results[1].hyp_name} (B)",
            comparison=results[1],
            notes=[("Test", line) for line in comparison.lines()],
        )
        with atomic_write(page) as handle:
            handle.write(html)
        written.append(page)
    return written


def _p(value: float) -> str:
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"
