"""An offline corpus of read English speech made with the synthesisers Debian ships.

``prepare_synth`` plans every utterance in the main process (which sentence, which voice, which
speaking rate and pitch), so the corpus depends on the seed alone, never on the number of
worker processes; the workers only synthesise and write FLAC files. The plan:

* **Sentences** come from the built-in Resource-Management-style grammar or from text files;
  they are split three ways first, so the test and dev sentences never occur in training.
* **Voices**: espeak-ng (accents x variants), flite (kal16, slt, rms, awb) and festival
  (kal_diphone, ked_diphone, cmu_us_slt_arctic_hts). The test voices are held out of training
  entirely; dev is spoken half by its own held-out voices, half by training voices. Each split
  gives every engine the same share of its utterances, so espeak-ng's many variants do not
  crowd out the other engines.
* **Labels**: the word transcript (``text``), the phones the engine actually synthesised in
  the 39-phone set (``phones``, a Kaldi text table) and their times (``phones.ctm``).

An engine that is not installed is skipped with a warning naming its Debian packages; a
sentence an engine cannot say (an error, no audio, silence) is dropped and counted.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import multiprocessing
import os
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType

from tqdm import tqdm

from asr.corpora.synthetic.prompts import PromptError, generate_prompts, read_prompt_files
from asr.corpora.synthetic.voice import PhoneSegment, Prosody, Synthesis, SynthesisError, Voice
from asr.data.audio import write_flac
from asr.data.datadir import DataDir, save_replacing, spk2utt_from_utt2spk
from asr.data.speed_perturb import perturb_speed
from asr.data.validate import validate_datadir
from asr.errors import ConfigError, CorpusError
from asr.fileio import atomic_write

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
ENGINE_MODULES = {
    "espeak-ng": "asr.corpora.synthetic.espeak",
    "flite": "asr.corpora.synthetic.flite",
    "festival": "asr.corpora.synthetic.festival",
    "piper": "asr.corpora.synthetic.piper",
}
# The Debian synthesisers: the corpus the recipes' results were measured on. piper, a neural
# voice from PyPI, joins when asked for (--engines), so that a result stays comparable.
DEFAULT_ENGINES = ("espeak-ng", "flite", "festival")
# Held out of training. One voice of each engine family is in test, and a spread of espeak-ng
# accents and variants (male and female), so "unseen voice" covers every kind of synthesis.
DEFAULT_TEST_VOICES = (
    "flite:rms",
    "festival:ked_diphone",
    "espeak-ng:en-029+m2",
    "espeak-ng:en-gb-scotland+f2",
    "espeak-ng:en-us+m4",
    "espeak-ng:en-gb-x-rp+f4",
)
DEFAULT_DEV_VOICES = (
    "espeak-ng:en-us-nyc+f1",
    "espeak-ng:en-gb+m5",
    "espeak-ng:en-gb-x-gbclan+f3",
)
# Planning needs a length before anything is synthesised: seconds per utterance, measured on
# the engines' default rates (about 0.27 s per word plus the pauses at both ends).
_SECONDS_PER_WORD = 0.27
_SECONDS_PER_UTTERANCE = 0.45
_BATCH = 16  # utterances per worker task: festival starts once per batch


@dataclass(frozen=True)
class PlannedUtterance:
    """One utterance to make: the seed decided all of it."""

    utt_id: str
    split: str
    text: str
    voice: Voice
    prosody: Prosody
    speed: float = 1.0  # speed perturbation of the synthesised audio (training only)
    vocal_tract: float = 1.0  # formant scaling (training only; see SynthConfig.train_vocal_tract)
    book: str = ""  # the text file the sentence came from (its stem); "" for the grammar


@dataclass
class SynthConfig:
    """What ``asr prepare synth`` makes; the defaults are the recipe's default size."""

    hours: float = 1.0
    dev_utts: int = 0  # 0: 5% of the training utterances, at least 200
    test_utts: int = 0
    seed: int = 0
    text_files: list[str] = field(default_factory=list)
    min_words: int = 3
    max_words: int = 20
    test_voices: list[str] = field(default_factory=lambda: list(DEFAULT_TEST_VOICES))
    dev_voices: list[str] = field(default_factory=lambda: list(DEFAULT_DEV_VOICES))
    engines: list[str] = field(default_factory=lambda: list(DEFAULT_ENGINES))
    # Each training utterance is played faster or slower by a factor drawn from this range
    # (sox's speed: tempo, pitch and formants move together, as with a shorter or longer vocal
    # tract; Ko et al. 2015), so a few voices of an engine stand for many. (1, 1): off.
    train_speed: tuple[float, float] = (0.9, 1.1)
    # Voice transformation for the engines with few voices: each of their training utterances
    # gets a vocal-tract factor v from this range, which scales its formants by v and leaves
    # its tempo and pitch as drawn. The engine speaks at rate/v and pitch/v, and the audio is
    # then played v times faster (the speed change scales all three by v). Voices whose pitch
    # the engine cannot set (flite rms, festival's HTS voice, piper) get pitch x v as well.
    # (1, 1): off.
    train_vocal_tract: tuple[float, float] = (1.0, 1.0)
    vocal_tract_engines: tuple[str, ...] = ("flite", "festival", "piper")
    # 0: each utterance draws its own voice. N > 0: as a LibriSpeech reader reads a chapter,
    # a voice reads runs of up to N consecutive sentences of one text file, so per-speaker
    # statistics (CMVN over a reader-chapter) see more than one sentence.
    chapter_utts: int = 0


