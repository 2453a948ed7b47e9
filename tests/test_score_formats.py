"""asr.score.formats (transcript readers) and asr.score.timed (sclite's -T alignment and its
assignment of CTM words to STM segments), with NIST sclite (Debian sctk) as the oracle."""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest

from asr.errors import DataDirError
from asr.score.formats import FORMATS, detect_format, read
from asr.score.result import ScoreError
from asr.score.timed import sclite_chunks, segment_ctm_by_stm, time_mediated_align


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Readers


def test_kaldi_text(tmp_path: Path) -> None:
    t = read(_write(tmp_path / "text", "utt1 YES  NO\nutt2\n\nutt3\tNO\n"), "kaldi")
    assert (t.format, t.texts) == ("kaldi", {"utt1": "YES NO", "utt2": "", "utt3": "NO"})
    assert t.times is None and t.speakers == {}


def test_trn_takes_the_id_from_the_last_parentheses(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ref.trn",
        ";; a comment\nI (UH) THINK SO (spk1-utt01)\n\n  (spk1-utt02)\nYes  no (Spk2-U3)  \n",
    )
    t = read(path, "trn")
    # Ids keep their case (sclite lower-cases them unless -s); "(UH)" is a word.
    assert t.texts == {"spk1-utt01": "I (UH) THINK SO", "spk1-utt02": "", "Spk2-U3": "Yes no"}


def test_ctm_sorted_by_time_with_channels_and_confidences(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "hyp.ctm",
        ";; comment\n"
        "rec1 A 1.50 0.20 three 0.9\n"
        "rec1 A 0.10 0.30 one\n"
        "rec1 A 1.50 0.10 tie\n"  # same start as "three": file order kept
        "rec1 B 0.20 0.20 other\n"
        "  ; indented comment\n"
        "rec2 1 0.00 0.50 solo\n",
    )
    t = read(path, "ctm")
    # A file with two channels gets file-channel ids; a one-channel file keeps its name.
    assert t.texts == {"rec1-A": "one three tie", "rec1-B": "other", "rec2": "solo"}
    assert t.times["rec1-A"] == [("one", 0.1, 0.1 + 0.3), ("three", 1.5, 1.7), ("tie", 1.5, 1.6)]
    assert t.durations["rec1-A"] == [0.3, 0.2, 0.1]
    assert t.channels == {"rec1-A": ("rec1", "A"), "rec1-B": ("rec1", "B"), "rec2": ("rec2", "1")}


def test_stm_segments_labels_speakers_and_ignored_segments(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ref.stm",
        ";; category info\n"
        "sw1 A spkA 0.98 11.56 <o,f0,male> hello  there\n"
        "sw1 A spkA 11.56 12.00 <o,,unknown> IGNORE_TIME_SEGMENT_IN_SCORING\n"
        "sw1 B spkB 1.00 2.50 no labels here\n"
        "sw1 B spkB 1.00 2.50\n",  # same times again: a suffix keeps the id unique
    )
    t = read(path, "stm")
    assert t.texts == {
        "sw1_A_0000098-0001156": "hello there",
        "sw1_B_0000100-0000250": "no labels here",
        "sw1_B_0000100-0000250_2": "",
    }
    assert t.speakers == {
        "sw1_A_0000098-0001156": "spkA",
        "sw1_B_0000100-0000250": "spkB",
        "sw1_B_0000100-0000250_2": "spkB",
    }
    assert [(s.utt_id, s.labels, s.ignored, s.line) for s in t.segments] == [
        ("sw1_A_0000098-0001156", "<o,f0,male>", False, 2),
        ("sw1_A_0001156-0001200", "<o,,unknown>", True, 3),
        ("sw1_B_0000100-0000250", None, False, 4),
        ("sw1_B_0000100-0000250_2", None, False, 5),
    ]
    assert t.channels["sw1_B_0000100-0000250"] == ("sw1", "B")


def test_jsonl_default_and_chosen_keys(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "m.jsonl",
        '{"audio_filepath": "a.wav", "text": "hello  world", "duration": 1.0}\n'
        "\n"
        '{"audio_filepath": "b.wav", "text": ""}\n',
    )
    assert read(path).texts == {"a.wav": "hello world", "b.wav": ""}
    path = _write(
        tmp_path / "pred.jsonl",
        '{"utt_id": 7, "key": "k1", "text": "ref words", "pred_text": "hyp words"}\n',
    )
    assert read(path, text_key="pred_text").texts == {"7": "hyp words"}
    assert read(path, id_key="key", text_key="text").texts == {"k1": "ref words"}


