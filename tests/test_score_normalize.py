"""asr.score.normalize: each option on small word lists, GLM parsing and rewriting (checked
against NIST's own rfilter1 and csrfilt.sh where sctk is installed), fillers, phone maps."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from conftest import sctk_tool

from asr.errors import DataDirError
from asr.score.normalize import (
    BUILTIN_PHONE_MAPS,
    DEFAULT_FILLERS,
    Glm,
    GlmRule,
    Normalizer,
    is_marker,
    load_phone_map,
    parse_glm,
    read_fillers,
    read_glm,
    read_phone_map,
)
from asr.units.phones import PHONES_39, fold_arpabet

# ---------------------------------------------------------------------------------------------
# Normalizer options, one at a time


def test_default_normalizer_changes_nothing() -> None:
    words = ["Hello,", "[noise]", "uh", "twenty-one", "don't", "<unk>"]
    out = Normalizer()(words)
    assert out == words
    assert out is not words  # a new list: callers may mutate it
    assert Normalizer().settings() == []


def test_lowercase_uses_lower_not_casefold() -> None:
    # casefold() would turn the German sharp s into "ss", changing the word, not its case.
    assert Normalizer(lowercase=True)(["HeLLo", "STRAßE", "ÉTÉ", "[NOISE]"]) == [
        "hello",
        "straße",
        "été",
        "[noise]",
    ]


def test_punctuation_removal_keeps_words_markers_apostrophes_and_inner_hyphens() -> None:
    norm = Normalizer(remove_punctuation=True)
    words = ["Hello,", "world!", "«quoted»", "¿qué?", "end.", "…", "--", "-", "'", "(paren)"]
    assert norm(words) == ["Hello", "world", "quoted", "qué", "end", "paren"]
    # Non-speech markers survive, so that they are not mistaken for the words noise/unk.
    assert norm(["[noise]", "<unk>", "%hesitation", "[laughter-yes]"]) == [
        "[noise]",
        "<unk>",
        "%hesitation",
        "[laughter-yes]",
    ]
    # Apostrophes stay (typographic ones written in ASCII); compound hyphens stay, fragment
    # hyphens at a token's edge are punctuation; a number keeps its point and comma.
    assert norm(["don’t", "'cause", "dogs'", "‘quoted’", "twenty‐one", "th-", "-tion"]) == [
        "don't",
        "'cause",
        "dogs'",
        "quoted",
        "twenty-one",
        "th",
        "tion",
    ]
    assert norm(["3.5", "1,000.", "a.m.", "U.S.", "o.k."]) == ["3.5", "1,000", "am", "US", "ok"]
    # CJK and other scripts' punctuation is punctuation too (Unicode categories P*).
    assert norm(["你好，", "世界。", "「引用」"]) == ["你好", "世界", "引用"]


def test_apostrophe_removal_alone_touches_nothing_else() -> None:
    norm = Normalizer(apostrophes="remove")
    assert norm(["don't", "it’s,", "rock'n'roll", "'", "x"]) == ["dont", "its,", "rocknroll", "x"]
    assert norm.settings() == [("apostrophes", "removed")]


def test_hyphen_split_and_remove_only_touch_inner_hyphens() -> None:
    words = ["twenty-one", "mm-hm-hm", "x‑ray", "th-", "-tion", "a--b", "plain"]
    assert Normalizer(hyphens="split")(words) == [
        "twenty",
        "one",
        "mm",
        "hm",
        "hm",
        "x",
        "ray",
        "th-",
        "-tion",
        "a",
        "b",
        "plain",
    ]
    assert Normalizer(hyphens="remove")(words) == [
        "twentyone",
        "mmhmhm",
        "xray",
        "th-",
        "-tion",
        "ab",
        "plain",
    ]
    assert Normalizer(hyphens="keep")(words) == words
    assert Normalizer(hyphens="remove").settings() == [("hyphens", "removed (parts joined)")]


def test_filler_removal_default_list_any_case_and_bracket_rule() -> None:
    norm = Normalizer(remove_fillers=True)
    words = ["UH", "i", "Um", "mean", "<unk>", "[laughter-yes]", "<v-noise>", "<s>", "hmm", "it"]
    assert norm(words) == ["i", "mean", "it"]
    # Backchannels carry meaning and stay; so does punctuation-attached "uh," without
    # punctuation removal, which shows the order: punctuation first, then fillers.
    assert norm(["uh-huh", "mm-hm", "yeah", "uh,"]) == ["uh-huh", "mm-hm", "yeah", "uh,"]
    both = Normalizer(remove_punctuation=True, remove_fillers=True)
    assert both(["uh,", "so.", "Um..."]) == ["so"]


def test_custom_filler_set() -> None:
    norm = Normalizer(remove_fillers=True, fillers=frozenset({"like", "YOU_KNOW"}))
    assert norm(["like", "uh", "you_know", "LIKE", "[noise]", "x"]) == ["uh", "x"]
    assert dict(norm.settings())["fillers"].startswith("removed (2 words, custom list")


def test_invalid_option_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="hyphens"):
        Normalizer(hyphens="join")
    with pytest.raises(ValueError, match="apostrophes"):
        Normalizer(apostrophes="split")


def test_all_options_together_in_documented_order() -> None:
    glm = parse_glm(["GONNA => GOING TO", "UH => %HESITATION", "O.K. => OKAY"], "t.glm")
    norm = Normalizer(
        lowercase=True,
        remove_punctuation=True,
        hyphens="split",
        apostrophes="remove",
        remove_fillers=True,
        glm=glm,
    )
    # Case and punctuation first, so "Gonna," meets the (upper-case, punctuated) GLM; the GLM
    # maps "uh" onto NIST's %hesitation, which filler removal then drops.
    words = ["Gonna,", "Uh", "O.K.!", "twenty-one", "[NOISE]", "won't", "ok"]
    assert norm(words) == ["going", "to", "okay", "twenty", "one", "wont", "okay"]
    count = len({f.lower() for f in DEFAULT_FILLERS})  # <unk> and <UNK> are one word here
    fillers = f"removed ({count} words, default list, and any [...] or <...> token)"
    assert norm.settings() == [
        ("case", "folded to lower case"),
        ("punctuation", "removed"),
        ("hyphens", "split into words"),
        ("apostrophes", "removed"),
        ("glm", "t.glm (3 rules)"),
        ("fillers", fillers),
    ]


def test_normalizer_is_applied_identically_and_repeatably() -> None:
    norm = Normalizer(lowercase=True, remove_punctuation=True, remove_fillers=True)
    words = ["The", "cat,", "uh,", "sat."]
    assert norm(words) == norm(list(words)) == ["the", "cat", "sat"]
    assert norm(norm(words)) == norm(words)  # idempotent on its own output
    assert words == ["The", "cat,", "uh,", "sat."]  # input untouched


# ---------------------------------------------------------------------------------------------
# Fillers


def test_default_fillers_cover_the_usual_conventions() -> None:
    for token in ("<unk>", "<UNK>", "<noise>", "<spoken_noise>", "[noise]", "[laughter]"):
        assert token in DEFAULT_FILLERS
    for token in ("[vocalized-noise]", "uh", "um", "uhm", "er", "ah", "eh", "hmm", "mm"):
        assert token in DEFAULT_FILLERS
    for word in ("uh-huh", "mm-hm", "yeah", "a", "the", "i"):
        assert word not in DEFAULT_FILLERS
    assert (
        is_marker("[anything]") and is_marker("<x>") and not is_marker("[x") and not is_marker("x")
    )


def test_read_fillers(tmp_path: Path) -> None:
    path = tmp_path / "fillers.txt"
    path.write_text("# header\nuh  # trailing comment\n\n<unk>\n")
    assert read_fillers(path) == frozenset({"uh", "<unk>"})
    path.write_text("uh\nuh um\n")
    with pytest.raises(DataDirError, match=rf"^{path}:2: expected one token per line"):
        read_fillers(path)
    with pytest.raises(DataDirError, match="file not found"):
        read_fillers(tmp_path / "missing.txt")


# ---------------------------------------------------------------------------------------------
# GLM: parsing


def test_glm_plain_alternative_bracket_and_brace_syntax() -> None:
    glm = parse_glm(
        [
            ";; comment line",
            "# another comment",
            '* name "test.glm"',
            "* format = 'NIST1'",
            "",
            "gonna => going to ;; trailing comment",
            "okay => ok / o.k.",
            "[wanna] => [want to] / [ ] __ [ ]",
            "[I'D] => [{I HAD / I WOULD}] / [ ] __ [ ]",
            '"kinda" => "kind of"',
            "and/or => and or",
            "uh =>",
            "adviser => advisor / [ ] __",
        ],
        "test.glm",
    )
    assert len(glm) == 8
    assert glm.rules[0] == GlmRule(("going", "to"), (("gonna",),), 6)
    assert glm.rules[1] == GlmRule(("ok",), (("okay",), ("o.k.",)), 7)
    assert glm.rules[2].canonical == ("want", "to")
    assert glm.rules[3] == GlmRule(("I", "HAD"), (("I'D",), ("I", "WOULD")), 9)
    assert glm.rules[4].canonical == ("kind", "of")
    assert glm.rules[5] == GlmRule(("and", "or"), (("and/or",),), 11)  # "/" inside a word
    assert glm.rules[6] == GlmRule((), (("uh",),), 12)  # empty right side: deletion
    assert glm.rules[7].canonical == ("advisor",)
    assert glm.case_sensitive and glm.name == "test.glm"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("gonna going to", "expected one '=>'"),
        ("a => b => c", "expected one '=>'"),
        ("=> b", "empty left side"),
        ("a / b => c", r"alternatives \('/'\) are only allowed on the right side"),
        ("a => [b", "unbalanced '\\['"),
        ("a => {b / c", "unbalanced '\\{'"),
        ("a => b]", "unbalanced '\\]'"),
        ("a => b / @", "only the first \\(canonical\\) alternative may be empty"),
        ("binyamin => benjamin / __ [ netanyahu]", "context '/ __ \\[ netanyahu\\]' is not"),
        ("falkner => faulkner / [william ] __", "context .* is not supported"),
        ("* case_sensitive = 'maybe'", "case_sensitive must be T or F"),
        ("* format = 'NIST2'", "only format 'NIST1'"),
        ("* copy_no_hit = 'F'", "copy_no_hit"),
        ("* name", "expected a header line"),
    ],
)
def test_glm_errors_name_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "bad.glm"
    path.write_text(f";; first line\ngood => fine\n{line}\n")
    with pytest.raises(DataDirError, match=rf"^{path}:3: {problem}") as info:
        read_glm(path)
    assert "\n" not in str(info.value)


def test_glm_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="file not found"):
        read_glm(tmp_path / "missing.glm")
    path = tmp_path / "latin1.glm"
    path.write_bytes(b"a => b\ncaf\xe9 => cafe\n")
    with pytest.raises(DataDirError, match=rf"^{path}:2: not valid UTF-8"):
        read_glm(path)


# ---------------------------------------------------------------------------------------------
# GLM: rewriting


def _glm(*lines: str, case_sensitive: bool = True) -> Glm:
    header = [] if case_sensitive else ["* case_sensitive = 'F'"]
    return parse_glm([*header, *lines], "t.glm")


def test_glm_rewrites_every_variant_to_the_canonical_form() -> None:
    glm = _glm("okay => ok / o.k.", "gonna => going to", "i'd => {i had / i would}")
    assert glm.apply("okay o.k. ok fine".split()) == ["ok", "ok", "ok", "fine"]
    assert glm.apply("gonna go".split()) == ["going", "to", "go"]
    assert glm.apply("i'd i would i had".split()) == ["i", "had"] * 3
    assert glm.apply([]) == []


def test_glm_longest_match_left_to_right() -> None:
    glm = _glm("a => x", "a b => y", "a b c => z", "b c => w")
    assert glm.apply("a b c".split()) == ["z"]
    assert glm.apply("a b d".split()) == ["y", "d"]
    assert glm.apply("a c".split()) == ["x", "c"]
    # Left to right: at "a" the longest match is "a b", so "b c" never gets its chance.
    assert glm.apply("a b b c".split()) == ["y", "w"]
    assert glm.apply("d b c".split()) == ["d", "w"]


def test_glm_output_is_not_rewritten_again() -> None:
    glm = _glm("gonna => going to", "to be => tobe")
    # "gonna be" -> "going to be": the "to" of the output is not re-read with "be".
    assert glm.apply("gonna be".split()) == ["going", "to", "be"]
    # ...and written out, "going to" is a unit too (canonical forms are members), so both
    # spellings normalise the same way.
    assert glm.apply("going to be".split()) == ["going", "to", "be"]
    assert glm.apply("ought to be".split()) == ["ought", "tobe"]


def test_glm_equivalence_is_transitive_first_rule_gives_the_canonical_form() -> None:
    glm = _glm("colour => color", "colour => couleur", "hue => tint", "tint => color")
    # All five spellings are one class; its canonical form is the first rule's.
    assert glm.apply("colour couleur color hue tint".split()) == ["color"] * 5


def test_glm_deletion_rule() -> None:
    glm = _glm("%hesitation =>", "you know => [ ]")
    assert glm.apply("so %hesitation you know yes".split()) == ["so", "yes"]


def test_glm_case_insensitive_keeps_the_input_case_style() -> None:
    glm = _glm("GONNA => GOING TO", case_sensitive=False)
    assert glm.apply(["GONNA", "gonna", "Gonna"]) == ["GOING", "TO", "going", "to", "GOING", "TO"]
    assert _glm("GONNA => GOING TO").apply(["gonna"]) == ["gonna"]  # case-sensitive default


def test_glm_in_normalizer_is_normalised_like_the_text() -> None:
    # A NIST-style upper-case GLM with punctuation and hyphens still applies to lower-cased,
    # punctuation-free, hyphen-split text: its entries go through the same token steps.
    glm = _glm("MR. => MISTER", "MM-HM => %BCACK", "O.K. => OKAY", "UH => %HESITATION")
    norm = Normalizer(lowercase=True, remove_punctuation=True, hyphens="split", glm=glm)
    assert norm(["Mr.", "mm-hm", "O.K.", "ok", "uh"]) == [
        "mister",
        "bcack",
        "okay",
        "okay",
        "%hesitation",  # a listed filler: a marker, not punctuation to strip
    ]
    assert Normalizer(glm=glm)(["MR.", "Mr."]) == ["MISTER", "Mr."]


# ---------------------------------------------------------------------------------------------
# NIST's tools as the oracle: rfilter1 (GLM rewriting) and csrfilt.sh -dh (hyphen splitting)


@pytest.fixture
def rfilter1() -> list[str]:
    return sctk_tool("rfilter1")


@pytest.fixture
def csrfilt() -> list[str]:
    return sctk_tool("csrfilt")


def _run_rfilter1(rfilter1: list[str], glm_path: Path, lines: list[list[str]]) -> list[list[str]]:
    # csrfilt.sh pads every line with a space on both sides before rfilter1, so that the
    # context '[ ] __ [ ]' (a space on each side) means "whole words"; we do the same.
    text = "".join(f" {' '.join(words)} \n" for words in lines)
    done = subprocess.run(
        [*rfilter1, str(glm_path)], input=text, capture_output=True, text=True, check=True
    )
    out = done.stdout.splitlines()
    assert len(out) == len(lines), done.stdout + done.stderr
    return [line.split() for line in out]


def test_glm_matches_rfilter1_on_nist_syntax(rfilter1: list[str], tmp_path: Path) -> None:
    path = tmp_path / "nist.glm"
    path.write_text(
        ";; a GLM in NIST's own syntax\n"
        '* name "nist.glm"\n'
        "* format = 'NIST1'\n"
        "* copy_no_hit = 'T'\n"
        "* case_sensitive = 'T'\n"
        "[GONNA] => [GOING TO] / [ ] __ [ ]\n"
        "WANNA => WANT TO / [ ] __ [ ] ;; comment\n"
        "AIN'T => [ARE NOT] / [ ] __ [ ]\n"
        "UH => %HESITATION / [ ] __ [ ]\n"
        "MR. => MISTER / [ ] __ [ ]\n"
        "ANY MORE => ANYMORE / [ ] __ [ ]\n"
        "ANY => SOME / [ ] __ [ ]\n"
    )
    lines = [
        "I AM GONNA GO".split(),
        "WANNA WANNABE GONNA GONNA".split(),
        "AIN'T UH MR. SMITH MR".split(),
        "NOT ANY MORE ANY ANYMORE MANY".split(),
        [],
    ]
    glm = read_glm(path)
    assert [glm.apply(words) for words in lines] == _run_rfilter1(rfilter1, path, lines)


def test_glm_matches_rfilter1_on_random_rule_sets(rfilter1: list[str], tmp_path: Path) -> None:
    # Random word-boundary rules over a small vocabulary (with words that are prefixes of
    # others, so a rule for "a" must not fire inside "ab"). rfilter1 applies the FIRST rule in
    # file order; listing longer left sides first makes that the longest match, which is the
    # only case where the two definitions agree. Right sides use their own (upper-case) words,
    # so that the equivalence classes here never meet the input through a right side.
    vocab = ["a", "ab", "b", "ba", "c"]
    rng = random.Random(5)
    for trial in range(12):
        lefts = {tuple(rng.choices(vocab, k=rng.randint(1, 3))) for _ in range(8)}
        rules = sorted(lefts, key=len, reverse=True)
        lines = [";; random rules", "* case_sensitive = 'T'"]
        for lhs in rules:
            rhs = " ".join(rng.choices(["P", "Q", "R"], k=rng.randint(0, 2)))
            lines.append(f"{' '.join(lhs)} => [{rhs}] / [ ] __ [ ]")
        path = tmp_path / f"random{trial}.glm"
        path.write_text("\n".join(lines) + "\n")
        inputs = [rng.choices(vocab, k=rng.randint(0, 12)) for _ in range(60)]
        glm = read_glm(path)
        expected = _run_rfilter1(rfilter1, path, inputs)
        assert [glm.apply(words) for words in inputs] == expected, path.read_text()


def test_hyphen_split_matches_csrfilt_dh(csrfilt: list[str], tmp_path: Path) -> None:
    glm = tmp_path / "noop.glm"  # csrfilt needs at least one rule
    glm.write_text(";; no-op\nZZZZZ => ZZZZZ / [ ] __ [ ]\n")
    lines = [
        "twenty-one th- -tion mm-hm-hm x-ray's a-b-c",
        "no hyphens here",
        "well-known e-mail re- -ed",
    ]
    done = subprocess.run(
        [*csrfilt, "-dh", "-s", "-i", "txt", str(glm)],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
    )
    expected = [line.split() for line in done.stdout.splitlines()]
    assert len(expected) == len(lines), done.stdout + done.stderr
    split = Normalizer(hyphens="split")
    assert [split(line.split()) for line in lines] == expected


# ---------------------------------------------------------------------------------------------
# Phone maps

# The 61 phone labels of TIMIT's phoncode.doc.
TIMIT_61 = (
    "b d g p t k dx q jh ch s sh z zh f th v dh m n ng em en eng nx l r w y hh hv el "
    "iy ih eh ey ae aa aw ay ah ao oy ow uh uw ux er ax ix axr ax-h pau epi h# "
    "bcl dcl gcl pcl tcl kcl"
).split()
# Lee & Hon (1989), table: the 39 folded classes (sil for all closures and pauses).
LEE_HON_39 = (
    "iy ih eh ae ah uw uh aa ey ay oy aw ow er l r w y m n ng ch jh dh b d dx g p t k z v f "
    "th s sh hh sil"
).split()


def test_timit_61_39_map_is_lee_and_hon_as_in_kaldi() -> None:
    mapping = load_phone_map("timit61-39")
    assert len(TIMIT_61) == 61 and len(set(LEE_HON_39)) == 39
    assert sorted(mapping) == sorted(TIMIT_61)
    assert mapping["q"] == ""  # the glottal stop is deleted
    assert {t for t in mapping.values() if t} == set(LEE_HON_39)
    assert set(LEE_HON_39) == set(PHONES_39)  # the project's 39 set (asr.units.phones)
    folds = {
        "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "ix": "ih", "ux": "uw", "el": "l",
        "em": "m", "en": "n", "nx": "n", "eng": "ng", "hv": "hh", "zh": "sh", "bcl": "sil",
        "dcl": "sil", "gcl": "sil", "pcl": "sil", "tcl": "sil", "kcl": "sil", "pau": "sil",
        "epi": "sil", "h#": "sil",
    }  # fmt: skip
    for phone, target in folds.items():
        assert mapping[phone] == target, phone
    for phone in set(TIMIT_61) - set(folds) - {"q"}:
        assert mapping[phone] == phone
    # ...and the synthesis code's own folding agrees phone for phone.
    for phone in TIMIT_61:
        assert mapping[phone] == (fold_arpabet(phone) or ""), phone


def test_phone_map_in_normalizer() -> None:
    norm = Normalizer(phone_map=load_phone_map("timit61-39"))
    assert norm("h# sh ix q hv ae dcl d sil pau".split()) == [
        "sil", "sh", "ih", "hh", "ae", "sil", "d", "sil", "sil",
    ]  # fmt: skip
    assert norm.settings() == [("phone map", "timit61-39 (61 phones, 1 deleted)")]


def test_read_phone_map_format_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "my.map"
    path.write_text("# comment\nh# sil # pauses are silence\nq\nao aa\n\n")
    mapping = read_phone_map(path)
    assert mapping == {"h#": "sil", "q": "", "ao": "aa"} and mapping.name == str(path)
    assert load_phone_map(path) == mapping  # a path works where a built-in name does
    path.write_text("aa aa aa\n")
    with pytest.raises(DataDirError, match=rf"^{path}:1: expected 'PHONE \[TARGET\]'"):
        read_phone_map(path)
    path.write_text("aa aa\nbb b\naa ah\n")
    with pytest.raises(DataDirError, match=rf"^{path}:3: phone 'aa' mapped twice"):
        read_phone_map(path)
    path.write_text("# nothing\n")
    with pytest.raises(DataDirError, match="no phones"):
        read_phone_map(path)
    with pytest.raises(DataDirError, match=r"timit99: not a phone map file nor a built-in map"):
        load_phone_map("timit99")
    assert set(BUILTIN_PHONE_MAPS) == {"timit61-39", "timit61-48", "timit48-39"}
