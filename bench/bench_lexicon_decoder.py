"""Benchmark: lexicon + word 3-gram CTC search (flashlight-text) against pyctcdecode.

Both decoders search the same emissions: the log-posteriors of a trained character model over
a test set. By default the large-vocabulary task, recipes/synth_books (its char model, its
lexicon of every word of the LM text, its KenLM 3-gram binary, and the LM weight and word score
tuned on its dev set); with ``--task synth`` (or when synth_books has not been run) the small
grammar task of recipes/synth, with a 3-gram of its training transcripts built here by lmplz.

Two pairs at beam 50, each with matched pruning. Loose: ours at the recipe's settings (beam
threshold 25, every token tried) against pyctcdecode with beam_prune_logp -25 and no token
pruning. Tight: ours with threshold 10 and the 5 best tokens per frame against pyctcdecode's
defaults (beam_prune_logp -10, token_min_logp -5). pyctcdecode gets the same labels, the
lexicon's words as its unigram list, the same KenLM binary through the ``kenlm`` Python
module, alpha = our LM weight and beta = our word score (both weigh natural-log LM
probabilities). Prints milliseconds per utterance (search only; the network runs once, timed
separately), each one's WER, the speed ratio of each pair, and real-time factors (search, and
network + search, over audio seconds = input frames x frame shift). Prints, does not assert.

    .venv/bin/python bench/bench_lexicon_decoder.py [--task books|synth] [--utts 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from asr.decoding.greedy import greedy_decode
from asr.decoding.lexicon_beam import DecoderOptions, LexiconDecoder
from asr.features.dataset import FeatureSet
from asr.nn.load import load_network
from asr.score import read_transcripts, wer
from asr.units.lexicon import read_lexicon

REPO = Path(__file__).resolve().parent.parent
BOOKS = REPO / "recipes/synth_books"
SYNTH = REPO / "recipes/synth"


def synth_lm(workdir: Path) -> Path:
    """A word 3-gram of the synth training transcripts: lmplz, then build_binary."""
    bin_dir = REPO / "tools/kenlm/bin"
    text = workdir / "lm_text"
    train = read_transcripts(SYNTH / "data/train/text").values()
    text.write_text("".join(f"{t}\n" for t in train))
    arpa, binary = workdir / "lm3.arpa", workdir / "lm3.bin"
    with open(text) as src, open(arpa, "w") as out:
        subprocess.run(
            [bin_dir / "lmplz", "-o", "3", "--discount_fallback", "-S", "10%"],
            stdin=src, stdout=out, stderr=subprocess.DEVNULL, check=True,
        )  # fmt: skip
    subprocess.run([bin_dir / "build_binary", arpa, binary], stdout=subprocess.DEVNULL, check=True)
    return binary


def emissions_of_model(
    model: Path, data: Path, utts: int
) -> tuple[dict[str, np.ndarray], float, float]:
    """Log-posteriors of the first ``utts`` utterances, the audio seconds, the network seconds."""
    loaded = load_network(model)
    features = FeatureSet(data, global_stats=loaded.package.cmvn_stats)
    shift = float(features.config.options.get("frame_shift", 10.0)) / 1000.0
    out, audio, network = {}, 0.0, 0.0
    for utt in sorted(features.num_frames)[:utts]:
        x = features[utt]
        start = time.perf_counter()
        with torch.inference_mode():
            log_probs, _ = loaded.model(x[None], torch.tensor([x.shape[0]]))
        network += time.perf_counter() - start
        out[utt] = log_probs[0].float().numpy()
        audio += x.shape[0] * shift
    return out, audio, network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("books", "synth"), default="books")
    parser.add_argument("--utts", type=int, default=200)
    parser.add_argument("--beam", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)

    task = args.task
    if task == "books" and not (BOOKS / "exp/char/final.pt").is_file():
        print(f"{BOOKS / 'exp/char/final.pt'} not found: falling back to --task synth")
        task = "synth"
    root = BOOKS if task == "books" else SYNTH
    model = root / ("exp/char/final.pt" if task == "books" else "exp/word/final.pt")
    if not model.is_file():
        raise SystemExit(f"{model} not found: run recipes/{root.name} first")
    tmp = tempfile.TemporaryDirectory()
    if task == "books":
        lexicon = read_lexicon(root / "data/local/dict_char/lexicon.txt")
        lm = root / "data/local/lm/3gram.bin"
        best = root / "exp/char/decode_dev_lex3g/best.json"
        tuned = json.loads(best.read_text()) if best.is_file() else {}
        lm_weight, word_score = tuned.get("lm_weight", 1.0), tuned.get("word_score", 0.0)
    else:
        words = {w for part in ("train", "dev", "test")
                 for t in read_transcripts(root / "data" / part / "text").values()
                 for w in t.split()}  # fmt: skip
        lexicon = {w: [tuple(w)] for w in sorted(words)}
        lm = synth_lm(Path(tmp.name))
        lm_weight, word_score = 1.0, 0.0

    print(f"task {task}: {model.relative_to(REPO)} on data/test, {len(lexicon)} lexicon words")
    emissions, audio_seconds, network_seconds = emissions_of_model(
        model, root / "data/test", args.utts
    )
    refs = read_transcripts(root / "data/test/text")
    refs = {u: refs[u] for u in emissions}
    tokens = load_network(model).tokens
    greedy = {
        u: tokens.decode(greedy_decode(torch.from_numpy(e)[None])[0]) for u, e in emissions.items()
    }

    settings = {
        "ours, loose (threshold 25)": DecoderOptions(
            beam_size=args.beam, lm_weight=lm_weight, word_score=word_score
        ),
        "ours, tight (threshold 10, 5 tok)": DecoderOptions(
            beam_size=args.beam,
            beam_threshold=10,
            beam_size_token=5,
            lm_weight=lm_weight,
            word_score=word_score,
        ),
    }
    first = LexiconDecoder(tokens, lexicon, lm, next(iter(settings.values())))
    decoders = {name: first.with_options(options) for name, options in settings.items()}

    from pyctcdecode import build_ctcdecoder

    labels = ["" if s == "<blk>" else " " if s == "<space>" else s for s in tokens.symbols]
    theirs = build_ctcdecoder(
        labels, str(lm), unigrams=list(lexicon), alpha=lm_weight, beta=word_score
    )
    pruning = {  # beam_prune_logp, token_min_logp
        "pyctcdecode, loose (-25, none)": (-25.0, -1e9),
        "pyctcdecode, tight (defaults)": (-10.0, -5.0),
    }
    pairs = dict(zip(decoders, pruning, strict=True))

    hyps = {name: {} for name in [*decoders, *pruning]}
    seconds = dict.fromkeys(hyps, 0.0)
    for utt, e in emissions.items():  # alternate, so all see the same machine state
        for name, decoder in decoders.items():
            start = time.perf_counter()
            hyps[name][utt] = decoder.decode(e)[0].text
            seconds[name] += time.perf_counter() - start
        for name, (beam_prune, token_min) in pruning.items():
            start = time.perf_counter()
            text = theirs.decode(
                e, beam_width=args.beam, beam_prune_logp=beam_prune, token_min_logp=token_min
            )
            hyps[name][utt] = " ".join(text.split())
            seconds[name] += time.perf_counter() - start
    tmp.cleanup()

    n = len(emissions)
    frames = sum(e.shape[0] for e in emissions.values())
    print(f"{n} utterances, {audio_seconds:.1f} s of audio, {frames} model frames")
    print(f"LM weight {lm_weight:g}, word score {word_score:g}, beam {args.beam}")
    print(
        f"{'greedy':32s} WER {wer(refs, greedy).wer:6.2f}%  network RTF "
        f"{network_seconds / audio_seconds:.4f}"
    )
    for name in hyps:
        print(
            f"{name:32s} WER {wer(refs, hyps[name]).wer:6.2f}%  {1000 * seconds[name] / n:8.2f} "
            f"ms/utt  search RTF {seconds[name] / audio_seconds:.4f}  with the network "
            f"{(seconds[name] + network_seconds) / audio_seconds:.4f}"
        )
    for ours, theirs_name in pairs.items():
        print(f"speed-up of {ours} over {theirs_name}: {seconds[theirs_name] / seconds[ours]:.1f}x")


if __name__ == "__main__":
    main()
