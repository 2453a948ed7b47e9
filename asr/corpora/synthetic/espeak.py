"""espeak-ng voices through libespeak-ng (ctypes, in process), with phone times.

The library reports a PHONEME event, carrying the phoneme's mnemonic and the sample it starts
at, for every phoneme it speaks; a phone ends where the next event starts. Mnemonics are
turned into the 39-phone set by
:func:`asr.corpora.synthetic.phones.espeak_segments`, which needs the accent because the same
mnemonic sounds different in different English accents.

libespeak-ng keeps all its state in globals and is not thread-safe: one lock serialises the
calls of a process. Each call loads, initialises, terminates and unloads the library (see
_fresh_library), so no state outlives a call and worker processes, forked or spawned, start
clean; synchronous mode starts no threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from asr.corpora.synthetic.engine import SAMPLE_RATE, SILENCE_PEAK
from asr.corpora.synthetic.phones import ESPEAK_ACCENTS, espeak_segments
from asr.corpora.synthetic.voice import (
    DEFAULT_PROSODY,
    PhoneSegment,
    Prosody,
    Synthesis,
    SynthesisError,
    Voice,
)
from asr.data.audio import resample

try:  # unloading the library is what resets it (see _fresh_library)
    from _ctypes import dlclose as _dlclose
except ImportError:  # not POSIX: the library stays loaded and keeps its state
    _dlclose = None

ENGINE = "espeak-ng"
INSTALL_FROM = "Debian"
PACKAGES = ("espeak-ng",)

# The English accents espeak-ng 1.51 ships (lang/gmw/en*), in the names -v accepts.
ACCENTS = ESPEAK_ACCENTS

# Voice variants (espeak-ng-data/voices/!v) that change pitch and formants the way another
# speaker would; "" is the accent's own (male) voice. Kept: the stock m1-m8 and f1-f5 (f2, f3
# and f5 add a little breath noise), and three whose settings stay near them: max (weaker
# upper formants), quincy (a low male voice, 67-100 Hz) and linda (a higher female voice,
# 200-247 Hz). Left out, by their settings: the Klatt-synthesiser voices (klatt*, adam,
# benjamin, caleb, david, edward*, robosoft*, announcer, UniRobot), long or strong echoes
# (RicishayMax*, Demonic, Marco, pablo, Alicia, anikaRobot), whisper/croak/grandpa/grandma
# (voicing cut or flutter 20), voicing far from 100% (Annie, Hugo, Mike, Alex, iven*, paul,
# travis, steph3 ...), a flat pitch (Alex, robosoft6/8), and formant tables shifted far from a
# human vocal tract (boris, kaukovalta, Tweaky, zac, Lee, Andy, steph's F4 at 9%).
VARIANTS = (
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "max",
    "quincy",
    "linda",
)

# espeak's defaults: 175 words per minute and pitch 50 on its 0-100 scale.
_DEFAULT_WPM = 175
_MIN_WPM, _MAX_WPM = 80, 450  # espeakRATE_MINIMUM / espeakRATE_MAXIMUM

# Ranges that keep the speech natural. espeak's 175 wpm default is already a brisk reading
# pace, so slower reaches further (x0.8 = 140 wpm, a careful read) than faster (x1.15 = 201
# wpm, quick conversation); measured durations follow the factor (x1.24 longer at 0.8, x0.88
# at 1.15). The variants already spread the voices over 70-250 Hz, so pitch only needs a
# modest shift on top (measured median F0 with the ranges' ends, see _pitch_values): the
# deepest voices (m8, quincy) keep 74-77 Hz (5th percentile 66 Hz) at x0.8, the highest
# (linda) reaches 281 Hz (95th percentile 302 Hz) at x1.25.
RATE_RANGE = (0.8, 1.15)
PITCH_RANGE = (0.8, 1.25)

# espeak_AUDIO_OUTPUT / espeak_POSITION_TYPE / flags / parameters / events (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of exit() when the data is missing
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE, _PUNCTUATION, _CAPITALS, _WORDGAP = 1, 2, 3, 4, 5, 6, 7
_VOICE_FILES = {"en-gb": "en"}
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Collector:
    """What the synth callback receives: audio chunks and PHONEME events."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.events: list[tuple[str, int]] = []

    def __call__(self, wav, count, events) -> int:  # noqa: ANN001 (ctypes pointers)
        if count > 0 and wav:
            self.chunks.append(ctypes.string_at(wav, 2 * count))
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                self.events.append((event.id.string.decode("latin-1"), event.sample))
            i += 1
        return 0  # go on