@dataclass
class SynthReport:
    """What a run made, per split; written as ``OUT/synth_info.json``."""

    engines: list[str] = field(default_factory=list)
    missing_engines: dict[str, str] = field(default_factory=dict)
    utterances: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)
    voices: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_examples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    real_time_factor_per_core: float = 0.0
    lm_sentences: int = 0

    def summary(self) -> str:
        parts = [
            f"{split} {self.utterances.get(split, 0)} utts {self.hours.get(split, 0.0):.2f} h "
            f"{len(self.voices.get(split, []))} voices"
            for split in SPLITS
        ]
        dropped = sum(self.dropped.values())
        lm = f"; {self.lm_sentences} LM sentences (local/lm_text)" if self.lm_sentences else ""
        return "; ".join(parts) + f"; {dropped} sentences dropped" + lm


def engine_module(engine: str) -> ModuleType:
    if engine not in ENGINE_MODULES:
        raise ConfigError(f"unknown engine '{engine}' (choose from {', '.join(ENGINE_MODULES)})")
    return importlib.import_module(ENGINE_MODULES[engine])


def available_engines(engines: Iterable[str]) -> tuple[list[str], dict[str, str]]:
    """The engines that work here, and for the others where to install them from (``Debian:
    flite``, ``PyPI: piper-tts ...``)."""
    usable, missing = [], {}
    for engine in engines:
        module = engine_module(engine)
        if module.available():
            usable.append(engine)
        else:
            missing[engine] = f"{module.INSTALL_FROM}: {' '.join(module.PACKAGES)}"
    return usable, missing


def _parse_voices(texts: Iterable[str], what: str) -> list[Voice]:
    voices = []
    for text in texts:
        try:
            voices.append(Voice.parse(text))
        except ValueError as exc:
            raise ConfigError(f"{what}: {exc}") from None
    return voices


def _estimated_seconds(text: str) -> float:
    return _SECONDS_PER_UTTERANCE + _SECONDS_PER_WORD * len(text.split())


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _by_engine(voices: Sequence[Voice]) -> dict[str, list[Voice]]:
    groups: dict[str, list[Voice]] = {}
    for voice in sorted(voices):
        groups.setdefault(voice.engine, []).append(voice)
    return groups


