"""``asr transcribe``: audio files (or stdin) to text, subtitles and word times with a model."""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import sys
import time
from pathlib import Path

# what a directory is searched for (case-insensitive: TIMIT's files are .WAV); files named
# explicitly or matched by a glob are read whatever their extension
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".sph")
STDIN_NAME = "stdin"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "transcribe",
        help="transcribe audio files with a model package",
        description="Transcribe each INPUT with MODEL (a package written by 'asr train' or "
        "'asr package'). INPUT is an audio file, a directory (searched recursively for "
        f"{' '.join(AUDIO_EXTENSIONS)}), a glob pattern (quote it; ** recurses) or - for audio "
        "bytes on standard input. Each transcript is printed as one line 'SOURCE<TAB>TEXT' on "
        "standard output; with --format or --output-dir files are written too (DIR/STEM.FMT). An "
        "input that cannot be read is reported on one line and skipped; the exit status is then 1.",
    )
    parser.add_argument("model", metavar="MODEL", help="model package, e.g. exp/word/final.pt")
    parser.add_argument("inputs", metavar="INPUT", nargs="+", help="audio file, directory, glob, -")
    parser.add_argument(
        "--format",
        default=None,
        help="files to write: one or more of txt,json,srt,vtt,tsv,ctm (comma-separated) or all "
        "(default: none, or txt when --output-dir is given)",
    )
    parser.add_argument(
        "--output-dir", default=None, help="where files go (default: the current directory)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: all cores)"
    )
    parser.add_argument(
        "--bf16", action="store_true", help="run the network in bf16 (GPUs, CPUs with AMX)"
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=300.0,
        help="padded audio seconds per network batch of short inputs (default 300)",
    )
    parser.add_argument(
        "--max-window-seconds",
        type=float,
        default=30.0,
        help="longer recordings are decoded in overlapping windows of at most this (default 30)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def expand_inputs(specs: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """Inputs -> ``(path, output stem)`` pairs and one error line per spec that matched nothing.

    A directory's files keep their sub-directories in the stem (``dir/a/x.wav`` -> ``a/x``); a
    missing path stays in the list, so that reading it reports it like any bad file.
    """
    found: list[tuple[str, str]] = []
    errors: list[str] = []

    def add_dir(root: Path) -> int:
        files = sorted(
            p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
        )
        found.extend((str(p), str(p.relative_to(root).with_suffix(""))) for p in files)
        return len(files)

    for spec in specs:
        if spec == "-":
            found.append(("-", STDIN_NAME))
            continue
        path = Path(spec)
        if path.is_dir():
            if not add_dir(path):
                errors.append(f"{spec}: no audio files ({' '.join(AUDIO_EXTENSIONS)}) in directory")
        elif path.exists() or not glob.has_magic(spec):
            found.append((spec, path.stem))
        else:
            matches = sorted(glob.glob(spec, recursive=True))
            count = 0
            for match in matches:
                if Path(match).is_dir():
                    count += add_dir(Path(match))
                else:
                    found.append((match, Path(match).stem))
                    count += 1
            if not count:
                errors.append(f"{spec}: no file matches")
    return found, errors


def _unique_stems(stems: list[str]) -> list[str]:
    """Two inputs named alike (a/x.wav, b/x.wav given as files) must not overwrite each other."""
    seen: dict[str, int] = {}
    out = []
    for stem in stems:
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        out.append(stem if not count else f"{stem}-{count + 1}")
    return out


def _stdin_to_file() -> Path:
    """Audio bytes on stdin -> a temporary file (load_audio then checks it like any file)."""
    import tempfile

    from asr.errors import AudioError

    if sys.stdin.isatty():
        raise AudioError(f"{STDIN_NAME}: is a terminal; pipe audio bytes into it")
    fd, tmp = tempfile.mkstemp(prefix="asr-stdin-", suffix=".audio")
    with os.fdopen(fd, "wb") as handle:
        while chunk := sys.stdin.buffer.read(1 << 20):
            handle.write(chunk)
    return Path(tmp)


def run(args: argparse.Namespace) -> int:
    from asr.errors import AsrError, ConfigError
    from asr.transcribe import DEFAULT_OVERLAP_SECONDS, load_model
    from asr.transcript_writers import parse_formats, write_transcript

    if args.max_window_seconds <= 0:
        raise ConfigError(f"--max-window-seconds {args.max_window_seconds}: must be positive")
    if args.batch_seconds <= 0:
        raise ConfigError(f"--batch-seconds {args.batch_seconds}: must be positive")
    formats: list[str] = []
    if args.format is not None:
        formats = parse_formats(args.format)
    elif args.output_dir is not None:
        formats = ["txt"]
    out_dir = Path(args.output_dir or ".")
    if args.inputs.count("-") > 1:
        raise ConfigError("- (stdin) given more than once")

    # the model first: a bad model file is one line before anything else happens
    recognizer = load_model(
        args.model,
        device=args.device,
        threads=args.threads,
        bf16=args.bf16,
        max_window_seconds=args.max_window_seconds,
        overlap_seconds=min(DEFAULT_OVERLAP_SECONDS, args.max_window_seconds / 4),
    )
    inputs, failures = expand_inputs(args.inputs)
    for line in failures:
        print(f"asr transcribe: error: {line}", file=sys.stderr)
    stems = _unique_stems([stem for _, stem in inputs])
    stem_of = dict(zip((path for path, _ in inputs), stems, strict=True))

    stdin_file: Path | None = None
    names: dict[str, str] = {}  # path read -> name shown
    paths: list[str] = []
    for path, _ in inputs:
        if path == "-":
            try:
                stdin_file = _stdin_to_file()
            except AsrError as exc:
                print(f"asr transcribe: error: {exc}", file=sys.stderr)
                failures.append(str(exc))
                continue
            names[str(stdin_file)] = STDIN_NAME
            stem_of[str(stdin_file)] = stem_of["-"]
            paths.append(str(stdin_file))
        else:
            names[path] = path
            paths.append(path)

    done = 0
    audio_seconds = 0.0
    start = time.perf_counter()
    try:
        results = recognizer.transcribe_many(
            paths, batch_seconds=args.batch_seconds, progress=not args.no_progress
        )
        for path, result in results:
            name = names[str(path)]
            if isinstance(result, AsrError):
                message = str(result)
                if name != path:
                    message = message.replace(str(path), name)
                print(f"asr transcribe: error: {message}", file=sys.stderr)
                failures.append(message)
                continue
            result.source = name
            if formats:
                write_transcript(result, out_dir, stem_of[str(path)], formats)
            print(f"{name}\t{result.text}", flush=True)
            done += 1
            audio_seconds += result.duration
    finally:
        if stdin_file is not None:
            with contextlib.suppress(OSError):
                stdin_file.unlink()
    elapsed = time.perf_counter() - start
    rtf = elapsed / audio_seconds if audio_seconds else 0.0
    # the summary goes to stderr, so that stdout holds transcripts only
    print(
        f"asr transcribe: {done} file{'' if done == 1 else 's'} transcribed "
        f"({audio_seconds / 3600:.3f} h of audio in {elapsed:.1f} s, real-time factor "
        f"{rtf:.4f}), {len(failures)} failed",
        file=sys.stderr,
    )
    return 1 if failures else 0
