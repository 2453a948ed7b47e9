"""asr.corpora.fsdd and `asr prepare fsdd`: both protocols, bad input, offline download checks."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr import cli
from asr.corpora import fsdd
from asr.corpora.fsdd import download_fsdd, parse_name, prepare_fsdd
from asr.data.validate import validate_datadir
from asr.errors import ConfigError, CorpusError

SAMPLE_RATE = 8000
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SPEAKERS = ("alice", "bob", "carol7")  # not FSDD's: the speakers must come from the names


def _wav_bytes(frames: int = 400, rate: int = SAMPLE_RATE, channels: int = 1, fmt="WAV") -> bytes:
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(frames) / rate).astype(np.float32)
    data = np.repeat(tone[:, None], channels, axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, data, rate, format=fmt, subtype="PCM_16")
    return buffer.getvalue()


def _make_corpus(
    root: Path, speakers=SPEAKERS, digits=(0, 7), indices=range(12), genders=True
) -> Path:
    """ROOT/recordings/{digit}_{speaker}_{index}.wav (durations differ per file) + speakers.json."""
    recordings = root / "recordings"
    recordings.mkdir(parents=True)
    for n, (speaker, digit, index) in enumerate(
        (s, d, i) for s in speakers for d in digits for i in indices
    ):
        (recordings / f"{digit}_{speaker}_{index}.wav").write_bytes(_wav_bytes(400 + 8 * n))
    if genders:
        facts = {s: {"gender": "female" if s == "alice" else "male"} for s in speakers}
        (root / "speakers.json").write_text(json.dumps(facts))
    return recordings


def _read_map(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split(" ", 1) for line in lines)


def _check_dir(folder: Path) -> dict[str, str]:
    """Validate a written data dir and check every table against the file names; returns text."""
    assert validate_datadir(folder) == []
    text = _read_map(folder / "text")
    assert list(text) == sorted(text, key=str.encode)
    wav_scp = _read_map(folder / "wav.scp")
    utt2spk = _read_map(folder / "utt2spk")
    assert list(wav_scp) == list(text) == list(utt2spk)
    for utt, path in wav_scp.items():
        assert Path(path).is_absolute() and Path(path).is_file()
        digit, speaker, index = Path(path).stem.split("_")
        assert utt == f"{speaker}-{digit}_{index}"
        assert utt2spk[utt] == speaker
        assert text[utt] == WORDS[int(digit)]
    return text


def _speaker_index(utt: str) -> tuple[str, int]:
    speaker, rest = utt.split("-")
    return speaker, int(rest.split("_")[1])


def test_parse_name() -> None:
    recording = parse_name("/x/recordings/7_jackson_32.wav")
    assert (recording.digit, recording.speaker, recording.index) == (7, "jackson", 32)
    assert (recording.utt_id, recording.text) == ("jackson-7_32", "seven")
    for bad in ("7_jackson.wav", "x_jackson_1.wav", "7_jackson_01.wav", "10_jackson_1.wav"):
        with pytest.raises(ValueError, match="is not an FSDD file name"):
            parse_name(bad)
    for bad in ("7_jack-son_1.wav", "7_jack_son_1.wav", "7__1.wav", "7_jackson_1.flac"):
        with pytest.raises(ValueError):
            parse_name(bad)


# ---------------------------------------------------------------------------------------------
# The real corpus


@pytest.mark.integration
def test_official_protocol(fsdd_dir: Path, tmp_path: Path) -> None:
    dirs = prepare_fsdd(fsdd_dir, tmp_path / "data")
    assert dirs == {s: tmp_path / "data" / s for s in ("train", "dev", "test")}
    texts = {split: _check_dir(folder) for split, folder in dirs.items()}
    assert {s: len(t) for s, t in texts.items()} == {"train": 2400, "dev": 300, "test": 300}
    wavs = set()
    for path in fsdd_dir.glob("*.wav"):
        digit, speaker, index = path.stem.split("_")
        wavs.add(f"{speaker}-{digit}_{index}")
    assert set().union(*texts.values()) == wavs  # every recording once
    indices = {s: {_speaker_index(u)[1] for u in t} for s, t in texts.items()}
    assert indices == {"test": set(range(5)), "dev": set(range(5, 10)), "train": set(range(10, 50))}
    speakers = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    for folder in dirs.values():
        assert _read_map(folder / "spk2gender") == dict.fromkeys(speakers, "m")
        assert list(_read_map(folder / "spk2utt")) == speakers
    durations = _read_map(dirs["test"] / "utt2dur")
    info = soundfile.info(str(fsdd_dir / "3_theo_4.wav"))
    assert float(durations["theo-3_4"]) == pytest.approx(info.frames / SAMPLE_RATE)


@pytest.mark.integration
def test_leave_one_speaker_out(fsdd_dir: Path, tmp_path: Path) -> None:
    dirs = prepare_fsdd(fsdd_dir.parent, tmp_path / "data", test_speaker="lucas")
    texts = {split: _check_dir(folder) for split, folder in dirs.items()}
    assert {s: len(t) for s, t in texts.items()} == {"train": 2250, "dev": 250, "test": 500}
    assert {_speaker_index(u)[0] for u in texts["test"]} == {"lucas"}
    assert {_speaker_index(u)[1] for u in texts["test"]} == set(range(50))
    for split in ("train", "dev"):
        assert "lucas" not in {_speaker_index(u)[0] for u in texts[split]}
        assert "lucas" not in _read_map(dirs[split] / "spk2utt")
    assert {_speaker_index(u)[1] for u in texts["dev"]} == set(range(5, 10))
    assert {_speaker_index(u)[1] for u in texts["train"]} == set(range(5)) | set(range(10, 50))
    assert len(set().union(*texts.values())) == 3000


# ---------------------------------------------------------------------------------------------
# Small corpora made here


def test_speakers_come_from_the_names(tmp_path: Path) -> None:
    recordings = _make_corpus(tmp_path / "corpus")
    for corpus in (tmp_path / "corpus", recordings):  # the parent folder or recordings/ itself
        dirs = prepare_fsdd(corpus, tmp_path / "data")
        counts = {s: len(_check_dir(d)) for s, d in dirs.items()}
        assert counts == {"train": 3 * 2 * 2, "dev": 3 * 2 * 5, "test": 3 * 2 * 5}
        assert _read_map(dirs["dev"] / "spk2gender") == {"alice": "f", "bob": "m", "carol7": "m"}
    dirs = prepare_fsdd(recordings, tmp_path / "loso", test_speaker="carol7")
    counts = {s: len(_check_dir(d)) for s, d in dirs.items()}
    assert counts == {"train": 2 * 2 * 7, "dev": 2 * 2 * 5, "test": 2 * 12}
    assert _read_map(dirs["test"] / "spk2gender") == {"carol7": "m"}
    assert not [p for p in dirs["test"].iterdir() if p.name.startswith(".")]  # no temp files


def test_bad_files_are_skipped_with_a_message(tmp_path: Path, caplog) -> None:
    recordings = _make_corpus(tmp_path / "corpus")
    bad = {
        "0_bob_3.wav": b"RIFF garbage, not a wave file at all",
        "0_bob_4.wav": b"",
        "0_bob_5.wav": _wav_bytes(channels=2),
        "0_bob_6.wav": _wav_bytes(rate=16000),
        "0_bob_7.wav": _wav_bytes(fmt="FLAC"),
        "0_bob_8.wav": _wav_bytes(4000)[:3000],  # truncated: the header promises more
        "7_bob.wav": _wav_bytes(),
        "7_bob_01.wav": _wav_bytes(),
        "seven_bob_1.wav": _wav_bytes(),
    }
    for name, data in bad.items():
        (recordings / name).write_bytes(data)
    (recordings / "README.md").write_text("not a recording\n")
    with caplog.at_level(logging.WARNING, logger="asr.corpora.fsdd"):
        dirs = prepare_fsdd(recordings, tmp_path / "data")
    messages = [r.getMessage() for r in caplog.records]
    for name in bad:
        lines = [m for m in messages if m.startswith(f"skipped {recordings.resolve() / name}: ")]
        assert len(lines) == 1, name
    assert not any("README" in m for m in messages)
    assert all("\n" not in m for m in messages)
    assert f"{recordings.resolve()}: skipped 9 of 75 wav files (see the messages above)" in messages
    texts = {s: _check_dir(d) for s, d in dirs.items()}
    everything = set().union(*texts.values())
    assert len(everything) == 72 - 6  # the six bad wavs with good names replaced good ones
    assert not {f"bob-0_{i}" for i in range(3, 9)} & everything
    assert "bob-0_2" in texts["test"] and "bob-7_1" in texts["test"]


def test_empty_corpus(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"nowhere: FSDD corpus directory not found$"):
        prepare_fsdd(tmp_path / "nowhere", tmp_path / "data")
    (tmp_path / "corpus" / "recordings").mkdir(parents=True)
    with pytest.raises(CorpusError, match=r"recordings: no usable FSDD recordings found$"):
        prepare_fsdd(tmp_path / "corpus", tmp_path / "data")
    (tmp_path / "corpus" / "recordings" / "1_bob_1.wav").write_bytes(b"")
    with pytest.raises(CorpusError, match=r"found \(1 wav files skipped\)$"):
        prepare_fsdd(tmp_path / "corpus", tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_unknown_test_speaker(tmp_path: Path) -> None:
    _make_corpus(tmp_path / "corpus", digits=(1,))
    with pytest.raises(ConfigError) as info:
        prepare_fsdd(tmp_path / "corpus", tmp_path / "data", test_speaker="jackson")
    assert str(info.value) == (
        f"{(tmp_path / 'corpus' / 'recordings').resolve()}: unknown test speaker 'jackson' "
        "(known: alice, bob, carol7)"
    )
    assert not (tmp_path / "data").exists()


def test_a_split_left_empty_is_an_error(tmp_path: Path) -> None:
    _make_corpus(tmp_path / "corpus", digits=(1,), indices=range(10))  # nothing from 10 up
    with pytest.raises(CorpusError, match=r"no recordings left for the train set$"):
        prepare_fsdd(tmp_path / "corpus", tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_speaker_facts(tmp_path: Path, caplog) -> None:
    corpus = tmp_path / "corpus"
    _make_corpus(corpus, digits=(1,), genders=False)
    # The git release keeps the facts in metadata.py; it is read, never run.
    (corpus / "metadata.py").write_text(
        '"""facts"""\n\nmetadata = {\n'
        "    'alice': {'gender': 'female'}, 'bob': {'gender': 'male'},\n"
        "    'carol7': {'gender': 'male'},\n}\n"
    )
    dirs = prepare_fsdd(corpus, tmp_path / "data")
    assert _read_map(dirs["train"] / "spk2gender") == {"alice": "f", "bob": "m", "carol7": "m"}
    # Facts missing a speaker: a warning, and no spk2gender (a stale one is removed).
    (corpus / "speakers.json").write_text(json.dumps({"alice": {"gender": "female"}}))
    with caplog.at_level(logging.WARNING, logger="asr.corpora.fsdd"):
        dirs = prepare_fsdd(corpus, tmp_path / "data")
    assert f"{corpus.resolve() / 'speakers.json'}: no male/female gender for bob, carol7; " in (
        caplog.text
    )
    for folder in dirs.values():
        assert not (folder / "spk2gender").exists() and validate_datadir(folder) == []
    (corpus / "speakers.json").write_text("{not json")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="asr.corpora.fsdd"):
        prepare_fsdd(corpus, tmp_path / "data")
    assert "speakers.json: cannot read the speaker facts" in caplog.text


# ---------------------------------------------------------------------------------------------
# Download (no network: a complete copy is re-used, an incomplete one refused, file:// archives)


def _release_tree(root: Path, count: int = fsdd.MIN_RECORDINGS) -> Path:
    """ROOT/free-spoken-digit-dataset-1.0.10/recordings with ``count`` tiny wavs."""
    recordings = root / fsdd.FOLDER_IN_ARCHIVE / "recordings"
    recordings.mkdir(parents=True)
    data = _wav_bytes(200)
    for n in range(count):
        speaker, rest = divmod(n, 500)
        (recordings / f"{rest % 10}_spk{speaker}_{rest // 10}.wav").write_bytes(data)
    return recordings.parent


def _listing_digest(recordings: Path) -> str:
    """What `cd recordings && LC_ALL=C sha256sum *.wav | sha256sum` prints, computed here."""
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
        for p in sorted(recordings.glob("*.wav"), key=lambda p: p.name.encode())
    ]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@pytest.fixture
def pin_fake_release(monkeypatch: pytest.MonkeyPatch):
    """Pin the contents of a test tree instead of the real release's (which a test cannot
    download); returns a function that pins a given recordings folder."""

    def pin(recordings: Path) -> None:
        monkeypatch.setattr(fsdd, "RECORDINGS_SHA256", _listing_digest(recordings))

    return pin


def test_pinned_release() -> None:
    assert fsdd.TAG == "v1.0.10"
    assert fsdd.URL == (
        "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
    )


@pytest.mark.integration
def test_pinned_digest_is_that_of_the_real_release(fsdd_dir: Path, tmp_path: Path) -> None:
    # The shared FSDD copy is release v1.0.10's recordings (all 3000 equal the tag's git blobs):
    # the pinned value must be what download_fsdd computes from them, so a genuine download is
    # accepted, and a copy with one byte changed is not.
    recordings = fsdd_dir  # the fixture is the recordings folder
    assert fsdd.recordings_digest(recordings) == (fsdd.RECORDINGS_SHA256, 3000)
    assert _listing_digest(recordings) == fsdd.RECORDINGS_SHA256
    copy = tmp_path / "dest" / fsdd.FOLDER_IN_ARCHIVE / "recordings"
    copy.mkdir(parents=True)
    for path in recordings.glob("*.wav"):
        (copy / path.name).write_bytes(path.read_bytes())
    offline = (tmp_path / "no-such-archive.tar.gz").as_uri()
    assert download_fsdd(tmp_path / "dest", url=offline) == copy.parent
    victim = copy / "3_theo_17.wav"
    data = bytearray(victim.read_bytes())
    data[-1] ^= 1
    victim.write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=r"not the FSDD v1\.0\.10 recordings \(3000 wav files"):
        download_fsdd(tmp_path / "dest", url=offline)


def test_a_copy_with_other_contents_is_refused(tmp_path: Path, pin_fake_release) -> None:
    corpus = _release_tree(tmp_path / "dest")
    pin_fake_release(corpus / "recordings")
    offline = (tmp_path / "no-such-archive.tar.gz").as_uri()
    assert download_fsdd(tmp_path / "dest", url=offline) == corpus
    # the same names and count, one file's bytes changed: only the content digest sees it
    victim = corpus / "recordings" / "0_spk0_0.wav"
    victim.write_bytes(victim.read_bytes()[:-2] + b"\x00\x01")
    with pytest.raises(CorpusError) as info:
        download_fsdd(tmp_path / "dest", url=offline)
    message = str(info.value)
    assert message.startswith(f"{corpus / 'recordings'}: not the FSDD v1.0.10 recordings")
    assert message.endswith(f"remove {corpus} to download again") and "\n" not in message


def test_a_downloaded_archive_with_other_contents_is_refused(
    tmp_path: Path, pin_fake_release
) -> None:
    archive = _archive(tmp_path, 3000)
    pin_fake_release(tmp_path / "source" / fsdd.FOLDER_IN_ARCHIVE / "recordings")
    victim = tmp_path / "source" / fsdd.FOLDER_IN_ARCHIVE / "recordings" / "5_spk1_3.wav"
    victim.write_bytes(victim.read_bytes() + b"\x00\x00")
    tampered = _archive(tmp_path / "t", 0, tree=victim.parent.parent)
    with pytest.raises(CorpusError, match=r"not the FSDD v1\.0\.10 recordings.*delete "):
        download_fsdd(tmp_path / "dest", url=tampered.as_uri())
    # the untampered archive passes the same pin
    assert download_fsdd(tmp_path / "dest2", url=archive.as_uri()).is_dir()


def test_complete_copy_is_reused_without_network(tmp_path: Path, pin_fake_release) -> None:
    corpus = _release_tree(tmp_path / "dest")
    pin_fake_release(corpus / "recordings")
    offline = (tmp_path / "no-such-archive.tar.gz").as_uri()  # fetching it would fail
    assert download_fsdd(tmp_path / "dest", url=offline) == corpus
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == [fsdd.FOLDER_IN_ARCHIVE]


def test_incomplete_copy_is_refused(tmp_path: Path) -> None:
    corpus = _release_tree(tmp_path / "dest", count=2999)
    offline = (tmp_path / "no-such-archive.tar.gz").as_uri()
    with pytest.raises(CorpusError) as info:
        download_fsdd(tmp_path / "dest", url=offline)
    assert str(info.value) == (
        f"{corpus}: incomplete FSDD copy (2999 of 3000 recordings); remove it to download again"
    )
    assert len(list((corpus / "recordings").iterdir())) == 2999  # left alone


def _archive(tmp_path: Path, count: int, tree: Path | None = None) -> Path:
    tree = tree or _release_tree(tmp_path / "source", count)
    archive = tmp_path / "server" / "release.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname=tree.name)
    return archive


def test_download_from_a_file_url(tmp_path: Path, pin_fake_release) -> None:
    archive = _archive(tmp_path, 3000)
    pin_fake_release(tmp_path / "source" / fsdd.FOLDER_IN_ARCHIVE / "recordings")
    dest = tmp_path / "dest"
    corpus = download_fsdd(dest, url=archive.as_uri())
    assert corpus == dest / fsdd.FOLDER_IN_ARCHIVE
    assert len(list((corpus / "recordings").glob("*.wav"))) == 3000
    assert (dest / fsdd.ARCHIVE_NAME).read_bytes() == archive.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == sorted([corpus.name, fsdd.ARCHIVE_NAME])
    archive.unlink()  # a second call does not fetch again
    assert download_fsdd(dest, url=archive.as_uri()) == corpus


def test_download_of_a_short_archive_is_refused(tmp_path: Path) -> None:
    archive = _archive(tmp_path, 10)
    with pytest.raises(CorpusError, match=r"only 10 of 3000 FSDD recordings; delete it and "):
        download_fsdd(tmp_path / "dest", url=archive.as_uri())
    missing = (tmp_path / "absent.tar.gz").as_uri()
    with pytest.raises(CorpusError, match=f"^{missing}: download failed"):
        download_fsdd(tmp_path / "dest2", url=missing)
    assert list((tmp_path / "dest2").iterdir()) == []  # no partial file left


# ---------------------------------------------------------------------------------------------
# Command line


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], pin_fake_release) -> None:
    corpus = tmp_path / "corpus"
    _make_corpus(corpus)
    assert cli.main(["prepare", "fsdd", str(corpus), str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{tmp_path / 'a' / 'train'}: 12 utterances, 3 speakers",
        f"{tmp_path / 'a' / 'dev'}: 30 utterances, 3 speakers",
        f"{tmp_path / 'a' / 'test'}: 30 utterances, 3 speakers",
    ]
    args = ["prepare", "fsdd", "--corpus-dir", str(corpus), "--test-speaker", "bob"]
    assert cli.main([*args, str(tmp_path / "b")]) == 0
    assert (
        capsys.readouterr().out.splitlines()[2]
        == f"{tmp_path / 'b' / 'test'}: 24 utterances, 1 speaker"
    )
    assert set(_read_map(tmp_path / "b" / "test" / "utt2spk").values()) == {"bob"}
    assert cli.main([*args[:-1], "dave", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err
    assert err.endswith("unknown test speaker 'dave' (known: alice, bob, carol7)\n")
    assert err.count("\n") == 1 and not (tmp_path / "c").exists()
    assert cli.main(["prepare", "fsdd", str(tmp_path / "d")]) == 1
    assert "give exactly one of CORPUS_DIR" in capsys.readouterr().err
    # --download re-uses a complete copy (the real URL is never fetched here).
    release = _release_tree(tmp_path / "dl")
    pin_fake_release(release / "recordings")
    assert (
        cli.main(["prepare", "fsdd", "--download", str(tmp_path / "dl"), str(tmp_path / "e")]) == 0
    )
    assert (
        capsys.readouterr().out.splitlines()[0]
        == f"{tmp_path / 'e' / 'train'}: 2400 utterances, 6 speakers"
    )
    wav_scp = _read_map(tmp_path / "e" / "test" / "wav.scp")
    assert wav_scp["spk0-0_0"] == str((release / "recordings" / "0_spk0_0.wav").resolve())
