"""Audio that arrives a piece at a time: a WAV byte stream, e.g. a recorder's pipe.

Online decoding (``asr transcribe --online -``) reads standard input as it comes. libsndfile
seeks, so it cannot read a pipe as it arrives: :func:`wav_stream` parses the RIFF header itself
and then yields the samples of the ``data`` chunk as they arrive. Recorders and ``sox ... -t wav
-`` write a data size of 0 or 0xFFFFFFFF when they cannot know the length; the stream is then
read to its end. PCM of 8, 16, 24 and 32 bits and 32/64-bit float, any number of channels
(mixed down to mono by their mean, as :func:`asr.data.audio.load_audio` does), are read. Every
problem is one line naming the input.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from asr.errors import AudioError

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def _read_exact(handle: BinaryIO, count: int, name: str, what: str) -> bytes:
    data = b""
    while len(data) < count:
        piece = handle.read(count - len(data))
        if not piece:
            raise AudioError(f"{name}: the stream ended inside the WAV {what}")
        data += piece
    return data


def wav_stream(
    handle: BinaryIO, name: str, block_samples: int = 1600
) -> tuple[int, Iterator[np.ndarray]]:
    """``(sample_rate, blocks)`` of a WAV byte stream: mono float32 blocks in [-1, 1] of up to
    ``block_samples`` samples each, yielded as soon as their bytes are read."""
    head = _read_exact(handle, 12, name, "header")
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioError(f"{name}: not a WAV stream (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int] | None = None
    while True:
        chunk = _read_exact(handle, 8, name, "chunk header")
        kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if kind == b"fmt ":
            body = _read_exact(handle, size + (size & 1), name, "fmt chunk")
            if size < 16:
                raise AudioError(f"{name}: WAV fmt chunk of {size} bytes (needs 16)")
            tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _EXTENSIBLE and size >= 26:
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, bits)
            if channels < 1 or rate < 1 or bits not in (8, 16, 24, 32, 64):
                raise AudioError(
                    f"{name}: WAV with {channels} channels, {rate} Hz, {bits} bits is not audio "
                    "this reader takes"
                )
            if align != channels * bits // 8:
                raise AudioError(f"{name}: WAV block align {align} does not fit its format")
        elif kind == b"data":
            if fmt is None:
                raise AudioError(f"{name}: WAV data before its fmt chunk")
            break
        else:  # LIST, fact, ...: skipped
            _read_exact(handle, size + (size & 1), name, f"{kind!r} chunk")
    tag, channels, rate, bits = fmt
    if tag == _PCM and bits in (8, 16, 24, 32):
        pass
    elif tag == _FLOAT and bits in (32, 64):
        pass
    else:
        raise AudioError(f"{name}: WAV sample format {tag} with {bits} bits is not PCM or float")
    frame_bytes = channels * bits // 8
    remaining = None if size in _UNKNOWN_SIZES else size

    def blocks() -> Iterator[np.ndarray]:
        nonlocal remaining
        pending = b""
        while remaining is None or remaining > 0:
            want = block_samples * frame_bytes - len(pending)
            if remaining is not None:
                want = min(want, remaining)
            piece = handle.read(want)
            if not piece:
                if remaining is not None:
                    raise AudioError(
                        f"{name}: the stream ended {remaining} bytes before its WAV data did"
                    )
                break
            if remaining is not None:
                remaining -= len(piece)
            pending += piece
            usable = len(pending) - len(pending) % frame_bytes
            if usable:
                yield _samples(pending[:usable], tag, bits, channels)
                pending = pending[usable:]
        if pending:
            raise AudioError(f"{name}: the WAV data ends inside a sample frame")

    return rate, blocks()


def _samples(data: bytes, tag: int, bits: int, channels: int) -> np.ndarray:
    if tag == _FLOAT:
        values = np.frombuffer(data, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    elif bits == 8:  # unsigned, offset 128
        values = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif bits == 16:
        values = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    elif bits == 24:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        values = ints.astype(np.float32) / float(1 << 23)
    else:
        values = np.frombuffer(data, dtype="<i4").astype(np.float32) / float(1 << 31)
    if channels > 1:
        values = values.reshape(-1, channels).mean(axis=1)
    if not np.all(np.isfinite(values)):
        raise AudioError("audio contains NaN or infinite samples")
    return values
