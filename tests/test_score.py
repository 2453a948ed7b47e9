"""asr.score and `asr score`: hand-computed cases, and NIST sclite (Debian sctk) as an oracle."""

from __future__ import annotations

import math
import random
import re
import subprocess
from pathlib import Path

import pytest

from asr import cli
from asr.errors import AsrError, DataDirError
from asr.score import (
    ScoreError,
    by_speaker,
    format_alignment,
    kaldi_line,
    read_transcripts,
    ser_line,
    summary_lines,
    tokenize,
    wer,
    write_transcripts,
)
from asr.score.align import LEVENSHTEIN_COSTS

# ---------------------------------------------------------------------------------------------
# Hand-computed cases


def test_substitution_and_insertion_counted_like_kaldi() -> None:
    # a b c d -> a x c d e: b->x is one substitution, e one insertion; 2 errors over 4 words.
    result = wer({"u1": "a b c d"}, {"u1": "a x c d e"})
    assert (result.subs, result.dels, result.ins, result.hits) == (1, 0, 1, 3)
    assert result.ref_words == 4
    assert result.wer == 50.0
    assert kaldi_line(result) == "%WER 50.00 [ 2 / 4, 1 ins, 0 del, 1 sub ]"
    assert ser_line(result) == "%SER 100.00 [ 1 / 1 ]"


def test_totals_over_several_utterances() -> None:
    refs = {"a": "the cat sat on the mat", "b": "hello world", "c": "one two three"}
    hyps = {"a": "the cat sat on mat", "b": "hello world", "c": "one too three four"}
    result = wer(refs, hyps)
    # a: 1 deletion; b: correct; c: 1 substitution + 1 insertion. N = 6 + 2 + 3 = 11.
    assert (result.dels, result.subs, result.ins) == (1, 1, 1)
    assert result.ref_words == 11
    assert result.sentence_errors == 2
    assert summary_lines(result, "WER") == [
        "%WER 27.27 [ 3 / 11, 1 ins, 1 del, 1 sub ]",
        "%SER 66.67 [ 2 / 3 ]",
        "Scored 3 sentences, 0 not present in hyp.",
    ]


def test_empty_hypothesis_is_all_deletions() -> None:
    result = wer({"u1": "yes no yes"}, {"u1": ""})
    assert (result.dels, result.subs, result.ins, result.ref_words) == (3, 0, 0, 3)
    assert kaldi_line(result) == "%WER 100.00 [ 3 / 3, 0 ins, 3 del, 0 sub ]"


def test_empty_reference_counts_zero_words_and_all_insertions() -> None:
    result = wer({"u1": "", "u2": "no"}, {"u1": "yes yes", "u2": "no"})
    assert (result.ins, result.dels, result.subs, result.ref_words) == (2, 0, 0, 1)
    assert result.wer == 200.0
    only_empty = wer({"u1": ""}, {"u1": "yes"})
    assert math.isinf(only_empty.wer)
    assert kaldi_line(only_empty) == "%WER inf [ 1 / 0, 1 ins, 0 del, 0 sub ]"
    nothing = wer({"u1": ""}, {"u1": ""})
    assert nothing.wer == 0.0 and nothing.sentence_errors == 0
    assert kaldi_line(nothing) == "%WER 0.00 [ 0 / 0, 0 ins, 0 del, 0 sub ]"


def test_per_and_cer_lines() -> None:
    phones = wer({"u": "sil k ae t sil"}, {"u": "sil k ah t"})
    assert kaldi_line(phones, "PER") == "%PER 40.00 [ 2 / 5, 0 ins, 1 del, 1 sub ]"
    # Characters include the space between words: "ab c" has 4; "abc" lacks the space.
    chars = wer({"u": "ab  c"}, {"u": "abc"}, unit="char")
    assert chars.ref_words == 4
    assert kaldi_line(chars, "CER") == "%CER 25.00 [ 1 / 4, 0 ins, 1 del, 0 sub ]"
    with pytest.raises(ValueError):
        kaldi_line(chars, "XER")


def test_cer_agrees_with_jiwer_cer() -> None:
    import jiwer

    rng = random.Random(3)
    letters = "abcde "
    for _ in range(50):
        ref = "".join(rng.choice(letters) for _ in range(rng.randint(1, 15))).strip() or "a"
        hyp = "".join(rng.choice(letters) for _ in range(rng.randint(0, 15))).strip()
        ref, hyp = " ".join(ref.split()), " ".join(hyp.split())
        result = wer([ref], [hyp], unit="char", costs=LEVENSHTEIN_COSTS)
        assert result.errors / result.ref_words == pytest.approx(jiwer.cer(ref, hyp))


