"""TIMIT (LDC93S1): turn the LDC distribution into Kaldi data directories, as Kaldi's recipe.

The LDC layout is ``TRAIN|TEST/DR<n>/<SPEAKER>/<UTT>.WAV|.PHN|.WRD|.TXT`` (upper or lower case
names), the audio NIST SPHERE at 16 kHz, which ``asr.data.audio.load_audio`` reads as it is. As
Kaldi's ``egs/timit/s5/local/timit_data_prep.sh``:

* the dialect sentences SA1 and SA2 are left out everywhere (every speaker reads the same two);
* train = every speaker under TRAIN (462 speakers, 3,696 SI and SX utterances), dev = the
  50-speaker development set and test = the 24-speaker core test set, both from TEST, named by
  the speaker lists in ``asr/resources/timit`` (Kaldi's ``conf/dev_spk.list`` and
  ``conf/test_spk.list``);
  the other 94 TEST speakers are not used;
* utterance ids are ``<speaker>_<utt>`` and speaker ids the speaker folder's name, lower case
  (``fadg0_si1279``, ``fadg0``); spk2gender is the speaker id's first letter (m or f);
* ``text`` holds the .PHN phones mapped to the 48-phone training set with Kaldi's
  ``timit_norm_trans.pl -to 48``: every phone through ``data/phones/timit_61_48.map`` (so the
  utterance-edge ``h#`` and ``pau`` become ``sil``) and the glottal stop ``q`` deleted. Scoring
  folds to 39 with the built-in map ``timit48-39`` (or ``timit61-39`` from ``phones61``).

Each data directory also holds ``phones61`` (the .PHN phones as they are, h# and q included),
``words`` (the .WRD words), ``utt2dialect`` (``DR1`` ... ``DR8``), ``utt2dur`` (from the SPHERE
header) and two timing files in CTM form, ``<utt> 1 <start> <dur> <phone>`` in seconds (the
.PHN sample numbers over the sample rate, exact): ``phones.ctm`` in the 48-phone set (one line
per token of ``text``, so q's time is a gap) and ``phones61.ctm`` (one line per .PHN line).
``DATA_DIR/split.txt`` names every speaker's set.

``sample`` mode is for a TIMIT excerpt without the standard sets (``../shared``'s sample holds
16 TRAIN speakers, a woman and a man from each dialect region): TEST may be absent, and from
all its speakers two are held out for dev and two for test, each pair a woman and a man of two
different dialect regions, all four regions different and each still represented in train
(see :func:`choose_sample_speakers`); the rest train.

``folds`` (with ``sample``) is cross-validation over the whole sample instead: ``DATA_DIR/all``
holds every speaker, and ``DATA_DIR/fold<k>/{train,dev,test}`` fold k's sets, each speaker
tested in exactly one fold (see :func:`sample_folds`). ``DATA_DIR/fold<k>/test_seen_prompt``
lists the test utterances whose sentence a training speaker of that fold also read (TIMIT's
SX sentences are read by about seven speakers each), to be scored apart from the rest.

Everything is read and checked before anything is written: a folder without TRAIN (and TEST),
a .WAV without its .PHN or .WRD, a malformed .PHN/.WRD line or an unknown phone (``file:line``)
and a listed speaker missing from TEST are each one error naming the path.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from asr import resources
from asr.data.audio import read_sphere_header
from asr.data.datadir import DataDir, save_replacing, spk2utt_from_utt2spk, write_kaldi_map
from asr.errors import AsrError, CorpusError
from asr.fileio import atomic_write, read_text_lines
from asr.score.normalize import load_phone_map

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
LISTS_DIR = resources.path("timit")
DEV_SPEAKER_LIST = LISTS_DIR / "dev_spk.list"  # Kaldi's 50-speaker development set
TEST_SPEAKER_LIST = LISTS_DIR / "test_spk.list"  # Kaldi's 24-speaker core test set
TRAIN_PHONE_MAP = "timit61-48"  # BUILTIN_PHONE_MAPS name: 61 -> 48, q deleted
# What the full corpus gives (Kaldi's recipe warns on other numbers; so do we).
EXPECTED = {"train": (462, 3696), "dev": (50, 400), "test": (24, 192)}

_DIALECT = re.compile(r"dr[1-8]", re.IGNORECASE)
_SPEAKER = re.compile(r"[fm][a-z0-9]+")  # after lower-casing: gender letter, initials, digit


@dataclass(frozen=True)
class PhoneSegment:
    """One .PHN line: samples ``[start, end)`` of the utterance are ``phone``."""

    start: int
    end: int
    phone: str


@dataclass
class Utterance:
    utt_id: str
    speaker: str
    wav: Path
    phones: list[PhoneSegment]  # the 61-phone .PHN, h# and q included
    words: list[str]
    sample_rate: int
    num_samples: int

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


@dataclass
class Speaker:
    id: str  # the folder name, lower case
    gender: str  # m or f, the id's first letter
    dialect: str  # DR1 ... DR8
    part: str  # TRAIN or TEST: where the corpus has it
    path: Path
    utterances: list[Utterance] = field(default_factory=list)


def _child_dir(parent: Path, name: str) -> Path | None:
    """``parent/NAME`` or ``parent/name`` (any case), or None."""
    for candidate in (name.upper(), name.lower()):
        if (parent / candidate).is_dir():
            return parent / candidate
    matches = sorted(p for p in parent.iterdir() if p.is_dir() and p.name.lower() == name.lower())
    return matches[0] if matches else None


def _split_fields(path: Path, number: int, line: str) -> tuple[int, int, str]:
    """``START END LABEL`` of a .PHN/.WRD line; CorpusError naming file:line otherwise."""
    fields = line.split()
    if len(fields) != 3:
        raise CorpusError(f"{path}:{number}: expected 'START END LABEL', got {line.strip()!r}")
    try:
        start, end = int(fields[0]), int(fields[1])
    except ValueError:
        raise CorpusError(
            f"{path}:{number}: start and end must be sample numbers, got {line.strip()!r}"
        ) from None
    if start < 0 or end < start:
        raise CorpusError(f"{path}:{number}: bad sample range {start} {end}")
    return start, end, fields[2]


def _read_lines(path: Path) -> list[tuple[int, str]]:
    try:
        lines = read_text_lines(path)
    except AsrError as exc:
        raise CorpusError(str(exc)) from None
    return [(n, line) for n, line in enumerate(lines, 1) if line.strip()]


def read_phn(path: str | os.PathLike, phones: set[str]) -> list[PhoneSegment]:
    """A .PHN file; CorpusError naming ``file:line`` for a bad line or a phone not in ``phones``."""
    path = Path(path)
    segments = []
    for number, line in _read_lines(path):
        start, end, phone = _split_fields(path, number, line)
        if phone not in phones:
            raise CorpusError(f"{path}:{number}: unknown phone {phone!r} (not one of TIMIT's 61)")
        segments.append(PhoneSegment(start, end, phone))
    if not segments:
        raise CorpusError(f"{path}: no phones")
    return segments


def read_wrd(path: str | os.PathLike) -> list[str]:
    """The words of a .WRD file; CorpusError naming ``file:line`` for a bad line."""
    path = Path(path)
    return [_split_fields(path, number, line)[2] for number, line in _read_lines(path)]


def _read_utterance(wav: Path, speaker: str, files: dict[str, Path], phones: set[str]):
    stem = wav.stem.lower()
    transcripts = {}
    for ext in ("phn", "wrd"):
        found = files.get(f"{stem}.{ext}")
        if found is None:
            raise CorpusError(f"{wav}: no .{ext.upper()} transcript beside it")
        transcripts[ext] = found
    try:
        header = read_sphere_header(wav)
    except AsrError as exc:
        raise CorpusError(str(exc)) from None
    rate, count = header.get("sample_rate"), header.get("sample_count")
    if not isinstance(rate, int) or not isinstance(count, int) or rate <= 0 or count <= 0:
        raise CorpusError(f"{wav}: SPHERE header without a sample_rate and sample_count")
    return Utterance(
        utt_id=f"{speaker}_{stem}",
        speaker=speaker,
        wav=wav.resolve(),
        phones=read_phn(transcripts["phn"], phones),
        words=read_wrd(transcripts["wrd"]),
        sample_rate=rate,
        num_samples=count,
    )


def scan_corpus(corpus_dir: str | os.PathLike, require_test: bool = True) -> dict[str, Speaker]:
    """Every speaker of a TIMIT tree with its SI and SX utterances (SA1/SA2 left out), read and
    checked; speaker id -> Speaker, sorted. CorpusError naming the path for bad input."""
    root = Path(corpus_dir)
    if not root.is_dir():
        raise CorpusError(f"{root}: not a TIMIT directory (not a directory)")
    parts = {name: _child_dir(root, name) for name in ("TRAIN", "TEST")}
    if parts["TRAIN"] is None or (require_test and parts["TEST"] is None):
        wanted = "TRAIN/ and TEST/" if require_test else "TRAIN/"
        raise CorpusError(f"{root}: not a TIMIT directory (no {wanted} folders in it)")
    phones = set(load_phone_map(TRAIN_PHONE_MAP))
    speakers: dict[str, Speaker] = {}
    for part, part_dir in parts.items():
        if part_dir is None:
            continue
        for dialect_dir in sorted(p for p in part_dir.iterdir() if p.is_dir()):
            if not _DIALECT.fullmatch(dialect_dir.name):
                log.debug("ignoring %s (not a DR<n> folder)", dialect_dir)
                continue
            for speaker_dir in sorted(p for p in dialect_dir.iterdir() if p.is_dir()):
                speaker = _read_speaker(speaker_dir, part, dialect_dir.name.upper(), phones)
                if speaker.id in speakers:
                    raise CorpusError(
                        f"{speaker_dir}: speaker {speaker.id} also at {speakers[speaker.id].path}"
                    )
                if not speaker.utterances:
                    log.warning("%s: no SI or SX utterances; speaker left out", speaker_dir)
                    continue
                speakers[speaker.id] = speaker
    if not speakers:
        raise CorpusError(f"{root}: no TIMIT speakers under TRAIN/DR<n>/")
    return dict(sorted(speakers.items()))


def _read_speaker(speaker_dir: Path, part: str, dialect: str, phones: set[str]) -> Speaker:
    speaker_id = speaker_dir.name.lower()
    if not _SPEAKER.fullmatch(speaker_id):
        raise CorpusError(
            f"{speaker_dir}: not a TIMIT speaker folder (a name like FADG0: sex, initials, digit)"
        )
    speaker = Speaker(speaker_id, speaker_id[0], dialect, part, speaker_dir)
    files = {p.name.lower(): p for p in speaker_dir.iterdir() if p.is_file()}
    for name in sorted(files):
        wav = files[name]
        stem, ext = os.path.splitext(name)
        if ext != ".wav" or "." in stem or not stem:
            continue  # .PHN/.WRD/.TXT are read with their .WAV; anything else is no part of it
        if stem.startswith("sa"):
            continue  # the two dialect sentences: not in any standard set
        speaker.utterances.append(_read_utterance(wav, speaker_id, files, phones))
    speaker.utterances.sort(key=lambda u: u.utt_id)
    return speaker


def read_speaker_list(path: str | os.PathLike) -> list[str]:
    """Speaker ids (lower case) of a Kaldi speaker list, one per line; ``#`` lines are comments."""
    path = Path(path)
    try:
        lines = read_text_lines(path)
    except AsrError as exc:
        raise CorpusError(str(exc)) from None
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip().lower()
        if not text:
            continue
        if len(text.split()) != 1:
            raise CorpusError(f"{path}:{number}: expected one speaker id, got {line.strip()!r}")
        if text in seen:
            raise CorpusError(f"{path}:{number}: speaker {text} listed twice (line {seen[text]})")
        seen[text] = number
    if not seen:
        raise CorpusError(f"{path}: no speakers listed")
    return list(seen)