def test_plain_lines_are_numbered_and_blank_lines_count(tmp_path: Path) -> None:
    t = read(_write(tmp_path / "hyp.txt", "hello world\n\n  bye \n"), "plain")
    assert t.texts == {"1": "hello world", "2": "", "3": "bye"}


def test_unknown_format_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format must be"):
        read(_write(tmp_path / "x", "a b\n"), "sgml")
    assert FORMATS == ("kaldi", "trn", "ctm", "stm", "jsonl", "plain")


# ---------------------------------------------------------------------------------------------
# Detection


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a", "utt1 hello\nutt2 world\n", "kaldi"),
        ("b", "hello world (utt1)\n(utt2)\n", "trn"),
        ("c", ";; x\nf 1 0.00 0.20 hi\nf 1 0.20 0.20 there 0.9\n", "ctm"),
        ("d", "f 1 spk 0.0 1.0 <o,f0,male> hi there\nf 1 spk 1.0 2.0 bye\n", "stm"),
        ("e", '{"id": "u1", "text": "hi"}\n', "jsonl"),
        ("f", "the cat sat\nthe dog\n", "plain"),
        # A Kaldi text of digits has the shape of a CTM line but no non-numeric word.
        ("g", "u1 1 2 3 4\nu2 5 6 7 8\n", "kaldi"),
        ("text", "hello world\nagain here\n", "kaldi"),  # a data dir's text file
        ("h.ctm", "f 1 0 1 x\n", "ctm"),
        ("h.stm", "f 1 s 0 1 x\n", "stm"),
        ("h.trn", "x (u)\n", "trn"),
        ("h.jsonl", '{"id": 1, "text": "x"}\n', "jsonl"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, content: str, expected: str) -> None:
    path = _write(tmp_path / name, content)
    assert detect_format(path) == expected
    assert read(path).format == expected


def test_suffix_wins_over_content(tmp_path: Path) -> None:
    # A .ctm that is not a CTM is read as one, and fails with a line-numbered error.
    path = _write(tmp_path / "hyp.ctm", "utt1 hello world\n")
    assert detect_format(path) == "ctm"
    with pytest.raises(DataDirError, match=r"hyp\.ctm:1: expected 'file channel start"):
        read(path)


# ---------------------------------------------------------------------------------------------
# Bad input: one line, PATH:LINE: problem


@pytest.mark.parametrize(
    ("fmt", "content", "line", "problem"),
    [
        ("kaldi", "u1 a\nu2 b\nu1 c\n", 3, "duplicate utterance id 'u1'"),
        ("kaldi", b"u1 a\nu2 \xff\n", 2, "not valid UTF-8"),
        ("kaldi", "", 1, "no utterances"),
        ("kaldi", "\n\n\n", 3, "no utterances"),
        ("trn", "hello world\n", 1, "no utterance id"),
        ("trn", "a (u1)\nb (u2) trailing\n", 2, "no utterance id"),
        ("trn", "a ()\n", 1, "bad utterance id ''"),
        ("trn", "a (u1)\nb (u1)\n", 2, "duplicate utterance id 'u1'"),
        ("trn", ";; only a comment\n", 1, "no utterances"),
        ("ctm", "f 1 0.0 0.1 a\nf 1 zero 0.1 b\n", 2, "start time 'zero' is not a number"),
        ("ctm", "f 1 0.0 -0.1 a\n", 1, "negative duration -0.1"),
        ("ctm", "f 1 -1 0.1 a\n", 1, "negative start time -1"),
        ("ctm", "f 1 0.0 nan a\n", 1, "duration 'nan' is not a finite number"),
        ("ctm", "f 1 0.0 0.1\n", 1, "got 4 fields"),
        ("ctm", "f 1 0.0 0.1 a high\n", 1, "confidence 'high' is not a number"),
        ("ctm", "f 1 0.0 0.1 <ALT_BEGIN>\n", 1, "alternations (<ALT_BEGIN>) are not supported"),
        ("ctm", ";; nothing\n", 1, "no utterances"),
        ("stm", "f 1 s 0.0 1.0 a\nf 1 s 2.0\n", 2, "got 4 fields"),
        ("stm", "f 1 s 2.0 1.0 a\n", 1, "negative duration"),
        ("stm", "f 1 s 0.0 end a\n", 1, "end time 'end' is not a number"),
        ("jsonl", '{"id": "a", "text": "x"}\n{"id": "b", "text": \n', 2, "not valid JSON"),
        ("jsonl", '["a", "x"]\n', 1, "not a JSON object"),
        ("jsonl", '{"name": "a", "text": "x"}\n', 1, "no utterance id key (one of utt_id, id"),
        ("jsonl", '{"id": "a", "words": "x"}\n', 1, "no text key (one of text, hyp"),
        ("jsonl", '{"id": "a", "text": "x", "pred_text": "y"}\n', 1, "several text keys"),
        ("jsonl", '{"id": "a", "text": 3}\n', 1, "text 3 is not a string"),
        ("jsonl", '{"id": null, "text": "x"}\n', 1, "utterance id None"),
        ("jsonl", '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', 2, "duplicate"),
        ("plain", "", 1, "no utterances"),
    ],
)
def test_bad_input_is_one_line_naming_file_and_line(
    tmp_path: Path, fmt: str, content: str | bytes, line: int, problem: str
) -> None:
    path = _write(tmp_path / "input", content)
    with pytest.raises(DataDirError) as info:
        read(path, fmt)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    assert problem in message


