"""Benchmark: do the CTC spikes of a TIMIT phone model land inside the reference phone segments?

A BLSTM-CTC model's output is peaky: each phone is emitted on one or two frames with blanks
between. This measures where that spike sits relative to the phone's hand-labelled segment in
TIMIT (``phones.ctm`` of a data directory written by ``asr prepare timit``: one line per
``text`` token, ``utt 1 start dur phone``, 48-phone set, from the ``.PHN`` sample times).

For each utterance the model's log-probs (stored features normalized as in training, with the
package's CMVN statistics where the model uses global CMVN) give two hypotheses:

* greedy: ``asr.decoding.timing.greedy_spans``; greedy phones are matched to the reference phones by
  difflib's matching blocks (so a recognition error drops only the phones around it), and only
  matched phones are scored;
* forced: ``asr.decoding.timing.forced_align`` of the reference phone sequence (every phone scored).

A phone's **spike** is the output frame of its span where the posterior of its token is
highest, stamped at the frame's centre, ``(frame + 0.5) * frame_seconds`` (``frame_seconds`` =
feature frame shift * model skip). Figures: the share of spikes inside their reference segment
``[start, end)``; the mean signed offset of the spike from the segment start and from the
segment centre (ms, positive = spike later), with their medians; the mean and median absolute
offset from the centre; and the share of spikes before the segment and after it. One row per
data directory (default: the test speakers and the training speakers). What is missing is
skipped with a message.

    .venv/bin/python bench/bench_timit_spikes.py [--model recipes/timit/exp/blstm/final.pt]
        [--data recipes/timit/data/test recipes/timit/data/train] [--threads 2]
"""

from __future__ import annotations

import argparse
import difflib
import statistics
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent

# (reference start, reference end, spike time) in seconds, per scored phone
Hits = list[tuple[float, float, float]]


def read_ctm(path: Path) -> dict[str, list[tuple[str, float, float]]]:
    """utterance -> [(phone, start, end)] in time order, read by asr score's CTM reader."""
    from asr.score.formats import read

    return read(path, "ctm").times or {}


def spikes(spans, log_probs: torch.Tensor, step: float) -> list[float]:
    """Time (s) of each span's frame with the highest posterior of its token."""
    times = []
    for span in spans:
        column = log_probs[span.start : span.end, span.token]
        frame = span.start + int(torch.argmax(column))
        times.append((frame + 0.5) * step)
    return times


def summarize(name: str, hits: Hits) -> None:
    if not hits:
        print(f"  {name}: nothing to compare")
        return
    inside = sum(start <= t < end for start, end, t in hits)
    before = sum(t < start for start, _, t in hits)
    after = sum(t >= end for _, end, t in hits)
    from_start = [1000 * (t - start) for start, _, t in hits]
    from_centre = [1000 * (t - 0.5 * (start + end)) for start, end, t in hits]
    absolute = [abs(x) for x in from_centre]
    n = len(hits)
    print(
        f"  {name}: {n} phones; spike inside segment {100 * inside / n:.1f}% "
        f"(before {100 * before / n:.1f}%, after {100 * after / n:.1f}%); offset ms mean/median "
        f"from start {statistics.fmean(from_start):+.1f}/{statistics.median(from_start):+.1f}, "
        f"from centre {statistics.fmean(from_centre):+.1f}/{statistics.median(from_centre):+.1f}"
        f"; |offset from centre| mean/median "
        f"{statistics.fmean(absolute):.1f}/{statistics.median(absolute):.1f}"
    )


def bench(model_path: Path, data_dir: Path, loaded) -> None:
    """One row: ``loaded`` is ``asr.nn.load.load_network(model_path)``."""
    from asr.decoding.timing import forced_align, greedy_spans
    from asr.features.dataset import FeatureSet
    from asr.units.tokens import TokenList

    needed = (model_path, data_dir / "feats.scp", data_dir / "phones.ctm")
    lost = [p for p in needed if not p.exists()]
    if lost:
        print(f"{data_dir}: skipped, not found: {', '.join(map(str, lost))}")
        return
    tokens = TokenList(loaded.package.tokens, unit="phone")
    features = FeatureSet(data_dir, global_stats=loaded.package.cmvn_stats)
    shift = float(features.config.options.get("frame_shift", 10.0))
    step = shift / 1000 * loaded.model.config.skip
    reference = read_ctm(data_dir / "phones.ctm")
    forced: Hits = []
    greedy: Hits = []
    utts = matched = total = hyp_total = failed = 0
    for utt in features.ids:
        if utt not in reference:
            continue
        ref = reference[utt]
        feats = features[utt]
        with torch.inference_mode():
            log_probs, _ = loaded.model(feats[None], torch.tensor([feats.shape[0]]))
        log_probs = log_probs[0].float()
        utts += 1
        ref_phones = [p for p, _, _ in ref]
        total += len(ref_phones)
        try:
            spans = forced_align(log_probs, tokens.encode_symbols(ref_phones))
        except ValueError:  # too few frames for the reference
            failed += 1
        else:
            times = spikes(spans, log_probs, step)
            forced.extend((s, e, t) for (_, s, e), t in zip(ref, times, strict=True))
        spans = greedy_spans(log_probs)
        hyp_phones = tokens.decode_symbols(span.token for span in spans)
        hyp_total += len(hyp_phones)
        times = spikes(spans, log_probs, step)
        blocks = difflib.SequenceMatcher(None, ref_phones, hyp_phones, autojunk=False)
        for block in blocks.get_matching_blocks():
            for i in range(block.size):
                _, start, end = ref[block.a + i]
                greedy.append((start, end, times[block.b + i]))
            matched += block.size
    print(
        f"{data_dir}: {utts} utterances, model {model_path} (frame {1000 * step:.0f} ms); "
        f"greedy output {hyp_total} phones, {matched} of {total} reference phones matched "
        f"({100 * matched / max(total, 1):.1f}%)"
        + (f"; forced alignment failed on {failed}" if failed else "")
    )
    summarize("greedy (matched)", greedy)
    summarize("forced          ", forced)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "recipes/timit/exp/blstm/final.pt")
    parser.add_argument(
        "--data",
        type=Path,
        nargs="+",
        default=[REPO / "recipes/timit/data/test", REPO / "recipes/timit/data/train"],
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.model.exists():
        print(f"skipped, model not found: {args.model}")
        return
    from asr.nn.load import load_network

    loaded = load_network(args.model)
    for data_dir in args.data:
        bench(args.model, data_dir, loaded)


if __name__ == "__main__":
    main()