def standard_split(
    speakers: dict[str, Speaker], corpus_dir: Path, dev_list: Path, test_list: Path
) -> dict[str, list[str]]:
    """Kaldi's sets: train = every TRAIN speaker, dev and test = the listed TEST speakers."""
    listed = {"dev": read_speaker_list(dev_list), "test": read_speaker_list(test_list)}
    paths = {"dev": dev_list, "test": test_list}
    both = sorted(set(listed["dev"]) & set(listed["test"]))
    if both:
        raise CorpusError(f"{test_list}: speaker {both[0]} is in the dev list {dev_list} too")
    for split, ids in listed.items():
        for speaker in ids:
            found = speakers.get(speaker)
            if found is None or found.part != "TEST":
                where = " (it is a TRAIN speaker)" if found is not None else ""
                raise CorpusError(
                    f"{paths[split]}: {split} speaker {speaker} not found under "
                    f"{corpus_dir}/TEST{where}"
                )
    return {
        "train": [s for s, v in speakers.items() if v.part == "TRAIN"],
        "dev": sorted(listed["dev"]),
        "test": sorted(listed["test"]),
    }


def choose_sample_speakers(
    speakers: dict[str, Speaker], corpus_dir: str | os.PathLike = "corpus"
) -> dict[str, list[str]]:
    """Hold out two dev and two test speakers of a small TIMIT sample, deterministically.

    Test gets the first woman then the first man, dev the next woman then the next man, in
    (dialect region, speaker id) order, taking no two from one region and none whose region
    would be left without a training speaker; when that cannot be met the region rules are
    relaxed (first the spare-speaker rule, then the distinct-region rule). Needs at least two
    women and two men.
    """
    order = sorted(speakers.values(), key=lambda s: (int(s.dialect[2:]), s.id))
    for gender, word in (("f", "women"), ("m", "men")):
        if sum(s.gender == gender for s in order) < 2:
            raise CorpusError(
                f"{corpus_dir}: a --sample corpus needs at "
                f"least two {word} (two held out for dev and test)"
            )
    per_region: dict[str, int] = {}
    for s in order:
        per_region[s.dialect] = per_region.get(s.dialect, 0) + 1
    chosen: list[Speaker] = []

    def pick(gender: str) -> Speaker:
        candidates = [s for s in order if s.gender == gender and s not in chosen]
        used = {s.dialect for s in chosen}
        strict = [
            s
            for s in candidates
            if s.dialect not in used
            and per_region[s.dialect] - sum(c.dialect == s.dialect for c in chosen) >= 2
        ]
        distinct = [s for s in candidates if s.dialect not in used]
        best = (strict or distinct or candidates)[0]
        chosen.append(best)
        return best

    test = [pick("f").id, pick("m").id]
    dev = [pick("f").id, pick("m").id]
    held = set(test) | set(dev)
    return {"train": [s for s in speakers if s not in held], "dev": dev, "test": test}


