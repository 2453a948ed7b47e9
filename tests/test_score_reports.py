"""asr.score.reports and asr.score.html: sclite's .sys/.pra/.dtl byte for byte, JSON, HTML.

The sclite comparisons take the alignments from sclite's own .pra output (parsed back into
edit codes), so they test the report formatting alone, whatever our aligner would choose.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import random
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from asr.score import report_files
from asr.score.html import format_html
from asr.score.report_files import write_reports
from asr.score.reports import (
    confusions,
    format_dtl,
    format_pra,
    format_sys,
    speaker_groups,
    to_json,
)
from asr.score.result import Alignment, ScoreResult

# ---------------------------------------------------------------------------------------------
# sclite


def _run_sclite(
    sclite: list[str], workdir: Path, refs: dict[str, str], hyps: dict[str, str]
) -> dict[str, bytes]:
    """Run sclite in ``workdir`` on ref.trn/hyp.trn; return its out.sys/.pra/.dtl bytes."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name, texts in (("ref.trn", refs), ("hyp.trn", hyps)):
        lines = "".join(f"{text} ({utt})\n" for utt, text in texts.items())
        (workdir / name).write_text(lines, encoding="utf-8")
    # Relative names, so that sclite's title ("hyp.trn") is the result's hyp_name.
    command = sclite + ["-r", "ref.trn", "trn", "-h", "hyp.trn", "trn", "-i", "spu_id", "-s"]
    command += ["-o", "sum", "pra", "dtl", "-O", ".", "-n", "out"]
    subprocess.run(command, cwd=workdir, capture_output=True, check=True)
    return {ext: (workdir / f"out.{ext}").read_bytes() for ext in ("sys", "pra", "dtl")}


_BLOCK = re.compile(
    r"^id: \((\S+)\)\nScores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)\n"
    r"Attributes: [^\n]*\n((?:(?:>> )?(?:REF|HYP|Eval):[^\n]*\n|\n(?=>> ))*)",
    re.MULTILINE,
)


def _parse_pra(text: str) -> list[Alignment]:
    """Alignments back from sclite's .pra (-s): a gap is a run of '*' (no test token is)."""
    alignments = []
    for match in _BLOCK.finditer(text):
        refs: list[str] = []
        hyps: list[str] = []
        for line in match.group(6).splitlines():
            line = line.removeprefix(">> ")
            if line.startswith("REF:"):
                refs += line[5:].split()
            elif line.startswith("HYP:"):
                hyps += line[5:].split()
        codes, ref, hyp = [], [], []
        for r, h in zip(refs, hyps, strict=True):
            if set(r) == {"*"}:
                codes.append("I")
                hyp.append(h)
            elif set(h) == {"*"}:
                codes.append("D")
                ref.append(r)
            else:
                codes.append("C" if r == h else "S")
                ref.append(r)
                hyp.append(h)
        a = Alignment(match.group(1), tuple(ref), tuple(hyp), "".join(codes))
        assert (a.hits, a.subs, a.dels, a.ins) == tuple(int(x) for x in match.groups()[1:5])
        alignments.append(a)
    return alignments


def _sclite_result(
    sclite: list[str], workdir: Path, refs: dict[str, str], hyps: dict[str, str]
) -> tuple[ScoreResult, dict[str, bytes]]:
    theirs = _run_sclite(sclite, workdir, refs, hyps)
    alignments = _parse_pra(theirs["pra"].decode("utf-8"))
    # The parse must give back exactly the transcripts that went in, grouped by speaker as
    # sclite lists them.
    speaker = {u: u.split("-" if "-" in u else "_", 1)[0] for u in refs}
    order = list(dict.fromkeys(speaker.values()))
    assert [a.utt_id for a in alignments] == sorted(refs, key=lambda u: order.index(speaker[u]))
    for a in alignments:
        assert " ".join(a.ref) == refs[a.utt_id] and " ".join(a.hyp) == hyps[a.utt_id]
    return ScoreResult(alignments, ref_name="ref.trn", hyp_name="hyp.trn"), theirs


