"""Wall Street Journal (WSJ0 LDC93S6B + WSJ1 LDC94S13B) as Kaldi's ``wsj_data_prep.sh`` reads it.

Give the corpus as the disk folders (``11-1.1``, ``11-13.1``, ``13-34.1``, ...) or folders
holding them (the LDC93S6B and LDC94S13B roots). As Kaldi's ``egs/wsj/s5/local/
wsj_data_prep.sh`` (which EESEN's WSJ recipe uses as it is):

* the sets come from the index files (``.ndx``, lines ``11_1_1:wsj0/si_tr_s/011/011c0201.wv1``,
  the disk id ``11_1_1`` naming the folder ``11-1.1``): ``train_si284`` = WSJ1's ``si_tr_s.ndx``
  + WSJ0's ``tr_s_wv1.ndx`` (37,416 utterances; speaker 401 of disk 11-2.1 left out, it is not
  on the disks), ``train_si84`` = WSJ0's alone (7,138), ``test_dev93`` = WSJ1's ``h1_p0.ndx``
  (503, the 20k Nov'93 dev set), ``test_eval92`` = WSJ0's ``test/nvp/si_et_20.ndx`` (333, the
  20k Nov'92 evaluation set EESEN reports on), ``test_eval92_5k`` (``si_et_05.ndx``, 330),
  ``test_dev93_5k`` (``h2_p0.ndx``, 513) and ``test_eval93`` (213, its disk id corrected from
  13_32_1 to 13_33_1 as Kaldi does);
* utterance ids are the ``.wv1`` names in lower case (``011c0201``), speakers their first three
  characters; transcripts come from the ``.dot`` file of each speaker-session
  (``<6 chars>00.dot``, lines ``TEXT (uttid)``) normalised as Kaldi's
  ``normalize_transcript.pl`` (:func:`normalize_transcript`): upper case, ``\\`` quoting
  removed, noise markers ``[loud_breath]`` -> ``<NOISE>``, ``[<x]``/``[x>]``/``[x/]``/``[/x]``,
  ``~`` and ``.`` deleted, ``<word>`` -> ``WORD``, ``--DASH`` -> ``-DASH``;
* ``spk2gender`` from the ``spkrinfo.txt`` files on the disks (plus ``wsj0-train-spkrinfo.txt``
  when one lies in a given folder; LDC put it on its web site only), written only when every
  speaker has a gender.

Audio: the ``.wv1`` files are NIST SPHERE with shorten-compressed samples, which libsndfile
cannot read. With ``sph2pipe`` on PATH ``wav.scp`` holds Kaldi's pipes
(``sph2pipe -f wav FILE |``; the data directory then needs ``--allow-pipes``); otherwise every
file is decoded once to FLAC with ffmpeg (:func:`decode_wv1`; FFmpeg's shorten decoder needs
a WAV header inside the stream, which NIST's embedded shorten lacks, so one is spliced in).
``utt2dur`` comes from the SPHERE headers either way.

Language model: :func:`prepare_wsj_lm` unpacks the standard 20k open-vocabulary (``<UNK>``),
non-verbalised-punctuation trigram ``wsj1/doc/lng_modl/base_lm/tcb20onp.z`` (UNIX compress or
already plain, Kaldi's ``lm_tg``) to ARPA, with its vocabulary ``vocab/wlist20o.nvp``.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from asr.data.audio import read_sphere_header
from asr.data.datadir import DataDir, save_replacing, spk2utt_from_utt2spk
from asr.errors import AsrError, CorpusError
from asr.fileio import atomic_write, read_bytes
from asr.lm.arpa import normalize_arpa

log = logging.getLogger(__name__)

NOISE_WORD = "<NOISE>"
# set -> ([(disk, index file under it)], expected utterances); Kaldi's wsj_data_prep.sh.
SETS: dict[str, tuple[list[tuple[str, str]], int]] = {
    "train_si284": (
        [
            ("13-34.1", "wsj1/doc/indices/si_tr_s.ndx"),
            ("11-13.1", "wsj0/doc/indices/train/tr_s_wv1.ndx"),
        ],
        37416,
    ),
    "train_si84": ([("11-13.1", "wsj0/doc/indices/train/tr_s_wv1.ndx")], 7138),
    "test_dev93": ([("13-34.1", "wsj1/doc/indices/h1_p0.ndx")], 503),
    "test_dev93_5k": ([("13-34.1", "wsj1/doc/indices/h2_p0.ndx")], 513),
    "test_eval92": ([("11-13.1", "wsj0/doc/indices/test/nvp/si_et_20.ndx")], 333),
    "test_eval92_5k": ([("11-13.1", "wsj0/doc/indices/test/nvp/si_et_05.ndx")], 330),
    "test_eval93": ([("13-32.1", "wsj1/doc/indices/wsj1/eval/h1_p0.ndx")], 213),
}
DEFAULT_SETS = ("train_si284", "test_dev93", "test_eval92")
_DISK_FIXES = {"test_eval93": ("13_32_1", "13_33_1")}  # a wrong disk id in that index
_EXCLUDED = re.compile(r"11-2\.1/wsj0/si_tr_s/401/", re.IGNORECASE)  # listed, not on the disks
LM_FILE = ("13-32.1", "wsj1/doc/lng_modl/base_lm/tcb20onp.z")
VOCAB_FILE = ("13-32.1", "wsj1/doc/lng_modl/vocab/wlist20o.nvp")

_DISK = re.compile(r"(\d+)[-_](\d+)[._](\d+)")
_NDX_LINE = re.compile(r"([0-9_]+):\s*(\S+)")
_DOT_LINE = re.compile(r"(.*)\((\w{8})\)\s*")
_EXAMPLES = 3


# --- transcripts ------------------------------------------------------------------------------


def normalize_transcript(text: str, noise_word: str = NOISE_WORD) -> str:
    """A .dot transcript as Kaldi's ``egs/wsj/s5/local/normalize_transcript.pl`` writes it."""
    out = []
    for word in text.split():
        word = word.upper().replace("\\", "")  # upper case as CMUdict; quoting not needed
        if word == "%PERCENT":  # Nov'93 test transcripts
            word = "PERCENT"
        elif word == ".POINT":
            word = "POINT"
        if (
            re.fullmatch(r"\[<\w+\]", word)  # [<door_slam]: a noise during the previous word
            or re.fullmatch(r"\[\w+>\]", word)  # [door_slam>]: during the next word
            or re.search(r"\[\w+/\]$", word)  # [phone_ring/]: a noise starts
            or re.search(r"\[/\w+\]$", word)  # [/phone_ring]: it ends
            or word in ("~", ".")  # truncation mark, pause: not words
        ):
            continue
        if re.search(r"\[\w+\]", word):  # any other noise, e.g. [loud_breath]
            out.append(noise_word)
        elif match := re.fullmatch(r"<([\w']+)>", word):  # verbally deleted, but spoken
            out.append(match.group(1))
        elif word == "--DASH":  # CMUdict has -DASH
            out.append("-DASH")
        else:
            out.append(word)
    return " ".join(out)


