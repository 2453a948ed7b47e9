"""Combine data directories (Kaldi's ``utils/combine_data.sh``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from asr.data.audio import audio_duration
from asr.data.datadir import DataDir, Segment, is_pipe, save_replacing, spk2utt_from_utt2spk
from asr.errors import AsrError, DataDirError
from asr.fileio import atomic_write

log = logging.getLogger(__name__)

FEATURE_CONFIG = "feats.yaml"  # written by asr features beside feats.scp


# --- combine ---------------------------------------------------------------------------------


def combine_datadirs(srcs: Iterable[str | os.PathLike], dst: str | os.PathLike) -> DataDir:
    """Write the union of data directories ``srcs`` into ``dst``, as Kaldi's combine_data.sh.

    An utterance id in two sources is an error naming both; so is a recording (wav.scp id),
    speaker gender or segment given differently by two sources. A table is kept only when
    every source has it (as Kaldi; a warning names a source without it), except ``segments``:
    when only some sources have one, the others get whole-recording segments (``utt utt 0
    <duration>``, from utt2dur or the audio header, as Kaldi's get_segments_for_data.sh; ``-1``,
    "to the end", for a pipe or unreadable header). cmvn.scp is dropped when a speaker of two
    sources has different statistics in them. spk2utt is regenerated; other files are not
    copied. Returns the combined directory (already written).
    """
    sources = [Path(s) for s in srcs]
    if not sources:
        raise DataDirError("combine needs at least one source data directory")
    out = Path(dst)
    for source in sources:
        if out.resolve() == source.resolve():
            raise DataDirError(
                f"{out}: the combined directory cannot overwrite its source {source}"
            )
    dirs = [DataDir.load(s) for s in sources]
    first_seen: dict[str, DataDir] = {}
    for data in dirs:
        for utt in data.utt_ids:
            if utt in first_seen:
                raise DataDirError(
                    f"{data.where('utt2spk', utt)}: utterance '{utt}' is also in "
                    f"{first_seen[utt].where('utt2spk', utt)} (utterance ids must be unique "
                    "across combined directories)"
                )
            first_seen[utt] = data

    def union(name: str, tables: list[dict | None], on_conflict: str = "error") -> dict | None:
        absent = [d.path for d, t in zip(dirs, tables, strict=True) if t is None]
        if absent:
            if len(absent) < len(dirs):
                log.warning(
                    "%s: not found, so the combined directory has no %s", absent[0] / name, name
                )
            return None
        merged: dict = {}
        where: dict[str, str] = {}
        for data, table in zip(dirs, tables, strict=True):
            for key, value in table.items():
                if key in merged and merged[key] != value:
                    conflict = (
                        f"{data.where(name, key)}: '{key}' is '{value}' here but "
                        f"'{merged[key]}' in {where[key]}"
                    )
                    if on_conflict == "error":
                        raise DataDirError(conflict)
                    log.warning("%s; the combined directory has no %s", conflict, name)
                    return None
                merged[key] = value
                where[key] = data.where(name, key)
        return merged

    wav_scp = union("wav.scp", [d.wav_scp or None for d in dirs])
    feats_scp = union("feats.scp", [d.feats_scp for d in dirs])
    if wav_scp is None and feats_scp is None:
        raise DataDirError(
            f"{sources[0]}: cannot combine: not every source has wav.scp, nor every one feats.scp"
        )
    segments = None
    if wav_scp is not None and any(d.segments is not None for d in dirs):
        segments = union("segments", [_segments_or_whole(d) for d in dirs])
    utt2spk = {u: s for d in dirs for u, s in d.utt2spk.items()}
    combined = DataDir(
        path=out,
        utt2spk=utt2spk,
        spk2utt=spk2utt_from_utt2spk(utt2spk),
        wav_scp=wav_scp or {},
        text=union("text", [d.text for d in dirs]),
        segments=segments,
        utt2dur=union("utt2dur", [d.utt2dur for d in dirs]),
        feats_scp=feats_scp,
        cmvn_scp=union("cmvn.scp", [d.cmvn_scp for d in dirs], on_conflict="drop"),
        utt2num_frames=union("utt2num_frames", [d.utt2num_frames for d in dirs]),
    )
    for name in ("spk2gender", "reco2file_and_channel", "reco2dur"):
        if wav_scp is None and name != "spk2gender":
            continue
        table = union(name, [d.extra.get(name) for d in dirs])
        if table is not None:
            combined.extra[name] = table
    feats_yaml = _common_feature_config(dirs) if feats_scp is not None else None
    save_replacing(combined)
    if feats_yaml is not None:
        # the feature config travels with feats.scp: training reads it (asr features wrote it)
        with atomic_write(out / FEATURE_CONFIG) as handle:
            handle.write(feats_yaml)
    log.debug(
        "%s: %d utterances, %d speakers from %d directories",
        out,
        len(utt2spk),
        len(combined.spk2utt),
        len(dirs),
    )
    return combined


def _common_feature_config(dirs: list[DataDir]) -> str | None:
    """The text of the sources' feats.yaml when every source has the same one; None when none
    or only some have it (a warning names one without). Different ones are an error: their
    features were extracted differently, and one feats.scp cannot hold both."""
    texts = {}
    for data in dirs:
        path = data.path / FEATURE_CONFIG
        texts[data.path] = path.read_text(encoding="utf-8") if path.is_file() else None
    missing = [p for p, t in texts.items() if t is None]
    if missing:
        if len(missing) < len(dirs):
            log.warning(
                "%s: not found, so the combined directory has no %s",
                missing[0] / FEATURE_CONFIG,
                FEATURE_CONFIG,
            )
        return None
    (first, text), *rest = texts.items()
    for path, other in rest:
        if other != text:
            raise DataDirError(
                f"{path / FEATURE_CONFIG}: differs from {first / FEATURE_CONFIG} (features "
                "extracted with different configs cannot share one feats.scp)"
            )
    return text


def _segments_or_whole(data: DataDir) -> dict[str, Segment]:
    """``data``'s segments, or one spanning each whole recording (get_segments_for_data.sh)."""
    if data.segments is not None:
        return data.segments

    segments = {}
    for utt in data.utt_ids:
        if data.utt2dur is not None and utt in data.utt2dur:
            end = data.utt2dur[utt]
        else:
            try:
                entry = data.wav_scp[utt]
                end = -1.0 if is_pipe(entry) else audio_duration(entry)
            except (AsrError, KeyError):
                end = -1.0  # reading it will report the problem; combining does not need it
        segments[utt] = Segment(utt, 0.0, end)
    return segments
