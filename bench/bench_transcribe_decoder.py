"""Benchmark: transcription with the package's whole decoder, its precision and backends, long
audio, and online decoding's word latency.

Needs the synth recipe's outputs (``make demo``; add ``--online true`` for the online section):
its word model packaged with lexicon + 3-gram (``recipes/synth/exp/word/model.pt``), its test set
(``recipes/synth/data/test``: unseen voices, FLAC files and references) and, for latency, the
forward-only word model (``recipes/synth/exp/word_online/final.pt``). Prints one row per
configuration, measured one after another in this process with ``--threads`` torch threads:

0. **The network alone** (an untrained 4x320 BLSTM, stack 3) in fp32 and under bf16 autocast at
   four batch shapes, where the CPU has native bf16 (``--network-only``: just this).
1. **Decoders, precision, backends** on the test files: greedy and lexicon + 3-gram (beam and
   weights as packaged), torch fp32, torch bf16 (where the CPU has it natively), onnxruntime
   (fp32). RTF = wall seconds of ``Recognizer.transcribe_many`` / audio seconds; WER against
   the references. With ``--untrained``, the same for an untrained 4x320 BLSTM (stack 3) with
   the package's lexicon and LM: the network of the RTF target, whose flat posteriors keep the
   search's beam full (a worst case for the search).
2. **Long audio**: the test files joined with pauses into one ``--long-minutes`` FLAC,
   transcribed with lexicon + 3-gram in fp32 in a fresh process: RTF against the short files'
   RTF of the same configuration, and peak resident memory (``VmHWM``).
3. **Online**: the forward-only model decodes ``--online-files`` test recordings fed in 100 ms
   chunks at real-time pace on one thread. A word's latency is the wall time from the moment
   its audio ended to the moment it was output. Its audio's end is the end of the word in a
   forced alignment of the reference transcript by the bidirectional word model (whose word
   times are within about 24 ms of the synthesisers' own: bench/bench_timestamps.py). Also the
   RTF of the online decoding (compute time / audio time) on one thread.

    .venv/bin/python bench/bench_transcribe_decoder.py [--threads 2] [--untrained]
        [--no-long] [--long-minutes 60] [--no-online] [--online-files 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch
from bench_transcribe import long_audio as run_long
from bench_transcribe import make_long

import asr
from asr.data.audio import load_audio
from asr.decoding.timing import forced_align, timed_units
from asr.features.config import extract_features
from asr.nn.load import load_network
from asr.nn.model import AcousticModel, ModelConfig
from asr.nn.package import ModelPackage, load_package, save_package
from asr.nn.precision import autocast, cpu_supports_bf16
from asr.score import wer
from asr.transcribe.online import OnlineRecognizer

ROOT = Path(__file__).resolve().parent.parent / "recipes" / "synth"


def read_table(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        out[key] = value.strip()
    return out


def run_rows(rows, files, refs, by_path, audio):
    """Each row: (name, package, load_model options); prints RTF and WER."""
    results = {}
    for name, package, options, score in rows:
        recognizer = asr.load_model(package, **options)
        list(recognizer.transcribe_many(files[:4]))  # warm-up
        begin = time.perf_counter()
        hyps = {}
        for path, result in recognizer.transcribe_many(files):
            hyps[by_path[str(path)]] = result.text
        seconds = time.perf_counter() - begin
        rate = f"{wer(refs, hyps).wer:6.2f}" if score else "     -"
        print(
            f"  {name:58s} RTF {seconds / audio:.4f} ({seconds:6.1f} s)  %WER {rate}  "
            f"[{recognizer.search.description}; {recognizer.backend} {recognizer.precision}]",
            flush=True,
        )
        results[name] = seconds / audio
    return results


def untrained_package(model: Path, out: Path) -> Path:
    """An untrained 4x320 BLSTM, stack 3, with the package's features, tokens, lexicon, LM."""
    source = load_package(model)
    torch.manual_seed(0)
    config = ModelConfig(
        input_dim=source.model_config["input_dim"],
        num_tokens=len(source.tokens),
        num_layers=4,
        hidden_size=320,
        stack=3,
        skip=3,
    )
    save_package(
        ModelPackage(
            state_dict=AcousticModel(config).state_dict(),
            model_config=config.to_dict(),
            tokens=source.tokens,
            feature_config=source.feature_config,
            cmvn_stats=source.cmvn_stats,
            extra={
                k: v for k, v in source.extra.items() if k in ("unit", "lexicon", "lm", "decoder")
            },
        ),
        out,
    )
    return out


