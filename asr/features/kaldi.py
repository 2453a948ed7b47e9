"""Kaldi-compatible fbank and MFCC in torch.

``fbank`` and ``mfcc`` follow Kaldi's ``compute-fbank-feats`` / ``compute-mfcc-feats`` step by step
(framing, dither, DC removal, raw energy, pre-emphasis, window, power spectrum, Kaldi mel banks,
log, DCT, lifter) and take Kaldi's option names and defaults as keyword arguments. They are
checked against kaldi-native-fbank (Kaldi's own feature code) to 1e-3 in the log domain. Input is
on Kaldi's sample scale (int16 range, not [-1, 1]); a 1-D waveform gives ``(frames, dim)``, a
``(B, T)`` batch of equal-length waveforms gives ``(B, frames, dim)``. Everything runs on the
input tensor's device (CPU or GPU); constant matrices are cached per options, device and dtype.

Not implemented: VTLN warping (``vtln_warp`` other than 1.0 raises ``ConfigError``). ``dither``
keeps Kaldi's default of 1.0 but draws its noise from torch's RNG, not Kaldi's (seed it with
``torch.manual_seed`` for repeatable features); pass ``dither=0`` for deterministic output.

Speed (CPU): frames are processed in cache-sized blocks with the spectrum in float64 (exact, see
``_mel_block``). Each block runs single-threaded; ``torch.get_num_threads()`` threads work on
separate blocks instead (torch's own intra-op threads are set to 1 during the call and restored).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from asr.errors import AudioError, ConfigError

log = logging.getLogger(__name__)


# Kaldi's floor for log(): std::numeric_limits<float>::epsilon().
_FLT_EPSILON = float(np.finfo(np.float32).eps)

# Kaldi's defaults, shared by fbank and mfcc (FrameExtractionOptions + MelBanksOptions).
_FRAME_DEFAULTS: dict[str, Any] = {
    "frame_length": 25.0,
    "frame_shift": 10.0,
    "dither": 1.0,
    "preemphasis_coefficient": 0.97,
    "remove_dc_offset": True,
    "window_type": "povey",
    "blackman_coeff": 0.42,
    "round_to_power_of_two": True,
    "snip_edges": True,
    "low_freq": 20.0,
    "high_freq": 0.0,
    "vtln_warp": 1.0,
    "energy_floor": 0.0,
    "raw_energy": True,
    "htk_compat": False,
    "min_duration": 0.0,
}
FBANK_DEFAULTS: dict[str, Any] = {
    **_FRAME_DEFAULTS,
    "num_mel_bins": 23,
    "use_energy": False,
    "use_log_fbank": True,
    "use_power": True,
}
MFCC_DEFAULTS: dict[str, Any] = {
    **_FRAME_DEFAULTS,
    "num_mel_bins": 23,
    "num_ceps": 13,
    "use_energy": True,
    "cepstral_lifter": 22.0,
}
WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "blackman", "sine")
KINDS = ("fbank", "mfcc")
CMVN_MODES = ("speaker", "utterance", "global", "none")


def resolve_options(defaults: Mapping[str, Any], opts: Mapping[str, Any], what: str) -> dict:
    unknown = sorted(set(opts) - set(defaults))
    if unknown:
        raise ConfigError(f"{what}: unknown option(s) {', '.join(unknown)}")
    resolved = {**defaults, **opts}
    if resolved["window_type"] not in WINDOW_TYPES:
        raise ConfigError(
            f"{what}: window_type {resolved['window_type']!r} is not one of "
            f"{', '.join(WINDOW_TYPES)}"
        )
    _check_ranges(resolved, what)
    if float(resolved["vtln_warp"]) != 1.0:
        raise ConfigError(f"{what}: vtln_warp is not supported (only 1.0)")
    return resolved


# Numeric options and the values Kaldi accepts (its asserts in feature-window.cc,
# mel-computations.cc and feature-mfcc.cc); "finite" alone means any real number. Kaldi's
# MelBanks refuses fewer than 3 mel bins.
_RANGES: dict[str, tuple[str, Any]] = {
    "frame_length": ("> 0", lambda v: v > 0),
    "frame_shift": ("> 0", lambda v: v > 0),
    "dither": (">= 0", lambda v: v >= 0),
    "preemphasis_coefficient": ("in [0, 1]", lambda v: 0 <= v <= 1),
    "blackman_coeff": ("finite", lambda v: True),
    "low_freq": (">= 0", lambda v: v >= 0),
    "high_freq": ("finite (<= 0: an offset from the Nyquist frequency)", lambda v: True),
    "vtln_warp": ("> 0", lambda v: v > 0),
    "energy_floor": (">= 0", lambda v: v >= 0),
    "min_duration": (">= 0", lambda v: v >= 0),
    "num_mel_bins": (">= 3", lambda v: v >= 3),
    "num_ceps": (">= 1", lambda v: v >= 1),
    "cepstral_lifter": ("finite", lambda v: True),
}


def _check_ranges(opts: Mapping[str, Any], what: str) -> None:
    """ConfigError naming the first numeric option that is non-finite or out of range."""
    for name, (rule, ok) in _RANGES.items():
        if name not in opts:
            continue
        value = opts[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{what}: option {name}={value!r}: expected a number")
        if not math.isfinite(value) or not ok(value):
            raise ConfigError(f"{what}: option {name}={value!r}: must be {rule}")


# ---------------------------------------------------------------------------------------------
# Cached constants: window, mel matrix, DCT matrix (built in float64, cast once per device/dtype)
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _window(
    window_type: str, length: int, blackman_coeff: float, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    # Kaldi's FeatureWindowFunction: a = 2*pi / (N - 1), evaluated in double.
    n = torch.arange(length, dtype=torch.float64)
    a = 2.0 * math.pi / (length - 1) if length > 1 else 0.0
    if window_type == "hanning":
        w = 0.5 - 0.5 * torch.cos(a * n)
    elif window_type == "sine":
        w = torch.sin(0.5 * a * n)
    elif window_type == "hamming":
        w = 0.54 - 0.46 * torch.cos(a * n)
    elif window_type == "povey":
        w = (0.5 - 0.5 * torch.cos(a * n)).pow(0.85)
    elif window_type == "rectangular":
        w = torch.ones(length, dtype=torch.float64)
    else:  # blackman
        w = (
            blackman_coeff
            - 0.5 * torch.cos(a * n)
            + (0.5 - blackman_coeff) * torch.cos(2.0 * a * n)
        )
    return w.to(device=device, dtype=dtype)


def mel_scale(freq: torch.Tensor | float) -> torch.Tensor | float:
    """Kaldi's mel scale: 1127 ln(1 + f / 700)."""
    if isinstance(freq, torch.Tensor):
        return 1127.0 * torch.log1p(freq / 700.0)
    return 1127.0 * math.log1p(freq / 700.0)


