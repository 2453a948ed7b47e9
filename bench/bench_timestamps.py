"""Benchmark: how close CTC token times come to true phone and word boundaries, in ms.

(a) Phones: the synth recipe's phone model (``recipes/synth/exp/phone/final.pt``) on its test
set (``recipes/synth/data/test``: stored features normalized as in training, per-voice CMVN);
the reference is ``phones.ctm``, the phone times the synthesisers reported. Two hypotheses:
forced alignment (``asr.decoding.timing.forced_align``) of the reference phone sequence, and the
greedy spans (``greedy_spans``) of the phones where the greedy output matches the reference
(difflib's matching blocks, so a recognition error drops only the phones around it).
(b) Words: the TIMIT sample (``.WAV`` read by ``asr.data.audio.load_audio``, features from the char
model's feature config, CMVN over each speaker's recordings as in training; ``.WRD`` word
boundaries in samples at 16 kHz) with the synth recipe's char model
(``recipes/synth/exp/word/final.pt``), forced-aligning the reference words (lower-case, letters
and apostrophes only, ``<space>`` between words) and comparing each word's start and end.

Times come from ``asr.decoding.timing.timed_units`` (output frame k -> k * frame_shift * skip s).
Figures per hypothesis: mean and median absolute error of starts, of ends, and of all
boundaries (starts and ends pooled), the mean signed start and end error (positive = late),
and the share of boundaries within 20 / 50 ms. ``own`` is the raw spans (a unit ends
where its own frames end); three other end conventions are printed: ``next`` (a
unit ends where the next unit starts; the last keeps its own end), ``mid`` (halfway between
its own end and the next unit's start) and ``asr``, what ``asr transcribe`` reports (halfway,
at most ``asr.decoding.timing.DEFAULT_END_EXTENSION``; the others are from the raw spans). The
models and data exist only on the machine that ran the synth recipe and holds ../shared; what
is missing is skipped with a message.

    .venv/bin/python bench/bench_timestamps.py [--phone-model recipes/synth/exp/phone/final.pt]
        [--phone-data recipes/synth/data/test] [--char-model recipes/synth/exp/word/final.pt]
        [--timit ../shared/corpora/timit-sample/TIMIT] [--threads 2]
"""

from __future__ import annotations

import argparse
import difflib
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import torch

from asr.decoding.timing import DEFAULT_END_EXTENSION, TimedUnit, extend_ends

REPO = Path(__file__).resolve().parent.parent

# (start, end) in seconds per unit, reference and hypothesis paired
Pairs = list[tuple[tuple[float, float], tuple[float, float]]]


def with_ends(units: Sequence[tuple[float, float]], convention: str) -> list[tuple[float, float]]:
    """Re-derive ends: ``own`` as given, ``next`` = next unit's start, ``mid`` = halfway, ``asr``
    = what ``asr transcribe`` reports (halfway, at most DEFAULT_END_EXTENSION)."""
    if convention == "own":
        return list(units)
    if convention == "asr":
        raw = [TimedUnit("", start, end, 1.0) for start, end in units]
        return [(u.start, u.end) for u in extend_ends(raw, DEFAULT_END_EXTENSION)]
    out = []
    for i, (start, end) in enumerate(units):
        if i + 1 < len(units):
            following = units[i + 1][0]
            end = following if convention == "next" else 0.5 * (end + following)
        out.append((start, end))
    return out


def summarize(name: str, pairs: Pairs) -> None:
    if not pairs:
        print(f"  {name}: nothing to compare")
        return
    start_err = [1000 * (hyp[0] - ref[0]) for ref, hyp in pairs]
    end_err = [1000 * (hyp[1] - ref[1]) for ref, hyp in pairs]
    starts = [abs(e) for e in start_err]
    ends = [abs(e) for e in end_err]
    both = starts + ends
    within = {ms: 100 * sum(e <= ms for e in both) / len(both) for ms in (20, 50)}
    print(
        f"  {name}: {len(pairs)} units; |error| ms mean/median: start "
        f"{statistics.fmean(starts):.1f}/{statistics.median(starts):.1f}, end "
        f"{statistics.fmean(ends):.1f}/{statistics.median(ends):.1f}, boundaries "
        f"{statistics.fmean(both):.1f}/{statistics.median(both):.1f}; signed mean start "
        f"{statistics.fmean(start_err):+.1f}, end {statistics.fmean(end_err):+.1f}; within "
        f"20 ms {within[20]:.0f}%, 50 ms {within[50]:.0f}%"
    )