def test_jsonl_missing_chosen_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.jsonl", '{"id": "a", "text": "x"}\n')
    with pytest.raises(DataDirError, match=r"m\.jsonl:1: no text key \('hyp_text'\)"):
        read(path, text_key="hyp_text")
    with pytest.raises(DataDirError, match=r"m\.jsonl:1: no utterance id key \('uid'\)"):
        read(path, id_key="uid")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="nope: file not found"):
        read(tmp_path / "nope")


# ---------------------------------------------------------------------------------------------
# Time-mediated alignment: hand-worked cases


def test_time_mediated_prefers_times_over_spelling() -> None:
    ref = [("the", 0.0, 0.3), ("cat", 0.3, 0.5), ("sat", 0.6, 1.0), ("on", 1.1, 1.4)]
    hyp = [("the", 0.0, 0.3), ("bat", 0.35, 0.55), ("sat", 0.6, 0.7), ("uh", 0.75, 0.95)]
    # "sat"/"sat" would cost |0.6-0.6| + |1.0-0.7| = 0.3; "sat"/"uh" costs 0.15 + 0.05 +
    # 0.001, so the hypothesis "sat" is an insertion and "on" (1.1-1.4, nothing near) is
    # deleted: sclite prints REF "the cat *** sat on", HYP "the bat sat uh **".
    assert time_mediated_align(ref, hyp) == "CSISD"


def test_time_mediated_deletions_and_insertions_sorted_by_time() -> None:
    # Far apart in time, a match would cost 10: a deletion and an insertion (1 + 1) win, and
    # the two are put in time order whichever way the traceback found them.
    assert time_mediated_align([("a", 0.0, 1.0)], [("a", 5.0, 6.0)]) == "DI"
    assert time_mediated_align([("a", 5.0, 6.0)], [("a", 0.0, 1.0)]) == "ID"
    # At the same times a different word costs only 0.001 more than the same word.
    assert time_mediated_align([("a", 0.0, 1.0)], [("b", 0.0, 1.0)]) == "S"
    assert time_mediated_align([], [("b", 0.0, 1.0)]) == "I"
    assert time_mediated_align([("a", 0.0, 1.0)], []) == "D"
    assert time_mediated_align([], []) == ""


def test_chunks_cover_both_sides_in_order() -> None:
    rng = random.Random(5)
    ref = _timed_words(rng, 230)
    hyp = _timed_words(rng, 190)
    chunks = sclite_chunks(ref, hyp)
    assert len(chunks) > 3
    assert chunks[0][0] == 0 and chunks[0][2] == 0
    assert chunks[-1][1] == len(ref) and chunks[-1][3] == len(hyp)
    for (_, r1, _, h1), (r0, _, h0, _) in zip(chunks, chunks[1:], strict=False):
        assert (r0, h0) == (r1, h1)
    codes = time_mediated_align(ref, hyp)
    whole = time_mediated_align(ref, hyp, chunked=False)
    for c in (codes, whole):
        assert c.count("C") + c.count("S") + c.count("D") == len(ref)
        assert c.count("C") + c.count("S") + c.count("I") == len(hyp)