def read_dot(path: str | os.PathLike) -> dict[str, str]:
    """Utterance id (lower case) -> raw transcript of a .dot file; bad lines name file:line."""
    path = Path(path)
    try:
        raw = read_bytes(path).decode("latin-1")  # 1990s ASCII, some 8-bit bytes
    except AsrError as exc:
        raise CorpusError(str(exc)) from None
    texts = {}
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        match = _DOT_LINE.fullmatch(line)
        if match is None:
            raise CorpusError(f"{path}:{number}: expected 'TRANSCRIPT (UTTERANCE-ID)'")
        texts[match.group(2).lower()] = match.group(1).strip()
    return texts


# --- the disks --------------------------------------------------------------------------------


def find_disks(wsj_dirs: Iterable[str | os.PathLike]) -> dict[str, Path]:
    """Disk id (``11_13_1``) -> folder, from disk folders or folders holding them."""
    disks: dict[str, Path] = {}
    for given in map(Path, wsj_dirs):
        if not given.is_dir():
            raise CorpusError(f"{given}: WSJ directory not found")
        candidates = [given] if _DISK.fullmatch(given.name) else sorted(given.iterdir())
        for path in candidates:
            match = _DISK.fullmatch(path.name)
            if match and path.is_dir():
                disks.setdefault("_".join(match.groups()), path)
    return disks