def _groups(items: list[Speaker], count: int) -> list[list[Speaker]]:
    """``items`` cut into ``count`` consecutive groups whose sizes differ by at most one."""
    size, extra = divmod(len(items), count)
    groups, start = [], 0
    for k in range(count):
        end = start + size + (k < extra)
        groups.append(items[start:end])
        start = end
    return groups


def prompt(utt_id: str) -> str:
    """The sentence an utterance reads: its name without the speaker (``fadg0_sx19`` -> sx19)."""
    return utt_id.split("_", 1)[1]


def sample_folds(
    speakers: dict[str, Speaker], folds: int, corpus_dir: str | os.PathLike = "corpus"
) -> list[dict[str, list[str]]]:
    """Cross-validation folds over a small TIMIT sample: per fold, utterance ids of its sets.

    Women and men, each in (dialect region, id) order, are cut into ``folds`` consecutive
    groups; fold k tests women's group k and men's group k + 1 (the last fold men's first
    group), so every speaker is tested once and, with a woman and a man per region (the
    sample), each fold holds out a woman and a man of neighbouring regions. The other speakers
    train, except each one's first SI sentence, which is the fold's dev set (for the learning
    rate schedule and early stopping): an SI sentence is read by its speaker only, so no dev
    sentence is read in training, and no test speaker is heard in training or dev.
    """
    if folds < 2:
        raise CorpusError(f"{corpus_dir}: cross-validation needs at least 2 folds, not {folds}")
    order = sorted(speakers.values(), key=lambda s: (int(s.dialect[2:]), s.id))
    women = [s for s in order if s.gender == "f"]
    men = [s for s in order if s.gender == "m"]
    if min(len(women), len(men)) < folds:
        raise CorpusError(
            f"{corpus_dir}: {folds} folds need at least {folds} women and {folds} men "
            f"(the corpus has {len(women)} and {len(men)})"
        )
    women_groups, men_groups = _groups(women, folds), _groups(men, folds)
    out = []
    for k in range(folds):
        test = {s.id for s in women_groups[k] + men_groups[(k + 1) % folds]}
        out.append(_train_dev_test(order, test))
    return out


