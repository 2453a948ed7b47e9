"""festival: one process per batch of sentences, phones and end times from the Segment relation.

Starting festival and loading a voice takes 0.2-0.4 s, longer than most sentences take to say,
so sentences are synthesised in batches: one Scheme script per voice and batch, run with
``festival -b``. Each sentence is wrapped in ``unwind-protect`` so that one failure costs only
that sentence. Rate is ``Duration_Stretch`` for the diphone voices and hts_engine's ``-r`` for
the HTS voice; pitch is the target F0 mean of the diphone voices' linear-regression intonation
(the HTS voice keeps its own F0).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from asr.corpora.synthetic.engine import (
    SAMPLE_RATE,
    have_programs,
    parse_phone_ends,
    read_engine_wave,
    segments_from_ends,
)
from asr.corpora.synthetic.phones import fold_segments
from asr.corpora.synthetic.voice import DEFAULT_PROSODY, Prosody, Synthesis, SynthesisError, Voice

ENGINE = "festival"
INSTALL_FROM = "Debian"
PACKAGES = (
    "festival",
    "festvox-kallpc16k",
    "festvox-kdlpc16k",
    "festvox-us-slt-hts",
    "festlex-cmu",
)
VOICE_NAMES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
_VOICE_DIRS = {
    "kal_diphone": "english/kal_diphone",
    "ked_diphone": "english/ked_diphone",
    "cmu_us_slt_arctic_hts": "us/cmu_us_slt_arctic_hts",
}
_VOICE_ROOT = Path("/usr/share/festival/voices")
_TIMEOUT_PER_SENTENCE_S = 20
_SEGMENT_LINE = re.compile(r"^@@(SEG|ERR) (\d+)(.*)$")


def _is_hts(voice: Voice) -> bool:
    return voice.name.endswith("_hts")


def available() -> bool:
    return have_programs("festival") and any(_voice_installed(name) for name in VOICE_NAMES)


def _voice_installed(name: str) -> bool:
    return (_VOICE_ROOT / _VOICE_DIRS[name]).is_dir()


def voices() -> list[Voice]:
    if not have_programs("festival"):
        return []
    return [Voice(ENGINE, name) for name in VOICE_NAMES if _voice_installed(name)]


def prosody_range(voice: Voice | None = None) -> dict[str, tuple[float, float]]:
    pitch = (1.0, 1.0) if voice is not None and _is_hts(voice) else (0.85, 1.2)
    return {"rate": (0.87, 1.15), "pitch": pitch}


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _script(voice: Voice, items: Sequence[tuple[str, Prosody]], out_dir: Path) -> str:
    lines = [f"(voice_{voice.name})"]
    if _is_hts(voice):
        lines.append(f"(set! asr_base_params {voice.name}::hts_engine_params)")
    else:
        # int_lr_params starts with (target_f0_mean M); keep the rest of the voice's values
        lines.append("(set! asr_base_lr int_lr_params)")
        lines.append("(set! asr_base_f0 (car (cdr (car int_lr_params))))")
    lines.append(
        "(define (asr_say n text wavfile)\n"
        "  (let ((utt (SynthText text)))\n"
        "    (utt.save.wave utt wavfile 'riff)\n"
        '    (format t "@@SEG %d" n)\n'
        '    (mapcar (lambda (s) (format t " %s:%f" (item.name s) (item.feat s "end")))\n'
        "            (utt.relation.items utt 'Segment))\n"
        '    (format t "\\n")))'
    )
    for n, (text, prosody) in enumerate(items):
        if _is_hts(voice):
            lines.append(
                f'(set! hts_engine_params (append asr_base_params \'(("-r" {prosody.rate:.4f}))))'
            )
        else:
            lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / prosody.rate:.4f})")
            lines.append(
                "(set! int_lr_params (cons (list 'target_f0_mean "
                f"(* {prosody.pitch:.4f} asr_base_f0)) (cdr asr_base_lr)))"
            )
        wav = _scheme_string(str(out_dir / f"{n}.wav"))
        lines.append(
            f'(unwind-protect (asr_say {n} {_scheme_string(text)} {wav}) (format t "@@ERR {n}\\n"))'
        )
    return "\n".join(lines) + "\n"


def _parse(output: str) -> dict[int, list[tuple[str, float]] | None]:
    results: dict[int, list[tuple[str, float]] | None] = {}
    for line in output.splitlines():
        match = _SEGMENT_LINE.match(line.strip())
        if not match:
            continue
        kind, n, rest = match.group(1), int(match.group(2)), match.group(3)
        if kind == "ERR":
            results.setdefault(n, None)
            continue
        results[n] = parse_phone_ends(rest)
    return results


def synthesize_batch(
    items: Sequence[tuple[str, Voice, Prosody]],
) -> list[Synthesis | SynthesisError]:
    """Say every (text, voice, prosody); a failed sentence gives its SynthesisError in place."""
    results: list[Synthesis | SynthesisError | None] = [None] * len(items)
    by_voice: dict[Voice, list[int]] = {}
    for i, (text, voice, _) in enumerate(items):
        if not text.strip():
            results[i] = SynthesisError(f"{voice}: empty sentence")
        else:
            by_voice.setdefault(voice, []).append(i)
    for voice, indices in by_voice.items():
        batch = [(items[i][0], items[i][2]) for i in indices]
        for i, result in zip(indices, _run_voice(voice, batch), strict=True):
            results[i] = result
    return [r if r is not None else SynthesisError("internal: no result") for r in results]


def _run_voice(
    voice: Voice, batch: Sequence[tuple[str, Prosody]]
) -> list[Synthesis | SynthesisError]:
    with tempfile.TemporaryDirectory(prefix="asr-festival-") as tmp:
        out_dir = Path(tmp)
        script = out_dir / "batch.scm"
        script.write_text(_script(voice, batch, out_dir), encoding="utf-8")
        try:
            done = subprocess.run(
                ["festival", "-b", str(script)],
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_PER_SENTENCE_S * len(batch) + 30,
                check=False,
            )
            output = done.stdout
            failure = f"exit {done.returncode}" if done.returncode else "no output"
        except (OSError, subprocess.TimeoutExpired) as exc:
            output, failure = "", str(exc)
        parsed = _parse(output)
        results: list[Synthesis | SynthesisError] = []
        for n, (text, _) in enumerate(batch):
            pairs = parsed.get(n)
            if pairs is None:
                reason = "festival raised an error" if n in parsed else f"festival: {failure}"
                results.append(SynthesisError(f"{voice}: no audio for '{text}' ({reason})"))
                continue
            try:
                wave = read_engine_wave(out_dir / f"{n}.wav", voice, text)
                phones = fold_segments(segments_from_ends(pairs))
                if not phones:
                    raise SynthesisError(f"{voice}: festival gave no phones for '{text}'")
            except SynthesisError as exc:
                results.append(exc)
                continue
            results.append(Synthesis(wave, SAMPLE_RATE, phones))
        return results


def synthesize(text: str, voice: Voice, prosody: Prosody = DEFAULT_PROSODY) -> Synthesis:
    """Say one sentence (a batch of one: slow, see the module docstring)."""
    result = synthesize_batch([(text, voice, prosody)])[0]
    if isinstance(result, SynthesisError):
        raise result
    return result