def _assert_same(ours: str, theirs: bytes, what: str) -> None:
    if ours.encode("utf-8") != theirs:
        diff = difflib.unified_diff(
            theirs.decode("utf-8").splitlines(), ours.splitlines(), "sclite", "ours", lineterm=""
        )
        pytest.fail(f"{what} differs from sclite's:\n" + "\n".join(list(diff)[:40]))


# ---------------------------------------------------------------------------------------------
# Inputs

_WORDS = "the a of to and in is it that for on was <unk> & Apple apple é 日本 x-y".split()


def _mixed_inputs(seed: int = 5) -> tuple[dict[str, str], dict[str, str]]:
    """Speakers first seen in unsorted order, ~15% errors of every kind over a small vocabulary
    (so the same words recur in many confusions with tied counts), multi-byte words, an empty
    reference, an empty hypothesis, both empty, and a 400-word utterance that wraps in .pra and
    whose rates (35/400 = 8.75%) need sclite's rounding."""
    rng = random.Random(seed)
    speakers = ["spkB", "spkA", "spk10", "spk2", "x_y"]
    refs: dict[str, str] = {}
    hyps: dict[str, str] = {}
    for i in range(120):
        ref = [rng.choice(_WORDS) for _ in range(rng.randint(1, 18))]
        hyp: list[str] = []
        for word in ref:
            roll = rng.random()
            if roll < 0.07:
                hyp.append(rng.choice(_WORDS))
            elif roll < 0.11:
                pass
            elif roll < 0.15:
                hyp += [word, rng.choice(_WORDS)]
            else:
                hyp.append(word)
        utt = f"{speakers[i % 5]}-{i:03d}"
        refs[utt], hyps[utt] = " ".join(ref), " ".join(hyp)
    refs["spkB-empty-ref"], hyps["spkB-empty-ref"] = "", "<unk> &"
    refs["spkA-empty-hyp"], hyps["spkA-empty-hyp"] = "a b c", ""
    refs["spkA-both-empty"], hyps["spkA-both-empty"] = "", ""
    long_ref = [f"w{i % 10}" for i in range(400)]
    long_hyp = ["zz" if i % 11 == 3 and i < 385 else w for i, w in enumerate(long_ref)]
    assert sum(r != h for r, h in zip(long_ref, long_hyp, strict=True)) == 35
    refs["tie-long"], hyps["tie-long"] = " ".join(long_ref), " ".join(long_hyp)
    return refs, hyps


def _zero_word_speaker_inputs() -> tuple[dict[str, str], dict[str, str]]:
    """Speakers without reference words, two in a row (sclite's statistics skip them with a
    quirk) and one at the end."""
    refs = {"z1-1": "", "z2-1": "", "n1-1": "a b c d", "n2-1": "a b", "n1-2": "e f", "z3-1": ""}
    hyps = {"z1-1": "x", "z2-1": "", "n1-1": "a q c", "n2-1": "a b c", "n1-2": "e f", "z3-1": "y z"}
    return refs, hyps


# ---------------------------------------------------------------------------------------------
# sclite known answers


def test_reports_match_sclite_byte_for_byte(sclite: list[str], tmp_path: Path) -> None:
    refs, hyps = _mixed_inputs()
    result, theirs = _sclite_result(sclite, tmp_path, refs, hyps)
    # sclite's order: speakers as first seen, not sorted.
    speakers = [spk for spk, _ in speaker_groups(result)]
    assert speakers == ["spkB", "spkA", "spk10", "spk2", "x_y", "tie"]
    _assert_same(format_sys(result), theirs["sys"], ".sys")
    _assert_same(format_pra(result), theirs["pra"], ".pra")
    _assert_same(format_dtl(result), theirs["dtl"], ".dtl")
    # The tie: 35 / 400 = 8.75% is printed 8.8 (Python's "%.1f" would say 8.7 or 8.8 by luck).
    tie_row = next(line for line in format_sys(result).splitlines() if "| tie " in line)
    assert tie_row.split("|")[3].split()[:2] == ["91.3", "8.8"]
    assert ">> REF:  " in format_pra(result)  # the long utterance wrapped


