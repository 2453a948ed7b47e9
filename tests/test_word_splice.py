"""Spliced utterances: every word of the new transcript is the audio of that word, in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.data.datadir import DataDir
from asr.data.pause_crops import speech_runs
from asr.data.word_splice import splice_words
from asr.errors import ConfigError, DataDirError

RATE = 8000
TONES = {"YES": 500.0, "NO": 1500.0}


def _recording(words: list[str], rng: np.random.Generator) -> np.ndarray:
    """Tone bursts (one frequency per word) between pauses, over faint noise."""
    parts = [np.zeros(int(rng.uniform(0.4, 0.8) * RATE))]
    for word in words:
        t = np.arange(int(rng.uniform(0.25, 0.4) * RATE)) / RATE
        parts.append(0.5 * np.sin(2 * np.pi * TONES[word] * t) * np.hanning(len(t)) ** 0.2)
        parts.append(np.zeros(int(rng.uniform(0.2, 0.4) * RATE)))
    wave = np.concatenate(parts)
    return wave + 0.002 * rng.standard_normal(len(wave))


def _datadir(root: Path, transcripts: dict[str, list[str]]) -> Path:
    rng = np.random.default_rng(0)
    data, wavs = root / "src", root / "wavs"
    data.mkdir()
    wavs.mkdir()
    for utt, words in transcripts.items():
        sf.write(wavs / f"{utt}.wav", _recording(words, rng), RATE, subtype="PCM_16")
    utts = sorted(transcripts)
    (data / "wav.scp").write_text("".join(f"{u} {wavs / u}.wav\n" for u in utts))
    (data / "text").write_text("".join(f"{u} {' '.join(transcripts[u])}\n" for u in utts))
    (data / "utt2spk").write_text("".join(f"{u} {u.split('_')[0]}\n" for u in utts))
    speakers = sorted({u.split("_")[0] for u in utts})
    (data / "spk2utt").write_text(
        "".join(f"{s} {' '.join(u for u in utts if u.startswith(s + '_'))}\n" for s in speakers)
    )
    return data


def _heard(wave: np.ndarray) -> list[str]:
    """The words in the audio: each speech run named by its dominant frequency."""
    words = []
    for start, end in speech_runs(wave, RATE):
        piece = wave[int(start * RATE) : int(end * RATE)]
        freqs = np.fft.rfftfreq(len(piece), 1.0 / RATE)
        peak = freqs[int(np.argmax(np.abs(np.fft.rfft(piece))))]
        words.append(min(TONES, key=lambda w: abs(TONES[w] - peak)))
    return words


TRANSCRIPTS = {
    "a_1": ["NO", "NO", "YES"],
    "a_2": ["NO", "YES", "NO", "NO"],
    "a_3": ["NO", "NO", "NO"],
    "b_1": ["YES", "NO"],
}


def test_spliced_audio_says_its_transcript(tmp_path: Path) -> None:
    src = _datadir(tmp_path, TRANSCRIPTS)
    report = splice_words(src, tmp_path / "out", count=40, max_words=6, seed=1)
    assert report.used == 4 and report.spliced == 40 and not report.not_used
    data = DataDir.load(tmp_path / "out")
    new = [u for u in data.utt_ids if "-splice" in u]
    assert len(new) == 40 and set(TRANSCRIPTS) <= set(data.utt2spk)  # originals kept
    lengths, starts_with_yes = set(), 0
    for utt in new:
        words = data.text[utt].split()
        wave, rate = data.load_audio(utt)
        assert rate == RATE
        # a pause cut to nothing can merge two runs; the words are the words all the same
        heard = _heard(wave)
        if len(heard) == len(words):
            assert heard == words, utt
        else:
            assert len(heard) < len(words)
        assert data.utt2spk[utt] == utt.split("-")[0]  # words of one speaker only
        if data.utt2spk[utt] == "b":
            assert len(words) <= 6 and set(words) <= {"YES", "NO"}
        lengths.add(len(words))
        starts_with_yes += words[0] == "YES"
        # it starts and ends in silence, as the recordings do
        assert np.abs(wave[: int(0.3 * RATE)]).max() < 0.02
        assert np.abs(wave[-int(0.1 * RATE) :]).max() < 0.02
    assert lengths == set(range(1, 7))
    # speaker a's recordings never start with YES; the spliced ones do, often
    assert starts_with_yes >= 10
    exact = sum(len(_heard(data.load_audio(u)[0])) == len(data.text[u].split()) for u in new)
    assert exact >= 20
    # the same seed, the same utterances
    splice_words(src, tmp_path / "again", count=40, max_words=6, seed=1)
    again = DataDir.load(tmp_path / "again")
    assert again.text == data.text
    assert np.array_equal(again.load_audio(new[3])[0], data.load_audio(new[3])[0])


def test_recordings_whose_runs_do_not_match_are_not_used(tmp_path: Path, capsys) -> None:
    transcripts = dict(TRANSCRIPTS)
    src = _datadir(tmp_path, transcripts)
    text = (src / "text").read_text().replace("a_3 NO NO NO", "a_3 NO NO")
    (src / "text").write_text(text)
    report = splice_words(src, tmp_path / "out", count=5, keep_originals=False)
    assert report.not_used == {"a_3": "3 speech runs for 2 words"}
    assert len(DataDir.load(tmp_path / "out").utt2spk) == 5
    argv = ["data", "splice-words", str(src), str(tmp_path / "cli"), "--count", "3"]
    assert main(argv) == 0
    assert "1 not used (speech runs did not match the words)" in capsys.readouterr().out
    (src / "text").write_text("".join(f"{u} YES YES YES YES YES\n" for u in sorted(transcripts)))
    with pytest.raises(DataDirError, match="no recording splits into one speech run per word"):
        splice_words(src, tmp_path / "none", count=5)
    assert not (tmp_path / "none").exists()


def _tone(piece: np.ndarray) -> str:
    freqs = np.fft.rfftfreq(len(piece), 1.0 / RATE)
    peak = freqs[int(np.argmax(np.abs(np.fft.rfft(piece))))]
    return min(TONES, key=lambda w: abs(TONES[w] - peak))


def test_fragments_put_an_unlabelled_piece_of_a_word_at_each_end(tmp_path: Path) -> None:
    src = _datadir(tmp_path, TRANSCRIPTS)
    splice_words(src, tmp_path / "plain", count=12, max_words=4, seed=3, keep_originals=False)
    argv = ["data", "splice-words", str(src), str(tmp_path / "frag"), "--count", "12"]
    assert (
        main([*argv, "--max-words", "4", "--seed", "3", "--fragments", "1", "--no-originals"]) == 0
    )
    plain, frag = DataDir.load(tmp_path / "plain"), DataDir.load(tmp_path / "frag")
    assert frag.text == plain.text  # the fragments are not transcribed
    longest_word = 0.4 + 2 * 0.03  # the longest tone burst of _recording with its margins
    for utt in plain.utt_ids:
        inner, _ = plain.load_audio(utt)
        outer, _ = frag.load_audio(utt)
        # the utterance without fragments, sample for sample, between a head and a tail
        starts = [
            k
            for k in range(len(outer) - len(inner) + 1)
            if np.array_equal(outer[k : k + len(inner)], inner)
        ]
        assert len(starts) == 1, utt
        head, tail = outer[: starts[0]], outer[starts[0] + len(inner) :]
        for piece in (head, tail):
            # a sounding piece of a word, at most half of one
            assert 0 < len(piece) <= 0.5 * longest_word * RATE
            assert np.abs(piece).max() > 0.1
            assert _tone(piece) in TONES
        # the head is a word's end: it fades out; the tail a word's onset: it starts quiet
        assert np.abs(head[-int(0.02 * RATE) :]).max() < 0.02
        assert np.abs(tail[: int(0.02 * RATE)]).max() < 0.02


def test_a_fragment_label_transcribes_each_fragment_drawn_and_nothing_else(
    tmp_path: Path,
) -> None:
    src = _datadir(tmp_path, TRANSCRIPTS)
    common = dict(count=40, max_words=3, seed=5, keep_originals=False, fragments=0.5)
    splice_words(src, tmp_path / "plain", **common)
    splice_words(src, tmp_path / "label", fragment_label="[noise]", **common)
    plain, label = DataDir.load(tmp_path / "plain"), DataDir.load(tmp_path / "label")
    heads = tails = 0
    for utt in plain.utt_ids:
        words = label.text[utt].split()
        inner, _ = DataDir.load(tmp_path / "plain").load_audio(utt)
        outer, _ = label.load_audio(utt)
        assert np.array_equal(outer, inner)  # the label changes the text, not the audio
        # the words between the labels are the unlabelled run's transcript
        core = words[(words[0] == "[noise]") :]
        core = core[: len(core) - (core[-1] == "[noise]")]
        assert " ".join(core) == plain.text[utt]
        assert "[noise]" not in core
        heads += words[0] == "[noise]"
        tails += words[-1] == "[noise]"
    # with chance 0.5 at each end, some utterances have a labelled fragment and some not
    assert 0 < heads < len(plain.utt_ids) and 0 < tails < len(plain.utt_ids)
    # a labelled head is a fragment of a word before the leading silence: the audio of a
    # labelled utterance starts in sound, an unlabelled one in silence
    for utt in plain.utt_ids:
        outer, _ = label.load_audio(utt)
        starts_loud = np.abs(outer[: int(0.005 * RATE)]).max() > 0.05
        assert starts_loud == (label.text[utt].split()[0] == "[noise]"), utt
    with pytest.raises(ConfigError, match="one word"):
        splice_words(src, tmp_path / "bad", count=3, fragments=0.5, fragment_label="a b")


def test_fragments_is_a_probability(tmp_path: Path) -> None:
    src = _datadir(tmp_path, TRANSCRIPTS)
    with pytest.raises(ConfigError, match="fragments"):
        splice_words(src, tmp_path / "out", count=3, fragments=1.5)
    assert not (tmp_path / "out").exists()
