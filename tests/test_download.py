"""asr.corpora.download: resumable, checksum-checked downloads against a local HTTP server.

The server runs in a thread of the test. It can honour Range requests or not, and can drop
the connection after a number of bytes, so an interrupted transfer and its resumption are
real TCP transfers, not mocks.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import tar_link

from asr.corpora.download import (
    download,
    extract_tar_safely,
    file_digest,
    md5_of,
    part_path,
)
from asr.errors import CorpusError

PAYLOAD = bytes(range(256)) * 997 + b"tail"  # 255,236 bytes, not a multiple of any block


@dataclass
class Behaviour:
    ranges: bool = True  # honour "Range: bytes=N-"
    drop_after: int | None = None  # first request: close the connection after this many bytes
    requests: list[str | None] = field(default_factory=list)  # the Range header of each


class _Handler(http.server.BaseHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        behaviour = self.behaviour
        if not self.path.endswith("/archive.tar.gz"):
            self.send_error(404)
            return
        wanted = self.headers.get("Range")
        behaviour.requests.append(wanted)
        start = 0
        if wanted and behaviour.ranges:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if behaviour.drop_after is not None:
            cut, behaviour.drop_after = behaviour.drop_after, None
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # the client sees a short body
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[tuple[str, Behaviour]]:
    behaviour = Behaviour()
    handler = type("Handler", (_Handler,), {"behaviour": behaviour})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/archive.tar.gz", behaviour
    finally:
        httpd.shutdown()
        httpd.server_close()


MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


def test_plain_download_checks_both_hashes(server, tmp_path: Path) -> None:
    url, behaviour = server
    target = tmp_path / "a" / "archive.tar.gz"
    download(url, target, sha256=SHA256, md5=MD5, size=len(PAYLOAD), progress=False)
    assert target.read_bytes() == PAYLOAD
    assert not part_path(target).exists()
    assert behaviour.requests == [None]
    assert md5_of(target) == MD5 and file_digest(target, "sha256") == SHA256


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.drop_after = 100_000
    target = tmp_path / "archive.tar.gz"
    with pytest.raises(CorpusError, match=r"download interrupted after 100000 .*resume from"):
        download(url, target, md5=MD5, progress=False)
    assert part_path(target).stat().st_size == 100_000 and not target.exists()
    download(url, target, md5=MD5, progress=False)
    assert behaviour.requests == [None, "bytes=100000-"]
    assert target.read_bytes() == PAYLOAD


def test_server_without_ranges_restarts_from_zero(server, tmp_path: Path) -> None:
    url, behaviour = server
    behaviour.ranges = False
    behaviour.drop_after = 5_000
    target = tmp_path / "archive.tar.gz"
    with pytest.raises(CorpusError, match="interrupted"):
        download(url, target, md5=MD5, progress=False)
    download(url, target, md5=MD5, progress=False)
    # It asked for the rest, got the whole file (200) and did not append it to the part.
    assert behaviour.requests == [None, "bytes=5000-"]
    assert target.read_bytes() == PAYLOAD


def test_complete_part_is_verified_and_kept(server, tmp_path: Path) -> None:
    url, behaviour = server
    target = tmp_path / "archive.tar.gz"
    part_path(target).write_bytes(PAYLOAD)  # a run that died between the last byte and rename
    download(url, target, md5=MD5, progress=False)
    assert behaviour.requests == [f"bytes={len(PAYLOAD)}-"]  # answered 416: nothing more
    assert target.read_bytes() == PAYLOAD


def test_checksum_mismatch_names_the_file_and_deletes_the_part(server, tmp_path: Path) -> None:
    url, _ = server
    target = tmp_path / "archive.tar.gz"
    wrong = "0" * 32
    with pytest.raises(CorpusError) as info:
        download(url, target, md5=wrong, progress=False)
    assert str(info.value) == (
        f"{url}: MD5 mismatch (got {MD5}, expected {wrong}); download deleted"
    )
    assert "\n" not in str(info.value) and "archive.tar.gz" in str(info.value)
    assert not target.exists() and not part_path(target).exists()


def test_corrupt_resumed_part_is_caught(server, tmp_path: Path) -> None:
    url, _ = server
    target = tmp_path / "archive.tar.gz"
    part_path(target).write_bytes(b"X" * 1000)  # garbage from elsewhere, resumed after it
    with pytest.raises(CorpusError, match="MD5 mismatch"):
        download(url, target, md5=MD5, progress=False)
    assert not part_path(target).exists()
    download(url, target, md5=MD5, progress=False)  # the next run starts clean
    assert target.read_bytes() == PAYLOAD


def test_size_mismatch_and_no_resume(server, tmp_path: Path) -> None:
    url, behaviour = server
    target = tmp_path / "archive.tar.gz"
    with pytest.raises(
        CorpusError, match=rf"size mismatch \(got {len(PAYLOAD)} bytes, expected 7\)"
    ):
        download(url, target, size=7, progress=False)
    part_path(target).write_bytes(b"junk")
    download(url, target, resume=False, progress=False)
    assert behaviour.requests[-1] is None and target.read_bytes() == PAYLOAD


def test_http_error_is_one_line(server, tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(CorpusError, match=r"^http://127\.0\.0\.1:\d+/x: download failed"):
        download(url.replace("archive.tar.gz", "x"), tmp_path / "x", progress=False)


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("LibriSpeech/../../evil", "points outside the folder"),
        ("/etc/evil", "has an absolute path"),
        (tar_link("LibriSpeech/x", "/etc/passwd", tarfile.SYMTYPE), "is a link"),
    ],
)
def test_extraction_refuses_unsafe_members(
    tmp_path: Path, member: str | tarfile.TarInfo, problem: str
) -> None:
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        if isinstance(member, str):
            info = tarfile.TarInfo(member)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
        else:
            tar.addfile(member)
    with pytest.raises(CorpusError, match=problem):
        extract_tar_safely(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "evil").exists()


# --- size limits: a compression bomb is refused from the headers, before anything is written


def _zero_bomb(path: Path, megabytes: int, damaged: bool = False) -> Path:
    """A real tar.gz holding one member of ``megabytes`` MiB of zeros, in about a KiB per MiB:
    gzip streams may be concatenated, so one compressed MiB of zeros is repeated (no 200 MB
    buffer is ever made). ``damaged``: the member's data stops after its first MiB and bytes
    that are not gzip follow, as in a broken download."""
    import gzip

    info = tarfile.TarInfo("LibriSpeech/zeros.flac")
    info.size = megabytes * 1024**2
    mib = gzip.compress(bytes(1024**2), compresslevel=9)
    with open(path, "wb") as out:
        out.write(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
        if damaged:
            out.write(mib + b"this is not gzip data" * 100)
            return path
        for _ in range(megabytes):
            out.write(mib)
        out.write(gzip.compress(bytes(1024)))  # two zero blocks: the end of the archive
    return path


def test_a_compression_bomb_is_refused_with_the_default_limits(tmp_path: Path) -> None:
    # the case: 200 MiB of zeros in a ~200 KiB tar.gz (ratio ~1000; the limit is 50)
    bomb = _zero_bomb(tmp_path / "bomb.tar.gz", 200)
    assert bomb.stat().st_size < 300_000
    with tarfile.open(bomb) as tar:  # a genuine archive: tarfile itself reads it whole
        assert [m.size for m in tar.getmembers()] == [200 * 1024**2]
    with pytest.raises(CorpusError) as info:
        extract_tar_safely(bomb, tmp_path / "out")
    message = str(info.value)
    assert message.startswith(f"{bomb}: unpacks to more than 50 times its ")
    assert "'LibriSpeech/zeros.flac'" in message and "\n" not in message
    assert not (tmp_path / "out").exists()  # nothing written, not even the staging folder


def test_the_limit_is_checked_while_reading_not_after(tmp_path: Path) -> None:
    # the oversized member's data is broken off: refusing the archive for its size (not for
    # the damage) shows the check stopped at that member's header instead of reading on
    bomb = _zero_bomb(tmp_path / "bomb.tar.gz", 2, damaged=True)
    with pytest.raises(CorpusError, match="corrupt tar archive"):
        extract_tar_safely(bomb, tmp_path / "a")
    with pytest.raises(CorpusError, match=r"unpacks to more than 1000000 bytes"):
        extract_tar_safely(bomb, tmp_path / "b", max_bytes=1_000_000)
    assert not (tmp_path / "b").exists()


def test_low_caps_on_bytes_and_members(tmp_path: Path) -> None:
    archive = tmp_path / "zeros.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for n in range(3):
            info = tarfile.TarInfo(f"corpus/{n}.wav")
            info.size = 400_000
            tar.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(CorpusError, match=r"more than 1000000 bytes .*at member 'corpus/2\.wav'"):
        extract_tar_safely(archive, tmp_path / "out", max_bytes=1_000_000)
    with pytest.raises(CorpusError, match=r"more than 2 members"):
        extract_tar_safely(archive, tmp_path / "out", max_members=2)
    assert not (tmp_path / "out").exists()
    # within the limits (and with the defaults) it unpacks whole
    (top,) = extract_tar_safely(archive, tmp_path / "out", max_bytes=1_200_000, max_members=3)
    assert sorted(p.stat().st_size for p in top.iterdir()) == [400_000] * 3


def test_a_killed_extractions_staging_folder_is_removed_next_time(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("corpus/x.wav")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    stale = tmp_path / "out" / ".extract.abcd_123"  # what kill -9 mid-extraction leaves
    (stale / "corpus").mkdir(parents=True)
    (stale / "corpus" / "half.wav").write_bytes(b"a")
    keep = tmp_path / "out" / ".extract.notmine"  # not a mkdtemp name: left alone
    keep.mkdir()
    extract_tar_safely(archive, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".extract.notmine", "corpus"]
