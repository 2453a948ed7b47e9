"""Phone labels for synthetic speech: the Lee & Hon (1989) 39-phone set and the maps into it.

Four sources of labels meet here:

* ARPAbet from flite and festival (the CMU "radio" set), cmudict (stress digits, ``AH0``) and
  TIMIT's 61 phones: :func:`fold_arpabet`, the usual TIMIT 61 -> 39 folding.
* espeak-ng phoneme mnemonics: :func:`espeak_to_arpabet`. A mnemonic names a slot in espeak's
  phoneme table, and what it sounds like depends on the accent's table: ``A@`` is [ɑːɹ] in
  en-us but [ɑː] in (non-rhotic) en-gb, ``V`` is [ʌ] in en-gb but [ʊ] in the northern English
  accents. So the map takes the accent. It labels what was said (espeak's own IPA for the
  phoneme in that accent), not what the word's dictionary entry would be.
* espeak-ng's IPA, one Unicode code point at a time, as piper speaks it: :func:`ipa_segments`.
* Timed segments: :func:`fold_segments` (ARPAbet) and :func:`espeak_segments` (mnemonics) fold,
  drop silences and split two-phone expansions evenly in time.

The espeak inventory was found empirically with libespeak-ng 1.51: every mnemonic its phoneme
events produced for ~1900 varied sentences (book and speech text, numbers, dates, money,
letters, abbreviations, symbols, foreign names) in each accent, compared with its ``--ipa``
output for the same text. Mnemonics of the English phoneme tables that never came up (those
espeak uses for foreign words) map to their nearest English phone, so a rare word does not
stop a corpus run.
"""

from __future__ import annotations

from asr.corpora.synthetic.voice import PhoneSegment
from asr.units.phones import SILENCE, fold_arpabet

# The English accents of espeak-ng 1.51 (voice names as -v takes them) and their tables.
ESPEAK_ACCENTS: tuple[str, ...] = (
    "en-us",
    "en-us-nyc",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
)

# Pauses (word, clause and sentence breaks): no phone, their time is silence.
_ESPEAK_PAUSES = frozenset(["", "_", "_:", "_::", "_!", "_|", "||", "_;_", "_X1", "1", "_\x01"])
# Stress and tone marks: events carry none, -x output puts them in front of vowels.
_ESPEAK_STRESS = frozenset(["'", ",", "%", "=", "''", "'!", ",,", "%%"])
# Sounds with no 39-set phone of their own whose time belongs to the phone before: the palatal
# glide espeak inserts after a front vowel before another vowel ("being" b i: ; I N), and the
# glottal stop ("button" b V ? n-; TIMIT's q, which Lee & Hon drop).
_ESPEAK_MERGED = frozenset([";", "?"])
_ESPEAK_SWITCH = "_^_"  # espeak switched to another language's phoneme table

