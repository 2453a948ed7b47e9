"""New utterances spliced from the words of isolated-word recordings.

Each recording whose energy splits into as many speech runs as its transcript has words
(:func:`asr.data.pause_crops.speech_runs`) is cut into its words (each run plus ``MARGIN`` on
both sides), the pauses between them, and its leading and trailing silence. A new utterance
is a random leading silence, 1 to ``max_words`` words drawn at random from one speaker's
recordings, each pause a random pause cut to a random fraction of its length (down to none:
words that run into each other), and a random trailing silence.

With ``fragments`` p > 0, a new utterance starts, with probability p, in the tail of a random
word (its last 20-50%) before its leading silence, and ends, with probability p, in the onset
of one after its trailing silence; neither is in the transcript. A recording that begins just
after a word was said, or ends as the next one starts, holds such a fragment, and a network
that has never heard one reads it as the word (recipes/yesno/RESULTS). The fragments come from
a generator of their own, so ``fragments=0`` gives the same utterances as before it existed.
With ``fragment_label`` (e.g. ``[noise]``) each fragment is transcribed as that word, as
Kaldi's lexicons give noise and partial words a garbage word of their own (``<SPOKEN_NOISE>``):
the network then learns a class for them instead of having to leave them blank; scoring drops
the label (``asr score --remove-fillers``).

Why the yes/no recipe uses it: Kaldi's split puts every recording that starts with YES in the
test half, and a BiLSTM trained on the 25 training recordings learns what starts an
utterance, and which word follows which, from context rather than from the words. Crops at
pauses (:mod:`asr.data.pause_crops`) left one to three errors per run on the same few test
recordings (fast speech whose words merge, a YES before the first NO); random word sequences
with pauses of every length take those cues away. recipes/yesno/RESULTS has the measurements.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.data.audio import write_flac
from asr.data.datadir import DataDir, save_replacing, spk2utt_from_utt2spk
from asr.data.pause_crops import speech_runs
from asr.data.speed_perturb import audio_file_name, check_destination
from asr.errors import AsrError, ConfigError, DataDirError

log = logging.getLogger(__name__)

MARGIN = 0.03  # seconds of pause kept with each word: onsets and fricative tails are quiet
FRAGMENT = (0.2, 0.5)  # share of a word a fragment keeps: enough to sound, too little to name


@dataclass
class _Pieces:
    """One speaker's words (label, samples), pauses, leading and trailing silences."""

    words: list[tuple[str, np.ndarray]] = field(default_factory=list)
    pauses: list[np.ndarray] = field(default_factory=list)
    leads: list[np.ndarray] = field(default_factory=list)
    trails: list[np.ndarray] = field(default_factory=list)


@dataclass
class SpliceReport:
    """What ``splice_words`` did, for its summary line."""

    recordings: int = 0
    used: int = 0
    not_used: dict[str, str] = field(default_factory=dict)  # speech runs did not match words
    failed: dict[str, str] = field(default_factory=dict)  # unreadable
    spliced: int = 0

    def summary(self) -> str:
        return (
            f"{self.recordings} recordings: {self.used} cut into words, {len(self.not_used)} "
            f"not used (speech runs did not match the words), {len(self.failed)} unreadable; "
            f"{self.spliced} spliced utterances written"
        )


def _cut(wave: np.ndarray, rate: int, start: float, end: float) -> np.ndarray:
    return wave[max(0, int(start * rate)) : max(0, int(end * rate))]


