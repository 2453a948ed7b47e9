"""Transcription with the package's whole decoder: lexicon + KenLM search, tuned weights, n-best,
whisper's JSON read by whisper's own writers, and the model card.

The acoustic model is test_transcribe's tone detector as a character model (a 300 Hz tone says
"a", 4 kHz says "b", 1.5 kHz says the word gap ``<space>``), so what the network emits is known
exactly; the lexicon leaves out the word "a", so the lexicon search has to differ from greedy
decoding wherever a lone "a" is heard.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_transcribe import RATE, TIME_TOLERANCE, make_package, signal, write_wav

from asr.errors import ConfigError, PackageError
from asr.features.dataset import FeatureSet
from asr.lm.kenlm import LmError, kenlm_binary, train_arpa
from asr.nn.card import model_card, read_score_line
from asr.nn.export import onnx_available
from asr.nn.package import load_package
from asr.transcribe import load_model

# the tones of each letter; "sil" pieces between letters give the blank frames CTC needs
LETTER = {"a": "lo", "b": "hi", " ": "mid"}
UTTERANCES = {
    "u1": "ab ba",
    "u2": "ab a",  # "a" is not in the lexicon: the search must say something else
    "u3": "b ba",
    "u4": "ba a b",
}
LEXICON = "ab a b\nba b a\nb b\naa a a\n"
LM_TEXT = ["ab ba", "ba ab", "b ba", "ab b", "ba b ab", "aa b", "b ab ba"]


def parts_of(text: str) -> list[tuple[str, float]]:
    parts: list[tuple[str, float]] = [("sil", 0.3)]
    for char in text:
        parts += [(LETTER[char], 0.25), ("sil", 0.15)]
    return parts + [("sil", 0.2)]


def asr_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "asr", *args], capture_output=True, text=True, timeout=300
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def read_text(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        utt, _, text = line.partition(" ")
        out[utt] = text.strip()
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    try:
        kenlm_binary("lmplz")
    except LmError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("search")
    package = make_package(root / "tones.pt", unit="char")
    # audio files and a Kaldi data dir of the same audio (each utterance its own speaker)
    data = root / "data"
    data.mkdir()
    scp, text, utt2spk = [], [], []
    for number, (utt, words) in enumerate(UTTERANCES.items()):
        wav = write_wav(root / "audio" / f"{utt}.wav", signal(parts_of(words), seed=number))
        scp.append(f"{utt} {wav}\n")
        text.append(f"{utt} {words}\n")
        utt2spk.append(f"{utt} {utt}\n")
    (data / "wav.scp").write_text("".join(scp))
    (data / "text").write_text("".join(text))
    (data / "utt2spk").write_text("".join(utt2spk))
    (data / "spk2utt").write_text("".join(utt2spk))
    conf = root / "fbank.yaml"
    conf.write_text(yaml.safe_dump(load_package(package).feature_config))
    asr_cli("features", str(data), "--config", str(conf), "--ark-dir", str(data / "ark"))
    lexicon = root / "lexicon.txt"
    lexicon.write_text(LEXICON)
    lm_text = root / "lm_text"
    lm_text.write_text("".join(s + "\n" for s in LM_TEXT))
    arpa = root / "2gram.arpa"
    train_arpa([lm_text], arpa, order=2, memory="50M")
    # a grid on "dev" (the same audio: what is tested is that the choice travels, not its worth)
    asr_cli(
        "decode",
        str(package),
        str(data),
        str(root / "dev_grid"),
        "--lexicon",
        str(lexicon),
        "--word-lm",
        str(arpa),
        "--lm-weight=0.3,2.0",
        "--word-score=-1,1.5",
        "--no-progress",
    )
    # an experiment dir with that one "epoch", as asr package reads it
    exp = root / "exp"
    exp.mkdir()
    (exp / "epoch-1.pt").write_bytes(package.read_bytes())
    (exp / "history.tsv").write_text("epoch\tdev_loss\n1\t0.5\n")
    return {
        "root": root,
        "package": package,
        "data": data,
        "lexicon": lexicon,
        "arpa": arpa,
        "grid": root / "dev_grid",
        "exp": exp,
        "audio": root / "audio",
    }


def make_lm_package(setup: dict[str, Path], name: str, *extra: str) -> Path:
    out = setup["root"] / name
    asr_cli(
        "package",
        str(setup["exp"]),
        str(out),
        "--lexicon",
        str(setup["lexicon"]),
        "--lm",
        str(setup["arpa"]),
        "--tuned-on",
        str(setup["grid"]),
        *extra,
    )
    return out


@pytest.fixture(scope="module")
def embedded(setup: dict[str, Path]) -> Path:
    return make_lm_package(setup, "embedded.pt", "--embed")


def decode_tuned(setup: dict[str, Path], name: str, *extra: str) -> Path:
    """asr decode of the data dir with the lexicon, LM and the grid's tuned weights."""
    out = setup["root"] / name
    asr_cli(
        "decode",
        str(setup["package"]),
        str(setup["data"]),
        str(out),
        "--lexicon",
        str(setup["lexicon"]),
        "--word-lm",
        str(setup["arpa"]),
        "--tuned-on",
        str(setup["grid"]),
        "--no-progress",
        *extra,
    )
    return out


