"""Scoring reports: NIST sclite's ``.sys``, ``.pra`` and ``.dtl`` files, JSON, and writing them.

The text reports reproduce what ``sclite -r REF trn -h HYP trn -i spu_id -s -o sum pra dtl``
writes, byte for byte, for the same alignments (tests/test_score_reports.py runs sclite and
compares). That means copying sclite's quirks too, each noted where it is copied:

- percentages are computed as sclite's ``pct`` macro does (``num / den * 100.0`` in double,
  0 for no words) and rounded half away from zero by its ``F_ROUND`` before ``printf``;
  Python's own rounding differs at ties such as 35 / 400 = 8.75% (sclite: 8.8);
- speakers appear in the order they first appear (sclite: in the hypothesis file; here: in
  ``result.utterances``), not sorted;
- column widths of the alignment rows and of the tables count UTF-8 bytes, not characters;
- the ``.sys`` statistics over speakers skip speakers without reference words with the same
  (buggy) array shifting as sclite's ``print_system_summary``;
- "with substitions" is spelt as the Debian sctk 2.4.10 sclite spells it.

Only the header lines that name the inputs differ by design: they use ``result.hyp_name``
(sclite's "system" title, the hypothesis path) and add ``result.settings`` as extra lines where
sclite's layout leaves room for them (centred lines under the ``.sys`` title, as sclite does for
weighted scoring; ``name: value`` lines under ``System name:`` in ``.pra`` and under the
``.dtl`` title). With no settings those files are sclite's exactly.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from asr.score.result import Alignment, ScoreResult

REPORT_FORMATS = ("sys", "pra", "dtl", "json", "html")

# sclite centres its report titles and tables on an 80-column page (SCREEN_WIDTH).
_PAGE_WIDTH = 80
# sclite's .pra line width: rows of an alignment longer than this continue on ">> " lines.
_PRA_LINE_WIDTH = 1000
# How a space token (character scoring) is shown, where a bare " " would be invisible.
_SPACE_SYMBOL = "<space>"


# ---------------------------------------------------------------------------------------------
# sclite's arithmetic


def _f32(value: float) -> float:
    """Round to the nearest single-precision float, as a C ``(float)`` cast does."""
    return struct.unpack("f", struct.pack("f", value))[0]


def _pct(num: float, den: float) -> float:
    """sclite's ``pct`` macro: ``den == 0 ? 0 : (double)num / (double)den * 100.0``."""
    if den == 0:
        return 0.0
    return num / den * 100.0


def _fround(value: float, places: int) -> float:
    """sclite's ``F_ROUND``: scale, add +-0.5, truncate to int, (float) cast, scale back."""
    scale = 10.0**places
    return _f32(float(int(value * scale + (0.5 if value > 0.0 else -0.5)))) / scale


def _mean_sd_median(values: Sequence[float]) -> tuple[float, float, float]:
    """sclite's ``calc_mean_var_std_dev_Zstat(_double)``: mean, sample S.D. (n - 1), median."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0, 0.0
    total = 0.0
    for v in values:  # summed in order, as the C loop does
        total += v
    mean = total / n
    ordered = sorted(values)
    median = (ordered[n // 2] + ordered[n // 2 - 1]) / 2 if n % 2 == 0 else float(ordered[n // 2])
    squares = 0.0
    for v in values:
        squares += (v - mean) * (v - mean)
    sd = math.sqrt(squares / (n - 1)) if squares != 0.0 else 0.0
    return mean, sd, median


def _blen(text: str) -> int:
    """Width of a token as sclite counts it: UTF-8 bytes."""
    return len(text.encode("utf-8"))


def _ljust_bytes(text: str, width: int) -> str:
    return text + " " * (width - _blen(text))


def _center(text: str, width: int) -> str:
    """sclite's ``center()``: left pad ``(width - len) / 2`` (C division), right pad the rest."""
    length = _blen(text)
    front = int((width - length) / 2)  # C integer division truncates toward zero
    back = width - (length + front)
    return " " * max(front, 0) + text + " " * max(back, 0)


def _show(token: str) -> str:
    return _SPACE_SYMBOL if token == " " else token


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------------
# Speakers


