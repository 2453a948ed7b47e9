"""Read any audio file (or wav.scp entry) into float32 mono at a requested sample rate.

Formats are whatever libsndfile reads (through soundfile): WAV in 8/16/24/32-bit PCM and float,
FLAC, MP3, Ogg Vorbis/Opus and NIST SPHERE (TIMIT's ``.WAV``). libsndfile quietly returns the
part of a truncated WAV or SPHERE file that is there, so the header is checked against the file
size here; every other problem (missing, unreadable, empty, not audio, no samples, a corrupt
header with absurd sizes or rates) is one ``AudioError`` naming the file. Named pipes and
``<(cmd)`` paths are read whole into memory and decoded from there.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from asr.errors import AudioError
from asr.fileio import atomic_write

# Kaldi's extract-segments tolerates segment ends up to this far past the recording's end
# (its --max-overshoot default), because segment times are often rounded up.
MAX_SEGMENT_OVERSHOOT = 0.5

# A header this long holds every chunk header we look at (SPHERE headers are 1024 bytes).
_HEADER_PEEK = 64 * 1024

# Streaming writers (sox, ffmpeg to a pipe) put these in the data size field: "length unknown".
_UNKNOWN_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)

# A named pipe or ``<(cmd)`` is read whole into memory (libsndfile needs to seek); a stream that
# never ends (/dev/zero) is cut off here rather than filling the memory.
_MAX_STREAM_BYTES = 2 * 1024**3

# Decoding goes in blocks of about this many samples (all channels), so a corrupt header that
# claims billions of frames or thousands of channels costs no more memory than the data there is.
_BLOCK_SAMPLES = 1 << 20

# Sample rates outside this range are a corrupt header, not audio: resampling a "1 Hz" file to
# 16 kHz would allocate 16000 times its length.
_MIN_RATE = 1000
_MAX_RATE = 1_000_000

# MP3 frame counts are estimated from the stream header (Xing/VBR), so allow some slack before
# calling a short read truncation; for every other format the count is exact.
_MPEG_SLACK = 0.02


def load_audio(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono in [-1, 1], resampled when ``sample_rate`` differs.

    Returns ``(samples, rate)`` where ``rate`` is ``sample_rate`` when given, else the file's.
    Multi-channel audio is down-mixed by averaging the channels.
    """
    wave, rate = _read_file(Path(path))
    return _finish(wave, rate, sample_rate, str(path))