def test_tokenize() -> None:
    assert tokenize("  a\tb  c ") == ["a", "b", "c"]
    assert tokenize("ab  c", "char") == ["a", "b", " ", "c"]
    assert tokenize(["x y", "z"]) == ["x y", "z"]  # already tokens: kept whole
    assert tokenize("ab c", "char", char_spaces=False) == ["a", "b", "c"]
    assert tokenize("sil k ae", "phone") == ["sil", "k", "ae"]
    with pytest.raises(ValueError):
        tokenize("a", "morpheme")


def test_parallel_lists_and_token_sequences() -> None:
    result = wer([["a", "b"], "c d"], [["a"], "c e"])
    assert [a.utt_id for a in result.utterances] == ["0", "1"]
    assert (result.dels, result.subs) == (1, 1)
    with pytest.raises(TypeError):
        wer({"0": "a"}, ["a"])


def test_missing_hypotheses_listed_by_name() -> None:
    refs = {f"utt{i}": "yes" for i in range(15)}
    hyps = {"utt0": "yes", "utt1": "no"}
    with pytest.raises(ScoreError) as info:
        wer(refs, hyps, ref_name="ref.txt", hyp_name="hyp.txt")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("hyp.txt: 13 utterance(s) of ref.txt missing: utt2 utt3")
    assert "(13 in all)" in message
    result = wer(refs, hyps, missing="deletions")
    assert result.missing == [f"utt{i}" for i in range(2, 15)]
    assert (result.dels, result.subs, result.ref_words) == (13, 1, 15)
    assert summary_lines(result)[2] == "Scored 15 sentences, 13 not present in hyp."


def test_hypothesis_without_reference_is_an_error() -> None:
    with pytest.raises(ScoreError, match="1 utterance\\(s\\) not in reference: stray"):
        wer({"a": "x"}, {"a": "x", "stray": "y"}, missing="deletions")


def test_alignment_block_layout() -> None:
    result = wer({"u1": "a b c d"}, {"u1": "a x c"})
    assert format_alignment(result.utterances[0]) == (
        "id: (u1)\nScores: (#C #S #D #I) 2 1 1 0\nREF:  a B c D \nHYP:  a X c * \nEval:   S   D \n"
    )
    insertion = wer({"u": ""}, {"u": "hello"})
    assert format_alignment(insertion.utterances[0]).splitlines()[2:] == [
        "REF:  ***** ",
        "HYP:  HELLO ",
        "Eval: I     ",
    ]
    spaces = wer({"u": "a b"}, {"u": "ab"}, unit="char")
    assert "REF:  a <SPACE> b " in format_alignment(spaces.utterances[0])


def test_by_speaker() -> None:
    result = wer({"s1-a": "x y", "s2-b": "x", "s1-c": "z"}, {"s1-a": "x", "s2-b": "x", "s1-c": "q"})
    speakers = by_speaker(result, lambda u: u.split("-")[0])
    assert list(speakers) == ["s1", "s2"]
    assert (speakers["s1"].ref_words, speakers["s1"].errors) == (3, 2)
    assert (speakers["s2"].ref_words, speakers["s2"].errors) == (1, 0)
    with pytest.raises(ScoreError, match="'s2-b' has no speaker"):
        by_speaker(result, {"s1-a": "s1", "s1-c": "s1"})


# ---------------------------------------------------------------------------------------------
# Kaldi text files and the command line


def test_read_transcripts(tmp_path: Path) -> None:
    path = tmp_path / "text"
    path.write_text("utt1 YES  NO\nutt2\n\nutt3\tNO\n", encoding="utf-8")
    assert read_transcripts(path) == {"utt1": "YES NO", "utt2": "", "utt3": "NO"}
    path.write_text("utt1 a\nutt2 b\nutt1 c\n", encoding="utf-8")
    with pytest.raises(DataDirError, match=r"text:3: duplicate utterance id 'utt1'"):
        read_transcripts(path)
    path.write_bytes(b"utt1 a\nutt2 \xff\n")
    with pytest.raises(DataDirError, match=r"text:2: not valid UTF-8"):
        read_transcripts(path)


def test_write_transcripts_sorted_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "hyp.txt"
    write_transcripts(path, {"b": "NO  YES", "B": "", "a": "YES"})
    # C (byte) order puts upper case first.
    assert path.read_text(encoding="utf-8") == "B\na YES\nb NO YES\n"
    assert read_transcripts(path) == {"B": "", "a": "YES", "b": "NO YES"}


