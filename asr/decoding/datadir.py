"""Run a trained model package over a feature data directory and write hypotheses.

This is the ``decode`` arrow of the data flow: ``feats.scp`` (normalized exactly as in training)
goes through the network in length-sorted batches, and greedy CTC decoding (or, with
``beam_size`` > 1, CTC prefix beam search) turns the log-posteriors into a Kaldi ``text`` file of
hypotheses.

With a lexicon and/or an n-gram LM (:mod:`asr.decoding.lexicon_beam`, flashlight-text + KenLM) the
network still runs once per utterance, and its log-posteriors are searched once for every
(LM weight, word score) pair of a grid; with several pairs each gets its own directory, is
scored against ``DATA_DIR/text`` when there is one, and the best pair's hypotheses become
``OUT/text`` (Kaldi's ``local/score.sh`` + ``best_wer`` way of tuning on dev).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from asr.decoding.greedy import BLANK, greedy_decode
from asr.decoding.lexicon_beam import DecoderOptions, LexiconDecoder
from asr.decoding.prefix_beam import beam_search_batch
from asr.decoding.vtln import SpeakerWarps, choose_warps, warp_line
from asr.errors import AsrError, ConfigError, DataDirError
from asr.features.dataset import FeatureSet, make_batches
from asr.fileio import atomic_write
from asr.lm.arpa import arpa_unigrams
from asr.lm.bigram import BigramLM
from asr.lm.kenlm import is_binary_lm
from asr.nn.load import LoadedNetwork, load_network
from asr.score import read_transcripts, wer, write_transcripts
from asr.units.lexicon import read_lexicon
from asr.units.tokens import join_pieces

log = logging.getLogger(__name__)


@dataclass
class DecodeSummary:
    """What a decoding run did, for the log line at its end."""

    decoded: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    # lexicon/LM search only: the grid point written to OUT/text and its WER (None: not scored)
    best: dict | None = None

    @property
    def real_time_factor(self) -> float:
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0


def _check_features_match(loaded: LoadedNetwork, features: FeatureSet, model_path: Path) -> None:
    trained = loaded.package.feature_config
    if trained and trained != features.config_dict:
        changed = sorted(
            key
            for key in set(trained) | set(features.config_dict)
            if trained.get(key) != features.config_dict.get(key)
        )
        raise DataDirError(
            f"{features.data_dir / 'feats.yaml'}: features differ from those {model_path} was "
            f"trained on (in {', '.join(changed)}); recompute them with the model's feature config"
        )


def grid_name(lm_weight: float, word_score: float) -> str:
    """The directory of one grid point, e.g. ``lmwt_0.5_wip_-1``."""
    return f"lmwt_{lm_weight:g}_wip_{word_score:g}"


def read_best(decode_dir: str | os.PathLike) -> tuple[float, float]:
    """(lm_weight, word_score) tuned by an earlier grid decode: ``DECODE_DIR/best.json``."""
    tuning = read_tuning(decode_dir)
    return tuning["lm_weight"], tuning["word_score"]


def read_tuning(decode_dir: str | os.PathLike) -> dict[str, float]:
    """``DECODE_DIR/best.json`` of a grid decode: ``lm_weight``, ``word_score`` and, where it
    was scored, ``wer`` (the best point's dev WER)."""
    path = Path(decode_dir) / "best.json"
    try:
        best = json.loads(path.read_text(encoding="utf-8"))
        tuning = {"lm_weight": float(best["lm_weight"]), "word_score": float(best["word_score"])}
        if best.get("wer") is not None:
            tuning["wer"] = float(best["wer"])
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (decode dev with a weight grid first)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a tuning result ({type(exc).__name__}: {exc})") from None
    if not all(math.isfinite(v) for v in tuning.values()):
        raise ConfigError(f"{path}: not a tuning result (a value is not finite)")
    return tuning


def decode_datadir(
    model_path: str | os.PathLike,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    batch_frames: int = 20000,
    device: str = "cpu",
    progress: bool = True,
    beam_size: int | None = None,
    lm: BigramLM | str | os.PathLike | None = None,
    lm_weight: float = 0.5,
    insertion_bonus: float = 0.0,
    lexicon: Mapping[str, Sequence[Sequence[str]]] | str | os.PathLike | None = None,
    word_lm: str | os.PathLike | None = None,
    token_lm: str | os.PathLike | None = None,
    lm_weights: Sequence[float] = (1.0,),
    word_scores: Sequence[float] = (0.0,),
    beam_threshold: float = 25.0,
    nbest: int = 1,
    unk_word: str = "<unk>",
    beam_size_token: int | None = None,
    ref_text: str | os.PathLike | None = None,
    vtln: Sequence[float] | None = None,
) -> DecodeSummary:
    """Decode every utterance of ``data_dir`` into ``out_dir/text``.

    ``beam_size`` 1 (or 0; the default None means 1) is greedy best-path decoding; larger values
    run CTC prefix beam search (:mod:`asr.decoding.prefix_beam`) with that many prefixes kept
    per frame.

    ``lm`` (beam search only): a token bigram model for shallow fusion, as a :class:`BigramLM`
    over the model's tokens, a saved one (a ``.json`` path), or a Kaldi text file to train one
    from (add-k smoothing); ``lm_weight`` and ``insertion_bonus`` as in
    :func:`asr.decoding.prefix_beam.prefix_beam_search`.

    ``lexicon`` (a mapping or a ``lexicon.txt``) and/or ``word_lm`` (ARPA or KenLM binary), or
    ``token_lm`` alone (an LM over the model's tokens, lexicon-free): flashlight's beam search
    (:class:`asr.decoding.lexicon_beam.LexiconDecoder`; ``beam_size`` default 50, ``beam_threshold``
    and ``beam_size_token``, the tokens tried per frame, as there) for every pair of
    ``lm_weights`` x ``word_scores``. One pair writes ``out_dir/text``; several write
    ``out_dir/lmwt_W_wip_P/text`` each and, when ``data_dir/text`` exists, ``tuning.tsv``
    (the WER of each), ``best.json`` and the best pair's hypotheses as ``out_dir/text``. The
    grid is scored on words: ``ref_text`` when given, else ``data_dir/text`` (a BPE model's
    pieces joined into words; a phone model needs ``ref_text``). With
    ``nbest`` above 1, ``nbest.txt`` beside each ``text`` holds lines
    ``UTT-RANK<TAB>SCORE<TAB>WORDS`` (rank from 1, score the search's natural-log total).

    ``vtln`` (a grid of warp factors, :func:`asr.decoding.vtln.parse_warp_grid`): test-time
    VTLN, each speaker's features warped by the factor of the grid whose posteriors have the
    lowest mean entropy (:mod:`asr.decoding.vtln`); the factors go to ``out_dir/spk2warp``.

    An utterance whose features cannot be read is logged, skipped and counted; the text file is
    written atomically once all batches are done, so an interrupted run leaves no partial file.
    """
    searching = lexicon is not None or word_lm is not None or token_lm is not None
    if beam_size is None:
        beam_size = 50 if searching else 1
    if beam_size < 0:
        raise ConfigError(f"beam size {beam_size}: must not be negative (0 or 1 = greedy)")
    if lm is not None and beam_size <= 1:
        raise ConfigError("a bigram language model needs beam search (a beam size above 1)")
    if searching and lm is not None:
        raise ConfigError("a bigram LM cannot be combined with lexicon/word-LM decoding")
    if token_lm is not None and (lexicon is not None or word_lm is not None):
        raise ConfigError("a token LM is for lexicon-free search: give no lexicon or word LM")
    if token_lm is not None and any(float(p) != 0.0 for p in word_scores):
        # flashlight's lexicon-free search has no word score: a grid over it would only repeat
        raise ConfigError("a word score needs a lexicon: lexicon-free search scores no words")
    grid = [(float(w), float(p)) for w in lm_weights for p in word_scores]
    if searching and not grid:
        raise ConfigError("the LM weight and word score grid is empty")
    model_path = Path(model_path)
    loaded = load_network(model_path, device)
    refs = None
    if searching:
        if lexicon is not None and not isinstance(lexicon, Mapping):
            lexicon = read_lexicon(Path(lexicon))
        # Before the search, not after it: a lexicon or LM that misses the test words caps
        # what any weight can reach, and the user should see that before waiting for it.
        refs = _word_references(Path(data_dir), ref_text, loaded.tokens.unit)
        if refs is not None:
            source = Path(ref_text) if ref_text is not None else Path(data_dir) / "text"
            if lexicon is not None:
                log.info(
                    "%s", coverage_line(refs, set(lexicon), f"{source}: words outside the lexicon")
                )
            lm_file = word_lm if lexicon is not None else None
            if lm_file is not None and not is_binary_lm(Path(lm_file)):
                vocabulary = arpa_unigrams(lm_file)
                log.info(
                    "%s", coverage_line(refs, vocabulary, f"{source}: words outside {lm_file}")
                )
    if lm is not None and not isinstance(lm, BigramLM):
        lm_path = Path(lm)
        if lm_path.suffix == ".json":
            lm = BigramLM.load(lm_path)
        else:
            lm = BigramLM.from_text(lm_path, loaded.tokens)
    if lm is not None and lm.tokens.symbols != loaded.tokens.symbols:
        raise ConfigError(f"the bigram language model's tokens differ from those of {model_path}")
    decoders = []
    if searching:
        decoders = _grid_decoders(
            loaded.tokens,
            lexicon,
            word_lm or token_lm,
            grid,
            beam_size,
            beam_threshold,
            nbest,
            unk_word,
            beam_size_token,
        )
    # Global CMVN must use the training set's statistics, which the package carries.
    features = FeatureSet(data_dir, global_stats=loaded.package.cmvn_stats)
    _check_features_match(loaded, features, model_path)
    frame_shift = float(features.config.options.get("frame_shift", 10.0)) / 1000.0
    source: FeatureSet | SpeakerWarps = features
    choice = None
    summary = DecodeSummary()
    if vtln is not None:
        start = time.perf_counter()
        choice = choose_warps(
            loaded.model, features, vtln, batch_frames, loaded.device, progress=progress
        )
        source = SpeakerWarps(features, choice.factors)
        summary.compute_seconds += time.perf_counter() - start  # the RTF includes the search
        log.info("%s", warp_line(choice))

    hypotheses: dict[str, str] = {}
    # grid point -> utterance -> n-best (score, text), for the lexicon/LM search
    searched: list[dict[str, list[tuple[float, str]]]] = [{} for _ in decoders]
    batches = make_batches(features.num_frames, batch_frames)
    bar = tqdm(
        total=len(features), desc=f"decode {Path(data_dir).name}", unit="utt", disable=not progress
    )
    for batch in batches:
        mats: list[torch.Tensor] = []
        ids: list[str] = []
        for utt in batch:
            try:
                mats.append(source[utt])
                ids.append(utt)
            except AsrError as exc:
                log.warning("%s", exc)
                summary.failed[utt] = str(exc)
        bar.update(len(batch))
        if not mats:
            continue
        start = time.perf_counter()
        lengths = torch.tensor([m.shape[0] for m in mats], dtype=torch.long)
        padded = torch.nn.utils.rnn.pad_sequence(mats, batch_first=True).to(loaded.device)
        with torch.inference_mode():
            log_probs, out_lengths = loaded.model(padded, lengths.to(loaded.device))
        if decoders:
            emissions = log_probs.float().cpu()
            for b, utt in enumerate(ids):
                frames = emissions[b, : int(out_lengths[b])]
                for point, decoder in zip(searched, decoders, strict=True):
                    point[utt] = [(h.score, h.text) for h in decoder.decode(frames)]
        elif beam_size > 1:
            best = beam_search_batch(
                log_probs,
                out_lengths,
                beam_size,
                blank=BLANK,
                lm=lm,
                lm_weight=lm_weight,
                insertion_bonus=insertion_bonus,
            )
        else:
            best = greedy_decode(log_probs, out_lengths)
        if not decoders:
            for utt, token_ids in zip(ids, best, strict=True):
                hypotheses[utt] = loaded.tokens.decode(token_ids)
        summary.compute_seconds += time.perf_counter() - start
        summary.audio_seconds += float(lengths.sum()) * frame_shift
        summary.decoded += len(ids)
    bar.close()

    out_dir = Path(out_dir)
    if choice is not None:
        with atomic_write(out_dir / "spk2warp") as handle:
            handle.writelines(line + "\n" for line in choice.to_lines())
    if not decoders:
        write_transcripts(out_dir / "text", hypotheses)
    else:
        summary.best = _write_grid(out_dir, refs, grid, searched, nbest)
    return summary


def merge_decode_parts(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    part_dirs: Sequence[Path],
    unit: str,
    grid: Sequence[tuple[float, float]] | None = None,
    nbest: int = 1,
    ref_text: str | os.PathLike | None = None,
) -> dict | None:
    """Merge the decodes of a split data dir (``asr decode --nj``: one ``decode_datadir`` per
    part into ``part_dirs``) into ``out_dir`` as one decode of ``data_dir`` writes it: ``text``
    (C-sorted, so the same bytes), ``nbest.txt``, and for a grid of several (LM weight, word
    score) points each point's files, then ``tuning.tsv``, ``best.json`` and the best point's
    hypotheses scored on the whole set (never per part), and ``spk2warp`` of a VTLN decode.
    Returns the best point, as :func:`decode_datadir`'s summary has it."""
    out_dir = Path(out_dir)
    warps = [part / "spk2warp" for part in part_dirs if (part / "spk2warp").is_file()]
    if warps:  # --vtln: the parts are split by speaker, so their lines never overlap
        lines = [line for path in warps for line in path.read_text(encoding="utf-8").splitlines()]
        with atomic_write(out_dir / "spk2warp") as handle:
            handle.writelines(line + "\n" for line in sorted(lines, key=str.encode))
    points = [None] if grid is None or len(grid) <= 1 else list(grid)
    texts: list[dict[str, str]] = []
    for point in points:
        where = "" if point is None else grid_name(*point)
        text: dict[str, str] = {}
        lines: list[str] = []
        for part in part_dirs:
            source = part / where / "text" if where else part / "text"
            if not source.is_file():
                raise AsrError(f"{source}: not written by its job; the parts are not merged")
            text.update(read_transcripts(source))
            if nbest > 1:
                lines += (part / where / "nbest.txt").read_text(encoding="utf-8").splitlines()
        target = out_dir / where if where else out_dir
        write_transcripts(target / "text", text)
        if nbest > 1:
            # UTT-RANK: the utterance in C order, then the rank, as one decode writes them
            def order(line: str) -> tuple[bytes, int]:
                utt, _, rank = line.split("\t", 1)[0].rpartition("-")
                return utt.encode("utf-8"), int(rank)

            with atomic_write(target / "nbest.txt") as handle:
                handle.writelines(line + "\n" for line in sorted(lines, key=order))
        texts.append(text)
    if points == [None]:
        return None
    refs = _word_references(Path(data_dir), ref_text, unit)
    return _pick_best(out_dir, refs, list(points), texts, nbest)


def coverage_line(refs: Mapping[str, str], vocabulary: set[str], what: str) -> str:
    """``WHAT: K of N (R%; e.g. W1, W2)``: the running words of ``refs`` outside ``vocabulary``
    (the OOV rate), the most frequent of them first."""
    counts: dict[str, int] = {}
    total = 0
    for text in refs.values():
        for word in text.split():
            total += 1
            if word not in vocabulary:
                counts[word] = counts.get(word, 0) + 1
    missing = sum(counts.values())
    rate = 100.0 * missing / total if total else 0.0
    line = f"{what}: {missing} of {total} ({rate:.2f}%"
    if counts:
        frequent = sorted(counts, key=lambda w: (-counts[w], w))[:5]
        line += "; e.g. " + ", ".join(frequent)
    return line + ")"


def _grid_decoders(
    tokens, lexicon, lm_path, grid, beam_size, beam_threshold, nbest, unk_word, beam_size_token
):
    """One flashlight decoder per grid point, sharing the lexicon tree and the loaded LM."""

    decoders = []
    for lm_weight, word_score in grid:
        options = DecoderOptions(
            beam_size=max(beam_size, 1),
            beam_threshold=beam_threshold,
            beam_size_token=beam_size_token,
            lm_weight=lm_weight if lm_path is not None else 0.0,
            word_score=word_score,
            nbest=nbest,
        )
        if decoders:
            decoders.append(decoders[0].with_options(options))
        else:
            decoders.append(LexiconDecoder(tokens, lexicon, lm_path, options, unk_word))
    return decoders


def _write_nbest(path: Path, nbest: Mapping[str, list[tuple[float, str]]]) -> None:
    with atomic_write(path) as handle:
        for utt in sorted(nbest, key=lambda u: u.encode("utf-8")):
            for rank, (score, text) in enumerate(nbest[utt], 1):
                handle.write(f"{utt}-{rank}\t{score:.4f}\t{text}\n")


def _word_references(
    data_dir: Path, ref_text: str | os.PathLike | None, unit: str
) -> dict[str, str] | None:
    """The word transcripts a grid is scored against, or None (with a warning) when there are
    none. A BPE data directory's pieces are joined into words; a phone model's data directory
    holds phones, so its grid needs ``ref_text`` (or a copy of the directory with word text)."""
    if ref_text is not None:
        return read_transcripts(Path(ref_text))
    if not (data_dir / "text").is_file():
        log.warning("%s has no text: the grid is decoded but not scored", data_dir)
        return None
    refs = read_transcripts(data_dir / "text")
    if unit == "bpe":
        refs = {utt: join_pieces(text.split()) for utt, text in refs.items()}
    return refs


def _write_grid(
    out_dir: Path,
    refs: dict[str, str] | None,
    grid: list[tuple[float, float]],
    searched: list[dict[str, list[tuple[float, str]]]],
    nbest: int,
) -> dict | None:
    """Write each grid point's hypotheses; with several and a reference, score and pick."""
    texts = [{u: hyps[0][1] if hyps else "" for u, hyps in point.items()} for point in searched]
    if len(grid) == 1:
        write_transcripts(out_dir / "text", texts[0])
        if nbest > 1:
            _write_nbest(out_dir / "nbest.txt", searched[0])
        return None
    for (lm_weight, word_score), text, point in zip(grid, texts, searched, strict=True):
        point_dir = out_dir / grid_name(lm_weight, word_score)
        write_transcripts(point_dir / "text", text)
        if nbest > 1:
            _write_nbest(point_dir / "nbest.txt", point)
    return _pick_best(out_dir, refs, grid, texts, nbest)


def _pick_best(
    out_dir: Path,
    refs: dict[str, str] | None,
    grid: list[tuple[float, float]],
    texts: list[dict[str, str]],
    nbest: int,
) -> dict | None:
    """Score each grid point's hypotheses (written already) and copy the best to out_dir."""
    if refs is None:
        return None
    rows = []
    for (lm_weight, word_score), text in zip(grid, texts, strict=True):
        # Failed utterances count as all-deletion errors, as in Kaldi's scoring.
        result = wer(refs, text, missing="deletions")
        rows.append((lm_weight, word_score, result.wer, result.errors, result.ref_words))
    with atomic_write(out_dir / "tuning.tsv") as handle:
        handle.write("lm_weight\tword_score\twer\terrors\twords\n")
        for lm_weight, word_score, rate, errors, words in rows:
            handle.write(f"{lm_weight:g}\t{word_score:g}\t{rate:.2f}\t{errors}\t{words}\n")
    # The lowest WER; ties go to the first grid point (the order the weights were given in).
    best_row = min(range(len(rows)), key=lambda i: (rows[i][2], i))
    lm_weight, word_score, rate, _, _ = rows[best_row]
    best = {"lm_weight": lm_weight, "word_score": word_score, "wer": round(rate, 2)}
    with atomic_write(out_dir / "best.json") as handle:
        json.dump(best, handle)
        handle.write("\n")
    best_dir = out_dir / grid_name(lm_weight, word_score)
    write_transcripts(out_dir / "text", texts[best_row])
    if nbest > 1:
        shutil.copyfile(best_dir / "nbest.txt", out_dir / "nbest.txt")
    return best