def full_sample_sets(speakers: dict[str, Speaker]) -> dict[str, list[str]]:
    """Every speaker of the sample in training, each one's first SI sentence in dev, no test:
    the sets of a model trained on the whole sample once cross-validation has measured its
    configuration (:func:`sample_folds`' rule for dev)."""
    order = sorted(speakers.values(), key=lambda s: (int(s.dialect[2:]), s.id))
    sets = _train_dev_test(order, set())
    del sets["test"]
    return sets


def _train_dev_test(order: list[Speaker], test: set[str]) -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {"train": [], "dev": [], "test": []}
    for speaker in order:
        utts = [u.utt_id for u in speaker.utterances]
        if speaker.id in test:
            sets["test"] += utts
            continue
        first_si = next((u for u in utts if prompt(u).startswith("si")), None)
        sets["dev"] += [first_si] if first_si else []
        sets["train"] += [u for u in utts if u != first_si]
    return {name: sorted(ids) for name, ids in sets.items()}


def seen_prompts(fold: dict[str, list[str]]) -> list[str]:
    """The fold's test utterances whose sentence a speaker of its train or dev set also read."""
    heard = {prompt(u) for u in fold["train"] + fold["dev"]}
    return [u for u in fold["test"] if prompt(u) in heard]


def _seconds(samples: int, rate: int) -> str:
    # samples / 16000 has at most 7 decimals (1/16000 = 0.0000625): this text is exact.
    text = f"{samples / rate:.7f}".rstrip("0").rstrip(".")
    return text or "0"