def long_audio(model: Path, files: list[str], minutes: float, threads: int, short_rtf: float):
    """The test files joined with pauses into one FLAC, transcribed in a fresh process in fp32
    (bench_transcribe.py's long-audio run, here with the package's lexicon + 3-gram)."""
    with tempfile.TemporaryDirectory(prefix="bench-long-") as tmp:
        flac = make_long(Path(tmp) / "long.flac", [Path(f) for f in files], minutes)
        result = run_long(model, flac, threads)
    rtf = result["seconds"] / result["duration"]
    print(
        f"  {minutes:g}-minute FLAC, lexicon + 3-gram, torch fp32: {result['seconds']:.1f} s, "
        f"RTF {rtf:.4f} = {rtf / short_rtf:.2f} x the short files'; peak memory "
        f"{result['peak_mb']:.0f} MB ({result['loaded_mb']:.0f} MB after loading); "
        f"{result['words']} words"
    )


def reference_word_ends(recognizer, path: str, text: str) -> list[float]:
    """Word ends of ``text`` in ``path`` by forced alignment with the bidirectional model."""
    _, wave = recognizer.read(path)
    raw = extract_features(wave, recognizer.sample_rate, recognizer.feature_config)
    feats = recognizer._normalize(raw, recognizer._cmvn_stats([raw]))
    log_probs, lengths = recognizer._network([feats])
    targets = recognizer.tokens.encode(text)
    spans = forced_align(log_probs[0], targets, length=int(lengths[0]))
    words, _ = timed_units(spans, recognizer.tokens, recognizer.frame_seconds)
    return [w.end for w in words]


def online_latency(online_model: Path, word_model: Path, files, texts, chunk_ms: float) -> None:
    torch.set_num_threads(1)
    recognizer = OnlineRecognizer(load_network(online_model), str(online_model), "fp32")
    rate = recognizer.sample_rate
    block = int(chunk_ms / 1000 * rate)
    latencies, compute, audio, matched, total = [], 0.0, 0.0, 0, 0
    aligner = asr.load_model(word_model, use_lm=False, precision="fp32")
    for path, text in zip(files, texts, strict=True):
        ends = reference_word_ends(aligner, path, text)
        torch.set_num_threads(1)
        wave, _ = load_audio(path, rate)
        out: list[tuple[str, float]] = []  # (word, wall seconds after the stream started)
        start = time.perf_counter()
        for fed in range(0, len(wave), block):
            chunk = wave[fed : fed + block]
            arrival = start + (fed + len(chunk)) / rate
            delay = arrival - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # the audio arrives in real time
            begin = time.perf_counter()
            words = recognizer.accept(chunk)
            now = time.perf_counter()
            compute += now - begin
            out += [(w.text, now - start) for w in words]
        begin = time.perf_counter()
        last, _ = recognizer.finish()
        compute += time.perf_counter() - begin
        audio += len(wave) / rate
        reference = text.split()
        total += len(reference) - 1
        # words output before the end of the stream, in order, that match the reference word
        # at their position (the last word is only final at the end of the stream)
        for k, (word, when) in enumerate(out):
            if k < len(reference) - 1 and word == reference[k]:
                latencies.append(when - ends[k])
                matched += 1
    latencies.sort()
    median = statistics.median(latencies) * 1000
    p90 = latencies[int(0.9 * len(latencies))] * 1000
    print(
        f"  online, {chunk_ms:g} ms chunks, 1 thread: {matched} of {total} non-final words "
        f"output as themselves before the stream ended; latency median {median:.0f} ms, 90th "
        f"percentile {p90:.0f} ms; RTF {compute / audio:.4f} ({len(files)} recordings, "
        f"{audio:.0f} s)"
    )


