"""Corpus downloads: fetch an archive atomically (optionally hash-checked), unpack it safely.

Shared by the corpus modules (``asr.corpora.yesno``, ``asr.corpora.fsdd``, ...), which also use
``find_audio_folder`` to accept either a corpus folder or the folder its archive unpacks to.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from asr.errors import CorpusError

_CHUNK = 1 << 16


def find_audio_folder(corpus_dir: Path, nested: str, what: str) -> Path:
    """The folder of wavs: ``corpus_dir`` itself, or ``corpus_dir/nested`` when that holds them."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: {what} corpus directory not found")
    inner = corpus_dir / nested
    if not any(corpus_dir.glob("*.wav")) and inner.is_dir():
        return inner
    return corpus_dir


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, target: Path, sha256: str | None = None) -> None:
    """Fetch ``url`` into a temporary file beside ``target``; rename it only when complete and,
    given ``sha256``, only when the hash matches (a mismatch deletes it and is an error)."""
    from tqdm import tqdm

    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=60)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise CorpusError(f"{url}: download failed ({reason})") from None
            with (
                response,
                tqdm(
                    total=int(response.headers.get("Content-Length") or 0) or None,
                    unit="B",
                    unit_scale=True,
                    desc=target.name,
                ) as bar,
            ):
                try:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        out.write(block)
                        digest.update(block)
                        bar.update(len(block))
                except OSError as exc:
                    raise CorpusError(f"{url}: download interrupted ({exc})") from None
        if sha256 is not None and digest.hexdigest() != sha256:
            raise CorpusError(
                f"{url}: SHA-256 mismatch (got {digest.hexdigest()}, expected {sha256}); "
                "download deleted"
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def check_member(archive: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    parts = PurePosixPath(name).parts
    if (
        name.startswith(("/", "\\"))
        or PurePosixPath(name).is_absolute()
        or re.match(r"^[A-Za-z]:", name)
    ):
        raise CorpusError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in parts or "\\" in name:
        raise CorpusError(
            f"{archive}: member {name!r} points outside the folder; refusing to extract"
        )
    if member.issym() or member.islnk():
        raise CorpusError(f"{archive}: member {name!r} is a link; refusing to extract")
    if not (member.isfile() or member.isdir()):
        raise CorpusError(f"{archive}: member {name!r} is a device or fifo; refusing to extract")


def extract_tar_safely(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> list[Path]:
    """Extract a tar archive into ``dest_dir`` and return the top-level paths it created.

    Every member is checked first (no absolute paths, no ``..``, no links, devices or fifos), so
    an unsafe archive writes nothing; the checked members are then extracted with tarfile's
    ``data`` filter into a staging folder and moved into place. An existing top-level path is
    an error rather than something to merge into or overwrite.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CorpusError(f"{archive}: not a readable tar archive ({exc})") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise CorpusError(f"{archive}: corrupt tar archive ({exc})") from None
        for member in members:
            check_member(archive, member)
        tops = sorted({PurePosixPath(m.name).parts[0] for m in members if m.name.strip("/.")})
        for top in tops:
            if (dest_dir / top).exists():
                raise CorpusError(f"{dest_dir / top}: already exists; remove it to extract again")
        dest_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".extract.", dir=dest_dir))
        try:
            # The data filter (Python >= 3.11.4) re-checks what check_member checked and also
            # drops permissions a corpus has no use for (setuid, device numbers, owners).
            options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            try:
                tar.extractall(staging, members=members, **options)
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise CorpusError(f"{archive}: extraction failed ({exc})") from None
            for top in tops:
                os.replace(staging / top, dest_dir / top)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [dest_dir / top for top in tops]
