"""asr.corpora.yesno and `asr prepare yesno`: data directories, input checks, safe download."""

from __future__ import annotations

import hashlib
import inspect
import io
import random
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import tar_link

from asr import cli
from asr.corpora import yesno
from asr.corpora.yesno import (
    download_yesno,
    extract_tar_safely,
    prepare_yesno,
    transcript_from_name,
)
from asr.errors import AudioError, CorpusError

SAMPLE_RATE = 8000


def _names(count: int, seed: int = 0) -> list[str]:
    patterns = random.Random(seed).sample(range(256), count)
    return ["_".join(f"{p:08b}") for p in patterns]


def _make_corpus(folder: Path, count: int = 60) -> dict[str, int]:
    """Short tones named like the yes/no files; returns name -> number of samples."""
    folder.mkdir(parents=True, exist_ok=True)
    lengths = {}
    for i, name in enumerate(_names(count)):
        frames = 800 + 40 * i  # a different duration per file, so utt2dur is checked per file
        tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(frames) / SAMPLE_RATE)
        soundfile.write(folder / f"{name}.wav", tone.astype(np.float32), SAMPLE_RATE, "PCM_16")
        lengths[name] = frames
    (folder / "README").write_text("not a wav\n")
    return lengths


def _read_map(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split(" ", 1) for line in lines)


def test_transcript_from_name() -> None:
    assert transcript_from_name("0_1_1_0") == "NO YES YES NO"
    for bad in ("0_1_2", "yes_no", "0__1", "01", "", "0_1_"):
        with pytest.raises(ValueError):
            transcript_from_name(bad)


def test_prepare_writes_kaldi_dirs(tmp_path: Path) -> None:
    corpus = tmp_path / "waves"
    lengths = _make_corpus(corpus)
    dirs = prepare_yesno(corpus, tmp_path / "data")
    assert dirs == {"train": tmp_path / "data" / "train", "test": tmp_path / "data" / "test"}
    names = sorted(lengths)
    for split, expected in (("train", names[:30]), ("test", names[30:])):
        folder = dirs[split]
        wav_scp = _read_map(folder / "wav.scp")
        assert list(wav_scp) == expected  # first half sorted = train, as Kaldi's egs/yesno
        for utt, path in wav_scp.items():
            assert Path(path).is_absolute() and Path(path) == (corpus / f"{utt}.wav").resolve()
        text = _read_map(folder / "text")
        assert list(text) == expected
        for utt, words in text.items():
            assert words.split() == ["YES" if b == "1" else "NO" for b in utt.split("_")]
        assert _read_map(folder / "utt2spk") == dict.fromkeys(expected, "global")
        assert (folder / "spk2utt").read_text() == "global " + " ".join(expected) + "\n"
        durations = _read_map(folder / "utt2dur")
        assert list(durations) == expected
        for utt, value in durations.items():
            assert float(value) == pytest.approx(lengths[utt] / SAMPLE_RATE, abs=1e-5)
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files


def test_prepare_accepts_the_download_folder(tmp_path: Path) -> None:
    _make_corpus(tmp_path / "dl" / "waves_yesno")
    dirs = prepare_yesno(tmp_path / "dl", tmp_path / "data")
    assert len(_read_map(dirs["test"] / "text")) == 30


def test_missing_corpus_dir(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"nowhere: yes/no corpus directory not found$"):
        prepare_yesno(tmp_path / "nowhere", tmp_path / "data")


