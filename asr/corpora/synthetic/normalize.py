"""Text normalisation for TTS prompts: the written words must be what the engine says.

A synthetic corpus uses the prompt itself as the transcript, so every prompt is reduced to lower
case words of ``[a-z']`` that espeak-ng, flite and festival all read the same way as a person would
write them down. Whatever cannot be rewritten reliably makes the whole sentence unusable
(``normalize_sentence`` returns None) rather than risk a transcript that disagrees with the audio.

Rules (in the order they apply):

- Unicode: accents are stripped (``café`` -> ``cafe``), ligatures spelled out (``æ`` -> ``ae``),
  curly quotes and dashes made plain, ``&`` -> ``and``. Any other symbol that is not ordinary
  punctuation (``@ + = < > | ~ ^ \\ ° §``, letters of other scripts) -> None.
- Numbers: ``42`` -> ``forty two``; ``1,000,000`` -> ``one million`` (American style, no "and");
  a bare four-digit number from 1100 to 1999 or 2010 to 2099 is read as a year (``1984`` ->
  ``nineteen eighty four``, ``1905`` -> ``nineteen oh five``, ``1900`` -> ``nineteen hundred``),
  2000-2009 as ``two thousand five``; ``3rd`` / ``3d`` -> ``third``; ``1980s`` / ``'90s`` ->
  ``nineteen eighties`` / ``nineties``; ``3.5`` -> ``three point five`` (digits after the point one
  by one); ``12%`` -> ``twelve percent``; ``$5`` -> ``five dollars``, ``$5.50`` -> ``five dollars
  and fifty cents``, ``$3 billion`` -> ``three billion dollars`` (also ``£`` pounds, ``€`` euros,
  ``50¢`` cents); ``10:30`` -> ``ten thirty``, ``7:00`` -> ``seven o'clock``; ``3/4`` -> ``three
  quarters`` (denominators 2 to 10; ``2 1/2`` -> ``two and one half``); ``#5`` / ``No. 5`` ->
  ``number five``; a number with a leading zero is read digit by digit. Dates like ``4/15/86``,
  numbers glued to letters (``B52``, ``3D``, ``5pm``) and numbers of 16 digits or more -> None.
- Abbreviations: ``Mr Mrs Dr Jr Sr Mt Messrs Lt Sgt vs etc`` (with or without a period) and, only
  with a period, ``Gen Col Capt Cmdr Adm Gov Sen Rep Rev Prof Hon Inc Co Corp Dept Ave Vol Approx``
  and month abbreviations are expanded. ``St`` is ``saint`` before a capitalised word (``St.
  Paul``) and ``street`` otherwise (``Baker St.``). ``e.g.`` / ``i.e.`` -> ``for example`` / ``that
  is``. Any other dotted abbreviation (``U.S.``, ``a.m.``, ``G.K.``) -> None.
- Acronyms and headings: a word of two or more letters all in capitals (``NATO``, ``GNP``,
  ``CHAPTER``, ``II``) -> None: it may be spelled out or read as a word, and all-capital lines are
  headings, not sentences. Roman numerals written as one capital letter are caught by context:
  ``I.`` / ``I:`` opening the sentence, a capitalised heading word before ``I`` (``Book I``), and a
  lone ``V X L C D M`` that is not an initial (no period after it) -> None. The one exception
  is ``World War I`` / ``World War II`` (``world war two``).
- Words: apostrophes stay only between letters (``don't``, ``o'er``; ``'tis`` -> ``tis``), hyphens,
  slashes and all other punctuation become spaces. A word of two or more letters without a vowel
  (``th``, ``ft``, ``lbs``) is unpronounceable as written -> None, except interjections such as
  ``hmm`` and ``shh``. Single letters are kept: they are read as letter names (``c two``).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "normalize_sentence",
    "number_to_words",
    "ordinal_to_words",
    "year_to_words",
    "digits_to_words",
    "decimal_to_words",
]

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_MAX_NUMBER = 10**15 - 1  # beyond "nine hundred ninety nine trillion ..." nobody reads it aloud

_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_to_words(n: int) -> str:
    """A non-negative integer in words, American style: 105 -> ``one hundred five``."""
    if n < 0 or n > _MAX_NUMBER:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_to_words(rest)}" if rest else "")
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return f"{number_to_words(high)} {name}" + (f" {number_to_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _ordinal_word(word: str) -> str:
    if word in _ORDINAL_IRREGULAR:
        return _ORDINAL_IRREGULAR[word]
    if word.endswith("y"):
        return word[:-1] + "ieth"
    return word + "th"


def ordinal_to_words(n: int) -> str:
    """An ordinal in words: 3 -> ``third``, 21 -> ``twenty first``, 100 -> ``one hundredth``."""
    words = number_to_words(n).split()
    words[-1] = _ordinal_word(words[-1])
    return " ".join(words)


def year_to_words(n: int) -> str:
    """A year as it is said: 1984 -> ``nineteen eighty four``, 1905 -> ``nineteen oh five``,
    1900 -> ``nineteen hundred``, 2000-2009 -> ``two thousand ...``, 2024 -> ``twenty twenty
    four``; other values fall back to the cardinal."""
    if n < 1000 or n > 9999 or 2000 <= n <= 2009 or n % 1000 == 0:
        return number_to_words(n)
    high, low = divmod(n, 100)
    if low == 0:
        return f"{number_to_words(high)} hundred"
    if low < 10:
        return f"{number_to_words(high)} oh {_ONES[low]}"
    return f"{number_to_words(high)} {number_to_words(low)}"


def digits_to_words(digits: str) -> str:
    """Digit by digit: ``"007"`` -> ``zero zero seven``."""
    return " ".join(_ONES[int(d)] for d in digits)


def decimal_to_words(text: str) -> str:
    """A decimal written with a point: ``"3.14"`` -> ``three point one four``, ``".5"`` ->
    ``point five``. The integer part may carry thousands commas."""
    whole, _, frac = text.partition(".")
    whole = whole.replace(",", "")
    parts = [_integer_words(whole)] if whole else []
    if frac:
        parts += ["point", digits_to_words(frac)]
    return " ".join(parts)


def _integer_words(digits: str) -> str:
    # "007" is a code read digit by digit, never "seven"
    if len(digits) > 1 and digits[0] == "0":
        return digits_to_words(digits)
    return number_to_words(int(digits))


def _plural_words(words: str) -> str:
    """``nineteen eighty`` -> ``nineteen eighties``; ``hundred`` -> ``hundreds``."""
    head, _, last = words.rpartition(" ")
    if last.endswith("y"):
        last = last[:-1] + "ies"
    elif last.endswith("x"):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def _is_year(digits: str) -> bool:
    if len(digits) != 4 or digits[0] == "0":
        return False
    n = int(digits)
    return 1100 <= n <= 1999 or 2010 <= n <= 2099


# --- characters -------------------------------------------------------------------------------

_CHAR_MAP = {
    "æ": "ae",
    "Æ": "Ae",
    "œ": "oe",
    "Œ": "Oe",
    "ß": "ss",
    "ø": "o",
    "Ø": "O",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "Th",
    "ı": "i",
    "\u2018": "'",
    "\u2019": "'",
    "\u201b": "'",
    "\u02bc": "'",
    "\u2032": "'",
    "`": "'",
    "\u00b4": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": " - ",
    "\u2013": " - ",
    "\u2014": " - ",
    "\u2015": " - ",
    "\u2212": "-",
    "\u2026": "...",
    "\u2044": "/",  # the fraction slash NFKD makes of "½"
    "&": " and ",
}
# ordinary punctuation is removed (a word boundary), a few symbols are read ("$5", "12%");
# anything else outside ASCII letters and digits makes the sentence unusable
_TRANSLATE = str.maketrans(_CHAR_MAP)
_UNREADABLE = re.compile(r"[^A-Za-z0-9\s.,;:!?'\"()\[\]{}\-_*/$£€%¢#]")
_SYMBOLS = set("$£€%¢#")


def _plain_ascii(text: str) -> str | None:
    if not text.isascii():
        # NFKD splits "é" into "e" and a combining accent (dropped), "½" into "1⁄2"
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    text = text.translate(_TRANSLATE)
    return None if _UNREADABLE.search(text) else text


# --- abbreviations ----------------------------------------------------------------------------

# not English words, so they are expanded with or without a period
_ALWAYS = {
    "mr": "mister",
    "mrs": "missus",
    "dr": "doctor",
    "jr": "junior",
    "sr": "senior",
    "mt": "mount",
    "messrs": "messieurs",
    "lt": "lieutenant",
    "sgt": "sergeant",
    "vs": "versus",
    "etc": "et cetera",
}
# words (or names) in their own right: only an abbreviation when a period follows
_WITH_PERIOD = {
    "gen": "general",
    "col": "colonel",
    "capt": "captain",
    "cmdr": "commander",
    "adm": "admiral",
    "gov": "governor",
    "sen": "senator",
    "rep": "representative",
    "rev": "reverend",
    "prof": "professor",
    "hon": "honorable",
    "inc": "incorporated",
    "co": "company",
    "corp": "corporation",
    "dept": "department",
    "ave": "avenue",
    "vol": "volume",
    "approx": "approximately",
    "jan": "january",
    "feb": "february",
    "apr": "april",
    "aug": "august",
    "sept": "september",
    "oct": "october",
    "nov": "november",
    "dec": "december",
}
_DOTTED_KNOWN = {"e.g.": "for example", "i.e.": "that is"}
_DOTTED = re.compile(r"(?<![A-Za-z.])(?:[A-Za-z]\.){2,}(?:[A-Za-z](?![A-Za-z]))?")
_HEADING_WORDS = {
    "chapter",
    "chap",
    "book",
    "volume",
    "vol",
    "part",
    "act",
    "scene",
    "section",
    "canto",
    "article",
    "title",
    "psalm",
    "stave",
    "letter",
    "lecture",
    "lesson",
    "appendix",
    "number",
    "no",
}
_WORLD_WAR = re.compile(r"\b(World War) (II|I)\b")
_WORLD_WAR_NUMBER = {"I": "one", "II": "two"}
_INTERJECTIONS = {"hmm", "hm", "mm", "mmm", "sh", "shh", "psst", "pst", "tsk", "brr", "grr", "zzz"}
_VOWEL = re.compile(r"[aeiouy]")

# --- tokens -----------------------------------------------------------------------------------

_INT = r"\d{1,3}(?:,\d{3})+(?!\d)|\d+"
_TOKEN = re.compile(
    rf"""
    (?P<date>\d+/\d+/\d+)
  | (?P<money>(?P<cur>[$£€])\s?(?:(?P<mint>{_INT})(?:\.(?P<mdec>\d+))?|\.(?P<mdec2>\d+))
        (?:\s+(?P<scale>hundred|thousand|million|billion|trillion)\b)?)
  | (?P<time>(?P<hh>\d{{1,2}}):(?P<mm>\d{{2}})(?![\d:]))
  | (?P<frac>(?P<fn>\d+)/(?P<fd>\d+))
  | (?P<num>(?:(?P<int>{_INT})(?:\.(?P<dec>\d+))?|\.(?P<dec2>\d+))
        (?P<suf>%|¢|st|nd|rd|th|d|'s|s)?)
  | (?P<word>[A-Za-z]+(?:'[A-Za-z]+)*)
  | (?P<space>\s+)
  | (?P<punct>.)
    """,
    re.VERBOSE,
)
_NUMERIC = {"date", "money", "time", "frac", "num"}
_WORD_OUT = re.compile(r"[a-z]+(?:'[a-z]+)*")

_CURRENCY = {"$": ("dollar", "dollars"), "£": ("pound", "pounds"), "€": ("euro", "euros")}
_SUBUNIT = {"$": ("cent", "cents"), "£": ("penny", "pence"), "€": ("cent", "cents")}
_FRACTION = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def _money_words(m: re.Match, next_word: str | None) -> str | None:
    cur = m.group("cur")
    whole = (m.group("mint") or "").replace(",", "")
    frac = m.group("mdec") or m.group("mdec2") or ""
    if len(whole) > 15:
        return None
    unit_one, unit_many = _CURRENCY[cur]
    scale = m.group("scale")
    if scale:  # "$1.5 billion" -> "one point five billion dollars"
        amount = decimal_to_words(f"{whole}.{frac}" if frac else whole)
        # "$3 billion dollars" is written too: say the unit once
        return f"{amount} {scale}" + ("" if next_word in (unit_one, unit_many) else f" {unit_many}")
    if len(frac) == 2:  # dollars and cents
        n_whole, n_cents = int(whole or "0"), int(frac)
        sub_one, sub_many = _SUBUNIT[cur]
        parts = []
        if n_whole or not n_cents:
            parts.append(f"{number_to_words(n_whole)} {unit_one if n_whole == 1 else unit_many}")
        if n_cents:
            parts.append(f"{number_to_words(n_cents)} {sub_one if n_cents == 1 else sub_many}")
        return " and ".join(parts)
    if frac:
        return f"{decimal_to_words(f'{whole}.{frac}')} {unit_many}"
    return f"{_integer_words(whole)} {unit_one if whole == '1' else unit_many}"


def _fraction_words(numerator: int, denominator: int) -> str | None:
    if not 2 <= denominator <= 10 or not 1 <= numerator < 100:
        return None
    if denominator in _FRACTION:
        one, many = _FRACTION[denominator]
    else:
        one = ordinal_to_words(denominator)
        many = one + "s"
    return f"{number_to_words(numerator)} {one if numerator == 1 else many}"


def _number_words(m: re.Match) -> str | None:
    whole = m.group("int")
    frac = m.group("dec") or m.group("dec2")
    suffix = m.group("suf")
    digits = (whole or "").replace(",", "")
    if len(digits) > 15:
        return None
    if suffix in ("st", "nd", "rd", "th", "d"):
        if frac or not digits:
            return None
        n = int(digits)
        # the old style "2d", "3d" (82d Congress) only exists for 2 and 3
        if suffix == "d" and (n % 10 not in (2, 3) or n % 100 in (12, 13)):
            return None
        return ordinal_to_words(n)
    if suffix in ("s", "'s"):  # decades and plurals: 1980s, 90s, 1900s
        if frac or not digits:
            return None
        words = year_to_words(int(digits)) if _is_year(digits) else _integer_words(digits)
        if re.fullmatch(r"10*", digits) and digits != "10":
            words = words.removeprefix("one ")  # "1000s" -> "thousands", not "one thousands"
        return _plural_words(words)
    if frac is not None:
        words = decimal_to_words(f"{whole or ''}.{frac}")
    elif _is_year(digits) and "," not in whole and suffix is None:
        words = year_to_words(int(digits))
    else:
        words = _integer_words(digits)
    if suffix == "%":
        words += " percent"
    elif suffix == "¢":
        words += " cent" if digits == "1" and not frac else " cents"
    return words


def _time_words(m: re.Match) -> str | None:
    hours, minutes = int(m.group("hh")), int(m.group("mm"))
    if hours > 24 or minutes > 59:
        return None
    if minutes == 0:
        return f"{number_to_words(hours)} o'clock"
    if minutes < 10:
        return f"{number_to_words(hours)} oh {_ONES[minutes]}"
    return f"{number_to_words(hours)} {number_to_words(minutes)}"


def _replace_dotted(text: str) -> str | None:
    """Expand ``e.g.``/``i.e.``; any other dotted abbreviation (``U.S.``) makes the text None."""
    for match in _DOTTED.finditer(text):
        key = match.group(0).lower()
        if key not in _DOTTED_KNOWN:
            return None
    return _DOTTED.sub(lambda m: f" {_DOTTED_KNOWN[m.group(0).lower()]} ", text)


def normalize_sentence(text: str) -> str | None:
    """One sentence as TTS prompt words: lower case ``[a-z' ]``, single spaces.

    None when nothing speakable is left or something cannot be normalised reliably (see the
    module docstring for the rules).
    """
    plain = _plain_ascii(text)
    if plain is None:
        return None
    plain = _replace_dotted(plain)
    if plain is None:
        return None
    # the one Roman numeral with a single reading, common in speeches
    plain = _WORLD_WAR.sub(lambda m: f"{m.group(1)} {_WORLD_WAR_NUMBER[m.group(2)]}", plain)
    tokens = [(m.lastgroup, m) for m in _TOKEN.finditer(plain)]
    out: list[str] = []
    prev_word: str | None = None  # the last word token, for heading context ("Book I")
    prev_gap = ""  # what stands between prev_word and the current token
    first_word = True
    for i, (kind, m) in enumerate(tokens):
        if kind == "space":
            prev_gap += " "
            continue
        if kind == "punct":
            ch = m.group(0)
            if ch in _SYMBOLS:
                # "#5" -> "number five"; any other lone symbol cannot be read reliably
                nxt = tokens[i + 1] if i + 1 < len(tokens) else None
                if ch == "#" and nxt is not None and nxt[0] == "num":
                    out.append("number")
                    continue
                return None
            prev_gap += ch
            continue
        # numbers and words glued together ("B52", "5pm", "3D") have no reliable reading
        nxt_char = plain[m.end() : m.end() + 1]
        if kind in _NUMERIC and (nxt_char.isalnum() or nxt_char == "$"):
            return None
        if kind == "word" and nxt_char.isdigit():
            return None
        if kind == "date":
            return None
        if kind == "money":
            nxt_kind, nxt_text = _next_word(tokens, i)
            words = _money_words(m, nxt_text.lower() if nxt_kind == "word" else None)
        elif kind == "time":
            words = _time_words(m)
        elif kind == "frac":
            words = _fraction_words(int(m.group("fn")), int(m.group("fd")))
            # "2 1/2" -> "two and one half"
            if words and i >= 2 and tokens[i - 1][0] == "space" and tokens[i - 2][0] == "num":
                words = "and " + words
        elif kind == "num":
            words = _number_words(m)
        else:
            words = _word(tokens, i, m, plain, prev_word, prev_gap, first_word)
            prev_word = m.group(0)
            first_word = False
        if words is None:
            return None
        if kind != "word":
            prev_word = None
            first_word = False
        prev_gap = ""
        out.extend(words.split())
    if not out:
        return None
    result = " ".join(out)
    assert all(_WORD_OUT.fullmatch(w) for w in out), result
    return result


def _next_word(tokens: list, i: int) -> tuple[str | None, str | None]:
    """The kind and text of the next word or number token after position i."""
    for kind, m in tokens[i + 1 :]:
        if kind in ("space", "punct"):
            continue
        return kind, m.group(0)
    return None, None


def _word(
    tokens: list,
    i: int,
    m: re.Match,
    plain: str,
    prev_word: str | None,
    prev_gap: str,
    first_word: bool,
) -> str | None:
    word = m.group(0)
    letters = word.replace("'", "")
    after = plain[m.end() : m.end() + 1]
    period = after == "."
    if len(letters) >= 2 and letters.isupper():
        return None  # acronym, all-caps heading or Roman numeral
    if word == "I":
        if first_word and after in (".", ":"):
            return None  # "I. A DISCUSSION SOMEWHAT IN THE AIR"
        if (
            prev_word is not None
            and prev_word[0].isupper()
            and prev_word.lower() in _HEADING_WORDS
            and set(prev_gap) <= {" ", "."}
        ):
            return None  # "Book I", "Chap. I"
    if word in ("V", "X", "L", "C", "D", "M") and not period:
        return None  # a Roman numeral ("Henry V"), not an initial
    key = word.lower()
    if key == "st":
        kind, text = _next_word(tokens, i)
        return "saint" if kind == "word" and text[0].isupper() else "street"
    if key in _ALWAYS:
        return _ALWAYS[key]
    if period and key in _WITH_PERIOD:
        return _WITH_PERIOD[key]
    if period and key == "no" and _next_word(tokens, i)[0] == "num":
        return "number"
    if len(letters) >= 2 and not _VOWEL.search(key) and key not in _INTERJECTIONS:
        return None  # "th", "ft", "lbs": not pronounceable as written
    return key
