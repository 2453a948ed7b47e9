"""Prompts for the synthetic corpus: text normalisation, sentence splitting, reading prompt files
and generating sentences from the RM-style grammar."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import shared_path

from asr.corpora.synthetic.normalize import (
    normalize_sentence,
    number_to_words,
    ordinal_to_words,
    year_to_words,
)
from asr.corpora.synthetic.prompts import (
    PromptError,
    generate_prompts,
    grammar_path,
    load_grammar,
    read_prompt_files,
    split_sentences,
)
from asr.errors import AsrError

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")

# ---------------------------------------------------------------------------------------------
# normalisation


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (40, "forty"),
        (42, "forty two"),
        (105, "one hundred five"),
        (999, "nine hundred ninety nine"),
        (1000, "one thousand"),
        (20_017, "twenty thousand seventeen"),
        (3_000_000, "three million"),
        (1_234_567, "one million two hundred thirty four thousand five hundred sixty seven"),
        (2_000_000_001, "two billion one"),
    ],
)
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


def test_number_to_words_range() -> None:
    with pytest.raises(ValueError):
        number_to_words(-1)
    with pytest.raises(ValueError):
        number_to_words(10**15)


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (5, "fifth"),
        (8, "eighth"),
        (9, "ninth"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty first"),
        (100, "one hundredth"),
        (113, "one hundred thirteenth"),
    ],
)
def test_ordinal_to_words(n: int, words: str) -> None:
    assert ordinal_to_words(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1984, "nineteen eighty four"),
        (1905, "nineteen oh five"),
        (1900, "nineteen hundred"),
        (1776, "seventeen seventy six"),
        (2000, "two thousand"),
        (2006, "two thousand six"),
        (2024, "twenty twenty four"),
    ],
)
def test_year_to_words(n: int, words: str) -> None:
    assert year_to_words(n) == words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # years, cardinals, ordinals
        ("In 1984 there were 42 ships.", "in nineteen eighty four there were forty two ships"),
        ("It ended in 1905, not 1900.", "it ended in nineteen oh five not nineteen hundred"),
        ("By 2005 and in 2024.", "by two thousand five and in twenty twenty four"),
        ("He sold 1500 of them", "he sold fifteen hundred of them"),
        ("About 1,000,000 people.", "about one million people"),
        ("We have 23,456 cases", "we have twenty three thousand four hundred fifty six cases"),
        ("He came 3rd, then 21st.", "he came third then twenty first"),
        ("The 82d Congress", "the eighty second congress"),
        ("the 12th and 113th", "the twelfth and one hundred thirteenth"),
        ("In the 1980s and '90s", "in the nineteen eighties and nineties"),
        ("tens of 1000s", "tens of thousands"),
        ("Agent 007", "agent zero zero seven"),
        # money, percent, decimals, fractions, times
        ("It cost $5.", "it cost five dollars"),
        ("Only $1 each", "only one dollar each"),
        ("$5.50 a day", "five dollars and fifty cents a day"),
        ("just $0.05", "just five cents"),
        ("We spent $3 billion.", "we spent three billion dollars"),
        ("a $1.5 million dollar loan", "a one point five million dollar loan"),
        ("$16.5 billion", "sixteen point five billion dollars"),
        ("£20 and 50¢", "twenty pounds and fifty cents"),
        ("12% of them", "twelve percent of them"),
        ("up 3.5% today", "up three point five percent today"),
        ("3.5 miles", "three point five miles"),
        ("pi is 3.14", "pi is three point one four"),
        ("2 1/2 cups and 3/4 of it", "two and one half cups and three quarters of it"),
        ("at 10:30 or 7:00", "at ten thirty or seven o'clock"),
        ("No. 5 and #1", "number five and number one"),
        # abbreviations
        ("Mr. Smith met Dr. Jones.", "mister smith met doctor jones"),
        ("Mrs Weston and Mr Knightley", "missus weston and mister knightley"),
        ("St. Paul's is on Baker St. here", "saint paul's is on baker street here"),
        ("Gen. Marshall, Adm. King, etc.", "general marshall admiral king et cetera"),
        ("ships, e.g. cruisers", "ships for example cruisers"),
        ("since World War II", "since world war two"),
        # accents, apostrophes, hyphens, punctuation
        ("Café au lait, naïve Zoë!", "cafe au lait naive zoe"),
        ("Æsop's fables", "aesop's fables"),
        ("Don't say 'tis o'er, fathers'", "don't say tis o'er fathers"),
        ("“Quoted,” she said—twice.", "quoted she said twice"),
        ("a well-known man--indeed", "a well known man indeed"),
        ("and/or (maybe) [sic] *so*", "and or maybe sic so"),
        ("Salt & pepper", "salt and pepper"),
        ("Harry S. Truman", "harry s truman"),
        ("readiness c two", "readiness c two"),
    ],
)
def test_normalize_known(text: str, expected: str) -> None:
    assert normalize_sentence(text) == expected
    # a prompt is a fixed point: normalising it again changes nothing
    assert normalize_sentence(expected) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ...  ",
        "-- !",
        "NATO met today.",  # acronym
        "He works for the FBI",
        "CHAPTER IV",  # heading / Roman numeral
        "Book I",
        "I. A DISCUSSION SOMEWHAT IN THE AIR",
        "King Henry V spoke",
        "The U.S. Navy sailed.",  # dotted abbreviation
        "at 5 a.m. sharp",
        "The B52 flew",  # digits glued to letters
        "at 5pm",
        "on 4/15/86",  # a date
        "x + y = z",  # symbols
        "an email@example",
        "it was 30° outside",
        "Καλημέρα κόσμε",  # another script
        "5 ft tall",  # unpronounceable abbreviation
        "th' ground",
        "1234567890123456 grains",  # too big to read reliably
    ],
)
def test_normalize_none(text: str) -> None:
    assert normalize_sentence(text) is None


def test_normalize_output_alphabet() -> None:
    text = "Mr. O'Brien paid $12.75 (12%) on the 3rd—for 2 ½ hours; it's “fine”!"
    out = normalize_sentence(text)
    assert out is not None
    assert all(WORD.fullmatch(word) for word in out.split(" "))
    assert "twelve dollars and seventy five cents" in out
    assert "two and one half hours" in out


# ---------------------------------------------------------------------------------------------
# sentence splitting

PARAGRAPH = """\
CHAPTER I

