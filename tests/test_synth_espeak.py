"""espeak-ng through libespeak-ng: voices, audio, phone labels and times, prosody, errors.

These need libespeak-ng and its data (Debian: espeak-ng). Without them the tests skip, except
under CI=true, where the package must be installed and their absence is a failure.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from asr.corpora.synthetic import espeak
from asr.corpora.synthetic.phones import espeak_to_arpabet
from asr.corpora.synthetic.voice import Prosody, SynthesisError, Voice
from asr.units.phones import PHONES_39, SILENCE

# varied English, with numbers, letters, abbreviations and punctuation that espeak expands
SENTENCES = (
    "Show me the ships in the harbor near Norfolk.",
    "She measured the pleasure of the treasure; judge the church's chimney!",
    "On 12/03/1999 at 4:35pm, Dr. Smith paid $1,234.56 for 3 XLR cables.",
    "The FBI, NASA and the U.S.A.: A B C, X Y Z, 21st, 2nd, 99.9%.",
    "Why would the thoughtful boy's aunt hear a curious tour of the fire tower?",
    "Bottle, button, little, kitten; car, card, care, cure, hour, idea, poor, sure.",
    "Whether the weather is warm, the loch near Edinburgh was calm.",
)


@pytest.fixture(scope="module", autouse=True)
def need_espeak() -> None:
    if not espeak.available():
        message = "libespeak-ng not available (install the espeak-ng package)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def say(text: str, name: str = "en-us", rate: float = 1.0, pitch: float = 1.0):  # noqa: ANN201
    return espeak.synthesize(text, Voice(espeak.ENGINE, name), Prosody(rate, pitch))


def test_voices_cover_every_accent_and_variant_and_all_speak() -> None:
    voices = espeak.voices()
    assert len(voices) == len(espeak.ACCENTS) * len(espeak.VARIANTS)
    assert len({v.id for v in voices}) == len(voices)
    assert {v.name.partition("+")[0] for v in voices} == set(espeak.ACCENTS)
    for voice in voices:
        assert voice.engine == espeak.ENGINE
        result = espeak.synthesize("yes", voice, Prosody())
        assert [p.phone for p in result.phones][-2:] == ["eh", "s"], voice


def test_prosody_range_is_natural_and_contains_the_default() -> None:
    ranges = espeak.prosody_range()
    for key in ("rate", "pitch"):
        lo, hi = ranges[key]
        assert 0.5 < lo < 1.0 < hi < 1.5


@pytest.mark.parametrize("accent", espeak.ACCENTS)
def test_every_mnemonic_espeak_emits_maps(accent: str) -> None:
    seen: set[str] = set()
    for text in SENTENCES:
        _, events, _ = espeak._speak(text, accent, 175, 50, 50)
        seen |= {mnemonic for mnemonic, _ in events}
        for mnemonic, _ in events:
            assert set(espeak_to_arpabet(mnemonic, accent)) <= set(PHONES_39) - {SILENCE}
    assert len(seen) > 35  # the sentences reach most of the inventory


def test_known_words_in_order() -> None:
    assert [p.phone for p in say("ship").phones] == ["sh", "ih", "p"]
    assert [p.phone for p in say("fish and chips").phones][:3] == ["f", "ih", "sh"]


def test_accents_differ_where_they_should() -> None:
    # "far" is rhotic in American English, not in southern British English
    assert [p.phone for p in say("far", "en-us").phones] == ["f", "aa", "r"]
    assert [p.phone for p in say("far", "en-gb").phones] == ["f", "aa"]


def test_output_is_16khz_float32_in_range() -> None:
    result = say("The quick brown fox jumps over the lazy dog.", "en-gb+f3")
    assert result.sample_rate == 16000
    assert result.audio.dtype == np.float32 and result.audio.ndim == 1
    assert np.abs(result.audio).max() <= 1.0
    assert 1.0 < result.duration < 6.0


@pytest.mark.parametrize("name", ["en-us", "en-gb-x-rp+m3", "en-029+f5"])
def test_phone_times_are_ordered_inside_the_audio_and_on_speech(name: str) -> None:
    result = say("Hello, this is a test. Please, wait a moment, then speak.", name)
    starts = [p.start for p in result.phones]
    assert starts == sorted(starts)
    for phone in result.phones:
        assert phone.phone in PHONES_39 and phone.phone != SILENCE
        assert 0.0 <= phone.start <= phone.end <= result.duration
    for before, after in zip(result.phones, result.phones[1:], strict=False):
        assert before.end <= after.start + 1e-9  # no overlaps
    # energy: what the phones cover is speech, what they leave out (pauses) is quiet
    covered = np.zeros(len(result.audio), dtype=bool)
    for phone in result.phones:
        covered[int(phone.start * 16000) : int(phone.end * 16000)] = True
    assert covered.mean() > 0.6 and (~covered).sum() > 0.2 * 16000  # the commas gave pauses
    speech = np.sqrt(np.mean(result.audio[covered] ** 2))
    pauses = np.sqrt(np.mean(result.audio[~covered] ** 2))
    assert speech > 5 * pauses
    # and most phones carry sound of their own
    loud = [
        np.sqrt(np.mean(result.audio[int(p.start * 16000) : int(p.end * 16000) + 1] ** 2))
        > 0.1 * speech
        for p in result.phones
    ]
    assert np.mean(loud) > 0.8


def test_faster_rate_gives_shorter_audio_and_phones() -> None:
    text = "List the cruisers whose fuel level is less than fifty percent."
    slow, fast = say(text, rate=0.85), say(text, rate=1.2)
    assert fast.duration < 0.85 * slow.duration
    assert [p.phone for p in fast.phones] == [p.phone for p in slow.phones]
    assert fast.phones[-1].end < slow.phones[-1].end


def median_f0(audio: np.ndarray, rate: int = 16000) -> float:
    """Median F0 of the voiced frames, by autocorrelation (enough to compare two renderings)."""
    frame, hop, values = 640, 160, []
    for i in range(0, len(audio) - frame, hop):
        x = audio[i : i + frame] - audio[i : i + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.02:
            continue
        ac = np.correlate(x, x, "full")[frame - 1 :]
        lo, hi = rate // 400, rate // 50
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            values.append(rate / lag)
    return float(np.median(values))


def test_higher_pitch_factor_raises_f0() -> None:
    text = "We were away a year ago, and we are all well now."
    low, high = median_f0(say(text, pitch=0.8).audio), median_f0(say(text, pitch=1.25).audio)
    assert 1.25 < high / low < 1.9  # 1.25 / 0.8 = 1.56 asked for


def test_same_inputs_give_identical_audio_whatever_came_before() -> None:
    text = "Where is the nearest carrier?"
    first = say(text, "en-us+f2", 1.1, 0.9)  # f2 adds breath noise: a random source
    say("Something else in between, with another voice.", "en-gb+m7", 0.9, 1.2)
    second = say(text, "en-us+f2", 1.1, 0.9)
    assert np.array_equal(first.audio, second.audio)
    assert [(p.phone, p.start, p.end) for p in first.phones] == [
        (p.phone, p.start, p.end) for p in second.phones
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_a_synthesis_error_naming_the_voice(text: str) -> None:
    with pytest.raises(SynthesisError, match="en-us"):
        say(text)


def test_text_with_nothing_to_say_is_a_synthesis_error() -> None:
    with pytest.raises(SynthesisError, match="espeak-ng:en-gb"):
        say("... ,,, ...", "en-gb")


def test_bad_voices_and_prosody_are_synthesis_errors() -> None:
    with pytest.raises(SynthesisError, match="not an espeak-ng voice"):
        espeak.synthesize("hello", Voice("flite", "slt"), Prosody())
    with pytest.raises(SynthesisError, match="accent 'de'"):
        say("hallo", "de")
    with pytest.raises(SynthesisError, match="not found"):
        say("hello", "en-us+nosuchvariant")
    with pytest.raises(SynthesisError, match="rate 5"):
        say("hello", rate=5.0)
    with pytest.raises(SynthesisError, match="pitch 3"):
        say("hello", pitch=3.0)