@pytest.mark.parametrize("count", [59, 61])
def test_wrong_file_count(tmp_path: Path, count: int) -> None:
    _make_corpus(tmp_path / "waves", count)
    with pytest.raises(CorpusError, match=f"expected 60 yes/no wav files, found {count}$"):
        prepare_yesno(tmp_path / "waves", tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_badly_named_wav(tmp_path: Path) -> None:
    corpus = tmp_path / "waves"
    _make_corpus(corpus)
    bad = corpus / "0_1_0_1_maybe_1_0_1.wav"
    bad.write_bytes((corpus / f"{_names(1)[0]}.wav").read_bytes())
    with pytest.raises(CorpusError) as info:
        prepare_yesno(corpus, tmp_path / "data")
    assert str(info.value).startswith(f"{bad}: '0_1_0_1_maybe_1_0_1' is not a yes/no transcript")
    assert "\n" not in str(info.value)
    bad.unlink()
    short = corpus / "0_1_1.wav"
    short.write_bytes(b"")
    with pytest.raises(CorpusError, match=r"0_1_1.wav: 3 words, every yes/no file has 8"):
        prepare_yesno(corpus, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_corrupt_wav_stops_before_writing(tmp_path: Path) -> None:
    corpus = tmp_path / "waves"
    _make_corpus(corpus)
    victims = sorted(corpus.glob("*.wav"))[40:42]
    for victim in victims:
        victim.write_bytes(b"RIFF garbage, not a wave file at all")
    with pytest.raises(AudioError) as info:
        prepare_yesno(corpus, tmp_path / "data")
    message = str(info.value)
    assert message.startswith(f"{victims[0]}: not a readable audio file")
    assert message.endswith("(and 1 more)") and "\n" not in message
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------------------------------------
# Download and extraction (no network: file:// URLs of archives built here)


def _tar_gz(path: Path, members: dict[str, bytes | tarfile.TarInfo]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            if isinstance(content, tarfile.TarInfo):
                tar.addfile(content)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _corpus_members(tmp_path: Path) -> dict[str, bytes | tarfile.TarInfo]:
    source = tmp_path / "source"
    _make_corpus(source)
    members: dict[str, bytes | tarfile.TarInfo] = {
        f"waves_yesno/{p.name}": p.read_bytes() for p in sorted(source.iterdir())
    }
    return members


def test_download_checks_and_extracts(tmp_path: Path) -> None:
    archive = tmp_path / "server" / "waves_yesno.tar.gz"
    archive.parent.mkdir()
    digest = _tar_gz(archive, _corpus_members(tmp_path))
    dest = tmp_path / "corpora"
    waves = download_yesno(dest, url=archive.as_uri(), sha256=digest)
    assert waves == dest / "waves_yesno"
    assert len(list(waves.glob("*.wav"))) == 60
    assert (dest / "waves_yesno.tar.gz").read_bytes() == archive.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["waves_yesno", "waves_yesno.tar.gz"]
    # A second call finds the corpus complete and does not fetch again (the URL is gone now).
    archive.unlink()
    assert download_yesno(dest, url=archive.as_uri(), sha256=digest) == waves
    dirs = prepare_yesno(waves, tmp_path / "data")
    assert len(_read_map(dirs["train"] / "wav.scp")) == 30


def test_download_checksum_mismatch_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "waves_yesno.tar.gz"
    digest = _tar_gz(archive, _corpus_members(tmp_path))
    wrong = digest[::-1]
    dest = tmp_path / "corpora"
    with pytest.raises(CorpusError) as info:
        download_yesno(dest, url=archive.as_uri(), sha256=wrong)
    assert str(info.value) == (
        f"{archive.as_uri()}: SHA-256 mismatch (got {digest}, expected {wrong}); download deleted"
    )
    assert list(dest.iterdir()) == []


def test_download_failure_is_one_line(tmp_path: Path) -> None:
    missing = (tmp_path / "absent.tar.gz").as_uri()
    with pytest.raises(CorpusError, match=f"^{missing}: download failed"):
        download_yesno(tmp_path / "corpora", url=missing, sha256="0" * 64)
    assert list((tmp_path / "corpora").iterdir()) == []


def test_published_checksum_is_a_sha256() -> None:
    # compared with hashlib's hexdigest() at download: 64 lowercase hex digits, or never a match
    assert re.fullmatch(r"[0-9a-f]{64}", yesno.SHA256), yesno.SHA256
    assert len(yesno.SHA256) == len(hashlib.sha256(b"").hexdigest())
    assert inspect.signature(download_yesno).parameters["sha256"].default == yesno.SHA256
    assert yesno.URL.endswith("/resources/1/waves_yesno.tar.gz")


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("../evil.wav", "points outside the folder"),
        ("waves_yesno/../../evil.wav", "points outside the folder"),
        ("/tmp/evil.wav", "has an absolute path"),
        (tar_link("waves_yesno/passwd", "/etc/passwd", tarfile.SYMTYPE), "is a link"),
        (tar_link("waves_yesno/hard", "waves_yesno/README", tarfile.LNKTYPE), "is a link"),
        (tar_link("waves_yesno/null", "", tarfile.CHRTYPE), "is a device or fifo"),
        (tar_link("waves_yesno/pipe", "", tarfile.FIFOTYPE), "is a device or fifo"),
    ],
)
def test_unsafe_archives_are_rejected(
    tmp_path: Path, member: str | tarfile.TarInfo, problem: str
) -> None:
    archive = tmp_path / "evil.tar.gz"
    name = member if isinstance(member, str) else member.name
    members: dict[str, bytes | tarfile.TarInfo] = {"waves_yesno/README": b"fine\n"}
    members[name] = b"owned\n" if isinstance(member, str) else member
    digest = _tar_gz(archive, members)
    dest = tmp_path / "dest" / "inner"
    with pytest.raises(CorpusError, match=problem):
        download_yesno(dest, url=archive.as_uri(), sha256=digest)
    # The archive passed its checksum and stays; nothing was extracted, inside or outside.
    assert [p.name for p in dest.iterdir()] == ["waves_yesno.tar.gz"]
    assert not (tmp_path / "dest" / "evil.wav").exists() and not (tmp_path / "evil.wav").exists()


def test_extract_refuses_to_overwrite(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    _tar_gz(archive, {"top/file.txt": b"new\n"})
    (tmp_path / "out" / "top").mkdir(parents=True)
    with pytest.raises(CorpusError, match="already exists"):
        extract_tar_safely(archive, tmp_path / "out")
    assert extract_tar_safely(archive, tmp_path / "fresh") == [tmp_path / "fresh" / "top"]
    assert (tmp_path / "fresh" / "top" / "file.txt").read_text() == "new\n"
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == ["top"]


def test_extract_rejects_non_archives(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(CorpusError, match="bogus.tar.gz: "):
        extract_tar_safely(bogus, tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# Command line


def test_cli_prepare_forms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "waves"
    _make_corpus(corpus)
    assert cli.main(["prepare", "yesno", str(corpus), str(tmp_path / "a")]) == 0
    assert cli.main(["prepare", "yesno", "--corpus-dir", str(corpus), str(tmp_path / "b")]) == 0
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur"):
        assert (tmp_path / "a" / "test" / name).read_text() == (
            tmp_path / "b" / "test" / name
        ).read_text()
    assert cli.main(["prepare", "yesno", str(tmp_path / "c")]) == 1
    assert "give exactly one of CORPUS_DIR" in capsys.readouterr().err
    assert cli.main(["prepare", "yesno", str(tmp_path / "missing"), str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert err == f"asr prepare: error: {tmp_path / 'missing'}: yes/no corpus directory not found\n"


# ---------------------------------------------------------------------------------------------
# The real corpus


@pytest.mark.integration
def test_real_corpus(yesno_dir: Path, tmp_path: Path) -> None:
    dirs = prepare_yesno(yesno_dir, tmp_path / "data")
    wavs = sorted(p.stem for p in yesno_dir.glob("*.wav"))
    assert len(wavs) == 60
    train, test = (_read_map(dirs[s] / "text") for s in ("train", "test"))
    assert list(train) == wavs[:30] and list(test) == wavs[30:]
    for utt, words in {**train, **test}.items():
        assert len(words.split()) == 8
        assert words.split() == [{"0": "NO", "1": "YES"}[b] for b in utt.split("_")]
    for split in ("train", "test"):
        durations = _read_map(dirs[split] / "utt2dur")
        for utt, value in durations.items():
            info = soundfile.info(str(yesno_dir / f"{utt}.wav"))
            assert info.samplerate == 8000
            assert float(value) == pytest.approx(info.frames / 8000, abs=1e-5)
            assert 4.0 < float(value) < 10.0  # 8 words each: seconds, not samples
