"""The synthetic corpus in LibriSpeech's layout (asr prepare synth --layout librispeech), and
recipes/librispeech/run.sh run end to end on it at a CI size.

The 10-hour run and its figures are in recipes/librispeech/RESULTS.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from conftest import shared_path
from test_librispeech import make_tree

from asr.corpora import librispeech
from asr.corpora.synthetic import corpus as synth
from asr.corpora.synthetic.librispeech_layout import prepare_synth_librispeech, voice_gender
from asr.corpora.synthetic.voice import Voice
from asr.data.datadir import DataDir, read_kaldi_map
from asr.data.validate import validate_datadir
from asr.lm.kenlm import kenlm_binary
from asr.units.lexicon import read_lexicon

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "librispeech"
WORDS = (
    "the ship sailed north across a cold grey sea while sailors sang old songs of home and "
    "harbour lights were seen far away over waves that broke on black rocks near shore"
).split()


def _need_tools() -> None:
    usable, missing = synth.available_engines(synth.ENGINE_MODULES)
    problem = f"synthesisers missing: {missing}" if missing else None
    try:
        kenlm_binary("lmplz")
    except Exception as exc:  # noqa: BLE001 - any reason it is missing
        problem = str(exc)
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem)
        pytest.skip(problem)


def _books(folder: Path) -> list[Path]:
    """Two small 'books' of distinct made-up sentences."""
    rng = random.Random(7)
    folder.mkdir(parents=True)
    paths = []
    for name in ("first-book", "second-book"):
        sentences = {" ".join(rng.choices(WORDS, k=rng.randint(4, 8))) for _ in range(120)}
        path = folder / f"{name}.txt"
        path.write_text("".join(f"{s.capitalize()}.\n\n" for s in sorted(sentences)))
        paths.append(path)
    return paths


def test_voice_gender_from_names() -> None:
    assert voice_gender(Voice("espeak-ng", "en-us+f3")) == "F"
    assert voice_gender(Voice("espeak-ng", "en-gb+m5")) == "M"
    assert voice_gender(Voice("espeak-ng", "en-us+linda")) == "F"
    assert voice_gender(Voice("flite", "slt")) == "F"
    assert voice_gender(Voice("festival", "cmu_us_slt_arctic_hts")) == "F"
    assert voice_gender(Voice("festival", "ked_diphone")) == "M"


@pytest.mark.slow
def test_layout_is_librispeech_and_keeps_every_utterance(tmp_path: Path) -> None:
    _need_tools()
    books = _books(tmp_path / "books")
    config = synth.SynthConfig(
        hours=0.02, dev_utts=12, test_utts=12, text_files=[str(p) for p in books], seed=3
    )
    made, layout = prepare_synth_librispeech(tmp_path / "out", config, jobs=2, progress=False)
    root = tmp_path / "out" / "LibriSpeech"
    assert not (tmp_path / "out" / ".synth").exists()  # the staging folder is gone
    assert sorted(p.name for p in root.iterdir()) == [
        "BOOKS.TXT", "CHAPTERS.TXT", "README.TXT", "SPEAKERS.TXT",
        "dev-clean", "test-clean", "train-clean-100",
    ]  # fmt: skip
    genders = librispeech.read_speakers(root / "SPEAKERS.TXT")
    chapters = {}  # chapter id -> (reader, subset, book id)
    for line in (root / "CHAPTERS.TXT").read_text().splitlines()[1:]:
        fields = [f.strip() for f in line.split("|")]
        chapters[fields[0]] = (fields[1], fields[3], fields[5])
    book_of_sentence = {}
    for number, path in enumerate(books, 1):
        for sentence in synth.read_prompt_files([path]):
            book_of_sentence[sentence.upper()] = str(number)

    readers_of: dict[str, set[str]] = defaultdict(set)
    for subset, count in (("train-clean-100", None), ("dev-clean", 12), ("test-clean", 12)):
        report = librispeech.prepare_librispeech(tmp_path / "out", subset, tmp_path / subset)
        assert report.no_audio == [] and report.no_text == [] and report.no_trans == []
        assert validate_datadir(tmp_path / subset) == []
        data = DataDir.load(tmp_path / subset)
        if count is not None:
            assert report.utterances == count
        assert report.utterances == made.utterances[subset.split("-")[0]]
        for utt, text in data.text.items():
            reader, chapter, _ = utt.split("-")
            assert chapters[chapter][:2] == (reader, subset)
            # a chapter is one voice reading one book
            assert book_of_sentence[text] == chapters[chapter][2]
            assert text == text.upper()
            readers_of[subset].add(reader)
        assert set(data.extra["spk2gender"].values()) <= {"m", "f"}
        assert all(r in genders for r in readers_of[subset])
    assert not readers_of["test-clean"] & readers_of["train-clean-100"]  # unseen test voices

    lm_text = (tmp_path / "out" / "lm" / "librispeech-lm-norm.txt").read_text().splitlines()
    held_out = set(DataDir.load(tmp_path / "dev-clean").text.values())
    held_out |= set(DataDir.load(tmp_path / "test-clean").text.values())
    assert lm_text and not held_out & set(lm_text)  # the LM never saw a dev or test sentence
    vocab = (tmp_path / "out" / "lm" / "librispeech-vocab.txt").read_text().split()
    assert vocab == sorted({w for line in lm_text for w in line.split()})
    assert layout.lm_sentences == len(lm_text) and layout.vocabulary == len(vocab)


def test_chapter_runs_are_one_voice_reading_one_book() -> None:
    usable, _ = synth.available_engines(synth.ENGINE_MODULES)
    if not usable:
        pytest.skip("no synthesiser")
    # planning synthesises nothing
    config = synth.SynthConfig(hours=0.2, dev_utts=30, test_utts=30, seed=1)
    plain, _ = synth.plan_corpus(config, usable)
    config.chapter_utts = 7
    runs, _ = synth.plan_corpus(config, usable)
    assert sorted(u.text for u in plain) == sorted(u.text for u in runs)  # same sentences
    for split in synth.SPLITS:
        mine = [u for u in runs if u.split == split]
        # consecutive groups of 7: one voice each (a grammar corpus has one "book")
        for start in range(0, len(mine), 7):
            assert len({u.voice for u in mine[start : start + 7]}) == 1


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def _run(command: list[str], timeout: int = 900) -> str:
    done = subprocess.run(
        command, capture_output=True, text=True, env=_env(), timeout=timeout, cwd=RECIPE
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    return done.stdout


@pytest.mark.slow
def test_librispeech_recipe_runs_unchanged_on_the_made_corpus(tmp_path: Path) -> None:
    _need_tools()
    text_dir = tmp_path / "text" / "books"
    text_dir.mkdir(parents=True)
    for name in ("1945-Truman.txt", "1970-Nixon.txt"):
        (text_dir / name).write_bytes(shared_path("text", "state_union", name).read_bytes())
    corpus = tmp_path / "corpus"
    _run(
        ["bash", "local/make_synth_corpus.sh", "--text-dir", str(tmp_path / "text"),
         "--hours", "0.03", "--dev-utts", "16", "--test-utts", "16", "--chapter-utts", "8",
         "--jobs", "2", str(corpus)]
    )  # fmt: skip
    assert (corpus / "LibriSpeech" / "train-clean-100").is_dir()
    assert not (corpus / ".books").exists()

    conf = yaml.safe_load((RECIPE / "conf" / "train_synth.yaml").read_text())
    conf["model"].update(num_layers=1, hidden_size=48)
    conf["training"].update(max_epochs=2, precision="fp32")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(conf))
    common = ["--corpus-dir", str(corpus), "--data", str(tmp_path / "data")]
    common += ["--exp", str(tmp_path / "exp"), "--conf", str(tmp_path / "tiny.yaml")]
    common += ["--nj", "2", "--threads", "1", "--lm-weights", "0.5,1", "--word-scores", "0,1"]
    out = _run(["bash", "run.sh", *common])
    data = tmp_path / "data"
    # stage 0 found the subsets the corpus has (no "other" half) and the LM text (--lm auto)
    assert "prepare train-clean-100 and dev-clean test-clean" in out
    assert "stage 4: word LM (norm)" in out
    assert not (data / "dev_other").exists()
    # stage 1: data/train is the combined training sets, with their feature config
    assert (data / "train" / "feats.yaml").read_bytes() == (
        data / "train_clean_100" / "feats.yaml"
    ).read_bytes()
    lexicon = read_lexicon(data / "local" / "lang_char" / "lexicon.txt")
    vocab = (corpus / "lm" / "librispeech-vocab.txt").read_text().split()
    assert sorted(lexicon) == vocab  # stage 3: the lexicon is the LM vocabulary, spelled
    assert (data / "local" / "lm" / "lm.bin").is_file()
    exp = tmp_path / "exp" / "blstm_char"
    assert (exp / "final.pt").is_file()
    tuned = (exp / "decode_dev_clean_lex" / "best.json").read_text()
    assert '"lm_weight"' in tuned
    for kind in ("lex", "greedy"):
        hyp = read_kaldi_map(exp / f"decode_test_clean_{kind}" / "text", allow_empty=True)
        assert set(hyp) == set(DataDir.load(data / "test_clean").text)
        assert re.search(rf"^blstm_char test_clean {kind} %WER \d+\.\d\d \[", out, re.M)
    # the lexicon search only ever outputs lexicon words
    hyp = read_kaldi_map(exp / "decode_test_clean_lex" / "text", allow_empty=True)
    assert {w for line in hyp.values() for w in line.split()} <= set(lexicon)

    # BPE units reuse the features: stages 2-8 again
    out = _run(["bash", "run.sh", *common, "--unit", "bpe", "--bpe-size", "40", "--stage", "2"])
    assert re.search(r"^blstm_bpe test_clean lex %WER \d+\.\d\d \[", out, re.M)
    assert (data / "local" / "lang_bpe" / "bpe.model").is_file()


def test_missing_trans_txt_is_reported_by_file(tmp_path: Path) -> None:
    corpus = make_tree(tmp_path / "corpus")
    trans = corpus / "LibriSpeech/dev-clean/103/1240/103-1240.trans.txt"
    trans.unlink()
    report = librispeech.prepare_librispeech(corpus, "dev-clean", tmp_path / "dev_clean")
    assert report.no_trans == [str(trans)]
    assert f"1 chapter(s) without their .trans.txt (e.g. {trans})" in report.summary()
    assert report.utterances == 1  # the other chapter's one utterance with audio
