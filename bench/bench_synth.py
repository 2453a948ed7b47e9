"""Synthesis speed of the offline corpus, as a multiple of real time on one core.

Two measurements, both in this process with one worker (so "per core"):

1. Per engine (piper too, when installed): every voice of the engine says the same grammar
   sentences at random rate and pitch, after one untimed sentence (piper's network loads once
   per worker process), the audio is speed-perturbed as training utterances are and written
   as FLAC (what a corpus worker does); seconds of audio made per second of wall time.
2. The whole corpus: ``prepare_synth`` with ``jobs=1`` on a small corpus (every split, every
   engine in its share, planning and data-directory writing included).

The issue's target is 50x real time per core; the ratio to it is printed.

    .venv/bin/python bench/bench_synth.py [--sentences 3] [--hours 0.05]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from asr.corpora.synthetic import corpus as synth  # noqa: E402
from asr.corpora.synthetic.prompts import generate_prompts  # noqa: E402
from asr.corpora.synthetic.voice import Prosody  # noqa: E402
from asr.data.audio import write_flac  # noqa: E402
from asr.data.speed_perturb import perturb_speed  # noqa: E402

TARGET = 50.0


def engine_speed(engine: str, sentences: list[str], out_dir: Path) -> tuple[float, float, int]:
    """(audio seconds, wall seconds, utterances) for every voice of ``engine``."""
    module = synth.engine_module(engine)
    rng = random.Random(0)
    items = []
    for voice in module.voices():
        ranges = module.prosody_range(voice)
        for text in sentences:
            prosody = Prosody(rng.uniform(*ranges["rate"]), rng.uniform(*ranges["pitch"]))
            items.append((text, voice, prosody))
    # untimed: a corpus worker loads piper's network (about 2 s) once per process, not per batch
    module.synthesize(sentences[0], module.voices()[0])
    start = time.perf_counter()
    audio_seconds = 0.0
    if hasattr(module, "synthesize_batch"):
        # as the corpus does it: one batch per voice
        results = []
        for voice in module.voices():
            results += module.synthesize_batch([i for i in items if i[1] == voice])
    else:
        results = [module.synthesize(*item) for item in items]
    for n, result in enumerate(results):
        audio = perturb_speed(result.audio, result.sample_rate, rng.uniform(0.9, 1.1))
        write_flac(out_dir / f"{engine}-{n}.flac", audio, result.sample_rate)
        audio_seconds += len(audio) / result.sample_rate
    return audio_seconds, time.perf_counter() - start, len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=3, help="sentences per voice")
    parser.add_argument("--hours", type=float, default=0.05, help="training hours of the corpus")
    args = parser.parse_args()

    usable, missing = synth.available_engines(synth.ENGINE_MODULES)
    for engine, packages in missing.items():
        print(f"{engine}: not installed ({packages}), not measured")
    sentences = generate_prompts(args.sentences, seed=0)
    print(f"{'engine':10s} {'utts':>5s} {'audio s':>8s} {'wall s':>7s} {'x real time':>12s}")
    with tempfile.TemporaryDirectory() as tmp:
        for engine in usable:
            audio, wall, count = engine_speed(engine, sentences, Path(tmp))
            print(f"{engine:10s} {count:5d} {audio:8.1f} {wall:7.2f} {audio / wall:11.1f}x")
        config = synth.SynthConfig(hours=args.hours, dev_utts=40, test_utts=40)
        start = time.perf_counter()
        report = synth.prepare_synth(Path(tmp) / "corpus", config, jobs=1, progress=False)
        wall = time.perf_counter() - start
    audio = 3600.0 * sum(report.hours.values())
    speed = audio / wall
    print(
        f"corpus: {sum(report.utterances.values())} utterances, {audio:.0f} s of audio in "
        f"{wall:.1f} s with 1 process: {speed:.1f}x real time per core "
        f"({speed / TARGET:.2f} x the 50x target)"
    )


if __name__ == "__main__":
    main()
