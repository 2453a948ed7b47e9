"""Corpus downloads: fetch a file resumably and checksum-checked, unpack an archive safely.

Shared by the corpus modules (``asr.corpora.yesno``, ``asr.corpora.fsdd``, ...), which also use
``find_audio_folder`` to accept either a corpus folder or the folder its archive unpacks to.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from asr.errors import CorpusError

_CHUNK = 1 << 16
# extract_tar_safely unpacks into DEST/.extract.XXXXXXXX (tempfile.mkdtemp) and then moves
STAGING_PREFIX = ".extract."


def find_audio_folder(corpus_dir: Path, nested: str, what: str) -> Path:
    """The folder of wavs: ``corpus_dir`` itself, or ``corpus_dir/nested`` when that holds them."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: {what} corpus directory not found")
    inner = corpus_dir / nested
    if not any(corpus_dir.glob("*.wav")) and inner.is_dir():
        return inner
    return corpus_dir


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in blocks (corpus archives are gigabytes)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    return file_digest(path, "sha256")


def md5_of(path: Path) -> str:
    return file_digest(path, "md5")


def part_path(target: Path) -> Path:
    """Where an unfinished download of ``target`` is kept between runs."""
    return target.with_name(target.name + ".part")


def download(
    url: str,
    target: str | os.PathLike,
    sha256: str | None = None,
    md5: str | None = None,
    resume: bool = True,
    size: int | None = None,
    progress: bool = True,
) -> None:
    """Fetch ``url`` into ``target``, resuming an earlier, interrupted run.

    The bytes go to ``target.part``, which survives an interruption; the next call asks the
    server for the rest with an HTTP Range request (a server that answers without ranges is
    read again from the start). Only a complete file whose size (``size``) and checksums
    (``sha256``, ``md5``) match is renamed to ``target``; a mismatch deletes the part and is a
    CorpusError naming the file. ``resume=False`` always starts again.
    """

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(target)
    offset = part.stat().st_size if resume and part.is_file() else 0
    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    complete_already = False
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:
            raise CorpusError(f"{url}: download failed (HTTP {exc.code} {exc.reason})") from None
        # 416: nothing lies past what we have; the part is whole (the checksum will tell).
        complete_already = True
        response = None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CorpusError(f"{url}: download failed ({reason})") from None
    if response is not None:
        with response:
            status = getattr(response, "status", None) or response.getcode()
            if offset and status != 206:
                offset = 0  # the server (or a file: URL) ignored the range: start again
            length = response.headers.get("Content-Length")
            expected = offset + int(length) if length and length.isdigit() else None
            received = offset
            with (
                open(part, "ab" if offset else "wb") as out,
                tqdm(
                    total=expected,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    desc=target.name,
                    disable=not progress,
                ) as bar,
            ):
                try:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        out.write(block)
                        received += len(block)
                        bar.update(len(block))
                except (OSError, http.client.HTTPException) as exc:
                    raise CorpusError(
                        f"{url}: download interrupted after {received} bytes "
                        f"({type(exc).__name__}); run again to resume from {part}"
                    ) from None
            if expected is not None and received < expected:
                raise CorpusError(
                    f"{url}: download interrupted after {received} of {expected} bytes; "
                    f"run again to resume from {part}"
                )
    _verify(url, part, sha256, md5, size, complete_already)
    os.replace(part, target)


def _verify(
    url: str, part: Path, sha256: str | None, md5: str | None, size: int | None, whole: bool
) -> None:
    """Check a finished part against what was published; a bad one is deleted (a resumed
    download that went wrong must not be resumed again)."""
    problem = None
    got_size = part.stat().st_size
    if size is not None and got_size != size:
        problem = f"size mismatch (got {got_size} bytes, expected {size})"
    for name, expected in (("SHA-256", sha256), ("MD5", md5)):
        if problem is None and expected is not None:
            got = file_digest(part, "sha256" if name == "SHA-256" else "md5")
            if got != expected.lower():
                problem = f"{name} mismatch (got {got}, expected {expected})"
    if problem is not None:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        whole_note = " (the server had no more)" if whole else ""
        raise CorpusError(f"{url}: {problem}{whole_note}; download deleted")


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