def _fragments(pieces: _Pieces, chance: float, rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """An utterance's fragments: the tail of a word to start it, the onset of one to end it
    (each empty unless drawn). Always two draws per end, so the stream does not depend on
    which ends got one."""
    ends = []
    for at_start in (True, False):
        take = rng.random() < chance
        _, word = rng.choice(pieces.words)
        share = rng.uniform(*FRAGMENT)
        n = max(1, int(len(word) * share))
        piece = word[-n:] if at_start else word[:n]
        ends.append(piece if take else piece[:0])
    return ends[0], ends[1]


def splice_words(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    count: int,
    max_words: int = 8,
    seed: int = 0,
    keep_originals: bool = True,
    allow_pipe: bool = False,
    fragments: float = 0.0,
    fragment_label: str | None = None,
) -> SpliceReport:
    """Write ``out_dir``: the utterances of ``data_dir`` (with ``keep_originals``) and
    ``count`` spliced ones, ``<spk>-splice<k>`` of speaker ``<spk>``, FLAC files under
    ``out_dir/audio``. The same seed gives the same utterances. ``fragments``: the chance of
    a word fragment at each end, transcribed as ``fragment_label`` when one is given (see the
    module's docstring)."""
    if count < 1 or max_words < 1:
        raise ConfigError(f"splice: count ({count}) and max words ({max_words}) must be >= 1")
    if not 0.0 <= fragments <= 1.0:
        raise ConfigError(f"splice: fragments ({fragments}) is a probability: 0 to 1")
    if fragment_label is not None and (not fragment_label or len(fragment_label.split()) != 1):
        raise ConfigError(f"splice: fragment label {fragment_label!r} must be one word")
    source = DataDir.load(data_dir)
    out = Path(out_dir)
    check_destination(source.path, out)
    if source.segments is not None:
        raise DataDirError(f"{source.path / 'segments'}: splicing needs whole recordings")
    if source.text is None:
        raise DataDirError(f"{source.path / 'text'}: file not found")
    report = SpliceReport()
    pieces: dict[str, _Pieces] = {}
    rates: set[int] = set()
    for utt in source.utt_ids:
        report.recordings += 1
        words = source.text.get(utt, "").split()
        try:
            wave, rate = source.load_audio(utt, allow_pipe=allow_pipe)
        except AsrError as exc:
            log.warning("skipping %s", exc)
            report.failed[utt] = str(exc)
            continue
        runs = speech_runs(wave, rate)
        if len(runs) != len(words) or not words:
            report.not_used[utt] = f"{len(runs)} speech runs for {len(words)} words"
            continue
        report.used += 1
        rates.add(rate)
        mine = pieces.setdefault(source.utt2spk[utt], _Pieces())
        for i, (start, end) in enumerate(runs):
            mine.words.append((words[i], _cut(wave, rate, start - MARGIN, end + MARGIN)))
            if i + 1 < len(runs):
                mine.pauses.append(_cut(wave, rate, end + MARGIN, runs[i + 1][0] - MARGIN))
        mine.leads.append(_cut(wave, rate, 0.0, runs[0][0] - MARGIN))
        mine.trails.append(_cut(wave, rate, runs[-1][1] + MARGIN, len(wave) / rate))
    if not pieces:
        raise DataDirError(
            f"{source.path}: no recording splits into one speech run per word; nothing to splice"
        )
    if len(rates) > 1:
        raise DataDirError(f"{source.path}: recordings at several sample rates {sorted(rates)}")
    (rate,) = rates
    rng = random.Random(f"splice/{seed}")
    fragment_rng = random.Random(f"splice-fragments/{seed}")
    speakers = sorted(pieces)
    wav_scp: dict[str, str] = {}
    text: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    if keep_originals:
        for utt in source.utt_ids:
            if utt not in report.failed:
                wav_scp[utt], text[utt], utt2spk[utt] = (
                    source.wav_scp[utt],
                    source.text.get(utt, ""),
                    source.utt2spk[utt],
                )
    audio_dir = out / "audio"
    for k in range(count):
        spk = speakers[k % len(speakers)]
        mine = pieces[spk]
        chosen = [rng.choice(mine.words) for _ in range(rng.randint(1, max_words))]
        parts = [rng.choice(mine.leads)]
        head, tail = _fragments(mine, fragments, fragment_rng)
        if len(head):
            parts.insert(0, head)
        for i, (_, samples) in enumerate(chosen):
            parts.append(samples)
            if i + 1 < len(chosen) and mine.pauses:
                pause = rng.choice(mine.pauses)
                parts.append(pause[: int(len(pause) * rng.random())])
        parts.append(rng.choice(mine.trails))
        if len(tail):
            parts.append(tail)
        utt = f"{spk}-splice{k:05d}"
        if utt in utt2spk:
            raise DataDirError(f"{source.path / 'utt2spk'}: utterance id '{utt}' already taken")
        path = (audio_dir / audio_file_name(utt)).resolve()
        write_flac(path, np.concatenate(parts), rate)
        labels = [w for w, _ in chosen]
        if fragment_label is not None:
            head_label = [fragment_label] * (len(head) > 0)
            labels = head_label + labels + [fragment_label] * (len(tail) > 0)
        wav_scp[utt], text[utt], utt2spk[utt] = str(path), " ".join(labels), spk
        report.spliced += 1
    save_replacing(
        DataDir(
            path=out,
            utt2spk=utt2spk,
            spk2utt=spk2utt_from_utt2spk(utt2spk),
            wav_scp=wav_scp,
            text=text,
        )
    )
    return report
