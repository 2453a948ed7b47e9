"""A scoring report as one self-contained HTML page.

Everything is inline (CSS, bars drawn as CSS widths, a few lines of script that only add a
filter box), nothing is fetched, and the page reads fully without the script. Tokens are
marked by class, never by inline style, so 10,000 utterances stay a few megabytes: a correct
word is bare text, an error is ``<span class="sub|del|ins">``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

from asr.score.reports import (
    Confusions,
    _count,
    _Counts,
    confusions,
    speaker_groups,
    speaker_of,
)
from asr.score.result import Alignment, ScoreResult, percent

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;
max-width:72em;padding:0 1em;color:#1f2328;background:#fff}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .5em;
border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.3em 0}
th,td{padding:.15em .6em;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(odd){background:#f6f8fa}
table.meta th{font-weight:600;color:#57606a}
.grid{display:flex;flex-wrap:wrap;gap:1.5em}.grid table{min-width:14em}
caption{text-align:left;font-weight:600;padding:.2em 0}
.bar{display:flex;width:24em;height:.9em;background:#eaeef2;margin:.3em 0}
.bar.cmp{height:.45em;opacity:.6}
.bar span{display:block;height:100%}
.bar .sub,.key.sub{background:#d4a72c}.bar .del,.key.del{background:#cf222e}
.bar .ins,.key.ins{background:#0969da}.bar .inf{background:repeating-linear-gradient(45deg,
#cf222e 0 4px,#eaeef2 4px 8px);width:100%}
.key{display:inline-block;width:.9em;height:.9em;vertical-align:-.1em}
.u{margin:.5em 0;padding:.3em .5em;border-left:3px solid #d0d7de}
.u.e{border-left-color:#cf222e}
.h{color:#57606a;font-size:.9em}.h b{color:#1f2328}
.a{margin:.1em 0;word-wrap:break-word}
span.sub{background:#fff1c2;border-radius:3px;padding:0 2px}
span.sub .r{text-decoration:line-through;color:#7d4e00}
span.sub .to{color:#7d4e00;padding:0 .15em}
span.del{background:#ffe1e1;color:#a40e26;text-decoration:line-through;
border-radius:3px;padding:0 2px}
span.ins{background:#ddf4ff;color:#0550ae;text-decoration:underline;
border-radius:3px;padding:0 2px}
.legend span{margin-right:1em}.empty,.miss{color:#8c959f;font-style:italic}
#filter{margin:.5em 0}#filter input[type=search]{width:20em}
"""

