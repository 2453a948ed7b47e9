"""Fuzzing the audio reader: seeded mutations of real WAV, FLAC, SPHERE and MP3 files.

Every mutation (truncations, flipped and random header bytes, absurd sizes, sample rates,
channel counts and bit depths) must decode to finite samples or raise ``AudioError`` with one
line naming the file: never another exception, a crash, a hang or NaN. The mutations run in a
child process (this file run as a script) so that a hang or a crash in libsndfile is a test
failure that names the mutation instead of a stuck or dead test run.
"""

from __future__ import annotations

import faulthandler
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import shared_path

from asr.data.audio import load_audio
from asr.errors import AudioError

CASES_PER_FORMAT = 260  # 4 formats: 1040 mutations
SEED = 20261204
CHILD_TIMEOUT_S = 300  # the whole batch; each case also has its own watchdog below
CASE_TIMEOUT_S = 30


# --- mutations (all driven by one numpy Generator, so a seed fixes every case) -------------------


def _truncate(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    # Half of the cuts land in the first 2 KiB, where the headers are.
    limit = min(len(data), 2048) if rng.random() < 0.5 else len(data)
    cut = int(rng.integers(1, limit))
    return data[:cut], f"truncated at {cut}"


def _flip(data: bytes, rng: np.random.Generator, region: int) -> tuple[bytes, str]:
    out = bytearray(data)
    spots = rng.integers(0, min(region, len(out)), size=int(rng.integers(1, 5)))
    for pos in spots:
        out[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(out), f"flipped bits at {sorted(int(p) for p in spots)}"


def _random_bytes(data: bytes, rng: np.random.Generator, region: int) -> tuple[bytes, str]:
    out = bytearray(data)
    start = int(rng.integers(0, min(region, len(out))))
    length = int(rng.integers(1, 16))
    out[start : start + length] = rng.integers(0, 256, size=length, dtype=np.uint8).tobytes()
    return bytes(out[: len(data)]), f"random bytes at {start}+{length}"


def _absurd_u32(rng: np.random.Generator) -> int:
    return int(rng.choice([0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]))


def _wav_field(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """Absurd values in the RIFF/fmt/data fields of a canonical 44-byte-header WAV."""
    out = bytearray(data)
    choice = int(rng.integers(0, 7))
    if choice == 0:
        value = _absurd_u32(rng)
        out[40:44] = struct.pack("<I", value)
        return bytes(out), f"data size {value:#x}"
    if choice == 1:
        value = _absurd_u32(rng)
        out[4:8] = struct.pack("<I", value)
        return bytes(out), f"RIFF size {value:#x}"
    if choice == 2:
        value = int(rng.choice([0, 1, 2, 100, 2**31 - 1, 2**32 - 1]))
        out[24:28] = struct.pack("<I", value)
        return bytes(out), f"sample rate {value}"
    if choice == 3:
        value = int(rng.choice([0, 2, 3, 255, 65535]))
        out[22:24] = struct.pack("<H", value)
        return bytes(out), f"channels {value}"
    if choice == 4:
        value = int(rng.choice([0, 1, 7, 8, 12, 24, 32, 64, 65535]))
        out[34:36] = struct.pack("<H", value)
        return bytes(out), f"bits per sample {value}"
    if choice == 5:
        value = int(rng.choice([0, 1, 3, 0xFFFF]))
        out[32:34] = struct.pack("<H", value)
        return bytes(out), f"block align {value}"
    value = int(rng.choice([0, 2, 3, 6, 7, 0x55, 0xFFFE, 0xFFFF]))
    out[20:22] = struct.pack("<H", value)
    return bytes(out), f"format tag {value:#x}"


def _sphere_field(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """Absurd values in one field of a NIST SPHERE header (kept at its 1024 bytes)."""
    header, body = data[:1024], data[1024:]
    field, values = [
        ("sample_count", ["0", "-5", "99999999999999", "4294967295", "1"]),
        ("sample_rate", ["0", "1", "2147483647", "-16000", "nan"]),
        ("channel_count", ["0", "65535", "-1", "3"]),
        ("sample_n_bytes", ["0", "1", "3", "4", "8", "1000"]),
        ("sample_byte_format", ["10", "0123", "xx", ""]),
        ("header_size", ["0", "5", "1023", "99999999", "abc"]),
    ][int(rng.integers(0, 6))]
    value = str(rng.choice(values))
    if field == "header_size":
        new = re.sub(rb"^NIST_1A\n *1024\n", f"NIST_1A\n   {value}\n".encode(), header)
    else:
        new = re.sub(
            rf"(?m)^{field} -\w+ .*$".encode(),
            f"{field} -{'s' if field.endswith('format') else 'i'} {value}".encode(),
            header,
        )
    new = new[:1024].ljust(1024, b" ")
    return new + body, f"{field} {value!r}"


def _flac_field(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """Absurd sample rate, channels, bit depth or length in FLAC's STREAMINFO block."""
    out = bytearray(data)
    # fLaC, a 4-byte block header, 10 bytes of block/frame sizes, then 64 bits packed as
    # rate(20) channels-1(3) bits-1(5) total samples(36).
    (packed,) = struct.unpack(">Q", bytes(out[18:26]))
    rate, channels, bits, total = packed >> 44, (packed >> 41) & 7, (packed >> 36) & 31, packed
    total &= (1 << 36) - 1
    choice = int(rng.integers(0, 5))
    if choice == 0:
        rate = int(rng.choice([0, 1, 2, (1 << 20) - 1]))
        what = f"rate {rate}"
    elif choice == 1:
        channels = int(rng.integers(0, 8))
        what = f"channels {channels + 1}"
    elif choice == 2:
        bits = int(rng.integers(0, 32))
        what = f"bits {bits + 1}"
    elif choice == 3:
        total = int(rng.choice([0, 1, (1 << 36) - 1, 1 << 35]))
        what = f"total samples {total}"
    else:
        out[8:12] = rng.integers(0, 256, size=4, dtype=np.uint8).tobytes()
        return bytes(out), "random block sizes"
    packed = (rate << 44) | (channels << 41) | (bits << 36) | total
    out[18:26] = struct.pack(">Q", packed)
    return bytes(out), what


def _mp3_frames(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """Damage MPEG frame headers (sync words) somewhere in the stream."""
    out = bytearray(data)
    syncs = [m.start() for m in re.finditer(rb"\xff[\xe0-\xff]", bytes(out))]
    if not syncs:
        return _flip(data, rng, len(data))
    picks = rng.choice(syncs, size=min(len(syncs), int(rng.integers(1, 6))), replace=False)
    for pos in picks:
        out[pos + 1 : pos + 4] = rng.integers(0, 256, size=3, dtype=np.uint8).tobytes()
    return bytes(out[: len(data)]), f"frame headers at {sorted(int(p) for p in picks)}"


Mutation = Callable[[bytes, np.random.Generator], tuple[bytes, str]]

MUTATIONS: dict[str, list[Mutation]] = {
    "wav": [
        _truncate,
        lambda d, r: _flip(d, r, 44),
        lambda d, r: _random_bytes(d, r, 44),
        _wav_field,
        _wav_field,
    ],
    "sph": [
        _truncate,
        lambda d, r: _flip(d, r, 1024),
        lambda d, r: _random_bytes(d, r, 300),
        _sphere_field,
        _sphere_field,
    ],
    "flac": [
        _truncate,
        lambda d, r: _flip(d, r, 64),
        lambda d, r: _random_bytes(d, r, 64),
        _flac_field,
        _flac_field,
        lambda d, r: _random_bytes(d, r, len(d)),
    ],
    "mp3": [
        _truncate,
        lambda d, r: _flip(d, r, 256),
        lambda d, r: _random_bytes(d, r, len(d)),
        _mp3_frames,
        _mp3_frames,
    ],
}


# --- the child: decode every case, one result line each ---------------------------------------


def _check_one(path: Path, resample: bool) -> str:
    """``ok``/``error`` for the allowed outcomes, ``BAD ...`` for anything else."""
    try:
        samples, rate = load_audio(path, 16000 if resample else None)
    except AudioError as exc:
        message = str(exc)
        if "\n" in message or not message.startswith(f"{path}:"):
            return f"BAD AudioError not one line naming the file: {message!r}"
        return "error"
    except Exception as exc:  # noqa: BLE001 - anything else is what the fuzzer looks for
        return f"BAD {type(exc).__name__}: {exc}"
    if samples.dtype != np.float32 or samples.ndim != 1 or len(samples) == 0:
        return f"BAD samples {samples.dtype} {samples.shape}"
    if not np.all(np.isfinite(samples)):
        return "BAD non-finite samples"
    if not isinstance(rate, int) or rate <= 0:
        return f"BAD rate {rate!r}"
    return "ok"


def run_child(work: Path) -> None:
    rng = np.random.default_rng(SEED)
    case = 0
    for ext, mutations in MUTATIONS.items():
        base = (work / f"base.{ext}").read_bytes()
        for i in range(CASES_PER_FORMAT):
            mutate = mutations[i % len(mutations)]
            data, what = mutate(base, rng)
            path = work / f"case{case:04d}.{ext}"
            path.write_bytes(data)
            print(f"START {case} {ext}: {what}", flush=True)
            # A hang in one case prints every thread's stack and ends the child.
            faulthandler.dump_traceback_later(CASE_TIMEOUT_S, exit=True)
            result = _check_one(path, resample=i % 4 == 0)
            faulthandler.cancel_dump_traceback_later()
            print(f"RESULT {case} {result}", flush=True)
            path.unlink()
            case += 1
    print("DONE", flush=True)


# --- the test --------------------------------------------------------------------------------


def _make_bases(work: Path) -> None:
    yesno = shared_path("corpora", "yesno", "waves_yesno", "0_0_0_1_0_1_1_0.wav")
    timit = shared_path("corpora", "timit-sample", "TIMIT", "TRAIN", "DR7", "MADD0", "SA1.WAV")
    wav = yesno.read_bytes()
    assert wav[:4] == b"RIFF" and wav[36:40] == b"data", "the yes/no file is a canonical WAV"
    (work / "base.wav").write_bytes(wav)
    (work / "base.sph").write_bytes(timit.read_bytes())
    samples, rate = sf.read(str(yesno), dtype="int16")
    short = samples[: rate * 2]  # 2 s is enough for every header and many frames
    sf.write(str(work / "base.flac"), short, rate, format="FLAC", subtype="PCM_16")
    sf.write(str(work / "base.mp3"), short, rate, format="MP3", subtype="MPEG_LAYER_III")
    for ext in MUTATIONS:  # the unmutated files themselves decode
        got, _ = load_audio(work / f"base.{ext}")
        assert len(got) > 0 and np.all(np.isfinite(got))


def test_mutated_audio_decodes_or_raises_one_audio_error(tmp_path):
    _make_bases(tmp_path)
    try:
        proc = subprocess.run(
            [sys.executable, __file__, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
        )
        out = proc.stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        starts = [line for line in out.splitlines() if line.startswith("START")]
        raise AssertionError(f"the reader hung at {starts[-1] if starts else '?'}") from None
    lines = out.splitlines()
    starts = {line.split()[1]: line for line in lines if line.startswith("START")}
    results = [line.split(None, 2) for line in lines if line.startswith("RESULT")]
    bad = [f"{starts[case]} -> {result}" for _, case, result in results if result.startswith("BAD")]
    assert not bad, "\n".join(bad)
    total = len(MUTATIONS) * CASES_PER_FORMAT
    if proc.returncode != 0 or "DONE" not in lines:
        last = [line for line in lines if line.startswith("START")][-1:]
        raise AssertionError(
            f"the child died (status {proc.returncode}) after {len(results)} of {total} cases, "
            f"in {last}; stderr tail:\n{proc.stderr[-3000:]}"
        )
    assert len(results) == total >= 1000
    outcomes = [result for _, _, result in results]
    # Both outcomes occur: the mutations neither all slip through nor all break the file.
    assert outcomes.count("ok") > 50 and outcomes.count("error") > 50, outcomes.count("ok")


if __name__ == "__main__":
    run_child(Path(sys.argv[1]))