def test_zero_word_speakers_match_sclite(sclite: list[str], tmp_path: Path) -> None:
    refs, hyps = _zero_word_speaker_inputs()
    result, theirs = _sclite_result(sclite, tmp_path, refs, hyps)
    ours = format_sys(result)
    _assert_same(ours, theirs["sys"], ".sys")
    _assert_same(format_pra(result), theirs["pra"], ".pra")
    _assert_same(format_dtl(result), theirs["dtl"], ".dtl")
    assert "    1*" in ours and "* No Reference words" in ours


def test_all_references_empty_match_sclite(sclite: list[str], tmp_path: Path) -> None:
    refs = {"a-1": "", "b-1": "", "a-2": ""}
    hyps = {"a-1": "x y", "b-1": "", "a-2": "x"}
    result, theirs = _sclite_result(sclite, tmp_path, refs, hyps)
    _assert_same(format_sys(result), theirs["sys"], ".sys")
    _assert_same(format_pra(result), theirs["pra"], ".pra")
    _assert_same(format_dtl(result), theirs["dtl"], ".dtl")
    assert "Percent Total Error       =  UNDEF%   (   3)" in format_dtl(result)


def test_unambiguous_alignment_built_by_hand_matches_sclite(
    sclite: list[str], tmp_path: Path
) -> None:
    # Substitutions only and clean deletions: the only alignments, so built without sclite.
    refs = {"s1-a": "one two three", "s2-b": "four five six", "s1-c": "seven"}
    hyps = {"s1-a": "one too three", "s2-b": "four", "s1-c": "seven"}
    ours = ScoreResult(
        [
            Alignment("s1-a", ("one", "two", "three"), ("one", "too", "three"), "CSC"),
            Alignment("s2-b", ("four", "five", "six"), ("four",), "CDD"),
            Alignment("s1-c", ("seven",), ("seven",), "C"),
        ],
        ref_name="ref.trn",
        hyp_name="hyp.trn",
    )
    theirs = _run_sclite(sclite, tmp_path, refs, hyps)
    _assert_same(format_sys(ours), theirs["sys"], ".sys")
    _assert_same(format_pra(ours), theirs["pra"], ".pra")
    _assert_same(format_dtl(ours), theirs["dtl"], ".dtl")


def _dtl_section(text: str, title: str) -> list[tuple[int, str]]:
    section = text.split("\n" + title, 1)[1].split("     -------", 1)[0]
    return [(int(m[1]), m[2]) for m in re.finditer(r"^ *\d+: +(\d+)  ->  (.*)$", section, re.M)]


def test_confusions_sorted_as_sclite_dtl(sclite: list[str], tmp_path: Path) -> None:
    refs, hyps = _mixed_inputs(seed=9)
    result, theirs = _sclite_result(sclite, tmp_path, refs, hyps)
    dtl = theirs["dtl"].decode("utf-8")
    found = confusions(result)
    assert [(c, f"{r} ==> {h}") for r, h, c in found.pairs] == _dtl_section(dtl, "CONFUSION PAIRS")
    for title, ours in (
        ("INSERTIONS", found.insertions),
        ("DELETIONS", found.deletions),
        ("SUBSTITUTIONS", found.substituted),
        ("FALSELY RECOGNIZED", found.falsely_recognized),
    ):
        assert [(c, w) for w, c in ours] == _dtl_section(dtl, title), title
    # Ties exist and are in byte order (so the test exercises the secondary sort).
    counts = [c for _, _, c in found.pairs]
    assert len(counts) > len(set(counts))
    top = confusions(result, top=3)
    assert top.pairs == found.pairs[:3] and top.deletions == found.deletions[:3]
    assert sum(c for _, _, c in found.pairs) == result.subs
    assert sum(c for _, c in found.insertions) == result.ins


