"""The 39-phone set and the maps into it (ARPAbet folding, espeak-ng mnemonics, segments)."""

from __future__ import annotations

import pytest

from asr.corpora.synthetic import phones
from asr.corpora.synthetic.phones import (
    ESPEAK_ACCENTS,
    espeak_segments,
    espeak_to_arpabet,
    fold_segments,
)
from asr.corpora.synthetic.voice import PhoneSegment
from asr.units.phones import PHONES_39, SILENCE, fold_arpabet

# Lee & Hon (1989), table of TIMIT foldings: 61 symbols -> 39 classes (q deleted).
LEE_HON = {
    "aa": "aa", "ao": "aa", "ah": "ah", "ax": "ah", "ax-h": "ah", "er": "er", "axr": "er",
    "hh": "hh", "hv": "hh", "ih": "ih", "ix": "ih", "l": "l", "el": "l", "m": "m", "em": "m",
    "n": "n", "en": "n", "nx": "n", "ng": "ng", "eng": "ng", "sh": "sh", "zh": "sh",
    "uw": "uw", "ux": "uw", "pcl": "sil", "tcl": "sil", "kcl": "sil", "bcl": "sil",
    "dcl": "sil", "gcl": "sil", "h#": "sil", "pau": "sil", "epi": "sil",
    "ae": "ae", "aw": "aw", "ay": "ay", "b": "b", "ch": "ch", "d": "d", "dh": "dh", "dx": "dx",
    "eh": "eh", "ey": "ey", "f": "f", "g": "g", "iy": "iy", "jh": "jh", "k": "k", "ow": "ow",
    "oy": "oy", "p": "p", "r": "r", "s": "s", "t": "t", "th": "th", "uh": "uh", "v": "v",
    "w": "w", "y": "y", "z": "z",
}  # fmt: skip
CMU_RADIO = (
    "aa ae ah ao aw ax axr ay b ch d dh eh el em en er ey f g hh ih ix iy jh k l m n ng ow oy "
    "p pau r s sh t th uh uw v w y z zh"
).split()


def test_the_set_has_39_distinct_phones_with_silence() -> None:
    assert len(PHONES_39) == 39
    assert len(set(PHONES_39)) == 39
    assert SILENCE in PHONES_39


@pytest.mark.parametrize("timit, expected", sorted(LEE_HON.items()))
def test_fold_timit_61_as_lee_and_hon(timit: str, expected: str) -> None:
    assert fold_arpabet(timit) == expected


def test_glottal_stop_is_dropped() -> None:
    assert fold_arpabet("q") is None


def test_every_cmu_radio_symbol_lands_in_the_set() -> None:
    for symbol in CMU_RADIO:
        assert fold_arpabet(symbol) in PHONES_39, symbol


@pytest.mark.parametrize(
    "cmudict, expected",
    [("AH0", "ah"), ("EY1", "ey"), ("ER2", "er"), ("AO1", "aa"), ("ZH", "sh"), ("Ih0", "ih")],
)
def test_fold_cmudict_stress_digits_and_case(cmudict: str, expected: str) -> None:
    assert fold_arpabet(cmudict) == expected


@pytest.mark.parametrize("bad", ["xx", "", "a1b", "sil2x", "ah3"])
def test_unknown_arpabet_raises_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown ARPAbet phone"):
        fold_arpabet(bad)


@pytest.mark.parametrize(
    "accent, mnemonic, expected",
    [
        ("en-us", "A@", ["aa", "r"]),
        ("en-us", "3", ["er"]),
        ("en-us", "@", ["ah"]),
        ("en-us", "I2", ["ih"]),
        ("en-us", "i@3", ["ih", "r"]),
        ("en-us", "O@", ["aa", "r"]),
        ("en-us", "t#", ["dx"]),
        ("en-us", "S", ["sh"]),
        ("en-us", "Z", ["sh"]),
        ("en-us", "dZ", ["jh"]),
        ("en-gb", "A:", ["aa"]),
        ("en-gb", "A@", ["aa"]),  # non-rhotic: no r said
        ("en-gb", "3", ["ah"]),
        ("en-gb", "t#", ["t"]),  # not flapped in British English
        ("en-gb-x-gbclan", "V", ["uh"]),  # northern "strut"
        ("en-gb-x-gbcwmd", "aI", ["oy"]),
    ],
)
def test_espeak_mnemonics(accent: str, mnemonic: str, expected: list[str]) -> None:
    assert espeak_to_arpabet(mnemonic, accent) == expected


def test_espeak_default_accent_is_american() -> None:
    assert espeak_to_arpabet("A@") == ["aa", "r"]


