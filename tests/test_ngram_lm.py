"""KenLM n-grams (asr.lm.kenlm, ``asr lm``): training, binaries, perplexity, errors.

The KenLM tools come from tools/install_kenlm.sh (``make setup`` builds them); without them these
tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
from pathlib import Path

import pytest

from asr.cli import main
from asr.lm.arpa import ArpaError, read_arpa
from asr.lm.kenlm import (
    LmError,
    is_binary_lm,
    kenlm_binary,
    perplexity,
    to_binary,
    train_arpa,
)

# Small sorting memory: lmplz's default 20% of RAM costs seconds of page faults on a toy corpus.
MEM = "50M"

TRAIN = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat ran",
    "the dog ran to the cat",
    "a dog sat",
    "the cat sat",
]
TEST = ["the cat sat on the log", "a bird ran to the mat", "the dog sat"]


@pytest.fixture(scope="module", autouse=True)
def kenlm_tools() -> None:
    try:
        for name in ("lmplz", "build_binary", "query"):
            kenlm_binary(name)
    except LmError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def kaldi_text(path: Path, sentences: list[str], prefix: str = "utt") -> Path:
    path.write_text(
        "".join(f"{prefix}{i:03d} {s}\n" for i, s in enumerate(sentences)), encoding="utf-8"
    )
    return path


def plain_text(path: Path, sentences: list[str]) -> Path:
    path.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trigram(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lm")
    text = kaldi_text(root / "text", TRAIN)
    train_arpa([text], root / "3gram.arpa", order=3, skip_ids=True, memory=MEM)
    return root / "3gram.arpa"


def test_train_skip_ids_counts_and_vocabulary(tmp_path: Path) -> None:
    # a Kaldi text with an empty transcript: the id alone is no sentence
    text = kaldi_text(tmp_path / "text", [*TRAIN, ""])
    summary = train_arpa([text], tmp_path / "lm.arpa", order=3, skip_ids=True, memory=MEM)
    assert summary.path == tmp_path / "lm.arpa" and summary.order == 3
    assert summary.sentences == len(TRAIN)
    assert summary.words == sum(len(s.split()) for s in TRAIN)
    model = read_arpa(summary.path)
    words = {w for s in TRAIN for w in s.split()}
    assert model.vocab == words | {"<s>", "</s>", "<unk>"}  # no utterance ids
    assert summary.counts == tuple(sum(len(k) == n for k in model) for n in (1, 2, 3))
    # every bigram of the text is in the model (no pruning by default)
    for sentence in TRAIN:
        tokens = ["<s>", *sentence.split(), "</s>"]
        for pair in zip(tokens, tokens[1:], strict=False):
            assert pair in model
    assert re.fullmatch(
        r"wrote .*lm\.arpa: 3-gram, \d+/\d+/\d+ n-grams from 6 sentences \(27 words\) in .* s",
        summary.line(),
    )


def test_character_lm_is_over_a_char_models_units(tmp_path: Path) -> None:
    text = plain_text(tmp_path / "text", ["the cat", "a cat sat"])
    summary = train_arpa([text], tmp_path / "c.arpa", order=4, memory=MEM, characters=True)
    model = read_arpa(summary.path)
    assert model.vocab == set("thecasa") | {"<space>", "<s>", "</s>", "<unk>"}
    assert ("a", "<space>", "c", "a") in model  # spans the word gap
    assert summary.words == len("the cat".replace(" ", "")) + 1 + len("acatsat") + 2
    words = perplexity(summary.path, text)  # words are OOVs of this LM, but "a" is a char too
    spelled = perplexity(summary.path, text, characters=True)
    assert words.oovs == 4 and spelled.oovs == 0
    assert spelled.perplexity < words.perplexity


def test_train_is_kneser_ney_normalised(trigram: Path) -> None:
    """For every history, the probabilities over the vocabulary sum to one: lmplz's smoothing
    together with read_arpa's back-off recursion."""
    model = read_arpa(trigram)
    targets = sorted(model.vocab - {"<s>"})
    for history in (["<s>"], ["<s>", "the"], ["the", "cat"], ["on", "the"], ["zz"], ["dog", "ran"]):
        total = sum(10 ** model.log10_prob(history, w) for w in targets)
        assert total == pytest.approx(1.0, abs=1e-4), history


