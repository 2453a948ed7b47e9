"""Score hypotheses against references: WER/CER/PER counts, Kaldi and sclite reports, tests.

The public face of the package; each module below it does one job:

* ``scoring``: ``wer()`` over transcripts in memory, and Kaldi's ``%WER`` / ``%SER`` lines;
* ``files``: ``score_files()``, scoring two transcript files as ``asr score`` does;
* ``compare``: ``compare_files()``, two systems on one reference and whether they differ;
* ``align`` (the aligner, a C extension with a pure-Python fallback), ``formats`` (reading Kaldi
  text, trn, CTM, STM, JSONL and plain files), ``normalize`` (case, punctuation, fillers, GLM,
  phone maps), ``timed`` (sclite's time-mediated alignment for CTM), ``reports``, ``html`` and
  ``report_files`` (sclite's .sys/.pra/.dtl, JSON, one HTML page) and ``significance``
  (bootstrap intervals, MAPSSWE, sign test).
"""

from asr.score.align import LEVENSHTEIN_COSTS, SCLITE_COSTS, Costs
from asr.score.compare import Comparison, compare_files, write_comparison
from asr.score.files import FileOptions, per_utterance, score_files
from asr.score.result import Alignment, ScoreError, ScoreResult, percent
from asr.score.scoring import (
    METRICS,
    MISSING_POLICIES,
    UNITS,
    Normalize,
    TimedWords,
    Transcript,
    by_speaker,
    check_ids,
    describe_costs,
    format_alignment,
    format_alignments,
    kaldi_line,
    read_transcripts,
    ser_line,
    summary_lines,
    tokenize,
    wer,
    write_alignments,
    write_transcripts,
)

__all__ = [
    "LEVENSHTEIN_COSTS",
    "METRICS",
    "MISSING_POLICIES",
    "SCLITE_COSTS",
    "UNITS",
    "Alignment",
    "Comparison",
    "Costs",
    "FileOptions",
    "Normalize",
    "ScoreError",
    "ScoreResult",
    "TimedWords",
    "Transcript",
    "by_speaker",
    "check_ids",
    "compare_files",
    "describe_costs",
    "format_alignment",
    "format_alignments",
    "kaldi_line",
    "per_utterance",
    "percent",
    "read_transcripts",
    "score_files",
    "ser_line",
    "summary_lines",
    "tokenize",
    "wer",
    "write_alignments",
    "write_comparison",
    "write_transcripts",
]