@functools.lru_cache(maxsize=64)
def mel_matrix(
    num_bins: int,
    padded_window_size: int,
    sample_rate: float,
    low_freq: float,
    high_freq: float,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Kaldi's MelBanks as a ``(padded/2 + 1, num_bins)`` matrix (the Nyquist row is zero)."""
    num_fft_bins = padded_window_size // 2
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq = nyquist + high_freq
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and high_freq > low_freq):
        raise ConfigError(
            f"bad mel frequency range: low_freq={low_freq}, high_freq={high_freq}, "
            f"nyquist={nyquist}"
        )
    fft_bin_width = sample_rate / padded_window_size
    mel_low = mel_scale(low_freq)
    mel_high = mel_scale(high_freq)
    mel_delta = (mel_high - mel_low) / (num_bins + 1)
    bins = torch.arange(num_bins, dtype=torch.float64).unsqueeze(1)
    left = mel_low + bins * mel_delta
    center = mel_low + (bins + 1.0) * mel_delta
    right = mel_low + (bins + 2.0) * mel_delta
    mel = mel_scale(fft_bin_width * torch.arange(num_fft_bins, dtype=torch.float64)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    weights = torch.where(mel <= center, up, down)
    weights = torch.where((mel > left) & (mel < right), weights, torch.zeros_like(weights))
    empty = torch.nonzero((weights > 0).sum(dim=1) == 0).flatten()
    if len(empty):
        # Kaldi's MelBanks refuses this too ("bin is empty"): an empty bin is log(eps) forever.
        raise ConfigError(
            f"num_mel_bins={num_bins} is too many at {sample_rate:g} Hz with a "
            f"{padded_window_size}-point FFT ({low_freq:g}-{high_freq:g} Hz): mel bin "
            f"{int(empty[0])} covers no FFT bin"
        )
    # Kaldi never weights the Nyquist bin; a zero row keeps the matmul on the full rfft output.
    matrix = torch.zeros(num_fft_bins + 1, num_bins, dtype=torch.float64)
    matrix[:num_fft_bins] = weights.T
    return matrix.to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=32)
