"""ARPA validation (asr.lm.arpa.check_arpa) and the small reader's back-off scoring."""

from __future__ import annotations

import bz2
import gzip
import subprocess
from pathlib import Path

import pytest
from conftest import missing

from asr.errors import AsrError
from asr.lm.arpa import ArpaError, check_arpa, normalize_arpa, read_arpa
from asr.lm.kenlm import LmError, kenlm_binary

# A hand-made trigram model (numbers chosen, not estimated) with every kind of line: unigrams with
# and without backoff, a missing backoff; tabs after the probability and before the backoff, as
# KenLM needs them.
VALID = """\
\\data\\
ngram 1=6
ngram 2=5
ngram 3=2

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t-0.5
-0.7\t</s>
-0.6\ta\t-0.3
-0.8\tb\t-0.2
-0.9\tc\t-0.1

\\2-grams:
-0.4\t<s> a\t-0.25
-0.3\ta b\t-0.15
-0.5\tb </s>
-0.2\tb c
-0.45\tc </s>

\\3-grams:
-0.1\t<s> a b
-0.05\ta b c

\\end\\
"""


def write(tmp_path: Path, text: str, name: str = "lm.arpa") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replace_line(text: str, number: int, new: str | None) -> str:
    """``text`` with its 1-based line ``number`` replaced (None: deleted)."""
    lines = text.split("\n")
    if new is None:
        del lines[number - 1]
    else:
        lines[number - 1] = new
    return "\n".join(lines)


def line_of(text: str, content: str) -> int:
    return text.split("\n").index(content) + 1


def test_valid_file_plain_and_compressed(tmp_path: Path) -> None:
    plain = write(tmp_path, VALID)
    info = check_arpa(plain)
    assert (info.order, info.counts) == (3, (6, 5, 2))
    assert "order 3" in info.line() and "ngram 1=6 2=5 3=2" in info.line()
    # compressed files are recognised by their bytes, not their name
    gz = tmp_path / "lm.arpa.gz"
    gz.write_bytes(gzip.compress(VALID.encode()))
    bz = tmp_path / "lm.bz2-without-suffix"
    bz.write_bytes(bz2.compress(VALID.encode()))
    assert check_arpa(gz).counts == check_arpa(bz).counts == (6, 5, 2)
    # blank lines before \data\ and Windows line ends are accepted (KenLM accepts both)
    assert check_arpa(write(tmp_path, "\n\n" + VALID.replace("\n", "\r\n"), "b.arpa")).order == 3


