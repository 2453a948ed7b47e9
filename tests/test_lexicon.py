"""Lexicons: CMUdict phones (stress, folding), flite letter-to-sound (batched, cached), spelling
and BPE entries, lexicon files and their errors, and ``asr lexicon prepare``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import required_tool

from asr.cli import main
from asr.errors import ConfigError, DataDirError
from asr.units.g2p import CACHE_NAME, CMU_PHONES, FliteG2P, G2pError, flite_to_cmu
from asr.units.lexicon import (
    Lexicon,
    LexiconError,
    bpe_lexicon,
    cmudict_lexicon,
    read_lexicon,
    spelling_lexicon,
    write_lexicon,
)
from asr.units.phones import PHONES_39


@pytest.fixture
def t2p() -> str:
    # flite's letter-to-sound, the oracle here: a skip locally, an error under CI=true
    return required_tool("t2p", "Debian package flite; make setup installs it")


needs_t2p = pytest.mark.usefixtures("t2p")

# made-up words: in no dictionary, so only letter-to-sound can say them
MADE_UP = ["zorblax", "flurbington", "quimbly", "snarfed", "brobdingnagia", "plinx"]


def t2p_direct(word: str) -> tuple[str, ...]:
    """The reference: one t2p process for the word alone, pauses and stress dropped."""
    out = subprocess.run(["t2p", word], capture_output=True, text=True, check=True).stdout
    return flite_to_cmu(out.split())


def test_cmudict_known_words_without_stress() -> None:
    lexicon, report = cmudict_lexicon(["HELLO", "measure", "thought", "read"])
    assert lexicon["HELLO"] == [("hh", "ah", "l", "ow"), ("hh", "eh", "l", "ow")]
    assert lexicon["measure"] == [("m", "eh", "zh", "er")]
    assert lexicon["thought"] == [("th", "ao", "t")]
    assert set(lexicon["read"]) == {("r", "eh", "d"), ("r", "iy", "d")}
    assert lexicon.units() <= CMU_PHONES  # no AH0 / EY1: stress digits gone
    assert list(lexicon) == ["HELLO", "measure", "thought", "read"]  # spelling kept, in order
    assert (report.words, report.in_dict, report.missing) == (4, 4, [])
    assert report.summary() == "all 4 words in CMUdict"


def test_lee_hon_folding_matches_the_synth_phone_set() -> None:
    lexicon, _ = cmudict_lexicon(["measure", "thought"], "lee-hon39")
    assert lexicon["measure"] == [("m", "eh", "sh", "er")]  # zh -> sh
    assert lexicon["thought"] == [("th", "aa", "t")]  # ao -> aa
    assert lexicon.units() <= set(PHONES_39)
    with pytest.raises(ConfigError, match="phone set"):
        cmudict_lexicon(["a"], "ipa")


def test_without_g2p_unknown_words_are_reported_and_left_out() -> None:
    lexicon, report = cmudict_lexicon(["the", "zorblax", "<unk>", "the", "plinx"], g2p=None)
    assert list(lexicon) == ["the"]
    assert report.words == 3  # <unk> is a marker, the repeated word counts once
    assert report.missing == ["zorblax", "plinx"]
    assert report.summary() == (
        "2 of 3 words not in CMUdict: 0 by letter-to-sound, 2 without a pronunciation "
        "(e.g. zorblax, plinx)"
    )


@needs_t2p
def test_flite_batches_agree_with_single_words_and_map_to_cmudict_phones() -> None:
    g2p = FliteG2P(batch_size=100)
    words = [*MADE_UP, "Zorblax", "x-ray", "u.s.a", "[noise]", "---"]
    prons = g2p.pronounce(words)
    # letters-only words went in one t2p call; x-ray and u.s.a went alone; the rest not at all
    assert g2p.t2p_calls == 3
    for word in MADE_UP:
        assert prons[word] == t2p_direct(word)
        assert set(prons[word]) <= CMU_PHONES
    assert prons["Zorblax"] == prons["zorblax"] == ("z", "ao", "r", "b", "l", "ae", "k", "s")
    assert prons["x-ray"] == t2p_direct("x-ray")
    assert "[noise]" not in prons and "---" not in prons


def test_flite_phone_map() -> None:
    assert flite_to_cmu(["pau", "b", "ax", "t", "el", "pau"]) == ("b", "ah", "t", "ah", "l")
    assert flite_to_cmu(["hh", "ax", "l", "ow1"]) == ("hh", "ah", "l", "ow")
    with pytest.raises(ValueError, match="'qx'"):
        flite_to_cmu(["qx"])


@needs_t2p
def test_cmudict_with_g2p_and_cache_reuse_without_t2p(tmp_path: Path, monkeypatch) -> None:
    words = ["hello", *MADE_UP, "[noise]"]
    lexicon, report = cmudict_lexicon(words, "lee-hon39", g2p="flite", cache_dir=tmp_path)
    assert report.from_g2p == MADE_UP
    assert report.missing == ["[noise]"]
    assert report.summary().startswith("7 of 8 words not in CMUdict: 6 by letter-to-sound, 1 ")
    assert lexicon["zorblax"] == [("z", "aa", "r", "b", "l", "ae", "k", "s")]  # ao folded
    assert list(lexicon) == ["hello", *MADE_UP]
    cache = (tmp_path / CACHE_NAME).read_text(encoding="utf-8").splitlines()
    assert "zorblax z ao r b l ae k s" in cache
    # a second run finds every word in the cache: no t2p needed (none on PATH)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    g2p = FliteG2P(tmp_path)
    again, _ = cmudict_lexicon(words, "lee-hon39", g2p=g2p)
    assert again == lexicon
    assert g2p.t2p_calls == 0
    with pytest.raises(G2pError, match="Debian package flite"):
        g2p.pronounce(["newword"])


def test_malformed_g2p_cache(tmp_path: Path) -> None:
    (tmp_path / CACHE_NAME).write_text("abc ey b iy\nxyz ex1 w\n", encoding="utf-8")
    with pytest.raises(G2pError, match=rf"{CACHE_NAME}:2: 'ex1' is not a CMUdict phone"):
        FliteG2P(tmp_path)


def test_lexicon_files(tmp_path: Path) -> None:
    lexicon = Lexicon()
    lexicon.add("read", ["r", "iy", "d"])
    lexicon.add("read", ["r", "eh", "d"])
    lexicon.add("read", ["r", "iy", "d"])  # duplicates dropped
    lexicon.add("a", ["ah"])
    path = tmp_path / "dict" / "lexicon.txt"
    write_lexicon(lexicon, path)
    assert path.read_text(encoding="utf-8") == "read r iy d\nread r eh d\na ah\n"
    assert read_lexicon(path) == lexicon
    assert lexicon.num_entries == 3
    lexiconp = tmp_path / "lexiconp.txt"
    lexiconp.write_text("read 1.0 r iy d\nread 0.5 r eh d\n\na 1.0 ah\n", encoding="utf-8")
    assert read_lexicon(lexiconp) == lexicon


def test_malformed_lexicon_lines(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.txt"
    path.write_text("a ah\nbroken\nc s iy\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"lexicon.txt:2: word 'broken' has no pronunciation"):
        read_lexicon(path)
    path.write_text("a 1.0 ah\nb 0.5\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"lexicon.txt:2: .*probability but no pron"):
        read_lexicon(path)
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="no lexicon entries"):
        read_lexicon(path)
    path.write_bytes(b"a ah\nb \xff\n")
    with pytest.raises(DataDirError, match=r"lexicon.txt:2: not valid UTF-8"):
        read_lexicon(path)


def test_spelling_and_bpe_lexicons(tmp_path: Path) -> None:
    from asr.units.bpe import BpeModel, train_bpe

    spelled = spelling_lexicon(["cat", "<unk>", "it's", "cat"])
    assert dict(spelled) == {"cat": [("c", "a", "t")], "it's": [("i", "t", "'", "s")]}
    text = tmp_path / "text"
    text.write_text("".join(f"u{i} THE CAT SAT ON THE MAT\n" for i in range(5)), encoding="utf-8")
    model = BpeModel(train_bpe([text], tmp_path / "bpe", 12))
    lexicon = bpe_lexicon(["CAT", "THE", "MATS", "CAT!"], model)
    assert list(lexicon) == ["CAT", "THE", "MATS"]  # '!' was never seen: left out
    for word, [pieces] in lexicon.items():
        assert pieces == tuple(model.encode(word))
        assert pieces[0].startswith("▁")
        assert model.decode(pieces) == word


@needs_t2p
def test_cli_prepare_phone_lexicon_from_text(tmp_path: Path, capsys) -> None:
    text = tmp_path / "text"
    text.write_text(
        "u1 HELLO ZORBLAX WORLD\nu2 ZORBLAX <unk> [noise]\nu3 [noise] [noise]\n", encoding="utf-8"
    )
    out = tmp_path / "dict"
    args = ["lexicon", "prepare", str(text), str(out), "--units", "phone", "--from-text"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2 of 4 words not in CMUdict: 1 by letter-to-sound, 1 without" in printed
    lexicon = read_lexicon(out / "lexicon.txt")
    assert list(lexicon) == ["HELLO", "WORLD", "ZORBLAX"]  # sorted; [noise] and <unk> absent
    oov = (out / "oov.txt").read_text(encoding="utf-8").splitlines()
    assert oov == ["[noise] 3 none", "ZORBLAX 2 g2p"]
    assert (out / CACHE_NAME).exists()


def test_cli_prepare_char_and_bpe(tmp_path: Path, capsys) -> None:
    words = tmp_path / "words.txt"
    words.write_text("cat\ndog 12\n\ncat\n", encoding="utf-8")
    out = tmp_path / "char"
    assert main(["lexicon", "prepare", str(words), str(out), "--units", "char"]) == 0
    assert (out / "lexicon.txt").read_text(encoding="utf-8") == "cat c a t\ndog d o g\n"
    assert (out / "oov.txt").read_text(encoding="utf-8") == ""
    assert main(["lexicon", "prepare", str(words), str(out), "--units", "bpe"]) == 1
    assert "needs --bpe-model" in capsys.readouterr().err
