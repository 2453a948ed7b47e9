"""Training data: normalized features from a data directory, their labels, and frame-budget batches.

``FeatureSet`` reads ``feats.scp`` lazily (kaldiio), the ``feats.yaml`` written by ``asr features``
and the CMVN statistics, and returns features normalized exactly as decoding will normalize them
(``asr.features.config.normalize_features``). ``load_examples`` pairs them with the
transcripts, skipping and counting what cannot be used; ``make_batches`` groups length-sorted
utterances into batches of at most ``batch_frames`` padded frames.
"""

from __future__ import annotations

import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kaldiio
import numpy as np
import torch

from asr.errors import DataDirError
from asr.features.cmvn import compute_cmvn_stats
from asr.features.config import load_feature_config, normalize_features
from asr.fileio import read_text_lines
from asr.units.tokens import TokenList, UnknownTokenError


def read_map(path: str | os.PathLike, allow_empty: bool = False) -> dict[str, str]:
    """Read a Kaldi ``key value...`` file; an empty value is kept only when ``allow_empty``.

    Private to training on purpose: a transcript line with no words must be skipped and counted,
    not rejected, so this cannot use the strict data-dir reader.
    """
    path = Path(path)
    mapping: dict[str, str] = {}
    for lineno, line in enumerate(read_text_lines(path), 1):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        if not value and not allow_empty:
            raise DataDirError(f"{path}:{lineno}: key '{key}' has no value")
        if key in mapping:
            raise DataDirError(f"{path}:{lineno}: duplicate key '{key}'")
        mapping[key] = value
    return mapping


