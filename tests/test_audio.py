"""asr.data.audio: every format and bit depth, down-mix, resampling, segments, pipes, bad files.

Known answers come from writers that do not share code with the reader: Python's ``wave``
module for PCM WAV and a hand-written NIST SPHERE header; soundfile writes only what ``wave``
cannot (float WAV, FLAC, MP3, Ogg).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from unreadable import unreadable

from asr.data.audio import (
    audio_duration,
    load_audio,
    load_audio_entry,
    read_sphere_header,
)
from asr.errors import AudioError

RATE = 16000


def ramp_ints(bits: int, n: int = 1000) -> np.ndarray:
    """Integer samples that sweep the whole range of a signed ``bits``-bit PCM format."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return np.linspace(low, high, n).round().astype(np.int64)


def write_pcm_wav(path: Path, ints: np.ndarray, bits: int, rate: int = RATE, channels: int = 1):
    """Write integer PCM with the standard library (8-bit WAV is unsigned, offset 128)."""
    width = bits // 8
    if bits == 8:
        raw = (ints + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        little = ints.astype("<i4").tobytes()
        raw = b"".join(little[i : i + 3] for i in range(0, len(little), 4))
    else:
        raw = ints.astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(raw)


def write_sphere(path: Path, ints: np.ndarray, rate: int = RATE, big_endian: bool = False):
    """A NIST SPHERE file as TIMIT ships it: 1024-byte text header, then raw int16."""
    fields = [
        "NIST_1A",
        "   1024",
        "channel_count -i 1",
        f"sample_count -i {len(ints)}",
        f"sample_rate -i {rate}",
        "sample_n_bytes -i 2",
        f"sample_byte_format -s2 {'10' if big_endian else '01'}",
        "sample_coding -s3 pcm",
        "sample_sig_bits -i 16",
        "end_head",
    ]
    header = ("\n".join(fields) + "\n").encode("ascii").ljust(1024, b" ")
    path.write_bytes(header + ints.astype(">i2" if big_endian else "<i2").tobytes())


def sine(freq: float, seconds: float = 1.0, rate: int = RATE, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
def test_pcm_wav_values_match_integer_samples(tmp_path, bits):
    ints = ramp_ints(bits)
    path = tmp_path / f"pcm{bits}.wav"
    write_pcm_wav(path, ints, bits)
    samples, rate = load_audio(path)
    assert rate == RATE
    assert samples.dtype == np.float32 and samples.shape == (len(ints),)
    expected = ints / 2 ** (bits - 1)
    # float32 keeps 24 bits of mantissa: exact for 8/16/24-bit, within 2^-24 for 32-bit.
    np.testing.assert_allclose(samples, expected, rtol=0, atol=2**-24)
    assert samples.min() == -1.0 and samples.max() <= 1.0


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_wav_round_trip(tmp_path, subtype):
    signal = sine(300) * 1.5  # float files may exceed [-1, 1]; they are returned as stored
    path = tmp_path / "float.wav"
    sf.write(path, signal, RATE, subtype=subtype)
    samples, rate = load_audio(path)
    assert rate == RATE
    np.testing.assert_array_equal(samples, signal)


@pytest.mark.parametrize("subtype,bits", [("PCM_16", 16), ("PCM_24", 24)])
def test_flac_is_lossless(tmp_path, subtype, bits):
    ints = ramp_ints(bits)
    path = tmp_path / "x.flac"
    sf.write(path, ints.astype(np.int32) << (32 - bits), RATE, subtype=subtype)
    samples, _ = load_audio(path)
    np.testing.assert_array_equal(samples, (ints / 2 ** (bits - 1)).astype(np.float32))


@pytest.mark.parametrize("big_endian", [False, True])
def test_nist_sphere(tmp_path, big_endian):
    ints = ramp_ints(16)
    path = tmp_path / "timit.WAV"  # TIMIT's extension, although the file is not RIFF
    write_sphere(path, ints, rate=RATE, big_endian=big_endian)
    samples, rate = load_audio(path)
    assert rate == RATE
    np.testing.assert_array_equal(samples, (ints / 32768).astype(np.float32))
    header = read_sphere_header(path)
    assert header["sample_count"] == len(ints) and header["sample_rate"] == RATE


@pytest.mark.parametrize(
    "fmt,subtype,ext", [("MP3", "MPEG_LAYER_III", "mp3"), ("OGG", "VORBIS", "ogg")]
)
def test_lossy_formats_keep_frequency_and_level(tmp_path, fmt, subtype, ext):
    signal = sine(440)
    path = tmp_path / f"tone.{ext}"
    sf.write(path, signal, RATE, format=fmt, subtype=subtype)
    samples, rate = load_audio(path)
    assert rate == RATE
    assert abs(len(samples) - len(signal)) <= 2048  # encoder padding/priming
    assert peak_frequency(samples, rate) == pytest.approx(440, abs=2)
    assert rms(samples) == pytest.approx(rms(signal), rel=0.1)


def test_stereo_is_down_mixed_by_mean(tmp_path):
    left, right = ramp_ints(16), ramp_ints(16)[::-1] // 3
    interleaved = np.stack([left, right], axis=1).reshape(-1)
    path = tmp_path / "stereo.wav"
    write_pcm_wav(path, interleaved, 16, channels=2)
    samples, _ = load_audio(path)
    assert samples.shape == (len(left),)
    np.testing.assert_allclose(samples, (left + right) / 2 / 32768, atol=1e-7)


# --- resampling ------------------------------------------------------------------------------


@pytest.mark.parametrize("source,target", [(16000, 8000), (8000, 16000), (44100, 16000)])
def test_resampling_keeps_frequency_energy_and_duration(tmp_path, source, target):
    signal = sine(1000, rate=source)
    path = tmp_path / "tone.wav"
    sf.write(path, signal, source, subtype="FLOAT")
    samples, rate = load_audio(path, sample_rate=target)
    assert rate == target
    assert len(samples) == round(len(signal) * target / source)
    assert peak_frequency(samples, rate) == pytest.approx(1000, abs=1.5)
    inner = samples[target // 10 : -target // 10]  # away from the filter's edge effects
    assert rms(inner) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_resampling_removes_content_above_the_new_nyquist(tmp_path):
    # 6 kHz is representable at 16 kHz but not at 8 kHz: soxr must filter it, not alias it.
    path = tmp_path / "high.wav"
    sf.write(path, sine(6000), RATE, subtype="FLOAT")
    samples, _ = load_audio(path, sample_rate=8000)
    assert rms(samples[800:-800]) < 0.01


def test_same_rate_is_untouched(tmp_path):
    ints = ramp_ints(16)
    path = tmp_path / "x.wav"
    write_pcm_wav(path, ints, 16)
    samples, rate = load_audio(path, sample_rate=RATE)
    np.testing.assert_array_equal(samples, (ints / 32768).astype(np.float32))


# --- bad files -------------------------------------------------------------------------------


def good_wav(tmp_path: Path) -> Path:
    path = tmp_path / "good.wav"
    write_pcm_wav(path, ramp_ints(16, 4000), 16)
    return path


def truncated(path: Path) -> Path:
    out = path.with_name("cut_" + path.name)
    data = path.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    return out


def make_missing(tmp_path):
    return tmp_path / "missing.wav"


def make_empty(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


def make_directory(tmp_path):
    path = tmp_path / "dir.wav"
    path.mkdir()
    return path


def make_text(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    return path


def make_zero_length(tmp_path):
    path = tmp_path / "zero.wav"
    write_pcm_wav(path, np.zeros(0, dtype=np.int64), 16)
    return path


def make_truncated_wav(tmp_path):
    return truncated(good_wav(tmp_path))


def make_truncated_header(tmp_path):
    path = tmp_path / "header.wav"
    path.write_bytes(good_wav(tmp_path).read_bytes()[:30])
    return path


def make_truncated_sphere(tmp_path):
    path = tmp_path / "x.sph"
    write_sphere(path, ramp_ints(16, 4000))
    return truncated(path)


def make_zero_length_sphere(tmp_path):
    path = tmp_path / "zero.sph"
    write_sphere(path, np.zeros(0, dtype=np.int64))
    return path


def make_truncated_flac(tmp_path):
    path = tmp_path / "x.flac"
    sf.write(path, sine(440, 2.0), RATE, subtype="PCM_16")
    return truncated(path)


def make_truncated_mp3(tmp_path):
    path = tmp_path / "x.mp3"
    sf.write(path, sine(440, 2.0), RATE, format="MP3", subtype="MPEG_LAYER_III")
    return truncated(path)


def make_nan(tmp_path):
    path = tmp_path / "nan.wav"
    signal = sine(100)
    signal[10] = np.nan
    sf.write(path, signal, RATE, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    "make,problem",
    [
        (make_missing, "not found"),
        (make_empty, "empty"),
        (make_directory, "directory"),
        (make_text, "not an audio file"),
        (make_zero_length, "zero-length"),
        (make_zero_length_sphere, "zero-length"),
        (make_truncated_wav, "truncated"),
        (make_truncated_header, "truncated"),
        (make_truncated_sphere, "truncated"),
        (make_truncated_flac, "truncated"),
        (make_truncated_mp3, "truncated"),
        (make_nan, "NaN"),
    ],
)
def test_bad_files_raise_one_line_naming_the_file(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert message.startswith(str(path) + ":")
    assert problem in message
    assert "\n" not in message


def test_audio_duration_reads_the_header(tmp_path):
    path = good_wav(tmp_path)
    assert audio_duration(path) == pytest.approx(4000 / RATE)
    with pytest.raises(AudioError, match="empty"):
        audio_duration(make_empty(tmp_path))


# --- wav.scp entries: paths, segments, pipes ---------------------------------------------------


def test_entry_path_and_segment(tmp_path):
    ints = ramp_ints(16, 32000)
    path = tmp_path / "rec.wav"
    write_pcm_wav(path, ints, 16)
    whole, _ = load_audio_entry(str(path))
    np.testing.assert_array_equal(whole, (ints / 32768).astype(np.float32))
    part, rate = load_audio_entry(f"  {path}  ", start=0.5, end=1.25)
    assert rate == RATE
    np.testing.assert_array_equal(part, whole[8000:20000])
    tail, _ = load_audio_entry(str(path), start=1.5, end=-1)  # Kaldi: -1 = to the end
    np.testing.assert_array_equal(tail, whole[24000:])
    # Kaldi's extract-segments tolerates an end up to 0.5 s past the recording.
    over, _ = load_audio_entry(str(path), start=1.5, end=2.3)
    np.testing.assert_array_equal(over, whole[24000:])


@pytest.mark.parametrize(
    "start,end,problem",
    [
        (1.5, 3.0, "past the end"),
        (2.5, None, "past the end"),
        (1.0, 0.5, "not after"),
        (-1, 1, "negative"),
    ],
)
def test_bad_segments_name_the_file(tmp_path, start, end, problem):
    path = tmp_path / "long.wav"
    write_pcm_wav(path, ramp_ints(16, 32000), 16)  # 2 s
    with pytest.raises(AudioError) as info:
        load_audio_entry(str(path), start=start, end=end)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_pipe_needs_the_opt_in_flag(tmp_path):
    path = good_wav(tmp_path)
    entry = f"cat {path} |"
    with pytest.raises(AudioError) as info:
        load_audio_entry(entry)
    assert entry in str(info.value) and "--allow-pipes" in str(info.value)


def test_pipe_output_is_read_as_audio(tmp_path):
    path = good_wav(tmp_path)
    direct, _ = load_audio(path)
    piped, rate = load_audio_entry(f"cat {path} |", allow_pipe=True)
    np.testing.assert_array_equal(piped, direct)
    part, _ = load_audio_entry(f"cat {path} |", allow_pipe=True, start=0.05, end=0.1)
    np.testing.assert_array_equal(part, direct[800:1600])
    resampled, rate = load_audio_entry(f"cat {path} |", sample_rate=8000, allow_pipe=True)
    assert rate == 8000 and len(resampled) == len(direct) // 2


def test_streamed_wav_of_unknown_length_from_a_pipe(tmp_path):
    # sox/ffmpeg writing to a pipe cannot seek back, so they leave the sizes as 0xFFFFFFFF.
    path = good_wav(tmp_path)
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)
    streamed = tmp_path / "streamed.bin"
    streamed.write_bytes(bytes(data))
    piped, _ = load_audio_entry(f"cat {streamed} |", allow_pipe=True)
    np.testing.assert_array_equal(piped, load_audio(path)[0])


@pytest.mark.parametrize(
    "command,problem",
    [
        ("cat /nonexistent/x.wav", "exited with status"),
        (f"{sys.executable} -c 'print(123)'", "not audio"),
        ("true", "no output"),
    ],
)
def test_failing_pipe_names_the_command(command, problem):
    with pytest.raises(AudioError) as info:
        load_audio_entry(f"{command} |", allow_pipe=True)
    assert f"command '{command}'" in str(info.value) and problem in str(info.value)
    assert "\n" not in str(info.value)


def test_ark_entries_are_refused(tmp_path):
    with pytest.raises(AudioError, match="not an audio file path"):
        load_audio_entry(f"{tmp_path}/wav.ark:1234")


def test_unreadable_file_is_one_line_permission_denied(tmp_path):
    path = good_wav(tmp_path)
    prefix = unreadable(path)
    code = (
        "import sys\n"
        "from asr.data.audio import load_audio\n"
        "from asr.errors import AudioError\n"
        "try:\n"
        "    load_audio(sys.argv[1])\n"
        "except AudioError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [*prefix, sys.executable, "-c", code, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr  # AudioError, not a traceback
    assert result.stdout.splitlines() == [f"{path}: permission denied (cannot read the audio file)"]


def _feed(path: str | os.PathLike | int, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(path, "wb") as handle:
            handle.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_named_pipe_is_read_as_audio(tmp_path):
    source = good_wav(tmp_path)
    expected, rate = load_audio(source)
    fifo = tmp_path / "stream.wav"
    os.mkfifo(fifo)
    thread = _feed(fifo, source.read_bytes())
    samples, got_rate = load_audio(fifo)
    thread.join()
    assert got_rate == rate
    np.testing.assert_array_equal(samples, expected)
    thread = _feed(fifo, source.read_bytes())
    assert audio_duration(fifo) == pytest.approx(len(expected) / rate)
    thread.join()


def test_process_substitution_path_is_read_as_audio(tmp_path):
    # bash's <(cat f.wav) hands the program /dev/fd/N, the read end of a pipe.
    source = tmp_path / "x.flac"
    sf.write(source, sine(300), RATE, subtype="PCM_16")
    expected, _ = load_audio(source)
    read_end, write_end = os.pipe()
    thread = _feed(write_end, source.read_bytes())
    try:
        samples, _ = load_audio(f"/dev/fd/{read_end}", sample_rate=8000)
    finally:
        os.close(read_end)
    thread.join()
    np.testing.assert_allclose(samples, load_audio(source, sample_rate=8000)[0], atol=1e-6)
    assert len(expected) == 2 * len(samples)


def test_empty_named_pipe_is_one_line(tmp_path):
    fifo = tmp_path / "silent.wav"
    os.mkfifo(fifo)
    thread = _feed(fifo, b"")
    with pytest.raises(AudioError, match=r"silent\.wav: empty stream"):
        load_audio(fifo)
    thread.join()


def test_random_bytes_named_mp3_are_not_audio(tmp_path):
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a recognised audio file")
    assert "pipe" not in message


@pytest.mark.parametrize("rate", [1, 100, 2**31 - 1])
def test_absurd_sample_rate_is_a_corrupt_header(tmp_path, rate):
    path = tmp_path / "rate.wav"
    write_pcm_wav(path, ramp_ints(16, 4000), 16)
    data = bytearray(path.read_bytes())
    data[24:28] = struct.pack("<I", rate)
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError, match=f"implausible sample rate {rate} Hz"):
        load_audio(path, sample_rate=RATE)


# --- real corpora ----------------------------------------------------------------------------


@pytest.mark.integration
def test_timit_sphere_against_its_header_and_raw_bytes(timit_dir):
    files = sorted(timit_dir.glob("TRAIN/*/*/*.WAV"))[:3]
    assert files, f"no .WAV files under {timit_dir}/TRAIN"
    for path in files:
        raw = path.read_bytes()
        assert raw.startswith(b"NIST_1A")
        header_size = int(raw.split(b"\n")[1])
        header = raw[:header_size].decode("ascii")
        count = int(header.split("sample_count -i ")[1].split()[0])
        rate = int(header.split("sample_rate -i ")[1].split()[0])
        samples, got_rate = load_audio(path)
        assert got_rate == rate == 16000
        assert len(samples) == count
        # TIMIT is little-endian ("01") int16 right after the header.
        expected = np.frombuffer(raw[header_size : header_size + 2 * count], "<i2") / 32768
        np.testing.assert_array_equal(samples, expected.astype(np.float32))
        down, _ = load_audio(path, sample_rate=8000)
        assert abs(len(down) - count / 2) <= 1


@pytest.mark.integration
def test_yesno_wav(yesno_dir):
    path = sorted(yesno_dir.glob("*.wav"))[0]
    with wave.open(str(path)) as handle:
        frames, rate = handle.getnframes(), handle.getframerate()
        ints = np.frombuffer(handle.readframes(frames), "<i2")
    samples, got_rate = load_audio(path)
    assert got_rate == rate == 8000
    assert len(samples) == frames
    np.testing.assert_array_equal(samples, (ints / 32768).astype(np.float32))
    up, up_rate = load_audio(path, sample_rate=16000)
    assert up_rate == 16000 and len(up) == 2 * frames
