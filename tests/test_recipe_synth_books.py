"""recipes/synth_books/run.sh end to end at a CI size: books -> speech, lexicon, KenLM 3-gram,
a character model, dev-tuned lexicon + LM decoding, scoring.

The default size (2 hours of speech, 20 epochs) and its figures are in recipes/synth_books/
RESULTS. Here three texts of ../shared/text (one of them Latin-1, as some there are) give a few
minutes of speech and a tiny model: enough to check the stages and what each one promises.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import shared_path

from asr.corpora.synthetic import corpus as synth
from asr.lm.arpa import check_arpa, read_arpa
from asr.lm.kenlm import kenlm_binary
from asr.score import read_transcripts
from asr.units.bpe import BpeModel
from asr.units.lexicon import read_lexicon

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "synth_books"
TEXTS = ("state_union/1945-Truman.txt", "state_union/1970-Nixon.txt", "gutenberg/blake-poems.txt")


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


@pytest.mark.slow
def test_synth_books_recipe_tunes_on_dev_and_decodes_test_with_lexicon_and_lm(
    tmp_path: Path,
) -> None:
    _need_tools()
    text_dir = tmp_path / "text"
    for name in TEXTS:
        source = shared_path("text", *name.split("/"))
        (text_dir / source.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, text_dir / source.parent.name / source.name)
    for name in ("train_char.yaml", "train_bpe.yaml"):
        conf = yaml.safe_load((RECIPE / "conf" / name).read_text())
        conf["model"].update(num_layers=2, hidden_size=96)
        conf["training"].update(max_epochs=6, batch_frames=1500, lr=0.003, precision="fp32")
        (tmp_path / name).write_text(yaml.safe_dump(conf))

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    data, exp = tmp_path / "data", tmp_path / "exp"
    command = ["bash", str(RECIPE / "run.sh"), "--text-dir", str(text_dir), "--hours", "0.05"]
    command += ["--dev-utts", "20", "--test-utts", "20", "--threads", "2"]
    command += ["--conf", str(tmp_path / "train_char.yaml"), "--data", str(data), "--exp", str(exp)]
    command += ["--bpe-conf", str(tmp_path / "train_bpe.yaml"), "--bpe-size", "80"]
    command += ["--lm-weights", "0.5,1.5", "--word-scores", "-1,1", "--beam-size", "20"]
    command += ["--char-order", "4"]
    # the levers of recipes/synth: a coded copy of each training utterance, VTLP, voice scaling
    command += ["--augment", "codec", "--vtlp", "0.1", "--vocal-tract", "0.9:1.1"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    out = done.stdout

    # stage 0: the Latin-1 speech was converted, not lost; the LM text never holds a dev or
    # test sentence
    assert "1970-Nixon.txt: not UTF-8, read as Latin-1" in out
    lm_text = set((data / "local" / "lm_text").read_text().splitlines())
    held_out = set(read_transcripts(data / "test" / "text").values())
    held_out |= set(read_transcripts(data / "dev" / "text").values())
    assert len(held_out) == 40 and not held_out & lm_text
    assert any("inflation" in s for s in lm_text)  # Nixon's 1970 text is in it

    # stage 1 with --augment codec: the model trains on each utterance and its coded copy,
    # which says the same words; --vtlp reaches the config it trained with
    train = read_transcripts(data / "train" / "text")
    aug = read_transcripts(data / "train_aug" / "text")
    assert len(aug) == 2 * len(train)
    assert all(aug[u] == train[u if u in train else u.split("-", 1)[1]] for u in aug)
    first = (exp / "char" / "train.log").read_text().splitlines()[0]
    assert f"train_aug ({len(aug)} utts)" in first and "VTLP max warp 0.1" in first
    assert (
        yaml.safe_load((exp / "char" / "train_char.yaml").read_text())["training"]["vtlp_max_warp"]
        == 0.1
    )

    # stages 2-3: a lexicon of every LM word, a valid 3-gram and perplexities of dev and test
    words = set((data / "local" / "words.txt").read_text().split())
    lexicon = read_lexicon(data / "local" / "dict_char" / "lexicon.txt")
    assert set(lexicon) == words
    assert all(prons == [tuple(word)] for word, prons in lexicon.items())
    assert set(read_lexicon(data / "local" / "dict_phone" / "lexicon.txt")) == words
    assert check_arpa(data / "local" / "lm" / "3gram.arpa").order == 3
    assert "<space>" in read_arpa(data / "local" / "lm" / "char4gram.arpa").vocab
    assert re.search(r"^dev: perplexity [\d.]+ \(20 sentences", out, re.MULTILINE)
    assert re.search(r"^test: perplexity [\d.]+ \(20 sentences", out, re.MULTILINE)

    # stage 5: the dev grid, scored; best.json is its lowest WER
    grid = exp / "char" / "decode_dev_lex3g"
    rows = [line.split("\t") for line in (grid / "tuning.tsv").read_text().splitlines()[1:]]
    assert len(rows) == 4
    best = json.loads((grid / "best.json").read_text())
    lowest = min(rows, key=lambda r: float(r[2]))
    assert best["wer"] == pytest.approx(float(lowest[2]))
    assert best["lm_weight"] in (0.5, 1.5) and best["word_score"] in (-1.0, 1.0)

    # stages 6-7: test decoded with the dev pair; lexicon decoding writes lexicon words only
    test_lex = exp / "char" / "decode_test_lex3g"
    hyps = read_transcripts(test_lex / "text")
    assert set(hyps) == set(read_transcripts(data / "test" / "text"))
    assert {w for text in hyps.values() for w in text.split()} <= words
    nbest = (test_lex / "nbest.txt").read_text().splitlines()
    for utt in hyps:
        scores = [float(line.split("\t")[1]) for line in nbest if line.startswith(f"{utt}-")]
        assert 1 <= len(scores) <= 10 and scores == sorted(scores, reverse=True)
    log = (exp / "char" / "decode.log").read_text()
    assert f"LM weight {best['lm_weight']:g}, word score {best['word_score']:g}" in log
    ref_words = sum(len(t.split()) for t in read_transcripts(data / "test" / "text").values())
    for decoder in ("greedy", "lex3g", "char4g"):
        line = re.search(rf"^test {decoder} %WER (\S+) \[ (\d+) / (\d+),", out, re.MULTILINE)
        assert line, out[-2000:]
        assert int(line.group(3)) == ref_words
    assert "paired bootstrap" in out.lower() or "mapsswe" in out.lower()
    assert re.search(r"^test words outside the lexicon: \d+ of \d+$", out, re.MULTILINE)
    # the per-voice table: one row per test voice, its words, greedy and lexicon + LM %WER
    # and their ratio; the words add up to the test set's
    test_text = read_transcripts(data / "test" / "text")
    utt2voice = dict(line.split() for line in (data / "test" / "utt2spk").read_text().splitlines())
    voice_words: dict[str, int] = {}
    for utt, text in test_text.items():
        voice_words[utt2voice[utt]] = voice_words.get(utt2voice[utt], 0) + len(text.split())
    table = out.split("per test voice:", 1)[1].splitlines()[1 : 1 + len(voice_words)]
    rows = {r.split()[0]: [float(x) for x in r.split()[1:]] for r in table}
    assert {v: int(r[0]) for v, r in rows.items()} == voice_words
    for voice, (_, greedy, lex, ratio) in rows.items():
        assert 0 <= lex and 0 < greedy and ratio == pytest.approx(lex / greedy, abs=0.006), voice

    # stages 8-9: a BPE model, its lexicon of the same words in pieces, scored on words
    bpe_lexicon = read_lexicon(data / "local" / "dict_bpe" / "lexicon.txt")
    assert set(bpe_lexicon) <= words
    # a word is left out only when it holds a character the pieces never saw
    known = set("".join(BpeModel(data / "local" / "bpe" / "bpe.model").pieces))
    assert all(set(w) - known for w in words - set(bpe_lexicon))
    assert all(prons[0][0].startswith("\u2581") for prons in bpe_lexicon.values())
    pieces = read_transcripts(data / "test_bpe" / "text")
    assert set(pieces) == set(hyps)
    bpe_grid = exp / "bpe" / "decode_dev_lex3g"
    assert json.loads((bpe_grid / "best.json").read_text())["wer"] == pytest.approx(
        min(float(line.split("\t")[2]) for line in
            (bpe_grid / "tuning.tsv").read_text().splitlines()[1:])
    )  # fmt: skip
    bpe_hyps = read_transcripts(exp / "bpe" / "decode_test_lex3g" / "text")
    assert {w for text in bpe_hyps.values() for w in text.split()} <= words
    for decoder in ("greedy", "lex3g"):
        line = re.search(rf"^test bpe {decoder} %WER \S+ \[ \d+ / (\d+),", out, re.MULTILINE)
        assert line and int(line.group(1)) == ref_words, out[-2000:]
