"""asr.corpora.librispeech and `asr prepare librispeech` on a tiny tree made here."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr import cli
from asr.corpora import librispeech
from asr.data.datadir import DataDir
from asr.data.validate import validate_datadir
from asr.errors import CorpusError

SPEAKERS = """\
; Some comment
;ID  |SEX| SUBSET           |MINUTES| NAME
103  | F | train-clean-100  | 25.12 | Brenda
1088 | M | dev-clean        | 20.00 | Someone | with a pipe
"""


def _flac(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wave = 0.1 * np.sin(np.arange(int(16000 * seconds)) / 7.0)
    sf.write(path, wave, 16000, format="FLAC")


def make_tree(root: Path, set_name: str = "dev-clean") -> Path:
    base = root / "LibriSpeech"
    base.mkdir(parents=True)
    (base / "SPEAKERS.TXT").write_text(SPEAKERS)
    chapters = {
        ("103", "1240"): {"0000": "CHAPTER ONE", "0001": "MISSUS RACHEL  LYNDE"},
        ("1088", "134315"): {"0000": "THE NEW ROOF", "0002": "NO AUDIO FOR THIS"},
    }
    for (reader, chapter), lines in chapters.items():
        folder = base / set_name / reader / chapter
        folder.mkdir(parents=True)
        (folder / f"{reader}-{chapter}.trans.txt").write_text(
            "".join(f"{reader}-{chapter}-{u} {t}\n" for u, t in lines.items())
        )
        for utt in sorted(lines):
            if utt != "0002":
                _flac(folder / f"{reader}-{chapter}-{utt}.flac", 0.5 + int(utt) * 0.25)
    _flac(base / set_name / "103" / "1240" / "103-1240-0009.flac", 0.3)  # no transcript line
    return root


def test_prepare_writes_a_kaldi_data_dir(tmp_path: Path, caplog) -> None:
    corpus = make_tree(tmp_path / "corpus")
    with caplog.at_level(logging.WARNING):
        report = librispeech.prepare_librispeech(corpus, "dev-clean", tmp_path / "dev_clean")
    data = DataDir.load(tmp_path / "dev_clean")
    assert validate_datadir(tmp_path / "dev_clean") == []
    assert data.text == {
        "103-1240-0000": "CHAPTER ONE",
        "103-1240-0001": "MISSUS RACHEL LYNDE",
        "1088-134315-0000": "THE NEW ROOF",
    }
    assert data.utt2spk["1088-134315-0000"] == "1088-134315"
    assert data.extra["spk2gender"] == {"103-1240": "f", "1088-134315": "m"}
    assert data.utt2dur["103-1240-0001"] == pytest.approx(0.75)
    assert Path(data.wav_scp["103-1240-0000"]).samefile(
        corpus / "LibriSpeech/dev-clean/103/1240/103-1240-0000.flac"
    )
    assert report.no_audio == ["1088-134315-0002"] and report.no_text == ["103-1240-0009"]
    assert "1 without audio skipped (e.g. 1088-134315-0002)" in report.summary()
    assert "1 without text skipped" in report.summary()
    assert "2703" in caplog.text  # not the full set's count: warned


def test_bad_transcript_line_names_file_and_line(tmp_path: Path) -> None:
    corpus = make_tree(tmp_path / "corpus")
    trans = corpus / "LibriSpeech/dev-clean/103/1240/103-1240.trans.txt"
    trans.write_text("103-1240-0000 FINE\n103-9999-0001 WRONG CHAPTER\n")
    with pytest.raises(CorpusError, match=rf"^{trans}:2: utterance 103-9999-0001 is not of"):
        librispeech.prepare_librispeech(corpus, "dev-clean", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_set_and_unknown_set(tmp_path: Path) -> None:
    corpus = make_tree(tmp_path / "corpus")
    with pytest.raises(CorpusError, match="no LibriSpeech set test-other in it"):
        librispeech.prepare_librispeech(corpus, "test-other", tmp_path / "out")
    with pytest.raises(CorpusError, match="unknown LibriSpeech set 'test-dirty'"):
        librispeech.prepare_librispeech(corpus, "test-dirty", tmp_path / "out")


def test_speakers_txt_errors(tmp_path: Path) -> None:
    bad = tmp_path / "SPEAKERS.TXT"
    bad.write_text("; c\n103 | X | dev-clean | 1 | A\n")
    with pytest.raises(CorpusError, match=rf"^{bad}:2: expected 'ID \| SEX"):
        librispeech.read_speakers(bad)


def test_published_checksums_are_md5s() -> None:
    assert set(librispeech.SET_MD5) == set(librispeech.SETS)
    digests = [*librispeech.SET_MD5.values(), *(m for m, _ in librispeech.LM_RESOURCES.values())]
    # the download compares them with hashlib's hexdigest(): 32 lowercase hex digits, or no file
    # could ever match; and every file has its own (a pasted-twice value would be a wrong one)
    hexdigest = hashlib.md5(b"").hexdigest()
    for digest in digests:
        assert re.fullmatch(r"[0-9a-f]{32}", digest), digest
        assert len(digest) == len(hexdigest)
    assert len(set(digests)) == len(digests)
    sizes = [size for _, size in librispeech.LM_RESOURCES.values() if size is not None]
    assert sizes and all(isinstance(size, int) and size > 0 for size in sizes)


def _archive(path: Path, set_name: str, source: Path) -> str:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source / "LibriSpeech" / set_name, f"LibriSpeech/{set_name}")
        data = (source / "LibriSpeech" / "SPEAKERS.TXT").read_bytes()
        info = tarfile.TarInfo("LibriSpeech/SPEAKERS.TXT")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_checks_md5_and_unpacks(tmp_path: Path, monkeypatch) -> None:
    source = make_tree(tmp_path / "src")
    mirror = tmp_path / "mirror" / "12"
    mirror.mkdir(parents=True)
    digest = _archive(mirror / "dev-clean.tar.gz", "dev-clean", source)
    monkeypatch.setitem(librispeech.SET_MD5, "dev-clean", digest)
    base = (tmp_path / "mirror").as_uri()
    dest = tmp_path / "dest"
    librispeech.download_librispeech(dest, ["dev-clean"], base_url=base)
    assert (dest / "LibriSpeech/dev-clean/103/1240/103-1240.trans.txt").is_file()
    assert (dest / "LibriSpeech/SPEAKERS.TXT").is_file()
    assert not (dest / "dev-clean.tar.gz").exists()
    librispeech.download_librispeech(dest, ["dev-clean"], base_url="file:///nowhere")  # no-op
    monkeypatch.setitem(librispeech.SET_MD5, "dev-clean", "0" * 32)
    with pytest.raises(CorpusError, match=r"dev-clean\.tar\.gz: MD5 mismatch"):
        librispeech.download_librispeech(tmp_path / "d2", ["dev-clean"], base_url=base)


def test_cli_prepare(tmp_path: Path, capsys) -> None:
    corpus = make_tree(tmp_path / "corpus")
    code = cli.main(
        ["prepare", "librispeech", str(corpus), str(tmp_path / "data"), "--sets", "dev-clean"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'data' / 'dev_clean'}: 3 utterances, 2 speakers" in out
    assert validate_datadir(tmp_path / "data" / "dev_clean") == []
    assert (
        cli.main(
            ["prepare", "librispeech", str(corpus), str(tmp_path / "d"), "--sets", "dev-other"]
        )
        != 0
    )


RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "librispeech" / "run.sh"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def test_recipe_help_and_stage_0(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(RECIPE), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "Stages:" in done.stdout and "--tuned-on" in done.stdout
    corpus = make_tree(tmp_path / "corpus")
    for s in ("dev-other", "test-clean", "test-other"):  # the recipe prepares every eval set
        shutil.copytree(corpus / "LibriSpeech" / "dev-clean", corpus / "LibriSpeech" / s)
    shutil.copytree(
        corpus / "LibriSpeech" / "dev-clean", corpus / "LibriSpeech" / "train-clean-100"
    )
    command = ["bash", str(RECIPE), "--corpus-dir", str(corpus), "--stop-stage", "0"]
    command += ["--data", str(tmp_path / "data")]
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("train_clean_100", "dev_clean", "dev_other", "test_clean", "test_other"):
        assert validate_datadir(tmp_path / "data" / name) == []
    bad = subprocess.run(["bash", str(RECIPE), "--unit", "word"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--unit is char or bpe" in bad.stderr
