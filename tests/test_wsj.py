"""asr.corpora.wsj and `asr prepare wsj` on a tiny fake WSJ tree made here.

The ``.wv1`` files are real shorten-coded SPHERE: a small shorten encoder below writes the
stream as NIST's embedded shorten does (parameters, then audio blocks, no WAV header), and
FFmpeg, an independent decoder, must give back exactly the samples that went in.
"""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import required_tool

from asr import cli
from asr.corpora import wsj
from asr.data.datadir import DataDir
from asr.data.validate import validate_datadir
from asr.errors import CorpusError


@pytest.fixture
def ffmpeg() -> str:
    # the independent decoder these tests check against: a skip locally, an error under CI=true
    return required_tool("ffmpeg", "Debian package ffmpeg; make setup installs it")


needs_ffmpeg = pytest.mark.usefixtures("ffmpeg")


# --- a minimal shorten encoder (format as FFmpeg's libavcodec/shorten.c reads it) -------------


class _BitWriter:
    def __init__(self) -> None:
        self.value = 0
        self.bits = 0

    def put(self, value: int, nbits: int) -> None:
        self.value = (self.value << nbits) | value
        self.bits += nbits

    def uvar(self, value: int, k: int) -> None:  # value >> k zeros, a one, k low bits
        self.put(0, value >> k)
        self.put((1 << k) | (value & ((1 << k) - 1)), k + 1)

    def ulong(self, value: int) -> None:  # width first (shorten >= 1), then the value
        width = value.bit_length()
        self.uvar(width, 2)
        self.uvar(value, width)

    def data(self) -> bytes:
        pad = -self.bits % 8
        return (self.value << pad).to_bytes((self.bits + pad) // 8, "big")


def encode_shorten(samples: np.ndarray, blocksize: int = 256) -> bytes:
    """Shorten v2, mono, second-order differences (FN_DIFF2) with a Rice parameter per block."""
    writer = _BitWriter()
    for value in (5, 1, blocksize, 0, 0, 0):  # s16 LE, 1 channel, blocksize, no LPC/mean/skip
        writer.ulong(value)
    history = [0, 0]
    x = [int(s) for s in samples]
    assert len(x) % blocksize == 0
    for start in range(0, len(x), blocksize):
        block = x[start : start + blocksize]
        window = history + block
        residuals = [window[i + 2] - 2 * window[i + 1] + window[i] for i in range(blocksize)]
        k = max(0, max(1, int(np.mean(np.abs(residuals)))).bit_length() - 1)
        writer.uvar(2, 2)  # FN_DIFF2
        writer.uvar(k, 3)
        for r in residuals:
            writer.uvar(2 * r if r >= 0 else -2 * r - 1, k + 1)
        history = block[-2:]
    writer.uvar(4, 2)  # FN_QUIT
    return b"ajkg" + bytes([2]) + writer.data()


def sphere(samples: np.ndarray, shorten: bool = True) -> bytes:
    coding = "pcm,embedded-shorten-v2.00" if shorten else "pcm"
    fields = [
        "database_id -s3 wsj",
        f"sample_count -i {len(samples)}",
        "sample_rate -i 16000",
        "channel_count -i 1",
        "sample_n_bytes -i 2",
        "sample_byte_format -s2 01",
        f"sample_coding -s{len(coding)} {coding}",
        "end_head",
    ]
    head = ("NIST_1A\n   1024\n" + "\n".join(fields) + "\n").encode()
    body = encode_shorten(samples) if shorten else samples.astype("<i2").tobytes()
    return head + b" " * (1024 - len(head)) + body


def _samples(seed: int, blocks: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(256 * blocks)
    wave = 4000 * np.sin(2 * np.pi * (300 + 50 * seed) * t / 16000) + rng.normal(0, 300, t.size)
    return wave.astype(np.int16)


# --- the fake tree ------------------------------------------------------------------------------

DOTS = {
    "wsj0/si_tr_s/011/011c0200.dot": (
        "The \\,COMMA [loud_breath] price <of> stocks fell (011c0201)\n"
        "Mr\\. Smith's %PERCENT [door_slam>] rose . ~ (011c0202)\n"
    ),
    "wsj1/si_tr_s/4a0/4a0a0100.dot": "--DASH Buyers [/phone_ring] were here (4a0a0101)\n",
    "wsj1/si_dt_20/4k0/4k0c0300.dot": "Dev sentence [lip_smack] one (4k0c0301)\n",
    "wsj0/si_et_20/440/440c0200.dot": "Eval .POINT sentence (440c0201)\n",
}
AUDIO = {  # disk -> files
    "11-1.1": ["wsj0/si_tr_s/011/011c0201.wv1", "wsj0/si_tr_s/011/011c0202.wv1"],
    "13-2.1": ["wsj1/si_tr_s/4a0/4a0a0101.wv1"],
    "13-16.1": ["wsj1/si_dt_20/4k0/4k0c0301.wv1"],
    "11-14.1": ["wsj0/si_et_20/440/440c0201.wv1"],
}


def make_wsj(root: Path, shorten: bool = True) -> tuple[Path, Path, dict[str, np.ndarray]]:
    wsj0, wsj1 = root / "LDC93S6B", root / "LDC94S13B"
    samples = {}
    seed = 0
    for disk, files in AUDIO.items():
        top = wsj0 if disk.startswith("11") else wsj1
        for rel in files:
            path = top / disk / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            samples[path.stem] = _samples(seed)
            path.write_bytes(sphere(samples[path.stem], shorten))
            seed += 1
    for rel, text in DOTS.items():
        disk = next(d for d, files in AUDIO.items() if files[0].startswith(rel.rsplit("/", 1)[0]))
        top = wsj0 if disk.startswith("11") else wsj1
        (top / disk / rel).write_text(text)
    doc0 = wsj0 / "11-13.1" / "wsj0" / "doc"
    (doc0 / "indices" / "train").mkdir(parents=True)
    (doc0 / "indices" / "train" / "tr_s_wv1.ndx").write_text(
        ";; comment\n11_1_1:wsj0/si_tr_s/011/011c0201.wv1\n11_1_1:/wsj0/si_tr_s/011/011c0202.wv1\n"
        "11_1_1:wsj0/si_tr_s/011/011c0203.wv1\n11_2_1:wsj0/si_tr_s/401/401c0201.wv1\n"
    )
    (doc0 / "indices" / "test" / "nvp").mkdir(parents=True)
    (doc0 / "indices" / "test" / "nvp" / "si_et_20.ndx").write_text(
        "11_14_1:wsj0/si_et_20/440/440c0201\n"
    )
    (doc0 / "spkrinfo.txt").write_text(";Spkr Sex\n--- ---\n011 F\n440 M\n")
    doc1 = wsj1 / "13-34.1" / "wsj1" / "doc"
    (doc1 / "indices").mkdir(parents=True)
    (doc1 / "indices" / "si_tr_s.ndx").write_text("13_2_1:wsj1/si_tr_s/4a0/4a0a0101.wv1\n")
    (doc1 / "indices" / "h1_p0.ndx").write_text("13_16_1:wsj1/si_dt_20/4k0/4k0c0301.wv1\n")
    (doc1 / "train").mkdir()
    (doc1 / "train" / "spkrinfo.txt").write_text("4a0 M\n")
    (doc1 / "dev_spok").mkdir()
    (doc1 / "dev_spok" / "spkrinfo.txt").write_text("4K0 f\n")
    lm = wsj1 / "13-32.1" / "wsj1" / "doc" / "lng_modl"
    (lm / "base_lm").mkdir(parents=True)
    arpa = "\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0 <s>\n-0.5 </s>\n-0.5 <UNK>\n\n\\end\\\n"
    (lm / "base_lm" / "tcb20onp.z").write_bytes(gzip.compress(b"preamble text\n" + arpa.encode()))
    (lm / "vocab").mkdir()
    (lm / "vocab" / "wlist20o.nvp").write_text("# the 20k vocabulary\nA\nABLE\n")
    return wsj0, wsj1, samples


# --- tests --------------------------------------------------------------------------------------


def test_normalize_transcript_as_kaldi() -> None:
    raw = "The \\,COMMA [loud_breath] price <of> stocks fell [<door_slam] ~ . --DASH %PERCENT"
    assert wsj.normalize_transcript(raw) == "THE ,COMMA <NOISE> PRICE OF STOCKS FELL -DASH PERCENT"
    assert wsj.normalize_transcript("a [phone_ring/] b [/phone_ring] c [x>] .POINT") == (
        "A B C POINT"
    )


@needs_ffmpeg
def test_shorten_known_answer_through_ffmpeg(tmp_path: Path) -> None:
    x = _samples(3, blocks=12)
    (tmp_path / "a.wv1").write_bytes(sphere(x))
    assert wsj.decode_wv1(tmp_path / "a.wv1", tmp_path / "a.flac") == len(x)
    y, rate = sf.read(tmp_path / "a.flac", dtype="int16")
    assert rate == 16000 and np.array_equal(y, x)
    # A stream that already starts with a verbatim block passes unchanged.
    spliced = wsj.add_wav_header(encode_shorten(x), 16000, 1, len(x))
    assert wsj.add_wav_header(spliced, 16000, 1, len(x)) == spliced
    with pytest.raises(ValueError, match="not a shorten stream"):
        wsj.add_wav_header(b"RIFF....", 16000, 1, 1)


@needs_ffmpeg
def test_bad_shorten_is_one_line_naming_the_file(tmp_path: Path) -> None:
    data = bytearray(sphere(_samples(1)))
    data[1024 + 40 :] = b"\xff" * (len(data) - 1064)
    (tmp_path / "b.wv1").write_bytes(bytes(data))
    with pytest.raises(CorpusError, match=rf"^{tmp_path / 'b.wv1'}: "):
        wsj.decode_wv1(tmp_path / "b.wv1", tmp_path / "b.flac")
    assert not (tmp_path / "b.flac").exists()


@needs_ffmpeg
def test_prepare_flac(tmp_path: Path) -> None:
    wsj0, wsj1, samples = make_wsj(tmp_path / "corpus")
    reports = wsj.prepare_wsj([wsj0, wsj1], tmp_path / "data", audio="flac", jobs=2)
    by_name = {r.set_name: r for r in reports}
    train = DataDir.load(tmp_path / "data" / "train_si284")
    assert train.text == {
        "011c0201": "THE ,COMMA <NOISE> PRICE OF STOCKS FELL",
        "011c0202": "MR. SMITH'S PERCENT ROSE",
        "4a0a0101": "-DASH BUYERS WERE HERE",
    }
    assert train.utt2spk == {"011c0201": "011", "011c0202": "011", "4a0a0101": "4a0"}
    assert train.extra["spk2gender"] == {"011": "f", "4a0": "m"}
    assert train.utt2dur["011c0201"] == pytest.approx(256 * 8 / 16000)
    # 011c0203 is indexed but not on the disk: reported; 401 (known absent) is not.
    assert by_name["train_si284"].no_audio == ["11-1.1/wsj0/si_tr_s/011/011c0203.wv1"]
    for utt, entry in train.wav_scp.items():
        y, _ = sf.read(entry, dtype="int16")
        assert np.array_equal(y, samples[utt])
    dev = DataDir.load(tmp_path / "data" / "test_dev93")
    assert dev.text == {"4k0c0301": "DEV SENTENCE <NOISE> ONE"}
    assert dev.extra["spk2gender"] == {"4k0": "f"}
    assert DataDir.load(tmp_path / "data" / "test_eval92").text == {
        "440c0201": "EVAL POINT SENTENCE"
    }
    for name in wsj.DEFAULT_SETS:
        assert validate_datadir(tmp_path / "data" / name) == []


def test_prepare_sph2pipe_pipes(tmp_path: Path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "sph2pipe"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    wsj0, wsj1, _ = make_wsj(tmp_path / "corpus")
    wsj.prepare_wsj(
        [wsj0 / "11-1.1", wsj0 / "11-13.1", wsj1], tmp_path / "data", sets=["train_si84"]
    )
    data = DataDir.load(tmp_path / "data" / "train_si84")
    entry = data.wav_scp["011c0201"]
    assert entry.startswith("sph2pipe -f wav /") and entry.endswith("011c0201.wv1 |")
    assert sorted(data.utt2spk) == ["011c0201", "011c0202"]
    assert validate_datadir(tmp_path / "data" / "train_si84") == []


def test_bad_dot_line_and_missing_disk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(wsj, "choose_audio", lambda audio: "sph2pipe")
    wsj0, wsj1, _ = make_wsj(tmp_path / "corpus")
    dot = wsj0 / "11-1.1/wsj0/si_tr_s/011/011c0200.dot"
    dot.write_text("fine line (011c0201)\nno id here\n")
    with pytest.raises(CorpusError, match=rf"^{dot}:2: expected 'TRANSCRIPT \(UTTERANCE-ID\)'"):
        wsj.prepare_wsj([wsj0, wsj1], tmp_path / "data", sets=["train_si84"])
    with pytest.raises(CorpusError, match="WSJ disk 13-34.1 not found"):
        wsj.prepare_wsj([wsj0], tmp_path / "data", sets=["test_dev93"])
    with pytest.raises(CorpusError, match="no WSJ disk folders"):
        wsj.prepare_wsj([tmp_path], tmp_path / "data")


def test_lm_unpacked_from_the_data_line(tmp_path: Path) -> None:
    wsj0, wsj1, _ = make_wsj(tmp_path / "corpus")
    arpa = wsj.prepare_wsj_lm([wsj0, wsj1], tmp_path / "lm")
    assert arpa.read_text().startswith("\\data\\\nngram 1=3\n")
    assert "preamble" not in arpa.read_text()
    assert "-1.0\t<s>\n" in arpa.read_text()  # KenLM's tab, where the 1994 file has a space
    assert (tmp_path / "lm" / "vocab.txt").read_text() == "A\nABLE\n"


@needs_ffmpeg
def test_cli_prepare(tmp_path: Path, capsys) -> None:
    wsj0, wsj1, _ = make_wsj(tmp_path / "corpus")
    args = ["prepare", "wsj", str(wsj0), str(wsj1), str(tmp_path / "data"), "--audio", "flac"]
    args += ["--sets", "test_dev93", "test_eval92", "--lm-dir", str(tmp_path / "lm")]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'data' / 'test_eval92'}: 1 utterances, 1 speakers" in out
    assert (tmp_path / "data" / "flac" / "440c0201.flac").is_file()
    assert (tmp_path / "lm" / "lm_tg.arpa").is_file()


RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "wsj" / "run.sh"


@needs_ffmpeg
def test_recipe_help_and_stage_0(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(RECIPE), "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "Stages:" in done.stdout and "eval92" in done.stdout
    wsj0, wsj1, _ = make_wsj(tmp_path / "corpus")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = ["bash", str(RECIPE), "--wsj0", str(wsj0), "--wsj1", str(wsj1), "--audio", "flac"]
    command += ["--stop-stage", "0", "--data", str(tmp_path / "data")]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in wsj.DEFAULT_SETS:
        assert validate_datadir(tmp_path / "data" / name) == []
    assert (tmp_path / "data" / "local" / "lm" / "vocab.txt").read_text() == "A\nABLE\n"