def _timed_words(rng: random.Random, n: int) -> list[tuple[str, float, float]]:
    words, t = [], 0.0
    for _ in range(n):
        t = round(t + rng.choice([0.0, 0.1, 0.2, 0.5]), 2)
        dur = rng.choice([0.1, 0.2, 0.3])
        words.append((rng.choice("abc"), t, t + dur))
        t = round(t + dur, 2)
    return words


def test_segment_ctm_by_stm_rules(tmp_path: Path) -> None:
    stm = read(
        _write(
            tmp_path / "ref.stm",
            "f 1 s1 1.0 2.7 a b\n"
            "f 1 s2 2.7 4.0 ignore_time_segment_in_scoring\n"
            "f 1 s1 4.0 5.0 c\n"
            "f 1 s2 6.0 7.0 d\n"
            "g 1 s3 0.0 1.0 e\n",
        )
    )
    ctm = read(
        _write(
            tmp_path / "hyp.ctm",
            "f 1 0.10 0.20 early\n"  # before the first segment: goes to it
            "f 1 2.60 0.20 tie\n"  # midpoint 2.7 < 2.7 read as float (2.70000005): first
            "f 1 2.80 0.20 dropped\n"  # in the ignored segment: dropped with it
            "f 1 5.20 0.20 between\n"  # between segments: goes to the next one
            "f 1 9.00 0.50 late\n",  # after the last segment: the last takes the rest
        )
    )
    seg = segment_ctm_by_stm(stm, ctm)
    assert seg.texts == {
        "f_1_0000100-0000270": "early tie",
        "f_1_0000400-0000500": "",
        "f_1_0000600-0000700": "between late",
        "g_1_0000000-0000100": "",
    }
    assert seg.times["f_1_0000600-0000700"] == [("between", 5.2, 5.4), ("late", 9.0, 9.5)]
    assert seg.speakers == stm.speakers
    stray = read(_write(tmp_path / "stray.ctm", "h 1 0.0 0.1 x\n"))
    with pytest.raises(ScoreError, match="file 'h' channel '1' has no segments"):
        segment_ctm_by_stm(stm, stray)
    with pytest.raises(ValueError):
        segment_ctm_by_stm(ctm, stm)


# ---------------------------------------------------------------------------------------------
# NIST sclite as the oracle


def _ctm_pair(
    seed: int, files: int, max_words: int, durations: tuple[float, ...]
) -> tuple[list[str], list[str]]:
    """Reference and hypothesis CTM lines on a coarse time grid, so that starts, ends and
    costs tie often: hypothesis words shifted by 0-0.1 s, substituted, deleted, inserted.
    Every file has both channels or one, the same in both, with a word on each (sclite
    cannot score a file/channel one side lacks)."""
    rng = random.Random(seed)
    vocab = "a b c d e f".split()
    ref: list[str] = []
    hyp: list[tuple[str, str, float, str]] = []
    for f in range(files):
        name = f"f{f:02d}"  # zero-padded: the files must sort the same in ref and hyp
        for channel in ["A"] if rng.random() < 0.6 else ["A", "B"]:
            t = 0.0
            for i in range(rng.randint(2, max_words)):
                t += rng.choice([0.0, 0.0, 0.1, 0.2, 0.5])
                dur = rng.choice(durations)
                word = rng.choice(vocab)
                ref.append(f"{name} {channel} {t:.2f} {dur:.2f} {word}")
                roll = rng.random()
                if roll > 0.1 or i == 0:  # otherwise deleted
                    start = max(0.0, t + rng.choice([-0.1, 0.0, 0.0, 0.05, 0.1]))
                    if roll < 0.3:
                        word = rng.choice(vocab)  # a substitution (or the same word)
                    line = f"{name} {channel} {start:.2f} {rng.choice(durations):.2f} {word}"
                    hyp.append((name, channel, start, line))
                    if rng.random() < 0.08:  # an insertion nearby
                        start += rng.choice([0.0, 0.05, 0.1])
                        extra = rng.choice(vocab)
                        line = f"{name} {channel} {start:.2f} {rng.choice(durations):.2f} {extra}"
                        hyp.append((name, channel, start, line))
                t += dur
    hyp.sort(key=lambda h: (h[0], h[1], h[2]))  # stable: equal starts keep their order
    return ref, [h[3] for h in hyp]