class _Resolver:
    """Paths on the disks, matched case-insensitively (copies of the CDs differ in case)."""

    def __init__(self, disks: dict[str, Path]) -> None:
        self.disks = disks
        self._listing: dict[Path, dict[str, str]] = {}

    def resolve(self, disk: str, relative: str) -> Path | None:
        path = self.disks.get(disk)
        if path is None:
            return None
        for part in relative.strip("/").split("/"):
            exact = path / part
            if exact.exists():
                path = exact
                continue
            if path not in self._listing:
                try:
                    self._listing[path] = {p.name.lower(): p.name for p in path.iterdir()}
                except OSError:
                    return None
            name = self._listing[path].get(part.lower())
            if name is None:
                return None
            path = path / name
        return path

    def disk_file(self, disk_name: str, relative: str) -> Path:
        disk = disk_name.replace("-", "_").replace(".", "_")
        found = self.resolve(disk, relative)
        if found is None:
            if disk not in self.disks:
                raise CorpusError(
                    f"WSJ disk {disk_name} not found among {sorted(self.disks) or 'no disks'} "
                    "(give the LDC93S6B and LDC94S13B folders, or their disk folders)"
                )
            raise CorpusError(f"{self.disks[disk]}/{relative}: not found")
        return found


def read_ndx(path: Path, resolver: _Resolver, fix: tuple[str, str] | None = None):
    """(utterance id, .wv1 path or None when missing) for every entry of an index file."""
    try:
        lines = read_bytes(path).decode("latin-1").splitlines()
    except AsrError as exc:
        raise CorpusError(str(exc)) from None
    entries = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith(";"):
            continue
        match = _NDX_LINE.fullmatch(line.strip())
        if match is None:
            raise CorpusError(f"{path}:{number}: expected 'DISK_ID:PATH', got {line.strip()!r}")
        disk, relative = match.groups()
        if fix and disk == fix[0]:
            disk = fix[1]
        if "." not in relative.rsplit("/", 1)[-1]:
            relative += ".wv1"  # the test-set indices leave the extension out
        display = f"{disk.replace('_', '-', 1).replace('_', '.')}/{relative.lstrip('/')}"
        if _EXCLUDED.search(display):
            continue
        stem = relative.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
        entries.append((stem, resolver.resolve(disk, relative), display))
    return entries


def read_spkrinfo(paths: Iterable[Path]) -> dict[str, str]:
    """Speaker -> gender (m/f) from WSJ's spkrinfo.txt files (``;`` comments, ``--`` rules)."""
    genders: dict[str, str] = {}
    for path in paths:
        for line in read_bytes(path).decode("latin-1").splitlines():
            fields = line.lower().split()
            if len(fields) >= 2 and not fields[0].startswith((";", "--")) and fields[1] in "mf":
                genders.setdefault(fields[0], fields[1])
    return genders


# --- audio ------------------------------------------------------------------------------------


def _uvar(value: int, k: int) -> tuple[int, int]:
    """Shorten's unsigned Rice code: value >> k zeros, a one, the k low bits (value, bits)."""
    return (1 << k) | (value & ((1 << k) - 1)), (value >> k) + 1 + k


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.number = int.from_bytes(data, "big")
        self.size = len(data) * 8
        self.pos = 0

    def bit(self) -> int:
        if self.pos >= self.size:
            raise ValueError("stream ends inside its header")
        self.pos += 1
        return (self.number >> (self.size - self.pos)) & 1

    def uvar(self, k: int) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
        low = 0
        for _ in range(k):
            low = (low << 1) | self.bit()
        return (zeros << k) | low


