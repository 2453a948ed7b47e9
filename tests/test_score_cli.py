"""`asr score` end to end: real recogniser output scored by us and by NIST sclite (Debian sctk).

tests/data/score holds the test-set output of the synthetic-speech recipe's models (see the
README there): real hypotheses with real error patterns, words, characters and phones, six
voices as speakers.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from asr import cli
from asr.score import read_transcripts

DATA = Path(__file__).resolve().parent / "data" / "score"
WORDS_REF = DATA / "synth_words.ref"
WORDS_GREEDY = DATA / "synth_words_greedy.hyp"
WORDS_BEAM = DATA / "synth_words_beam10.hyp"
PHONES_REF = DATA / "synth_phones.ref"
PHONES_BLSTM = DATA / "synth_phones_blstm.hyp"
PHONES_BGRU = DATA / "synth_phones_bgru.hyp"
UTT2SPK = DATA / "synth.utt2spk"


def _speaker_ids() -> dict[str, str]:
    """Our utterance id -> an sclite spu_id id ('speaker-utterance', the speaker before '-')."""
    speakers: dict[str, str] = {}
    for line in UTT2SPK.read_text(encoding="utf-8").splitlines():
        utt, spk = line.split()
        speakers[utt] = spk.replace("-", "_") + "-" + utt.rsplit("-", 1)[1]
    return speakers


def _write_trn(path: Path, text_file: Path, *, chars: bool = False) -> Path:
    """A Kaldi text file as sclite trn, ids renamed 'speaker-utterance'; ``chars``: split into
    characters with <space> between words, as ESPnet feeds sclite for its CER."""
    ids = _speaker_ids()
    lines = []
    for utt, text in read_transcripts(text_file).items():
        if chars:
            text = " ".join("<space>" if c == " " else c for c in text)
        lines.append(f"{text} ({ids[utt]})\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _sclite_run(sclite: list[str], ref: Path, hyp: Path, out: Path, *extra: str) -> str:
    out.mkdir(exist_ok=True)
    command = [*sclite, "-r", str(ref), "trn", "-h", str(hyp), "trn", "-i", "spu_id", "-s"]
    command += [*extra, "-o", "sum", "pra", "dtl", "-O", str(out), "-n", "sclite"]
    subprocess.run(command, capture_output=True, text=True, check=True)
    return (out / "sclite.sys").read_text(encoding="utf-8")


def _rows(sys_text: str) -> list[str]:
    """The .sys table's speaker and summary rows: the lines with four column bars."""
    return [
        line.strip()
        for line in sys_text.splitlines()
        if line.count("|") == 4 and "SPKR" not in line and not line.strip().startswith("|-")
    ]


def _score(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert cli.main(["score", *argv]) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("ref", "hyp", "metric", "chars"),
    [
        (WORDS_REF, WORDS_GREEDY, "WER", False),
        (WORDS_REF, WORDS_BEAM, "WER", False),
        (PHONES_REF, PHONES_BLSTM, "PER", False),
        (WORDS_REF, WORDS_GREEDY, "CER", True),
    ],
)
def test_real_hypotheses_per_speaker_identical_to_sclite(
    sclite: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ref: Path,
    hyp: Path,
    metric: str,
    chars: bool,
) -> None:
    ref_trn = _write_trn(tmp_path / "ref.trn", ref, chars=chars)
    hyp_trn = _write_trn(tmp_path / "hyp.trn", hyp, chars=chars)
    theirs = _sclite_run(sclite, ref_trn, hyp_trn, tmp_path / "sclite")
    # We read the plain trn files (characters split by ourselves, not pre-split).
    our_ref = _write_trn(tmp_path / "ref_words.trn", ref)
    our_hyp = _write_trn(tmp_path / "hyp_words.trn", hyp)
    out = _score(
        capsys,
        str(our_ref),
        str(our_hyp),
        "--metric",
        metric,
        "--speaker-sep",
        "-",
        "--reports",
        str(tmp_path / "ours"),
        "--report-name",
        "ours",
        "--per-speaker",
    )
    ours = (tmp_path / "ours" / "ours.sys").read_text(encoding="utf-8")
    assert _rows(ours) == _rows(theirs)
    assert len(_rows(ours)) == 6 + 4  # six voices, then Sum/Avg, Mean, S.D., Median
    # The Kaldi line carries the same totals as sclite's Sum/Avg row.
    counts = re.match(
        rf"%{metric} (\S+) \[ (\d+) / (\d+), (\d+) ins, (\d+) del, (\d+) sub \]", out[0]
    )
    assert counts, out[0]
    sum_row = next(r for r in _rows(theirs) if "Sum/Avg" in r)
    snt_wrd = re.search(r"\|\s+(\d+)\s+(\d+)\s+\|", sum_row)
    assert snt_wrd and int(snt_wrd.group(2)) == int(counts.group(3))
    assert len([line for line in out if line.startswith("espeak") or line.startswith("f")]) == 6