# An sgml PATH element (its attributes may hold '>', as labels="<o,f0,male>"), and the pra
# report's id and Scores lines.
_PATH = re.compile(r'<PATH id="\(([^)]*)\)"((?:[^>"]|"[^"]*")*)>\n(.*)\n</PATH>')
_SCORES = re.compile(
    r"^id: \((\S+)\)\n(?:.*\n)*?Scores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)$", re.M
)


def _sclite_ctm(sclite: list[str], tmp_path: Path, ref: list[str], hyp: list[str]):
    """sclite -T on the two CTMs: per chunk id, the codes (from the sgml report) and the
    (C, S, D, I) counts (from the pra report's Scores lines)."""
    ref_path = _write(tmp_path / "ref.ctm", "\n".join(ref) + "\n")
    hyp_path = _write(tmp_path / "hyp.ctm", "\n".join(hyp) + "\n")
    command = sclite + ["-r", str(ref_path), "ctm", "-h", str(hyp_path), "ctm", "-T", "-s"]
    out = subprocess.run(
        command + ["-o", "pra", "sgml", "stdout", "-f", "0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    codes = {
        m.group(1): "".join(step[0] for step in m.group(3).split(":") if step)
        for m in _PATH.finditer(out)
    }
    counts = {m.group(1): tuple(int(x) for x in m.groups()[1:]) for m in _SCORES.finditer(out)}
    return read(ref_path), read(hyp_path), codes, counts


def _ours_by_chunk(ref, hyp) -> dict[str, str]:
    """Our codes per sclite chunk id (file-channel-NNNN)."""
    hyp_of = {fc: utt for utt, fc in hyp.channels.items()}
    ours = {}
    for utt, (file, channel) in ref.channels.items():
        r, h = ref.times[utt], hyp.times[hyp_of[(file, channel)]]
        for k, (r0, r1, h0, h1) in enumerate(sclite_chunks(r, h)):
            ours[f"{file}-{channel}-{k:04d}"] = time_mediated_align(r[r0:r1], h[h0:h1])
    return ours


def _counts(codes: str) -> tuple[int, int, int, int]:
    return tuple(codes.count(c) for c in "CSDI")


def test_time_mediated_alignment_matches_sclite(sclite: list[str], tmp_path: Path) -> None:
    # Up to 40 words a side: one chunk per file/channel, so this checks the DP, its float
    # rounding and tie-breaking, and the ordering of deletion/insertion runs, word for word.
    ref, hyp = _ctm_pair(seed=7, files=30, max_words=40, durations=(0.1, 0.2, 0.3, 0.25))
    ref_t, hyp_t, codes, counts = _sclite_ctm(sclite, tmp_path, ref, hyp)
    ours = _ours_by_chunk(ref_t, hyp_t)
    assert len(codes) == len(ours) == len(ref_t.texts) > 30
    assert ours == codes
    for utt, file_channel in ref_t.channels.items():
        h = hyp_t.times[next(u for u, fc in hyp_t.channels.items() if fc == file_channel)]
        mine = time_mediated_align(ref_t.times[utt], h)
        assert _counts(mine) == counts[f"{'-'.join(file_channel)}-0000"]
    totals = [sum(c[i] for c in counts.values()) for i in range(4)]
    assert totals == [sum(_counts(c)[i] for c in ours.values()) for i in range(4)]
    # The data must exercise the cases where the weights matter.
    assert totals[1] > 20 and totals[2] > 20 and totals[3] > 20


def test_long_ctm_files_are_chunked_like_sclite(sclite: list[str], tmp_path: Path) -> None:
    # Files of up to 260 words are cut into chunks of about 50. Every word lasts 0.2 s here:
    # the Debian build of sclite (SCTK 2.4.10) reads, in one branch of its chunking,
    # ref->word[Hend].dur (the reference's word at the hypothesis' index; fixed upstream),
    # which with equal durations reads the same number.
    ref, hyp = _ctm_pair(seed=3, files=4, max_words=260, durations=(0.2,))
    assert len(hyp) <= len(ref)  # so that misplaced index stays among the reference words
    ref_t, hyp_t, codes, counts = _sclite_ctm(sclite, tmp_path, ref, hyp)
    ours = _ours_by_chunk(ref_t, hyp_t)
    assert len(codes) > 2 * len(ref_t.texts)
    assert ours == codes
    assert {u: _counts(c) for u, c in ours.items()} == counts
    # time_mediated_align chunks by default: per file its counts are the sum of sclite's.
    for utt, file_channel in ref_t.channels.items():
        h = hyp_t.times[next(u for u, fc in hyp_t.channels.items() if fc == file_channel)]
        prefix = "-".join(file_channel) + "-"
        theirs = [v for k, v in counts.items() if k.startswith(prefix)]
        summed = tuple(sum(v[i] for v in theirs) for i in range(4))
        assert _counts(time_mediated_align(ref_t.times[utt], h)) == summed


def _stm_ctm_pair(seed: int) -> tuple[str, str]:
    """An STM with gaps, back-to-back segments, ignored segments and empty ones, and a CTM
    on a 0.05 s grid whose word midpoints often fall exactly on segment ends."""
    rng = random.Random(seed)
    vocab = "a b c d e".split()
    stm, ctm = [], []
    for f in range(4):
        for channel in ["1"] if rng.random() < 0.6 else ["1", "2"]:
            t = rng.choice([0.0, 0.3, 1.0])
            for _ in range(rng.randint(1, 6)):
                start = t + rng.choice([0.0, 0.0, 0.1, 0.5])
                end = start + rng.choice([0.5, 1.0, 1.3, 2.7])
                if rng.random() < 0.15:
                    words = "ignore_time_segment_in_scoring"
                else:
                    words = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 5)))
                speaker = f"s{f}{channel}{rng.randint(0, 1)}"
                stm.append(
                    f"f{f:02d} {channel} {speaker} {start:.2f} {end:.2f} <o,f0,male> {words}"
                )
                t = end
            w = 0.0
            while w < t + 1:
                w = round(w + rng.choice([0.05, 0.1, 0.2, 0.3]), 2)
                dur = rng.choice([0.1, 0.2, 0.4, 0.6])
                ctm.append(f"f{f:02d} {channel} {w:.2f} {dur:.2f} {rng.choice(vocab)}")
    return "\n".join(stm) + "\n", "\n".join(ctm) + "\n"