# Limits on what an archive may unpack to, checked from each member's header as the archive is
# read, before anything is written. LibriSpeech's largest archive (train-other-500) is about
# 30 GB packed and unpacks to about the same (FLAC does not compress further), with ~150,000
# members; the whole 960 h set is ~290,000 files. Audio archives barely compress (WAV/FLAC/SPHERE:
# ratio 1-3), while a "zip bomb" of zeros packs ~1000:1 with gzip.
MAX_EXTRACT_BYTES = 100 * 1024**3  # 100 GiB in all
MAX_EXTRACT_MEMBERS = 1_000_000
MAX_EXTRACT_RATIO = 50.0  # unpacked bytes per packed byte, on top of MIN_RATIO_ALLOWANCE
MIN_RATIO_ALLOWANCE = 64 * 1024**2  # a tiny archive may always unpack to 64 MiB


def _checked_members(
    tar: tarfile.TarFile,
    archive: Path,
    max_bytes: int,
    max_members: int,
    max_ratio: float,
) -> list[tarfile.TarInfo]:
    """The archive's members, each checked by ``check_member`` and the running totals checked
    against the limits as each header is read: an archive over a limit is refused as soon as
    the member that crosses it is seen, without reading (or unpacking) the rest of it."""
    packed = archive.stat().st_size
    ratio_cap = int(max_ratio * packed) + MIN_RATIO_ALLOWANCE
    cap = min(max_bytes, ratio_cap)
    members: list[tarfile.TarInfo] = []
    total = 0
    while True:
        try:
            member = tar.next()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise CorpusError(f"{archive}: corrupt tar archive ({exc})") from None
        if member is None:
            return members
        check_member(archive, member)
        members.append(member)
        total += max(member.size, 0)
        if len(members) > max_members:
            raise CorpusError(
                f"{archive}: more than {max_members} members; refusing to extract "
                "(raise the member limit if the archive is genuine)"
            )
        if total > cap:
            why = (
                f"{max_bytes} bytes"
                if cap == max_bytes
                else f"{max_ratio:g} times its {packed} bytes (+{MIN_RATIO_ALLOWANCE})"
            )
            raise CorpusError(
                f"{archive}: unpacks to more than {why} (at member {member.name!r}); refusing "
                "to extract (raise the limit if the archive is genuine)"
            )


def extract_tar_safely(
    archive: str | os.PathLike,
    dest_dir: str | os.PathLike,
    max_bytes: int = MAX_EXTRACT_BYTES,
    max_members: int = MAX_EXTRACT_MEMBERS,
    max_ratio: float = MAX_EXTRACT_RATIO,
) -> list[Path]:
    """Extract a tar archive into ``dest_dir`` and return the top-level paths it created.

    Every member is checked first (no absolute paths, no ``..``, no links, devices or fifos), so
    an unsafe archive writes nothing; the checked members are then extracted with tarfile's
    ``data`` filter into a staging folder and moved into place. An existing top-level path is
    an error rather than something to merge into or overwrite.

    Size limits, from the member headers while the archive is read (see ``_checked_members``):
    at most ``max_members`` members and at most ``max_bytes`` unpacked bytes, and at most
    ``max_ratio`` times the archive's size plus 64 MiB (a compression bomb: 200 MB of zeros
    packs into 200 KB). The defaults (100 GiB, 1,000,000 members, ratio 50) pass any
    LibriSpeech archive; a corpus module passes tighter ones when it knows its archive.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CorpusError(f"{archive}: not a readable tar archive ({exc})") from None
    with tar:
        members = _checked_members(tar, archive, max_bytes, max_members, max_ratio)
        tops = sorted({PurePosixPath(m.name).parts[0] for m in members if m.name.strip("/.")})
        for top in tops:
            if (dest_dir / top).exists():
                raise CorpusError(f"{dest_dir / top}: already exists; remove it to extract again")
        dest_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(dest_dir)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=dest_dir))
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
            # also on Ctrl-C and SIGTERM (asr's handler raises): no half-unpacked staging left
            shutil.rmtree(staging, ignore_errors=True)
    return [dest_dir / top for top in tops]


def _remove_stale_staging(dest_dir: Path) -> None:
    """Remove the staging folders of extractions that were killed (kill -9 skips the cleanup):
    they hold half an archive and nothing else ever reads them."""
    for stale in dest_dir.glob(f"{STAGING_PREFIX}*"):
        if stale.is_dir() and re.fullmatch(r"\.extract\.[a-z0-9_]{8}", stale.name):
            shutil.rmtree(stale, ignore_errors=True)