def test_cer_without_spaces_identical_to_sclite_c(
    sclite: list[str],
    tmp_path: Path,
) -> None:
    ref_trn = _write_trn(tmp_path / "ref.trn", WORDS_REF)
    hyp_trn = _write_trn(tmp_path / "hyp.trn", WORDS_GREEDY)
    theirs = _sclite_run(sclite, ref_trn, hyp_trn, tmp_path / "sclite", "-c")
    argv = [
        "score",
        str(ref_trn),
        str(hyp_trn),
        "--metric",
        "CER",
        "--cer-without-spaces",
        "--speaker-sep",
        "-",
        "--reports",
        str(tmp_path / "ours"),
        "--report-name",
        "o",
        "--report-formats",
        "sys",
    ]
    assert cli.main(argv) == 0
    assert _rows((tmp_path / "ours" / "o.sys").read_text(encoding="utf-8")) == _rows(theirs)


def test_formats_give_the_same_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hyps = read_transcripts(WORDS_GREEDY)
    jsonl = tmp_path / "hyp.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"utt_id": u, "text": t}) + "\n" for u, t in hyps.items()),
        encoding="utf-8",
    )
    trn = tmp_path / "hyp.trn"
    trn.write_text("".join(f"{t} ({u})\n" for u, t in hyps.items()), encoding="utf-8")
    ctm = tmp_path / "hyp.ctm"
    ctm.write_text(
        "".join(
            f"{u} 1 {0.5 * k:.2f} 0.40 {w}\n"
            for u, t in hyps.items()
            for k, w in enumerate(t.split())
        ),
        encoding="utf-8",
    )
    kaldi = _score(capsys, str(WORDS_REF), str(WORDS_GREEDY))
    assert kaldi[0].startswith("%WER ")
    for path in (jsonl, trn):
        assert _score(capsys, str(WORDS_REF), str(path)) == kaldi
    # An utterance with no words has no CTM line: it is missing, and listed unless allowed.
    empty = [u for u, t in hyps.items() if not t]
    if empty:
        assert cli.main(["score", str(WORDS_REF), str(ctm)]) == 1
        capsys.readouterr()
        out = _score(capsys, str(WORDS_REF), str(ctm), "--missing-as-deletions")
    else:
        out = _score(capsys, str(WORDS_REF), str(ctm))
    assert out[0] == kaldi[0]


def test_compare_identical_and_different_systems(capsys: pytest.CaptureFixture[str]) -> None:
    same = _score(
        capsys,
        "--compare",
        str(PHONES_BLSTM),
        str(PHONES_BLSTM),
        str(PHONES_REF),
        "--metric",
        "PER",
        "--bootstrap",
        "2000",
    )
    assert same[0].startswith("A ") and same[1].startswith("B ")
    assert same[0].split(": ", 1)[1] == same[1].split(": ", 1)[1]
    assert "B - A: +0.00 %PER points" in same[2]
    assert "[+0.00, +0.00]" in same[2]
    assert same[3].endswith("p = 1.0000")
    assert same[4] == ("Sign test over utterances: A better 0, B better 0, ties 200, p = 1.0000")

    diff = _score(
        capsys,
        "--compare",
        str(PHONES_BLSTM),
        str(PHONES_BGRU),
        str(PHONES_REF),
        "--metric",
        "PER",
        "--bootstrap",
        "2000",
    )
    rate = [float(re.search(r"%PER (\S+)", line).group(1)) for line in diff[:2]]
    delta = re.search(r"B - A: (\S+) %PER points, 95% CI \[(\S+), (\S+)\]", diff[2])
    assert delta, diff[2]
    assert float(delta.group(1)) == pytest.approx(rate[1] - rate[0], abs=0.011)
    assert float(delta.group(2)) <= float(delta.group(1)) <= float(delta.group(3))
    signs = re.search(r"A better (\d+), B better (\d+), ties (\d+)", diff[4])
    assert signs and sum(int(x) for x in signs.groups()) == 200


def test_single_system_bootstrap_interval(capsys: pytest.CaptureFixture[str]) -> None:
    out = _score(capsys, str(WORDS_REF), str(WORDS_GREEDY), "--bootstrap", "2000")
    wer = float(re.search(r"%WER (\S+)", out[0]).group(1))
    line = next(x for x in out if "CI" in x)
    low, high = (float(x) for x in re.search(r"\[(\S+), (\S+)\]", line).groups())
    assert low < wer < high
    assert high - low < 20  # 200 utterances pin a 55% WER down to a few points