def test_compressed_and_several_inputs_give_the_same_model(tmp_path: Path) -> None:
    plain = plain_text(tmp_path / "all.txt", TRAIN)
    train_arpa([plain], tmp_path / "a.arpa", order=2, memory=MEM)
    first = tmp_path / "first.txt.gz"
    first.write_bytes(gzip.compress("".join(s + "\n" for s in TRAIN[:3]).encode()))
    # the second file has no final newline and blank lines: neither may change the model
    (tmp_path / "second.txt").write_text("\n".join(["", *TRAIN[3:], ""]).rstrip("\n"))
    summary = train_arpa([first, tmp_path / "second.txt"], tmp_path / "b.arpa", order=2, memory=MEM)
    assert summary.sentences == len(TRAIN)
    assert (tmp_path / "a.arpa").read_text() == (tmp_path / "b.arpa").read_text()


def test_prune_drops_singletons(tmp_path: Path) -> None:
    text = plain_text(tmp_path / "t.txt", TRAIN)
    full = read_arpa(train_arpa([text], tmp_path / "full.arpa", order=2, memory=MEM).path)
    pruned = read_arpa(
        train_arpa([text], tmp_path / "p.arpa", order=2, prune=[0, 1], memory=MEM).path
    )
    assert ("the", "mat") in full and ("the", "mat") not in pruned  # seen once
    assert ("the", "cat") in pruned  # seen 4 times
    assert ("cat", "sat") in pruned  # seen 3 times
    assert full.vocab == pruned.vocab  # unigrams are never pruned


def test_limit_vocab(tmp_path: Path) -> None:
    text = plain_text(tmp_path / "t.txt", TRAIN)
    vocab = ["the", "cat", "sat", "on", "mat"]
    summary = train_arpa([text], tmp_path / "v.arpa", order=2, memory=MEM, limit_vocab=vocab)
    assert read_arpa(summary.path).vocab == set(vocab) | {"<s>", "</s>", "<unk>"}
    (tmp_path / "words").write_text(" ".join(vocab))
    other = train_arpa(
        [text], tmp_path / "w.arpa", order=2, memory=MEM, limit_vocab=tmp_path / "words"
    )
    assert other.path.read_text() == summary.path.read_text()


def test_perplexity_known_answer(tmp_path: Path, trigram: Path) -> None:
    """query's perplexity equals the one computed here from the ARPA file: log10 probabilities
    with back-off, </s> counted, an OOV scored as <unk> (and left out for the second number)."""
    text = kaldi_text(tmp_path / "test", TEST, prefix="test")
    result = perplexity(trigram, text, skip_ids=True)
    model = read_arpa(trigram)
    total = oov_total = 0.0
    tokens = oovs = 0
    for sentence in TEST:
        words = sentence.split()
        scores = model.sentence_log10(words)
        total += sum(scores)
        tokens += len(scores)
        for word, score in zip(words, scores, strict=False):
            if word not in model.vocab:
                oovs += 1
                oov_total += score
    assert oovs == 1  # "bird"
    assert result.sentences == 3 and result.oovs == 1
    assert result.words == sum(len(s.split()) for s in TEST)
    assert result.perplexity == pytest.approx(10 ** (-total / tokens), rel=1e-5)
    assert result.perplexity_no_oov == pytest.approx(
        10 ** (-(total - oov_total) / (tokens - oovs)), rel=1e-5
    )
    assert result.line() == (
        f"perplexity {result.perplexity:.2f} (3 sentences, {result.words} words, 1 OOVs)"
    )


@pytest.mark.parametrize("kind", ["probing", "trie"])
def test_binary_gives_the_same_perplexity(tmp_path: Path, trigram: Path, kind: str) -> None:
    text = plain_text(tmp_path / "test.txt", TEST)
    binary = to_binary(trigram, tmp_path / f"lm.{kind}", kind=kind)
    assert is_binary_lm(binary) and not is_binary_lm(trigram)
    assert perplexity(binary, text).perplexity == pytest.approx(
        perplexity(trigram, text).perplexity, rel=1e-6
    )
    assert stat.S_IMODE(binary.stat().st_mode) & 0o044  # readable like any written file
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    with pytest.raises(LmError, match="already a KenLM binary model"):
        to_binary(binary, tmp_path / "again.bin")


