"""``asr decode``: a model package over a feature data directory, written as a Kaldi text file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_train import write_synthetic

from asr.cli import main
from asr.decoding.datadir import coverage_line, decode_datadir
from asr.errors import DataDirError, PackageError
from asr.score import read_transcripts, wer


@pytest.fixture
def trained(tiny_trained_model: tuple[Path, Path]) -> tuple[Path, Path]:
    return tiny_trained_model


def test_decode_writes_every_utterance_and_recognises_them(trained, tmp_path) -> None:
    model, test = trained
    summary = decode_datadir(model, test, tmp_path / "out", batch_frames=60)
    hyps = read_transcripts(tmp_path / "out" / "text")
    refs = read_transcripts(test / "text")
    assert summary.decoded == 20 and not summary.failed
    assert sorted(hyps) == sorted(refs)
    assert wer(refs, hyps).wer <= 10.0  # the synthetic task is easy for the trained model


def test_batching_does_not_change_the_hypotheses(trained, tmp_path) -> None:
    model, test = trained
    decode_datadir(model, test, tmp_path / "one", batch_frames=1)  # one utterance per batch
    decode_datadir(model, test, tmp_path / "all", batch_frames=100000)
    assert (tmp_path / "one" / "text").read_text() == (tmp_path / "all" / "text").read_text()


def test_features_unlike_the_training_ones_are_refused(trained, tmp_path) -> None:
    model, test = trained
    other = tmp_path / "other"
    write_synthetic(other, 3, seed=4)
    config = yaml.safe_load((other / "feats.yaml").read_text())
    config["cmvn"] = "utterance"
    (other / "feats.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(DataDirError, match=r"feats.yaml: features differ .* \(in cmvn\)"):
        decode_datadir(model, other, tmp_path / "out")
    assert not (tmp_path / "out" / "text").exists()


def test_cli_decode_and_a_broken_model_file(trained, tmp_path, capsys) -> None:
    model, test = trained
    assert main(["decode", str(model), str(test), str(tmp_path / "out"), "--threads", "1"]) == 0
    assert len((tmp_path / "out" / "text").read_text().splitlines()) == 20
    capsys.readouterr()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(model.read_bytes()[:1000])
    assert main(["decode", str(broken), str(test), str(tmp_path / "out2")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(broken) in err[0]
    with pytest.raises(PackageError):
        decode_datadir(broken, test, tmp_path / "out3")


# An LM over the synthetic words that all but forbids "b" and "c" (KenLM wants a 2-gram).
SKEWED_ARPA = """\\data\\
ngram 1=6
ngram 2=1

\\1-grams:
-3.0\t<unk>
-99\t<s>
-1.0\t</s>
-0.01\ta
-4.0\tb
-4.0\tc

\\2-grams:
-0.01\ta a