Mr. Woodhouse sat by the fire with Dr. Perry, who had come
from St. Albans that morning. "Is it raining?" asked he. "No,"
said Mrs. Weston; "it is fine!" They talked of Harry S. Truman
and of the U.S. Navy until 10 o'clock... Then all went home.
Who knows? nobody does.

A second paragraph without a full stop
"""


def test_split_sentences() -> None:
    assert split_sentences(PARAGRAPH) == [
        "CHAPTER I",
        "Mr. Woodhouse sat by the fire with Dr. Perry, who had come from St. Albans that morning.",
        '"Is it raining?" asked he.',
        '"No," said Mrs. Weston; "it is fine!"',
        "They talked of Harry S. Truman and of the U.S. Navy until 10 o'clock...",
        "Then all went home.",
        "Who knows? nobody does.",
        "A second paragraph without a full stop",
    ]


def test_split_sentences_headings_and_salutations() -> None:
    text = "ATOMIC ENERGY\nThe lead is ours. We act.\nMr. Speaker, Members:\nIt is an honor."
    assert split_sentences(text) == [
        "ATOMIC ENERGY",
        "The lead is ours.",
        "We act.",
        "Mr. Speaker, Members:",
        "It is an honor.",
    ]


def test_split_sentences_numbers() -> None:
    text = "It was 1983. 1984 was better. See No. 5 and Jan. 20 for details."
    assert split_sentences(text) == [
        "It was 1983.",
        "1984 was better.",
        "See No. 5 and Jan. 20 for details.",
    ]


# ---------------------------------------------------------------------------------------------
# reading prompt files


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_prompt_files_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"A fine first line here.\nAnd a second one too.\nCaf\xe9 on line three.\n")
    with pytest.raises(PromptError) as info:
        read_prompt_files([path])
    message = str(info.value)
    assert message == f"{path}:3: not valid UTF-8 (byte 0xe9)"
    assert isinstance(info.value, AsrError)


def test_read_prompt_files_missing(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.txt", "This one is fine.\n")
    missing = tmp_path / "nope.txt"
    with pytest.raises(PromptError, match=re.escape(str(missing))) as info:
        read_prompt_files([good, missing])
    assert "\n" not in str(info.value)


def test_read_prompt_files_limits_dedupe_order(tmp_path: Path) -> None:
    first = _write(
        tmp_path / "a.txt",
        "Too short. The ship sailed at dawn. "
        + "This sentence has far too many words in it to be used as a prompt for the "
        + "synthesiser because it goes on and on.\n"
        + "The NATO fleet is large. The ship sailed at dawn! Mr. Smith paid $5 today.\n",
    )
    second = _write(tmp_path / "b.txt", "Mr Smith paid $5 today. A cat sat here.\n")
    prompts = read_prompt_files([first, second], min_words=3, max_words=12)
    assert prompts == [
        "the ship sailed at dawn",
        "mister smith paid five dollars today",
        "a cat sat here",
    ]
    assert read_prompt_files(first, min_words=5, max_words=6) == [
        "the ship sailed at dawn",
        "mister smith paid five dollars today",
    ]
    with pytest.raises(ValueError):
        read_prompt_files([first], min_words=5, max_words=4)


def test_read_prompt_files_skips_gutenberg_and_brackets(tmp_path: Path) -> None:
    text = (
        "The Project Gutenberg EBook of Nothing, by Nobody\n\n"
        "This eBook is for the use of anyone anywhere at no cost.\n\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK NOTHING ***\n\n"
        "[Nothing by Nobody 1900]\n\n"
        "The story begins here. [Applause] It ends well.\n\n"
        "End of the Project Gutenberg EBook of Nothing, by Nobody\n\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK NOTHING ***\n\n"
        "Updated editions will replace the previous one.\n"
    )
    path = _write(tmp_path / "book.txt", text)
    assert read_prompt_files([path]) == ["the story begins here", "it ends well"]


def test_read_prompt_files_prose_filters(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "p.txt",
        "(b) Food subsidies must go.\n\nX. The Salad of Colonel Cray\n\n"
        "Our p eople need care. 'T is true, and c. It's a fine day today.\n",
    )
    assert read_prompt_files([path]) == ["it's a fine day today"]


# ---------------------------------------------------------------------------------------------
# the grammar


def test_generate_prompts_deterministic_unique() -> None:
    first = generate_prompts(2000, seed=11)
    assert len(first) == 2000
    assert len(set(first)) == 2000
    assert generate_prompts(2000, seed=11) == first
    other = generate_prompts(2000, seed=12)
    assert other != first
    assert len(set(first) & set(other)) < 1000
    for prompt in first:
        assert all(WORD.fullmatch(word) for word in prompt.split(" ")), prompt
        assert normalize_sentence(prompt) == prompt


def test_generate_prompts_variety() -> None:
    prompts = generate_prompts(20_000, seed=3)
    assert len(set(prompts)) == 20_000
    lengths = [len(p.split()) for p in prompts]
    assert 5 <= sum(lengths) / len(lengths) <= 15
    words = {w for p in prompts for w in p.split()}
    assert len(words) >= 700


def test_grammar_vocabulary() -> None:
    grammar = load_grammar()
    vocabulary = grammar.vocabulary()
    print(f"grammar vocabulary: {len(vocabulary)} words, {grammar.size():.3g} derivations")
    assert len(vocabulary) >= 700
    assert all(WORD.fullmatch(word) for word in vocabulary)
    # every word on its own is already a normalised prompt
    assert [w for w in vocabulary if normalize_sentence(w) != w] == []
    assert {"show", "kennedy", "harbor", "cruisers", "pacific", "fleet", "knots"} <= vocabulary


def test_grammar_path() -> None:
    path = grammar_path()
    assert path.is_file()
    assert path.parent == Path(__file__).resolve().parents[1] / "asr" / "resources" / "synth"


SMALL = """\
# a tiny grammar: 3 x 2 = 6 sentences
<sentence> = <verb> the (ships | boats)
<verb> = show | list
    | count