@pytest.mark.parametrize("silent", ["_", "_:", "_!", "_|", ";", "?", "'", ","])
def test_espeak_pauses_marks_and_glides_give_no_phone(silent: str) -> None:
    for accent in ESPEAK_ACCENTS:
        assert espeak_to_arpabet(silent, accent) == []


def test_espeak_unknown_mnemonic_accent_and_language_switch_raise() -> None:
    with pytest.raises(ValueError, match="'Xq'"):
        espeak_to_arpabet("Xq", "en-us")
    with pytest.raises(ValueError, match="accent 'en-au'"):
        espeak_to_arpabet("a", "en-au")
    with pytest.raises(ValueError, match="another language"):
        espeak_to_arpabet("_^_", "en-gb")


def test_every_mapped_mnemonic_gives_one_or_two_real_phones() -> None:
    speech = set(PHONES_39) - {SILENCE}
    mnemonics = set(phones._ESPEAK_BASE)
    for table in phones._ESPEAK_ACCENT.values():
        mnemonics |= set(table)
    for accent in ESPEAK_ACCENTS:
        for mnemonic in mnemonics:
            out = espeak_to_arpabet(mnemonic, accent)
            assert 1 <= len(out) <= 2 and set(out) <= speech, (accent, mnemonic, out)


def seg(phone: str, start: float, end: float) -> PhoneSegment:
    return PhoneSegment(phone, start, end)


def test_fold_segments_drops_silence_and_gives_q_time_to_the_phone_before() -> None:
    segments = [
        seg("h#", 0.0, 0.1),
        seg("hh", 0.1, 0.15),
        seg("AX0", 0.15, 0.2),
        seg("q", 0.2, 0.25),
        seg("tcl", 0.25, 0.3),
        seg("t", 0.3, 0.35),
        seg("ux", 0.35, 0.5),
        seg("pau", 0.5, 0.6),
    ]
    out = fold_segments(segments)
    assert [s.phone for s in out] == ["hh", "ah", "t", "uw"]
    assert [(s.start, s.end) for s in out] == [(0.1, 0.15), (0.15, 0.25), (0.3, 0.35), (0.35, 0.5)]


def test_fold_segments_keeps_missing_times() -> None:
    out = fold_segments([PhoneSegment("pau"), PhoneSegment("S"), PhoneSegment("IH1")])
    assert [(s.phone, s.start, s.end) for s in out] == [("s", None, None), ("ih", None, None)]


def test_espeak_two_phone_expansion_splits_time_evenly() -> None:
    out = espeak_segments([seg("h", 0.0, 0.1), seg("A@", 0.1, 0.3), seg("_:", 0.3, 0.5)], "en-us")
    assert [s.phone for s in out] == ["hh", "aa", "r"]
    assert out[1].start == pytest.approx(0.1) and out[1].end == pytest.approx(0.2)
    assert out[2].start == pytest.approx(0.2) and out[2].end == pytest.approx(0.3)


def test_espeak_rhotic_vowel_before_r_does_not_say_r_twice() -> None:
    # "car a..." in en-us: k A@ r- a -> k aa r ae, with A@ keeping its whole segment
    out = espeak_segments(
        [seg("k", 0.0, 0.1), seg("A@", 0.1, 0.3), seg("r-", 0.3, 0.35), seg("a", 0.35, 0.5)],
        "en-us",
    )
    assert [s.phone for s in out] == ["k", "aa", "r", "ae"]
    assert (out[1].start, out[1].end) == (0.1, 0.3)


def test_espeak_r_after_er_joins_it() -> None:
    # "every" in en-us: E v 3 r i
    out = espeak_segments(
        [seg("E", 0.0, 0.1), seg("v", 0.1, 0.2), seg("3", 0.2, 0.3), seg("r", 0.3, 0.35)]
        + [seg("i", 0.35, 0.5)],
        "en-us",
    )
    assert [s.phone for s in out] == ["eh", "v", "er", "iy"]
    assert (out[2].start, out[2].end) == (0.2, 0.35)


def test_espeak_glottal_stop_joins_the_phone_before_and_pauses_leave_gaps() -> None:
    # "button," then a pause, then "a"
    out = espeak_segments(
        [seg("b", 0.0, 0.1), seg("V", 0.1, 0.2), seg("?", 0.2, 0.25), seg("n-", 0.25, 0.4)]
        + [seg("_", 0.4, 0.6), seg("?", 0.6, 0.65), seg("a", 0.65, 0.8)],
        "en-us",
    )
    assert [s.phone for s in out] == ["b", "ah", "n", "ae"]
    assert (out[1].start, out[1].end) == (0.1, 0.25)
    assert (out[3].start, out[3].end) == (0.65, 0.8)  # a glottal stop after a pause is dropped
