"""What every synthesis engine takes and gives: a voice, its prosody and the labelled audio."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from asr.errors import AsrError

# short engine prefixes keep utterance ids readable: espeak-en-us-f3-000123
_ENGINE_PREFIX = {"espeak-ng": "espeak", "flite": "flite", "festival": "festival"}


class SynthesisError(AsrError):
    """An engine failed on a sentence or produced nothing to hear."""


@dataclass(frozen=True, order=True)
class Voice:
    """One voice of one engine, named as the engine names it (``en-us+f3``, ``slt``)."""

    engine: str
    name: str

    @property
    def id(self) -> str:
        """A Kaldi- and filesystem-safe id: letters, digits and '-' only."""
        prefix = _ENGINE_PREFIX.get(self.engine, self.engine)
        name = re.sub(r"_diphone$|_arctic_hts$", "", self.name)
        if self.engine == "espeak-ng" and "+" not in name:
            # "en-us" would be a prefix of "en-us+f3" and "en-us-nyc": Kaldi needs utterance
            # ids that sort like their speaker ids, which a speaker id prefixing another breaks
            name += "+base"
        return re.sub(r"[^A-Za-z0-9]+", "-", f"{prefix}-{name}").strip("-").lower()

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> Voice:
        """``engine:name`` (as printed by ``str``) back to a Voice."""
        engine, sep, name = text.partition(":")
        if not sep or not engine or not name:
            raise ValueError(f"voice '{text}': expected ENGINE:NAME, e.g. flite:slt")
        return cls(engine, name)


@dataclass(frozen=True)
class Prosody:
    """Relative speaking rate (1.1 = 10% faster) and mean pitch (1.1 = 10% higher)."""

    rate: float = 1.0
    pitch: float = 1.0


@dataclass
class PhoneSegment:
    """One phone with its start and end in seconds (None where the engine gives no times)."""

    phone: str
    start: float | None = None
    end: float | None = None


@dataclass
class Synthesis:
    """Mono float32 audio in [-1, 1] and the phones it holds (39-phone set, no silences)."""

    audio: np.ndarray
    sample_rate: int
    phones: list[PhoneSegment] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


DEFAULT_PROSODY = Prosody()
