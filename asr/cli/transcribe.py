"""``asr transcribe``: audio files (or stdin) to text, subtitles and word times with a model."""

from __future__ import annotations

import argparse
import contextlib
import errno
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

from asr.cli.jobs import ASR, add_job_options, split_for_jobs
from asr.data.audio import load_audio
from asr.data.datadir import DataDir
from asr.data.wav_stream import wav_stream
from asr.decoding.timing import TimedUnit
from asr.decoding.vtln import DEFAULT_WARPS, parse_warp_grid
from asr.errors import AsrError, AudioError, ConfigError
from asr.fileio import fault_point
from asr.jobs.launcher import Launcher, run_jobs
from asr.nn.package import load_package
from asr.score import read_transcripts, write_transcripts
from asr.transcribe import load_model
from asr.transcribe.online import load_online_model
from asr.transcribe.recognizer import DEFAULT_OVERLAP_SECONDS
from asr.transcribe.writers import assign_stems, parse_formats, write_transcript

# what a directory is searched for (case-insensitive: TIMIT's files are .WAV); files named
# explicitly or matched by a glob are read whatever their extension
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".sph")
STDIN_NAME = "stdin"


def add_parser(subparsers: argparse._SubParsersAction, help: str | None = None) -> None:
    parser = subparsers.add_parser(
        "transcribe",
        help=help,
        description="Transcribe each INPUT with MODEL (a package written by 'asr train' or "
        "'asr package'). INPUT is an audio file, a directory (searched recursively for "
        f"{' '.join(AUDIO_EXTENSIONS)}), a glob pattern (quote it; ** recurses) or - for audio "
        "bytes on standard input. Each transcript is printed as one line 'SOURCE<TAB>TEXT' on "
        "standard output (a tab, newline, carriage return or backslash in SOURCE is written "
        "\\t, \\n, \\r, \\\\); with --format or --output-dir files are written too "
        "(DIR/STEM.FMT). STEM is the file name without its extension, or its path below a "
        "searched directory; when two different inputs would get the same STEM, each of them "
        "gets its path relative to their common parent folder instead (a/x.wav, b/x.wav -> "
        "DIR/a/x.txt, DIR/b/x.txt), so no output is ever overwritten by another input's; an "
        "input given twice is transcribed once. An input that cannot be read or whose files "
        "cannot be written is reported on one line and skipped; the exit status is then 1.",
    )
    parser.add_argument("model", metavar="MODEL", help="model package, e.g. exp/word/final.pt")
    parser.add_argument(
        "inputs", metavar="INPUT", nargs="+", help="audio file, directory, glob, - (or a data dir)"
    )
    parser.add_argument(
        "--data-dir",
        action="store_true",
        help="INPUT is one Kaldi data dir: every utterance of its wav.scp (its segment, with "
        "segments), written as OUTPUT_DIR/text (Kaldi text, by utterance id) and any --format "
        "files named by utterance id; with --nj N split by speaker into N jobs",
    )
    parser.add_argument(
        "--allow-pipes",
        action="store_true",
        help="with --data-dir: run wav.scp entries that are shell commands ('cmd |')",
    )
    add_job_options(parser)
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
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="the network's arithmetic: auto (default) is bf16 where the CPU (AVX-512 BF16, "
        "AMX) or GPU runs it natively, else fp32 (fp16 on GPUs without bf16); ASR_CPU_BF16=0 "
        "or 1 overrides the CPU detection",
    )
    parser.add_argument("--bf16", action="store_true", help="the same as --precision bf16")
    parser.add_argument(
        "--backend",
        choices=("torch", "onnxruntime"),
        default="torch",
        help="what runs the network: torch (default), or onnxruntime (the network exported to "
        "ONNX when loaded and checked against torch, as asr export does; CPU, fp32; needs "
        "pip install 'asr[export]')",
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
    search = parser.add_argument_group(
        "search",
        "A package made with 'asr package --lexicon/--lm' decodes with its lexicon + LM beam "
        "search, using the LM weight and word score it recorded from the recipe's dev grid "
        "(--tuned-on); any other package decodes greedily. These override.",
    )
    search.add_argument(
        "--beam-size",
        type=int,
        default=None,
        help="hypotheses kept per frame (lexicon + LM search: default the package's, else 50; "
        "without a lexicon or LM: 1 = greedy, the default, N > 1 = CTC prefix beam search)",
    )
    search.add_argument(
        "--lm-weight", type=float, default=None, help="weight of the LM (default: the package's)"
    )
    search.add_argument(
        "--word-score",
        type=float,
        default=None,
        help="score added per word (default: the package's)",
    )
    search.add_argument(
        "--no-lm",
        action="store_true",
        help="ignore the package's lexicon and LM: greedy, or prefix beam search with --beam-size",
    )
    search.add_argument(
        "--vtln",
        nargs="?",
        const=DEFAULT_WARPS,
        default=None,
        metavar="MIN:MAX:STEP",
        help="test-time VTLN (log-mel models): warp each recording by the factor of the grid "
        f"(default {DEFAULT_WARPS}) whose posteriors have the lowest mean entropy; one network "
        "pass per factor; the factor goes to the JSON as vtln_warp",
    )
    search.add_argument(
        "--nbest",
        type=int,
        default=1,
        metavar="N",
        help="put the N best hypotheses with their scores in the JSON ('nbest'; needs a beam "
        "search: the lexicon + LM search or --beam-size N or more)",
    )
    online = parser.add_argument_group(
        "online decoding",
        "A forward-only model decodes the audio as it arrives: each word goes to stdout as "
        "soon as it is final, as SOURCE<TAB>START<TAB>END<TAB>WORD (raw times in seconds), "
        "instead of one line per input. Greedy; running CMVN for models trained with "
        "per-speaker or per-utterance CMVN. - reads a WAV stream from stdin as it comes "
        "(at the model's sample rate, e.g. arecord -f S16_LE -r 16000 -t wav); files are read "
        "whole and fed in chunks. --format/--output-dir files are written at each input's end.",
    )
    online.add_argument("--online", action="store_true", help="decode as the audio arrives")
    online.add_argument(
        "--chunk-ms",
        type=float,
        default=100.0,
        help="milliseconds of audio fed at a time (default 100)",
    )
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


def escape_name(name: str) -> str:
    """``name`` safe for one ``SOURCE<TAB>TEXT`` line: tab, newline, CR, backslash escaped."""
    if not any(c in name for c in "\\\t\n\r"):
        return name
    return name.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _stdin_to_file() -> Path:
    """Audio bytes on stdin -> a temporary file (load_audio then checks it like any file)."""
    if sys.stdin.isatty():
        raise AudioError(f"{STDIN_NAME}: is a terminal; pipe audio bytes into it")
    try:
        fd, tmp = tempfile.mkstemp(prefix="asr-stdin-", suffix=".audio")
    except OSError as exc:
        raise AudioError(f"{STDIN_NAME}: cannot make a temporary copy ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            while chunk := sys.stdin.buffer.read(1 << 20):
                handle.write(chunk)
    except BaseException as exc:
        # Ctrl-C or SIGTERM while reading, or a full /tmp: no copy left behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise AudioError(f"{STDIN_NAME}: cannot store the audio ({exc.strerror})") from None
        raise
    return Path(tmp)


# A write error that means no file can be written to the output folder any more: after the
# first one the transcripts go to stdout only, rather than one error line per remaining input.
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def _check_output_dir(out_dir: Path) -> None:
    """An output folder that cannot be made or written is one line before any work is done."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{out_dir}: cannot create the output folder ({exc.strerror})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"{out_dir}: output folder is not writable")


def run(args: argparse.Namespace) -> int:
    # torch comes with these: imported here so that `asr --help` and other commands start fast

    if args.max_window_seconds <= 0:
        raise ConfigError(f"--max-window-seconds {args.max_window_seconds}: must be positive")
    if args.batch_seconds <= 0:
        raise ConfigError(f"--batch-seconds {args.batch_seconds}: must be positive")
    if args.nbest < 1:
        raise ConfigError(f"--nbest {args.nbest}: must be at least 1")
    if args.beam_size is not None and args.beam_size < 1:
        raise ConfigError(f"--beam-size {args.beam_size}: must be at least 1")
    formats: list[str] = []
    if args.format is not None:
        formats = parse_formats(args.format)
    elif args.output_dir is not None:
        formats = ["txt"]
    out_dir = Path(args.output_dir or ".")
    if args.inputs.count("-") > 1:
        raise ConfigError("- (stdin) given more than once")

    if args.data_dir:
        if len(args.inputs) != 1:
            raise ConfigError("--data-dir takes one INPUT, the data dir")
        if args.online:
            raise ConfigError("--online reads audio as it arrives; not with --data-dir")
        if args.output_dir is None:
            raise ConfigError("--data-dir needs --output-dir (for OUTPUT_DIR/text)")
        # only the formats asked for: OUTPUT_DIR/text is the data dir's transcript
        return run_datadir(args, parse_formats(args.format) if args.format else [], out_dir)
    if args.nj != 1:
        raise ConfigError("--nj splits a data dir: give --data-dir")
    if args.online:
        return run_online(args, formats, out_dir)
    recognizer = _load(args)

    if formats:
        _check_output_dir(out_dir)
    inputs, failures = expand_inputs(args.inputs)
    for line in failures:
        print(f"asr transcribe: error: {escape_name(line)}", file=sys.stderr)
    inputs, repeats = assign_stems(inputs)
    stem_of = dict(inputs)

    stdin_file: Path | None = None
    names: dict[str, str] = {}  # path read -> name shown
    paths: list[str] = []
    write_error: str | None = None  # set once the output folder takes no more files
    done = 0
    audio_seconds = 0.0
    start = time.perf_counter()
    try:
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
        results = recognizer.transcribe_many(
            paths, batch_seconds=args.batch_seconds, progress=not args.no_progress
        )
        for path, result in results:
            name = names[str(path)]
            if isinstance(result, AsrError):
                message = str(result)
                if name != path:
                    message = message.replace(str(path), name)
                print(f"asr transcribe: error: {escape_name(message)}", file=sys.stderr)
                failures.append(message)
                fault_point("utterance")
                continue
            result.source = name
            written = True
            if formats and write_error is None:
                try:
                    write_transcript(result, out_dir, stem_of[str(path)], formats)
                except OSError as exc:
                    written = False
                    target = exc.filename or out_dir / stem_of[str(path)]
                    message = f"{target}: cannot write ({exc.strerror or exc})"
                    if exc.errno in _DISK_ERRORS:
                        write_error = message
                        message += "; no more files are written, transcripts go to stdout only"
                    print(f"asr transcribe: error: {escape_name(message)}", file=sys.stderr)
            elif formats:
                written = False  # the disk error above was reported once
            # the stdout line even when its files failed: the transcript itself is good
            print(f"{escape_name(name)}\t{result.text}", flush=True)
            if written:
                done += 1
            else:
                failures.append(f"{name}: files not written")
            audio_seconds += result.duration
            fault_point("utterance")
    finally:
        if stdin_file is not None:
            with contextlib.suppress(OSError):
                stdin_file.unlink()
    how = f"{recognizer.search.description}; {recognizer.backend} {recognizer.precision}"
    _summary(f"{_files(done)} transcribed", audio_seconds, start, "", failures, repeats, how)
    return 1 if failures else 0


def _files(count: int) -> str:
    return f"{count} file{'' if count == 1 else 's'}"


def _summary(
    what: str,
    audio_seconds: float,
    start: float,
    detail: str,
    failures: list[str],
    repeats: int,
    how: str,
) -> None:
    """The last line, on stderr so that stdout holds transcripts only: what was done, hours of
    audio, time and real-time factor (plus ``detail``), failures, repeats, and the decoder."""
    elapsed = time.perf_counter() - start
    rtf = elapsed / audio_seconds if audio_seconds else 0.0
    repeated = f", {repeats} repeated input{'' if repeats == 1 else 's'} skipped" if repeats else ""
    print(
        f"asr transcribe: {what} ({audio_seconds / 3600:.3f} h of audio in {elapsed:.1f} s, "
        f"real-time factor {rtf:.4f}{detail}), {len(failures)} failed{repeated}; {how}",
        file=sys.stderr,
    )


def run_online(args: argparse.Namespace, formats: list[str], out_dir: Path) -> int:
    """``--online``: each input decoded chunk by chunk, its words printed as they are final."""
    offline_only = [
        name
        for name, given in (
            ("--beam-size", args.beam_size is not None),
            ("--lm-weight", args.lm_weight is not None),
            ("--word-score", args.word_score is not None),
            ("--nbest", args.nbest != 1),
            ("--backend onnxruntime", args.backend != "torch"),
            ("--vtln", args.vtln is not None),
        )
        if given
    ]
    if offline_only:
        raise ConfigError(
            f"online decoding is greedy with torch: {', '.join(offline_only)} do not apply"
        )
    if not args.chunk_ms > 0:
        raise ConfigError(f"--chunk-ms {args.chunk_ms}: must be positive")
    recognizer = load_online_model(
        args.model,
        device=args.device,
        threads=args.threads,
        precision="bf16" if args.bf16 else args.precision,
    )
    if formats:
        _check_output_dir(out_dir)
    inputs, failures = expand_inputs(args.inputs)
    for line in failures:
        print(f"asr transcribe: error: {escape_name(line)}", file=sys.stderr)
    inputs, repeats = assign_stems(inputs)
    rate = recognizer.sample_rate
    block = max(1, int(round(args.chunk_ms / 1000.0 * rate)))
    done = 0
    audio_seconds = 0.0
    start = time.perf_counter()
    for path, stem in inputs:
        name = STDIN_NAME if path == "-" else path
        try:
            if path == "-":
                got, blocks = wav_stream(sys.stdin.buffer, STDIN_NAME, block)
                if got != rate:
                    raise AudioError(
                        f"{STDIN_NAME}: {got} Hz audio; online decoding of a stream needs the "
                        f"model's {rate} Hz (e.g. sox - -r {rate} -t wav -)"
                    )
            else:
                try:
                    wave, _ = load_audio(path, rate)
                except OSError as exc:
                    raise AudioError(f"{path}: cannot read ({exc.strerror or exc})") from None
                blocks = (wave[i : i + block] for i in range(0, len(wave), block))
            for chunk in blocks:
                for word in recognizer.accept(chunk):
                    _print_word(name, word)
            last, transcript = recognizer.finish(source=name)
        except AsrError as exc:
            recognizer.reset()
            print(f"asr transcribe: error: {escape_name(str(exc))}", file=sys.stderr)
            failures.append(str(exc))
            continue
        for word in last:
            _print_word(name, word)
        if formats:
            try:
                write_transcript(transcript, out_dir, stem, formats)
            except OSError as exc:
                target = exc.filename or out_dir / stem
                message = f"{target}: cannot write ({exc.strerror or exc})"
                print(f"asr transcribe: error: {escape_name(message)}", file=sys.stderr)
                failures.append(message)
                continue
        done += 1
        audio_seconds += transcript.duration
    chunks = f", chunks of {args.chunk_ms:g} ms"
    how = f"greedy, online; torch {recognizer.precision}"
    _summary(
        f"{_files(done)} transcribed online", audio_seconds, start, chunks, failures, repeats, how
    )
    return 1 if failures else 0


def _print_word(name: str, word: TimedUnit) -> None:
    print(f"{escape_name(name)}\t{word.start:.2f}\t{word.end:.2f}\t{word.text}", flush=True)


def _load(args: argparse.Namespace):
    """The recognizer the options ask for; a bad model file is one line before anything else."""
    return load_model(
        args.model,
        device=args.device,
        threads=args.threads,
        precision="bf16" if args.bf16 else args.precision,
        backend=args.backend,
        max_window_seconds=args.max_window_seconds,
        overlap_seconds=min(DEFAULT_OVERLAP_SECONDS, args.max_window_seconds / 4),
        beam_size=args.beam_size,
        lm_weight=args.lm_weight,
        word_score=args.word_score,
        use_lm=not args.no_lm,
        nbest=args.nbest,
        vtln=parse_warp_grid(args.vtln) if args.vtln is not None else None,
    )


def run_datadir(args: argparse.Namespace, formats: list[str], out_dir: Path) -> int:
    """--data-dir: every utterance of a Kaldi data dir, OUTPUT_DIR/text by utterance id;
    with --nj, split by speaker and run as jobs, the texts merged in the data dir's order."""
    data_dir = Path(args.inputs[0])
    if args.nj > 1:
        load_package(args.model)  # a bad model file is one line before any job starts
        _check_output_dir(out_dir)
        launcher = Launcher.parse(args.cmd)
        launcher.check()  # an unreachable scheduler is one line before anything is split
        parts = split_for_jobs(data_dir, args.nj)
        split = out_dir / parts[0].parent.name
        options = _datadir_job_options(args)
        jobs = [
            [
                *ASR,
                "transcribe",
                args.model,
                "--data-dir",
                str(part),
                "--output-dir",
                str(split / part.name),
                *options,
            ]
            for part in parts
        ]
        run_jobs(launcher, "transcribe", jobs, out_dir / "log")
        texts: dict[str, str] = {}
        for part in parts:
            texts.update(read_transcripts(split / part.name / "text"))
        write_transcripts(out_dir / "text", texts)
        if formats:  # each job wrote its files by utterance id; they move up unchanged
            for part in parts:
                for path in (split / part.name).iterdir():
                    if path.is_file() and path.name != "text":
                        path.replace(out_dir / path.name)
        print(
            f"asr transcribe: {len(texts)} utterances of {data_dir} in {len(parts)} jobs "
            f"into {out_dir / 'text'}",
            file=sys.stderr,
        )
        return 0
    recognizer = _load(args)
    data = DataDir.load(data_dir)
    _check_output_dir(out_dir)
    failures: list[str] = []
    utt_of: dict[int, str] = {}

    def waves():
        for utt in data.utt_ids:
            try:
                wave, rate = data.load_audio(utt, recognizer.sample_rate, args.allow_pipes)
            except AsrError as exc:
                print(f"asr transcribe: error: {escape_name(str(exc))}", file=sys.stderr)
                failures.append(utt)
                continue
            item = (wave, rate)
            utt_of[id(item)] = utt
            yield item

    texts = {}
    start = time.perf_counter()
    audio_seconds = 0.0
    for item, result in recognizer.transcribe_many(
        waves(), batch_seconds=args.batch_seconds, progress=not args.no_progress
    ):
        utt = utt_of.pop(id(item))
        if isinstance(result, AsrError):
            print(f"asr transcribe: error: {utt}: {escape_name(str(result))}", file=sys.stderr)
            failures.append(utt)
            continue
        result.source = utt
        texts[utt] = result.text
        audio_seconds += result.duration
        if formats:
            write_transcript(result, out_dir, utt, formats)
    write_transcripts(out_dir / "text", texts)
    what = f"{len(texts)} utterances of {data_dir} transcribed"
    how = f"{recognizer.search.description}; {recognizer.backend} {recognizer.precision}"
    _summary(what, audio_seconds, start, "", failures, 0, how)
    return 1 if failures else 0


def _datadir_job_options(args: argparse.Namespace) -> list[str]:
    """What each job of --data-dir --nj transcribes with: the same model options."""
    options = ["--no-progress", "--device", args.device, "--precision", args.precision]
    options += ["--backend", args.backend, "--batch-seconds", repr(args.batch_seconds)]
    options += ["--max-window-seconds", repr(args.max_window_seconds), "--nbest", str(args.nbest)]
    pairs = [
        ("--threads", args.threads),
        ("--beam-size", args.beam_size),
        ("--lm-weight", args.lm_weight),
        ("--word-score", args.word_score),
        ("--format", args.format),
        ("--vtln", args.vtln),
    ]
    options += [item for flag, value in pairs if value is not None for item in (flag, str(value))]
    flags = [("--bf16", args.bf16), ("--no-lm", args.no_lm), ("--allow-pipes", args.allow_pipes)]
    return options + [flag for flag, on in flags if on]
