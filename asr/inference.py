"""Run a trained model package over a feature data directory and write hypotheses.

This is the ``decode`` arrow of the data flow: ``feats.scp`` (normalized exactly as in training)
goes through the network in length-sorted batches, and greedy CTC decoding (or, with
``beam_size`` > 1, CTC prefix beam search) turns the log-posteriors into a Kaldi ``text`` file of
hypotheses.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from asr.bigram_lm import BigramLM
from asr.ctc_beam import beam_search_batch
from asr.dataset import FeatureSet, make_batches
from asr.decode import BLANK, greedy_decode
from asr.errors import AsrError, ConfigError, DataDirError
from asr.model import AcousticModel, ModelConfig
from asr.package import ModelPackage, load_package
from asr.score import write_transcripts
from asr.tokens import SPACE, TokenList

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A package made ready to run: the network in eval mode and its token list."""

    package: ModelPackage
    model: AcousticModel
    tokens: TokenList
    device: torch.device


def load_model(path: str | os.PathLike, device: str = "cpu") -> LoadedModel:
    """Load a model package (safely: weights_only) into an eval-mode network on ``device``."""
    package = load_package(path)
    config = ModelConfig.from_dict(package.model_config, source=str(path))
    model = AcousticModel(config)
    try:
        model.load_state_dict(package.state_dict)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise AsrError(f"{path}: weights do not match the model config ({first})") from None
    torch_device = torch.device(device)
    model.to(torch_device).eval()
    unit = "char" if SPACE in package.tokens else "word"
    return LoadedModel(package, model, TokenList(package.tokens, unit=unit), torch_device)


@dataclass
class DecodeSummary:
    """What a decoding run did, for the log line at its end."""

    decoded: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0


def _check_features_match(loaded: LoadedModel, features: FeatureSet, model_path: Path) -> None:
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


def decode_datadir(
    model_path: str | os.PathLike,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    batch_frames: int = 20000,
    device: str = "cpu",
    progress: bool = True,
    beam_size: int = 1,
    lm: BigramLM | str | os.PathLike | None = None,
    lm_weight: float = 0.5,
    insertion_bonus: float = 0.0,
) -> DecodeSummary:
    """Decode every utterance of ``data_dir`` into ``out_dir/text``.

    ``beam_size`` 1 (or 0) is greedy best-path decoding; larger values run CTC prefix beam search
    (:mod:`asr.ctc_beam`) with that many prefixes kept per frame.

    ``lm`` (beam search only): a token bigram model for shallow fusion, as a :class:`BigramLM`
    over the model's tokens, a saved one (a ``.json`` path), or a Kaldi text file to train one
    from (add-k smoothing); ``lm_weight`` and ``insertion_bonus`` as in
    :func:`asr.ctc_beam.prefix_beam_search`.

    An utterance whose features cannot be read is logged, skipped and counted; the text file is
    written atomically once all batches are done, so an interrupted run leaves no partial file.
    """
    if beam_size < 0:
        raise ConfigError(f"beam size {beam_size}: must not be negative (0 or 1 = greedy)")
    if lm is not None and beam_size <= 1:
        raise ConfigError("a bigram language model needs beam search (a beam size above 1)")
    model_path = Path(model_path)
    loaded = load_model(model_path, device)
    if lm is not None and not isinstance(lm, BigramLM):
        lm_path = Path(lm)
        if lm_path.suffix == ".json":
            lm = BigramLM.load(lm_path)
        else:
            lm = BigramLM.from_text(lm_path, loaded.tokens)
    if lm is not None and lm.tokens.symbols != loaded.tokens.symbols:
        raise ConfigError(f"the bigram language model's tokens differ from those of {model_path}")
    # Global CMVN must use the training set's statistics, which the package carries.
    features = FeatureSet(data_dir, global_stats=loaded.package.cmvn_stats)
    _check_features_match(loaded, features, model_path)
    frame_shift = float(features.config.options.get("frame_shift", 10.0)) / 1000.0

    summary = DecodeSummary()
    hypotheses: dict[str, str] = {}
    batches = make_batches(features.num_frames, batch_frames)
    bar = tqdm(
        total=len(features), desc=f"decode {Path(data_dir).name}", unit="utt", disable=not progress
    )
    for batch in batches:
        mats: list[torch.Tensor] = []
        ids: list[str] = []
        for utt in batch:
            try:
                mats.append(features[utt])
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
        if beam_size > 1:
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
        for utt, token_ids in zip(ids, best, strict=True):
            hypotheses[utt] = loaded.tokens.decode(token_ids)
        summary.compute_seconds += time.perf_counter() - start
        summary.audio_seconds += float(lengths.sum()) * frame_shift
        summary.decoded += len(ids)
    bar.close()

    write_transcripts(Path(out_dir) / "text", hypotheses)
    return summary