def _wav_header(rate: int, channels: int, samples: int) -> bytes:
    data = samples * channels * 2
    return (
        b"RIFF"
        + (36 + data).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + channels.to_bytes(2, "little")
        + rate.to_bytes(4, "little")
        + (rate * channels * 2).to_bytes(4, "little")
        + (channels * 2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + data.to_bytes(4, "little")
    )


def add_wav_header(stream: bytes, rate: int, channels: int, samples: int) -> bytes:
    """A shorten stream with a WAV header as its first (verbatim) block, as FFmpeg needs.

    NIST's embedded shorten goes from the parameters straight to the audio blocks; FFmpeg's
    decoder reads the sample format from a verbatim RIFF header that shorten 2 puts first.
    The header is spliced in at that bit position (the stream is not byte aligned there).
    A stream that has one already is returned as it is. ValueError for a non-shorten stream.
    """
    if stream[:4] != b"ajkg" or len(stream) < 6:
        raise ValueError("not a shorten stream (no 'ajkg')")
    version = stream[4]
    bits = _Bits(stream[5:])

    def ulong(k: int) -> int:  # shorten >= 1 codes each parameter's width first
        return bits.uvar(bits.uvar(2) if version else k)

    ulong(4)  # file type
    ulong(0)  # channels
    if version:
        ulong(8)  # block size
        ulong(2)  # max LPC order
        ulong(0)  # blocks in the running mean
        skip = ulong(1)
        bits.pos += 8 * skip
    head_bits = bits.pos
    if bits.uvar(2) == 9:  # FN_VERBATIM already
        return stream
    header = _wav_header(rate, channels, samples)
    inserted, count = _uvar(9, 2)  # FN_VERBATIM
    for value, k in ((len(header), 5), *((byte, 8) for byte in header)):
        code, width = _uvar(value, k)
        inserted, count = (inserted << width) | code, count + width
    tail_bits = bits.size - head_bits
    tail = bits.number & ((1 << tail_bits) - 1)
    head = bits.number >> tail_bits
    number = (((head << count) | inserted) << tail_bits) | tail
    total = head_bits + count + tail_bits
    pad = -total % 8
    return stream[:5] + (number << pad).to_bytes((total + pad) // 8, "big")


def find_ffmpeg() -> str:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise CorpusError(
            "WSJ audio is shorten-compressed SPHERE: install sph2pipe (on PATH) or ffmpeg "
            "(Debian: apt-get install ffmpeg, or `make wsj-tools`)"
        )
    return ffmpeg


def decode_wv1(wv1: str | os.PathLike, flac: str | os.PathLike, ffmpeg: str | None = None) -> int:
    """Decode a WSJ ``.wv1`` (SPHERE, shorten or PCM) to a FLAC file with ffmpeg; returns the
    sample count, checked against the SPHERE header. CorpusError naming the file otherwise."""
    wv1, flac = Path(wv1), Path(flac)
    try:
        header = read_sphere_header(wv1)
        raw = read_bytes(wv1)
    except AsrError as exc:
        raise CorpusError(str(exc)) from None
    coding = str(header.get("sample_coding", "pcm"))
    rate, channels = int(header.get("sample_rate", 16000)), int(header.get("channel_count", 1))
    count = int(header.get("sample_count", 0))
    payload = raw[int(header["header_size"]) :]
    if "shorten" in coding:
        try:
            payload = add_wav_header(payload, rate, channels, count)
        except ValueError as exc:
            raise CorpusError(f"{wv1}: {exc}") from None
        input_format = ["-f", "shn"]
    elif coding.startswith("pcm") and int(header.get("sample_n_bytes", 2)) == 2:
        order = "s16be" if str(header.get("sample_byte_format", "01")) == "10" else "s16le"
        input_format = ["-f", order, "-ar", str(rate), "-ac", str(channels)]
    else:
        raise CorpusError(f"{wv1}: SPHERE sample coding {coding!r} is not supported")
    tmp = flac.with_name(f".{flac.name}.tmp.flac")
    flac.parent.mkdir(parents=True, exist_ok=True)
    command = [ffmpeg or find_ffmpeg(), "-nostdin", "-v", "error", *input_format, "-i", "pipe:0"]
    command += ["-c:a", "flac", "-y", str(tmp)]
    done = subprocess.run(command, input=payload, capture_output=True, check=False)
    try:
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise CorpusError(f"{wv1}: ffmpeg could not decode it ({err[-1] if err else 'failed'})")
        frames = soundfile.info(str(tmp)).frames
        if count and frames != count:
            raise CorpusError(f"{wv1}: decoded {frames} samples, the header says {count}")
        os.replace(tmp, flac)
    finally:
        if tmp.exists():
            tmp.unlink()
    return frames


# --- preparing the sets -----------------------------------------------------------------------


@dataclass
class WsjReport:
    set_name: str
    data_dir: Path
    utterances: int = 0
    speakers: int = 0
    seconds: float = 0.0
    no_audio: list[str] = field(default_factory=list)  # listed in the index, not on the disks
    no_text: list[str] = field(default_factory=list)  # no transcript in any .dot file

    def summary(self) -> str:
        text = (
            f"{self.data_dir}: {self.utterances} utterances, {self.speakers} speakers, "
            f"{self.seconds / 3600:.2f} h"
        )
        for what, items in (("without audio", self.no_audio), ("without text", self.no_text)):
            if items:
                text += f"; {len(items)} {what} skipped (e.g. {', '.join(items[:_EXAMPLES])})"
        return text


def _dot_files(disks: dict[str, Path]) -> dict[str, Path]:
    """Speaker-session (first 6 characters, lower case) -> its .dot file."""
    found: dict[str, Path] = {}
    for disk in disks.values():
        for path in sorted(disk.rglob("*")):
            if path.suffix.lower() == ".dot" and re.fullmatch(r"\w{6}00", path.stem):
                found.setdefault(path.stem[:6].lower(), path)
    return found


def choose_audio(audio: str) -> str:
    """``sph2pipe`` or ``flac`` for ``audio`` = auto|sph2pipe|flac (flac needs ffmpeg)."""
    if audio not in ("auto", "sph2pipe", "flac"):
        raise CorpusError(f"unknown WSJ audio mode {audio!r} (auto, sph2pipe or flac)")
    if audio == "sph2pipe" and shutil.which("sph2pipe") is None:
        raise CorpusError("sph2pipe not found on PATH (Kaldi's tools/sph2pipe_v2.5)")
    if audio == "auto":
        audio = "sph2pipe" if shutil.which("sph2pipe") else "flac"
    if audio == "flac":
        find_ffmpeg()
    return audio


def prepare_wsj(
    wsj_dirs: Sequence[str | os.PathLike],
    data_dir: str | os.PathLike,
    sets: Sequence[str] = DEFAULT_SETS,
    audio: str = "auto",
    flac_dir: str | os.PathLike | None = None,
    jobs: int = 0,
) -> list[WsjReport]:
    """Write ``DATA_DIR/<set>`` for each of ``sets`` (see the module doc) and return reports.

    ``audio``: ``sph2pipe`` (pipes in wav.scp), ``flac`` (decode once with ffmpeg into
    ``flac_dir``, default ``DATA_DIR/flac``; files already decoded are kept) or ``auto``.
    """
    for name in sets:
        if name not in SETS:
            raise CorpusError(f"unknown WSJ set {name!r} (one of {', '.join(SETS)})")
    disks = find_disks(wsj_dirs)
    if not disks:
        raise CorpusError(
            f"{', '.join(map(str, wsj_dirs))}: no WSJ disk folders (names like 11-13.1) in it"
        )
    resolver = _Resolver(disks)
    audio = choose_audio(audio)
    dots = _dot_files(disks)
    spkrinfo = [
        p
        for d in [*disks.values(), *map(Path, wsj_dirs)]
        for p in sorted(d.glob("**/*spkrinfo.txt"))
        if p.is_file()
    ]
    genders = read_spkrinfo(dict.fromkeys(spkrinfo))
    transcripts: dict[str, dict[str, str]] = {}
    reports = []
    for name in sets:
        indices, expected = SETS[name]
        report = WsjReport(name, Path(data_dir) / name)
        wavs: dict[str, Path] = {}
        text: dict[str, str] = {}
        for disk_name, relative in indices:
            index = resolver.disk_file(disk_name, relative)
            for utt, path, display in read_ndx(index, resolver, _DISK_FIXES.get(name)):
                if path is None:
                    report.no_audio.append(display)
                    continue
                session = utt[:6]
                if session not in transcripts:
                    dot = dots.get(session)
                    transcripts[session] = read_dot(dot) if dot else {}
                raw = transcripts[session].get(utt)
                if raw is None:
                    report.no_text.append(utt)
                    continue
                wavs[utt] = path
                text[utt] = normalize_transcript(raw)
        if not wavs:
            raise CorpusError(f"{name}: no utterances with audio and a transcript on the disks")
        for what, items in (("without audio", report.no_audio), ("without text", report.no_text)):
            if items:
                log.warning(
                    "%s: %d index entries %s skipped (e.g. %s)",
                    name,
                    len(items),
                    what,
                    ", ".join(items[:_EXAMPLES]),
                )
        report.utterances = len(wavs)
        if report.utterances != expected:
            log.warning("%s: %d utterances, Kaldi's gives %d", name, report.utterances, expected)
        utt2dur = {}
        for utt, path in wavs.items():
            try:
                header = read_sphere_header(path)
                utt2dur[utt] = int(header["sample_count"]) / int(header["sample_rate"])
            except (AsrError, KeyError, ValueError, ZeroDivisionError):
                raise CorpusError(
                    f"{path}: SPHERE header without sample_count/sample_rate"
                ) from None
        if audio == "sph2pipe":
            wav_scp = {
                u: f"sph2pipe -f wav {shlex.quote(str(p.resolve()))} |" for u, p in wavs.items()
            }
        else:
            wav_scp = _decode_all(wavs, Path(flac_dir or Path(data_dir) / "flac"), jobs)
        utt2spk = {utt: utt[:3] for utt in wavs}
        speakers = sorted(set(utt2spk.values()))
        extra = {}
        if all(s in genders for s in speakers):
            extra["spk2gender"] = {s: genders[s] for s in speakers}
        else:
            missing = [s for s in speakers if s not in genders]
            log.warning(
                "%s: no gender for %d speakers (e.g. %s; add wsj0-train-spkrinfo.txt); "
                "no spk2gender",
                name,
                len(missing),
                missing[0],
            )
        save_replacing(
            DataDir(
                path=report.data_dir,
                utt2spk=utt2spk,
                spk2utt=spk2utt_from_utt2spk(utt2spk),
                wav_scp=wav_scp,
                text=text,
                utt2dur=utt2dur,
                extra=extra,
            )
        )
        report.speakers = len(speakers)
        report.seconds = sum(utt2dur.values())
        reports.append(report)
    return reports


def _decode_all(wavs: dict[str, Path], flac_dir: Path, jobs: int) -> dict[str, str]:
    """Decode every .wv1 not yet decoded into flac_dir/<utt>.flac (ffmpeg processes run in
    parallel threads); returns the wav.scp entries."""
    ffmpeg = find_ffmpeg()
    out = {utt: flac_dir / f"{utt}.flac" for utt in wavs}
    todo = [utt for utt, flac in out.items() if not flac.is_file()]
    if todo:
        log.info("decoding %d .wv1 files to FLAC in %s", len(todo), flac_dir)
        workers = jobs or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda u: decode_wv1(wavs[u], out[u], ffmpeg), todo))
    return {utt: str(flac.resolve()) for utt, flac in out.items()}


