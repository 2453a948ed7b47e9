"""What a model package is: the model card ``asr info`` prints and ``asr package --card`` writes.

The card has the shape of a Hugging Face model card: YAML front matter (``language``,
``license``, ``library_name``, ``tags``, ``pipeline_tag`` and a ``model-index`` with the
recorded results, the fields the Hub reads) and Markdown sections: the model (architecture,
parameters, units, features, the decoder the package transcribes with), its training data and
hours, the results the recipe recorded with their test sets, how it was trained (precision,
epochs, seed, asr version, the command) and the licence of its data.

Everything comes from the package itself: what ``asr train`` records (``extra``:
``training_data``, ``precision``, ``asr_version``, ``command``, ``train_config``, ``epoch``)
and what ``asr package`` adds (``decoder``, ``results``, ``license``, ``language``, the lexicon
and LM entries). A field the package lacks (one written before it was recorded) reads
"not recorded"; nothing is guessed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from asr.errors import ConfigError
from asr.nn.model import ModelConfig
from asr.nn.package import ModelPackage

NOT_RECORDED = "not recorded"
# the first line of `asr score`'s output: "%WER 12.34 [ 56 / 454, 1 ins, 2 del, 53 sub ]"
_SCORE_LINE = re.compile(r"^%(?P<metric>[A-Z]+ER)\s+(?P<value>[-+0-9.eE]+|nan)\s+\[(?P<rest>.*)\]")


def read_score_line(path: str | Path) -> dict[str, Any]:
    """``{"metric", "value", "line"}`` from the first ``%WER``/``%PER``/``%CER`` line of an
    ``asr score`` output file; ConfigError (one line naming the file) when there is none."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the score file ({exc})") from None
    for line in lines:
        match = _SCORE_LINE.match(line.strip())
        if match:
            value = float(match["value"])
            if value != value:  # NaN: a result that is not one
                raise ConfigError(f"{path}: the score is NaN")
            return {"metric": match["metric"], "value": value, "line": line.strip()}
    raise ConfigError(f"{path}: no '%WER ...' (or %PER, %CER) line from asr score")