def test_reports_and_normalisation_header(tmp_path: Path) -> None:
    ref = tmp_path / "ref.txt"
    hyp = tmp_path / "hyp.txt"
    ref.write_text("a1 Hello, World! uh <unk>\na2 it's well-known\n", encoding="utf-8")
    hyp.write_text("a1 hello world\na2 its well known\n", encoding="utf-8")
    argv = ["score", str(ref), str(hyp), "--reports", str(tmp_path / "r"), "--report-name", "x"]
    assert cli.main(argv) == 0
    strict = json.loads((tmp_path / "r" / "x.json").read_text(encoding="utf-8"))
    assert (
        cli.main(
            argv
            + [
                "--lowercase",
                "--remove-punctuation",
                "--remove-fillers",
                "--hyphens",
                "split",
                "--apostrophes",
                "remove",
            ]
        )
        == 0
    )
    loose = json.loads((tmp_path / "r" / "x.json").read_text(encoding="utf-8"))
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "x.dtl",
        "x.html",
        "x.json",
        "x.pra",
        "x.sys",
    ]
    assert json.dumps(strict).count("case") < json.dumps(loose).count("case")
    html = (tmp_path / "r" / "x.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html
    pra = (tmp_path / "r" / "x.pra").read_text(encoding="utf-8")
    assert "case" in pra.lower()  # the normalisation is in the report header


def _error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(["score", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_one_line_and_no_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.txt"
    good.write_text("u1 a b\nu2 c\n", encoding="utf-8")
    reports = tmp_path / "reports"
    cases = {
        "latin1.txt": (b"u1 a b\nu2 caf\xe9\n", "latin1.txt:2"),
        "dup.txt": (b"u1 a b\nu1 c\n", "dup.txt:2"),
        "empty.txt": (b"", "empty.txt"),
    }
    for name, (content, where) in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        err = _error_of(capsys, str(good), str(bad), "--reports", str(reports))
        assert where in err, err
        err = _error_of(capsys, str(bad), str(good), "--reports", str(reports))
        assert where in err, err
    silent = tmp_path / "noword.txt"
    silent.write_text("u1\nu2\n", encoding="utf-8")
    assert "noword.txt: the reference has no words" in _error_of(capsys, str(silent), str(good))
    assert not reports.exists()


def test_confusions_printed_as_the_dtl_counts_them(
    sclite: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref_trn = _write_trn(tmp_path / "ref.trn", PHONES_REF)
    hyp_trn = _write_trn(tmp_path / "hyp.trn", PHONES_BLSTM)
    _sclite_run(sclite, ref_trn, hyp_trn, tmp_path / "sclite")
    dtl = (tmp_path / "sclite" / "sclite.dtl").read_text(encoding="utf-8")
    # sclite's dtl: "   1:  120  ->  n ==> m" lines under CONFUSION PAIRS, most frequent first.
    section = dtl.split("CONFUSION PAIRS", 1)[1].split("INSERTIONS", 1)[0]
    top = re.findall(r"^\s+\d+:\s+(\d+)\s+->\s+(\S+) ==> (\S+)$", section, re.M)[:5]
    out = _score(capsys, str(ref_trn), str(hyp_trn), "--metric", "PER", "--confusions", "5")
    start = out.index("Top 5 substitutions (ref -> hyp: count):")
    ours = [re.match(r"  (\S+) -> (\S+): (\d+)$", line).groups() for line in out[start + 1 :][:5]]
    assert [(r, h, n) for n, r, h in top] == ours
    assert out[start + 6] == "Top 5 insertions:"


# ---------------------------------------------------------------------------------------------
# ../shared: the TIMIT sample's own transcripts and the standard phone map


def _timit_pairs(timit_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Each sentence's prompt text (.TXT: capitals, punctuation) and its word list (.WRD)."""
    refs: dict[str, str] = {}
    hyps: dict[str, str] = {}
    for txt in sorted(timit_dir.glob("*/DR*/*/*.TXT")):
        utt = f"{txt.parent.name}-{txt.stem}".lower()
        # sclite reads "word;" as a word with a tag (we do not), so semicolons are left out.
        refs[utt] = " ".join(txt.read_text(encoding="ascii").replace(";", "").split()[2:])
        wrd = txt.with_suffix(".WRD").read_text(encoding="ascii").split("\n")
        hyps[utt] = " ".join(line.split()[2] for line in wrd if line.strip())
    return refs, hyps


@pytest.mark.integration
def test_timit_prompts_against_word_lists_as_sclite_without_s(
    sclite: list[str], timit_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refs, hyps = _timit_pairs(timit_dir)
    assert len(refs) == 160
    ref_trn, hyp_trn = tmp_path / "ref.trn", tmp_path / "hyp.trn"
    ref_trn.write_text("".join(f"{t} ({u})\n" for u, t in refs.items()), encoding="utf-8")
    hyp_trn.write_text("".join(f"{t} ({u})\n" for u, t in hyps.items()), encoding="utf-8")
    # sclite without -s folds case: --lowercase must give its numbers (punctuation still counts).
    command = [*sclite, "-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "spu_id"]
    command += ["-o", "sum", "-O", str(tmp_path), "-n", "sclite"]
    subprocess.run(command, capture_output=True, text=True, check=True)
    theirs = _rows((tmp_path / "sclite.sys").read_text(encoding="utf-8"))
    out = _score(
        capsys,
        str(ref_trn),
        str(hyp_trn),
        "--lowercase",
        "--reports",
        str(tmp_path / "ours"),
        "--report-name",
        "ours",
        "--report-formats",
        "sys",
    )
    assert _rows((tmp_path / "ours" / "ours.sys").read_text(encoding="utf-8")) == theirs
    assert len(theirs) == 16 + 4  # 16 speakers, Sum/Avg, Mean, S.D., Median
    assert not out[0].startswith("%WER 0.00")  # "officials," is not "officials"
    # With punctuation removed and hyphenated words split (TIMIT's word lists split them), the
    # prompts and the word lists agree word for word.
    clean = _score(
        capsys,
        str(ref_trn),
        str(hyp_trn),
        "--lowercase",
        "--remove-punctuation",
        "--hyphens",
        "split",
    )
    assert clean[0].startswith("%WER 0.00 [ 0 / ")


@pytest.mark.integration
def test_builtin_timit_map_is_the_standard_one() -> None:
    from conftest import shared_path

    from asr.score.normalize import load_phone_map

    standard = {}
    for line in shared_path("timit-lists", "phones.60-48-39.map").read_text().splitlines():
        fields = line.split()
        if fields:
            standard[fields[0]] = fields[2] if len(fields) == 3 else ""
    assert dict(load_phone_map("timit61-39")) == standard


def test_time_mediated_alignment_uses_the_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "a b" said as "b a" at the same times: without times sclite's alignment keeps one word
    # (a deletion and an insertion around it); with -T each word is paired with the word said
    # at its time, two substitutions.
    ref, hyp = tmp_path / "ref.ctm", tmp_path / "hyp.ctm"
    ref.write_text("f1 1 0.00 1.00 a\nf1 1 1.00 1.00 b\n", encoding="utf-8")
    hyp.write_text("f1 1 0.00 1.00 b\nf1 1 1.00 1.00 a\n", encoding="utf-8")
    plain = _score(capsys, str(ref), str(hyp))
    assert plain[0] == "%WER 100.00 [ 2 / 2, 1 ins, 1 del, 0 sub ]"
    timed = _score(capsys, str(ref), str(hyp), "--time-mediated")
    assert timed[0] == "%WER 100.00 [ 2 / 2, 0 ins, 0 del, 2 sub ]"
    kaldi = tmp_path / "ref.txt"
    kaldi.write_text("f1 a b\n", encoding="utf-8")
    assert cli.main(["score", str(kaldi), str(hyp), "--time-mediated"]) == 1
    assert "needs word times on both sides" in capsys.readouterr().err


def test_stm_reference_ctm_hypothesis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stm, ctm = tmp_path / "ref.stm", tmp_path / "hyp.ctm"
    stm.write_text(
        "f1 A spk1 0.00 2.00 hello world\n"
        "f1 A spk2 2.00 4.00 good morning\n"
        "f1 A spk1 4.00 5.00 ignore_time_segment_in_scoring\n",
        encoding="utf-8",
    )
    # Each word goes to the segment holding its midpoint; "uh" falls in the ignored segment.
    ctm.write_text(
        "f1 A 0.10 0.50 hello\nf1 A 0.70 0.50 word\nf1 A 2.10 0.50 good\n"
        "f1 A 2.80 0.50 morning\nf1 A 3.50 0.40 sir\nf1 A 4.20 0.30 uh\n",
        encoding="utf-8",
    )
    out = _score(capsys, str(stm), str(ctm), "--per-speaker")
    assert out[0] == "%WER 50.00 [ 2 / 4, 1 ins, 0 del, 1 sub ]"
    assert out[3].startswith("spk1: %WER 50.00 [ 1 / 2, 0 ins, 0 del, 1 sub ]")
    assert out[4].startswith("spk2: %WER 50.00 [ 1 / 2, 1 ins, 0 del, 0 sub ]")