def _assign_voices(count: int, voices: Sequence[Voice], rng: random.Random) -> list[Voice]:
    """``count`` voices: engines take turns, and each engine cycles through its voices in a
    shuffled order, so every engine and every voice gets an even share."""
    groups = _by_engine(voices)
    engines = sorted(groups)
    cycles = {e: rng.sample(groups[e], len(groups[e])) for e in engines}
    out = []
    for i in range(count):
        engine = engines[i % len(engines)]
        ring = cycles[engine]
        out.append(ring[(i // len(engines)) % len(ring)])
    rng.shuffle(out)
    return out


def _prosody(voice: Voice, rng: random.Random) -> Prosody:
    ranges = engine_module(voice.engine).prosody_range(voice)
    rate = rng.uniform(*ranges["rate"])
    pitch = rng.uniform(*ranges["pitch"])
    return Prosody(round(rate, 3), round(pitch, 3))


def _compensated(prosody: Prosody, voice: Voice, vocal_tract: float) -> Prosody:
    """The prosody to synthesise with so that, played ``vocal_tract`` times faster, the
    utterance has ``prosody``'s tempo and pitch (and formants scaled by ``vocal_tract``)."""
    fixed_pitch = engine_module(voice.engine).prosody_range(voice)["pitch"] == (1.0, 1.0)
    pitch = prosody.pitch if fixed_pitch else round(prosody.pitch / vocal_tract, 3)
    return Prosody(round(prosody.rate / vocal_tract, 3), pitch)


def _split_prompts(
    prompts: list[str], need: dict[str, int], rng: random.Random
) -> dict[str, list[str]]:
    """Disjoint sentence pools: test and dev take what they need first, train the rest."""
    order = rng.sample(prompts, len(prompts))
    pools: dict[str, list[str]] = {}
    start = 0
    for split in ("test", "dev"):
        pools[split] = order[start : start + need[split]]
        start += need[split]
    pools["train"] = order[start:]
    return pools


def book_name(path: str | os.PathLike) -> str:
    """The name a text file's sentences are filed under: its stem (``austen-emma``), blanks
    made ``_`` so that it is one field of a Kaldi table."""
    return "_".join(Path(path).stem.split()) or "text"


def _read_prompts(
    config: SynthConfig, min_words: int | None = None, max_words: int | None = None
) -> list[str]:
    """Sentences from every readable text file; a file that cannot be read is named and skipped."""
    return list(_read_prompt_sources(config, min_words, max_words))


def _read_prompt_sources(
    config: SynthConfig, min_words: int | None = None, max_words: int | None = None
) -> dict[str, str]:
    """Sentence -> the book (:func:`book_name`) it was first read from, in reading order."""
    sources: dict[str, str] = {}
    for path in config.text_files:
        try:
            sentences = read_prompt_files(
                [path], min_words or config.min_words, max_words or config.max_words
            )
        except PromptError as exc:
            log.warning("skipping %s", exc)
            continue
        for sentence in sentences:
            sources.setdefault(sentence, book_name(path))
    return sources


def _chapter_runs(texts: Sequence[str], book_of: dict[str, str], size: int) -> list[list[int]]:
    """Indices of ``texts`` grouped into runs of at most ``size`` sentences of one book, books
    in order of first appearance and sentences in their pool order within a book."""
    by_book: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        by_book.setdefault(book_of.get(text, ""), []).append(i)
    return [
        indices[start : start + size]
        for indices in by_book.values()
        for start in range(0, len(indices), size)
    ]


def _split_voices(
    split: str,
    count: int,
    voices_of: dict[str, list[Voice]],
    dev_voices: Sequence[Voice],
    rng: random.Random,
) -> list[Voice]:
    """``count`` voices for a split's utterances (or chapter runs), as ``plan_corpus`` says."""
    if split != "dev":
        return _assign_voices(count, voices_of[split], rng)
    # half in voices never used for training, half in training voices
    own = _assign_voices((count + 1) // 2, dev_voices or voices_of["train"], rng)
    shared = _assign_voices(count // 2, voices_of["train"], rng)
    voices = [v for pair in zip(own, shared, strict=False) for v in pair]
    return voices + own[len(shared) :]


def plan_corpus(
    config: SynthConfig, usable_engines: Sequence[str]
) -> tuple[list[PlannedUtterance], dict[str, list[Voice]]]:
    """Every utterance of the corpus and the voices of each split, from the seed alone."""

    if config.hours <= 0:
        raise ConfigError(f"--hours {config.hours}: must be positive")
    all_voices = [v for e in usable_engines for v in engine_module(e).voices()]
    known = set(all_voices)
    test_asked = _parse_voices(config.test_voices, "test voices")
    dev_asked = _parse_voices(config.dev_voices, "dev voices")
    for voice in test_asked + dev_asked:
        # a voice of a missing engine is dropped with the engine; an unknown one is a typo
        if voice not in known and voice.engine in usable_engines:
            raise ConfigError(f"voice {voice}: not a voice of {voice.engine} here")
    test_voices = [v for v in test_asked if v in known]
    dev_voices = [v for v in dev_asked if v in known]
    held_out = set(test_voices) | set(dev_voices)
    train_voices = [v for v in all_voices if v not in held_out]
    if not test_voices:
        raise CorpusError("no test voice is available (their engines are not installed)")
    if not train_voices:
        raise CorpusError("no training voice is left once the test and dev voices are held out")

    train_seconds = config.hours * 3600.0
    # a generous first guess of the training sentences needed; text files give what they give
    train_guess = int(train_seconds / (_SECONDS_PER_UTTERANCE + 5 * _SECONDS_PER_WORD)) + 1
    held = max(200, round(0.05 * train_guess))
    need = {"dev": config.dev_utts or held, "test": config.test_utts or held}
    rng = random.Random(_stable_seed(config.seed, "prompts"))
    book_of: dict[str, str] = {}
    if config.text_files:
        book_of = _read_prompt_sources(config)
        prompts = list(book_of)
    else:
        prompts = generate_prompts(4 * train_guess + need["dev"] + need["test"], config.seed)
    if len(prompts) < need["dev"] + need["test"] + 10:
        raise CorpusError(
            f"only {len(prompts)} usable sentences: too few for {need['dev']} dev and "
            f"{need['test']} test utterances plus training"
        )
    pools = _split_prompts(prompts, need, rng)

    plan: list[PlannedUtterance] = []
    voices_of = {"train": train_voices, "test": test_voices}
    for split in SPLITS:
        split_rng = random.Random(_stable_seed(config.seed, split))
        pool = pools[split]
        if split == "train":
            texts, total, i = [], 0.0, 0
            while total < train_seconds:
                text = pool[i % len(pool)]  # reuse sentences, in new voices, only if we must
                texts.append(text)
                total += _estimated_seconds(text)
                i += 1
        else:
            texts = pool
        if config.chapter_utts > 0:
            runs = _chapter_runs(texts, book_of, config.chapter_utts)
            texts = [texts[i] for run in runs for i in run]
            run_voices = _split_voices(split, len(runs), voices_of, dev_voices, split_rng)
            voices = [v for run, v in zip(runs, run_voices, strict=True) for _ in run]
        else:
            voices = _split_voices(split, len(texts), voices_of, dev_voices, split_rng)
        if split == "dev":
            voices_of["dev"] = sorted(set(voices))
        for n, (text, voice) in enumerate(zip(texts, voices, strict=True)):
            utt_id = f"{voice.id}-{split}{n:06d}"
            prosody = _prosody(voice, split_rng)
            speed = round(split_rng.uniform(*config.train_speed), 3) if split == "train" else 1.0
            vocal_tract = 1.0
            scaled = split == "train" and voice.engine in config.vocal_tract_engines
            if scaled and tuple(config.train_vocal_tract) != (1.0, 1.0):
                # from its own generator: the corpus is otherwise the same utterance for
                # utterance as without it (same sentences, voices, prosody), for ablations
                vtl_rng = random.Random(_stable_seed(config.seed, "vocal-tract", utt_id))
                vocal_tract = round(vtl_rng.uniform(*config.train_vocal_tract), 3)
                prosody = _compensated(prosody, voice, vocal_tract)
            plan.append(
                PlannedUtterance(
                    utt_id,
                    split,
                    text,
                    voice,
                    prosody,
                    round(speed * vocal_tract, 4),
                    vocal_tract,
                    book_of.get(text, ""),
                )
            )
    return plan, voices_of


@dataclass
class _Made:
    utt_id: str
    split: str
    path: str | None
    duration: float
    phones: list[PhoneSegment]
    error: str | None = None


def _synthesize_batch(batch: Sequence[PlannedUtterance]) -> list[Synthesis | SynthesisError]:
    module = engine_module(batch[0].voice.engine)
    items = [(u.text, u.voice, u.prosody) for u in batch]
    if hasattr(module, "synthesize_batch"):
        return module.synthesize_batch(items)
    results: list[Synthesis | SynthesisError] = []
    for text, voice, prosody in items:
        try:
            results.append(module.synthesize(text, voice, prosody))
        except SynthesisError as exc:
            results.append(exc)
    return results


def _scale_times(phone: PhoneSegment, factor: float) -> PhoneSegment:
    def scaled(t: float | None) -> float | None:
        return None if t is None else t * factor

    return PhoneSegment(phone.phone, scaled(phone.start), scaled(phone.end))


def _make_batch(task: tuple[Path, list[PlannedUtterance]]) -> list[_Made]:
    out_dir, batch = task
    made = []
    for utt, result in zip(batch, _synthesize_batch(batch), strict=True):
        if isinstance(result, SynthesisError):
            made.append(_Made(utt.utt_id, utt.split, None, 0.0, [], str(result)))
            continue
        audio, phones = result.audio, result.phones
        if utt.speed != 1.0:
            audio = perturb_speed(audio, result.sample_rate, utt.speed)
            phones = [_scale_times(p, 1.0 / utt.speed) for p in phones]
        path = out_dir / utt.split / "flac" / f"{utt.utt_id}.flac"
        write_flac(path, audio, result.sample_rate)
        made.append(
            _Made(utt.utt_id, utt.split, str(path), len(audio) / result.sample_rate, phones)
        )
    return made


def _batches(plan: Sequence[PlannedUtterance], out_dir: Path) -> list[tuple[Path, list]]:
    # one voice per batch, so festival loads a voice once per batch
    by_voice: dict[Voice, list[PlannedUtterance]] = {}
    for utt in plan:
        by_voice.setdefault(utt.voice, []).append(utt)
    tasks = []
    for utts in by_voice.values():
        for i in range(0, len(utts), _BATCH):
            tasks.append((out_dir, utts[i : i + _BATCH]))
    # interleave the engines so that the progress bar's rate means something early on
    tasks.sort(key=lambda t: _stable_seed(t[1][0].utt_id))
    return tasks


def _ctm_lines(utt_id: str, phones: Sequence[PhoneSegment]) -> Iterator[str]:
    for p in phones:
        if p.start is None or p.end is None:
            continue
        yield f"{utt_id} 1 {p.start:.3f} {max(p.end - p.start, 0.0):.3f} {p.phone}\n"


def _write_split(
    out_dir: Path, split: str, plan: Sequence[PlannedUtterance], made: dict[str, _Made]
) -> DataDir:
    split_dir = out_dir / split
    good = [u for u in plan if u.split == split and made[u.utt_id].path is not None]
    good.sort(key=lambda u: u.utt_id)
    utt2spk = {u.utt_id: u.voice.id for u in good}
    data = DataDir(
        path=split_dir,
        utt2spk=utt2spk,
        spk2utt=spk2utt_from_utt2spk(utt2spk),
        wav_scp={u.utt_id: str(Path(made[u.utt_id].path).resolve()) for u in good},
        text={u.utt_id: u.text for u in good},
        utt2dur={u.utt_id: round(made[u.utt_id].duration, 4) for u in good},
    )
    save_replacing(data)  # a rerun must not leave the old feats.scp pointing at old features
    with atomic_write(split_dir / "phones") as handle:
        for u in good:
            handle.write(f"{u.utt_id} {' '.join(p.phone for p in made[u.utt_id].phones)}\n")
    with atomic_write(split_dir / "phones.ctm") as handle:
        for u in good:
            handle.writelines(_ctm_lines(u.utt_id, made[u.utt_id].phones))
    with atomic_write(split_dir / "utt2voice") as handle:
        for u in good:
            vtl = f" vtl={u.vocal_tract}" if u.vocal_tract != 1.0 else ""
            handle.write(
                f"{u.utt_id} {u.voice} rate={u.prosody.rate} pitch={u.prosody.pitch} "
                f"speed={u.speed}{vtl}\n"
            )
    if any(u.book for u in good):
        with atomic_write(split_dir / "utt2book") as handle:
            handle.writelines(f"{u.utt_id} {u.book}\n" for u in good)
    problems = validate_datadir(split_dir)
    if problems:
        raise CorpusError(f"{split_dir}: wrote an invalid data directory: {problems[0]}")
    return data


def write_lm_text(path: Path, config: SynthConfig, plan: Sequence[PlannedUtterance]) -> int:
    """Language-model text: every sentence of the text files, of any length, except those read
    in dev and test, so an LM trained on it has never seen a sentence it is scored on (training
    sentences stay in, as a corpus's own transcripts do). Returns the number of sentences."""
    held_out = {u.text for u in plan if u.split != "train"}
    sentences = [s for s in _read_prompts(config, 1, 1_000_000) if s not in held_out]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.writelines(f"{s}\n" for s in sentences)
    return len(sentences)


def prepare_synth(
    out_dir: str | os.PathLike,
    config: SynthConfig | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> SynthReport:
    """Synthesise the corpus into ``out_dir/{train,dev,test}`` (Kaldi data dirs, FLAC audio)."""
    config = config or SynthConfig()
    out_dir = Path(out_dir)
    jobs = jobs or os.cpu_count() or 1
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be at least 1")
    usable, missing = available_engines(config.engines)
    for engine, packages in missing.items():
        log.warning("%s is not installed (%s); building the corpus without it", engine, packages)
    if not usable:
        raise CorpusError(
            "no speech synthesiser is installed ("
            + "; ".join(missing.values())
            + "); 'make setup' installs them"
        )
    plan, voices_of = plan_corpus(config, usable)
    report = SynthReport(engines=usable, missing_engines=missing)

    start = time.perf_counter()
    made: dict[str, _Made] = {}
    dropped: Counter[str] = Counter()
    tasks = _batches(plan, out_dir)
    bar = tqdm(total=len(plan), desc="synthesise", unit="utt", disable=not progress)
    # forkserver, not fork: a child forked from a process whose other threads hold a lock (an
    # OpenMP pool after a resample, a monitor thread) can wait for it forever, as one did in the
    # test suite; the fork server starts from a fresh interpreter and this module imports fast
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    pool = context.Pool(jobs) if jobs > 1 else None
    try:
        results = pool.imap_unordered(_make_batch, tasks) if pool else map(_make_batch, tasks)
        for batch in results:
            for item in batch:
                made[item.utt_id] = item
                if item.error:
                    dropped[item.split] += 1
                    if len(report.dropped_examples) < 20:
                        report.dropped_examples.append(item.error)
                    log.debug("dropped %s: %s", item.utt_id, item.error)
            bar.update(len(batch))
    finally:
        bar.close()
        if pool:
            pool.terminate()
    elapsed = time.perf_counter() - start

    for split in SPLITS:
        data = _write_split(out_dir, split, plan, made)
        report.utterances[split] = len(data.utt2spk)
        report.hours[split] = round(sum((data.utt2dur or {}).values()) / 3600.0, 4)
        report.voices[split] = [str(v) for v in sorted(voices_of[split])]
    report.dropped = {split: dropped[split] for split in SPLITS}
    if config.text_files:
        report.lm_sentences = write_lm_text(out_dir / "local" / "lm_text", config, plan)
    report.seconds = round(elapsed, 2)
    audio_seconds = 3600.0 * sum(report.hours.values())
    report.real_time_factor_per_core = round(audio_seconds / max(elapsed, 1e-9) / jobs, 1)
    for split in SPLITS:
        if report.utterances[split] == 0:
            raise CorpusError(f"{out_dir / split}: every sentence was dropped")
    with atomic_write(out_dir / "synth_info.json") as handle:
        json.dump({"config": asdict(config), "report": asdict(report)}, handle, indent=1)
    if sum(dropped.values()):
        log.warning(
            "dropped %d sentences an engine could not say (e.g. %s)",
            sum(dropped.values()),
            report.dropped_examples[0],
        )
    return report