def _library_name() -> str:
    """The name that loads libespeak-ng (looked up once: find_library runs ldconfig)."""
    global _LIBRARY_NAME
    if _LIBRARY_NAME is None:
        error: OSError | None = None
        for name in ("libespeak-ng.so.1", ctypes.util.find_library("espeak-ng")):
            if name:
                try:
                    _unload(ctypes.CDLL(name))
                except OSError as exc:
                    error = exc
                else:
                    _LIBRARY_NAME = name
                    break
        else:
            raise OSError(f"libespeak-ng not found ({error})")
    return _LIBRARY_NAME


def _unload(lib: ctypes.CDLL) -> None:
    if _dlclose is not None:
        _dlclose(lib._handle)


def _loaded_elsewhere(name: str) -> bool:
    """True when something else in the process holds the library (we cannot unload it)."""
    if _dlclose is None:
        return True
    try:
        probe = ctypes.CDLL(name, mode=os.RTLD_NOLOAD)
    except OSError:
        return False
    _unload(probe)
    return True


def _initialise(lib: ctypes.CDLL) -> int:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, options)
    if rate <= 0:
        raise OSError("initialisation failed (espeak-ng-data missing?)")
    return rate


@contextlib.contextmanager
def _fresh_library() -> Iterator[tuple[ctypes.CDLL, int]]:
    """Load and initialise libespeak-ng; terminate and unload it afterwards.

    Why per call: the wave generator keeps state in static variables (glottal phase, flutter,
    echo buffer) that no API resets, so a sentence sounds slightly different, and lasts a few
    samples more or less, after each earlier one. Re-initialising does not reset them (and
    after espeak_Terminate, 1.51 hangs in the next synthesis); unloading the library does, so
    every call starts as a new process would and the same inputs give the same samples
    whatever came before, in whichever worker. It costs ~2 ms and leaves ~3-6 kB that
    espeak_Terminate does not free. Should another module of the process hold the library,
    it cannot be unloaded: then one initialisation serves every call, without that guarantee.
    """
    global _PERSISTENT
    name = _library_name()
    if _PERSISTENT is not None or _loaded_elsewhere(name):
        if _PERSISTENT is None:
            lib = ctypes.CDLL(name)
            _PERSISTENT = lib, _initialise(lib)
        yield _PERSISTENT
        return
    lib = ctypes.CDLL(name)
    try:
        rate = _initialise(lib)
        try:
            yield lib, rate
        finally:
            lib.espeak_Terminate()
    finally:
        _unload(lib)


def _speak(
    text: str, name: str, wpm: int, pitch: int, pitch_range: int
) -> tuple[np.ndarray, list, int]:
    """int16 samples, (mnemonic, start sample) for every phoneme, and the sample rate."""
    collector = _Collector()
    callback = _Callback(collector)  # referenced until the library is gone
    # the breathy voices (f2, f3, f5) draw their noise from libc's rand(), whose state
    # outlives the library: seed it from the inputs (this resets the process's rand())
    seed = zlib.crc32(f"{name}|{wpm}|{pitch}|{pitch_range}|{text}".encode())
    with _LOCK, _fresh_library() as (lib, rate):
        _libc().srand(seed)
        lib.espeak_SetSynthCallback(callback)
        # an unknown variant is silently ignored by SetVoiceByName: look for its file
        variant = name.partition("+")[2]
        if lib.espeak_SetVoiceByName(_espeak_name(name).encode()) != 0 or (
            variant and not (_data_dir(lib) / "voices" / "!v" / variant).is_file()
        ):
            raise SynthesisError(f"espeak-ng voice '{name}': not found")
        for parameter, value in (
            (_RATE, wpm),
            (_PITCH, pitch),
            (_RANGE, pitch_range),
            (_VOLUME, 100),
            (_PUNCTUATION, 0),
            (_CAPITALS, 0),
            (_WORDGAP, 0),
        ):
            lib.espeak_SetParameter(parameter, value, 0)
        data = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
    if status != 0:
        raise SynthesisError(f"espeak-ng voice '{name}': synthesis failed ({status}): {text!r}")
    return np.frombuffer(b"".join(collector.chunks), dtype=np.int16), collector.events, rate


def _data_dir(lib: ctypes.CDLL) -> Path:
    """espeak-ng-data, as the initialised library found it."""
    path = ctypes.c_char_p()
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_Info(ctypes.byref(path))
    return Path(os.fsdecode(path.value or b""))


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None)
        _LIBC.srand.argtypes = [ctypes.c_uint]
    return _LIBC


def _espeak_name(name: str) -> str:
    # SetVoiceByName matches voice file names; British English's file is "en" (language en-gb)
    accent, plus, variant = name.partition("+")
    return f"{_VOICE_FILES.get(accent.lower(), accent)}{plus}{variant}"