def speaker_of(result: ScoreResult, utt_id: str) -> str:
    """The utterance's speaker: ``result.speakers``, else sclite's ``-i spu_id`` rule.

    sclite takes the part of the id before the first ``-`` or, with no ``-``, before the first
    ``_``; an id with neither is the speaker itself here (sclite reports an error for it).
    """
    speaker = result.speakers.get(utt_id)
    if speaker is not None:
        return speaker
    for separator in ("-", "_"):
        if separator in utt_id:
            return utt_id.split(separator, 1)[0]
    return utt_id


def speaker_groups(result: ScoreResult) -> list[tuple[str, list[Alignment]]]:
    """Utterances grouped by speaker, speakers in order of first appearance (sclite's order)."""
    groups: dict[str, list[Alignment]] = {}
    for a in result.utterances:
        groups.setdefault(speaker_of(result, a.utt_id), []).append(a)
    return list(groups.items())


@dataclass(frozen=True)
class _Counts:
    sentences: int
    sentence_errors: int
    hits: int
    subs: int
    dels: int
    ins: int

    @property
    def ref_words(self) -> int:
        return self.hits + self.subs + self.dels

    @property
    def errors(self) -> int:
        return self.subs + self.dels + self.ins


def _count(utterances: Iterable[Alignment]) -> _Counts:
    n = serr = c = s = d = i = 0
    for a in utterances:
        n += 1
        serr += a.errors > 0
        c, s, d, i = c + a.hits, s + a.subs, d + a.dels, i + a.ins
    return _Counts(n, serr, c, s, d, i)


# ---------------------------------------------------------------------------------------------
# sclite's report generator (rpg.c), for the tables it draws in .sys


