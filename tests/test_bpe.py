"""Sentencepiece units: training (deterministic, known first merge), segmentation, the CLI,
and a BiLSTM-CTC training run on the ``bpe`` unit."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.cli import main
from asr.errors import ConfigError, DataDirError
from asr.units.bpe import BpeModel, encode_text_file, train_bpe
from asr.units.tokens import WORD_START, TokenList, infer_unit

SENTENCES = [
    "THE CAT SAT ON THE MAT",
    "THE DOG SAT ON THE LOG",
    "A CAT AND A DOG",
    "THE MAT AND THE LOG ARE ON THE FLOOR",
    "CATS AND DOGS SAT",
]


def write_text(path: Path, lines: list[str], ids: bool = True) -> Path:
    # ids hold characters the sentences never use: a piece with them would mean ids leaked in
    body = "".join(f"x{i}9q {s}\n" if ids else f"{s}\n" for i, s in enumerate(lines))
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bpe")
    return train_bpe([write_text(root / "text", SENTENCES * 3)], root / "bpe", 20)


def test_training_is_deterministic_and_skips_ids(model_path: Path, tmp_path: Path) -> None:
    model = BpeModel(model_path)
    assert len(model) == 20
    assert model.pieces[0] == "<unk>"  # the only special piece: no <s> </s>
    assert not any(c in piece for piece in model.pieces[1:] for c in "x9q")
    vocab = model_path.with_suffix(".vocab").read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[0] for line in vocab] == model.pieces
    again = train_bpe([write_text(tmp_path / "text", SENTENCES * 3)], tmp_path / "bpe", 20)
    assert again.read_bytes() == model_path.read_bytes()


def test_bpe_first_merge_is_the_most_frequent_pair(tmp_path: Path) -> None:
    # words ▁xy x3, ▁xz x1: pairs (▁,x) 4, (x,y) 3, (x,z) 1 -> the one merge is ▁x
    text = write_text(tmp_path / "t", ["XY XY XY XZ"], ids=False)
    path = train_bpe([text], tmp_path / "m", 6, model_type="bpe", skip_ids=False)
    pieces = BpeModel(path).pieces
    assert sorted(pieces) == sorted(["<unk>", "▁X", WORD_START, "X", "Y", "Z"])
    assert BpeModel(path).encode("XY XZ") == ["▁X", "Y", "▁X", "Z"]


def test_encode_decode_round_trip(model_path: Path) -> None:
    model = BpeModel(model_path)
    for sentence in [*SENTENCES, "A  DOG ON THE CAT"]:
        pieces = model.encode(sentence)
        assert pieces[0].startswith(WORD_START)
        assert sum(p.startswith(WORD_START) for p in pieces) == len(sentence.split())
        assert all(p in model.pieces for p in pieces)
        assert model.decode(pieces) == " ".join(sentence.split())
    # a character the model never saw comes back as itself
    assert "Q" in "".join(model.encode("QUACK"))


def test_encode_text_file_keeps_ids(model_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "text"
    source.write_text("u1 THE CAT\nu2 SAT ON THE MAT\nu3\nu4 QUACK\n", encoding="utf-8")
    report = encode_text_file(model_path, source, tmp_path / "out" / "text")
    lines = (tmp_path / "out" / "text").read_text(encoding="utf-8").splitlines()
    assert [line.split()[0] for line in lines] == ["u1", "u2", "u3", "u4"]
    assert lines[2] == "u3"
    tokens = TokenList.from_texts([line.split(maxsplit=1)[1] for line in lines[:2]], unit="bpe")
    assert infer_unit(tokens.symbols) == "bpe"
    assert tokens.decode(tokens.encode(lines[1].split(maxsplit=1)[1])) == "SAT ON THE MAT"
    assert report.lines == 4
    assert report.pieces == sum(len(line.split()) - 1 for line in lines)
    assert report.unknown >= 1  # Q, U and K are not in the training text


def test_bad_input(model_path: Path, tmp_path: Path) -> None:
    text = write_text(tmp_path / "text", SENTENCES)
    with pytest.raises(ConfigError, match=r"Vocabulary size too high .*<= \d+"):
        train_bpe([text], tmp_path / "m", 5000)
    with pytest.raises(ConfigError, match="model type"):
        train_bpe([text], tmp_path / "m", 20, model_type="word")
    empty = tmp_path / "empty"
    empty.write_text("u1\nu2\n", encoding="utf-8")
    with pytest.raises(DataDirError, match="no transcript text"):
        train_bpe([empty], tmp_path / "m", 20)
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"\x00not a model")
    with pytest.raises(DataDirError, match="junk.model: not a sentencepiece model"):
        BpeModel(junk)
    with pytest.raises(DataDirError, match="missing.model: file not found"):
        BpeModel(tmp_path / "missing.model")
    assert not (tmp_path / "m.model").exists()


def test_cli_train_and_encode(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = write_text(tmp_path / "text", SENTENCES * 2)
    prefix = tmp_path / "lang" / "bpe20"
    assert main(["bpe", "train", str(text), "--vocab-size", "20", str(prefix)]) == 0
    assert "20 unigram pieces" in capsys.readouterr().out
    out = tmp_path / "text.bpe"
    assert main(["bpe", "encode", f"{prefix}.model", str(text), str(out)]) == 0
    assert f"{len(SENTENCES) * 2} lines" in capsys.readouterr().out
    first = out.read_text(encoding="utf-8").splitlines()[0].split()
    assert first[0] == "x09q"
    assert BpeModel(f"{prefix}.model").decode(first[1:]) == SENTENCES[0]
    assert main(["bpe", "train", str(text), "--vocab-size", "999", str(prefix)]) == 1
    assert "too high" in capsys.readouterr().err


def test_training_accepts_the_bpe_unit(tmp_path: Path) -> None:
    """A CTC model trains on piece transcripts; its package says bpe and decodes to words."""
    from test_train import write_synthetic

    from asr.nn.package import load_package
    from asr.training.trainer import train

    for name, n, seed in (("train", 40, 1), ("dev", 8, 2)):
        texts = write_synthetic(tmp_path / name, n, seed=seed)
        # one piece per synthetic word, as a model with whole-word pieces would segment
        lines = [f"{u} " + " ".join(WORD_START + w for w in t.split()) for u, t in texts.items()]
        (tmp_path / name / "text").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {
        "model": {"num_layers": 1, "hidden_size": 16},
        "training": {"unit": "bpe", "lr": 0.02, "max_epochs": 1, "batch_frames": 80},
    }
    train(config, tmp_path / "train", tmp_path / "dev", tmp_path / "exp", threads=1, progress=False)
    package = load_package(tmp_path / "exp" / "final.pt")
    assert package.extra["unit"] == "bpe"
    assert package.tokens == ["<blk>", "▁a", "▁b", "▁c"]
    tokens = TokenList(package.tokens, unit=infer_unit(package.tokens))
    assert tokens.decode([1, 0, 1, 3]) == "a a c"


def test_lexicon_search_over_pieces_gives_back_the_spoken_words(model_path: Path) -> None:
    """A BPE model's lexicon (each word as sentencepiece segments it alone) drives flashlight's
    search: emissions that spell THE CAT SAT in pieces, each piece held two frames and a blank
    between words, come back as those words, and every N-best entry is made of lexicon words."""
    import numpy as np

    from asr.decoding.lexicon_beam import DecoderOptions, LexiconDecoder
    from asr.units.lexicon import bpe_lexicon

    model = BpeModel(model_path)
    words = sorted({w for s in SENTENCES for w in s.split()})
    lexicon = bpe_lexicon(words, model)
    assert set(lexicon) == set(words)
    assert any(len(lexicon[w][0]) > 1 for w in words)  # some words take several pieces
    tokens = TokenList(["<blk>", *model.pieces[1:]], unit="bpe")
    spoken = "THE CAT SAT"
    frames: list[int] = []
    for word in spoken.split():
        for piece in model.encode(word):
            frames += [tokens.symbols.index(piece)] * 2
        frames.append(0)
    probs = np.full((len(frames), len(tokens)), 0.01)
    for t, k in enumerate(frames):
        probs[t, k] = 0.9
    log_probs = np.log(probs / probs.sum(1, keepdims=True)).astype(np.float32)
    decoder = LexiconDecoder(tokens, lexicon, None, DecoderOptions(lm_weight=0.0, nbest=3))
    hypotheses = decoder.decode(log_probs)
    assert hypotheses[0].text == spoken
    assert len(hypotheses) == 3
    assert all(set(h.words) <= set(words) for h in hypotheses)