def test_train_errors_are_one_line_and_leave_no_file(tmp_path: Path) -> None:
    out = tmp_path / "lm.arpa"
    out.write_text("old model")
    unk = plain_text(tmp_path / "unk.txt", ["a <unk> b"])
    with pytest.raises(LmError) as caught:
        train_arpa([unk], out, order=2, memory=MEM)
    message = str(caught.value)
    assert "\n" not in message and "<unk> is not allowed" in message and "--skip-symbols" in message
    assert out.read_text() == "old model"  # the failed run did not touch it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # with skip_symbols the same text trains
    train_arpa([unk], out, order=2, memory=MEM, skip_symbols=True)
    assert "<unk>" in read_arpa(out).vocab and out.read_text() != "old model"

    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(LmError, match=r"no sentences in .*empty\.txt"):
        train_arpa([empty], tmp_path / "e.arpa", order=2, memory=MEM)
    assert not (tmp_path / "e.arpa").exists()
    with pytest.raises(LmError, match=r"missing\.txt: file not found"):
        train_arpa([tmp_path / "missing.txt"], tmp_path / "m.arpa", order=2)
    with pytest.raises(LmError, match="order 7"):
        train_arpa([empty], tmp_path / "m.arpa", order=7)
    with pytest.raises(LmError, match="non-decreasing"):
        train_arpa([empty], tmp_path / "m.arpa", order=3, prune=[0, 2, 1])
    with pytest.raises(LmError, match="cannot prune unigrams"):
        train_arpa([empty], tmp_path / "m.arpa", order=3, prune=[1])
    # lmplz's own failure (memory too small for its vocabulary hash) is passed on in one line
    text = plain_text(tmp_path / "t.txt", TRAIN)
    with pytest.raises(LmError, match=r"lmplz failed \(.*\): .*exceeds total memory"):
        train_arpa([text], tmp_path / "m.arpa", order=2, memory="1M")


def test_malformed_arpa_is_reported_by_line_before_kenlm(tmp_path: Path, trigram: Path) -> None:
    lines = trigram.read_text().split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("\\2-grams:")) + 1
    lines[index] = "-0.5\tnot-a-word the"
    bad = tmp_path / "bad.arpa"
    bad.write_text("\n".join(lines))
    for call in (
        lambda: to_binary(bad, tmp_path / "bad.bin"),
        lambda: perplexity(bad, plain_text(tmp_path / "t.txt", TEST)),
    ):
        with pytest.raises(ArpaError, match=rf"bad\.arpa:{index + 1}: word 'not-a-word'"):
            call()
    assert not (tmp_path / "bad.bin").exists()


def test_kenlm_binary_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "query"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("ASR_KENLM_BIN", str(tmp_path))
    assert kenlm_binary("query") == fake  # $ASR_KENLM_BIN comes first
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LmError) as caught:
        kenlm_binary("no-such-kenlm-tool")
    assert "tools/install_kenlm.sh" in str(caught.value) and "\n" not in str(caught.value)
    # a query that prints no summary is an error, not a crash
    monkeypatch.setattr("asr.lm.kenlm.kenlm_binary", lambda name: fake)
    text = plain_text(tmp_path / "t.txt", TEST)
    with pytest.raises(LmError, match="query printed no"):
        perplexity(tmp_path / "t.txt", text, check=False)


def test_cli_train_binary_perplexity_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = kaldi_text(tmp_path / "text", TRAIN)
    arpa, binary = tmp_path / "lm.arpa", tmp_path / "lm.bin"
    args = ["lm", "train", str(text), "--order", "3", str(arpa), "--skip-ids"]
    assert main([*args, "--memory", MEM, "--binary", str(binary), "--type", "trie"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"wrote {arpa}: 3-gram") and "trie" in out[0]
    assert is_binary_lm(binary)

    test = plain_text(tmp_path / "test.txt", TEST)
    assert main(["lm", "perplexity", str(binary), str(test)]) == 0
    line = capsys.readouterr().out.strip()
    match = re.fullmatch(r"perplexity (\S+) \(3 sentences, 15 words, 1 OOVs\)", line)
    assert match, line
    assert float(match[1]) == pytest.approx(perplexity(arpa, test).perplexity, abs=0.006)

    assert main(["lm", "binary", str(arpa), str(tmp_path / "p.bin")]) == 0
    assert "probing" in capsys.readouterr().out
    assert main(["lm", "check", str(arpa)]) == 0
    assert "order 3" in capsys.readouterr().out

    bad = tmp_path / "bad.arpa"
    bad.write_text(arpa.read_text().replace("\\end\\", "\\fin\\"))
    assert main(["lm", "check", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(r"bad\.arpa:\d+: expected \\end\\", err)
