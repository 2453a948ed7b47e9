"""recipes/timit/run.sh end to end on the ../shared TIMIT sample at a CI size.

The sample's own run (30 epochs, stage 5 with the synthetic-speech model) is in
recipes/timit/RESULTS. Here a 2x64 model trains 4 epochs: enough to check every stage, the
48 -> 39 scoring and the per-speaker reports, not the accuracy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import shared_path

from asr.lm.kenlm import kenlm_binary

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "timit"


@pytest.mark.integration
@pytest.mark.slow
def test_timit_recipe_on_the_sample(timit_dir: Path, tmp_path: Path) -> None:
    conf = yaml.safe_load((RECIPE / "conf" / "train_cpu.yaml").read_text())
    conf["model"].update(num_layers=2, hidden_size=64)
    conf["training"].update(max_epochs=4, precision="fp32")
    small = tmp_path / "train.yaml"
    small.write_text(yaml.safe_dump(conf))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = ["bash", str(RECIPE / "run.sh"), "--corpus-dir", str(timit_dir), "--sample"]
    command += ["--conf", str(small), "--threads", "2", "--beam-size", "4"]
    command += ["--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    split = (tmp_path / "data" / "split.txt").read_text().split("\n")
    held_out = [line.split() for line in split if line.startswith(("dev ", "test "))]
    assert len(held_out) == 4 and {gender for _, _, gender, *_ in held_out} == {"f", "m"}
    # Scored on 39 phones: every reference phone of the test speakers, folded from 48.
    test_text = (tmp_path / "data" / "test" / "text").read_text().splitlines()
    phones = sum(len(line.split()) - 1 for line in test_text)
    for decoder in ("greedy", "beam4", "beam4_bigram"):
        line = re.search(rf"^blstm {decoder} %PER (\S+) \[ (\d+) / (\d+),", done.stdout, re.M)
        assert line, done.stdout[-2000:]
        assert int(line.group(3)) == phones
        sys_file = tmp_path / "exp" / "blstm" / f"decode_{decoder}" / "scoring" / "text.sys"
        table = sys_file.read_text(encoding="utf-8")
        for kind, speaker, *_ in held_out:  # a row per test speaker, none for dev speakers
            assert bool(re.search(rf"\|\s+{speaker}\s+\|", table)) == (kind == "test")
        assert "timit48-39" in table


@pytest.mark.integration
@pytest.mark.slow
def test_timit_recipe_cross_validates_over_folds(timit_dir: Path, tmp_path: Path) -> None:
    """--sample --folds 2: each fold's %PER lines, then the pooled rate over every sample
    speaker (each tested once) with its bootstrap interval, equal to the folds' errors summed.
    With --synth-data, each fold also trains on its real speakers plus --synth-utts synthetic
    utterances (multi-condition), and is tested on real speech only; stage 7 then trains the
    best row on every speaker."""
    conf = yaml.safe_load((RECIPE / "conf" / "train_cpu.yaml").read_text())
    conf["model"].update(num_layers=1, hidden_size=32)
    conf["training"].update(max_epochs=2, precision="fp32")
    small = tmp_path / "train.yaml"
    small.write_text(yaml.safe_dump(conf))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    synth = tmp_path / "synth"
    make = [sys.executable, "-m", "asr", "prepare", "synth", str(synth), "--hours", "0.005"]
    make += ["--dev-utts", "3", "--test-utts", "4", "--no-progress"]
    subprocess.run(make, check=True, capture_output=True, env=env, timeout=300)
    copy = [sys.executable, "-m", "asr", "data", "copy", str(synth / "train")]
    copy += [str(synth / "train_phone"), "--text", str(synth / "train" / "phones")]
    subprocess.run(copy, check=True, capture_output=True, env=env, timeout=60)
    synth_ids = {line.split()[0] for line in (synth / "train" / "phones").open()}
    assert len(synth_ids) > 5

    command = ["bash", str(RECIPE / "run.sh"), "--corpus-dir", str(timit_dir), "--sample"]
    command += ["--folds", "2", "--conf", str(small), "--threads", "2", "--beam-size", "2"]
    command += ["--synth-data", str(synth / "train_phone"), "--synth-utts", "5"]
    command += ["--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")]
    command += ["--vtln", "0.9:1.1:0.1"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout

    everyone = (tmp_path / "data" / "all" / "text").read_text().splitlines()
    phones = sum(len(line.split()) - 1 for line in everyone)
    for model in ("blstm", "blstm_synthfeat", "blstm_multi"):
        for decoder in ("greedy", "beam2", "beam2_bigram", "greedy_vtln", "beam2_bigram_vtln"):
            folds = [
                re.search(rf"^fold{k} {model} {decoder} %PER \S+ \[ (\d+) / (\d+),", out, re.M)
                for k in (1, 2)
            ]
            assert all(folds), out[-2000:]
            pooled = re.search(
                rf"^pooled {model} {decoder} %PER (\S+) \[ (\d+) / (\d+),", out, re.M
            )
            assert pooled, out[-2000:]
            # every utterance of the sample scored once: the folds add up to the pooled count
            assert int(pooled.group(3)) == phones == sum(int(f.group(2)) for f in folds if f)
            assert int(pooled.group(2)) == sum(int(f.group(1)) for f in folds if f)
            ci = re.search(
                rf"^pooled {model} {decoder} .*\n  %PER \S+, 95% CI \[(\S+), (\S+)\]", out, re.M
            )
            assert ci, out[-2000:]
            assert float(ci.group(1)) <= float(pooled.group(1)) <= float(ci.group(2))
    assert "no test sentence was read by a training speaker of its fold" in out
    # --vtln: a factor of the grid per test speaker of each fold, the same for both searches
    for k, model in ((1, "blstm"), (2, "blstm_multi")):
        decodes = tmp_path / "exp" / f"fold{k}" / model
        warps = dict(line.split() for line in (decodes / "decode_greedy_vtln" / "spk2warp").open())
        spk2utt = tmp_path / "data" / f"fold{k}" / "test" / "spk2utt"
        assert set(warps) == {line.split()[0] for line in spk2utt.open()}
        assert {float(w) for w in warps.values()} <= {0.9, 1.0, 1.1}
        assert warps == dict(
            line.split() for line in (decodes / "decode_beam2_bigram_vtln" / "spk2warp").open()
        )

    # stage 7: the configuration with the lowest pooled PER (beam + bigram) trained once more
    # on every speaker, beside the cross-validated figure it was chosen by
    pooled_per = {}
    for m in ("blstm", "blstm_synthfeat", "blstm_multi"):
        line = re.search(rf"^pooled {m} beam2_bigram %PER (\S+)", out, re.M)
        assert line, out[-2000:]
        pooled_per[m] = float(line.group(1))
    best = min(pooled_per, key=lambda m: (pooled_per[m], m))
    starter = tmp_path / "exp" / "full" / best
    assert re.search(rf"^starter model: {starter / 'final.pt'}; cross-validated: %PER ", out, re.M)
    assert (starter / "final.pt").is_file()
    pooled_file = tmp_path / "exp" / "pooled" / f"{best}_beam2_bigram" / "per"
    cv_per = (starter / "cv_per").read_text().splitlines()
    assert cv_per[1] == pooled_file.read_text().splitlines()[0]
    # trained on all 16 speakers: every utterance but each speaker's dev sentence (+ synthetic)
    full = tmp_path / "data" / "full"
    train_set = {"blstm": "train", "blstm_synthfeat": "train_synthfeat"}.get(best, "train_multi")
    utts = len((full / train_set / "utt2spk").read_text().splitlines())
    assert utts == len(everyone) - 16 + (5 if best == "blstm_multi" else 0)
    header = (starter / "train.log").read_text().splitlines()[0]
    assert header.startswith(f"# train {full / train_set} ({utts} utts), dev {full}/dev")

    for k in (1, 2):
        fold = tmp_path / "data" / f"fold{k}"
        real = {line.split()[0] for line in (fold / "train" / "utt2spk").open()}
        multi = {line.split()[0] for line in (fold / "train_multi" / "utt2spk").open()}
        added = multi - real
        assert len(added) == 5 and added <= synth_ids and real <= multi
        if k == 1:
            chosen = added
        assert added == chosen  # the same five synthetic utterances in every fold
        text = dict(line.split(maxsplit=1) for line in (fold / "train_multi" / "text").open())
        phones = dict(line.split(maxsplit=1) for line in (synth / "train" / "phones").open())
        assert all(text[u] == phones[u] for u in added)  # phones, not words
        # the synth recipe's features (40 log-mel, no energy) for the union, as for dev/test
        feats = yaml.safe_load((fold / "train_multi" / "feats.yaml").read_text())
        assert feats == yaml.safe_load((fold / "dev_synthfeat" / "feats.yaml").read_text())
        log = (tmp_path / "exp" / f"fold{k}" / "blstm_multi" / "train.log").read_text()
        assert f"train_multi ({len(multi)} utts), dev {fold / 'dev_synthfeat'} " in log


@pytest.mark.integration
def test_speed_perturbation_triples_the_training_speakers_the_models_learn_from(
    timit_dir: Path, tmp_path: Path
) -> None:
    """--speed-perturb true: train_sp beside each fold's train (every utterance at 0.9, 1.0 and
    1.1, the copies as speakers of their own), and stage 2 trains on it. A value other than
    true or false is one line."""
    conf = yaml.safe_load((RECIPE / "conf" / "train_cpu.yaml").read_text())
    conf["model"].update(num_layers=1, hidden_size=16)
    conf["training"].update(max_epochs=1, precision="fp32")
    small = tmp_path / "train.yaml"
    small.write_text(yaml.safe_dump(conf))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = ["bash", str(RECIPE / "run.sh"), "--corpus-dir", str(timit_dir), "--sample"]
    command += ["--folds", "2", "--conf", str(small), "--threads", "2", "--beam-size", "2"]
    command += ["--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")]
    bad = subprocess.run([*command, "--speed-perturb=yes"], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip() == "run.sh: option --speed-perturb is true or false, not 'yes'"
    done = subprocess.run(
        [*command, "--speed-perturb", "true", "--stop-stage", "2"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for k in (1, 2):
        fold = tmp_path / "data" / f"fold{k}"
        train = dict(line.split() for line in (fold / "train" / "utt2spk").open())
        perturbed = dict(line.split() for line in (fold / "train_sp" / "utt2spk").open())
        expected = {
            f"{p}{u}": f"{p}{s}" for u, s in train.items() for p in ("sp0.9-", "", "sp1.1-")
        }
        assert perturbed == expected
        durations = {
            u: float(d) for u, d in (row.split() for row in (fold / "train_sp" / "utt2dur").open())
        }
        u = next(iter(train))
        assert durations[f"sp0.9-{u}"] == pytest.approx(durations[u] / 0.9, abs=0.01)
        assert durations[f"sp1.1-{u}"] == pytest.approx(durations[u] / 1.1, abs=0.01)
        log = (tmp_path / "exp" / f"fold{k}" / "blstm" / "train.log").read_text()
        assert log.startswith(f"# train {fold / 'train_sp'} ({len(expected)} utts), dev ")
        assert re.search(rf"^fold{k} blstm beam2_bigram %PER ", done.stdout, re.M)
    full = tmp_path / "data" / "full"
    assert len((full / "train_sp" / "utt2spk").read_text().splitlines()) == 3 * len(
        (full / "train" / "utt2spk").read_text().splitlines()
    )


def _stage7(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(RECIPE / "run.sh"), "--sample", "--folds", "8", "--stage", "7"]
    command += [*options, "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_starter_stage_takes_the_lowest_pooled_row_and_refuses_what_it_cannot_train(
    tmp_path: Path,
) -> None:
    """Stage 7 alone, on hand-written pooled results: no training reached, each refusal one
    line; auto names the row with the lowest pooled PER before it looks for data/full."""
    done = _stage7(tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "run.sh: stage 7 needs stage 6's pooled results"
    for model, per in (("blstm", "50.00"), ("blstm_synthfeat", "40.00"), ("blstm_multi", "45.00")):
        pooled = tmp_path / "exp" / "pooled" / f"{model}_beam10_bigram"
        pooled.mkdir(parents=True)
        (pooled / "per").write_text(f"%PER {per} [ 1 / 2, 0 ins, 0 del, 1 sub ]\n")
    # without a synthetic option only the blstm row is the recipe's: it is the one chosen
    done = _stage7(tmp_path)
    assert "the starter model, blstm trained on every sample speaker" in done.stdout
    assert done.returncode == 1 and "data/full/train missing: rerun stage 0" in done.stderr
    done = _stage7(tmp_path, "--synth-data", str(tmp_path / "synth"))
    assert "the starter model, blstm_synthfeat trained on every sample speaker" in done.stdout
    done = _stage7(tmp_path, "--starter", "blstm_synthinit")
    assert done.returncode == 1
    missing = tmp_path / "exp" / "pooled" / "blstm_synthinit_beam10_bigram" / "per"
    assert (
        done.stderr.strip()
        == f"run.sh: --starter blstm_synthinit: no pooled result {missing} (stage 6)"
    )
    done = _stage7(tmp_path, "--starter", "lstm")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "run.sh: --starter lstm: not one of auto blstm blstm_synthfeat blstm_synthinit blstm_multi"
    )


def test_synthetic_data_options_are_checked_before_any_work(tmp_path: Path) -> None:
    """A --synth-data that is no data directory, or a --synth-utts that is no count: one line
    each, before stage 5 copies or trains anything."""
    command = ["bash", str(RECIPE / "run.sh"), "--sample", "--folds", "8", "--stage", "5"]
    command += ["--stop-stage", "5", "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "e")]
    missing = tmp_path / "nothing"
    done = subprocess.run([*command, "--synth-data", str(missing)], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"run.sh: --synth-data {missing}: not a data directory with text and utt2spk"
    )
    synth = tmp_path / "synth"
    synth.mkdir()
    (synth / "utt2spk").write_text("v1-u1 v1\n")
    (synth / "text").write_text("v1-u1 aa b\n")
    done = subprocess.run(
        [*command, "--synth-data", str(synth), "--synth-utts", "-3"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "run.sh: --synth-utts -3: a count of utterances (0: all)"
    assert not (tmp_path / "data").exists() and not (tmp_path / "e").exists()


@pytest.mark.integration
@pytest.mark.slow
def test_word_stages_fine_tune_a_char_model_per_fold_and_package_the_starter(
    timit_dir: Path, fsdd_dir: Path, tmp_path: Path
) -> None:
    """Stages 8-11 with a tiny character model of synthetic read speech (the role of
    recipes/synth_books' model), a lexicon that lacks some test words and a KenLM 2-gram:
    each fold's %WER lines, the pooled rate equal to the folds' sum over every sample word,
    the out-of-lexicon count, FSDD joining each fold's training set alike, and a starter
    package whose lexicon + LM `asr transcribe` uses."""
    try:
        kenlm_binary("lmplz")
    except Exception as exc:  # noqa: BLE001 - any reason it is missing
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"

    def asr(*args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "asr", *args],
            check=True,
            capture_output=True,
            env=env,
            timeout=600,
        )

    books = tmp_path / "books"
    asr(
        "prepare",
        "synth",
        str(books),
        "--hours",
        "0.01",
        "--dev-utts",
        "3",
        "--test-utts",
        "3",
        "--no-progress",
        "--text",
        str(shared_path("text", "state_union", "1945-Truman.txt")),
    )
    for s in ("train", "dev"):
        asr(
            "features",
            str(books / s),
            "--config",
            str(RECIPE.parent / "synth" / "conf" / "fbank.yaml"),
            "--no-progress",
        )
    conf = yaml.safe_load((RECIPE / "conf" / "train_char.yaml").read_text())
    conf["model"].update(num_layers=1, hidden_size=32)
    conf["training"].update(max_epochs=2, precision="fp32")
    small = tmp_path / "char.yaml"
    small.write_text(yaml.safe_dump(conf))
    asr(
        "train",
        "--config",
        str(small),
        "--train-dir",
        str(books / "train"),
        "--dev-dir",
        str(books / "dev"),
        "--exp-dir",
        str(books / "exp"),
        "--threads",
        "2",
        "--no-progress",
    )

    # stage 0 alone first: the sample's words give the lexicon (less every word with a 'v',
    # so that some test words are out of it) and the 2-gram's text
    command = ["bash", str(RECIPE / "run.sh"), "--corpus-dir", str(timit_dir), "--sample"]
    command += ["--folds", "2", "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")]
    subprocess.run([*command, "--stop-stage", "0"], check=True, capture_output=True, env=env)
    sentences = [line.split()[1:] for line in (tmp_path / "data" / "all" / "words").open()]
    known = sorted({w for s in sentences for w in s if "v" not in w})
    (tmp_path / "words.txt").write_text("\n".join(known) + "\n")
    asr(
        "lexicon", "prepare", str(tmp_path / "words.txt"), str(tmp_path / "dict"), "--units", "char"
    )
    (tmp_path / "lm_text").write_text(
        "\n".join(" ".join(w for w in s if "v" not in w) for s in sentences) + "\n"
    )
    asr(
        "lm",
        "train",
        str(tmp_path / "lm_text"),
        "--order",
        "2",
        str(tmp_path / "lm.arpa"),
        "--binary",
        str(tmp_path / "lm.bin"),
    )
    lexicon = tmp_path / "dict" / "lexicon.txt"

    command += ["--stage", "8", "--word-model", str(books / "exp" / "final.pt")]
    command += ["--lexicon", str(lexicon), "--word-lm", str(tmp_path / "lm.bin")]
    command += ["--word-conf", str(small), "--lm-weights", "0.5,1.5", "--word-scores", "0"]
    command += ["--word-beam-size", "8", "--threads", "2"]
    command += ["--fsdd-dir", str(fsdd_dir.parent), "--fsdd-utts", "12"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    out = done.stdout

    words = sum(len(s) for s in sentences)
    for model in ("char_books", "char_books_ft", "char_books_ft_fsdd"):
        for decoder in ("greedy", "lex"):
            folds = [
                re.search(rf"^fold{k} {model} {decoder} %WER \S+ \[ (\d+) / (\d+),", out, re.M)
                for k in (1, 2)
            ]
            assert all(folds), out[-2000:]
            pooled = re.search(
                rf"^pooled {model} {decoder} %WER (\S+) \[ (\d+) / (\d+),", out, re.M
            )
            assert pooled, out[-2000:]
            assert int(pooled.group(3)) == words == sum(int(f.group(2)) for f in folds if f)
            assert int(pooled.group(2)) == sum(int(f.group(1)) for f in folds if f)
            ci = re.search(
                rf"^pooled {model} {decoder} .*\n  %WER \S+, 95% CI \[(\S+), (\S+)\]", out, re.M
            )
            assert ci and float(ci.group(1)) <= float(pooled.group(1)) <= float(ci.group(2))
        cer = re.search(rf"^pooled {model} lex .*\n.*\n  %CER (\S+) \[ \d+ / (\d+),", out, re.M)
        chars = sum(len(" ".join(s)) for s in sentences)
        assert cer and int(cer.group(2)) == chars, out[-2000:]
    ppl = re.search(
        r"^word LM on the test sentences: perplexity (\S+) \((\d+) sentences", out, re.M
    )
    assert ppl and float(ppl.group(1)) > 1 and int(ppl.group(2)) == len(sentences)
    outside = sum(1 for s in sentences for w in s if "v" in w)
    assert outside > 0 and f"test words outside the lexicon: {outside} of {words}" in out

    # FSDD: the same 12 recordings, 2 per speaker, join every fold's training set (and full)
    chosen = None
    for part in ("fold1", "fold2", "full"):
        d = tmp_path / "data" / part
        real = {line.split()[0] for line in (d / "train_words" / "utt2spk").open()}
        both = dict(line.split() for line in (d / "train_words_fsdd" / "utt2spk").open())
        added = set(both) - real
        chosen = chosen or added
        assert len(added) == 12 and added == chosen and real <= set(both)
        assert sorted({both[u] for u in added}) == sorted(
            {
                line.split()[1]
                for line in (tmp_path / "data" / "fsdd_all" / "train" / "utt2spk").open()
            }
        )
        assert all(
            n == 2 for n in [sum(both[u] == spk for u in added) for spk in {both[u] for u in added}]
        )
        # real transcripts are the .WRD words, FSDD's are digit names
        text = dict(
            line.rstrip("\n").split(" ", 1) for line in (d / "train_words_fsdd" / "text").open()
        )
        assert {text[u] for u in added} <= {
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
        }
        wrd = dict(line.rstrip("\n").split(" ", 1) for line in (d / "train" / "words").open())
        assert all(text[u] == wrd[u] for u in real)

    # stage 11: the lower pooled lexicon + LM row, trained on every speaker, packaged
    wer = {}
    for model in ("char_books_ft", "char_books_ft_fsdd"):
        wer[model] = float(re.search(rf"^pooled {model} lex %WER (\S+)", out, re.M).group(1))
    best = min(wer, key=lambda m: (wer[m], m))
    starter = tmp_path / "exp" / "full" / best
    assert f"starter model: {starter / 'words.pt'} (asr transcribe" in out
    cv = (starter / "cv_wer").read_text().splitlines()
    pooled_file = tmp_path / "exp" / "pooled_words" / f"{best}_lex" / "wer"
    assert cv[1] == pooled_file.read_text().splitlines()[0]
    card = subprocess.run(
        [sys.executable, "-m", "asr", "info", str(starter / "words.pt")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    ).stdout
    assert "- lexicon: embedded" in card and "- language model: embedded" in card
    assert f"tuned on {starter / 'decode_dev_lex'}" in card
    assert "timit-sample-2fold-cv" in card
    # a CI-sized model hardly leaves the CTC plateau: a large word score makes it read words,
    # and every one of them comes from the packaged lexicon
    wavs = [line.split()[1] for line in (tmp_path / "data" / "fold1" / "test" / "wav.scp").open()]
    read = subprocess.run(
        [
            sys.executable,
            "-m",
            "asr",
            "transcribe",
            str(starter / "words.pt"),
            *wavs[:4],
            "--threads",
            "2",
            "--no-progress",
            "--word-score",
            "10",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert read.returncode == 0, read.stderr[-2000:]
    lines = read.stdout.splitlines()
    assert len(lines) == 4
    said = [w for line in lines for w in line.split("\t")[1].split()]
    assert said and set(said) <= set(known)


def test_word_stages_refuse_missing_inputs_in_one_line(tmp_path: Path) -> None:
    """A word model, lexicon or LM that is not there, or stage 11 before stage 10: one line
    naming the file, and nothing written."""
    command = ["bash", str(RECIPE / "run.sh"), "--sample", "--folds", "8"]
    command += ["--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")]
    model = tmp_path / "model.pt"
    done = subprocess.run(
        [*command, "--stage", "8", "--word-model", str(model)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip() == f"run.sh: {model}: missing (recipes/synth_books stages 0-4 make it)"
    )
    model.write_bytes(b"not checked here")
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("a a\n")
    lm = tmp_path / "lm.bin"
    files = ["--word-model", str(model), "--lexicon", str(lexicon), "--word-lm", str(lm)]
    done = subprocess.run([*command, "--stage", "9", *files], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == f"run.sh: {lm}: missing (recipes/synth_books stages 0-4 make it)"
    lm.write_bytes(b"x")
    done = subprocess.run([*command, "--stage", "11", *files], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == "run.sh: stage 11 needs stage 10's pooled results"
    assert not (tmp_path / "data").exists() and not (tmp_path / "exp").exists()