def _load_scp(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise DataDirError(f"{path}: file not found (run 'asr features' on this directory first)")
    try:
        return kaldiio.load_scp(str(path))
    except Exception as exc:  # kaldiio raises ValueError/IndexError/OSError on a bad line
        raise DataDirError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None


def _check_finite(stats: torch.Tensor, what: str) -> None:
    # one NaN frame would make every utterance normalised with these stats NaN
    if not bool(torch.isfinite(stats).all()):
        raise DataDirError(f"{what} are not finite (NaN or inf in the features); re-extract them")


def _stats_of(feats: torch.Tensor) -> torch.Tensor:
    return compute_cmvn_stats(feats).to(torch.float64)


class FeatureSet:
    """The normalized features of one data directory, addressed by utterance id.

    ``global_stats`` replaces this directory's own global CMVN statistics: a dev set normalized
    with ``cmvn: global`` must use the training set's statistics, as the model package will.
    ``cache`` keeps normalized features in memory (fast for small corpora); without it every
    read goes to the ark and nothing is kept: kaldiio opens the ark, seeks to the utterance's
    offset and closes it again, so what this object holds is per-utterance metadata (ids, ark
    offsets, frame counts, speakers) and per-speaker statistics, whatever the corpus's size.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike,
        cache: bool = False,
        global_stats: torch.Tensor | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self._scp_path = self.data_dir / "feats.scp"
        self._raw = _load_scp(self._scp_path)
        yaml_path = self.data_dir / "feats.yaml"
        if not yaml_path.is_file():
            raise DataDirError(f"{yaml_path}: file not found (written by 'asr features')")
        self.config = load_feature_config(yaml_path)
        self.config_dict: dict[str, Any] = self.config.to_dict()
        self.ids: list[str] = sorted(self._raw.keys())
        utt2spk_path = self.data_dir / "utt2spk"
        self.utt2spk = read_map(utt2spk_path) if utt2spk_path.is_file() else None
        self.cache = cache
        self._cache: dict[str, torch.Tensor] = {}
        self._global_stats = global_stats
        self._speaker_stats: dict[str, torch.Tensor] | None = None
        self._finite_checked: set[str] = set()  # speakers ("" = global) whose stats are finite
        self.num_frames = self._read_num_frames()

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._raw

    def raw(self, utt_id: str) -> torch.Tensor:
        """Un-normalized features as stored in the ark."""
        try:
            matrix = self._raw[utt_id]
        except KeyError:
            raise DataDirError(f"{self._scp_path}: no utterance '{utt_id}'") from None
        except Exception as exc:
            raise DataDirError(
                f"{self._scp_path}: utterance '{utt_id}': cannot load features "
                f"({exc.__class__.__name__}: {exc})"
            ) from None
        return torch.from_numpy(np.array(matrix, dtype=np.float32, copy=True))

    def _read_num_frames(self) -> dict[str, int]:
        path = self.data_dir / "utt2num_frames"
        if path.is_file():
            counts = read_map(path)
            if all(u in counts for u in self.ids):
                try:
                    return {u: int(counts[u]) for u in self.ids}
                except ValueError:
                    pass  # a damaged file: fall back to measuring the matrices
        return {u: int(self.raw(u).shape[0]) for u in self.ids}

    def speaker_stats(self) -> dict[str, torch.Tensor]:
        """Per-speaker CMVN stats: cmvn.scp when present, else summed from the features."""
        if self._speaker_stats is None:
            cmvn_scp = self.data_dir / "cmvn.scp"
            if cmvn_scp.is_file():
                stats = _load_scp(cmvn_scp)
                self._speaker_stats = {
                    spk: torch.from_numpy(np.array(stats[spk], dtype=np.float64)) for spk in stats
                }
            else:
                if self.utt2spk is None:
                    raise DataDirError(f"{self.data_dir / 'utt2spk'}: file not found")
                sums: dict[str, torch.Tensor] = {}
                for utt in self.ids:
                    spk = self._speaker_of(utt)
                    s = _stats_of(self.raw(utt))
                    sums[spk] = sums[spk] + s if spk in sums else s
                self._speaker_stats = sums
        return self._speaker_stats

    def _speaker_of(self, utt_id: str) -> str:
        if self.utt2spk is None:
            raise DataDirError(f"{self.data_dir / 'utt2spk'}: file not found (cmvn: speaker)")
        spk = self.utt2spk.get(utt_id)
        if spk is None:
            raise DataDirError(f"{self.data_dir / 'utt2spk'}: no speaker for utterance '{utt_id}'")
        return spk

    @property
    def global_stats(self) -> torch.Tensor:
        """Global CMVN stats (Kaldi layout, float64): CMVN stats are sums, so speakers add up."""
        if self._global_stats is None:
            if (self.data_dir / "cmvn.scp").is_file() or self._speaker_stats is not None:
                self._global_stats = sum(self.speaker_stats().values())  # type: ignore[assignment]
            else:
                total = None
                for utt in self.ids:
                    s = _stats_of(self.raw(utt))
                    total = s if total is None else total + s
                self._global_stats = total
        if self._global_stats is None:
            raise DataDirError(f"{self._scp_path}: no utterances")
        return self._global_stats

    def stats_for(self, utt_id: str) -> torch.Tensor | None:
        mode = self.config.cmvn
        if mode == "speaker":
            spk = self._speaker_of(utt_id)
            stats = self.speaker_stats().get(spk)
            if stats is None:
                raise DataDirError(f"{self.data_dir / 'cmvn.scp'}: no stats for speaker '{spk}'")
            if spk not in self._finite_checked:
                _check_finite(stats, f"{self.data_dir}: CMVN statistics of speaker '{spk}'")
                self._finite_checked.add(spk)
            return stats
        if mode == "global":
            if "" not in self._finite_checked:
                _check_finite(self.global_stats, f"{self.data_dir}: global CMVN statistics")
                self._finite_checked.add("")
            return self.global_stats
        return None

    def __getitem__(self, utt_id: str) -> torch.Tensor:
        cached = self._cache.get(utt_id)
        if cached is not None:
            return cached

        feats = normalize_features(self.raw(utt_id), self.config, self.stats_for(utt_id))
        feats = feats.to(torch.float32).contiguous()
        if self.cache:
            self._cache[utt_id] = feats
        return feats

    @property
    def normalized_bytes(self) -> int:
        """What ``cache`` would hold once every utterance is read: frames (utt2num_frames) x
        normalized dim (feats.yaml) x 4 bytes of float32, known before any ark is read."""
        return sum(self.num_frames.values()) * self.config.dim * 4

    def preload(self) -> None:
        """Normalize every utterance into the cache now (a no-op without ``cache``)."""
        if self.cache:
            for utt in self.ids:
                self[utt]

    @property
    def feature_dim(self) -> int:
        """Dimension after normalization (deltas included): the model's input_dim."""
        if not self.ids:
            raise DataDirError(f"{self._scp_path}: no utterances")
        return int(self[self.ids[0]].shape[1])


@dataclass
class Example:
    """One usable utterance: ``labels`` is None when its transcript holds an unknown token."""

    utt_id: str
    num_frames: int
    ref: list[str]
    labels: list[int] | None


@dataclass
class SkipReport:
    """Counts of utterances left out (or kept with a problem), by reason, with a few ids each."""

    counts: Counter = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, utt_id: str) -> None:
        self.counts[reason] += 1
        self.samples.setdefault(reason, [])
        if len(self.samples[reason]) < 3:
            self.samples[reason].append(utt_id)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def lines(self, name: str) -> list[str]:
        out = []
        for reason, count in sorted(self.counts.items()):
            shown = ", ".join(self.samples[reason])
            more = ", ..." if count > len(self.samples[reason]) else ""
            out.append(f"{name}: {count} utterance(s) {reason} ({shown}{more})")
        return out