# --- the language model -----------------------------------------------------------------------


def _uncompress(path: Path) -> bytes:
    """A .z file's bytes: UNIX compress or gzip (``gzip -dc`` reads both) or plain already."""
    data = read_bytes(path)
    if data[:2] in (b"\x1f\x9d", b"\x1f\x8b"):
        gzip = shutil.which("gzip")
        if gzip is None:
            raise CorpusError(f"{path}: compressed; gzip is needed to unpack it")
        done = subprocess.run([gzip, "-dc"], input=data, capture_output=True, check=False)
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip()
            raise CorpusError(f"{path}: cannot uncompress ({err or 'gzip failed'})")
        return done.stdout
    return data


def prepare_wsj_lm(wsj_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> Path:
    """Write ``OUT_DIR/lm_tg.arpa`` (the 20k open-vocabulary trigram, from ``\\data\\`` on, as
    Kaldi's lm_tg, with KenLM's tabs) and ``OUT_DIR/vocab.txt`` (wlist20o.nvp, one word a
    line); returns the ARPA."""
    resolver = _Resolver(find_disks(wsj_dirs))
    lm = resolver.disk_file(*LM_FILE)
    text = _uncompress(lm)
    start = text.find(b"\\data\\")
    if start < 0:
        raise CorpusError(f"{lm}: no \\data\\ section (not an ARPA language model)")
    out = Path(out_dir)
    arpa = out / "lm_tg.arpa"
    # The 1994 file separates fields with spaces; KenLM needs a tab after the probability and
    # before the backoff, so the ARPA is rewritten (and checked) on the way out.
    raw = out / ".lm_tg.raw.arpa"
    try:
        with atomic_write(raw, "wb") as handle:
            handle.write(text[start:])
        normalize_arpa(raw, arpa)
    finally:
        raw.unlink(missing_ok=True)
    vocab_file = resolver.disk_file(*VOCAB_FILE)
    lines = read_bytes(vocab_file).decode("latin-1").splitlines()
    words = [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]
    with atomic_write(out / "vocab.txt") as handle:
        handle.writelines(f"{w}\n" for w in words)
    return arpa