\\end\\
"""


def test_lexicon_lm_grid_is_scored_and_the_best_applied_to_test(trained, tmp_path, capsys) -> None:
    model, test = trained
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("a a\nb b\nc c\nzz z\n")  # 'z' is not a model token: left out
    lm = tmp_path / "skewed.arpa"
    lm.write_text(SKEWED_ARPA)
    dev = tmp_path / "dev"
    summary = decode_datadir(
        model, test, dev, progress=False, lexicon=lexicon, word_lm=lm,
        lm_weights=[0.0, 3.0], word_scores=[0.0, -30.0], nbest=3,
    )  # fmt: skip
    assert summary.decoded == 20
    rows = [line.split("\t") for line in (dev / "tuning.tsv").read_text().splitlines()]
    assert rows[0] == ["lm_weight", "word_score", "wer", "errors", "words"]
    table = {(float(r[0]), float(r[1])): float(r[2]) for r in rows[1:]}
    assert set(table) == {(0.0, 0.0), (0.0, -30.0), (3.0, 0.0), (3.0, -30.0)}
    # the acoustic model alone is good; the skewed LM and the huge word penalty hurt
    assert table[(0.0, 0.0)] <= 10.0
    assert table[(3.0, 0.0)] > table[(0.0, 0.0)] + 10
    assert table[(0.0, -30.0)] > table[(0.0, 0.0)] + 10
    best = json.loads((dev / "best.json").read_text())
    assert best == {"lm_weight": 0.0, "word_score": 0.0, "wer": table[(0.0, 0.0)]}
    assert summary.best == best
    assert (dev / "text").read_text() == (dev / "lmwt_0_wip_0" / "text").read_text()
    hyps = read_transcripts(dev / "lmwt_3_wip_0" / "text")
    assert sum(t.split().count("a") for t in hyps.values()) > sum(
        t.split().count("b") + t.split().count("c") for t in hyps.values()
    )  # the LM pulls towards "a"
    nbest = (dev / "nbest.txt").read_text().splitlines()
    fields = [line.split("\t") for line in nbest]
    assert all(len(f) == 3 for f in fields)
    first = [f for f in fields if f[0].endswith("-1")]
    assert len(first) == 20
    assert {f[0][:-2]: f[2] for f in first} == read_transcripts(dev / "text")
    by_utt: dict[str, list[float]] = {}
    for utt_rank, score, _ in fields:
        by_utt.setdefault(utt_rank.rsplit("-", 1)[0], []).append(float(score))
    assert all(s == sorted(s, reverse=True) and len(s) <= 3 for s in by_utt.values())

    # test: the CLI with --tuned-on uses dev's best pair and writes one text
    argv = ["decode", str(model), str(test), str(tmp_path / "test"), "--no-progress"]
    lex = ["--lexicon", str(lexicon), "--word-lm", str(lm), "--threads", "1"]
    assert main([*argv, *lex, "--tuned-on", str(dev)]) == 0
    assert (tmp_path / "test" / "text").read_text() == (dev / "text").read_text()
    assert not (tmp_path / "test" / "best.json").exists()
    capsys.readouterr()
    assert main([*argv, *lex, "--tuned-on", str(dev), "--lm-weight", "1"]) == 1
    assert "--tuned-on sets the LM weight" in capsys.readouterr().err
    assert main([*argv, *lex, "--tuned-on", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "best.json: not found" in err[0]
    assert main([*argv, "--word-score", "1"]) == 1
    assert "--word-score needs --lexicon" in capsys.readouterr().err
    assert main([*argv, "--token-lm", str(lm), "--word-score=-1,0"]) == 1
    assert "a word score needs a lexicon" in capsys.readouterr().err


def test_cli_grid_of_weights_writes_one_directory_per_pair(trained, tmp_path) -> None:
    model, test = trained
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("a a\nb b\nc c\n")
    out = tmp_path / "grid"
    argv = ["decode", str(model), str(test), str(out), "--no-progress", "--lexicon", str(lexicon)]
    # a grid starting with a minus needs the = form (argparse would take it for an option)
    assert main([*argv, "--lm-weight", "0.5,1", "--word-score=-1,0,1.5"]) == 0
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert names == [
        "lmwt_0.5_wip_-1", "lmwt_0.5_wip_0", "lmwt_0.5_wip_1.5",
        "lmwt_1_wip_-1", "lmwt_1_wip_0", "lmwt_1_wip_1.5",
    ]  # fmt: skip
    assert len((out / "tuning.tsv").read_text().splitlines()) == 7
    # without an LM the LM weight changes nothing
    assert (out / "lmwt_0.5_wip_0" / "text").read_text() == (
        out / "lmwt_1_wip_0" / "text"
    ).read_text()


def test_a_grid_is_scored_on_words(tmp_path) -> None:
    from asr.decoding.datadir import _word_references

    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("u1 ▁the ▁cat s\nu2 ▁a\n")
    assert _word_references(data, None, "bpe") == {"u1": "the cats", "u2": "a"}
    assert _word_references(data, None, "char") == {"u1": "▁the ▁cat s", "u2": "▁a"}
    words = tmp_path / "words"
    words.write_text("u1 the cats\n")
    assert _word_references(data, words, "phone") == {"u1": "the cats"}
    assert _word_references(tmp_path / "none", None, "char") is None


def test_bf16_transcription_follows_the_cpu_switch(trained, cpu_bf16) -> None:
    """``asr.load_model(bf16=True)``: refused in one line on a CPU without native bf16, run under
    bf16 autocast on one with it (emulated under ASR_CPU_BF16=1 where the CPU lacks it)."""
    import numpy as np
    import torch

    from asr.errors import ConfigError
    from asr.transcribe import load_model

    if not cpu_bf16:
        with pytest.raises(ConfigError) as info:
            load_model(trained[0], bf16=True)
        assert "\n" not in str(info.value) and "no native bf16" in str(info.value)
        return
    recognizer = load_model(trained[0], bf16=True)
    assert recognizer.dtype is torch.bfloat16
    rate = recognizer.sample_rate
    wave = (0.1 * np.sin(np.arange(rate) * 2 * np.pi * 440 / rate)).astype(np.float32)
    transcript = recognizer.transcribe(wave, rate)
    assert transcript.duration == pytest.approx(1.0, abs=0.05)
    assert set(transcript.text.split()) <= {"a", "b", "c"}
    assert all(0.0 <= u.confidence <= 1.0 for u in transcript.units)


def test_words_the_lexicon_and_lm_miss_are_counted_before_decoding(
    trained, tmp_path, caplog
) -> None:
    model, test = trained
    refs = read_transcripts(test / "text")
    words = [w for text in refs.values() for w in text.split()]
    c_count = words.count("c")
    assert 0 < c_count < len(words)
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("a a\nb b\n")  # no "c": every c of the references is out of it
    lm = tmp_path / "skewed.arpa"
    lm.write_text(SKEWED_ARPA.replace("-4.0\tb\n", "").replace("ngram 1=6", "ngram 1=5"))
    with caplog.at_level("INFO", logger="asr.decoding.datadir"):
        decode_datadir(model, test, tmp_path / "out", progress=False, lexicon=lexicon, word_lm=lm)
    messages = [r.getMessage() for r in caplog.records]
    rate = 100.0 * c_count / len(words)
    expected = f"words outside the lexicon: {c_count} of {len(words)} ({rate:.2f}%; e.g. c)"
    assert any(m.endswith(expected) and str(test / "text") in m for m in messages)
    b_count = words.count("b")  # the LM has "c" but not "b"
    lm_line = f": {b_count} of {len(words)} ({100.0 * b_count / len(words):.2f}%; e.g. b)"
    assert any(f"words outside {lm}" in m and m.endswith(lm_line) for m in messages)
    # and the log says so before the first utterance is searched: nothing decoded yet
    first = next(i for i, m in enumerate(messages) if "outside the lexicon" in m)
    assert not any("decoded" in m for m in messages[:first])


def test_coverage_line_counts_running_words() -> None:
    refs = {"u1": "a b a", "u2": "c a", "u3": ""}
    assert coverage_line(refs, {"a", "b", "c"}, "x") == "x: 0 of 5 (0.00%)"
    assert coverage_line(refs, {"b"}, "x") == "x: 4 of 5 (80.00%; e.g. a, c)"
    assert coverage_line({}, set(), "x") == "x: 0 of 0 (0.00%)"