def test_settings_and_names_only_add_header_lines(sclite: list[str], tmp_path: Path) -> None:
    refs, hyps = _zero_word_speaker_inputs()
    result, theirs = _sclite_result(sclite, tmp_path, refs, hyps)
    result.settings = [("aligner", "sclite (sub 4, ins 3, del 3)"), ("case", "folded")]
    for ours, sclites in (
        (format_sys(result), theirs["sys"]),
        (format_pra(result), theirs["pra"]),
        (format_dtl(result), theirs["dtl"]),
    ):
        a, b = sclites.decode("utf-8").splitlines(), ours.splitlines()
        added = []
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            assert op in ("equal", "insert"), (op, a[i1:i2], b[j1:j2])
            if op == "insert":
                added += b[j1:j2]
        assert sorted(" ".join(line.split()) for line in added if line.strip()) == [
            "aligner: sclite (sub 4, ins 3, del 3)",
            "case: folded",
        ]
    # Another hypothesis name changes only the lines that name it.
    result.settings = []
    result.hyp_name = "exp/decode/hyp.txt"
    for ours, sclites in ((format_sys(result), theirs["sys"]), (format_dtl(result), theirs["dtl"])):
        changed = [
            (x, y)
            for x, y in zip(sclites.decode("utf-8").splitlines(), ours.splitlines(), strict=True)
            if x != y
        ]
        assert changed and all("hyp.trn" in x and "exp/decode/hyp.txt" in y for x, y in changed)


def _path_name(size: int, alphabet: str) -> str:
    """A relative file path of exactly ``size`` UTF-8 bytes, in components of at most ~93."""
    out, component = "", 0
    chars = itertools.cycle(alphabet)
    while (left := size - len(out.encode("utf-8"))) > 0:
        if component >= 90 and left > 1:
            out, component = out + "/", 0
            continue
        char = next(chars)
        if len(char.encode("utf-8")) > left:
            char = "h"
        out += char
        component += len(char.encode("utf-8"))
    return out


def test_sys_title_of_any_width_matches_sclite(sclite: list[str], tmp_path: Path) -> None:
    """The title (the hypothesis name) is a one-column row; a wide one widens the table and
    sclite spreads the excess over the other rows' columns with rounded running shares."""
    refs = {"spkB-1": "a b c", "spkA-1": "d e", "spkB-2": "x y z w", "c-1": "q"}
    refs["a_rather_long_speaker-1"] = "a b"
    hyps = {"spkB-1": "a c", "spkA-1": "d e f", "spkB-2": "x z w", "c-1": "q"}
    hyps["a_rather_long_speaker-1"] = "b"
    result, _ = _sclite_result(sclite, tmp_path / "base", refs, hyps)
    names = [_path_name(n, "hdir_") for n in [*range(1, 121), 150, 199]]
    names += [_path_name(n, "hé日本x") for n in range(1, 121, 3)]  # bytes, not characters
    failures = []
    for k, name in enumerate(names):
        workdir = tmp_path / str(k)
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "base" / "ref.trn", workdir / "ref.trn")
        shutil.copy(tmp_path / "base" / "hyp.trn", workdir / name)
        command = sclite + ["-r", "ref.trn", "trn", "-h", name, "trn", "-i", "spu_id", "-s"]
        command += ["-o", "sum", "-O", ".", "-n", "out"]
        subprocess.run(command, cwd=workdir, capture_output=True, check=True)
        result.hyp_name = name
        if format_sys(result).encode("utf-8") != (workdir / "out.sys").read_bytes():
            failures.append(name)
    assert not failures, f"{len(failures)} titles differ, the shortest {min(failures, key=len)!r}"
    # The widest title did set the table's width: it and its two borders.
    result.hyp_name = names[121]
    assert len(format_sys(result).splitlines()[-1]) == 199 + 2


def test_speakers_from_result_map_override_the_id_prefix() -> None:
    result = ScoreResult(
        [
            Alignment("b-1", ("x",), ("x",), "C"),
            Alignment("a-1", ("y",), ("z",), "S"),
            Alignment("noprefix", ("y",), (), "D"),
        ],
        speakers={"a-1": "Bob", "b-1": "Bob"},
    )
    assert [(s, len(u)) for s, u in speaker_groups(result)] == [("Bob", 2), ("noprefix", 1)]
    sys_rows = [
        line.split("|")[1].strip() for line in format_sys(result).splitlines() if "|" in line
    ]
    assert "Bob" in sys_rows and "noprefix" in sys_rows and "b" not in sys_rows