class _Table:
    """A port of the parts of sclite's ``Desc_*`` report generator that the ``.sys`` uses.

    Rows have a format such as ``"l|cc|cccccc"`` (one letter per column: c centre, l left,
    r right; ``|`` draws a rule between columns). Rows with the same number of columns share
    column widths; the table is as wide as its widest row set and the narrower sets spread the
    difference over their columns. Cells may hold several lines separated by ``//``.
    """

    def __init__(self) -> None:
        self._formats: dict[str, tuple[str, str, int]] = {}
        self._rows: list[tuple[str, list[str], str]] = []
        self._pending = ""

    def separate(self, char: str) -> None:
        """A rule of ``char`` before the next row."""
        self._pending += char

    def row(self, fmt: str, *values: str) -> None:
        if fmt not in self._formats:
            self._formats[fmt] = self._parse(fmt)
        self._rows.append((fmt, list(values), self._pending))
        self._pending = ""

    @staticmethod
    def _parse(fmt: str) -> tuple[str, str, int]:
        just, inter, extra = [], [], 0
        p = 0
        while p < len(fmt) and fmt[p] != ":":
            if fmt[p] in "cClLrRna":
                just.append(fmt[p])
                p += 1
            if p < len(fmt) and fmt[p] == "|":
                inter.append("|")
                p += 1
            elif p < len(fmt) and fmt[p] == "=":
                inter.append("=")
                extra += 1
                p += 1
            else:
                inter.append(" ")
        return "".join(just), "".join(inter), extra

    @staticmethod
    def _segments(value: str) -> list[str]:
        parts = value.split("//")
        # After a "//" break one space is skipped when sizing (rpg.c).
        return [parts[0]] + [p[1:] if p.startswith(" ") else p for p in parts[1:]]

    @staticmethod
    def _next_piece(text: str, width: int) -> tuple[str, str]:
        """rpg.c's ``get_next_string_value``: up to ``width`` bytes, a ``//`` break, the rest."""
        raw = text.encode("utf-8")
        x = 0
        while x < width and x < len(raw) and raw[x : x + 2] != b"//":
            x += 1
        p = x
        if raw[p : p + 2] == b"//":
            p += 2
        elif p < len(raw):  # too long: back up to a space
            while p != 0 and raw[p : p + 1] != b" ":
                p -= 1
                x -= 1
            if raw[p : p + 1] == b" ":
                p += 1
        return raw[:x].decode("utf-8", "replace"), raw[p:].decode("utf-8", "replace")

    def render(self, page_width: int = _PAGE_WIDTH) -> str:
        sizes: dict[int, list[int]] = {}
        for fmt, values, _ in self._rows:
            just = self._formats[fmt][0]
            widths = sizes.setdefault(len(just), [0] * len(just))
            for c in range(len(just)):
                value = values[c] if c < len(values) else ""
                for segment in self._segments(value) if value else []:
                    widths[c] = max(widths[c], _blen(segment))
        min_width = {}
        width = 0
        for fmt, (just, _, extra) in self._formats.items():
            n = len(just)
            min_width[fmt] = 2 + sum(sizes.get(n, [0] * n)) + extra + n - 1
            width = max(width, min_width[fmt])
        indent = " " * ((page_width - width) // 2) if width < page_width else ""

        lines = [indent + "," + "-" * (width - 2) + "."]
        previous_inter = ""
        for fmt, values, separators in self._rows:
            just, inter, _ = self._formats[fmt]
            n = len(just)
            underage = width - min_width[fmt]
            text_sizes = list(sizes[n])
            col_sizes = []
            added = 0
            for c in range(n):
                if c != n - 1:
                    # SCTK 2.4.x rounds (F_ROUND) the running share, where older rpg.c
                    # truncated: with a wide title the extra columns fall differently.
                    adjust = int(_fround(underage / n * (c + 1), 0)) - added
                    added += adjust
                else:
                    adjust = underage - added
                col_sizes.append(text_sizes[c] + adjust)
            for char in separators:
                out = [indent, "|"]
                for c in range(n):
                    out.append(char * col_sizes[c])
                    if c == n - 1:
                        continue
                    rule = inter[c]
                    before = previous_inter[c] if c < len(previous_inter) else ""
                    if rule != " ":
                        if char == " ":
                            out.append("||" if rule == "=" else rule)
                        elif rule in "|=" and char == "-" and before in ("|", "="):
                            out.append("++" if rule == "=" else "+")
                        else:
                            out.append(char * (2 if rule == "=" else 1))
                    else:
                        out.append(char)
                out.append("|")
                lines.append("".join(out))
            remaining = [values[c] if c < len(values) else "" for c in range(n)]
            not_done = True
            while not_done:
                not_done = False
                out = [indent, "|"]
                for c in range(n):
                    text_width = text_sizes[c]
                    spare = col_sizes[c] - text_width
                    piece, remaining[c] = self._next_piece(remaining[c], text_width)
                    if just[c] in "cC":
                        cell = _center(piece, text_width)
                    elif just[c] in "rR":
                        cell = " " * (text_width - _blen(piece)) + piece
                    else:
                        cell = _ljust_bytes(piece, text_width)
                    out.append(" " * (spare // 2) + cell + " " * (spare - spare // 2))
                    if remaining[c]:
                        not_done = True
                    if c != n - 1:
                        out.append("||" if inter[c] == "=" else inter[c])
                out.append("|")
                lines.append("".join(out))
            previous_inter = inter
        lines.append(indent + "`" + "-" * (width - 2) + "'")
        return "".join(line + "\n" for line in lines)


# ---------------------------------------------------------------------------------------------
# .sys


def format_sys(result: ScoreResult) -> str:
    """sclite's ``.sys`` report: the per-speaker summary table with Sum/Avg, Mean, S.D., Median."""
    groups = [(spk, _count(utts)) for spk, utts in speaker_groups(result)]
    n = len(groups)
    corr, sub, ins, dele, err, serr = ([0.0] * n for _ in range(6))
    sentences = [g.sentences for _, g in groups]
    words = [g.ref_words for _, g in groups]
    for k, (_, g) in enumerate(groups):
        refs = g.ref_words
        if refs == 0:  # no reference words: sclite reports raw counts instead of percentages
            corr[k], sub[k], ins[k], dele[k], err[k] = g.hits, g.subs, g.ins, g.dels, g.errors
        else:
            corr[k], sub[k] = _pct(g.hits, refs), _pct(g.subs, refs)
            ins[k], dele[k] = _pct(g.ins, refs), _pct(g.dels, refs)
            err[k] = _pct(g.errors, refs)
        serr[k] = _pct(g.sentence_errors, g.sentences)

    char_align = result.unit == "char"
    table = _Table()
    table.row("c", result.hyp_name)
    table.separate("-")
    table.row(
        "l|cc|cccccc",
        " SPKR",
        " # Snt",
        "# Chr" if char_align else "# Wrd",
        "Corr",
        " Sub",
        " Del",
        " Ins",
        " Err",
        "S.Err",
    )
    zero_speakers = 0
    for k, (spk, _) in enumerate(groups):
        table.separate("-")
        cells = [f" {spk} ", f"{sentences[k]:5d}", f"{words[k]:5d}"]
        rates = (corr[k], sub[k], dele[k], ins[k], err[k])
        if words[k] > 0:
            cells += [f"{_fround(v, 1):5.1f} " for v in rates]
        else:
            cells += [f"{_fround(v, 0):5.0f}*" for v in rates]
            zero_speakers += 1
        cells.append(f"{_fround(serr[k], 1):5.1f} ")
        table.row("l|cc|cccccc", *cells)

    total = _count(result.utterances)
    tot_ref = total.ref_words
    table.separate("=")
    table.row(
        "l|cc|cccccc",
        " Sum/Avg",
        f"{total.sentences:5d}",
        f"{tot_ref:5d}",
        *(
            f"{_fround(_pct(v, tot_ref), 1):5.1f} "
            for v in (total.hits, total.subs, total.dels, total.ins, total.errors)
        ),
        f"{_fround(_pct(total.sentence_errors, total.sentences), 1):5.1f} ",
    )

    if zero_speakers:
        # sclite drops speakers without reference words from the word statistics by shifting
        # the later ones down over them; it does not re-check the index it shifted into, so a
        # run of such speakers leaves one of them in. Copied as is.
        arrays = (corr, sub, ins, dele, err)
        for k in range(n):
            if words[k] == 0:
                for array in arrays:
                    array[k : n - 1] = array[k + 1 : n]
                    array[n - 1] = -1000.0
    kept = n - zero_speakers
    stats = {
        "sent": _mean_sd_median(sentences),
        "word": _mean_sd_median(words),
        "corr": _mean_sd_median(corr[:kept]),
        "sub": _mean_sd_median(sub[:kept]),
        "del": _mean_sd_median(dele[:kept]),
        "ins": _mean_sd_median(ins[:kept]),
        "err": _mean_sd_median(err[:kept]),
        "serr": _mean_sd_median(serr),
    }
    mark = "+" if zero_speakers else " "
    table.separate("=")
    for index, label in enumerate((" Mean ", " S.D. ", "Median")):
        cells = [label]
        cells += [f"{_fround(stats[key][index], 1):5.1f} " for key in ("sent", "word")]
        cells += [
            f"{_fround(stats[key][index], 1):5.1f}{mark}"
            for key in ("corr", "sub", "del", "ins", "err")
        ]
        cells.append(f"{_fround(stats['serr'][index], 1):5.1f} ")
        table.row("c|cc|cccccc", *cells)

    head = "\n\n\n" + _center("SYSTEM SUMMARY PERCENTAGES by SPEAKER", _PAGE_WIDTH) + "\n\n"
    if result.settings:
        # sclite centres extra header lines here for weighted scoring; settings go the same way.
        head += "".join(
            _center(f"{_one_line(name)}: {_one_line(value)}", _PAGE_WIDTH) + "\n"
            for name, value in result.settings
        )
        head += "\n"
    text = head + table.render()
    if zero_speakers:
        text += (
            "\n"
            "* No Reference words for this/these speaker(s).  Word counts supplied\n"
            "  rather than percents.\n"
            "# No Reference words for this/these speaker(s).  NCE not computable.\n"
            "+ Speaker(s) with no reference data is ignored\n"
        )
    return text


# ---------------------------------------------------------------------------------------------
# .pra


def _alignment_rows(
    a: Alignment, line_width: int = _PRA_LINE_WIDTH, *, upper_errors: bool = False
) -> list[str]:
    """REF/HYP/Eval rows as sclite's ``PATH_n_print`` writes them, wrapped at ``line_width``.

    ``upper_errors``: error tokens in upper case, as sclite shows them without ``-s``.
    """
    cells = []
    for code, ref, hyp in a.steps():
        r = "" if ref is None else _show(ref)
        h = "" if hyp is None else _show(hyp)
        if upper_errors and code != "C":
            r, h = r.upper(), h.upper()
        # The gap is as many stars as the other side is wide (sclite caps stars at 40; a
        # longer token would make it read before its star string).
        r_len = 1 if code == "I" else _blen(r)
        h_len = 1 if code == "D" else _blen(h)
        if code == "I":
            r = "*" * _blen(h)
        if code == "D":
            h = "*" * _blen(r)
        mark = "" if code == "C" else code
        cells.append((r, h, mark, max(r_len, h_len)))
    rows: list[str] = []
    used, total = 0, len(cells)
    while used < total:
        width = 9 if used else 6
        i = used
        while width < line_width and i < total:
            width += 1 + cells[i][3]
            i += 1
        end = i - (1 if i < total else 0)
        if end == used:  # one token wider than a line: sclite would loop forever here
            end = used + 1
        prefix = ">> " if used else ""
        if used:
            rows.append("")
        chunk = cells[used:end]
        rows.append(prefix + "REF:  " + "".join(_ljust_bytes(c[0], c[3]) + " " for c in chunk))
        rows.append(prefix + "HYP:  " + "".join(_ljust_bytes(c[1], c[3]) + " " for c in chunk))
        rows.append(prefix + "Eval: " + "".join(_ljust_bytes(c[2], c[3]) + " " for c in chunk))
        used = end
    return rows


def format_pra_block(a: Alignment, *, case_sensitive: bool = True) -> str:
    """One utterance as sclite ``-s`` prints it in ``.pra`` (case kept, an Attributes line).

    sclite's .pra shows only the case-sensitive attribute, even for ``-c`` (characters).
    ``case_sensitive=False`` gives the block of sclite without ``-s``: no Attributes line,
    errors in upper case.
    """
    lines = [
        f"id: ({a.utt_id})",
        f"Scores: (#C #S #D #I) {a.hits} {a.subs} {a.dels} {a.ins}",
        *(["Attributes: Case_sensitve "] if case_sensitive else []),  # sic: sclite's spelling
        *_alignment_rows(a, upper_errors=not case_sensitive),
    ]
    return "".join(line + "\n" for line in lines)


def _header_settings(result: ScoreResult, indent: str = "") -> str:
    return "".join(
        f"{indent}{_one_line(name) + ':':<14} {_one_line(value)}\n"
        for name, value in result.settings
    )


def format_pra(result: ScoreResult) -> str:
    """sclite's ``.pra``: the speakers, then every utterance's alignment grouped by speaker."""
    groups = speaker_groups(result)
    out = ["\n\n\t\tDUMP OF SYSTEM ALIGNMENT STRUCTURE\n\n"]
    out.append(f"System name:   {result.hyp_name}\n")
    out.append(_header_settings(result))
    out.append("\nSpeakers: \n")
    out.extend(f"   {k:2d}:  {spk}\n" for k, (spk, _) in enumerate(groups))
    out.append("\n")
    for k, (spk, utts) in enumerate(groups):
        out.append(f"Speaker sentences{k:4d}:  {spk}   #utts: {len(utts)}\n")
        for a in utts:
            out.append(format_pra_block(a))
            out.append("\n")
    out.append("\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Confusions and .dtl


@dataclass(frozen=True)
class Confusions:
    """What went wrong, word by word, sorted as sclite's ``.dtl`` sorts it.

    Each list is sorted by count, most frequent first, ties in byte order of the text sclite
    shows (``"ref ==> hyp"`` for pairs). ``substituted`` are reference words that got a wrong
    hypothesis word (sclite's SUBSTITUTIONS); ``falsely_recognized`` are the hypothesis words
    that replaced them.
    """

    pairs: list[tuple[str, str, int]]
    insertions: list[tuple[str, int]]
    deletions: list[tuple[str, int]]
    substituted: list[tuple[str, int]]
    falsely_recognized: list[tuple[str, int]]


def _ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
    # sclite's AUTO_LEX_printout: by count, decreasing; equal counts in strcmp (byte) order.
    return sorted(counts.items(), key=lambda item: (-item[1], item[0].encode("utf-8")))


def _confusion_counts(result: ScoreResult) -> dict[str, dict[str, int]]:
    tables: dict[str, dict[str, int]] = {k: {} for k in ("pairs", "ins", "del", "sub", "false")}
    pairs, ins, dels = tables["pairs"], tables["ins"], tables["del"]
    subs, false = tables["sub"], tables["false"]
    for a in result.utterances:
        if a.hits == len(a.codes):
            continue
        for code, ref, hyp in a.steps():
            if code == "S":
                r, h = _show(ref), _show(hyp)  # type: ignore[arg-type]
                key = f"{r} ==> {h}"
                pairs[key] = pairs.get(key, 0) + 1
                subs[r] = subs.get(r, 0) + 1
                false[h] = false.get(h, 0) + 1
            elif code == "I":
                h = _show(hyp)  # type: ignore[arg-type]
                ins[h] = ins.get(h, 0) + 1
            elif code == "D":
                r = _show(ref)  # type: ignore[arg-type]
                dels[r] = dels.get(r, 0) + 1
    return tables


def confusions(result: ScoreResult, top: int | None = None) -> Confusions:
    """Substitution pairs, inserted, deleted, substituted and falsely recognised words.

    ``top`` keeps the first ``top`` entries of each list.
    """
    tables = _confusion_counts(result)
    pairs = []
    for key, count in _ranked(tables["pairs"]):
        ref, hyp = key.split(" ==> ", 1)
        pairs.append((ref, hyp, count))
    lists = [
        pairs,
        _ranked(tables["ins"]),
        _ranked(tables["del"]),
        _ranked(tables["sub"]),
        _ranked(tables["false"]),
    ]
    if top is not None:
        lists = [items[:top] for items in lists]
    return Confusions(*lists)  # type: ignore[arg-type]


def _lex_printout(title: str, ranked: list[tuple[str, int]]) -> str:
    lines = [f"{title:<30}   Total                 ({len(ranked)})"]
    lines.append(f"{'':<30}   With >=  1 occurrences ({len(ranked)})")
    lines.append("")
    lines.extend(f"{k:4d}: {count:4d}  ->  {text}" for k, (text, count) in enumerate(ranked, 1))
    lines.append("     -------")
    lines.append(f"     {sum(c for _, c in ranked):5d}")
    lines.append("")
    return "".join(line + "\n" for line in lines)


def format_dtl(result: ScoreResult) -> str:
    """sclite's overall ``.dtl``: sentence and word totals, then the five confusion lists."""
    total = _count(result.utterances)
    with_sub = sum(1 for a in result.utterances if a.subs)
    with_del = sum(1 for a in result.utterances if a.dels)
    with_ins = sum(1 for a in result.utterances if a.ins)
    n = total.sentences

    def sentence_line(label: str, count: int) -> str:
        return f"{label:<40}{_fround(_pct(count, n), 1):5.1f}%   ({count:4d})\n"

    out = [f"DETAILED OVERALL REPORT FOR THE SYSTEM: {result.hyp_name}\n"]
    out.append(_header_settings(result, indent="    "))
    out.append("\nSENTENCE RECOGNITION PERFORMANCE\n\n")
    out.append(f"{' sentences':<50}{n:4d}\n")
    out.append(sentence_line(" with errors", total.sentence_errors) + "\n")
    out.append(sentence_line("   with substitions", with_sub))  # sic: sclite 2.4.10's spelling
    out.append(sentence_line("   with deletions", with_del))
    out.append(sentence_line("   with insertions", with_ins))
    out.append("\n\nWORD RECOGNITION PERFORMANCE\n\n")

    refs, errors = total.ref_words, total.errors

    def word_line(label: str, count: int) -> str:
        if refs > 0:
            return f"{label:<26}=  {_fround(_pct(count, refs), 1):5.1f}%   ({count:4d})\n"
        return f"{label:<26}=  UNDEF%   ({count:4d})\n"

    out.append(word_line("Percent Total Error", errors) + "\n")
    out.append(word_line("Percent Correct", total.hits) + "\n")
    out.append(word_line("Percent Substitution", total.subs))
    out.append(word_line("Percent Deletions", total.dels))
    out.append(word_line("Percent Insertions", total.ins))
    if refs > 0:
        accuracy = _fround(100.0 - _pct(errors, refs), 1)
        out.append(f"{'Percent Word Accuracy':<26}=  {accuracy:5.1f}%\n")
    else:
        out.append(f"{'Percent Word Accuracy':<26}=  UNDEF%\n")
    out.append("\n\n")
    out.append(f"{'Ref. words':<26}=           ({refs:4d})\n")
    out.append(f"{'Hyp. words':<26}=           ({total.hits + total.subs + total.ins:4d})\n")
    aligned = total.hits + total.subs + total.ins + total.dels
    out.append(f"{'Aligned words':<26}=           ({aligned:4d})\n")

    tables = _confusion_counts(result)
    out.append("\n" + _lex_printout("CONFUSION PAIRS", _ranked(tables["pairs"])) + "\n")
    out.append("\n" + _lex_printout("INSERTIONS", _ranked(tables["ins"])) + "\n")
    out.append("\n" + _lex_printout("DELETIONS", _ranked(tables["del"])) + "\n")
    out.append("\n" + _lex_printout("SUBSTITUTIONS", _ranked(tables["sub"])) + "\n")
    out.append("* NOTE: The 'Substitution' words are those reference words\n")
    out.append("        for which the recognizer supplied an incorrect word.\n\n")
    out.append("\n" + _lex_printout("FALSELY RECOGNIZED", _ranked(tables["false"])) + "\n")
    out.append("* NOTE: The 'Falsely Recognized' words are those hypothesis words\n")
    out.append("        which the recognizer incorrectly substituted for a reference word.\n\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# JSON


def _rate(count: int, total: int) -> float | None:
    """A percentage rounded to 4 places; None where it is infinite (errors over no words)."""
    if total == 0:
        return 0.0 if count == 0 else None
    return round(100.0 * count / total, 4)


def _totals(counts: _Counts, hyp_words: int) -> dict[str, object]:
    return {
        "sentences": counts.sentences,
        "sentence_errors": counts.sentence_errors,
        "ref_words": counts.ref_words,
        "hyp_words": hyp_words,
        "hits": counts.hits,
        "subs": counts.subs,
        "dels": counts.dels,
        "ins": counts.ins,
        "errors": counts.errors,
        "error_rate": _rate(counts.errors, counts.ref_words),
        "sub_rate": _rate(counts.subs, counts.ref_words),
        "del_rate": _rate(counts.dels, counts.ref_words),
        "ins_rate": _rate(counts.ins, counts.ref_words),
        "correct_rate": _rate(counts.hits, counts.ref_words),
        "sentence_error_rate": _rate(counts.sentence_errors, counts.sentences),
    }


def to_json(result: ScoreResult, top: int | None = None) -> dict:
    """Everything in the reports as plain JSON types (an infinite rate is None/null).

    ``top`` limits each confusion list (all by default).
    """
    speakers = []
    for spk, utts in speaker_groups(result):
        entry = {"speaker": spk}
        entry.update(_totals(_count(utts), sum(len(a.hyp) for a in utts)))
        speakers.append(entry)
    utterances = [
        {
            "id": a.utt_id,
            "speaker": speaker_of(result, a.utt_id),
            "ref": list(a.ref),
            "hyp": list(a.hyp),
            "codes": a.codes,
            "hits": a.hits,
            "subs": a.subs,
            "dels": a.dels,
            "ins": a.ins,
            "errors": a.errors,
            "ref_words": len(a.ref),
            "missing": False,
        }
        for a in result.utterances
    ]
    missing = set(result.missing)
    for entry in utterances:
        entry["missing"] = entry["id"] in missing
    found = confusions(result, top)
    return {
        "ref": result.ref_name,
        "hyp": result.hyp_name,
        "unit": result.unit,
        "metric": result.metric,
        "settings": [{"name": str(n), "value": str(v)} for n, v in result.settings],
        "summary": _totals(_count(result.utterances), result.hyp_words),
        "missing": list(result.missing),
        "speakers": speakers,
        "utterances": utterances,
        "confusions": {
            "pairs": [{"ref": r, "hyp": h, "count": c} for r, h, c in found.pairs],
            "insertions": [{"word": w, "count": c} for w, c in found.insertions],
            "deletions": [{"word": w, "count": c} for w, c in found.deletions],
            "substituted": [{"word": w, "count": c} for w, c in found.substituted],
            "falsely_recognized": [{"word": w, "count": c} for w, c in found.falsely_recognized],
        },
    }