"""


def test_small_grammar_exact_and_exhausted(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.txt", SMALL)
    everything = generate_prompts(6, seed=1, grammar=path)
    assert sorted(everything) == sorted(
        f"{v} the {n}" for v in ("show", "list", "count") for n in ("ships", "boats")
    )
    with pytest.raises(PromptError, match="6"):
        generate_prompts(7, seed=1, grammar=path)


def test_ambiguous_grammar_exhausted(tmp_path: Path) -> None:
    # 4 derivations but only 2 distinct sentences
    path = _write(tmp_path / "g.txt", "<sentence> = [the] ships | the ships | ships\n")
    assert sorted(generate_prompts(2, seed=0, grammar=path)) == ["ships", "the ships"]
    with pytest.raises(PromptError):
        generate_prompts(3, seed=0, grammar=path)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("<sentence> = show <thing>\n", 1, "<thing> is not defined"),
        ("<sentence> = show\n\n<a> = x <b>\n<b> = y <a>\n", 3, "recursive"),
        ("<sentence> = show the Ships\n", 1, "bad token 'Ships'"),
        ("<sentence> = show ( the\n", 1, "missing ')'"),
        ("<sentence> = show\n<x> = ( a | ) b\n", 2, "empty alternative"),
        ("<sentence> = show |\n", 1, "empty alternative"),
        ("<sentence> = show\n<sentence> = list\n", 2, "already defined"),
        ("<sentence> = show\nlist the ships\n", 2, "expected"),
    ],
)
def test_grammar_errors(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = _write(tmp_path / "g.txt", text)
    with pytest.raises(PromptError) as info:
        generate_prompts(1, seed=0, grammar=path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert problem in str(info.value)


def test_grammar_missing(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="not found"):
        generate_prompts(1, seed=0, grammar=tmp_path / "none.txt")


# ---------------------------------------------------------------------------------------------
# the real texts in ../shared/text


@pytest.mark.integration
def test_read_shared_texts() -> None:
    text_dir = shared_path("text")
    files = [
        text_dir / "gutenberg" / "austen-persuasion.txt",
        text_dir / "gutenberg" / "shakespeare-hamlet.txt",
        text_dir / "state_union" / "1984-Reagan.txt",
        text_dir / "state_union" / "1946-Truman.txt",
    ]
    prompts = read_prompt_files(files)
    assert len(prompts) > 2000
    assert len(set(prompts)) == len(prompts)
    for prompt in prompts:
        assert 3 <= len(prompt.split(" ")) <= 20
        assert all(WORD.fullmatch(word) for word in prompt.split(" ")), prompt
        assert normalize_sentence(prompt) == prompt
    # the speeches are full of numbers: some must have been spelled out
    assert any("nineteen eighty" in p for p in prompts)
    assert any("percent" in p for p in prompts)


@pytest.mark.integration
def test_shared_latin1_file_is_reported() -> None:
    path = shared_path("text", "gutenberg", "chesterton-ball.txt")
    data = path.read_bytes()
    bad = next(i for i in range(len(data)) if data[i] >= 0x80)  # this file is Latin-1
    line = data[:bad].count(b"\n") + 1
    with pytest.raises(PromptError) as info:
        read_prompt_files([path])
    assert str(info.value) == f"{path}:{line}: not valid UTF-8 (byte 0x{data[bad]:02x})"


@pytest.mark.integration
def test_shared_gutenberg_footer_skipped(tmp_path: Path) -> None:
    # the one book with the licence footer is Latin-1: convert it to UTF-8 first
    source = shared_path("text", "gutenberg", "chesterton-ball.txt")
    text = source.read_bytes().decode("latin-1")
    path = _write(tmp_path / "ball.txt", text)
    prompts = read_prompt_files([path])
    assert len(prompts) > 1000
    assert not [p for p in prompts if "gutenberg" in p or "ebook" in p]
    # ...while the footer itself does hold speakable sentences about Project Gutenberg
    footer = text[text.index("End of Project Gutenberg") :]
    raw = [normalize_sentence(s) for s in split_sentences(footer)]
    assert any(s and "gutenberg" in s for s in raw)