_LOCK = threading.Lock()  # libespeak-ng keeps its state in globals: one call at a time
_LIBRARY_NAME: str | None = None
_LIBC: ctypes.CDLL | None = None
_PERSISTENT: tuple[ctypes.CDLL, int] | None = None  # only when the library cannot be unloaded
_AVAILABLE: bool | None = None


def _reset_lock_after_fork() -> None:
    # a lock held by another thread at fork time would never be released in the child
    global _LOCK
    _LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_after_fork)


def available() -> bool:
    """True when libespeak-ng and its data load (never raises; checked once per process)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            with _LOCK, _fresh_library():
                pass
            _AVAILABLE = True
        except (OSError, AttributeError):
            _AVAILABLE = False
    return _AVAILABLE


def voices() -> list[Voice]:
    """Every accent with every variant: ``en-us``, ``en-us+m1`` ... ``en-029+linda``."""
    return [
        Voice(ENGINE, f"{accent}+{variant}" if variant else accent)
        for accent in ACCENTS
        for variant in VARIANTS
    ]


def prosody_range(voice: Voice | None = None) -> dict[str, tuple[float, float]]:
    """Natural-sounding rate and pitch factors (see RATE_RANGE, PITCH_RANGE), for every voice."""
    return {"rate": RATE_RANGE, "pitch": PITCH_RANGE}


def _wpm(rate: float) -> int:
    return round(_DEFAULT_WPM * rate)


def _pitch_values(pitch: float) -> tuple[int, int]:
    """espeak's pitch and range parameters that scale the whole F0 contour by ``pitch``.

    F0 = base + range * contour. The pitch parameter scales the voice's base by
    2 ** ((value - 50) / 50) (its pitch_adjust_tab), the range parameter scales its range by
    value / 50: scaling both keeps the intonation's shape. Measured median F0 over the
    variants: x0.86 / x1.17 with the pitch parameter alone at 0.8 / 1.25, x0.83 / x1.2 with both.
    """
    if pitch <= 0:
        return -1, -1
    return round(50 + 50 * math.log2(pitch)), round(50 * pitch)


def _accent(voice: Voice) -> str:
    if voice.engine != ENGINE:
        raise SynthesisError(f"voice {voice}: not an {ENGINE} voice")
    accent = voice.name.partition("+")[0].lower()
    if accent not in ACCENTS:
        raise SynthesisError(
            f"voice {voice}: accent '{accent}' not supported (one of {', '.join(ACCENTS)})"
        )
    return accent


def synthesize(text: str, voice: Voice, prosody: Prosody = DEFAULT_PROSODY) -> Synthesis:
    """Speak ``text``: 16 kHz float32 audio and its phones (39-phone set, no silences)."""
    accent = _accent(voice)
    wpm, (pitch, pitch_range) = _wpm(prosody.rate), _pitch_values(prosody.pitch)
    if not _MIN_WPM <= wpm <= _MAX_WPM:
        raise SynthesisError(
            f"voice {voice}: rate {prosody.rate} outside what espeak-ng can do "
            f"({_MIN_WPM / _DEFAULT_WPM:.2f}-{_MAX_WPM / _DEFAULT_WPM:.2f})"
        )
    if not (0 <= pitch <= 100 and 0 <= pitch_range <= 100):
        raise SynthesisError(f"voice {voice}: pitch {prosody.pitch} outside 0.5-2.0")
    text = text.replace("\0", " ")
    if not text.strip():
        raise SynthesisError(f"voice {voice}: nothing to say in sentence {text!r}")
    try:
        samples, events, rate = _speak(text, voice.name, wpm, pitch, pitch_range)
    except (OSError, AttributeError) as exc:
        raise SynthesisError(f"voice {voice}: {ENGINE} not available: {exc}") from exc
    if samples.size == 0 or np.abs(samples).max() < SILENCE_PEAK * 32768:
        raise SynthesisError(f"voice {voice}: no audible speech for sentence {text!r}")
    starts = [sample for _, sample in events] + [samples.size]
    raw = [
        PhoneSegment(mnemonic, starts[i] / rate, starts[i + 1] / rate)
        for i, (mnemonic, _) in enumerate(events)
    ]
    try:
        phones = espeak_segments(raw, accent)
    except ValueError as exc:
        raise SynthesisError(f"voice {voice}: {exc} in sentence {text!r}") from exc
    if not phones:
        raise SynthesisError(f"voice {voice}: no phones for sentence {text!r}")
    audio = resample(samples.astype(np.float32) / 32768.0, rate, SAMPLE_RATE)
    duration = len(audio) / SAMPLE_RATE
    for phone in phones:  # resampling may shorten the audio by a fraction of a sample
        phone.start = min(phone.start, duration)
        phone.end = min(phone.end, duration)
    return Synthesis(audio=np.clip(audio, -1.0, 1.0), sample_rate=SAMPLE_RATE, phones=phones)
