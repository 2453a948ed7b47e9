"""Benchmark: `asr score` on 100,000 utterance pairs against jiwer.process_words, and long pairs.

The corpus is generated: references of 1-25 words (mean about 10) drawn from a Zipf-distributed
vocabulary of 20,000 words, hypotheses with errors the way recognisers make them: each
utterance gets its own error rate (a gamma distribution with mean about 11%, so most utterances
are nearly clean and a few are bad), substitutions prefer a word of similar frequency rank,
deletions and insertions prefer short frequent words, and errors come in bursts.

Timed in this process, pinned to one core, alternating ours and the reference:
- ``asr.score.wer`` (sclite's weighted alignment, counts and per-utterance alignments) against
  ``jiwer.process_words`` (rapidfuzz Levenshtein) on the same strings; ratio = jiwer / ours.
- the whole command, ``asr score REF HYP`` through ``asr.cli.main``: reading two Kaldi text
  files, checking ids, scoring, printing the summary.
Then single pairs of 2,500-20,000 words, each in a fresh subprocess: time, and the peak
resident memory while scoring over the resident size just before (Linux /proc, VmHWM after
clear_refs); memory must grow with the length, not its square.

    .venv/bin/python bench/bench_score.py [--utterances 100000] [--repeats 3]
        [--long 2500 5000 10000 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def zipf_vocabulary(size: int) -> tuple[list[str], list[float]]:
    words = [f"w{rank}" for rank in range(size)]
    weights = [1.0 / (rank + 1) for rank in range(size)]
    return words, weights


def make_pairs(count: int, seed: int = 0) -> tuple[dict[str, str], dict[str, str]]:
    rng = random.Random(seed)
    words, weights = zipf_vocabulary(20_000)
    short = words[:50]  # the frequent function words deletions and insertions prefer
    refs: dict[str, str] = {}
    hyps: dict[str, str] = {}
    lengths = [rng.randint(1, 19) for _ in range(count)]
    drawn = iter(rng.choices(words, weights, k=sum(lengths)))
    for n, length in enumerate(lengths):
        ref = [next(drawn) for _ in range(length)]
        rate = min(rng.gammavariate(0.7, 0.16), 0.9)
        hyp: list[str] = []
        burst = 0
        for word in ref:
            if burst or rng.random() < rate:
                burst = burst - 1 if burst else rng.choice((0, 0, 0, 1, 2))
                kind = rng.random()
                if kind < 0.6:  # substitution by a word of similar rank
                    rank = int(word[1:])
                    hyp.append(words[min(max(rank + rng.randint(-50, 50), 0), len(words) - 1)])
                elif kind < 0.85:
                    if word not in short and rng.random() < 0.5:
                        hyp.append(word)  # deletions hit short words; keep most long ones
                else:
                    hyp.extend([word, rng.choice(short)])
            else:
                hyp.append(word)
        utt = f"spk{n % 500:03d}-utt{n:06d}"
        refs[utt], hyps[utt] = " ".join(ref), " ".join(hyp)
    return refs, hyps


def pin_to_one_core() -> str:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        return "pinned to one core"
    return "not pinned (no sched_setaffinity)"


def bench_corpus(args: argparse.Namespace) -> None:
    import jiwer

    from asr import cli, score

    refs, hyps = make_pairs(args.utterances)
    ref_list, hyp_list = list(refs.values()), [hyps[u] for u in refs]
    words = sum(len(r.split()) for r in ref_list)

    def ours() -> float:
        start = time.perf_counter()
        result = score.wer(refs, hyps)
        elapsed = time.perf_counter() - start
        ours.result = result  # type: ignore[attr-defined]
        return elapsed

    def theirs() -> float:
        start = time.perf_counter()
        output = jiwer.process_words(ref_list, hyp_list)
        elapsed = time.perf_counter() - start
        theirs.output = output  # type: ignore[attr-defined]
        return elapsed

    our_times, their_times = [], []
    for _ in range(args.repeats):
        their_times.append(theirs())
        our_times.append(ours())
    result, output = ours.result, theirs.output  # type: ignore[attr-defined]
    our_time, their_time = statistics.median(our_times), statistics.median(their_times)
    print(
        f"{len(refs)} pairs, {words} reference words; "
        f"%WER {result.wer:.2f} (sclite costs) vs jiwer {100 * output.wer:.2f} (Levenshtein)"
    )
    print(
        f"asr.score.wer: {our_time:.2f} s   jiwer.process_words: {their_time:.2f} s   "
        f"ratio (jiwer / ours): {their_time / our_time:.2f}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        ref_path, hyp_path = Path(tmp, "ref.txt"), Path(tmp, "hyp.txt")
        score.write_transcripts(ref_path, refs)
        score.write_transcripts(hyp_path, hyps)
        cli_times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()) as out:
                status = cli.main(["score", str(ref_path), str(hyp_path)])
            cli_times.append(time.perf_counter() - start)
            assert status == 0, out.getvalue()
        print(
            f"asr score REF HYP (read files + score + summary): "
            f"{statistics.median(cli_times):.2f} s   ({out.getvalue().splitlines()[0]})"
        )


# Linux keeps the peak resident size in /proc/self/status (VmHWM); writing 5 to clear_refs
# resets it to the current size, so the peak measured afterwards is the scoring's own.
_LONG_CHILD = """
import json, sys, time
from asr import score
sys.path.insert(0, {bench_dir!r})
from bench_score import make_long_pair

def status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))

ref, hyp = make_long_pair({words})
score.wer(["a b"], ["a c"])  # import everything the scorer uses before the baseline
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status_kb("VmRSS:")
start = time.perf_counter()
result = score.wer([ref], [hyp])
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "base_kb": base, "peak_kb": status_kb("VmHWM:"),
                  "errors": result.errors, "ref_words": result.ref_words}}))
"""


def make_long_pair(words: int) -> tuple[str, str]:
    """One long utterance pair: the corpus generator's errors over ``words`` reference words."""
    refs, hyps = make_pairs(words // 5 + 1, seed=1)
    ref: list[str] = []
    hyp: list[str] = []
    for utt, text in refs.items():  # whole utterances, so each error stays with its words
        if len(ref) >= words:
            break
        ref.extend(text.split())
        hyp.extend(hyps[utt].split())
    return " ".join(ref), " ".join(hyp)


def bench_long(lengths: list[int]) -> None:
    bench_dir = str(Path(__file__).resolve().parent)
    for words in lengths:
        code = _LONG_CHILD.format(bench_dir=bench_dir, words=words)
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        grown_mb = (row["peak_kb"] - row["base_kb"]) / 1024
        print(
            f"one pair of {row['ref_words']:>6} words: {row['seconds']:.3f} s, "
            f"peak memory +{grown_mb:.1f} MB while scoring "
            f"(%WER {100 * row['errors'] / row['ref_words']:.2f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long", type=int, nargs="*", default=[2_500, 5_000, 10_000, 20_000])
    args = parser.parse_args()
    print(pin_to_one_core())
    from asr.score import align

    print(f"aligner: {align.BACKEND}")
    bench_corpus(args)
    bench_long(args.long)


if __name__ == "__main__":
    main()
