"""Report files: every format of ``asr.score.reports`` and ``asr.score.html`` written at once.

Kept apart from both so that the arrows point one way: this module renders with both, the HTML
page builds on the text reports' counts, and neither imports this one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from asr.fileio import atomic_write
from asr.score.html import format_html
from asr.score.reports import REPORT_FORMATS, format_dtl, format_pra, format_sys, to_json
from asr.score.result import ScoreResult


def write_reports(
    result: ScoreResult,
    out_dir: str | os.PathLike,
    name: str,
    formats: Sequence[str] = REPORT_FORMATS,
) -> list[Path]:
    """Write ``out_dir/name.FORMAT`` for each format, each file atomically; return the paths.

    An unknown format is a ValueError before anything is written; all reports are rendered
    before the first file is written, so a failure while rendering writes nothing either.
    """
    unknown = [f for f in formats if f not in REPORT_FORMATS]
    if unknown:
        raise ValueError(f"unknown report format(s) {unknown}; choose from {REPORT_FORMATS}")
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"report name must be a plain file name, not {name!r}")
    renderers = {
        "sys": format_sys,
        "pra": format_pra,
        "dtl": format_dtl,
        "json": lambda r: (
            json.dumps(to_json(r), ensure_ascii=False, indent=1, allow_nan=False) + "\n"
        ),
        "html": format_html,
    }
    texts = {fmt: renderers[fmt](result) for fmt in dict.fromkeys(formats)}
    paths = []
    for fmt, text in texts.items():
        path = Path(out_dir) / f"{name}.{fmt}"
        with atomic_write(path) as handle:
            handle.write(text)
        paths.append(path)
    return paths
