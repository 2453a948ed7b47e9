"""recipes/synth/run.sh end to end at a CI size: every stage, both models, both decoders.

The default size (1 hour, 15 epochs each) takes about 12 minutes on 2 cores; its figures are in
recipes/synth/RESULTS. Here the corpus is 6 minutes of speech and each model trains 8 epochs
of a smaller network, enough to check the stages, the printed score lines and that the models
learn something on unseen voices.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from asr.corpora.synthetic import corpus as synth
from asr.data.datadir import DataDir

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "synth"


def _small_conf(name: str, tmp_path: Path) -> Path:
    conf = yaml.safe_load((RECIPE / "conf" / name).read_text())
    conf["model"].update(num_layers=2, hidden_size=96)
    # ~25 updates per epoch: enough to leave the CTC plateau within the 8 epochs
    conf["training"].update(max_epochs=8, batch_frames=1500, lr=0.003, precision="fp32")
    path = tmp_path / name
    path.write_text(yaml.safe_dump(conf))
    return path


@pytest.mark.slow
def test_synth_recipe_prints_per_wer_and_a_transcript(tmp_path: Path) -> None:
    usable, missing = synth.available_engines(synth.ENGINE_MODULES)
    if missing:
        message = f"synthesisers missing: {missing} ('make setup' installs them)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = ["bash", str(RECIPE / "run.sh"), "--hours", "0.1", "--threads", "2"]
    command += ["--dev-utts", "30", "--test-utts", "30"]
    command += ["--phone-conf", str(_small_conf("train_phone.yaml", tmp_path))]
    command += ["--word-conf", str(_small_conf("train_char.yaml", tmp_path))]
    command += [
        "--online",
        "true",
        "--online-conf",
        str(_small_conf("train_char_online.yaml", tmp_path)),
    ]
    command += [
        "--beam-size",
        "4",
        "--lm-weights",
        "0.5,1.5",
        "--word-scores=-1,1",
        "--data",
        str(tmp_path / "data"),
        "--exp",
        str(tmp_path / "exp"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout

    test = DataDir.load(tmp_path / "data" / "test")
    phones = sum(len(line.split()) - 1 for line in (tmp_path / "data" / "test" / "phones")
                 .read_text().splitlines())  # fmt: skip
    words = words_in_test = sum(len(t.split()) for t in test.text.values())
    for decoder in ("greedy", "beam4"):
        per = re.search(rf"^phone {decoder} %PER (\S+) \[ (\d+) / (\d+),", out, re.MULTILINE)
        wer = re.search(rf"^word  {decoder} %WER (\S+) \[ (\d+) / (\d+),", out, re.MULTILINE)
        assert per and wer, out[-2000:]
        assert int(per.group(3)) == phones and int(wer.group(3)) == words
        # 6 minutes of speech and 8 epochs: far from the targets, but learning (an untrained
        # model deletes everything: 100%)
        assert float(per.group(1)) < 90.0, per.group(0)
    # Stages 4-6: lexicon + 3-gram from the training prompts, tuned on dev, scored on test.
    lex = re.search(r"^word  lex3g %WER (\S+) \[ (\d+) / (\d+),", out, re.MULTILINE)
    assert lex and int(lex.group(3)) == words, out[-2000:]
    assert re.search(r"^test: perplexity \S+ \(\d+ sentences", out, re.MULTILINE), out[-2000:]
    coverage = re.search(r"test/text: words outside the lexicon: (\d+) of (\d+)", out)
    assert coverage and int(coverage.group(2)) == words, out[-2000:]
    train_words = set((tmp_path / "data" / "local" / "words.txt").read_text().split())
    test_oov = sum(w not in train_words for t in test.text.values() for w in t.split())
    assert int(coverage.group(1)) == test_oov
    # Test-time VTLN (on by default): the same decoders on features warped per test voice, a
    # factor of the grid for every voice, and every phone and word scored
    for line in (rf"^phone greedy\+vtln %PER \S+ \[ \d+ / {phones},",
                 rf"^word  lex3g\+vtln %WER \S+ \[ \d+ / {words},"):  # fmt: skip
        assert re.search(line, out, re.MULTILINE), out[-2000:]
    voices = sorted(set(test.utt2spk.values()))
    for model in ("phone", "word"):
        spk2warp = (tmp_path / "exp" / model / "decode_greedy_vtln" / "spk2warp").read_text()
        factors = dict(line.split() for line in spk2warp.splitlines())
        assert sorted(factors) == voices
        assert all(0.8 <= float(f) <= 1.25 for f in factors.values())
    exp_word = tmp_path / "exp" / "word"
    tuning = (exp_word / "decode_dev_lex3g" / "tuning.tsv").read_text().splitlines()[1:]
    assert len(tuning) == 4  # 2 LM weights x 2 word scores
    best = json.loads((exp_word / "decode_dev_lex3g" / "best.json").read_text())
    assert best["wer"] == min(float(row.split("\t")[2]) for row in tuning)
    # the search only writes words of the lexicon, i.e. of the training prompts
    hyps = (exp_word / "decode_lex3g" / "text").read_text().split("\n")
    assert {w for line in hyps for w in line.split()[1:]} <= train_words
    transcript = re.search(r"^REF: (.*)\nHYP: (.*)$", out, re.MULTILINE)
    assert transcript and transcript.group(1) == next(iter(sorted(test.text.items())))[1]
    # Stage 7 went through `asr transcribe` with the packaged lexicon + LM: its JSON has the
    # printed text, whisper's segments and timed words, all lexicon words.
    (result,) = (tmp_path / "exp" / "word" / "transcribe").glob("*.json")
    words = json.loads(result.read_text(encoding="utf-8"))
    assert words["text"] == transcript.group(2)
    assert words["decoder"].startswith("lexicon beam search, beam 50, word LM weight")
    assert set(words["text"].split()) <= train_words
    assert " ".join(s["text"].strip() for s in words["segments"]) == words["text"]
    starts = [w["start"] for w in words["words"]]
    assert starts == sorted(starts)
    assert all(0 <= w["start"] <= w["end"] <= words["duration"] for w in words["words"])
    # The package's model card records the scored results; stage 8 transcribed every test file
    # and got asr decode's WER on the same (per-utterance normalised) features.
    card = (exp_word / "MODEL_CARD.md").read_text()
    assert f"| unseen voices (test), lexicon + 3-gram | %WER | {float(lex.group(1))} |" in card
    assert "- lexicon: embedded" in card and "- training set: " in card
    decoded = re.search(r"^decode .*: lex3g %WER (\S+) \[ \d+ / (\d+),", out, re.MULTILINE)
    assert decoded and int(decoded.group(2)) == words_in_test, out[-2000:]
    transcribed = {}
    for precision in ("fp32", "auto"):
        line = rf"^transcribe --precision {precision} .*: lex3g %WER (\S+) \[ \d+ / (\d+),"
        found = re.search(line, out, re.MULTILINE)
        assert found and int(found.group(2)) == words_in_test, out[-2000:]
        transcribed[precision] = float(found.group(1))
    assert abs(float(decoded.group(1)) - transcribed["fp32"]) <= 0.5, out[-800:]
    # bf16 where native: at this size (about 240 words) one word is 0.4 points
    assert abs(transcribed["auto"] - transcribed["fp32"]) <= 1.0, out[-800:]
    # and with test-time VTLN, a warp factor per recording: every file and every word
    line = r"^transcribe --vtln \(audio files, a factor per recording\): lex3g %WER \S+ "
    found = re.search(line + r"\[ \d+ / (\d+),", out, re.MULTILINE)
    assert found and int(found.group(1)) == words_in_test, out[-2000:]
    rows = (exp_word / "transcribe_test_vtln" / "by_file.tsv").read_text().splitlines()
    assert len(rows) == len(test.text)
    # Stage 9: a forward-only model decoded online and offline, every test word scored
    for mode in ("offline", "online"):
        found = re.search(rf"^word_online {mode} greedy: %WER (\S+) \[ \d+ / (\d+),", out, re.M)
        assert found and int(found.group(2)) == words_in_test, out[-2000:]
    online_rows = (tmp_path / "exp" / "word_online" / "online_test" / "by_file.tsv").read_text()
    assert all(len(row.split("\t")) == 4 for row in online_rows.splitlines())
    for model in ("phone", "word"):
        assert (tmp_path / "exp" / model / "final.pt").is_file()
        assert (tmp_path / "exp" / model / "curves.png").is_file()
        scoring = tmp_path / "exp" / model / "decode_greedy" / "scoring"
        assert sorted(p.suffix for p in scoring.iterdir()) == [
            ".dtl",
            ".html",
            ".json",
            ".pra",
            ".sys",
        ]
        # The .sys table has a row per test voice (utt2spk is the voice).
        voices = set((tmp_path / "data" / "test" / "utt2spk").read_text().split()[1::2])
        sys_text = (scoring / "text.sys").read_text(encoding="utf-8")
        assert all(f"| {voice} " in sys_text for voice in voices)


@pytest.mark.slow
def test_synth_recipe_levers_train_on_augmented_copies_with_vtlp(tmp_path: Path) -> None:
    """--augment "reverb codec" --vtlp W: three utterances per prompt, each labelled as its
    original, and the phone model trained on them with the warp in its config."""
    usable, missing = synth.available_engines(synth.ENGINE_MODULES)
    if missing:
        message = f"synthesisers missing: {missing} ('make setup' installs them)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    conf = yaml.safe_load((RECIPE / "conf" / "train_phone.yaml").read_text())
    conf["model"].update(num_layers=1, hidden_size=32)
    conf["training"].update(max_epochs=1, precision="fp32")
    phone_conf = tmp_path / "train_phone.yaml"
    phone_conf.write_text(yaml.safe_dump(conf))
    data, exp = tmp_path / "data", tmp_path / "exp"
    command = ["bash", str(RECIPE / "run.sh"), "--hours", "0.03", "--threads", "2"]
    command += ["--dev-utts", "10", "--test-utts", "10", "--stop-stage", "2"]
    command += ["--augment", "reverb codec", "--vtlp", "0.1", "--phone-conf", str(phone_conf)]
    command += ["--data", str(data), "--exp", str(exp)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    train = DataDir.load(data / "train")
    aug = DataDir.load(data / "train_aug")
    assert aug.text is not None and train.text is not None
    copies = {u for u in aug.utt2spk if u not in train.utt2spk}
    assert {u.split("-", 1)[0] for u in copies} == {"rev1", "codec"}
    assert len(aug.utt2spk) == 3 * len(train.utt2spk)
    phones = dict(
        line.split(" ", 1) for line in (data / "train" / "phones").read_text().splitlines()
    )
    aug_phones = dict(
        line.split(" ", 1) for line in (data / "train_aug" / "phones").read_text().splitlines()
    )
    assert set(aug_phones) == set(aug.utt2spk)
    for utt, labels in aug_phones.items():
        original = utt if utt in train.utt2spk else utt.split("-", 1)[1]
        assert labels == phones[original]
        assert aug.text[utt] == train.text[original]
    # the phone model's twin holds the phones as its text, and the model trained on it
    twin = DataDir.load(data / "train_aug_phone")
    assert twin.text == {u: p for u, p in aug_phones.items()}
    used = yaml.safe_load((exp / "phone" / "train_phone.yaml").read_text())
    assert used["training"]["vtlp_max_warp"] == 0.1
    assert used["model"] == conf["model"]
    first = (exp / "phone" / "train.log").read_text().splitlines()[0]
    assert f"train_aug_phone ({3 * len(train.utt2spk)} utts)" in first
    assert "VTLP max warp 0.1" in first