# Shows the filter box (hidden in the markup, so without script nothing dead shows). Written
# without "&" or "<" so that the page has no raw markup characters even inside the script.
_SCRIPT = """
(function(){var f=document.getElementById('filter');if(!f)return;f.hidden=false;
var q=document.getElementById('q'),e=document.getElementById('eo'),
n=document.getElementById('shown'),u=document.querySelectorAll('.u');
function run(){var t=q.value.toLowerCase(),c=0;u.forEach(function(x){var ok=true;
if(e.checked)ok=x.classList.contains('e');
if(ok)if(t)ok=x.textContent.toLowerCase().indexOf(t)!==-1;
x.hidden=!ok;if(ok)c++;});n.textContent=c;}
q.addEventListener('input',run);e.addEventListener('change',run);})();
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt_rate(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _speaker_rows(groups: list[tuple[str, list[Alignment]]]) -> dict[str, _Counts]:
    return {spk: _count(utts) for spk, utts in groups}


def _summary(result: ScoreResult, comparison: ScoreResult | None) -> str:
    unit = result.unit
    runs = [result] + ([comparison] if comparison is not None else [])
    head = "<tr><th></th>" + "".join(
        f'<th class="n" colspan="2">{_e(r.hyp_name)}</th>' for r in runs
    )
    if comparison is not None:
        head += '<th class="n">change</th>'
    head += "</tr>"

    def row(label: str, counts: list[int], totals: list[int] | None, rate: bool) -> str:
        cells = ""
        for k, count in enumerate(counts):
            share = _fmt_rate(percent(count, totals[k])) + "%" if totals is not None else ""
            cells += f'<td class="n">{count}</td><td class="n">{share}</td>'
        if comparison is not None:
            if rate and totals is not None:
                a, b = (percent(counts[k], totals[k]) for k in (0, 1))
                delta = b - a if math.isfinite(a) and math.isfinite(b) else math.nan
                cells += f'<td class="n">{delta:+.2f}</td>' if math.isfinite(delta) else "<td></td>"
            else:
                cells += f'<td class="n">{counts[1] - counts[0]:+d}</td>'
        return f"<tr><th>{_e(label)}</th>{cells}</tr>"

    refs = [r.ref_words for r in runs]
    body = [
        row("Sentences", [r.sentences for r in runs], None, False),
        row(
            "Sentences with errors",
            [r.sentence_errors for r in runs],
            [r.sentences for r in runs],
            True,
        ),
        row(f"Reference {unit}s", refs, None, False),
        row(f"Hypothesis {unit}s", [r.hyp_words for r in runs], None, False),
        row("Correct", [r.hits for r in runs], refs, True),
        row("Substitutions", [r.subs for r in runs], refs, True),
        row("Deletions", [r.dels for r in runs], refs, True),
        row("Insertions", [r.ins for r in runs], refs, True),
        row(f"Errors ({result.metric})", [r.errors for r in runs], refs, True),
    ]
    return f'<table class="summary"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _bar(counts: _Counts, scale: float, extra_class: str = "") -> str:
    rate = percent(counts.errors, counts.ref_words)
    label = f"{_fmt_rate(rate)}%"
    cls = f"bar {extra_class}".strip()
    if math.isinf(rate):
        inner = '<span class="inf"></span>'
    else:
        inner = ""
        for kind, count in (("sub", counts.subs), ("del", counts.dels), ("ins", counts.ins)):
            width = 100.0 * percent(count, counts.ref_words) / scale if scale > 0 else 0.0
            if width > 0:
                inner += f'<span class="{kind}" style="width:{width:.2f}%"></span>'
    return f'<div class="{cls}" role="img" aria-label="{_e(label)}">{inner}</div>'


def _speakers(result: ScoreResult, comparison: ScoreResult | None) -> str:
    groups = speaker_groups(result)
    ours = _speaker_rows(groups)
    theirs = _speaker_rows(speaker_groups(comparison)) if comparison is not None else {}
    finite = [percent(c.errors, c.ref_words) for c in list(ours.values()) + list(theirs.values())]
    finite = [v for v in finite if math.isfinite(v)]
    scale = max(finite, default=0.0) or 1.0
    head = (
        '<tr><th>Speaker</th><th class="n">Snt</th><th class="n">Wrd</th><th class="n">Sub</th>'
        f'<th class="n">Del</th><th class="n">Ins</th><th class="n">{_e(result.metric)}</th>'
    )
    if comparison is not None:
        head += f'<th class="n">{_e(comparison.hyp_name)}</th>'
    head += f"<th>0 to {scale:.1f}%</th></tr>"
    rows = []
    for spk, c in ours.items():
        cells = [
            f"<th>{_e(spk)}</th>",
            f'<td class="n">{c.sentences}</td>',
            f'<td class="n">{c.ref_words}</td>',
            f'<td class="n">{_fmt_rate(percent(c.subs, c.ref_words))}</td>',
            f'<td class="n">{_fmt_rate(percent(c.dels, c.ref_words))}</td>',
            f'<td class="n">{_fmt_rate(percent(c.ins, c.ref_words))}</td>',
            f'<td class="n">{_fmt_rate(percent(c.errors, c.ref_words))}</td>',
        ]
        bars = _bar(c, scale)
        if comparison is not None:
            other = theirs.get(spk)
            rate = _fmt_rate(percent(other.errors, other.ref_words)) if other else ""
            cells.append(f'<td class="n">{rate}</td>')
            if other is not None:
                bars += _bar(other, scale, "cmp")
        cells.append(f"<td>{bars}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="speakers"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _word_table(caption: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{v}</td>' if isinstance(v, int) else f"<td>{_e(v)}</td>" for v in row
        )
        + "</tr>"
        for row in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(header)}" class="empty">none</td></tr>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return (
        f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _confusions(found: Confusions) -> str:
    return (
        '<div class="grid">'
        + "".join(
            (
                _word_table("Substitutions", ("ref", "hyp", "count"), found.pairs),
                _word_table("Insertions", ("hyp", "count"), found.insertions),
                _word_table("Deletions", ("ref", "count"), found.deletions),
                _word_table("Substituted ref words", ("ref", "count"), found.substituted),
                _word_table("Falsely recognised", ("hyp", "count"), found.falsely_recognized),
            )
        )
        + "</div>"
    )


def _tokens(a: Alignment) -> str:
    out = []
    for code, ref, hyp in a.steps():
        if code == "C":
            out.append(_e(ref))
        elif code == "S":
            out.append(
                f'<span class="sub"><span class="r">{_e(ref)}</span>'
                f'<span class="to">\u2192</span>{_e(hyp)}</span>'
            )
        elif code == "D":
            out.append(f'<span class="del">{_e(ref)}</span>')
        else:
            out.append(f'<span class="ins">{_e(hyp)}</span>')
    return " ".join(out) if out else '<span class="empty">(empty)</span>'


def _utterances(result: ScoreResult) -> str:
    missing = set(result.missing)
    parts = []
    for a in result.utterances:
        cls = "u e" if a.errors else "u"
        flag = ' <span class="miss">(no hypothesis)</span>' if a.utt_id in missing else ""
        parts.append(
            f'<div class="{cls}"><div class="h"><b>{_e(a.utt_id)}</b> '
            f"{_e(speaker_of(result, a.utt_id))} &middot; C {a.hits} S {a.subs} D {a.dels} "
            f"I {a.ins} &middot; {_fmt_rate(percent(a.errors, len(a.ref)))}%{flag}</div>"
            f'<div class="a">{_tokens(a)}</div></div>\n'
        )
    return "".join(parts)


def format_html(
    result: ScoreResult,
    *,
    title: str | None = None,
    comparison: ScoreResult | None = None,
    notes: Sequence[tuple[str, str]] = (),
    top: int = 20,
) -> str:
    """The whole report as one HTML5 page.

    ``comparison`` is another system scored on the same references: the summary and the
    per-speaker table get a column for it. ``notes`` are extra ``(name, value)`` lines for the
    header (e.g. a significance test). ``top`` limits each confusion table.
    """
    title = title or f"{result.metric} report: {result.hyp_name}"
    meta = [("Reference", result.ref_name), ("Hypothesis", result.hyp_name)]
    if comparison is not None:
        meta.append(("Compared with", comparison.hyp_name))
    meta += [("Unit", result.unit), ("Metric", result.metric)]
    meta += [(str(n), str(v)) for n, v in result.settings]
    meta += [(str(n), str(v)) for n, v in notes]
    if result.missing:
        meta.append(("Missing hypotheses", str(len(result.missing))))
    meta_rows = "".join(f"<tr><th>{_e(n)}</th><td>{_e(v)}</td></tr>" for n, v in meta)
    rate = _fmt_rate(result.wer)
    legend = (
        '<p class="legend"><span><span class="key sub"></span> substitution '
        '<span class="sub"><span class="r">ref</span><span class="to">\u2192</span>hyp</span>'
        "</span>"
        '<span><span class="key del"></span> deletion <span class="del">ref</span></span>'
        '<span><span class="key ins"></span> insertion <span class="ins">hyp</span></span></p>'
    )
    filter_box = (
        '<form id="filter" hidden onsubmit="return false"><label>Filter '
        '<input type="search" id="q" placeholder="id, speaker or word"></label> '
        '<label><input type="checkbox" id="eo"> only utterances with errors</label> '
        f'<span class="h"><span id="shown">{len(result.utterances)}</span> shown</span></form>'
    )
    return "".join(
        (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n",
            f"<header><h1>{_e(title)}</h1>\n",
            f"<p><b>{_e(result.metric)} {rate}%</b> over {result.ref_words} {_e(result.unit)}s "
            f"in {result.sentences} utterances</p>\n",
            f'<table class="meta"><tbody>{meta_rows}</tbody></table></header>\n',
            f'<section id="summary"><h2>Summary</h2>\n{_summary(result, comparison)}</section>\n',
            '<section id="speakers"><h2>By speaker</h2>\n',
            f"{_speakers(result, comparison)}</section>\n",
            f'<section id="confusions"><h2>Most frequent errors (top {top})</h2>\n',
            f"{_confusions(confusions(result, top))}</section>\n",
            '<section id="utterances"><h2>Utterances</h2>\n',
            legend,
            "\n",
            filter_box,
            "\n",
            _utterances(result),
            "</section>\n",
            f"<script>{_SCRIPT}</script>\n</body>\n</html>\n",
        )
    )