def _yaml_scalar(value: Any) -> str:
    """A YAML scalar that reads back as ``value`` (JSON strings are valid YAML)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _parameters(package: ModelPackage) -> int:
    return sum(int(t.numel()) for t in package.state_dict.values() if t.is_floating_point())


def _architecture(config: ModelConfig) -> str:
    direction = "bidirectional" if config.bidirectional else "forward-only"
    text = (
        f"{config.num_layers} x {config.hidden_size} {direction} {config.cell.upper()}, "
        f"CTC output over {config.num_tokens} tokens (blank included)"
    )
    if config.projection_size:
        text += f", projection {config.projection_size}"
    if config.stack > 1 or config.skip > 1:
        text += f", {config.stack} frames stacked, subsampled by {config.skip}"
    return text


def _features(feature_config: dict[str, Any]) -> str:
    options = feature_config.get("options") or {}
    kind = feature_config.get("kind", "?")
    bins = options.get("num_mel_bins") if kind == "fbank" else options.get("num_ceps")
    text = f"{kind}"
    if bins:
        text += f" {bins}"
    deltas = int(feature_config.get("delta_order", 0) or 0)
    if deltas:
        text += f" + {'deltas' if deltas == 1 else f'{deltas} orders of deltas'}"
    text += (
        f", {feature_config.get('sample_rate', '?')} Hz, "
        f"{options.get('frame_shift', 10.0)} ms shift, CMVN {feature_config.get('cmvn', 'none')}"
    )
    return text


def _resource(package: ModelPackage, name: str) -> str:
    entry = package.extra.get(name)
    if not isinstance(entry, dict):
        return "none"
    how = "embedded" if entry.get("data") is not None else f"by path {entry.get('path')}"
    return f"{how}, {entry.get('size', '?')} bytes, sha256 {str(entry.get('sha256', '?'))[:12]}"


def _decoder(package: ModelPackage) -> str:
    has = [n for n in ("lexicon", "lm") if n in package.extra]
    if not has:
        return "greedy CTC (the package has no lexicon or LM)"
    settings = package.extra.get("decoder") or {}
    kind = "lexicon + LM beam search" if "lexicon" in has else "beam search with a token LM"
    parts = [
        f"{kind}: beam {settings.get('beam_size', 50)}",
        f"LM weight {settings.get('lm_weight', 1.0)}",
        f"word score {settings.get('word_score', 0.0)}",
    ]
    if settings.get("tuned_on"):
        tuned = f"tuned on {settings['tuned_on']}"
        if settings.get("dev_wer") is not None:
            tuned += f" (dev %WER {settings['dev_wer']})"
        parts.append(tuned)
    else:
        parts.append("weights not tuned (asr decode's defaults)")
    return ", ".join(parts)


def model_card(package: ModelPackage, name: str) -> str:
    """The Markdown model card of ``package`` (see the module docstring); ``name`` heads it."""
    extra = package.extra if isinstance(package.extra, dict) else {}
    config = ModelConfig.from_dict(package.model_config, source=name)
    data = extra.get("training_data") or {}
    results = [r for r in extra.get("results") or [] if isinstance(r, dict)]
    train_config = extra.get("train_config") or {}
    language = extra.get("language") or "en"
    license_ = extra.get("license") or NOT_RECORDED
    unit = extra.get("unit") or NOT_RECORDED

    front = [
        "---",
        f"language: {_yaml_scalar(language)}",
        f"license: {_yaml_scalar(license_ if license_ != NOT_RECORDED else 'unknown')}",
        "library_name: asr",
        "pipeline_tag: automatic-speech-recognition",
        "tags:",
        "- automatic-speech-recognition",
        "- ctc",
        f"- {config.cell}",
    ]
    if results:
        front += ["model-index:", f"- name: {_yaml_scalar(name)}", "  results:"]
        for r in results:
            front += [
                "  - task:",
                "      type: automatic-speech-recognition",
                "    dataset:",
                f"      name: {_yaml_scalar(r.get('test_set', '?'))}",
                "      type: custom",
                "    metrics:",
                f"    - type: {_yaml_scalar(str(r.get('metric', 'WER')).lower())}",
                f"      value: {_yaml_scalar(r.get('value'))}",
            ]
    front.append("---")

    lines = front + ["", f"# {name}", "", "## Model", ""]
    lines += [
        f"- architecture: {_architecture(config)}",
        f"- parameters: {_parameters(package):,}",
        f"- units: {unit} ({len(package.tokens)} tokens incl. blank)",
        f"- features: {_features(package.feature_config)}",
        f"- decoder: {_decoder(package)}",
        f"- lexicon: {_resource(package, 'lexicon')}",
        f"- language model: {_resource(package, 'lm')}",
        "",
        "## Training data",
        "",
    ]
    if data:
        lines += [
            f"- training set: {data.get('train_dir')} ({data.get('utterances')} utterances, "
            f"{float(data.get('hours', 0.0)):.2f} h of speech)",
            f"- dev set (learning rate and early stopping): {data.get('dev_dir')}",
        ]
    else:
        lines.append(f"- {NOT_RECORDED} (a package written before asr recorded it)")
    if extra.get("init_from"):
        lines.append(f"- fine-tuned from: {json.dumps(extra['init_from'], ensure_ascii=False)}")
    lines += ["", "## Results", ""]
    if results:
        lines += ["| test set | metric | value | scored |", "|---|---|---|---|"]
        for r in results:
            lines.append(
                f"| {r.get('test_set')} | %{r.get('metric')} | {r.get('value')} | "
                f"`{r.get('line', '')}` |"
            )
    else:
        lines.append(f"{NOT_RECORDED} (asr package --result TEST_SET=SCORE_FILE records them)")
    command = f"`{extra['command']}`" if extra.get("command") else NOT_RECORDED
    epochs = extra.get("averaged_epochs") or ([extra["epoch"]] if "epoch" in extra else [])
    lines += [
        "",
        "## Training",
        "",
        f"- precision: {extra.get('precision', NOT_RECORDED)}",
        f"- epochs in these weights: {', '.join(map(str, epochs)) or NOT_RECORDED}",
        f"- seed: {train_config.get('seed', NOT_RECORDED)}",
        f"- asr version: {extra.get('asr_version', NOT_RECORDED)}",
        f"- command: {command}",
        "",
        "## Licence",
        "",
        f"Data licence: {license_}. The weights are derived from the training data above; "
        "use them under its terms.",
        "",
    ]
    return "\n".join(lines)