def transcribe_texts(model: Path, audio: Path, out: Path, *options: str) -> dict[str, dict]:
    asr_cli(
        "transcribe",
        str(model),
        str(audio),
        "--format",
        "json",
        "--output-dir",
        str(out),
        "--no-progress",
        *options,
    )
    return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}


def test_package_transcribes_with_its_lexicon_lm_and_tuned_weights_as_decode_does(
    setup: dict[str, Path], embedded: Path
) -> None:
    best = json.loads((setup["grid"] / "best.json").read_text())
    recorded = load_package(embedded).extra["decoder"]
    assert (recorded["lm_weight"], recorded["word_score"]) == (
        best["lm_weight"],
        best["word_score"],
    )
    # asr decode with the same lexicon, LM and tuned weights, on the same audio's features
    decoded = read_text(decode_tuned(setup, "test_lex") / "text")
    results = transcribe_texts(embedded, setup["audio"], setup["root"] / "t_lex")
    assert {utt: r["text"] for utt, r in results.items()} == decoded
    lexicon_words = {line.split()[0] for line in LEXICON.splitlines()}
    for result in results.values():
        assert set(result["text"].split()) <= lexicon_words
        assert result["decoder"].startswith("lexicon beam search, beam 50")
        assert f"word LM weight {best['lm_weight']:g}" in result["decoder"]
    # --no-lm: greedy, which says the lone "a" the lexicon lacks
    greedy = transcribe_texts(embedded, setup["audio"], setup["root"] / "t_greedy", "--no-lm")
    assert {u: r["text"] for u, r in greedy.items()} == UTTERANCES
    assert results["u2"]["text"] != greedy["u2"]["text"]
    assert all(r["decoder"] == "greedy" for r in greedy.values())


def test_vtln_transcription_chooses_and_decodes_as_decode_vtln_does(
    setup: dict[str, Path], embedded: Path
) -> None:
    # each utterance is its own speaker in the data dir, as each file is for transcription
    grid = "0.85:1.15:0.05"
    out = decode_tuned(setup, "test_lex_vtln", "--vtln", grid)
    decoded, warps = read_text(out / "text"), read_text(out / "spk2warp")
    # fp32, as asr decode runs: bf16 posteriors could tip a near tie between two factors
    out = setup["root"] / "t_vtln"
    results = transcribe_texts(embedded, setup["audio"], out, "--vtln", grid, "--precision", "fp32")
    assert {utt: r["text"] for utt, r in results.items()} == decoded
    assert {utt: r["vtln_warp"] for utt, r in results.items()} == {
        utt: float(w) for utt, w in warps.items()
    }
    assert set(warps.values()) != {"1"}  # the warp was used, not just allowed
    online = asr_cli("transcribe", str(embedded), "-", "--online", "--vtln", check=False)
    assert online.returncode != 0 and "--vtln do not apply" in online.stderr


def test_lexicon_search_words_carry_the_times_of_their_letters(embedded: Path) -> None:
    recognizer = load_model(embedded)
    parts = parts_of(UTTERANCES["u1"])
    result = recognizer.transcribe(signal(parts), sample_rate=RATE)
    assert result.text == "ab ba"
    # letter k starts at 0.3 + 0.4 k s and lasts 0.25 s; "ab" = letters 0-1, "ba" = letters 3-4
    starts = [0.3 + 0.4 * k for k in range(5)]
    (ab, ba) = result.words
    assert abs(ab.start - starts[0]) <= TIME_TOLERANCE
    assert abs(ba.start - starts[3]) <= TIME_TOLERANCE
    # raw ends (before extend_ends moved them towards the next word by up to 0.1 s)
    assert starts[1] + 0.25 - TIME_TOLERANCE <= ab.end <= starts[1] + 0.25 + 0.1 + TIME_TOLERANCE
    assert starts[4] + 0.25 - TIME_TOLERANCE <= ba.end <= starts[4] + 0.25 + 0.1 + TIME_TOLERANCE
    assert [u.text for u in result.units] == list("abba")
    assert all(0.5 < w.confidence <= 1.0 for w in result.words)