def test_empty_result_formats_without_crashing() -> None:
    empty = ScoreResult([])
    assert "Sum/Avg" in format_sys(empty)
    assert "Speakers: \n\n" in format_pra(empty)
    assert "UNDEF" in format_dtl(empty)
    assert to_json(empty)["summary"]["sentences"] == 0
    _check_html(format_html(empty))


# ---------------------------------------------------------------------------------------------
# JSON


def _hand_result() -> ScoreResult:
    return ScoreResult(
        [
            Alignment("s1-u1", ("the", "<unk>", "sat"), ("the", "&", "sat", "down"), "CSCI"),
            Alignment("s1-u2", ("a", "b"), ("a",), "CD"),
            Alignment("s2-u1", (), ("x", '"q"'), "II"),
            Alignment("s2-u2", (), (), ""),
            Alignment("s3-u1", ("<script>", "&amp;"), ("<b>", "&amp;"), "SC"),
        ],
        missing=["s2-u2"],
        settings=[("costs", "sub 4 / ins 3 / del 3"), ("normalise", "<glm> & fillers")],
        ref_name="ref <a>.trn",
        hyp_name="hyp & co.trn",
    )


def test_json_round_trips_and_totals_match() -> None:
    result = _hand_result()
    data = to_json(result)
    again = json.loads(json.dumps(data, allow_nan=False))
    assert again == data
    summary = data["summary"]
    for key in ("hits", "subs", "dels", "ins", "errors", "ref_words", "hyp_words", "sentences"):
        assert summary[key] == getattr(result, key), key
    assert summary["sentence_errors"] == result.sentence_errors
    assert summary["error_rate"] == pytest.approx(result.wer)
    for key in ("hits", "subs", "dels", "ins", "sentences", "ref_words"):
        assert sum(s[key] for s in data["speakers"]) == summary[key], key
    by_speaker = {s["speaker"]: s for s in data["speakers"]}
    assert list(by_speaker) == ["s1", "s2", "s3"]
    assert math.isinf(ScoreResult(result.utterances[2:3]).wer)
    assert by_speaker["s2"]["error_rate"] is None  # 2 insertions over no words: inf -> null
    first = data["utterances"][0]
    assert first == {
        "id": "s1-u1",
        "speaker": "s1",
        "ref": ["the", "<unk>", "sat"],
        "hyp": ["the", "&", "sat", "down"],
        "codes": "CSCI",
        "hits": 2,
        "subs": 1,
        "dels": 0,
        "ins": 1,
        "errors": 2,
        "ref_words": 3,
        "missing": False,
    }
    assert data["utterances"][3]["missing"] is True
    assert data["settings"][0] == {"name": "costs", "value": "sub 4 / ins 3 / del 3"}
    assert data["confusions"]["pairs"][0] == {"ref": "<script>", "hyp": "<b>", "count": 1}
    assert data["confusions"]["deletions"] == [{"word": "b", "count": 1}]


# ---------------------------------------------------------------------------------------------
# HTML


