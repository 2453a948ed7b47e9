"""Repair a data directory as Kaldi's ``utils/fix_data_dir.sh`` does (sort, drop orphans)."""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from asr.data.datadir import (
    BACKUP_DIR,
    RECO_FILES,
    SPK_FILES,
    UTT_FILES,
    DataDir,
    Segment,
    Table,
    is_pipe,
    parse_positive,
    parse_segment,
    read_tables,
    scp_file,
    spk2utt_from_utt2spk,
)
from asr.data.validate import check_speakers
from asr.errors import DataDirError

log = logging.getLogger(__name__)


# --- fix -------------------------------------------------------------------------------------


@dataclass
class FixReport:
    """What ``fix_datadir`` did: how many utterances it kept and why it dropped the others."""

    path: Path
    kept: int
    dropped: dict[str, str]  # utterance id -> reason
    removed_lines: int  # malformed, duplicate or orphan lines removed from the tables
    backup_dir: Path
    unfixable: list[str]  # problems left for a person (validate will still report them)

    def summary_lines(self) -> list[str]:
        lines = [f"{self.path}: kept {self.kept} utterances, dropped {len(self.dropped)}"]
        for reason, count in sorted(Counter(self.dropped.values()).items()):
            lines.append(f"  dropped {count}: {reason}")
        if self.removed_lines:
            lines.append(f"  removed {self.removed_lines} malformed, duplicate or orphan lines")
        lines.append(f"  backup of the old files in {self.backup_dir}")
        lines += [f"  not fixed: {p}" for p in self.unfixable]
        return lines


def fix_datadir(path: str | os.PathLike) -> FixReport:
    """Repair a data directory in place, as Kaldi's ``utils/fix_data_dir.sh``.

    Keeps the old files in ``DIR/.backup/``, drops unreadable/duplicate lines, drops every
    utterance that is missing from a per-utterance table, has an empty transcript or whose
    audio (or feature) file is missing, writes every table sorted and regenerates spk2utt.
    """
    path = Path(path)
    tables = read_tables(path)
    removed = sum(len(t.problems) for t in tables.values())
    if "utt2spk" in tables:
        utt2spk = {u: s for u, s in tables["utt2spk"].values.items() if len(s.split()) == 1}
        removed += len(tables["utt2spk"].values) - len(utt2spk)
    elif "spk2utt" in tables:
        utt2spk = {u: spk for spk, utts in tables["spk2utt"].values.items() for u in utts.split()}
    else:
        raise DataDirError(f"{path / 'utt2spk'}: file not found (nor spk2utt): cannot fix")
    if "wav.scp" not in tables and "feats.scp" not in tables:
        raise DataDirError(f"{path / 'wav.scp'}: file not found (nor feats.scp): cannot fix")

    backup = path / BACKUP_DIR
    backup.mkdir(exist_ok=True)
    for name in tables:
        shutil.copy2(path / name, backup / name)

    dropped: dict[str, str] = {}

    def drop(utt: str, reason: str) -> None:
        dropped.setdefault(utt, reason)

    wav = tables["wav.scp"].values if "wav.scp" in tables else None
    segments: dict[str, Segment] | None = None
    if "segments" in tables:
        segments = {}
        for utt, value in tables["segments"].values.items():
            try:
                segments[utt] = parse_segment(value)
            except ValueError:
                drop(utt, "bad line in segments")
    for name in UTT_FILES:
        if name in tables:
            for utt in utt2spk:
                if utt not in tables[name].values:
                    drop(utt, f"not in {name}")
    if "text" in tables:
        for utt in utt2spk:
            if tables["text"].values.get(utt) == "":
                drop(utt, "empty transcript")
    for name, kind in (("utt2dur", float), ("utt2num_frames", int)):
        for utt, value in tables.get(name, Table(path)).values.items():
            try:
                parse_positive(value, kind)
            except ValueError:
                drop(utt, f"bad value in {name}")
    if wav is not None:
        for utt in utt2spk:
            reco = segments[utt].recording if segments is not None and utt in segments else utt
            entry = wav.get(reco)
            if entry is None:
                drop(utt, "not in wav.scp")
            elif not is_pipe(entry) and not os.path.isfile(entry):
                drop(utt, "audio file missing")
    if "feats.scp" in tables:
        for utt, entry in tables["feats.scp"].values.items():
            if not is_pipe(entry) and not os.path.isfile(scp_file(entry)):
                drop(utt, "feature file missing")

    keep = {u for u in utt2spk if u not in dropped}
    speakers = {utt2spk[u] for u in keep}
    recordings = {segments[u].recording for u in keep} if segments is not None else keep
    # Lines of per-utterance tables whose utterance is not in utt2spk go too; count them.
    removed += sum(
        1
        for name in UTT_FILES
        if name in tables
        for utt in tables[name].values
        if utt not in utt2spk
    )
    if wav is not None and segments is None:
        removed += sum(1 for reco in wav if reco not in utt2spk)

    def pick(name: str) -> dict[str, str] | None:
        if name not in tables:
            return None
        keys = speakers if name in SPK_FILES else recordings if name in RECO_FILES else keep
        return {k: v for k, v in tables[name].values.items() if k in keys}

    data = DataDir(
        path=path,
        utt2spk={u: s for u, s in utt2spk.items() if u in keep},
        spk2utt={},
        wav_scp=pick("wav.scp") or {},
        text=pick("text"),
        segments={u: s for u, s in segments.items() if u in keep} if segments is not None else None,
        feats_scp=pick("feats.scp"),
        cmvn_scp=pick("cmvn.scp"),
        extra={
            n: pick(n) for n in ("spk2gender", "reco2file_and_channel", "reco2dur") if n in tables
        },
    )
    data.spk2utt = spk2utt_from_utt2spk(data.utt2spk)
    if "utt2dur" in tables:
        data.utt2dur = {u: float(v) for u, v in pick("utt2dur").items()}
    if "utt2num_frames" in tables:
        data.utt2num_frames = {u: int(v) for u, v in pick("utt2num_frames").items()}
    data.save()

    unfixable = check_speakers(_table_of(path / "utt2spk", data.utt2spk), None)
    if data.cmvn_scp is not None:
        unfixable += [
            f"{path / 'cmvn.scp'}: speaker '{s}' has no entry"
            for s in sorted(speakers - data.cmvn_scp.keys())
        ]
    report = FixReport(path, len(keep), dict(sorted(dropped.items())), removed, backup, unfixable)
    log.debug("; ".join(report.summary_lines()))
    return report


def _table_of(path: Path, values: dict[str, str]) -> Table:
    keys = sorted(values)
    return Table(path, {k: values[k] for k in keys}, {k: i for i, k in enumerate(keys, start=1)})