def load_audio_entry(
    entry: str,
    sample_rate: int | None = None,
    allow_pipe: bool = False,
    start: float | None = None,
    end: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read the audio a Kaldi ``wav.scp`` value points to, optionally only ``[start, end)`` s.

    ``entry`` is a file path, or a shell command ending in ``|`` whose standard output is an
    audio file (``sph2pipe -f wav x.sph |``). Commands run only with ``allow_pipe=True``, since a
    data directory from elsewhere could otherwise run anything. ``end`` of ``None`` or a negative
    number means the end of the recording (Kaldi's ``segments`` convention).
    """
    entry = entry.strip()
    if not entry:
        raise AudioError("empty wav.scp entry: no audio path")
    if end is not None and end < 0:
        end = None
    if entry.endswith("|"):
        command = entry[:-1].strip()
        if not allow_pipe:
            raise AudioError(
                f"'{entry}' is a shell pipe; it runs only with the opt-in flag --allow-pipes "
                "(allow_pipe=True)"
            )
        name = f"command '{command}'"
        wave, rate = _read_pipe(command, name)
        wave = _cut(wave, rate, start, end, name)
    else:
        if entry.startswith("-") or entry.endswith(":") or _looks_like_ark(entry):
            raise AudioError(
                f"'{entry}': not an audio file path (ark/rspecifier entries are not supported)"
            )
        name = entry
        wave, rate = _read_file(Path(entry), start, end)
    return _finish(wave, rate, sample_rate, name)


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the header alone (no decoding); AudioError if unreadable."""
    path = Path(path)
    _, _, stream = _open_source(path)
    if stream is not None:  # a pipe has no header to peek at: decode it
        wave, rate = _decode(io.BytesIO(stream), str(path), exact=False)
        return len(wave) / rate
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: {_describe_libsndfile_error(exc)}") from None
    _check_rate(info.samplerate, str(path))
    if info.frames <= 0:
        raise AudioError(f"{path}: zero-length audio (no samples)")
    return info.frames / info.samplerate


def resample(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample with soxr's high-quality filter (float32 in, float32 out)."""
    if from_rate == to_rate:
        return wave
    return soxr.resample(wave, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def read_sphere_header(path: str | os.PathLike) -> dict[str, str | int | float]:
    """Parse a NIST SPHERE header (``NIST_1A``) into a dict of its fields.

    Integer (``-i``) and real (``-r``) fields are converted; strings are kept as they are.
    """
    path = Path(path)
    head, _, _ = _open_source(path)
    fields = _parse_sphere(head, str(path))
    if fields is None:
        raise AudioError(f"{path}: not a NIST SPHERE file (no NIST_1A header)")
    return fields


# --- reading -------------------------------------------------------------------------------


def _open_source(path: Path) -> tuple[bytes, int, bytes | None]:
    """``(header bytes, size, whole stream or None)``; every OS problem is one AudioError.

    A regular file is only peeked at (libsndfile reads it by name); anything else that opens
    (a named pipe, ``<(cat f.wav)``, a character device) is read whole into memory.
    """
    name = str(path)
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode):
                if info.st_size == 0:
                    raise AudioError(f"{name}: empty file (0 bytes)")
                return handle.read(_HEADER_PEEK), info.st_size, None
            data = _read_stream(handle)
    except FileNotFoundError:
        raise AudioError(f"{name}: audio file not found") from None
    except IsADirectoryError:
        raise AudioError(f"{name}: is a directory, not an audio file") from None
    except PermissionError:
        raise AudioError(f"{name}: permission denied (cannot read the audio file)") from None
    except OSError as exc:
        raise AudioError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise AudioError(f"{name}: empty stream (the pipe gave no bytes)")
    if len(data) > _MAX_STREAM_BYTES:
        raise AudioError(f"{name}: stream longer than {_MAX_STREAM_BYTES} bytes")
    return data[:_HEADER_PEEK], len(data), data


def _read_stream(handle: io.BufferedReader) -> bytes:
    # In pieces: read(n) would reserve all n bytes up front, however short the stream.
    parts, total = [], 0
    while total <= _MAX_STREAM_BYTES:
        part = handle.read(1 << 20)
        if not part:
            break
        parts.append(part)
        total += len(part)
    return b"".join(parts)


def _read_file(
    path: Path, start: float | None = None, end: float | None = None
) -> tuple[np.ndarray, int]:
    name = str(path)
    head, size, stream = _open_source(path)
    _check_header(head, size, name)
    if stream is not None:
        wave, rate = _decode(io.BytesIO(stream), name, exact=False)
        return _cut(wave, rate, start, end, name), rate
    return _decode(name, name, exact=True, start=start, end=end)


def run_pipe(command: str, name: str) -> bytes:
    """The stdout of a wav.scp pipe command (``cmd |`` without the bar); one AudioError, named
    ``name``, when it cannot run, fails (its last stderr line) or writes nothing."""
    try:
        result = subprocess.run(command, shell=True, capture_output=True, check=False)
    except OSError as exc:
        raise AudioError(f"{name}: cannot run ({exc.strerror})") from None
    if result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {err[-1]}" if err else ""
        raise AudioError(f"{name}: exited with status {result.returncode}{detail}")
    if not result.stdout:
        raise AudioError(f"{name}: produced no output (empty audio)")
    return result.stdout


def _read_pipe(command: str, name: str) -> tuple[np.ndarray, int]:
    data = run_pipe(command, name)
    _check_header(data[:_HEADER_PEEK], len(data), name)
    return _decode(io.BytesIO(data), name, exact=False, what="output is not audio: ")


def _decode(
    source: str | io.BytesIO,
    name: str,
    exact: bool,
    start: float | None = None,
    end: float | None = None,
    what: str = "",
) -> tuple[np.ndarray, int]:
    """Decode a file name or an in-memory stream to ``(frames, channels)`` float32.

    ``exact``: the frame count in the header is trusted to check for truncation (a streamed
    WAV from a pipe has no length in its header, so libsndfile reports a huge or zero count).
    """
    try:
        with sf.SoundFile(source) as snd:
            rate, frames, channels = snd.samplerate, snd.frames, snd.channels
            _check_rate(rate, name)
            if channels < 1:
                raise AudioError(f"{name}: corrupt header ({channels} channels)")
            first, last = _segment_frames(start, end, rate, frames, name)
            if first:
                snd.seek(first)
            wave = _read_blocks(snd, last - first, channels)
            format_ = snd.format
    except (sf.LibsndfileError, RuntimeError, ValueError, OverflowError, MemoryError) as exc:
        raise AudioError(f"{name}: {what}{_describe_libsndfile_error(exc)}") from None
    if exact or 0 < frames < 2**31 - 1:
        _check_complete(len(wave), last - first, format_, name)
    return wave, rate


def _read_blocks(snd: sf.SoundFile, count: int, channels: int) -> np.ndarray:
    """Read up to ``count`` frames block by block: memory follows the data actually there.

    soundfile's ``read(frames=n)`` allocates all ``n`` frames first, and ``n`` comes from a
    header that a corrupt file can make absurd.
    """
    block = max(1, _BLOCK_SAMPLES // channels)
    parts = []
    while count > 0:
        part = snd.read(frames=min(block, count), dtype="float32", always_2d=True)
        if len(part) == 0:
            break
        parts.append(part)
        count -= len(part)
    if not parts:
        return np.zeros((0, channels), dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _check_rate(rate: int, name: str) -> None:
    if not _MIN_RATE <= rate <= _MAX_RATE:
        raise AudioError(
            f"{name}: implausible sample rate {rate} Hz (corrupt header?); expected "
            f"{_MIN_RATE}..{_MAX_RATE} Hz"
        )


def _finish(
    wave: np.ndarray, rate: int, sample_rate: int | None, name: str
) -> tuple[np.ndarray, int]:
    if wave.shape[0] == 0:
        raise AudioError(f"{name}: zero-length audio (no samples)")
    mono = wave.mean(axis=1, dtype=np.float32) if wave.shape[1] > 1 else wave[:, 0]
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    if sample_rate is not None:
        if sample_rate <= 0:
            raise AudioError(f"{name}: requested sample rate {sample_rate} is not positive")
        mono = resample(mono, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(mono, dtype=np.float32), rate


def _segment_frames(
    start: float | None, end: float | None, rate: int, frames: int, name: str
) -> tuple[int, int]:
    """Frame range of ``[start, end)`` seconds, checked against the recording's length."""
    if start is None and end is None:
        return 0, frames
    begin = 0 if start is None else round(start * rate)
    stop = frames if end is None else round(end * rate)
    length = frames / rate
    if begin < 0:
        raise AudioError(f"{name}: segment start {start} s is negative")
    if begin >= frames:
        raise AudioError(
            f"{name}: segment start {start} s is past the end of the audio ({length:.3f} s)"
        )
    if stop <= begin:
        raise AudioError(f"{name}: segment end {end} s is not after its start {start or 0} s")
    if stop > frames:
        if end is not None and end - length > MAX_SEGMENT_OVERSHOOT:
            raise AudioError(
                f"{name}: segment end {end} s is past the end of the audio ({length:.3f} s)"
            )
        stop = frames
    return begin, stop


def _cut(
    wave: np.ndarray, rate: int, start: float | None, end: float | None, name: str
) -> np.ndarray:
    first, last = _segment_frames(start, end, rate, wave.shape[0], name)
    return wave[first:last]


def _check_complete(got: int, expected: int, format_: str, name: str) -> None:
    slack = int(expected * _MPEG_SLACK) + 1152 if format_ == "MP3" else 0
    if got + slack < expected:
        raise AudioError(f"{name}: truncated audio: read {got} of {expected} samples")


def _describe_libsndfile_error(exc: Exception) -> str:
    text = str(exc)
    lowered = text.lower()
    if "format not recognised" in lowered or "unknown format" in lowered:
        return "not an audio file (format not recognised)"
    if "possibly a pipe" in lowered:
        # Real pipes are read into memory before libsndfile sees them, so this message (which
        # libsndfile gives when no decoder accepts the bytes, e.g. noise named .mp3) means the
        # content is not audio it knows.
        return "not a recognised audio file (no decoder accepts its contents)"
    if isinstance(exc, MemoryError):
        return "corrupt header (absurd sizes)"
    if "malformed" in lowered or "lost sync" in lowered or "unexpected end" in lowered:
        return f"corrupt or truncated audio ({_strip_prefix(text)})"
    return f"cannot decode audio ({_strip_prefix(text)})"


def _strip_prefix(text: str) -> str:
    # libsndfile messages look like "Error opening 'x.wav': Format not recognised."; the file
    # name is already at the front of our message.
    if ": " in text:
        text = text.rsplit(": ", 1)[1]
    return text.strip().rstrip(".")


def _looks_like_ark(entry: str) -> bool:
    # "foo.ark:1234" is a Kaldi ark offset, not a file name.
    head, sep, tail = entry.rpartition(":")
    return bool(sep) and tail.isdigit() and head.endswith(".ark")


# --- header checks: libsndfile reads truncated WAV/SPHERE files without complaint -------------


def _check_header(head: bytes, size: int, name: str) -> None:
    if head[:4] in (b"RIFF", b"RIFX"):
        _check_riff(head, size, name)
    elif head[:7] == b"NIST_1A":
        fields = _parse_sphere(head, name)
        if fields is not None:
            _check_sphere(fields, size, name)


def _check_riff(head: bytes, size: int, name: str) -> None:
    endian = "<" if head[:4] == b"RIFF" else ">"
    if len(head) < 12 or head[8:12] != b"WAVE":
        return  # not a WAVE file: let libsndfile decide what it is
    pos = 12
    while pos + 8 <= len(head):
        chunk_id = head[pos : pos + 4]
        (chunk_size,) = struct.unpack(endian + "I", head[pos + 4 : pos + 8])
        if chunk_id == b"data":
            available = size - (pos + 8)
            if chunk_size not in _UNKNOWN_SIZES and chunk_size > available:
                raise AudioError(
                    f"{name}: truncated audio: header promises {chunk_size} bytes of samples, "
                    f"file holds {max(available, 0)}"
                )
            return
        pos += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to an even length
    if pos + 8 > size:
        raise AudioError(f"{name}: truncated audio: WAV file ends before its data chunk")


def _parse_sphere(head: bytes, name: str) -> dict[str, str | int | float] | None:
    if head[:7] != b"NIST_1A":
        return None
    try:
        lines = head.split(b"\n")
        header_size = int(lines[1].strip())
        fields: dict[str, str | int | float] = {"header_size": header_size}
        for raw in lines[2:]:
            line = raw.decode("ascii", "replace").strip()
            if line == "end_head":
                return fields
            if not line or line.startswith(";"):
                continue
            key, kind, *rest = line.split(None, 2)
            value = rest[0] if rest else ""
            if kind == "-i":
                fields[key] = int(value)
            elif kind == "-r":
                fields[key] = float(value)
            else:
                fields[key] = value
    except (IndexError, ValueError):
        raise AudioError(f"{name}: corrupt NIST SPHERE header") from None
    raise AudioError(f"{name}: corrupt NIST SPHERE header (no end_head)")


def _check_sphere(fields: dict[str, str | int | float], size: int, name: str) -> None:
    coding = str(fields.get("sample_coding", "pcm"))
    if "shorten" in coding or "wavpack" in coding:
        raise AudioError(
            f"{name}: compressed NIST SPHERE ({coding}) is not supported; "
            f"decode it with a wav.scp pipe such as 'sph2pipe -f wav {name} |'"
        )
    try:
        count = int(fields["sample_count"])
        channels = int(fields.get("channel_count", 1))
        width = int(fields.get("sample_n_bytes", 2))
        header_size = int(fields["header_size"])
    except (KeyError, ValueError):
        return  # libsndfile will judge the rest
    expected = count * channels * width
    available = size - header_size
    if count == 0:
        raise AudioError(f"{name}: zero-length audio (sample_count 0)")
    if expected > available:
        raise AudioError(
            f"{name}: truncated audio: header promises {count} samples, "
            f"file holds {max(available, 0) // max(channels * width, 1)}"
        )


def write_flac(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    """Write float samples in [-1, 1] as a 16-bit FLAC file, atomically (clipping if beyond)."""
    # Quantise here rather than in libsndfile, which does not clip by default (it would wrap).
    pcm = np.clip(np.round(np.asarray(wave, dtype=np.float64) * 32768), -32768, 32767)
    with atomic_write(path, "wb") as handle:
        sf.write(handle, pcm.astype(np.int16), sample_rate, format="FLAC", subtype="PCM_16")