def _ctm(utt: Utterance, segments: list[tuple[PhoneSegment, str]]) -> list[str]:
    return [
        f"{utt.utt_id} 1 {_seconds(seg.start, utt.sample_rate)} "
        f"{_seconds(seg.end - seg.start, utt.sample_rate)} {phone}\n"
        for seg, phone in segments
    ]


def _write_split(out_dir: Path, speakers: list[Speaker], map48: dict[str, str]) -> tuple[int, int]:
    utts = sorted((u for s in speakers for u in s.utterances), key=lambda u: u.utt_id)
    by_id = {s.id: s for s in speakers}
    utt2spk = {u.utt_id: u.speaker for u in utts}
    mapped = {u.utt_id: [(p, map48[p.phone]) for p in u.phones if map48[p.phone]] for u in utts}
    data = DataDir(
        path=out_dir,
        utt2spk=utt2spk,
        spk2utt=spk2utt_from_utt2spk(utt2spk),
        wav_scp={u.utt_id: str(u.wav) for u in utts},
        text={u.utt_id: " ".join(phone for _, phone in mapped[u.utt_id]) for u in utts},
        utt2dur={u.utt_id: u.duration for u in utts},
        extra={"spk2gender": {s.id: s.gender for s in speakers}},
    )
    save_replacing(data)  # a rerun must not leave an old feats.scp pointing at old features
    write_kaldi_map(
        out_dir / "phones61", {u.utt_id: " ".join(p.phone for p in u.phones) for u in utts}
    )
    write_kaldi_map(out_dir / "words", {u.utt_id: " ".join(u.words) for u in utts})
    write_kaldi_map(out_dir / "utt2dialect", {u.utt_id: by_id[u.speaker].dialect for u in utts})
    with atomic_write(out_dir / "phones.ctm") as handle:
        for u in utts:
            handle.writelines(_ctm(u, mapped[u.utt_id]))
    with atomic_write(out_dir / "phones61.ctm") as handle:
        for u in utts:
            handle.writelines(_ctm(u, [(p, p.phone) for p in u.phones]))
    return len(speakers), len(utts)