def report(title: str, per_utt: list[tuple[list[tuple[float, float]], list[tuple[float, float]]]]):
    """``per_utt``: (reference times, hypothesis times) of the same units, per utterance."""
    print(title)
    for convention in ("own", "next", "mid", "asr"):
        pairs: Pairs = []
        for ref, hyp in per_utt:
            pairs.extend(zip(ref, with_ends(hyp, convention), strict=True))
        summarize(f"end = {convention:4s}", pairs)


def missing(*paths: Path) -> list[Path]:
    return [p for p in paths if not p.exists()]


# ---------------------------------------------------------------------------------------------
# (a) synth phones
# ---------------------------------------------------------------------------------------------


def read_ctm(path: Path) -> dict[str, list[tuple[str, float, float]]]:
    """utterance -> [(phone, start, end)] in time order, read by asr score's CTM reader."""
    from asr.score.formats import read

    return read(path, "ctm").times or {}


def bench_phones(model_path: Path, data_dir: Path) -> None:
    from asr.decoding.timing import forced_align, greedy_spans, timed_units
    from asr.features.dataset import FeatureSet
    from asr.nn.load import load_network
    from asr.units.tokens import TokenList

    lost = missing(model_path, data_dir / "feats.scp", data_dir / "phones.ctm")
    if lost:
        print(f"(a) phones: skipped, not found: {', '.join(map(str, lost))}")
        return
    loaded = load_network(model_path)
    tokens = TokenList(loaded.package.tokens, unit="phone")
    features = FeatureSet(data_dir, global_stats=loaded.package.cmvn_stats)
    step = float(features.config.options.get("frame_shift", 10.0)) / 1000 * loaded.model.config.skip
    reference = read_ctm(data_dir / "phones.ctm")
    forced, greedy = [], []
    matched = total = exact = 0
    for utt in features.ids:
        if utt not in reference:
            continue
        ref = reference[utt]
        feats = features[utt]
        with torch.inference_mode():
            log_probs, _ = loaded.model(feats[None], torch.tensor([feats.shape[0]]))
        log_probs = log_probs[0]
        ref_times = [(start, end) for _, start, end in ref]
        targets = tokens.encode_symbols(p for p, _, _ in ref)
        _, units = timed_units(forced_align(log_probs, targets), tokens, step, end_extension=0)
        forced.append((ref_times, [(u.start, u.end) for u in units]))
        _, units = timed_units(greedy_spans(log_probs), tokens, step, end_extension=0)
        hyp_phones = [u.text for u in units]
        ref_phones = [p for p, _, _ in ref]
        total += len(ref_phones)
        exact += hyp_phones == ref_phones
        blocks = difflib.SequenceMatcher(None, ref_phones, hyp_phones, autojunk=False)
        hyp_times = [(u.start, u.end) for u in units]
        ref_sel, hyp_sel = [], []
        for block in blocks.get_matching_blocks():
            ref_sel.extend(ref_times[block.a : block.a + block.size])
            hyp_sel.extend(range(block.b, block.b + block.size))
            matched += block.size
        greedy.append((ref_sel, hyp_times, hyp_sel))
    print(
        f"(a) synth phones: {len(forced)} utterances of {data_dir}, model {model_path} "
        f"(frame {1000 * step:.0f} ms); greedy matches the reference exactly in {exact}, "
        f"{matched} of {total} reference phones matched"
    )
    report("  forced alignment of the reference phones vs phones.ctm", forced)
    print("  greedy spans of the matched phones vs phones.ctm")
    for convention in ("own", "next", "mid", "asr"):
        pairs: Pairs = []
        for ref_sel, hyp_times, hyp_sel in greedy:
            ended = with_ends(hyp_times, convention)
            pairs.extend(zip(ref_sel, (ended[i] for i in hyp_sel), strict=True))
        summarize(f"end = {convention:4s}", pairs)


