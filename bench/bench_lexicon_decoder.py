"""Benchmark: lexicon + word 3-gram CTC search (flashlight-text) against pyctcdecode.

Both decoders search the same emissions: the log-posteriors of the trained synth char model
(``recipes/synth/exp/word/final.pt`` over ``recipes/synth/data/test``; the bench stops if they
are missing: run recipes/synth first). The
word 3-gram is built by KenLM's lmplz (``tools/kenlm/bin``) from the synth training transcripts
and made binary; the lexicon spells every word of the train/dev/test transcripts. Ours: beam 50,
``asr.lexicon_decoder`` with the lexicon and the LM. pyctcdecode: the same labels, the same
words as its unigram list, the same KenLM binary through the ``kenlm`` Python module, beam 50,
alpha = our LM weight and beta = our word score (both weigh natural-log LM probabilities).
Prints seconds per utterance of each (search only; the network runs once, untimed), their
ratio, each one's WER against the references, and our real-time factor (search seconds over
audio seconds = input frames * frame shift). Prints, does not assert.

    .venv/bin/python bench/bench_lexicon_decoder.py [--utts 200] [--lm-weight 1] [--word-score 0]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from asr.dataset import FeatureSet
from asr.decode import greedy_decode
from asr.inference import load_model
from asr.lexicon_decoder import DecoderOptions, LexiconDecoder
from asr.score import read_transcripts, wer

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "recipes/synth/exp/word/final.pt"
DATA = REPO / "recipes/synth/data"


def build_lm(workdir: Path) -> Path:
    """A word 3-gram of the synth training transcripts: lmplz, then build_binary."""
    bin_dir = REPO / "tools/kenlm/bin"
    text = workdir / "lm_text"
    text.write_text("".join(f"{t}\n" for t in read_transcripts(DATA / "train/text").values()))
    arpa, binary = workdir / "lm3.arpa", workdir / "lm3.bin"
    with open(text) as src, open(arpa, "w") as out:
        subprocess.run(
            [bin_dir / "lmplz", "-o", "3", "--discount_fallback", "-S", "10%"],
            stdin=src, stdout=out, stderr=subprocess.DEVNULL, check=True,
        )  # fmt: skip
    subprocess.run([bin_dir / "build_binary", arpa, binary], stdout=subprocess.DEVNULL, check=True)
    return binary


def emissions_of_model(utts: int) -> tuple[dict[str, np.ndarray], float, list[str]]:
    loaded = load_model(MODEL)
    features = FeatureSet(DATA / "test", global_stats=loaded.package.cmvn_stats)
    shift = float(features.config.options.get("frame_shift", 10.0)) / 1000.0
    out, audio = {}, 0.0
    for utt in sorted(features.num_frames)[:utts]:
        x = features[utt]
        with torch.inference_mode():
            log_probs, _ = loaded.model(x[None], torch.tensor([x.shape[0]]))
        out[utt] = log_probs[0].float().numpy()
        audio += x.shape[0] * shift
    return out, audio, loaded.package.tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utts", type=int, default=200)
    parser.add_argument("--lm-weight", type=float, default=1.0)
    parser.add_argument("--word-score", type=float, default=0.0)
    parser.add_argument("--beam", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)

    if not MODEL.is_file():
        raise SystemExit(f"{MODEL} not found: train the synth recipe first")
    print(f"emissions: trained synth char model {MODEL.relative_to(REPO)} on data/test")
    emissions, audio_seconds, symbols = emissions_of_model(args.utts)
    refs = read_transcripts(DATA / "test/text")
    refs = {u: refs[u] for u in emissions}
    words = sorted(
        {w for part in ("train", "dev", "test") for t in read_transcripts(DATA / part / "text")
         .values() for w in t.split()}
    )  # fmt: skip
    lexicon = {w: [list(w)] for w in words}

    with tempfile.TemporaryDirectory() as tmp:
        lm = build_lm(Path(tmp))
        loaded_tokens = load_model(MODEL).tokens
        options = DecoderOptions(
            beam_size=args.beam, lm_weight=args.lm_weight, word_score=args.word_score
        )
        ours = LexiconDecoder(loaded_tokens, lexicon, lm, options)

        from pyctcdecode import build_ctcdecoder

        labels = ["" if s == "<blk>" else " " if s == "<space>" else s for s in symbols]
        theirs = build_ctcdecoder(
            labels, str(lm), unigrams=words, alpha=args.lm_weight, beta=args.word_score
        )
        greedy = {
            u: loaded_tokens.decode(greedy_decode(torch.from_numpy(e)[None])[0])
            for u, e in emissions.items()
        }

        hyps_ours, hyps_theirs = {}, {}
        t_ours = t_theirs = 0.0
        for utt, e in emissions.items():  # alternate, so both see the same machine state
            start = time.perf_counter()
            hyps_ours[utt] = ours.decode(e)[0].text
            t_ours += time.perf_counter() - start
            start = time.perf_counter()
            hyps_theirs[utt] = " ".join(theirs.decode(e, beam_width=args.beam).split())
            t_theirs += time.perf_counter() - start

    n = len(emissions)
    frames = sum(e.shape[0] for e in emissions.values())
    print(f"{n} utterances, {audio_seconds:.1f} s of audio, {frames} model frames")
    print(f"LM weight {args.lm_weight:g}, word score {args.word_score:g}, beam {args.beam}")
    print(f"greedy                 WER {wer(refs, greedy).wer:6.2f}%")
    print(
        f"ours (flashlight-text) WER {wer(refs, hyps_ours).wer:6.2f}%  "
        f"{1000 * t_ours / n:8.2f} ms/utt  RTF {t_ours / audio_seconds:.4f}"
    )
    print(
        f"pyctcdecode            WER {wer(refs, hyps_theirs).wer:6.2f}%  "
        f"{1000 * t_theirs / n:8.2f} ms/utt  RTF {t_theirs / audio_seconds:.4f}"
    )
    print(f"speed-up of ours over pyctcdecode: {t_theirs / t_ours:.1f}x")


if __name__ == "__main__":
    main()