def test_cli_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, hyp, ali = tmp_path / "ref", tmp_path / "hyp", tmp_path / "out" / "ali.pra"
    ref.write_text("u1 NO NO YES\nu2 YES\nu3 NO\n", encoding="utf-8")
    hyp.write_text("u2 YES YES\nu1 NO YES\nu3\n", encoding="utf-8")
    assert cli.main(["score", str(ref), str(hyp), "--alignments", str(ali)]) == 0
    out = capsys.readouterr().out.splitlines()
    # u1: one deletion; u2: one insertion; u3: one deletion -> 3 errors / 5 words.
    assert out == [
        "%WER 60.00 [ 3 / 5, 1 ins, 2 del, 0 sub ]",
        "%SER 100.00 [ 3 / 3 ]",
        "Scored 3 sentences, 0 not present in hyp.",
    ]
    report = ali.read_text(encoding="utf-8")
    assert report.startswith(out[0] + "\n")
    assert [line for line in report.splitlines() if line.startswith("id:")] == [
        "id: (u1)",
        "id: (u2)",
        "id: (u3)",
    ]
    assert not [p for p in ali.parent.iterdir() if p.name != "ali.pra"]  # no temp file left

    assert cli.main(["score", str(ref), str(hyp), "--metric", "PER"]) == 0
    assert capsys.readouterr().out.startswith("%PER 60.00 [ 3 / 5,")
    assert cli.main(["score", str(ref), str(hyp), "--metric", "CER"]) == 0
    # "NO NO YES" (9) + "YES" (3) + "NO" (2) = 14 characters; u1 loses "NO " (3 deletions),
    # u2 gains " YES" (4 insertions), u3 loses "NO" (2 deletions).
    assert capsys.readouterr().out.startswith("%CER 64.29 [ 9 / 14, 4 ins, 5 del, 0 sub ]\n")