# ---------------------------------------------------------------------------------------------
# (b) TIMIT words
# ---------------------------------------------------------------------------------------------

_NOT_LETTERS = re.compile(r"[^a-z']")


def read_wrd(path: Path, rate: int) -> list[tuple[str, float, float]]:
    words = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        word = _NOT_LETTERS.sub("", parts[2].lower())
        if word:
            words.append((word, int(parts[0]) / rate, int(parts[1]) / rate))
    return words


def bench_words(model_path: Path, timit: Path) -> None:
    from asr.data.audio import load_audio
    from asr.decoding.timing import forced_align, timed_units
    from asr.features.cmvn import compute_cmvn_stats
    from asr.features.config import FeatureConfig, extract_features, normalize_features
    from asr.nn.load import load_network
    from asr.units.tokens import TokenList

    lost = missing(model_path, timit)
    if lost:
        print(f"(b) TIMIT words: skipped, not found: {', '.join(map(str, lost))}")
        return
    loaded = load_network(model_path)
    tokens = TokenList(loaded.package.tokens, unit="char")
    config = FeatureConfig.from_dict(loaded.package.feature_config)
    step = float(config.options.get("frame_shift", 10.0)) / 1000 * loaded.model.config.skip
    speakers: dict[Path, list[Path]] = defaultdict(list)
    for wav in sorted(timit.rglob("*.WAV")):
        if wav.with_suffix(".WRD").is_file():
            speakers[wav.parent].append(wav)
    if not speakers:
        print(f"(b) TIMIT words: skipped, no .WAV with a .WRD under {timit}")
        return
    per_utt = []
    skipped = 0
    for wavs in speakers.values():
        raw = {}
        for wav in wavs:
            wave, rate = load_audio(wav, config.sample_rate)
            raw[wav] = extract_features(wave, rate, config)
        # the model was trained with per-speaker CMVN: one speaker's recordings share stats
        stats = compute_cmvn_stats(list(raw.values())) if config.cmvn == "speaker" else None
        if config.cmvn == "global":
            stats = loaded.package.cmvn_stats
        for wav, feats in raw.items():
            ref = read_wrd(wav.with_suffix(".WRD"), config.sample_rate)
            feats = normalize_features(feats, config, stats).to(torch.float32)
            with torch.inference_mode():
                log_probs, _ = loaded.model(feats[None], torch.tensor([feats.shape[0]]))
            try:
                targets = tokens.encode(" ".join(word for word, _, _ in ref))
                spans = forced_align(log_probs[0], targets)
            except Exception as exc:  # an unknown symbol or too few frames: count and go on
                print(f"  {wav}: skipped ({exc})", file=sys.stderr)
                skipped += 1
                continue
            words, _ = timed_units(spans, tokens, step, end_extension=0)
            per_utt.append(([(s, e) for _, s, e in ref], [(w.start, w.end) for w in words]))
    print(
        f"(b) TIMIT words: {len(per_utt)} recordings of {len(speakers)} speakers under {timit} "
        f"({skipped} skipped), char model {model_path} (frame {1000 * step:.0f} ms)"
    )
    report("  forced alignment of the reference words vs .WRD", per_utt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--phone-model", type=Path, default=REPO / "recipes/synth/exp/phone/final.pt"
    )
    parser.add_argument("--phone-data", type=Path, default=REPO / "recipes/synth/data/test")
    parser.add_argument("--char-model", type=Path, default=REPO / "recipes/synth/exp/word/final.pt")
    parser.add_argument(
        "--timit", type=Path, default=REPO.parent / "shared/corpora/timit-sample/TIMIT"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench_phones(args.phone_model, args.phone_data)
    bench_words(args.char_model, args.timit)


if __name__ == "__main__":
    main()