# The base table ("en", i.e. en-gb: non-rhotic, southern British), mnemonic -> 39-set phones.
_ESPEAK_BASE: dict[str, tuple[str, ...]] = {
    # plosives, affricates, flaps
    "p": ("p",),
    "b": ("b",),
    "t": ("t",),
    "t2": ("t",),  # [t] that is never flapped
    "t#": ("t",),  # flapped [ɾ] in the American tables only (below)
    "t[": ("t",),  # dental [t̪]: en-029's "th"
    "d": ("d",),
    "d#": ("d",),
    "d[": ("d",),
    "k": ("k",),
    "g": ("g",),
    "c": ("k",),  # palatal stop [c]
    "q": ("k",),  # uvular stop [q]
    "J": ("g",),  # palatal [ɟ]
    "*": ("dx",),  # tap [ɾ]
    "tS": ("ch",),
    "tS;": ("ch",),
    "dZ": ("jh",),
    "dZ;": ("jh",),
    # fricatives
    "f": ("f",),
    "v": ("v",),
    "v#": ("v",),  # [ʋ]
    "B": ("v",),  # [β]
    "T": ("th",),
    "D": ("dh",),
    "s": ("s",),
    "z": ("z",),
    "z#": ("z",),
    "z/2": ("z",),
    "S": ("sh",),
    "Z": ("sh",),  # zh folds into sh
    "s.": ("sh",),  # [ʂ]
    "s;": ("sh",),  # [ɕ]
    "S;": ("sh",),
    "z.": ("sh",),  # [ʐ]
    "z;": ("sh",),  # [ʑ]
    "Z;": ("sh",),
    "h": ("hh",),
    "C": ("hh",),  # [ç] as in "huge"
    "x": ("k",),  # [x] "loch": cmudict and flite say k
    "X": ("k",),  # [χ]
    "#X1": ("k",),
    "Q": ("g",),  # [ɣ]
    "Q^": ("g",),
    'Q"': ("r",),  # [ʁ] French r
    'r"': ("r",),  # [ʀ]
    "J^": ("y",),  # [ʝ]
    "l#": ("l",),  # [ɬ] Welsh ll
    # nasals, liquids, glides
    "m": ("m",),
    "n": ("n",),
    "n.": ("n",),
    "n^": ("n",),  # [ɲ]
    "N": ("ng",),
    "m-": ("m",),  # syllabic consonants, TIMIT's em/en/el/eng
    "n-": ("n",),
    "l-": ("l",),
    "N-": ("ng",),
    "l": ("l",),
    "l.": ("l",),
    "l/": ("l",),
    "l/2": ("l",),
    "l/3": ("l",),
    "L": ("l",),  # dark [ɫ]
    "L/": ("l",),
    "l^": ("l",),  # [ʎ]
    "r": ("r",),
    "r-": ("r",),  # linking r ("idea of")
    "r/": ("r",),
    "r.": ("r",),
    "R": ("r",),
    "R2": ("r",),
    "R3": ("r",),
    "**": ("r",),  # tapped r
    "w": ("w",),
    "w#": ("w",),  # [ʍ] Scottish "wh"
    "j": ("y",),
    # schwas and the non-rhotic "letter" vowel
    "@": ("ah",),
    "@-": ("ah",),
    "@#": ("ah",),
    "@2": ("ah",),
    "@5": ("ah",),  # "to" in RP
    "a#": ("ah",),  # [ɐ] "about"
    "3": ("ah",),  # [ə] "letter" (rhotic [ɚ] in en-us)
    "@L": ("ah", "l"),  # [əl] "bottle": schwa gliding into l, cmudict's AH0 L
    # short vowels
    "I": ("ih",),
    "I2": ("ih",),
    "I#": ("ih",),  # [ᵻ]
    "I2#": ("ih",),
    "E": ("eh",),
    "E#": ("eh",),
    "E2": ("eh",),
    "e": ("eh",),
    "e#": ("eh",),
    "a": ("ae",),
    "a2": ("ae",),
    "a#2": ("ae",),
    "a/": ("ae",),
    "aa": ("ae",),  # "bath": [a] in en-gb
    "A#": ("ae",),
    "V": ("ah",),  # [ʌ]
    "U": ("uh",),
    "0": ("aa",),  # [ɒ] "lot"
    "0#": ("aa",),
    "02": ("aa",),
    "O": ("aa",),  # [ɔ]: ao folds into aa
    "O2": ("aa",),
    # long vowels
    "i": ("iy",),  # "happy"
    "i:": ("iy",),
    "u": ("uw",),
    "u:": ("uw",),
    "3:": ("er",),  # [ɜː] "nurse"
    "A:": ("aa",),
    "A@": ("aa",),  # [ɑː] "start"
    "A~": ("aa",),  # [ɑ̃] French "en"
    "O:": ("aa",),
    "O@": ("aa",),  # [ɔː] "north"
    "o@": ("aa",),  # [ɔː] "force"
    "O~": ("aa",),
    "e:": ("ey",),
    "o": ("ow",),
    "o:": ("ow",),
    "IR": ("er",),  # [əɹ] Scottish "bird"
    "VR": ("ah", "r"),  # [ʌɹ] Scottish "word"
    # diphthongs
    "eI": ("ey",),
    "aI": ("ay",),
    "aI2": ("ay",),
    "OI": ("oy",),
    "aU": ("aw",),
    "oU": ("ow",),
    "oU#": ("ow",),
    # centring diphthongs and triphthongs (non-rhotic)
    "i@": ("iy", "ah"),  # [iə] "idea", "real"
    "i@3": ("ih", "ah"),  # [ɪə] "near"
    "e@": ("eh", "ah"),  # [eə] "square"
    "U@": ("uh", "ah"),  # [ʊə] "cure"
    "aI@": ("ay", "ah"),  # [aɪə] "fire", "quiet"
    "aI3": ("ay", "ah"),
    "aU@": ("aw", "ah"),  # [aʊə] "hour"
}