def test_nbest_scores_are_the_recorded_weights_sum(setup: dict[str, Path], embedded: Path) -> None:
    recorded = load_package(embedded).extra["decoder"]
    results = transcribe_texts(embedded, setup["audio"], setup["root"] / "t_nbest", "--nbest", "3")
    for result in results.values():
        nbest = result["nbest"]
        assert len(nbest) == 3 and nbest[0]["text"] == result["text"]
        assert len({n["text"] for n in nbest}) == 3
        assert [n["score"] for n in nbest] == sorted((n["score"] for n in nbest), reverse=True)
        for n in nbest:
            total = (
                n["am_score"]
                + recorded["lm_weight"] * n["lm_score"]
                + recorded["word_score"] * len(n["text"].split())
            )
            assert n["score"] == pytest.approx(total, abs=2e-3)
    # overrides on the command line win over the package's weights
    heavy = transcribe_texts(
        embedded,
        setup["audio"],
        setup["root"] / "t_heavy",
        "--lm-weight",
        "7",
        "--word-score",
        "-2",
        "--nbest",
        "2",
    )
    for result in heavy.values():
        n = result["nbest"][0]
        total = n["am_score"] + 7 * n["lm_score"] - 2 * len(n["text"].split())
        assert n["score"] == pytest.approx(total, abs=2e-3)
        assert "word LM weight 7, word score -2" in result["decoder"]


def test_python_api_takes_the_same_options(embedded: Path) -> None:
    wave = signal(parts_of(UTTERANCES["u2"]))
    default = load_model(embedded).transcribe(wave, sample_rate=RATE)
    plain = load_model(embedded, use_lm=False).transcribe(wave, sample_rate=RATE)
    assert plain.text == "ab a" and default.text != plain.text
    beam = load_model(embedded, use_lm=False, beam_size=4, nbest=2).transcribe(
        wave, sample_rate=RATE
    )
    # prefix beam search: the best is greedy's here (sharp posteriors); scores are log probs
    assert beam.text == "ab a" and len(beam.nbest) == 2
    assert beam.nbest[0].score >= beam.nbest[1].score and beam.nbest[0].score <= 0.0
    narrow = load_model(embedded, beam_size=1, lm_weight=0.0, word_score=0.0)
    assert narrow.search.lexicon_decoder.options.beam_size == 1
    assert narrow.transcribe(wave, sample_rate=RATE).text.split()[0] == "ab"


def test_missing_or_changed_lm_is_one_line_with_the_way_out(setup: dict[str, Path]) -> None:
    root = setup["root"] / "by_path"
    root.mkdir()
    lexicon, arpa = root / "lexicon.txt", root / "lm.arpa"
    lexicon.write_bytes(setup["lexicon"].read_bytes())
    arpa.write_bytes(setup["arpa"].read_bytes())
    out = root / "model.pt"
    asr_cli(
        "package",
        str(setup["exp"]),
        str(out),
        "--lexicon",
        str(lexicon),
        "--lm",
        str(arpa),
        "--tuned-on",
        str(setup["grid"]),
    )
    wav = str(setup["audio"] / "u1.wav")
    assert asr_cli("transcribe", str(out), wav, "--no-progress").stdout.endswith("\tab ba\n")
    arpa.rename(root / "moved.arpa")
    done = asr_cli("transcribe", str(out), wav, "--no-progress", check=False)
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(arpa) in lines[0] and "--no-lm" in lines[0], lines
    assert "lm file is missing" in lines[0]
    fallback = asr_cli("transcribe", str(out), wav, "--no-progress", "--no-lm")
    assert fallback.stdout.endswith("\tab ba\n")
    (root / "moved.arpa").rename(arpa)
    with open(lexicon, "a") as handle:
        handle.write("bb b b\n")
    changed = r"lexicon.txt: the model.s lexicon file changed.*--no-lm"
    with pytest.raises(PackageError, match=changed):
        load_model(out)
    assert load_model(out, use_lm=False).search.description == "greedy"


