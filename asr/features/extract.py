"""Feature extraction over a data directory (``asr features``): raw features to ark/scp, plus CMVN
statistics.

Where normalization happens: ``asr features`` (``compute_datadir_features``) stores **raw**
features (no CMVN, no deltas) as Kaldi ark/scp, plus CMVN statistics. CMVN and deltas are applied
at read time by ``normalize_features`` -- the equivalent of Kaldi's
``apply-cmvn --utt2spk=... scp:cmvn.scp scp:feats.scp ark:- | add-deltas ark:- ark:-`` pipeline --
so training, decoding and transcription all normalize the same way and a change of CMVN mode or
delta order needs no re-extraction. Files written into the data directory:

- ``feats.scp`` -> ``ARK_DIR/raw_<kind>.<tag>.<run>.ark`` (float32 matrices, absolute paths;
  each run writes arks under new names so that no scp file ever points into a replaced ark);
- ``utt2num_frames``;
- ``cmvn.scp`` -> ``ARK_DIR/cmvn_<kind>.<tag>.<run>.ark``: per-speaker stats keyed by speaker id, as
  ``compute-cmvn-stats --spk2utt=ark:spk2utt scp:feats.scp`` writes them;
- ``cmvn_global.ark``: one Kaldi binary matrix (no key) of stats over all utterances, as
  ``compute-cmvn-stats scp:feats.scp cmvn_global.ark`` writes it; read with ``kaldiio.load_mat``;
- ``feats.yaml``: the ``FeatureConfig`` used, so later stages never ask for it again.

CMVN statistics use Kaldi's layout: a ``(2, dim + 1)`` float64 matrix, row 0 the per-dimension
sums with the frame count in the last column, row 1 the sums of squares.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import kaldiio
import numpy as np
import torch
import yaml
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from asr.data.datadir import DataDir
from asr.errors import AsrError, AudioError, DataDirError
from asr.features.cmvn import compute_cmvn_stats
from asr.features.config import FeatureConfig, extract_features
from asr.features.kaldi import one_intra_op_thread
from asr.fileio import atomic_write, fault_point, read_text_lines

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Data directories
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class FeatureSummary:
    """What ``compute_datadir_features`` did."""

    num_done: int
    num_failed: int
    num_frames: int
    ark_path: Path
    feats_scp: Path
    cmvn_scp: Path
    cmvn_global: Path
    failed: list[str] = dataclasses.field(default_factory=list)


def _write_ark_entry(handle: Any, key: str, array: np.ndarray) -> int:
    """Append one ``key matrix`` record; return the byte offset an scp line points to."""
    handle.write(f"{key} ".encode())
    offset = handle.tell()
    kaldiio.matio.write_array(handle, array)
    return offset


# Files ``asr features`` writes into the data directory (each replaced atomically).
_DATADIR_OUTPUTS = ("cmvn_global.ark", "utt2num_frames", "cmvn.scp", "feats.scp", "feats.yaml")


def compute_datadir_features(
    data_dir: str | os.PathLike,
    config: FeatureConfig,
    ark_dir: str | os.PathLike | None = None,
    allow_pipe: bool = False,
    progress: bool = True,
) -> FeatureSummary:
    """Extract raw features for every utterance of a Kaldi data dir and its CMVN statistics.

    Writes ``ARK_DIR/raw_<kind>.<tag>.<run>.ark`` and ``ARK_DIR/cmvn_<kind>.<tag>.<run>.ark``
    (``tag`` identifies the data dir, ``run`` this run) and, in the data dir, ``feats.scp``,
    ``utt2num_frames``, ``cmvn.scp`` (per speaker), ``cmvn_global.ark`` and ``feats.yaml``.
    ``ark_dir`` defaults to ``DATA_DIR/data`` (Kaldi's make_fbank.sh default). An utterance
    that cannot be read, gives zero frames or non-finite features is logged in one line and
    skipped (it gets no feats.scp entry and no part in the CMVN stats).

    Crash safety: the arks of a run get new names, so the old scp files keep pointing into the
    old arks (never into a new ark at old offsets) until each is replaced atomically; the old
    arks are removed only after that. A crash at any point leaves every scp entry reading its
    own utterance. The next run removes what a killed run left: temp files and arks of this
    data dir that no scp file references. A write that fails (disk full, no permission) is one
    ``AsrError`` naming the path, with the previous outputs untouched.
    """

    data_dir = Path(data_dir)
    data = _load_with_audio(data_dir)
    ark_dir, tag, old_arks = _prepare(data_dir, ark_dir)
    run = f"{tag}.{uuid.uuid4().hex[:12]}"
    ark_path = ark_dir / f"raw_{config.kind}.{run}.ark"
    cmvn_ark_path = ark_dir / f"cmvn_{config.kind}.{run}.ark"
    try:
        summary = _extract_all(data, config, ark_path, allow_pipe, progress)
        speaker_stats = summary.pop("speaker_stats")
        cmvn_lines: list[str] = []
        with _atomic(cmvn_ark_path, "wb") as ark:
            for speaker in sorted(speaker_stats):
                offset = _write_ark_entry(ark, speaker, speaker_stats[speaker].numpy())
                cmvn_lines.append(f"{speaker} {cmvn_ark_path}:{offset}\n")
        global_stats = sum(
            speaker_stats.values(), torch.zeros(2, config.raw_dim + 1, dtype=torch.float64)
        )
        _write_outputs(
            data_dir, config, summary["scp_lines"], summary["frame_lines"], cmvn_lines, global_stats
        )
    finally:
        # The old arks once both scp files are switched; the new ones if we stopped before.
        _remove_unreferenced_arks(data_dir, ark_dir, tag, old_arks)
    return _summary(data_dir, config, summary, ark_path)


def _load_with_audio(data_dir: Path) -> DataDir:
    data = DataDir.load(data_dir)
    if not data.wav_scp:
        raise DataDirError(f"{data_dir / 'wav.scp'}: file not found (needed to compute features)")
    return data


def _prepare(data_dir: Path, ark_dir: str | os.PathLike | None) -> tuple[Path, str, set[Path]]:
    """(ark dir, the data dir's tag, the arks its scp files use now), after removing what a
    killed earlier run left."""
    ark_dir = Path(ark_dir) if ark_dir is not None else data_dir / "data"
    with _write_errors(ark_dir):
        ark_dir.mkdir(parents=True, exist_ok=True)
    ark_dir = ark_dir.resolve()
    tag = _owner_tag(data_dir)
    _remove_leftovers(data_dir, ark_dir, tag)
    # Arks of an earlier run may sit in another ark dir (an earlier --ark-dir).
    return ark_dir, tag, _referenced_arks(data_dir)


def _write_outputs(
    data_dir: Path,
    config: FeatureConfig,
    scp_lines: list[str],
    frame_lines: list[str],
    cmvn_lines: list[str],
    global_stats: torch.Tensor,
) -> None:
    """The data dir's files, each replaced atomically; feats.scp, the commit point, last."""
    with _atomic(data_dir / "cmvn_global.ark", "wb") as handle:
        kaldiio.matio.write_array(handle, global_stats.numpy())
    with _atomic(data_dir / "utt2num_frames") as handle:
        handle.writelines(frame_lines)
    with _atomic(data_dir / "cmvn.scp") as handle:
        handle.writelines(cmvn_lines)
    with _atomic(data_dir / "feats.scp") as handle:
        handle.writelines(scp_lines)
    with _atomic(data_dir / "feats.yaml") as handle:
        yaml.safe_dump(config.to_dict(), handle, sort_keys=False)


def _summary(
    data_dir: Path, config: FeatureConfig, summary: dict[str, Any], ark_path: Path
) -> FeatureSummary:
    num_done, failed = len(summary["scp_lines"]), summary["failed"]
    log.info(
        "%s: %d utterances, %d frames of %s (dim %d) in %s; %d failed",
        data_dir,
        num_done,
        summary["total_frames"],
        config.kind,
        config.raw_dim,
        ark_path,
        len(failed),
    )
    return FeatureSummary(
        num_done=num_done,
        num_failed=len(failed),
        num_frames=summary["total_frames"],
        ark_path=ark_path,
        feats_scp=data_dir / "feats.scp",
        cmvn_scp=data_dir / "cmvn.scp",
        cmvn_global=data_dir / "cmvn_global.ark",
        failed=failed,
    )


# ---------------------------------------------------------------------------------------------
# Split runs (asr features --nj N): each part a job, the parent merges
# ---------------------------------------------------------------------------------------------


def compute_features_in_parts(
    data_dir: str | os.PathLike,
    config: FeatureConfig,
    parts: list[Path],
    run_parts: Callable[[str], None],
    ark_dir: str | os.PathLike | None = None,
) -> FeatureSummary:
    """``compute_datadir_features`` with the utterances of ``parts`` (a split of ``data_dir``
    by speaker: :func:`asr.data.subset.split_datadir`) extracted by N jobs.

    ``run_parts(run)`` must run, for each part J (from 1), :func:`extract_part` on it with run
    name ``f"{run}.{J}"`` and the same config and ark dir (the CLI does it through a job
    launcher), and return only when all have succeeded (raising otherwise). Then the parts'
    tables are merged into the data dir's, in the data dir's utterance and speaker order, so the
    result equals one job's: the same feats.scp order and matrices, utt2num_frames, per-speaker
    and global statistics (summed in the same order). The job arks carry this data dir's tag and
    run name, so its usual crash safety holds: the scp files switch atomically after every job
    is done, and the arks of a failed or replaced run are removed.
    """
    data_dir = Path(data_dir)
    data = _load_with_audio(data_dir)
    ark_dir, tag, old_arks = _prepare(data_dir, ark_dir)
    run = f"{tag}.{uuid.uuid4().hex[:12]}"
    try:
        run_parts(run)
        scp: dict[str, str] = {}
        frames: dict[str, str] = {}
        cmvn: dict[str, str] = {}
        for part in parts:
            scp.update(_table(part / "feats.scp"))
            frames.update(_table(part / "utt2num_frames"))
            cmvn.update(_table(part / "cmvn.scp"))
        utts = [u for u in data.utt_ids if u in scp]
        # the speakers' stats summed in the order one job meets them (float sums keep order)
        order = list(dict.fromkeys(data.utt2spk[u] for u in utts))
        stats = {spk: torch.tensor(kaldiio.load_mat(cmvn[spk])) for spk in order}
        global_stats = sum(
            (stats[spk] for spk in order),
            torch.zeros(2, config.raw_dim + 1, dtype=torch.float64),
        )
        _write_outputs(
            data_dir,
            config,
            [f"{u} {scp[u]}\n" for u in utts],
            [f"{u} {frames[u]}\n" for u in utts],
            [f"{spk} {cmvn[spk]}\n" for spk in sorted(order)],
            global_stats,
        )
    finally:
        _remove_unreferenced_arks(data_dir, ark_dir, tag, old_arks)
    summary = {
        "scp_lines": utts,
        "failed": [u for u in data.utt_ids if u not in scp],
        "total_frames": sum(int(frames[u]) for u in utts),
    }
    return _summary(data_dir, config, summary, ark_dir / f"raw_{config.kind}.{run}.*.ark")


def extract_part(
    part_dir: str | os.PathLike,
    config: FeatureConfig,
    ark_dir: str | os.PathLike,
    run: str,
    allow_pipe: bool = False,
    progress: bool = False,
) -> int:
    """One job of :func:`compute_features_in_parts`: the utterances of ``part_dir`` into
    ``ARK_DIR/raw_<kind>.<run>.ark`` and their speakers' statistics into
    ``ARK_DIR/cmvn_<kind>.<run>.ark``, with feats.scp, utt2num_frames and cmvn.scp in
    ``part_dir`` pointing into them. Nothing is cleaned up here: the arks are named by the
    parent's run, and the parent keeps or removes them. Returns the utterances done."""
    part_dir = Path(part_dir)
    data = _load_with_audio(part_dir)
    ark_dir = Path(ark_dir).resolve()
    ark_path = ark_dir / f"raw_{config.kind}.{run}.ark"
    cmvn_ark_path = ark_dir / f"cmvn_{config.kind}.{run}.ark"
    summary = _extract_all(data, config, ark_path, allow_pipe, progress)
    cmvn_lines = []
    with _atomic(cmvn_ark_path, "wb") as ark:
        for speaker in sorted(summary["speaker_stats"]):
            offset = _write_ark_entry(ark, speaker, summary["speaker_stats"][speaker].numpy())
            cmvn_lines.append(f"{speaker} {cmvn_ark_path}:{offset}\n")
    with _atomic(part_dir / "utt2num_frames") as handle:
        handle.writelines(summary["frame_lines"])
    with _atomic(part_dir / "cmvn.scp") as handle:
        handle.writelines(cmvn_lines)
    with _atomic(part_dir / "feats.scp") as handle:
        handle.writelines(summary["scp_lines"])
    return len(summary["scp_lines"])


def _table(path: Path) -> dict[str, str]:
    """A Kaldi table a job wrote (key -> rest of the line); a missing one is an error."""
    if not path.is_file():
        raise AsrError(f"{path}: not written by its job; the parts are not merged")
    table = {}
    for line in read_text_lines(path):
        key, _, value = line.partition(" ")
        if key:
            table[key] = value.strip()
    return table


def _extract_all(
    data: DataDir, config: FeatureConfig, ark_path: Path, allow_pipe: bool, progress: bool
) -> dict[str, Any]:
    """Write every good utterance's features to ``ark_path``; scp lines, stats and failures."""

    scp_lines: list[str] = []
    frame_lines: list[str] = []
    failed: list[str] = []
    speaker_stats: dict[str, torch.Tensor] = {}
    total_frames = 0
    # One intra-op thread for the small per-utterance ops: with two, torch's second thread spun
    # between them, doubling the CPU time of `asr features` for no gain in speed (--nj is the
    # way to use more cores; a long recording's fbank blocks still use the caller's threads).
    with _atomic(ark_path, "wb") as ark, logging_redirect_tqdm(), one_intra_op_thread():
        for utt_id in tqdm(
            data.utt_ids, desc=f"{config.kind} {data.path}", unit="utt", disable=not progress
        ):
            try:
                feats = _utterance_features(data, utt_id, config, allow_pipe)
            except AsrError as exc:
                log.warning("skipping %s: %s", utt_id, exc)
                failed.append(utt_id)
                continue
            offset = _write_ark_entry(ark, utt_id, feats.numpy())
            scp_lines.append(f"{utt_id} {ark_path}:{offset}\n")
            frame_lines.append(f"{utt_id} {feats.shape[0]}\n")
            total_frames += feats.shape[0]
            speaker = data.utt2spk[utt_id]
            stats = compute_cmvn_stats(feats)
            if speaker in speaker_stats:
                speaker_stats[speaker] += stats
            else:
                speaker_stats[speaker] = stats
            fault_point("utterance")
        if not scp_lines:
            raise AsrError(f"{data.path}: no utterance gave features ({len(failed)} failed)")
    return {
        "scp_lines": scp_lines,
        "frame_lines": frame_lines,
        "failed": failed,
        "speaker_stats": speaker_stats,
        "total_frames": total_frames,
    }


def _utterance_features(
    data: DataDir, utt_id: str, config: FeatureConfig, allow_pipe: bool
) -> torch.Tensor:
    """One utterance's raw features; AsrError naming its wav.scp line and file if unusable."""
    wave, rate = data.load_audio(utt_id, config.sample_rate, allow_pipe=allow_pipe)
    entry, _, _ = data.audio_entry(utt_id)
    reco = data.segments[utt_id].recording if data.segments is not None else utt_id
    where = f"{data.where('wav.scp', reco)}: utterance '{utt_id}' ({entry.strip()})"
    try:
        # Dither noise from a seed of the utterance's id alone: features are a function of the
        # audio and the id, whatever the order or the split into jobs (--nj) that computed them.
        # Only the CPU generator: torch.manual_seed would also queue a seeding of every GPU
        # backend, recording a stack trace each time (14% of a profiled run), and reseed the
        # GPUs of a process that uses them, outside fork_rng's restore.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(utterance_seed(utt_id))
            feats = extract_features(wave, rate, config)
    except AsrError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    if feats.shape[0] == 0:
        raise AudioError(f"{where}: too short for one frame ({len(wave)} samples)")
    return feats


def utterance_seed(utt_id: str) -> int:
    """The dither seed of an utterance: 63 bits of the SHA-1 of its id."""
    return int.from_bytes(hashlib.sha1(utt_id.encode("utf-8")).digest()[:8], "little") >> 1


def _owner_tag(data_dir: Path) -> str:
    """A short id of the data dir in its ark names, so that data dirs sharing one ark dir
    (Kaldi's mfcc/ for train and test) never take each other's arks for leftovers."""
    return hashlib.sha1(str(data_dir.resolve()).encode("utf-8")).hexdigest()[:10]


@contextlib.contextmanager
def _write_errors(path: Path) -> Iterator[None]:
    """An OSError while writing ``path`` (full disk, file too large, no permission) -> one line."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise AsrError(f"{path}: cannot write: {reason}") from None


@contextlib.contextmanager
def _atomic(path: Path, mode: str = "w") -> Iterator[Any]:
    with _write_errors(path), atomic_write(path, mode) as handle:
        yield handle


def _referenced_arks(data_dir: Path) -> set[Path]:
    """The ark files that feats.scp and cmvn.scp of ``data_dir`` point into."""
    names: set[str] = set()
    for name in ("feats.scp", "cmvn.scp"):
        path = data_dir / name
        if not path.exists():
            continue
        for line in read_text_lines(path):  # an unreadable scp is an error, not "no arks"
            parts = line.split(maxsplit=1)
            if len(parts) == 2:
                names.add(parts[1].strip().rpartition(":")[0])
    # resolved once per ark, not per line: an scp of 10,000 lines names a handful of arks
    return {Path(name).resolve() for name in names}


def _remove_unreferenced_arks(
    data_dir: Path, ark_dir: Path, tag: str, also: Iterable[Path] = ()
) -> None:
    """Remove this data dir's arks (by their tag) in ``ark_dir`` or ``also`` that neither scp
    file points into; arks not named by this module (a Kaldi run's) are never touched."""
    keep = _referenced_arks(data_dir)
    candidates = [*ark_dir.glob(f"raw_*.{tag}.*.ark"), *ark_dir.glob(f"cmvn_*.{tag}.*.ark")]
    candidates += [p for p in also if p.name.split(".")[1:2] == [tag] and p.suffix == ".ark"]
    for path in candidates:
        if path.resolve() not in keep and path.name.startswith(("raw_", "cmvn_")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _remove_leftovers(data_dir: Path, ark_dir: Path, tag: str) -> None:
    """What a killed run of this data dir left: temp files and arks no scp file references."""
    stale = [ark_dir.glob(f".raw_*.{tag}.*.tmp"), ark_dir.glob(f".cmvn_*.{tag}.*.tmp")]
    stale += [data_dir.glob(f".{name}.*.tmp") for name in _DATADIR_OUTPUTS]
    for paths in stale:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    _remove_unreferenced_arks(data_dir, ark_dir, tag)