class _StrictHTML(HTMLParser):
    """Checks that every element is closed in order; collects tags and attributes."""

    VOID = {"meta", "input", "br", "img", "hr", "link"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.problems: list[str] = []
        self.decl = ""

    def handle_decl(self, decl: str) -> None:
        self.decl = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def _check_html(page: str) -> _StrictHTML:
    parser = _StrictHTML()
    parser.feed(page)
    parser.close()
    assert parser.decl.lower() == "doctype html"
    assert not parser.problems, parser.problems[:5]
    assert not parser.stack, parser.stack
    assert not re.search(r"https?://", page)
    assert not any(tag in ("link", "img", "iframe") for tag, _ in parser.starts)
    assert all("src" not in attrs for _, attrs in parser.starts)
    # Every "&" starts an entity: nothing unescaped, even in the style and script.
    assert not re.search(r"&(?!(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);)", page)
    return parser


def test_html_is_one_self_contained_escaped_page() -> None:
    result = _hand_result()
    page = format_html(result, title="Report <1> & more")
    parser = _check_html(page)
    assert "<unk>" not in page and "&lt;unk&gt;" in page
    assert "<script>&amp;" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;" in page and "&amp;amp;" in page  # the token "&amp;" shown as typed
    assert "&lt;glm&gt; &amp; fillers" in page and "hyp &amp; co.trn" in page
    assert "<title>Report &lt;1&gt; &amp; more</title>" in page
    # One class per error type on the tokens, as many as the result has of each.
    utterances = page.split('<section id="utterances">', 1)[1]
    tokens = utterances.split("</p>", 1)[1]  # after the legend
    assert tokens.count('<span class="sub">') == result.subs
    assert tokens.count('<span class="del">') == result.dels
    assert tokens.count('<span class="ins">') == result.ins
    legend = utterances.split("</p>", 1)[0]
    for kind in ("sub", "del", "ins"):
        assert f'class="{kind}"' in legend
    assert "style=" not in utterances  # tokens are styled by class only
    # Per-speaker bars, one per speaker, widths as inline CSS.
    bars = [a for tag, a in parser.starts if tag == "div" and a.get("class") == "bar"]
    assert len(bars) == len(speaker_groups(result)) == 3
    assert re.search(r'<div class="bar"[^>]*><span class="sub" style="width:\d+\.\d\d%"', page)
    # Readable without the script: the only thing it does is show the (hidden) filter box.
    assert re.search(r'<form id="filter" hidden', page)
    assert page.count('<div class="u') == len(result.utterances)


def test_html_comparison_and_size() -> None:
    rng = random.Random(1)
    utterances = []
    for i in range(1000):
        ref = tuple(rng.choice(_WORDS) for _ in range(10))
        hyp = ("zz",) + ref[1:]
        utterances.append(Alignment(f"spk{i % 7}-{i}", ref, hyp, "S" + "C" * 9))
    result = ScoreResult(utterances)
    other = ScoreResult([Alignment(a.utt_id, a.ref, a.ref, "C" * 10) for a in utterances])
    page = format_html(result, comparison=other, notes=[("paired bootstrap", "p < 0.001")])
    parser = _check_html(page)
    assert sum(1 for t, a in parser.starts if a.get("class") == "bar cmp") == 7
    assert "p &lt; 0.001" in page
    # Small per utterance: about the text plus a few short tags, no per-token styling.
    assert len(page.encode("utf-8")) < 1000 * 400


# ---------------------------------------------------------------------------------------------
# Writing


def test_write_reports_writes_every_format_atomically(tmp_path: Path) -> None:
    result = _hand_result()
    out = tmp_path / "reports"
    paths = write_reports(result, out, "test")
    assert paths == [out / f"test.{ext}" for ext in ("sys", "pra", "dtl", "json", "html")]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files
    assert (out / "test.sys").read_text(encoding="utf-8") == format_sys(result)
    assert (out / "test.pra").read_text(encoding="utf-8") == format_pra(result)
    assert (out / "test.dtl").read_text(encoding="utf-8") == format_dtl(result)
    assert json.loads((out / "test.json").read_text(encoding="utf-8")) == to_json(result)
    assert (out / "test.html").read_text(encoding="utf-8") == format_html(result)
    assert write_reports(result, tmp_path / "one", "x", formats=("json",)) == [
        tmp_path / "one" / "x.json"
    ]


def test_write_reports_failing_format_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _hand_result()
    with pytest.raises(ValueError, match="'txt'"):
        write_reports(result, tmp_path / "a", "r", formats=("sys", "txt"))
    assert not (tmp_path / "a").exists()

    out = tmp_path / "b"
    out.mkdir()
    (out / "r.sys").write_text("old", encoding="utf-8")

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("cannot render")

    monkeypatch.setattr(report_files, "format_html", broken)  # as write_reports calls it
    with pytest.raises(RuntimeError):
        write_reports(result, out, "r")
    assert [p.name for p in out.iterdir()] == ["r.sys"]
    assert (out / "r.sys").read_text(encoding="utf-8") == "old"
