"""asr.data (datadir, validate, fix, subset, combine) and ``asr data``: Kaldi tables, bad input.

Data directories are written here as plain text (not with the module under test) and hold
tiny real WAV files, so existence checks and audio reading are exercised for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from unreadable import unreadable

from asr.cli import main
from asr.data.combine import combine_datadirs
from asr.data.datadir import DataDir, Segment, read_kaldi_map, write_kaldi_map
from asr.data.fix import fix_datadir
from asr.data.subset import copy_datadir, split_datadir, subset_datadir, subset_datadir_by_speaker
from asr.data.utt2dur import compute_utt2dur
from asr.data.validate import validate_datadir
from asr.errors import AudioError, DataDirError
from asr.features.config import FeatureConfig
from asr.features.dataset import FeatureSet
from asr.features.extract import compute_datadir_features

RATE = 8000
WORDS = ["YES", "NO"]


def write_wav(path: Path, num_samples: int, value: int = 1000) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(np.full(num_samples, value, "<i2").tobytes())


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def make_datadir(root: Path, utts_per_speaker: dict[str, int], name: str = "data") -> Path:
    """A valid data dir: utterance ids are '<speaker>-<n>', as Kaldi recommends."""
    data = root / name
    wavs = root / f"{name}_wavs"
    data.mkdir(parents=True)
    wavs.mkdir()
    wav_scp, text, utt2spk, spk2utt = [], [], [], []
    for spk in sorted(utts_per_speaker):
        utts = [f"{spk}-{n:02d}" for n in range(utts_per_speaker[spk])]
        for i, utt in enumerate(utts):
            path = wavs / f"{utt}.wav"
            write_wav(path, 800 + 80 * i, value=100 * (i + 1))
            wav_scp.append(f"{utt} {path}")
            text.append(f"{utt} {WORDS[i % 2]} {WORDS[(i + 1) % 2]}")
            utt2spk.append(f"{utt} {spk}")
        spk2utt.append(f"{spk} {' '.join(utts)}")
    write_lines(data / "wav.scp", wav_scp)
    write_lines(data / "text", text)
    write_lines(data / "utt2spk", utt2spk)
    write_lines(data / "spk2utt", spk2utt)
    return data


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def drop_line(path: Path, key: str) -> None:
    write_lines(path, [line for line in lines_of(path) if line.split()[0] != key])


# --- tables ----------------------------------------------------------------------------------


def test_read_kaldi_map_keeps_the_rest_of_the_line(tmp_path):
    path = tmp_path / "text"
    write_lines(path, ["u1 hello  world", "u2 x", "u3"])
    with pytest.raises(DataDirError, match=rf"^{path}:3: 'u3' has no value$"):
        read_kaldi_map(path)
    assert read_kaldi_map(path, allow_empty=True) == {"u1": "hello  world", "u2": "x", "u3": ""}


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"a 1\nb 2\na 3\n", ":3: duplicate id 'a' (first on line 1)"),
        (b"a 1\n\nb 2\n", ":2: empty line"),
        (b"a 1\nb \xff\xfe\n", ":2: not valid UTF-8"),
        (b"a 1\nb 2", ":2: no newline at the end of the file"),
    ],
)
def test_read_kaldi_map_errors_name_file_and_line(tmp_path, content, problem):
    path = tmp_path / "utt2spk"
    path.write_bytes(content)
    with pytest.raises(DataDirError) as info:
        read_kaldi_map(path)
    assert str(info.value) == f"{path}{problem}"


def test_read_kaldi_map_missing_file(tmp_path):
    with pytest.raises(DataDirError, match="file not found"):
        read_kaldi_map(tmp_path / "nope")


def test_write_kaldi_map_sorts_in_c_byte_order(tmp_path):
    path = tmp_path / "map"
    write_kaldi_map(path, {"a_1": "5", "a": "3", "B": "1", "a-1": "4", "_x": "2", "é": "6"})
    # C order compares bytes: upper case < '_' < lower case; '-' < '_'; UTF-8 after ASCII.
    assert lines_of(path) == ["B 1", "_x 2", "a 3", "a-1 4", "a_1 5", "é 6"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map"]  # no temp file left


def test_write_kaldi_map_rejects_bad_ids_without_leaving_a_file(tmp_path):
    path = tmp_path / "map"
    with pytest.raises(DataDirError, match="whitespace"):
        write_kaldi_map(path, {"a b": "1"})
    assert list(tmp_path.iterdir()) == []


# --- DataDir ---------------------------------------------------------------------------------


def test_load_and_save_round_trip(tmp_path):
    src = make_datadir(tmp_path, {"spkB": 2, "spkA": 3})
    write_lines(
        src / "utt2dur",
        [f"spkA-0{i} {0.1 + 0.01 * i}" for i in range(3)] + ["spkB-00 0.1", "spkB-01 0.11"],
    )
    data = DataDir.load(src)
    assert data.utt_ids == ["spkA-00", "spkA-01", "spkA-02", "spkB-00", "spkB-01"]
    assert data.spk2utt == {
        "spkA": ["spkA-00", "spkA-01", "spkA-02"],
        "spkB": ["spkB-00", "spkB-01"],
    }
    assert data.text["spkA-01"] == "NO YES"
    assert data.utt2dur["spkA-02"] == pytest.approx(0.12)
    assert data.segments is None and data.feats_scp is None and data.cmvn_scp is None
    out = data.save(tmp_path / "copy")
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        assert lines_of(out / name) == lines_of(src / name)
    assert DataDir.load(out).utt2dur == data.utt2dur
    assert validate_datadir(out) == []


def test_spk2utt_is_derived_when_absent(tmp_path):
    src = make_datadir(tmp_path, {"s1": 2, "s2": 1})
    (src / "spk2utt").unlink()
    assert DataDir.load(src).spk2utt == {"s1": ["s1-00", "s1-01"], "s2": ["s2-00"]}


def test_load_reports_malformed_lines(tmp_path):
    src = make_datadir(tmp_path, {"s1": 2})
    write_lines(src / "segments", ["s1-00 s1-00 0.0 0.05", "s1-01 s1-01 0.2 0.1"])
    with pytest.raises(DataDirError) as info:
        DataDir.load(src)
    assert str(info.value).startswith(f"{src / 'segments'}:2: 's1-01': end time 0.1 is not after")


def test_load_missing_directory_and_utt2spk(tmp_path):
    with pytest.raises(DataDirError, match="data directory not found"):
        DataDir.load(tmp_path / "nope")
    src = make_datadir(tmp_path, {"s1": 1})
    (src / "utt2spk").unlink()
    with pytest.raises(DataDirError, match=r"utt2spk: file not found"):
        DataDir.load(src)


def test_load_audio_of_segments(tmp_path):
    data_dir = tmp_path / "seg"
    data_dir.mkdir()
    rec = tmp_path / "rec.wav"
    with wave.open(str(rec), "wb") as handle:  # 1 s: sample i has value i
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(np.arange(RATE, dtype="<i2").tobytes())
    write_lines(data_dir / "wav.scp", [f"rec {rec}"])
    write_lines(data_dir / "segments", ["rec-a rec 0.10 0.25", "rec-b rec 0.5 -1"])
    write_lines(data_dir / "utt2spk", ["rec-a rec", "rec-b rec"])
    write_lines(data_dir / "spk2utt", ["rec rec-a rec-b"])
    write_lines(data_dir / "text", ["rec-a YES", "rec-b NO"])
    assert validate_datadir(data_dir) == []
    data = DataDir.load(data_dir)
    assert data.segments["rec-a"] == Segment("rec", 0.10, 0.25)
    a, rate = data.load_audio("rec-a")
    assert rate == RATE
    np.testing.assert_array_equal(a * 32768, np.arange(800, 2000))
    b, _ = data.load_audio("rec-b")
    np.testing.assert_array_equal(b * 32768, np.arange(4000, 8000))
    resampled, rate = data.load_audio("rec-a", sample_rate=16000)
    assert rate == 16000 and len(resampled) == 2400


def test_pipe_in_wav_scp_needs_the_flag_and_the_error_names_the_line(tmp_path):
    src = make_datadir(tmp_path, {"s1": 2})
    path = DataDir.load(src).wav_scp["s1-01"]
    write_lines(
        src / "wav.scp", [line for line in lines_of(src / "wav.scp")[:1]] + [f"s1-01 cat {path} |"]
    )
    data = DataDir.load(src)
    with pytest.raises(AudioError) as info:
        data.load_audio("s1-01")
    message = str(info.value)
    assert message.startswith(f"{src / 'wav.scp'}:2: utterance 's1-01': ")
    assert "--allow-pipes" in message and "\n" not in message
    piped, _ = data.load_audio("s1-01", allow_pipe=True)
    assert len(piped) == 880 and piped[0] == pytest.approx(200 / 32768)
    assert validate_datadir(src) == []  # a pipe is not a missing file


def test_missing_audio_error_names_wav_scp_line(tmp_path):
    src = make_datadir(tmp_path, {"s1": 2})
    data = DataDir.load(src)
    Path(data.wav_scp["s1-01"]).unlink()
    with pytest.raises(AudioError, match=rf"^{src / 'wav.scp'}:2: utterance 's1-01': .*not found"):
        data.load_audio("s1-01")


# --- validate --------------------------------------------------------------------------------


def test_valid_directory_has_no_problems(tmp_path):
    assert validate_datadir(make_datadir(tmp_path, {"a": 2, "b": 3})) == []


def corrupt_text_not_in_wav_scp(d):
    drop_line(d / "wav.scp", "s1-01")
    return [f"{d / 'text'}:2: utterance 's1-01' is not in wav.scp"]


def corrupt_non_utf8_text(d):
    (d / "text").write_bytes(b"s1-00 YES\ns1-01 caf\xe9\ns2-00 NO\n")
    return [
        f"{d / 'text'}:2: not valid UTF-8",
        f"{d / 'utt2spk'}:2: utterance 's1-01' is not in text",
    ]


def corrupt_unsorted(d):
    write_lines(d / "text", ["s1-01 YES", "s1-00 NO", "s2-00 NO"])
    return [
        f"{d / 'text'}:2: not sorted: 's1-00' comes after 's1-01' "
        "(ids must be in C byte order, as LC_ALL=C sort)"
    ]


def corrupt_duplicate(d):
    write_lines(d / "utt2spk", ["s1-00 s1", "s1-01 s1", "s1-01 s1", "s2-00 s2"])
    return [f"{d / 'utt2spk'}:3: duplicate id 's1-01' (first on line 2)"]


def corrupt_empty_transcript(d):
    write_lines(d / "text", ["s1-00 YES", "s1-01", "s2-00 NO"])
    return [f"{d / 'text'}:2: utterance 's1-01' has an empty transcript"]


def corrupt_missing_audio(d):
    path = DataDir.load(d).wav_scp["s2-00"]
    Path(path).unlink()
    return [f"{d / 'wav.scp'}:3: audio file '{path}' of 's2-00' not found"]


def corrupt_audio_is_a_directory(d):
    path = DataDir.load(d).wav_scp["s1-01"]
    Path(path).unlink()
    Path(path).mkdir()
    return [f"{d / 'wav.scp'}:2: audio file '{path}' of 's1-01' is a directory"]


def corrupt_spk2utt(d):
    write_lines(d / "spk2utt", ["s1 s1-00", "s2 s2-00", "s3 s3-00"])
    return [
        f"{d / 'spk2utt'}:1: utterances of speaker 's1' do not match utt2spk "
        "(asr data fix regenerates spk2utt)",
        f"{d / 'spk2utt'}:3: speaker 's3' is not in utt2spk",
    ]


def corrupt_extra_utterance_in_text(d):
    write_lines(d / "text", lines_of(d / "text") + ["s3-00 YES"])
    return [f"{d / 'text'}:4: utterance 's3-00' is not in utt2spk"]


def corrupt_speaker_order(d):
    write_lines(d / "utt2spk", ["s1-00 s1", "s1-01 zz", "s2-00 s2"])
    write_lines(d / "spk2utt", ["s1 s1-00", "s2 s2-00", "zz s1-01"])
    return [
        f"{d / 'utt2spk'}:3: speaker 's2' of 's2-00' sorts before 'zz' of 's1-01': utt2spk must "
        "also be sorted by speaker (make speaker ids prefixes of utterance ids)"
    ]


def corrupt_segments(d):
    write_lines(d / "segments", ["s1-00 recA 0 0.05", "s1-01 s1-01 0.5 0.2", "s2-00 s2-00 0 -1"])
    return [
        f"{d / 'segments'}:1: recording 'recA' of utterance 's1-00' is not in wav.scp",
        f"{d / 'segments'}:2: utterance 's1-01': end time 0.2 is not after start time 0.5",
    ]


def corrupt_feats(d):
    write_lines(d / "feats.scp", [f"s1-00 {d}/raw.ark:12", f"s1-01 {d}/raw.ark:345"])
    return [
        f"{d / 'text'}:3: utterance 's2-00' is not in feats.scp",
        f"{d / 'feats.scp'}:1: file '{d}/raw.ark' of 's1-00' not found",
        f"{d / 'feats.scp'}:2: file '{d}/raw.ark' of 's1-01' not found",
    ]


def corrupt_bad_duration(d):
    write_lines(d / "utt2dur", ["s1-00 0.1", "s1-01 zero", "s2-00 -2"])
    return [
        f"{d / 'utt2dur'}:2: 's1-01': 'zero' is not a positive number",
        f"{d / 'utt2dur'}:3: 's2-00': '-2' is not a positive number",
    ]


@pytest.mark.parametrize(
    "corrupt",
    [
        corrupt_text_not_in_wav_scp,
        corrupt_non_utf8_text,
        corrupt_unsorted,
        corrupt_duplicate,
        corrupt_empty_transcript,
        corrupt_missing_audio,
        corrupt_audio_is_a_directory,
        corrupt_spk2utt,
        corrupt_extra_utterance_in_text,
        corrupt_speaker_order,
        corrupt_segments,
        corrupt_feats,
        corrupt_bad_duration,
    ],
)
def test_validate_reports_each_problem_once_with_file_and_line(tmp_path, corrupt):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1})
    expected = corrupt(d)
    assert sorted(validate_datadir(d)) == sorted(expected)


def test_validate_reports_an_unreadable_audio_file(tmp_path):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1})
    path = DataDir.load(d).wav_scp["s1-00"]
    prefix = unreadable(Path(path))
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "asr", "data", "validate", str(d)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"{d / 'wav.scp'}:1: audio file '{path}' of 's1-00' cannot be read (permission denied)"
    ]
    assert "Traceback" not in result.stderr


def test_validate_accepts_a_named_pipe_without_opening_it(tmp_path):
    # A FIFO is a legitimate audio source; opening it to probe would block with no writer.
    d = make_datadir(tmp_path, {"s1": 1})
    path = Path(DataDir.load(d).wav_scp["s1-00"])
    path.unlink()
    os.mkfifo(path)
    assert validate_datadir(d) == []


def test_validate_without_file_checks(tmp_path):
    d = make_datadir(tmp_path, {"s1": 2})
    corrupt_missing_audio_s1 = DataDir.load(d).wav_scp["s1-00"]
    Path(corrupt_missing_audio_s1).unlink()
    assert validate_datadir(d, check_files=False) == []
    assert len(validate_datadir(d)) == 1


def test_validate_missing_required_files(tmp_path):
    d = make_datadir(tmp_path, {"s1": 1})
    (d / "spk2utt").unlink()
    (d / "wav.scp").unlink()
    problems = validate_datadir(d)
    assert f"{d / 'spk2utt'}: file not found (asr data fix regenerates it)" in problems
    assert f"{d / 'wav.scp'}: file not found (required, unless feats.scp exists)" in problems
    assert validate_datadir(tmp_path / "nope") == [f"{tmp_path / 'nope'}: data directory not found"]


# --- fix -------------------------------------------------------------------------------------


def test_fix_repairs_what_can_be_repaired(tmp_path):
    d = make_datadir(tmp_path, {"s1": 4, "s2": 2, "s3": 1})
    original = {name: (d / name).read_bytes() for name in ("wav.scp", "text", "utt2spk", "spk2utt")}
    data = DataDir.load(d)
    Path(data.wav_scp["s1-03"]).unlink()  # missing audio
    drop_line(d / "wav.scp", "s2-01")  # in text but not in wav.scp
    text = lines_of(d / "text")
    text[1] = "s1-01"  # empty transcript
    write_lines(d / "text", text[::-1] + ["s9-00 ORPHAN"])  # unsorted, with an orphan
    (d / "text").write_bytes((d / "text").read_bytes().replace(b"s3-00 YES", b"s3-00 caf\xe9"))
    (d / "spk2utt").unlink()
    assert validate_datadir(d) != []

    report = fix_datadir(d)

    assert validate_datadir(d) == []
    assert report.dropped == {
        "s1-01": "empty transcript",
        "s1-03": "audio file missing",
        "s2-01": "not in wav.scp",
        "s3-00": "not in text",  # its line was not UTF-8
    }
    assert report.kept == 3
    assert report.removed_lines == 2  # the non-UTF-8 line and the orphan
    assert report.unfixable == []
    kept = DataDir.load(d)
    assert kept.utt_ids == ["s1-00", "s1-02", "s2-00"]
    assert kept.spk2utt == {"s1": ["s1-00", "s1-02"], "s2": ["s2-00"]}
    assert lines_of(d / "text") == ["s1-00 YES NO", "s1-02 YES NO", "s2-00 YES NO"]
    # The backup holds the files as they were before fixing (as Kaldi's .backup/).
    backup = d / ".backup"
    assert report.backup_dir == backup
    assert (backup / "utt2spk").read_bytes() == original["utt2spk"]
    assert b"ORPHAN" in (backup / "text").read_bytes()
    summary = "\n".join(report.summary_lines())
    assert "kept 3 utterances, dropped 4" in summary and "dropped 1: empty transcript" in summary


def test_fix_filters_segments_recordings_and_speaker_tables(tmp_path):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1})
    wav = DataDir.load(d).wav_scp
    write_lines(
        d / "wav.scp", [f"recA {wav['s1-00']}", f"recB {wav['s2-00']}", f"recC {wav['s1-01']}"]
    )
    write_lines(d / "segments", ["s1-00 recA 0 0.05", "s1-01 recA 0.05 0.1", "s2-00 recB 0 0.1"])
    write_lines(d / "cmvn.scp", [f"s1 {wav['s1-00']}", f"s2 {wav['s2-00']}"])
    write_lines(d / "utt2dur", ["s1-00 0.05", "s1-01 0.05", "s2-00 0.1"])
    drop_line(d / "text", "s2-00")
    report = fix_datadir(d)
    assert report.dropped == {"s2-00": "not in text"}
    data = DataDir.load(d)
    assert data.wav_scp == {"recA": wav["s1-00"]}  # unused recordings go
    assert set(data.segments) == {"s1-00", "s1-01"}
    assert data.cmvn_scp == {"s1": wav["s1-00"]}
    assert lines_of(d / "utt2dur") == ["s1-00 0.05", "s1-01 0.05"]
    assert validate_datadir(d) == []


def test_fix_cannot_repair_speaker_order(tmp_path):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1})
    corrupt_speaker_order(d)
    report = fix_datadir(d)
    assert len(report.unfixable) == 1 and "sorted by speaker" in report.unfixable[0]


# --- split and subset ------------------------------------------------------------------------


@pytest.mark.parametrize("num_splits", [1, 2, 3, 5])
def test_split_by_speaker(tmp_path, num_splits):
    counts = {"s1": 5, "s2": 1, "s3": 3, "s4": 2, "s5": 4}
    d = make_datadir(tmp_path, counts)
    (d / "feats.yaml").write_text("kind: fbank\n")
    parts = split_datadir(d, num_splits)
    assert parts == [d / f"split{num_splits}" / str(i) for i in range(1, num_splits + 1)]
    seen_utts, seen_speakers = [], []
    for part in parts:
        assert validate_datadir(part) == []
        data = DataDir.load(part)
        assert data.utt2spk and (part / "feats.yaml").read_text() == "kind: fbank\n"
        seen_utts += data.utt_ids
        seen_speakers += data.speakers
        # every utterance of a speaker travels with it
        assert all(len(data.spk2utt[s]) == counts[s] for s in data.speakers)
        assert set(data.text) == set(data.wav_scp) == set(data.utt2spk)
    assert sorted(seen_utts) == DataDir.load(d).utt_ids  # a partition: nothing lost or doubled
    assert sorted(seen_speakers) == sorted(counts)


def test_split_balances_utterances(tmp_path):
    d = make_datadir(tmp_path, {"a": 6, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1})
    sizes = [len(DataDir.load(p).utt2spk) for p in split_datadir(d, 2)]
    assert sizes == [6, 6]


def test_split_errors(tmp_path):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1})
    with pytest.raises(DataDirError, match="cannot split 2 speakers into 3 parts"):
        split_datadir(d, 3)
    with pytest.raises(DataDirError, match="at least 1"):
        split_datadir(d, 0)


def test_subset(tmp_path):
    d = make_datadir(tmp_path, {"s1": 3, "s2": 2})
    out = subset_datadir(d, ["s1-02", "s2-00"], tmp_path / "sub")
    data = DataDir.load(out)
    assert data.utt_ids == ["s1-02", "s2-00"]
    assert data.spk2utt == {"s1": ["s1-02"], "s2": ["s2-00"]}
    assert set(data.text) == set(data.wav_scp) == {"s1-02", "s2-00"}
    assert validate_datadir(out) == []
    with pytest.raises(DataDirError, match="utterance 'zz' is not in the data directory"):
        subset_datadir(d, ["s1-00", "zz"], tmp_path / "sub2")
    with pytest.raises(DataDirError, match="cannot overwrite"):
        subset_datadir(d, ["s1-00"], d)


def test_copy_with_other_transcripts(tmp_path, capsys):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1})
    (d / "feats.yaml").write_text("kind: fbank\n")  # a non-table file travels with the copy
    write_lines(tmp_path / "phones", ["s1-00 sh ih p", "s1-01 b ow t", "s2-00 s iy"])
    assert (
        main(["data", "copy", str(d), str(tmp_path / "ph"), "--text", str(tmp_path / "phones")])
        == 0
    )
    copy = DataDir.load(tmp_path / "ph")
    assert copy.text == {"s1-00": "sh ih p", "s1-01": "b ow t", "s2-00": "s iy"}
    assert copy.wav_scp == DataDir.load(d).wav_scp
    assert (tmp_path / "ph" / "feats.yaml").read_text() == "kind: fbank\n"
    assert validate_datadir(tmp_path / "ph") == []
    assert DataDir.load(d).text != copy.text  # the source is untouched
    write_lines(tmp_path / "short", ["s1-00 a", "s2-00 b"])
    with pytest.raises(DataDirError, match=r"short: has no line for utterance 's1-01'"):
        copy_datadir(d, tmp_path / "bad", text=tmp_path / "short")
    write_lines(tmp_path / "long", ["s1-00 a", "s1-01 b", "s2-00 c", "s9-00 d"])
    with pytest.raises(DataDirError, match=r"long: has unknown utterance 's9-00'"):
        copy_datadir(d, tmp_path / "bad", text=tmp_path / "long")
    assert not (tmp_path / "bad").exists()


def test_subset_by_speaker(tmp_path):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1, "s3": 2})
    write_lines(d / "spk2gender", ["s1 f", "s2 m", "s3 f"])
    out = subset_datadir_by_speaker(d, ["s3", "s1"], tmp_path / "keep")
    data = DataDir.load(out)
    assert data.utt_ids == ["s1-00", "s1-01", "s3-00", "s3-01"]
    assert data.extra["spk2gender"] == {"s1": "f", "s3": "f"}
    assert validate_datadir(out) == []
    # a held-out list may name speakers this directory does not have
    out = subset_datadir_by_speaker(d, ["s1", "other"], tmp_path / "drop", exclude=True)
    assert DataDir.load(out).utt_ids == ["s2-00", "s3-00", "s3-01"]
    with pytest.raises(DataDirError, match=r"speaker 'zz' is not in the data directory$"):
        subset_datadir_by_speaker(d, ["s1", "zz"], tmp_path / "bad")
    with pytest.raises(DataDirError, match="no utterances left"):
        subset_datadir_by_speaker(d, ["s1", "s2", "s3"], tmp_path / "none", exclude=True)
    with pytest.raises(DataDirError, match="cannot overwrite"):
        subset_datadir_by_speaker(d, ["s1"], d)


def test_combine_is_the_union_of_tables(tmp_path):
    a = make_datadir(tmp_path, {"s1": 2, "s2": 1}, name="a")
    b = make_datadir(tmp_path, {"s2": 1, "s3": 2}, name="b")
    drop_line(b / "utt2spk", "s2-00")  # b's s2 utterance gets another id, same speaker
    drop_line(b / "text", "s2-00")
    drop_line(b / "wav.scp", "s2-00")
    write_lines(b / "spk2utt", ["s3 s3-00 s3-01"])
    write_lines(a / "utt2dur", ["s1-00 0.1", "s1-01 0.11", "s2-00 0.1"])  # only a has utt2dur
    write_lines(a / "spk2gender", ["s1 f", "s2 m"])
    write_lines(b / "spk2gender", ["s3 m"])
    out = combine_datadirs([a, b], tmp_path / "all")
    assert validate_datadir(out.path) == []
    data = DataDir.load(tmp_path / "all")
    assert data.utt_ids == ["s1-00", "s1-01", "s2-00", "s3-00", "s3-01"]
    assert data.wav_scp["s3-01"] == DataDir.load(b).wav_scp["s3-01"]
    assert data.text["s3-00"] == DataDir.load(b).text["s3-00"]
    assert data.extra["spk2gender"] == {"s1": "f", "s2": "m", "s3": "m"}
    assert data.utt2dur is None and not (tmp_path / "all" / "utt2dur").exists()


def test_combine_carries_the_feature_config_with_feats_scp(tmp_path):
    # the LibriSpeech recipe combines featured sets into data/train, which training then reads:
    # without feats.yaml beside feats.scp it could not (asr train: "feats.yaml: file not found")
    config = FeatureConfig.from_dict({"options": {"num_mel_bins": 23, "dither": 0.0}})
    a = make_datadir(tmp_path, {"s1": 2}, name="a")
    b = make_datadir(tmp_path, {"s2": 2}, name="b")
    for d in (a, b):
        compute_datadir_features(d, config, progress=False)
    combine_datadirs([a, b], tmp_path / "all")
    assert (tmp_path / "all" / "feats.yaml").read_text() == (a / "feats.yaml").read_text()
    both = FeatureSet(tmp_path / "all")
    assert both.config == config and both.ids == ["s1-00", "s1-01", "s2-00", "s2-01"]
    assert np.array_equal(both.raw("s2-01").numpy(), FeatureSet(b).raw("s2-01").numpy())

    other = make_datadir(tmp_path, {"s3": 1}, name="c")
    compute_datadir_features(
        other, FeatureConfig.from_dict({"options": {"num_mel_bins": 40}}), progress=False
    )
    with pytest.raises(DataDirError, match=rf"^{other / 'feats.yaml'}: differs from {a}"):
        combine_datadirs([a, other], tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()


def test_combine_errors_name_both_directories(tmp_path):
    a = make_datadir(tmp_path, {"s1": 2}, name="a")
    b = make_datadir(tmp_path, {"s1": 1, "s2": 1}, name="b")
    with pytest.raises(DataDirError) as info:
        combine_datadirs([a, b], tmp_path / "all")
    assert str(info.value) == (
        f"{b / 'utt2spk'}:1: utterance 's1-00' is also in {a / 'utt2spk'}:1 "
        "(utterance ids must be unique across combined directories)"
    )
    assert not (tmp_path / "all").exists()
    c = make_datadir(tmp_path, {"s1": 3}, name="c")  # speaker s1 again, utterance s1-02 only
    for name in ("utt2spk", "text", "wav.scp"):
        drop_line(c / name, "s1-00")
        drop_line(c / name, "s1-01")
    write_lines(c / "spk2utt", ["s1 s1-02"])
    write_lines(a / "spk2gender", ["s1 f"])
    write_lines(c / "spk2gender", ["s1 m"])
    with pytest.raises(DataDirError, match=r"c/spk2gender:1: 's1' is 'm' here but 'f' in .*a/"):
        combine_datadirs([a, c], tmp_path / "all")
    write_lines(c / "spk2gender", ["s1 f"])
    assert combine_datadirs([a, c], tmp_path / "all").spk2utt == {"s1": ["s1-00", "s1-01", "s1-02"]}
    # one recording id, two different files: the segments could not both be right
    for d, utt in ((a, "s1-00"), (c, "s1-02")):
        wav = DataDir.load(d).wav_scp[utt]
        write_lines(d / "wav.scp", [f"rec {wav}"])
        write_lines(d / "segments", [f"{u} rec 0 0.05" for u in DataDir.load(d).utt_ids])
    with pytest.raises(DataDirError, match=r"c/wav.scp:1: 'rec' is '.*' here but '.*' in .*a/"):
        combine_datadirs([a, c], tmp_path / "all2")
    with pytest.raises(DataDirError, match="cannot overwrite its source"):
        combine_datadirs([a, c], a)


def test_combine_makes_whole_segments_for_unsegmented_sources(tmp_path):
    a = make_datadir(tmp_path, {"s1": 2}, name="a")  # 800 and 880 samples at 8 kHz
    write_lines(a / "utt2dur", ["s1-00 0.1", "s1-01 0.11"])
    b = make_datadir(tmp_path, {"s2": 1}, name="b")
    wav = DataDir.load(b).wav_scp["s2-00"]
    write_lines(b / "wav.scp", [f"rec {wav}"])
    write_lines(b / "segments", ["s2-00 rec 0.02 0.08"])
    c = make_datadir(tmp_path, {"s3": 1}, name="c")  # no utt2dur: timed from its header
    combine_datadirs([a, b, c], tmp_path / "all")
    assert validate_datadir(tmp_path / "all") == []
    assert lines_of(tmp_path / "all" / "segments") == [
        "s1-00 s1-00 0.00 0.10",
        "s1-01 s1-01 0.00 0.11",
        "s2-00 rec 0.02 0.08",
        "s3-00 s3-00 0.00 0.10",
    ]
    data = DataDir.load(tmp_path / "all")
    assert len(data.load_audio("s1-01")[0]) == 880 and len(data.load_audio("s2-00")[0]) == 480


# --- command line ----------------------------------------------------------------------------


def test_cli_validate_ok(tmp_path, capsys):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1})
    assert main(["data", "validate", str(d)]) == 0
    assert capsys.readouterr().out.strip() == f"{d}: valid (3 utterances, 2 speakers)"


def test_cli_validate_problems_exit_1(tmp_path, capsys):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1})
    expected = corrupt_text_not_in_wav_scp(d) + corrupt_duplicate(d)
    assert main(["data", "validate", str(d)]) == 1
    captured = capsys.readouterr()
    assert sorted(captured.out.splitlines()) == sorted(expected)
    assert "2 problem(s) found" in captured.err


def test_cli_validate_no_check_files(tmp_path, capsys):
    d = make_datadir(tmp_path, {"s1": 2})
    corrupt_missing_audio_path = DataDir.load(d).wav_scp["s1-00"]
    Path(corrupt_missing_audio_path).unlink()
    assert main(["data", "validate", str(d)]) == 1
    assert main(["data", "validate", "--no-check-files", str(d)]) == 0


def test_cli_fix_then_validate(tmp_path, capsys):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1})
    corrupt_empty_transcript(d)
    assert main(["data", "fix", str(d)]) == 0
    out = capsys.readouterr().out
    assert f"{d}: kept 2 utterances, dropped 1" in out and "empty transcript" in out
    assert main(["data", "validate", str(d)]) == 0


def test_cli_split_and_subset(tmp_path, capsys):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1, "s3": 2})
    assert main(["data", "split", str(d), "2"]) == 0
    assert capsys.readouterr().out.split() == [str(d / "split2" / "1"), str(d / "split2" / "2")]
    write_lines(tmp_path / "list", ["s3-01", "s1-00"])
    assert (
        main(
            ["data", "subset", str(d), str(tmp_path / "sub"), "--utt-list", str(tmp_path / "list")]
        )
        == 0
    )
    assert DataDir.load(tmp_path / "sub").utt_ids == ["s1-00", "s3-01"]


def test_cli_subset_first_and_last(tmp_path, capsys):
    d = make_datadir(tmp_path, {"s1": 2, "s2": 1, "s3": 2})
    assert main(["data", "subset", str(d), str(tmp_path / "first"), "--first", "2"]) == 0
    assert main(["data", "subset", str(d), str(tmp_path / "last"), "--last", "3"]) == 0
    first = DataDir.load(tmp_path / "first")
    last = DataDir.load(tmp_path / "last")
    assert first.utt_ids == ["s1-00", "s1-01"]
    assert last.utt_ids == ["s2-00", "s3-00", "s3-01"]
    assert sorted(first.spk2utt) == ["s1"] and sorted(last.spk2utt) == ["s2", "s3"]
    assert validate_datadir(tmp_path / "last") == []


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "split", str(tmp_path / "nope"), "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"asr data: error: {tmp_path / 'nope'}: data directory not found"
    d = make_datadir(tmp_path, {"s1": 1})
    assert main(["data", "split", str(d), "4"]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("cannot split 1 speakers into 4 parts (splits are by speaker)")
    )


def test_cli_combine_and_subset_by_speaker(tmp_path, capsys):
    a = make_datadir(tmp_path, {"s1": 2, "s2": 1}, name="a")
    b = make_datadir(tmp_path, {"s3": 2}, name="b")
    all_dir = tmp_path / "all"
    assert main(["data", "combine", str(all_dir), str(a), str(b)]) == 0
    assert (
        capsys.readouterr().out.strip() == f"{all_dir}: 5 utterances, 3 speakers from 2 directories"
    )
    write_lines(tmp_path / "spk", ["s3", "s1"])
    assert (
        main(
            [
                "data",
                "subset",
                str(all_dir),
                str(tmp_path / "k"),
                "--spk-list",
                str(tmp_path / "spk"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'k'}: 4 utterances, 2 speakers"
    args = ["data", "subset", str(all_dir), str(tmp_path / "x"), "--exclude-spk-list"]
    assert main([*args, str(tmp_path / "spk")]) == 0
    assert DataDir.load(tmp_path / "x").utt_ids == ["s2-00"]
    with pytest.raises(SystemExit):  # one way of choosing at a time
        main([*args, str(tmp_path / "spk"), "--spk-list", str(tmp_path / "spk")])
    assert main(["data", "combine", str(tmp_path / "twice"), str(a), str(a)]) == 1
    assert "is also in" in capsys.readouterr().err


# --- utt2dur ---------------------------------------------------------------------------------


def test_compute_utt2dur_from_headers_and_segments(tmp_path, capsys):
    d = make_datadir(tmp_path, {"s1": 3})
    assert main(["data", "utt2dur", str(d)]) == 0
    # make_datadir writes 800 + 80 i samples at 8 kHz
    assert read_kaldi_map(d / "utt2dur") == {"s1-00": "0.1", "s1-01": "0.11", "s1-02": "0.12"}
    assert validate_datadir(d) == []
    wav = DataDir.load(d).wav_scp
    write_lines(d / "wav.scp", [f"rec {wav['s1-02']}"])  # 0.12 s
    write_lines(d / "segments", ["s1-00 rec 0 0.05", "s1-01 rec 0.02 -1", "s1-02 rec 0.1 0.12"])
    compute_utt2dur(d)
    durations = {k: float(v) for k, v in read_kaldi_map(d / "utt2dur").items()}
    assert durations == pytest.approx({"s1-00": 0.05, "s1-01": 0.10, "s1-02": 0.02})


def test_compute_utt2dur_skips_bad_audio_and_counts_it(tmp_path, capsys):
    d = make_datadir(tmp_path, {"s1": 3})
    wav = DataDir.load(d).wav_scp
    Path(wav["s1-01"]).write_bytes(b"")
    write_lines(
        d / "wav.scp",
        [f"s1-00 {wav['s1-00']}", f"s1-01 {wav['s1-01']}", f"s1-02 cat {wav['s1-02']} |"],
    )
    report = compute_utt2dur(d)
    assert report.written == 1 and set(report.failed) == {"s1-01", "s1-02"}
    assert report.failed["s1-01"] == (
        f"{d / 'wav.scp'}:2: utterance 's1-01': {wav['s1-01']}: empty file (0 bytes)"
    )
    assert "--allow-pipes" in report.failed["s1-02"]
    assert read_kaldi_map(d / "utt2dur") == {"s1-00": "0.1"}
    assert main(["data", "utt2dur", "--allow-pipes", str(d)]) == 1
    captured = capsys.readouterr()
    assert "empty file" in captured.err and "2 utterances, 1 failed" in captured.out
    assert read_kaldi_map(d / "utt2dur") == {"s1-00": "0.1", "s1-02": "0.12"}


# --- a real corpus ---------------------------------------------------------------------------


@pytest.mark.integration
def test_yesno_files_as_a_data_dir(tmp_path, yesno_dir, capsys):
    wavs = sorted(yesno_dir.glob("*.wav"))[:4]
    d = tmp_path / "yesno"
    d.mkdir()
    ids = [f"global-{w.stem}" for w in wavs]
    write_lines(d / "wav.scp", [f"{u} {w}" for u, w in zip(ids, wavs, strict=True)])
    words = {"0": "NO", "1": "YES"}
    write_lines(
        d / "text",
        [
            f"{u} {' '.join(words[c] for c in w.stem.split('_'))}"
            for u, w in zip(ids, wavs, strict=True)
        ],
    )
    write_lines(d / "utt2spk", [f"{u} global" for u in ids])
    write_lines(d / "spk2utt", [f"global {' '.join(ids)}"])
    assert main(["data", "validate", str(d)]) == 0
    assert main(["data", "utt2dur", str(d)]) == 0
    data = DataDir.load(d)
    for utt in ids:
        with wave.open(data.wav_scp[utt]) as handle:
            frames = handle.getnframes()
        samples, rate = data.load_audio(utt)
        assert rate == 8000 and len(samples) == frames
        assert data.utt2dur[utt] == pytest.approx(frames / 8000)