# Where an accent's table makes a mnemonic sound different (from its --ipa output).
_RHOTIC_US = {
    "3": ("er",),  # [ɚ]
    "A@": ("aa", "r"),  # [ɑːɹ]
    "O@": ("aa", "r"),  # [ɔːɹ]
    "o@": ("aa", "r"),  # [oːɹ]: cmudict's AO R
    "e@": ("eh", "r"),  # [ɛɹ]
    "i@3": ("ih", "r"),  # [ɪɹ]
    "U@": ("uh", "r"),  # [ʊɹ]
    "aI3": ("ay", "er"),  # [aɪɚ]
    "aU@": ("aw", "er"),  # [aʊɹ]
}
_AMERICAN = {"t#": ("dx",), "A#": ("aa",), "02": ("ah",)}  # flap; "bath"-ish [ɑː]; 02 -> V
_ESPEAK_ACCENT: dict[str, dict[str, tuple[str, ...]]] = {
    "en-us": {**_AMERICAN, **_RHOTIC_US},
    "en-us-nyc": _AMERICAN,  # non-rhotic; [ɛə] for tensed "a" stays ae, [əɪ] "nurse" stays er
    "en-gb": {},
    "en-gb-x-rp": {"i": ("ih",), "e#": ("ih",), "aa": ("aa",), "U@": ("aa",)},  # [ɪ] [ɑː] [ɔː]
    "en-gb-scotland": {  # rhotic through an explicit r after the vowel
        "3:": ("eh",),  # [e] before r: "heard" h e r d
        "e@": ("eh",),
        "i@3": ("ih",),
        "o@": ("ow",),  # [o]
        "U@": ("uw", "r"),  # [ʉɹ]
        "U": ("uw",),  # [ʉ]: Scots merge "foot" and "goose"
        "i": ("ey",),  # [e], also unstressed I: the same sound as eI [eː]
    },
    "en-gb-x-gbclan": {"V": ("uh",)},  # northern [ʊ] in "strut"
    "en-gb-x-gbcwmd": {"V": ("uh",), "02": ("uh",), "aI": ("oy",), "e@": ("er",)},  # [ɔɪ] [ɜː]
    "en-029": {"o@": ("ow",), "U@": ("ow",), "T": ("t",), "D": ("d",), "I2#": ("eh",)},  # [oə]
}


def _accent_table(accent: str) -> dict[str, tuple[str, ...]]:
    table = _ESPEAK_ACCENT.get(accent.lower())
    if table is None:
        raise ValueError(
            f"unknown espeak-ng accent '{accent}' (one of {', '.join(ESPEAK_ACCENTS)})"
        )
    return table