def load_examples(
    features: FeatureSet, tokens: TokenList, text_path: str | os.PathLike | None = None
) -> tuple[list[Example], SkipReport]:
    """Pair features with transcripts; mismatched ids and empty transcripts are skipped, counted.

    Utterances with a symbol outside ``tokens`` are kept with ``labels=None`` (they count as
    errors when scoring, but cannot give a CTC loss) and are counted as "with unknown tokens".
    """
    text_path = Path(text_path) if text_path is not None else features.data_dir / "text"
    texts = read_map(text_path, allow_empty=True)
    report = SkipReport()
    examples = []
    for utt in features.ids:
        if utt not in texts:
            report.add(f"in feats.scp but not in {text_path.name} (skipped)", utt)
            continue
        # one shared string per distinct symbol: a list of fresh ones took 68 bytes a word,
        # ~0.7 GB for 1000 hours of transcripts, against 11 interned
        ref = [sys.intern(symbol) for symbol in tokens.split(texts[utt])]
        if not ref:
            report.add("with an empty transcript (skipped)", utt)
            continue
        try:
            labels: list[int] | None = tokens.encode_symbols(ref)
        except UnknownTokenError:
            report.add("with unknown tokens (scored as errors)", utt)
            labels = None
        examples.append(Example(utt, features.num_frames[utt], ref, labels))
    for utt in sorted(set(texts) - set(features.ids)):
        report.add(f"in {text_path.name} but not in feats.scp (skipped)", utt)
    return examples, report


def ctc_min_frames(labels: Sequence[int]) -> int:
    """Fewest CTC output frames that can emit ``labels``: a repeat needs a blank in between."""
    repeats = sum(1 for a, b in zip(labels, labels[1:], strict=False) if a == b)
    return len(labels) + repeats


def fits_ctc(
    examples: Iterable[Example], output_lengths: Callable[[torch.Tensor], torch.Tensor]
) -> tuple[list[Example], list[Example]]:
    """Split examples into (fit, too short) given the model's input->output length function."""
    examples = list(examples)
    if not examples:
        return [], []
    out = output_lengths(torch.tensor([e.num_frames for e in examples], dtype=torch.long))
    fit, short = [], []
    for example, n_out in zip(examples, out.tolist(), strict=True):
        if example.labels is not None and n_out < ctc_min_frames(example.labels):
            short.append(example)
        else:
            fit.append(example)
    return fit, short


def make_batches(
    lengths: Mapping[str, int] | Sequence[tuple[str, int]],
    batch_frames: int,
    max_utts: int = 0,
    shuffle_seed: int | None = None,
) -> list[list[str]]:
    """Group length-sorted utterances so each batch pads to at most ``batch_frames`` frames.

    Padding cost is ``len(batch) * longest``; sorting keeps it close to the real frame count.
    An utterance longer than the budget goes alone. With ``shuffle_seed`` the batch *order*
    is shuffled (deterministically: the same seed gives the same order, which resume relies on).
    """
    items = list(lengths.items()) if isinstance(lengths, Mapping) else list(lengths)
    # Sort by length then id, so the grouping never depends on input order.
    items.sort(key=lambda kv: (kv[1], kv[0]))
    batches: list[list[str]] = []
    current: list[str] = []
    longest = 0
    for utt, n in items:
        new_longest = max(longest, n)
        full = max_utts > 0 and len(current) >= max_utts
        if current and (new_longest * (len(current) + 1) > batch_frames or full):
            batches.append(current)
            current, new_longest = [], n
        current.append(utt)
        longest = new_longest
    if current:
        batches.append(current)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(batches)
    return batches


def collate(
    features: FeatureSet, examples: Sequence[Example]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a batch: (feats (B, T, D), lengths (B,), targets (sum U,), target_lengths (B,)).

    Examples without labels contribute empty targets; callers leave them out of the loss.
    """
    mats = [features[e.utt_id] for e in examples]
    lengths = torch.tensor([m.shape[0] for m in mats], dtype=torch.long)
    feats = torch.nn.utils.rnn.pad_sequence(mats, batch_first=True)
    labels = [e.labels or [] for e in examples]
    targets = torch.tensor([i for seq in labels for i in seq], dtype=torch.long)
    target_lengths = torch.tensor([len(seq) for seq in labels], dtype=torch.long)
    return feats, lengths, targets, target_lengths