def network_ratio(threads: int) -> None:
    """The untrained 4x320 network alone, fp32 against bf16 autocast, at a few batch shapes
    (input frames; stack 3), 3 passes each after one warm-up."""
    if not cpu_supports_bf16():
        print("network alone: no native bf16 on this CPU")
        return
    torch.set_num_threads(threads)
    config = ModelConfig(
        input_dim=120, num_tokens=29, num_layers=4, hidden_size=320, stack=3, skip=3
    )
    model = AcousticModel(config).eval()
    cpu = torch.device("cpu")
    for batch, frames in ((16, 300), (16, 1000), (64, 500), (8, 3000)):
        feats, lengths = torch.randn(batch, frames, 120), torch.full((batch,), frames)
        seconds = {}
        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            with torch.inference_mode(), autocast(cpu, dtype):
                model(feats, lengths)
                begin = time.perf_counter()
                for _ in range(3):
                    model(feats, lengths)
                seconds[name] = (time.perf_counter() - begin) / 3
        print(
            f"  network alone, batch {batch} x {frames} frames: fp32 {seconds['fp32']:.3f} s, "
            f"bf16 {seconds['bf16']:.3f} s: {seconds['fp32'] / seconds['bf16']:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "exp" / "word" / "model.pt")
    parser.add_argument("--bidirectional", type=Path, default=ROOT / "exp" / "word" / "final.pt")
    online_model = ROOT / "exp" / "word_online" / "final.pt"
    parser.add_argument("--online-model", type=Path, default=online_model)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--untrained", action="store_true")
    parser.add_argument("--long", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--online", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--online-files", type=int, default=30)
    parser.add_argument("--chunk-ms", type=float, default=100.0)
    parser.add_argument("--network-only", action="store_true", help="only the network rows")
    args = parser.parse_args()
    if args.network_only:
        network_ratio(args.threads)
        return
    network_ratio(args.threads)
    if not args.model.is_file() or not (args.data / "wav.scp").is_file():
        print(f"skipped: {args.model} or {args.data} missing (run make demo first)")
        return
    torch.set_num_threads(args.threads)
    scp = read_table(args.data / "wav.scp")
    refs = read_table(args.data / "text")
    by_path = {path: utt for utt, path in scp.items()}
    files = [scp[u] for u in sorted(scp)]
    audio = sum(sf.info(f).duration for f in files)
    native = cpu_supports_bf16()
    print(
        f"{len(files)} test recordings, {audio:.0f} s; {args.threads} threads; CPU bf16 "
        f"{'native' if native else 'not native'}; {args.model}"
    )
    common = {"threads": args.threads}
    fp32, bf16 = {"precision": "fp32"}, {"precision": "bf16"}
    onnx = {"backend": "onnxruntime"}
    greedy = {"use_lm": False}
    configs = [("greedy, torch fp32", {**greedy, **fp32}), ("lexicon + 3-gram, torch fp32", fp32)]
    if native:
        configs += [
            ("greedy, torch bf16", {**greedy, **bf16}),
            ("lexicon + 3-gram, torch bf16", bf16),
        ]
    configs += [
        ("greedy, onnxruntime fp32", {**greedy, **onnx}),
        ("lexicon + 3-gram, onnxruntime fp32", onnx),
    ]
    rows = [(f"trained: {name}", args.model, {**common, **o}, True) for name, o in configs]
    with tempfile.TemporaryDirectory(prefix="bench-dec-") as tmp:
        if args.untrained:
            big = untrained_package(args.model, Path(tmp) / "big.pt")
            rows += [
                (f"untrained 4x320: {name}", big, {**common, **o}, False)
                for name, o in configs
                if "onnxruntime" not in name
            ]
        rtf = run_rows(rows, files, refs, by_path, audio)
    if args.long:
        short = rtf["trained: lexicon + 3-gram, torch fp32"]
        long_audio(args.model, files, args.long_minutes, args.threads, short)
    if args.online:
        if not args.online_model.is_file():
            print(f"online: skipped, {args.online_model} missing (run.sh --online true)")
            return
        # spread over the voices (the ids start with the voice)
        step = max(1, len(scp) // args.online_files)
        chosen = sorted(scp)[::step][: args.online_files]
        online_latency(
            args.online_model,
            args.bidirectional,
            [scp[u] for u in chosen],
            [refs[u] for u in chosen],
            args.chunk_ms,
        )


if __name__ == "__main__":
    main()