def test_ctm_words_go_to_the_same_stm_segments_as_in_sclite(
    sclite: list[str], tmp_path: Path
) -> None:
    checked = ties = 0
    for seed in range(6):
        stm_text, ctm_text = _stm_ctm_pair(seed)
        ref_path = _write(tmp_path / f"ref{seed}.stm", stm_text)
        hyp_path = _write(tmp_path / f"hyp{seed}.ctm", ctm_text)
        command = sclite + ["-r", str(ref_path), "stm", "-h", str(hyp_path), "ctm", "-s"]
        out = subprocess.run(
            command + ["-o", "sgml", "stdout", "-f", "0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        theirs = {}
        for m in _PATH.finditer(out):
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            key = (attrs["file"], attrs["channel"], float(attrs["R_T1"]), float(attrs["R_T2"]))
            steps = [s.split(",") for s in m.group(3).split(":") if s]
            theirs[key] = " ".join(s[2].strip('"') for s in steps if s[0] in "CSI")
        stm, ctm = read(ref_path), read(hyp_path)
        segmented = segment_ctm_by_stm(stm, ctm)
        ours = {
            (s.file, s.channel, round(s.start, 3), round(s.end, 3)): segmented.texts[s.utt_id]
            for s in stm.segments
            if not s.ignored
        }
        assert ours == theirs, seed
        checked += len(ours)
        ends = {round(s.end, 2) for s in stm.segments}
        ties += sum(
            round(s + d / 2, 2) in ends
            for w in ctm.times
            for (_, s, _), d in zip(ctm.times[w], ctm.durations[w], strict=True)
        )
    assert checked > 50 and ties > 10  # words whose midpoint is a segment end were decided