def test_bad_search_requests_are_one_line(embedded: Path, setup: dict[str, Path]) -> None:
    wav = str(setup["audio"] / "u1.wav")
    for options, message in [
        (["--nbest", "0"], "--nbest 0: must be at least 1"),
        (["--beam-size", "0"], "--beam-size 0: must be at least 1"),
        (["--no-lm", "--nbest", "2"], "nbest 2 needs a beam of at least 2 hypotheses"),
        (["--no-lm", "--lm-weight", "1"], "an LM weight or word score needs the lexicon + LM"),
    ]:
        done = asr_cli("transcribe", str(embedded), wav, "--no-progress", *options, check=False)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and message in lines[0], (options, lines)
    with pytest.raises(ConfigError, match="nbest 0"):
        load_model(embedded, nbest=0)


def _whisper_utils():
    """whisper's writers (whisper/utils.py, standard library only), loaded without the rest of
    whisper (whose model needs triton and numba): installed by `make setup` with --no-deps."""
    spec = importlib.util.find_spec("whisper")
    if spec is None or spec.origin is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("openai-whisper is not installed (make setup installs it)")
        pytest.skip("openai-whisper is not installed (make setup installs it)")
    path = Path(spec.origin).parent / "utils.py"
    module_spec = importlib.util.spec_from_file_location("whisper_utils_only", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _srt_cues(text: str) -> list[tuple[str, str, str]]:
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        start, _, end = lines[1].partition(" --> ")
        cues.append((start, end, " ".join(lines[2:])))
    return cues


def test_whisper_writers_read_our_json(setup: dict[str, Path], embedded: Path, tmp_path) -> None:
    utils = _whisper_utils()
    long_text = "ab ba b ab ba b ab ba b ab ba b ab ba b ab ba b"  # > 7 s: several segments
    wave = signal(parts_of(long_text) + [("sil", 1.2)] + parts_of("ba ab"), seed=5)
    wav = write_wav(tmp_path / "long.wav", wave)
    out = tmp_path / "ours"
    asr_cli(
        "transcribe",
        str(embedded),
        str(wav),
        "--format",
        "json,srt",
        "--output-dir",
        str(out),
        "--no-progress",
    )
    result = json.loads((out / "long.json").read_text())
    assert result["language"] == "en"
    segments = result["segments"]
    assert len(segments) >= 3 and [s["id"] for s in segments] == list(range(len(segments)))
    words = [w for s in segments for w in s["words"]]
    assert [w["word"].strip() for w in words] == result["text"].split()
    assert [(w["start"], w["end"]) for w in words] == [
        (w["start"], w["end"]) for w in result["words"]
    ]
    # whisper's own writers, given our JSON: its text lines are our segments, its SRT our cues,
    # and one word per cue gives each word's own time
    theirs = tmp_path / "whisper"
    theirs.mkdir()
    utils.get_writer("txt", str(theirs))(result, str(wav))
    assert (theirs / "long.txt").read_text().splitlines() == [s["text"].strip() for s in segments]
    utils.get_writer("srt", str(theirs))(result, str(wav))
    assert [c[2] for c in _srt_cues((theirs / "long.srt").read_text())] == [
        c[2] for c in _srt_cues((out / "long.srt").read_text())
    ]
    utils.get_writer("srt", str(theirs))(result, str(wav), {"max_words_per_line": 1})
    per_word = _srt_cues((theirs / "long.srt").read_text())
    stamp = utils.format_timestamp
    assert per_word == [
        (
            stamp(w["start"], always_include_hours=True, decimal_marker=","),
            stamp(w["end"], always_include_hours=True, decimal_marker=","),
            w["word"].strip(),
        )
        for w in words
    ]
    utils.get_writer("tsv", str(theirs))(result, str(wav))
    rows = (theirs / "long.tsv").read_text().splitlines()[1:]
    assert [int(r.split("\t")[0]) for r in rows] == [round(1000 * s["start"]) for s in segments]


def test_model_card_from_package_and_training(
    setup: dict[str, Path], tiny_trained_model, tmp_path
) -> None:
    wer = tmp_path / "wer"
    wer.write_text("%WER 12.50 [ 1 / 8, 0 ins, 1 del, 0 sub ]\n%SER 50.00 [ 1 / 2 ]\n")
    out = make_lm_package(
        setup,
        "carded.pt",
        "--embed",
        "--result",
        f"tones test={wer}",
        "--license",
        "CC0-1.0",
        "--card",
    )
    card = (out.parent / "MODEL_CARD.md").read_text()
    shown = asr_cli("info", str(out)).stdout
    assert shown == card
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "CC0-1.0" and front["language"] == "en"
    metric = front["model-index"][0]["results"][0]
    assert metric["dataset"]["name"] == "tones test"
    assert metric["metrics"] == [{"type": "wer", "value": 12.5}]
    package = load_package(out)
    params = sum(t.numel() for t in package.state_dict.values() if t.is_floating_point())
    assert f"- parameters: {params:,}" in card
    assert "1 x 3 forward-only RNN, CTC output over 4 tokens" in card
    assert "- lexicon: embedded" in card and "- language model: embedded" in card
    best = json.loads((setup["grid"] / "best.json").read_text())
    assert f"LM weight {best['lm_weight']}, word score {best['word_score']}" in card
    assert "| tones test | %WER | 12.5 |" in card
    assert "training set: not recorded" in card or "- not recorded" in card
    # a package asr train wrote records its data, hours, precision, version and command
    trained, _ = tiny_trained_model
    extra = load_package(trained).extra
    data_dir = Path(extra["training_data"]["train_dir"])
    frames = sum(FeatureSet(data_dir).num_frames.values())
    assert extra["training_data"]["hours"] == pytest.approx(frames * 0.01 / 3600, abs=1e-4)
    assert extra["precision"] == "fp32"
    text = model_card(load_package(trained), "final.pt")
    assert f"- training set: {data_dir} (60 utterances," in text
    assert "- precision: fp32" in text and "- asr version: 0.1.0" in text


def test_score_line_reader_refuses_what_is_not_a_score(tmp_path) -> None:
    good = tmp_path / "per"
    good.write_text("# a comment\n%PER 20.41 [ 100 / 490, 1 ins, 2 del, 97 sub ]\n")
    assert read_score_line(good) == {
        "metric": "PER",
        "value": 20.41,
        "line": "%PER 20.41 [ 100 / 490, 1 ins, 2 del, 97 sub ]",
    }
    bad = tmp_path / "bad"
    bad.write_text("no score here\n")
    with pytest.raises(ConfigError, match="bad: no '%WER"):
        read_score_line(bad)
    nan = tmp_path / "nan"
    nan.write_text("%WER nan [ 0 / 0 ]\n")
    with pytest.raises(ConfigError, match="the score is NaN"):
        read_score_line(nan)


def _same_words(a, b) -> None:
    assert a.text == b.text
    assert [(w.start, w.end) for w in a.words] == [(w.start, w.end) for w in b.words]
    assert [w.confidence for w in a.words] == pytest.approx([w.confidence for w in b.words], 1e-2)


def test_precision_auto_follows_the_cpu_and_bf16_reads_as_fp32(
    setup: dict[str, Path], embedded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sorted(setup["audio"].glob("*.wav"))
    monkeypatch.setenv("ASR_CPU_BF16", "0")  # as on a CPU without native bf16
    fp32 = load_model(embedded)
    assert fp32.precision == "fp32"
    with pytest.raises(ConfigError, match="ASR_CPU_BF16=0 says this CPU has no native bf16"):
        load_model(embedded, precision="bf16")
    env = {**os.environ, "ASR_CPU_BF16": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "asr", "transcribe", str(embedded), str(files[0]), "--bf16"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "precision bf16: ASR_CPU_BF16=0 says this CPU has no native bf16" in done.stderr
    monkeypatch.setenv("ASR_CPU_BF16", "1")  # the native path (emulated where the CPU lacks it)
    bf16 = load_model(embedded)
    assert bf16.precision == "bf16"
    for path in files:
        _same_words(bf16.transcribe(path), fp32.transcribe(path))
    monkeypatch.setenv("ASR_CPU_BF16", "0")
    assert load_model(embedded, precision="fp32").transcribe(files[0]).precision == "fp32"


def test_onnxruntime_backend_gives_the_torch_transcripts(
    setup: dict[str, Path], embedded: Path
) -> None:
    reason = onnx_available()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    files = sorted(setup["audio"].glob("*.wav"))
    torch_path = load_model(embedded, precision="fp32")
    onnx = load_model(embedded, backend="onnxruntime")
    assert onnx.precision == "fp32" and onnx._onnx is not None
    for (_, ours), (_, theirs) in zip(
        onnx.transcribe_many(files), torch_path.transcribe_many(files), strict=True
    ):
        _same_words(ours, theirs)
        assert [w.confidence for w in ours.words] == pytest.approx(
            [w.confidence for w in theirs.words], abs=1e-4
        )
    done = asr_cli(
        "transcribe",
        str(embedded),
        str(files[0]),
        "--backend",
        "onnxruntime",
        "--bf16",
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "asr transcribe: error: the onnxruntime backend runs the exported network in fp32"
    )
