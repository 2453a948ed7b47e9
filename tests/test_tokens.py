"""Token lists: blank at 0, word/char units, round trips, unknown symbols, tokens.txt format."""

from __future__ import annotations

import pytest

from asr.errors import ConfigError, DataDirError
from asr.units.tokens import (
    BLANK,
    SPACE,
    WORD_START,
    TokenList,
    UnknownTokenError,
    infer_unit,
    split_text,
)


def test_word_units_sorted_with_blank_first() -> None:
    tokens = TokenList.from_texts(["YES NO YES", "NO  NO"], unit="word")
    assert tokens.symbols == [BLANK, "NO", "YES"]
    assert tokens.encode("YES NO NO") == [2, 1, 1]
    assert tokens.decode([2, 1, 1]) == "YES NO NO"


def test_decode_drops_blanks() -> None:
    tokens = TokenList.from_texts(["a b"], unit="phone")
    assert tokens.decode([0, 1, 0, 0, 2, 0]) == "a b"
    assert tokens.decode_symbols([0, 2]) == ["b"]


def test_char_units_round_trip_with_space_token() -> None:
    tokens = TokenList.from_texts(["ab  c", "ba"], unit="char")
    assert tokens.symbols == [BLANK, SPACE, "a", "b", "c"]
    assert split_text(" ab  c ", "char") == ["a", "b", SPACE, "c"]
    ids = tokens.encode("ab  c")
    assert ids == [2, 3, 1, 4]
    assert tokens.decode(ids) == "ab c"


def test_unknown_symbol_is_an_error_naming_it() -> None:
    tokens = TokenList.from_texts(["YES NO"])
    with pytest.raises(UnknownTokenError, match="'MAYBE'"):
        tokens.encode("YES MAYBE")
    # the blank is not a transcript symbol either
    with pytest.raises(UnknownTokenError):
        tokens.encode_symbols([BLANK])


def test_reserved_blank_in_text_and_bad_unit_rejected() -> None:
    with pytest.raises(ConfigError, match="blank"):
        TokenList.from_texts(["a <blk> b"])
    with pytest.raises(ConfigError, match="unit"):
        TokenList.from_texts(["a"], unit="syllable")


def test_save_load_round_trip(tmp_path) -> None:
    tokens = TokenList.from_texts(["hello world", "hi"], unit="char")
    path = tmp_path / "exp" / "tokens.txt"
    tokens.save(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == f"{BLANK} 0"
    assert lines[1] == f"{SPACE} 1"
    assert len(lines) == len(tokens)
    loaded = TokenList.load(path)
    assert loaded == tokens
    assert loaded.unit == "char"  # inferred from <space>
    assert loaded.decode(loaded.encode("hi world")) == "hi world"
    words = TokenList.from_texts(["A B"])
    words.save(path)
    assert TokenList.load(path).unit == "word"


def test_load_rejects_bad_files(tmp_path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(f"{BLANK} 0\na 2\n", encoding="utf-8")
    with pytest.raises(DataDirError, match=r"tokens.txt:2: id 2 out of order"):
        TokenList.load(path)
    path.write_text("a 0\n", encoding="utf-8")
    with pytest.raises(DataDirError, match="blank"):
        TokenList.load(path)
    path.write_text(f"{BLANK} 0\njunk\n", encoding="utf-8")
    with pytest.raises(DataDirError, match=r"tokens.txt:2: expected 'symbol id'"):
        TokenList.load(path)


def test_bpe_units_split_on_spaces_and_decode_to_words() -> None:
    # "asr bpe encode" output: pieces separated by spaces, ▁ starting each word
    texts = ["▁HE LLO ▁WOR LD", "▁WOR LD ▁HE LLO ▁HE"]
    tokens = TokenList.from_texts(texts, unit="bpe")
    assert tokens.symbols == [BLANK, "LD", "LLO", "▁HE", "▁WOR"]
    assert split_text("▁HE LLO  ▁WOR LD", "bpe") == ["▁HE", "LLO", "▁WOR", "LD"]
    ids = tokens.encode(texts[0])
    assert ids == [3, 2, 4, 1]
    assert tokens.decode(ids) == "HELLO WORLD"
    # blanks between pieces do not split a word; a lone ▁ piece is a word gap
    assert tokens.decode([0, 4, 0, 0, 1, 3]) == "WORLD HE"
    lone = TokenList([BLANK, WORD_START, "A", "B"], unit="bpe")
    assert lone.decode([1, 2, 3, 1, 3]) == "AB B"
    assert lone.decode([]) == ""


def test_infer_unit_and_load_of_a_bpe_list(tmp_path) -> None:
    assert infer_unit([BLANK, SPACE, "a"]) == "char"
    assert infer_unit([BLANK, "LD", "▁HE"]) == "bpe"
    assert infer_unit([BLANK, "aa", "sil"]) == "word"  # phones read like words
    path = tmp_path / "tokens.txt"
    TokenList.from_texts(["▁HE LLO ▁WOR LD"], unit="bpe").save(path)
    loaded = TokenList.load(path)
    assert loaded.unit == "bpe"
    assert loaded.decode(loaded.encode("▁WOR LD ▁HE LLO")) == "WORLD HELLO"
