"""The synthetic corpus (asr prepare synth) made with the real engines, at a tiny size.

The engines are Debian packages that `make` installs; without them these tests skip, except
under CI=true, where their absence is an error.
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.corpora.synthetic import corpus as synth
from asr.corpora.synthetic.voice import Prosody, Voice
from asr.data.datadir import DataDir
from asr.data.validate import validate_datadir
from asr.units.phones import PHONES_39

ENGINES = ("espeak-ng", "flite", "festival")


def _need_engines() -> None:
    usable, missing = synth.available_engines(ENGINES)
    if missing:
        message = f"synthesisers missing: {missing} ('make setup' installs them)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def _config(**changes: object) -> synth.SynthConfig:
    config = synth.SynthConfig(hours=0.01, dev_utts=6, test_utts=12)
    for key, value in changes.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, synth.SynthReport]:
    _need_engines()
    out = tmp_path_factory.mktemp("synth") / "data"
    report = synth.prepare_synth(out, _config(), jobs=2, progress=False)
    return out, report


def _table(path: Path) -> dict[str, str]:
    rows = (line.split(maxsplit=1) for line in path.read_text().splitlines())
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def test_splits_are_valid_kaldi_dirs_with_labels(corpus: tuple[Path, synth.SynthReport]) -> None:
    out, report = corpus
    for split in synth.SPLITS:
        assert validate_datadir(out / split) == []
        data = DataDir.load(out / split)
        phones = _table(out / split / "phones")
        assert set(phones) == set(data.utt2spk) == set(data.text)
        assert report.utterances[split] == len(data.utt2spk) > 0
        for utt, sequence in phones.items():
            assert sequence, utt
            assert set(sequence.split()) <= set(PHONES_39) - {"sil"}, utt
        for utt, path in data.wav_scp.items():
            info = sf.info(path)
            assert info.samplerate == 16000 and info.channels == 1 and info.format == "FLAC"
            assert abs(info.duration - data.utt2dur[utt]) < 1e-3
    assert report.utterances["dev"] == 6 and report.utterances["test"] == 12


def test_test_voices_and_sentences_never_in_training(
    corpus: tuple[Path, synth.SynthReport],
) -> None:
    out, _ = corpus
    train, dev, test = (DataDir.load(out / s) for s in synth.SPLITS)
    test_voices = {Voice.parse(v).id for v in synth.DEFAULT_TEST_VOICES}
    assert set(test.utt2spk.values()) == test_voices  # 12 utterances, 6 voices: all used
    assert not set(train.utt2spk.values()) & test_voices
    assert not set(dev.utt2spk.values()) & test_voices
    dev_only = {Voice.parse(v).id for v in synth.DEFAULT_DEV_VOICES}
    assert not set(train.utt2spk.values()) & dev_only
    train_sentences = set(train.text.values())
    assert not train_sentences & set(test.text.values())
    assert not train_sentences & set(dev.text.values())
    assert not set(dev.text.values()) & set(test.text.values())
    # every engine speaks in training
    engines = {u.split("-")[0] for u in train.utt2spk}
    assert engines == {"espeak", "flite", "festival"}


def test_phone_times_lie_inside_the_audio_and_cover_speech(
    corpus: tuple[Path, synth.SynthReport],
) -> None:
    out, _ = corpus
    for split in synth.SPLITS:
        data = DataDir.load(out / split)
        phones = {u: p.split() for u, p in _table(out / split / "phones").items()}
        ctm: dict[str, list[tuple[float, float, str]]] = {}
        for line in (out / split / "phones.ctm").read_text().splitlines():
            utt, channel, start, dur, phone = line.split()
            assert channel == "1"
            ctm.setdefault(utt, []).append((float(start), float(dur), phone))
        assert set(ctm) == set(phones)  # every engine here gives times
        for utt, rows in ctm.items():
            assert [r[2] for r in rows] == phones[utt]
            starts = [r[0] for r in rows]
            assert starts == sorted(starts)
            assert rows[-1][0] + rows[-1][1] <= data.utt2dur[utt] + 0.02
            # the phones span speech: the audio inside them is louder than outside
            wave, rate = sf.read(data.wav_scp[utt], dtype="float32")
            inside = np.zeros(len(wave), dtype=bool)
            for start, dur, _ in rows:
                inside[int(start * rate) : int((start + dur) * rate)] = True
            if (~inside).sum() > rate // 20:
                assert np.sqrt(np.mean(wave[inside] ** 2)) > 2 * np.sqrt(
                    np.mean(wave[~inside] ** 2)
                ), utt


def test_same_seed_same_corpus_whatever_the_jobs(
    corpus: tuple[Path, synth.SynthReport], tmp_path: Path
) -> None:
    out, _ = corpus
    again = tmp_path / "again"
    synth.prepare_synth(again, _config(), jobs=1, progress=False)
    for split in synth.SPLITS:
        for name in ("text", "phones", "phones.ctm", "utt2spk", "utt2voice", "utt2dur"):
            assert filecmp.cmp(out / split / name, again / split / name, shallow=False), name
        first = DataDir.load(out / split).wav_scp
        second = DataDir.load(again / split).wav_scp
        for utt in first:
            assert filecmp.cmp(first[utt], second[utt], shallow=False), utt
    other = tmp_path / "other"
    synth.prepare_synth(other, _config(seed=1), jobs=2, progress=False)
    assert _table(other / "train" / "text") != _table(out / "train" / "text")


def test_training_speed_perturbation_scales_audio_and_times(
    corpus: tuple[Path, synth.SynthReport], tmp_path: Path
) -> None:
    """A perturbed training utterance is the plain synthesis played at its speed factor."""
    out, _ = corpus
    voices = _table(out / "train" / "utt2voice")
    utt = next(u for u, v in voices.items() if u.startswith("flite-"))
    fields = dict(item.split("=") for item in voices[utt].split()[1:])
    speed, rate, pitch = float(fields["speed"]), float(fields["rate"]), float(fields["pitch"])
    assert 0.9 <= speed <= 1.1 and speed != 1.0
    for split in ("dev", "test"):
        assert all("speed=1.0" in v for v in _table(out / split / "utt2voice").values())
    from asr.corpora.synthetic import flite

    plain = flite.synthesize(
        _table(out / "train" / "text")[utt], Voice.parse(voices[utt].split()[0]),
        Prosody(rate, pitch),
    )  # fmt: skip
    duration = DataDir.load(out / "train").utt2dur[utt]
    assert duration == pytest.approx(plain.duration / speed, abs=0.002)
    ctm = [line.split() for line in (out / "train" / "phones.ctm").read_text().splitlines()]
    first = next(float(r[2]) for r in ctm if r[0] == utt)
    assert first == pytest.approx(plain.phones[0].start / speed, abs=0.002)


def test_unreadable_prompt_file_is_named_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _need_engines()
    good = tmp_path / "good.txt"
    words = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
             "fifteen sixteen seventeen eighteen nineteen twenty").split()  # fmt: skip
    sentences = [f"the {a} ships sailed {b} miles north at dawn" for a in words for b in words]
    long = " ".join(["the long sentence goes on"] * 5)  # 25 words: an LM sentence, no prompt
    good.write_text(". ".join(s.capitalize() for s in [*sentences, long]) + ".\n")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"A fine sentence here.\nAnother one.\nBroken \xe9 byte here.\n")
    config = _config(text_files=[str(bad), str(good)], engines=["flite"],
                     test_voices=["flite:rms"], dev_voices=[])  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="asr.corpora.synthetic.corpus"):
        report = synth.prepare_synth(tmp_path / "out", config, jobs=1, progress=False)
    messages = [r.getMessage() for r in caplog.records]
    assert any(str(bad) in m and ":3:" in m and "UTF-8" in m for m in messages), messages
    texts = set(_table(tmp_path / "out" / "train" / "text").values())
    assert texts <= set(sentences)
    assert report.engines == ["flite"]

    # the LM text: everything readable, of any length, but never a dev or test sentence
    lm_text = (tmp_path / "out" / "local" / "lm_text").read_text().splitlines()
    held_out = set(_table(tmp_path / "out" / "test" / "text").values())
    held_out |= set(_table(tmp_path / "out" / "dev" / "text").values())
    assert len(held_out) == 18
    assert not held_out & set(lm_text)
    assert set(lm_text) == (set(sentences) | {long}) - held_out
    assert report.lm_sentences == len(lm_text)


def test_missing_engine_is_skipped_with_its_package_named(tmp_path: Path) -> None:
    """flite off the PATH: the corpus is made from the other engines, with a warning."""
    _need_engines()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("festival"), bin_dir / "festival")
    env = dict(os.environ, PATH=str(bin_dir))
    command = [sys.executable, "-m", "asr", "prepare", "synth", str(tmp_path / "out")]
    command += ["--hours", "0.003", "--dev-utts", "3", "--test-utts", "4", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    warnings = [line for line in done.stderr.splitlines() if "flite" in line]
    assert (
        len(warnings) == 1 and "not installed" in warnings[0] and "(Debian: flite)" in warnings[0]
    )
    speakers = set(DataDir.load(tmp_path / "out" / "train").utt2spk.values())
    assert speakers and not any(s.startswith("flite") for s in speakers)
    assert any(s.startswith("festival") for s in speakers)


def test_a_sentence_an_engine_cannot_say_is_dropped_and_counted(tmp_path: Path) -> None:
    _need_engines()
    plan = [
        synth.PlannedUtterance("festival-kal-train000000", "train", "", Voice("festival",
                               "kal_diphone"), Prosody()),
        synth.PlannedUtterance("festival-kal-train000001", "train", "show me the ships",
                               Voice("festival", "kal_diphone"), Prosody()),
    ]  # fmt: skip
    made = synth._make_batch((tmp_path, plan))
    assert made[0].path is None and "empty sentence" in made[0].error
    assert made[1].path is not None and Path(made[1].path).is_file()
    assert not (tmp_path / "train" / "flac" / "festival-kal-train000000.flac").exists()


def test_unknown_voice_is_a_config_error() -> None:
    _need_engines()
    from asr.errors import ConfigError

    with pytest.raises(ConfigError, match="flite:nobody"):
        synth.plan_corpus(_config(test_voices=["flite:nobody"]), list(ENGINES))


def test_a_rerun_leaves_no_stale_feature_table(tmp_path: Path) -> None:
    """Features of an earlier corpus in the same folder must not survive a new synthesis."""
    _need_engines()
    config = _config(engines=["flite"], test_voices=["flite:rms"], dev_voices=[])
    synth.prepare_synth(tmp_path / "out", config, jobs=1, progress=False)
    stale = tmp_path / "out" / "train" / "feats.scp"
    stale.write_text("".join(f"{u} old.ark:1\n" for u in DataDir.load(stale.parent).utt_ids))
    synth.prepare_synth(tmp_path / "out", config, jobs=1, progress=False)
    assert not stale.exists()
    assert validate_datadir(tmp_path / "out" / "train") == []