def _dct_lifter_matrix(
    num_bins: int, num_ceps: int, cepstral_lifter: float, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Kaldi's ComputeDctMatrix (first num_ceps rows), lifter folded in: ``(bins, ceps)``."""
    k = torch.arange(num_ceps, dtype=torch.float64).unsqueeze(1)
    n = torch.arange(num_bins, dtype=torch.float64).unsqueeze(0)
    dct = torch.cos(math.pi / num_bins * (n + 0.5) * k) * math.sqrt(2.0 / num_bins)
    dct[0] = math.sqrt(1.0 / num_bins)
    if cepstral_lifter != 0.0:
        lifter = 1.0 + 0.5 * cepstral_lifter * torch.sin(math.pi * k / cepstral_lifter)
        dct = dct * lifter
    return dct.T.contiguous().to(device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Framing and the shared front end
# ---------------------------------------------------------------------------------------------


def frame_sizes(sample_rate: float, opts: Mapping[str, Any]) -> tuple[int, int, int]:
    window_size = int(sample_rate * 0.001 * float(opts["frame_length"]))
    window_shift = int(sample_rate * 0.001 * float(opts["frame_shift"]))
    if window_size < 2 or window_shift < 1:
        raise ConfigError(
            f"frame_length={opts['frame_length']} ms / frame_shift={opts['frame_shift']} ms "
            f"too short at {sample_rate} Hz"
        )
    padded = window_size
    if opts["round_to_power_of_two"]:
        padded = 1 << (window_size - 1).bit_length()
    return window_size, window_shift, padded


def num_frames(num_samples: int, sample_rate: float = 16000.0, **opts: Any) -> int:
    """Number of frames Kaldi produces for ``num_samples`` samples (ignores min_duration)."""
    opts = resolve_options(FBANK_DEFAULTS | MFCC_DEFAULTS, opts, "num_frames")
    size, shift, _ = frame_sizes(sample_rate, opts)
    return _num_frames(num_samples, size, shift, bool(opts["snip_edges"]))


def _num_frames(num_samples: int, size: int, shift: int, snip_edges: bool) -> int:
    if snip_edges:
        return 0 if num_samples < size else 1 + (num_samples - size) // shift
    return (num_samples + shift // 2) // shift


def _extract_frames(wave: torch.Tensor, size: int, shift: int, snip_edges: bool) -> torch.Tensor:
    """``(B, T)`` -> ``(B, frames, size)`` without copying when snip_edges (a strided view)."""
    num_samples = wave.shape[-1]
    n = _num_frames(num_samples, size, shift, snip_edges)
    if n == 0:
        return wave.new_zeros(wave.shape[0], 0, size)
    if not snip_edges:
        # Frames centred on k*shift + shift/2; samples outside [0, T) are reflected like Kaldi's
        # ExtractWindow (s -> -s-1 on the left, 2T-1-s on the right, repeated for tiny inputs).
        first = shift // 2 - size // 2
        last_end = (n - 1) * shift + first + size
        left = max(0, -first)
        right = max(0, last_end - num_samples)
        if left or right:
            idx = torch.arange(-left, num_samples + right, device=wave.device)
            while True:
                low = idx < 0
                high = idx >= num_samples
                if not (low.any() or high.any()):
                    break
                idx = torch.where(low, -idx - 1, idx)
                idx = torch.where(high, 2 * num_samples - 1 - idx, idx)
            wave = wave[:, idx]
        start = first + left
        wave = wave[:, start : start + (n - 1) * shift + size]
    return wave.unfold(-1, size, shift)[:, :n]


# Frames per block on the CPU: a block's float64 buffers stay in cache, which is worth ~3x over
# one pass per step on the whole signal. Other devices take the whole batch in one block.
_CPU_BLOCK_FRAMES = 256


@dataclasses.dataclass(frozen=True)
class _Plan:
    """Everything a block needs, resolved once per call."""

    size: int
    shift: int
    padded: int
    dither: float
    remove_dc: bool
    preemph: float
    window: torch.Tensor  # float64, on the device
    energy: str  # "", "raw" (before pre-emphasis and window) or "windowed"
    energy_floor: float
    use_power: bool
    mel: torch.Tensor  # (padded/2 + 1, bins), output dtype


def _make_plan(
    sample_rate: float,
    opts: Mapping[str, Any],
    use_energy: bool,
    device: torch.device,
    dtype: torch.dtype,
) -> _Plan:
    size, shift, padded = frame_sizes(sample_rate, opts)
    energy = ("raw" if opts["raw_energy"] else "windowed") if use_energy else ""
    return _Plan(
        size=size,
        shift=shift,
        padded=padded,
        dither=float(opts["dither"]),
        remove_dc=bool(opts["remove_dc_offset"]),
        preemph=float(opts["preemphasis_coefficient"]),
        window=_window(
            str(opts["window_type"]), size, float(opts["blackman_coeff"]), device, torch.float64
        ),
        energy=energy,
        energy_floor=float(opts["energy_floor"]),
        use_power=bool(opts.get("use_power", True)),
        mel=mel_matrix(
            int(opts["num_mel_bins"]),
            padded,
            float(sample_rate),
            float(opts["low_freq"]),
            float(opts["high_freq"]),
            device,
            dtype,
        ),
    )


def _mel_block(
    frames: torch.Tensor,
    plan: _Plan,
    buffer: torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Raw frames ``(..., size)`` -> mel energies ``(..., bins)`` and log energy ``(...,)``.

    The spectrum is computed in float64: kaldi-native-fbank's float32 FFT is off by up to a few
    1e-3 (log domain) on weak mel bins of loud frames, and float32 here doubled that; in float64
    the result is exact to output precision, so the difference to Kaldi is Kaldi's rounding only.
    ``buffer`` is a zeroed ``(..., padded)`` float64 scratch whose tail stays zero.
    """
    size = plan.size
    x = frames.to(torch.float64, copy=True)
    if plan.dither != 0.0:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x.add_(noise, alpha=plan.dither)
    if plan.remove_dc:
        x.sub_(x.mean(dim=-1, keepdim=True))
    log_energy = None
    if plan.energy == "raw":
        log_energy = torch.linalg.vecdot(x, x)
    body = buffer[..., :size]
    if plan.preemph != 0.0:
        # Kaldi's Preemphasize: x[i] -= c * x[i-1] for i > 0, then x[0] -= c * x[0].
        torch.sub(x[..., 1:], x[..., :-1], alpha=plan.preemph, out=body[..., 1:])
        torch.mul(x[..., 0], 1.0 - plan.preemph, out=body[..., 0])
        body.mul_(plan.window)
    else:
        torch.mul(x, plan.window, out=body)
    if plan.energy == "windowed":
        log_energy = torch.linalg.vecdot(body, body)
    spectrum = torch.view_as_real(torch.fft.rfft(buffer, dim=-1))
    # re^2 + im^2 as two slices: a reduction over the size-2 last axis is ~20x slower on CPU.
    power = spectrum[..., 0].square().add_(spectrum[..., 1].square())
    if not plan.use_power:
        power.sqrt_()
    mel = torch.matmul(power.to(plan.mel.dtype), plan.mel)
    if log_energy is not None:
        log_energy = log_energy.clamp_min_(_FLT_EPSILON).log_()
        if plan.energy_floor > 0.0:
            log_energy = log_energy.clamp_min_(math.log(plan.energy_floor))
        log_energy = log_energy.to(plan.mel.dtype)
    return mel, log_energy


def _compute(
    waveform: torch.Tensor,
    sample_rate: float,
    opts: Mapping[str, Any],
    use_energy: bool,
    dim: int,
    finish: Any,
) -> torch.Tensor:
    """Frame ``waveform`` and run ``finish(mel, log_energy) -> (..., dim)`` block by block."""
    batch, single = _as_batch(waveform)
    if not all_finite(batch):
        raise AudioError("waveform contains NaN or infinite samples")
    dtype = torch.float64 if batch.dtype == torch.float64 else torch.float32
    batch_size, num_samples = batch.shape
    if num_samples < float(opts["min_duration"]) * sample_rate:
        out = batch.new_zeros(batch_size, 0, dim, dtype=dtype)
        return out[0] if single else out
    plan = _make_plan(sample_rate, opts, use_energy, batch.device, dtype)
    frames = _extract_frames(batch, plan.size, plan.shift, bool(opts["snip_edges"]))
    num = frames.shape[1]
    out = torch.empty(batch_size, num, dim, dtype=dtype, device=batch.device)
    if num > 0 and batch.device.type != "cpu":
        buffer = torch.zeros(batch_size, num, plan.padded, dtype=torch.float64, device=batch.device)
        out.copy_(finish(*_mel_block(frames, plan, buffer)))
    elif num > 0:
        _run_cpu_blocks(frames, plan, finish, out)
    if not all_finite(out):
        # Samples far outside the int16 range (float audio of 1e29) overflow the float32 power
        # spectrum; NaN/inf features would silently poison CMVN stats and training.
        peak = float(batch.abs().max())
        raise AudioError(
            f"features are not finite: the samples are too large (peak {peak:.3g} on Kaldi's "
            "int16 scale)"
        )
    return out[0] if single else out


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 1


@contextlib.contextmanager
def one_intra_op_thread() -> Iterator[int]:
    """Run torch single-threaded inside; yield the thread count the caller had set.

    torch's thread count is process-wide, so concurrent calls share one save/restore: the first
    caller in saves it, the last one out restores it.
    """
    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
        saved = _threads_saved
    try:
        yield saved
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


def _run_cpu_blocks(frames: torch.Tensor, plan: _Plan, finish: Any, out: torch.Tensor) -> None:
    """Fill ``out`` block by block; torch's threads become workers over blocks.

    Inside a block every op runs single-threaded: a block is too small for torch's intra-op
    threads, whose wake-ups cost more than they save (on a loaded machine 2 threads made this
    10-100x slower than 1). Parallelism instead comes from running blocks on
    ``torch.get_num_threads()`` Python threads (torch releases the GIL inside ops). Dither noise
    comes from one seed per block drawn from torch's global RNG, so results do not depend on
    the thread count. The intra-op thread count is restored on return.
    """
    batch_size, num = frames.shape[:2]
    block = min(num, _CPU_BLOCK_FRAMES)
    jobs = [(b, start) for b in range(batch_size) for start in range(0, num, block)]
    if plan.dither != 0.0:
        seeds: list[int | None] = torch.randint(2**62, (len(jobs),)).tolist()
    else:
        seeds = [None] * len(jobs)

    def work(part: list[tuple[tuple[int, int], int | None]]) -> None:
        buffer = torch.zeros(block, plan.padded, dtype=torch.float64)
        for (b, start), seed in part:
            chunk = frames[b, start : start + block]
            n = chunk.shape[0]
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            out[b, start : start + n] = finish(*_mel_block(chunk, plan, buffer[:n], generator))

    tasks = list(zip(jobs, seeds, strict=True))
    with one_intra_op_thread() as threads:
        # Below ~4 blocks per worker the pool costs more than it gives.
        workers = max(1, min(threads, len(tasks) // 4))
        if workers == 1:
            work(tasks)
        else:
            step = -(-len(tasks) // workers)
            parts = [tasks[i : i + step] for i in range(0, len(tasks), step)]
            with ThreadPoolExecutor(max_workers=len(parts)) as pool:
                list(pool.map(work, parts))


def all_finite(x: torch.Tensor) -> bool:
    """Whether every element of ``x`` is finite (True for an empty or integer tensor).

    One min/max pass, NaN propagating through both: on CPU about 10x cheaper than
    ``isfinite(x).all()``, which took a tenth of feature extraction at four calls per utterance
    (docs/benchmarks.md, "Jobs").
    """
    if x.numel() == 0 or not (x.is_floating_point() or x.is_complex()):
        return True
    if x.is_complex():
        x = torch.view_as_real(x)
    lo, hi = torch.aminmax(x)
    return math.isfinite(float(lo)) and math.isfinite(float(hi))


def _as_batch(waveform: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if not isinstance(waveform, torch.Tensor):
        waveform = torch.as_tensor(np.asarray(waveform))
    if waveform.dim() not in (1, 2):
        raise ValueError(f"waveform must be (T,) or (B, T), got shape {tuple(waveform.shape)}")
    if not waveform.is_floating_point():
        waveform = waveform.to(torch.float32)
    single = waveform.dim() == 1
    return (waveform.unsqueeze(0) if single else waveform), single


def fbank(waveform: torch.Tensor, sample_rate: float = 16000.0, **opts: Any) -> torch.Tensor:
    """Kaldi ``compute-fbank-feats``: ``(T,)`` -> ``(frames, dim)``; batches as ``(B, T)``.

    Options (Kaldi names and defaults): num_mel_bins=23, frame_length=25 (ms), frame_shift=10 (ms),
    dither=1.0, preemphasis_coefficient=0.97, remove_dc_offset=True, window_type="povey",
    blackman_coeff=0.42, round_to_power_of_two=True, snip_edges=True, low_freq=20,
    high_freq=0 (<= 0: offset from Nyquist), use_energy=False, energy_floor=0, raw_energy=True,
    htk_compat=False, use_log_fbank=True, use_power=True, min_duration=0 (shorter input gives
    zero frames). ``dim`` is num_mel_bins (+1 with use_energy: first, or last with htk_compat).
    Samples are on Kaldi's int16 scale; integer tensors are converted. The output is float32
    (float64 for float64 input) on the input's device.
    """
    opts = resolve_options(FBANK_DEFAULTS, opts, "fbank")
    use_energy = bool(opts["use_energy"])
    use_log = bool(opts["use_log_fbank"])
    htk_compat = bool(opts["htk_compat"])

    def finish(mel: torch.Tensor, log_energy: torch.Tensor | None) -> torch.Tensor:
        if use_log:
            mel = mel.clamp_min_(_FLT_EPSILON).log_()
        if log_energy is None:
            return mel
        energy = log_energy.unsqueeze(-1)
        return torch.cat([mel, energy] if htk_compat else [energy, mel], dim=-1)

    dim = int(opts["num_mel_bins"]) + int(use_energy)
    return _compute(waveform, sample_rate, opts, use_energy, dim, finish)


def mfcc(waveform: torch.Tensor, sample_rate: float = 16000.0, **opts: Any) -> torch.Tensor:
    """Kaldi ``compute-mfcc-feats``: ``(T,)`` -> ``(frames, num_ceps)``, batches as ``fbank``.

    Options: those of ``fbank`` (except use_log_fbank/use_power) plus num_ceps=13,
    cepstral_lifter=22 and use_energy=True (C0 replaced by the log energy). With htk_compat the
    first coefficient moves last (scaled by sqrt(2) when use_energy is False), as in Kaldi.
    """
    opts = resolve_options(MFCC_DEFAULTS, opts, "mfcc")
    num_bins = int(opts["num_mel_bins"])
    num_ceps = int(opts["num_ceps"])
    if not 0 < num_ceps <= num_bins:
        raise ConfigError(f"mfcc: num_ceps={num_ceps} must be in 1..num_mel_bins={num_bins}")
    use_energy = bool(opts["use_energy"])
    htk_compat = bool(opts["htk_compat"])
    lifter = float(opts["cepstral_lifter"])

    def finish(mel: torch.Tensor, log_energy: torch.Tensor | None) -> torch.Tensor:
        log_mel = mel.clamp_min_(_FLT_EPSILON).log_()
        feats = torch.matmul(
            log_mel, _dct_lifter_matrix(num_bins, num_ceps, lifter, mel.device, mel.dtype)
        )
        if log_energy is not None:
            # Kaldi overwrites C0 with the log energy; C0's lifter factor is 1, so no rescale.
            feats[..., 0] = log_energy
        if htk_compat:
            c0 = feats[..., :1] if use_energy else feats[..., :1] * math.sqrt(2.0)
            feats = torch.cat([feats[..., 1:], c0], dim=-1)
        return feats

    return _compute(waveform, sample_rate, opts, use_energy, num_ceps, finish)