def espeak_to_arpabet(mnemonic: str, accent: str = "en-us") -> list[str]:
    """One espeak-ng mnemonic, as its phoneme events give it, -> 0..2 phones of the 39 set.

    Stress marks are accepted on their own (-> []), not glued to a vowel. Pauses, stress marks,
    the glottal stop and the palatal glide give []. Unknown mnemonics (and the switch to another
    language's phonemes, whose mnemonics mean something else) raise ValueError.
    """
    table = _accent_table(accent)
    if mnemonic in table:
        return list(table[mnemonic])
    if mnemonic in _ESPEAK_BASE:
        return list(_ESPEAK_BASE[mnemonic])
    if mnemonic in _ESPEAK_PAUSES or mnemonic in _ESPEAK_STRESS or mnemonic in _ESPEAK_MERGED:
        return []
    if mnemonic == _ESPEAK_SWITCH:
        raise ValueError("espeak-ng switched to another language's phonemes ('_^_')")
    raise ValueError(f"unknown espeak-ng phoneme mnemonic '{mnemonic}' ({accent})")


# --- timed segments ------------------------------------------------------------------------


def _split(phones: list[str], start: float | None, end: float | None) -> list[PhoneSegment]:
    """Phones sharing one segment, each given an equal share of its time."""
    if start is None or end is None:
        return [PhoneSegment(phone, start, end) for phone in phones]
    step = (end - start) / len(phones)
    return [
        PhoneSegment(
            phone, start + i * step, end if i == len(phones) - 1 else start + (i + 1) * step
        )
        for i, phone in enumerate(phones)
    ]


def _merge_into_last(out: list[PhoneSegment], segment: PhoneSegment) -> None:
    """Give a label-less sound's time to the phone before it (nothing before: drop it)."""
    if out and segment.end is not None and (out[-1].end is None or segment.end > out[-1].end):
        out[-1].end = segment.end


def fold_segments(segments: list[PhoneSegment]) -> list[PhoneSegment]:
    """ARPAbet segments -> 39-set segments; silences dropped, q's time joins the phone before."""
    out: list[PhoneSegment] = []
    previous_silent = True
    for segment in segments:
        phone = fold_arpabet(segment.phone)
        if phone == SILENCE:
            previous_silent = True
        elif phone is None:
            if not previous_silent:
                _merge_into_last(out, segment)
        else:
            out.append(PhoneSegment(phone, segment.start, segment.end))
            previous_silent = False
    return out


def espeak_segments(segments: list[PhoneSegment], accent: str) -> list[PhoneSegment]:
    """espeak-ng mnemonic segments (one accent) -> 39-set segments without silences.

    A two-phone mnemonic ("A@" -> aa r in en-us) splits its time evenly. As espeak's own IPA
    does, a rhotic vowel directly followed by an r phoneme ("car a" k A@ r- a) gives its r to
    that phoneme, and an r right after er joins it ("every" E v 3 r i -> eh v er iy, as
    cmudict has it), so r is not labelled twice. The glottal stop's and the palatal glide's time
    joins the phone before; pauses leave gaps.
    """
    mapped = [espeak_to_arpabet(segment.phone, accent) for segment in segments]
    out: list[PhoneSegment] = []
    previous_silent = True
    for i, (segment, phones) in enumerate(zip(segments, mapped, strict=True)):
        if not phones:
            if segment.phone in _ESPEAK_MERGED and not previous_silent:
                _merge_into_last(out, segment)
            elif segment.phone in _ESPEAK_PAUSES:
                previous_silent = True
            continue
        if phones == ["r"] and out and out[-1].phone == "er" and not previous_silent:
            _merge_into_last(out, segment)  # [ɚ] then [ɹ] is one r-coloured stretch
            continue
        following = mapped[i + 1] if i + 1 < len(mapped) else []
        if len(phones) == 2 and phones[1] == "r" and following == ["r"]:
            phones = phones[:1]
        out.extend(_split(phones, segment.start, segment.end))
        previous_silent = False
    return out


# --- espeak-ng IPA (piper) -----------------------------------------------------------------