def prepare_timit(
    corpus_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    sample: bool = False,
    dev_list: str | os.PathLike = DEV_SPEAKER_LIST,
    test_list: str | os.PathLike = TEST_SPEAKER_LIST,
    folds: int = 0,
) -> dict[str, Path]:
    """Write DATA_DIR/train, DATA_DIR/dev and DATA_DIR/test (and DATA_DIR/split.txt) from the
    TIMIT tree CORPUS_DIR (the folder holding TRAIN and TEST); return {split: path}.

    Standard sets (Kaldi's) by default, from the speaker lists ``dev_list`` and ``test_list``;
    with ``sample`` two dev and two test speakers of the corpus's own (see the module doc);
    with ``sample`` and ``folds`` the cross-validation sets instead (:func:`prepare_folds`).
    Everything is read and checked before anything is written.
    """
    corpus = Path(corpus_dir)
    if folds and not sample:
        raise CorpusError(f"{corpus}: cross-validation folds are for a --sample corpus")
    speakers = scan_corpus(corpus, require_test=not sample)
    if folds:
        return prepare_folds(speakers, Path(data_dir), folds, corpus)
    if sample:
        split = choose_sample_speakers(speakers, corpus)
    else:
        split = standard_split(speakers, corpus, Path(dev_list), Path(test_list))
    map48 = load_phone_map(TRAIN_PHONE_MAP)
    out: dict[str, Path] = {}
    data_root = Path(data_dir)
    for name in SPLITS:
        members = [speakers[s] for s in split[name]]
        count = _write_split(data_root / name, members, map48)
        out[name] = data_root / name
        log.info("%s: %d speakers, %d utterances", out[name], *count)
        if not sample and count != EXPECTED[name]:
            log.warning(
                "%s: expected %d speakers and %d utterances of the standard TIMIT %s set",
                out[name],
                *EXPECTED[name],
                name,
            )
    for name, source in (("dev", dev_list), ("test", test_list)):
        if sample:
            described = ", ".join(
                f"{s} ({speakers[s].gender}, {speakers[s].dialect})" for s in split[name]
            )
            log.info("%s speakers held out: %s", name, described)
        else:
            log.info("%s speakers: the %d of %s", name, len(split[name]), source)
    unused = sorted(set(speakers) - {s for ids in split.values() for s in ids})
    if unused:
        log.info("%d TEST speakers in no set (as in Kaldi's recipe)", len(unused))
    _write_split_file(data_root / "split.txt", speakers, split, sample, dev_list, test_list)
    return out