# (line to change, replacement or None to delete, expected line in the message, message part)
MALFORMED = {
    "no data header": (1, "\\date\\", 1, "expected \\data\\"),
    "count gap": (3, "ngram 3=5", 3, "expected 'ngram 2=count'"),
    "bad count line": (2, "ngram 1 6", 2, "expected 'ngram N=count'"),
    "bad float": (9, "-0.7x\t</s>", 9, "is not a number"),
    "nan": (10, "nan\ta\t-0.3", 10, "NaN"),
    "positive prob": (11, "0.5\tb\t-0.2", 11, "above 0"),
    "bad backoff": (11, "-0.8\tb\tzz", 11, "backoff 'zz' is not a number"),
    "spaces, not tabs": (10, "-0.6 a -0.3", 10, "expected a tab after the log10 probability"),
    "space before backoff": (10, "-0.6\ta -0.3", 10, "expected a tab before the backoff"),
    "space after the words": (17, "-0.5\tb </s> ", 17, "whitespace after the last word"),
    "backoff at highest order": (22, "-0.1\t<s> a b\t-0.3", 22, "a backoff on a 3-gram"),
    "too few words": (16, "-0.3\ta", 16, "needs log10 prob, 2 words, [backoff]; found 2"),
    "unknown word": (17, "-0.5\tb zzz", 17, "'zzz' is not among the unigrams"),
    "duplicate unigram": (12, "-0.9\ta\t-0.1", 12, "unigram 'a' appears twice"),
    "missing </s>": (9, "-0.7\td", 14, "no </s>"),
    "fewer n-grams than declared": (19, None, 20, "4 2-grams, but the header declares 5"),
    "wrong section": (21, "\\4-grams:", 21, "expected \\3-grams:"),
    "missing end": (25, "", 24, "after 2 of the 2 3-grams (expected \\end\\)"),
    "text after end": (26, "junk", 26, "text after \\end\\"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_names_the_line(tmp_path: Path, case: str) -> None:
    number, new, expected_line, part = MALFORMED[case]
    path = write(tmp_path, replace_line(VALID, number, new))
    with pytest.raises(ArpaError) as caught:
        check_arpa(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{expected_line}: "), message
    assert part in message
    assert "\n" not in message
    assert isinstance(caught.value, AsrError)


def test_line_numbers_of_the_fixture_are_what_the_cases_assume() -> None:
    # the MALFORMED table edits lines by number: pin the ones it relies on
    assert line_of(VALID, "-0.7\t</s>") == 9
    assert line_of(VALID, "-0.3\ta b\t-0.15") == 16
    assert line_of(VALID, "-0.2\tb c") == 18
    assert line_of(VALID, "\\3-grams:") == 21
    assert line_of(VALID, "-0.1\t<s> a b") == 22
    assert line_of(VALID, "\\end\\") == 25


def test_more_ngrams_than_declared(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("-0.05\ta b c\n", "-0.05\ta b c\n-0.07\tb c </s>\n"))
    with pytest.raises(ArpaError, match=r":24: more 3-grams than the 2 the header declares"):
        check_arpa(path)


def test_empty_missing_and_truncated_compressed_files(tmp_path: Path) -> None:
    with pytest.raises(ArpaError, match=r"empty\.arpa:1: no \\data\\ header"):
        check_arpa(write(tmp_path, "", "empty.arpa"))
    with pytest.raises(ArpaError, match=r"nothere\.arpa: file not found"):
        check_arpa(tmp_path / "nothere.arpa")
    data = gzip.compress(VALID.encode())
    truncated = tmp_path / "cut.arpa.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArpaError, match=r"cut\.arpa\.gz:\d+: "):
        check_arpa(truncated)
    # the end of the file inside a section
    with pytest.raises(ArpaError, match=r"unexpected end of file after 1 of the 5 2-grams"):
        check_arpa(write(tmp_path, VALID[: VALID.index("-0.3\ta b")], "short.arpa"))


def test_read_arpa_backoff_scoring_by_hand(tmp_path: Path) -> None:
    model = read_arpa(write(tmp_path, VALID))
    assert model.order == 3 and model[("a", "b")] == (-0.3, -0.15) and model[("b", "c")][1] == 0
    assert model.vocab == {"<unk>", "<s>", "</s>", "a", "b", "c"}
    # listed trigram
    assert model.log10_prob(["<s>", "a"], "b") == pytest.approx(-0.1)
    # "<s> a c" and "a c" are not listed: bo(<s> a) + bo(a) + p(c)
    assert model.log10_prob(["<s>", "a"], "c") == pytest.approx(-0.25 - 0.3 - 0.9)
    # "a b </s>" not listed: bo(a b) + p(</s> | b)
    assert model.log10_prob(["a", "b"], "</s>") == pytest.approx(-0.15 - 0.5)
    # an OOV word is <unk>, and in the history too: "<unk> b" not listed -> bo(<unk>)=0 + p(b)
    assert model.log10_prob(["zz"], "b") == pytest.approx(-0.8)
    assert model.log10_prob(["a"], "zz") == pytest.approx(-0.3 - 1.0)
    # only the last order-1 words of a long history count
    assert model.log10_prob(["c", "c", "<s>", "a"], "b") == pytest.approx(-0.1)
    # a whole sentence: <s> a b c </s>
    scores = model.sentence_log10(["a", "b", "c"])
    assert scores == pytest.approx([-0.4, -0.1, -0.05, -0.45])


def kenlm_tool(name: str) -> Path:
    """KenLM's program ``name``, the oracle of these tests: a skip locally, an error under CI."""
    try:
        return kenlm_binary(name)
    except LmError as error:
        missing(str(error))


def kenlm_word_scores(path: Path, sentences: list[str]) -> list[list[float]]:
    """KenLM's ``query``: the log10 probability of each word of each sentence, then </s>."""
    result = subprocess.run(
        [kenlm_tool("query"), path],
        input="\n".join(sentences) + "\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "Total: " in line]
    assert len(lines) == len(sentences), result.stdout
    # each field: "word=vocab_id ngram_length log10_prob"; the last one is the sentence total
    return [[float(f.split()[-1]) for f in line.split("\t")[:-1]] for line in lines]


def test_read_arpa_without_unk_scores_oov_as_kenlm_does(tmp_path: Path) -> None:
    """KenLM gives a model without <unk> a log10 probability of -100 for it; so does read_arpa,
    also inside a history and after back-offs."""
    text = VALID.replace("ngram 1=6", "ngram 1=5").replace("-1.0\t<unk>\t0\n", "")
    path = write(tmp_path, text)
    model = read_arpa(path)
    sentences = ["a zz", "zz b", "b zz c a"]
    ours = [model.sentence_log10(s.split()) for s in sentences]
    kenlm = kenlm_word_scores(path, sentences)
    for theirs, mine in zip(kenlm, ours, strict=True):
        assert mine == pytest.approx(theirs, abs=1e-5)
    assert min(min(k) for k in kenlm) < -100  # the OOV was scored, not left out


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_kenlm_rejects_what_we_reject(tmp_path: Path, case: str) -> None:
    """Our checker is no stricter than KenLM on these: KenLM's build_binary fails on them too
    (and loads the valid file)."""
    build_binary = kenlm_tool("build_binary")
    valid = write(tmp_path, VALID, "valid.arpa")
    ok = subprocess.run([build_binary, valid, tmp_path / "v.bin"], capture_output=True)
    assert ok.returncode == 0, ok.stderr.decode()
    number, new, _, _ = MALFORMED[case]
    bad = write(tmp_path, replace_line(VALID, number, new), "bad.arpa")
    with pytest.raises(ArpaError):
        check_arpa(bad)
    result = subprocess.run([build_binary, bad, tmp_path / "b.bin"], capture_output=True)
    assert result.returncode != 0


def test_kenlm_scores_match_read_arpa(tmp_path: Path) -> None:
    """KenLM's query on the hand-made model gives the back-off scores read_arpa computes."""
    path = write(tmp_path, VALID)
    model = read_arpa(path)
    sentences = ["a b c", "a c", "b zz a", "c c b a"]
    kenlm = kenlm_word_scores(path, sentences)
    for sentence, theirs in zip(sentences, kenlm, strict=True):
        assert model.sentence_log10(sentence.split()) == pytest.approx(theirs, abs=1e-5)


def test_normalize_space_separated_file(tmp_path: Path) -> None:
    """A file with spaces between fields (SRILM-style, e.g. WSJ's LMs) is refused by KenLM and by
    check_arpa, and normalize_arpa rewrites it into the same model with tabs."""
    spaced = tmp_path / "spaced.arpa.gz"
    spaced.write_bytes(gzip.compress(("# a comment\n" + VALID.replace("\t", " ")).encode()))
    with pytest.raises(ArpaError, match=r"spaced\.arpa\.gz:8: expected a tab .*asr lm normalize"):
        check_arpa(spaced)
    out = tmp_path / "tabs.arpa"
    info = normalize_arpa(spaced, out)
    assert (info.order, info.counts) == (3, (6, 5, 2))
    assert dict(read_arpa(out)) == dict(read_arpa(write(tmp_path, VALID)))
    assert "-99.0\t<s>\t-0.5\n" in out.read_text()
    # real problems are still reported by line
    with pytest.raises(ArpaError, match=r"bad\.arpa:17: word 'zzz'"):
        normalize_arpa(write(tmp_path, replace_line(VALID, 17, "-0.5 b zzz"), "bad.arpa"), out)
    build_binary = kenlm_tool("build_binary")
    plain = write(tmp_path, VALID.replace("\t", " "), "spaced.arpa")
    for path, ok in ((plain, False), (out, True)):
        result = subprocess.run([build_binary, path, tmp_path / "x.bin"], capture_output=True)
        assert (result.returncode == 0) == ok, path