def test_cli_score_missing_utterances(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, hyp = tmp_path / "ref", tmp_path / "hyp"
    ref.write_text("u1 NO\nu2 YES\nu3 NO NO\n", encoding="utf-8")
    hyp.write_text("u1 NO\n", encoding="utf-8")
    assert cli.main(["score", str(ref), str(hyp)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"asr score: error: {hyp}: 2 utterance(s) of {ref} missing: u2 u3"
        " (use --missing-as-deletions to score them as empty)"
    )
    assert cli.main(["score", str(ref), str(hyp), "--missing-as-deletions"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "%WER 75.00 [ 3 / 4, 0 ins, 3 del, 0 sub ]"
    assert out[2] == "Scored 3 sentences, 2 not present in hyp."
    assert cli.main(["score", str(ref), str(tmp_path / "nope")]) == 1
    assert "nope: file not found" in capsys.readouterr().err


def test_score_error_is_an_asr_error() -> None:
    assert issubclass(ScoreError, AsrError)


# ---------------------------------------------------------------------------------------------
# NIST sclite as the oracle


_WORDS = (
    "the a of to and in is it that for on was with he as i his be at by had not are but from "
    "or have an they which one you were her all she there would their we him been has when "
    "who will more no if out so said what up its about into than them can only other new "
    "some could time these two may then do first any my now such like our over man me even"
).split()


def _real_looking_pair(seed: int) -> tuple[dict[str, str], dict[str, str]]:
    """References of 0-25 words from 6 speakers, hypotheses with ~15% word errors of all kinds,
    plus utterances with an empty reference, an empty hypothesis, or both."""
    rng = random.Random(seed)
    refs: dict[str, str] = {}
    hyps: dict[str, str] = {}
    for i in range(240):
        utt = f"spk{i % 6}-utt{i:04d}"
        ref = [rng.choice(_WORDS) for _ in range(rng.randint(1, 25))]
        hyp: list[str] = []
        for word in ref:
            roll = rng.random()
            if roll < 0.06:
                hyp.append(rng.choice(_WORDS))  # substitution (or, rarely, the same word)
            elif roll < 0.11:
                pass  # deletion
            elif roll < 0.15:
                hyp.extend([word, rng.choice(_WORDS)])  # insertion after the word
            else:
                hyp.append(word)
        if i % 37 == 5:
            ref = []
        if i % 41 == 7:
            hyp = []
        if i == 100:
            ref, hyp = [], []
        refs[utt], hyps[utt] = " ".join(ref), " ".join(hyp)
    return refs, hyps


def _write_trn(path: Path, transcripts: dict[str, str]) -> None:
    path.write_text("".join(f"{text} ({utt})\n" for utt, text in transcripts.items()))


def _run_sclite(sclite: list[str], tmp_path: Path, refs: dict[str, str], hyps: dict[str, str]):
    ref_trn, hyp_trn = tmp_path / "ref.trn", tmp_path / "hyp.trn"
    _write_trn(ref_trn, refs)
    _write_trn(hyp_trn, hyps)
    # -i spu_id: ids are "speaker-utterance"; -s: case-sensitive, as Kaldi is.
    command = sclite + ["-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "spu_id"]
    proc = subprocess.run(
        command + ["-s", "-o", "pra", "dtl", "stdout"], capture_output=True, text=True, check=True
    )
    per_utt = {
        m.group(1): tuple(int(x) for x in m.groups()[1:])
        for m in re.finditer(
            r"^id: \((\S+)\)\nScores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)$",
            proc.stdout,
            re.MULTILINE,
        )
    }

    def total(label: str) -> int:
        match = re.search(rf"^{label}\s*=.*\(\s*(\d+)\)$", proc.stdout, re.MULTILINE)
        assert match, f"no '{label}' in sclite's report"
        return int(match.group(1))

    totals = {
        "subs": total("Percent Substitution"),
        "dels": total("Percent Deletions"),
        "ins": total("Percent Insertions"),
        "errors": total("Percent Total Error"),
        "ref_words": total(r"Ref\. words"),
    }
    return per_utt, totals


def test_counts_identical_to_sclite(sclite: list[str], tmp_path: Path) -> None:
    refs, hyps = _real_looking_pair(seed=11)
    per_utt, totals = _run_sclite(sclite, tmp_path, refs, hyps)
    result = wer(refs, hyps)
    assert len(per_utt) == len(refs)
    assert totals == {
        "subs": result.subs,
        "dels": result.dels,
        "ins": result.ins,
        "errors": result.errors,
        "ref_words": result.ref_words,
    }
    for a in result.utterances:
        assert per_utt[a.utt_id] == (a.hits, a.subs, a.dels, a.ins), a.utt_id


def test_per_speaker_totals_match_sclite(sclite: list[str], tmp_path: Path) -> None:
    refs, hyps = _real_looking_pair(seed=12)
    per_utt, _ = _run_sclite(sclite, tmp_path, refs, hyps)
    speakers = by_speaker(wer(refs, hyps), lambda u: u.split("-")[0])
    assert len(speakers) == 6
    for spk, result in speakers.items():
        theirs = [v for u, v in per_utt.items() if u.startswith(spk + "-")]
        assert len(theirs) == result.sentences
        assert sum(c + s + d for c, s, d, _ in theirs) == result.ref_words
        assert sum(s + d + i for _, s, d, i in theirs) == result.errors
        assert sum(s for _, s, _, _ in theirs) == result.subs
        assert sum(1 for _, s, d, i in theirs if s + d + i) == result.sentence_errors


def test_alignment_blocks_identical_to_sclite_pra(sclite: list[str], tmp_path: Path) -> None:
    refs, hyps = _real_looking_pair(seed=13)
    _write_trn(tmp_path / "ref.trn", refs)
    _write_trn(tmp_path / "hyp.trn", hyps)
    # Without -s sclite lower-cases correct words and upper-cases errors; our lower-case input
    # then gives the same text.
    command = sclite + ["-r", str(tmp_path / "ref.trn"), "trn", "-h", str(tmp_path / "hyp.trn")]
    command += ["trn", "-i", "spu_id", "-o", "pra", "stdout"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    blocks = {m.group(1): m.group(0) for m in re.finditer(r"^id: \((\S+)\)\n(?:.+\n)+", out, re.M)}
    for a in wer(refs, hyps).utterances:
        assert format_alignment(a) == blocks[a.utt_id], a.utt_id


def test_sclite_can_count_more_errors_than_the_minimal_edit_distance(
    sclite: list[str], tmp_path: Path
) -> None:
    # sclite minimises 4*S + 3*(D + I), not S + D + I. For "a a a b b" -> "b b c c c c" the
    # minimal edit distance is 6 (5 substitutions, 1 insertion: weighted 23), but deleting
    # "a a a", keeping "b b" and inserting four "c" is 7 errors weighted only 21. We count as
    # sclite by default, and as Kaldi's compute-wer (minimal edit distance) on request.
    refs = {"s-1": "a a a b b", "s-2": "a a c c b"}
    hyps = {"s-1": "b b c c c c", "s-2": "b b b a a"}
    per_utt, _ = _run_sclite(sclite, tmp_path, refs, hyps)
    assert per_utt == {"s-1": (2, 0, 3, 4), "s-2": (2, 0, 3, 3)}
    ours = wer(refs, hyps)
    assert {a.utt_id: (a.hits, a.subs, a.dels, a.ins) for a in ours.utterances} == per_utt
    kaldi = wer(refs, hyps, costs=LEVENSHTEIN_COSTS)
    assert [a.errors for a in kaldi.utterances] == [6, 5]