# piper voices speak espeak-ng's IPA, decomposed into code points (NFD), with the time of
# each code point from the duration predictor. Pairs are read before single code points.
_IPA_PAIRS: dict[str, str] = {
    "aɪ": "ay",
    "aʊ": "aw",
    "ɔɪ": "oy",
    "eɪ": "ey",
    "oʊ": "ow",
    "əʊ": "ow",
    "tʃ": "ch",
    "dʒ": "jh",
    "oː": "ao",  # [oːɹ] "more": cmudict's AO R, as espeak's o@ above
}
_IPA_SINGLE: dict[str, str] = {
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "ɡ": "g", "g": "g", "ɾ": "dx",
    "f": "f", "v": "v", "θ": "th", "ð": "dh", "s": "s", "z": "z", "ʃ": "sh", "ʒ": "zh",
    "h": "hh", "x": "k", "ç": "hh", "m": "m", "n": "n", "ŋ": "ng", "l": "l", "ɫ": "l",
    "ɬ": "l", "ɹ": "r", "r": "r", "j": "y", "w": "w", "ʍ": "w",
    "i": "iy", "ɪ": "ih", "ᵻ": "ih", "ɨ": "ih", "e": "eh", "ɛ": "eh", "æ": "ae", "a": "ae",
    "ɐ": "ah", "ɑ": "aa", "ɒ": "aa", "ɔ": "ao", "o": "ow", "ʌ": "ah", "ə": "ah", "ɚ": "er",
    "ɜ": "er", "ʊ": "uh", "u": "uw", "ʉ": "uw",
}  # fmt: skip
# word and clause breaks (and piper's sentence start and end): no phone, their time is a gap
_IPA_PAUSES = frozenset(" ,.!?;:-\"'()^$_")
_IPA_STRESS = frozenset("ˈˌ")  # before a vowel: its time belongs to the vowel after it
# length, syllabicity, nasality and the glottal stop: their time joins the phone before
_IPA_MERGED = frozenset("ːˑʔʰʲ˞")


def _ipa_merged(symbol: str) -> bool:
    return symbol in _IPA_MERGED or 0x0300 <= ord(symbol) <= 0x036F  # combining marks


def ipa_segments(symbols: list[PhoneSegment]) -> list[PhoneSegment]:
    """espeak-ng IPA code points with times (piper's alignment) -> 39-set segments.

    Diphthongs and affricates are two code points and one phone. A stress mark's time goes to
    the vowel after it; a length mark's, a combining mark's and the glottal stop's to the phone
    before. As in :func:`espeak_segments`, an r right after er joins it (the linking r of
    "water all" is one r-coloured stretch). A symbol outside English raises ValueError naming
    it, so that the engine drops the sentence rather than mislabel it.
    """
    out: list[PhoneSegment] = []
    previous_silent = True
    pending_start: float | None = None  # a stress mark's start, waiting for its vowel
    i = 0
    while i < len(symbols):
        segment = symbols[i]
        pair = "".join(s.phone for s in symbols[i : i + 2])
        if len(pair) == 2 and pair in _IPA_PAIRS:
            phone, end, step = _IPA_PAIRS[pair], symbols[i + 1].end, 2
        elif segment.phone in _IPA_PAUSES:
            previous_silent, pending_start = True, None
            i += 1
            continue
        elif segment.phone in _IPA_STRESS:
            pending_start = segment.start if pending_start is None else pending_start
            i += 1
            continue
        elif _ipa_merged(segment.phone):
            if not previous_silent:
                _merge_into_last(out, segment)
            i += 1
            continue
        elif segment.phone in _IPA_SINGLE:
            phone, end, step = _IPA_SINGLE[segment.phone], segment.end, 1
        else:
            raise ValueError(
                f"IPA symbol {segment.phone!r} (U+{ord(segment.phone[0]):04X}) has no English phone"
            )
        start = segment.start if pending_start is None else pending_start
        pending_start = None
        phone39 = fold_arpabet(phone)
        assert phone39 is not None  # every table entry is a phone, none is q
        if phone39 == "r" and out and out[-1].phone == "er" and not previous_silent:
            _merge_into_last(out, PhoneSegment(phone39, start, end))
        else:
            out.append(PhoneSegment(phone39, start, end))
        previous_silent = False
        i += step
    return out