def prepare_folds(
    speakers: dict[str, Speaker], data_root: Path, folds: int, corpus_dir: Path
) -> dict[str, Path]:
    """DATA_DIR/all, DATA_DIR/fold<k>/{train,dev,test} and fold<k>/test_seen_prompt for
    :func:`sample_folds`, DATA_DIR/folds.txt naming each fold's test speakers, and
    DATA_DIR/full/{train,dev} (:func:`full_sample_sets`); returns {"all": path, "fold1/train":
    path, ..., "full/train": path, "full/dev": path}."""
    plan = sample_folds(speakers, folds, corpus_dir)
    by_utt = {u.utt_id: u for s in speakers.values() for u in s.utterances}
    map48 = load_phone_map(TRAIN_PHONE_MAP)

    def members(utt_ids: list[str]) -> list[Speaker]:
        chosen = set(utt_ids)
        kept = [
            replace(s, utterances=[u for u in s.utterances if u.utt_id in chosen])
            for s in speakers.values()
        ]
        return [s for s in kept if s.utterances]

    out = {"all": data_root / "all"}
    count = _write_split(out["all"], list(speakers.values()), map48)
    log.info("%s: %d speakers, %d utterances", out["all"], *count)
    for k, fold in enumerate(plan, 1):
        fold_dir = data_root / f"fold{k}"
        for name in SPLITS:
            out[f"fold{k}/{name}"] = fold_dir / name
            _write_split(fold_dir / name, members(fold[name]), map48)
        seen = seen_prompts(fold)
        with atomic_write(fold_dir / "test_seen_prompt") as handle:
            handle.writelines(f"{u}\n" for u in seen)
        tested = sorted({by_utt[u].speaker for u in fold["test"]})
        log.info(
            "fold %d: test %s (%d utterances, %d of them a sentence read in training)",
            k,
            " ".join(f"{s} ({speakers[s].gender}, {speakers[s].dialect})" for s in tested),
            len(fold["test"]),
            len(seen),
        )
    for name, utt_ids in full_sample_sets(speakers).items():
        out[f"full/{name}"] = data_root / "full" / name
        _write_split(out[f"full/{name}"], members(utt_ids), map48)
    with atomic_write(data_root / "folds.txt") as handle:
        handle.write(f"# {folds}-fold cross-validation over the sample (asr.corpora.timit.")
        handle.write("sample_folds): dev = each training speaker's first SI sentence\n")
        handle.write("# FOLD SPEAKER GENDER DIALECT_REGION TEST_UTTERANCES SEEN_PROMPT\n")
        for k, fold in enumerate(plan, 1):
            seen = set(seen_prompts(fold))
            for s in sorted({by_utt[u].speaker for u in fold["test"]}):
                sp = speakers[s]
                utts = [u for u in fold["test"] if by_utt[u].speaker == s]
                handle.write(
                    f"{k} {s} {sp.gender} {sp.dialect} {len(utts)} {len(seen & set(utts))}\n"
                )
    return out


def _write_split_file(
    path: Path,
    speakers: dict[str, Speaker],
    split: dict[str, list[str]],
    sample: bool,
    dev_list: str | os.PathLike,
    test_list: str | os.PathLike,
) -> None:
    if sample:
        how = (
            "--sample: dev and test are two speakers each held out by asr.corpora.timit."
            "choose_sample_speakers (a woman and a man of different dialect regions)"
        )
    else:
        how = f"standard sets: train = every TRAIN speaker, dev = {dev_list}, test = {test_list}"
    with atomic_write(path) as handle:
        handle.write("# TIMIT speakers of each set, written by `asr prepare timit`\n")
        handle.write(f"# {how}\n")
        handle.write("# SET SPEAKER GENDER DIALECT_REGION UTTERANCES\n")
        for name in SPLITS:
            for s in split[name]:
                sp = speakers[s]
                handle.write(f"{name} {s} {sp.gender} {sp.dialect} {len(sp.utterances)}\n")
