"""Mixed precision: which autocast dtype a device supports, and the context that applies it.

``auto`` means bf16 where the hardware runs it natively (a CUDA GPU with bf16, or a CPU whose
oneDNN has a bf16 LSTM: AVX-512 BF16 or AMX), fp16 on older GPUs, and fp32 otherwise. On a CPU
without native bf16, PyTorch's fallback LSTM under autocast was measured here about 20x slower
than fp32, so ``auto`` does not use it and an explicit ``bf16`` is refused with the reason.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from asr.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@functools.cache
def cpu_supports_bf16() -> bool:
    """True when a bf16 LSTM forward and backward run through oneDNN on this CPU."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):
        pass  # older builds lack the query: the probe below decides
    try:
        lstm = torch.nn.LSTM(4, 4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = lstm(torch.randn(3, 2, 4))
        out.float().sum().backward()
    except RuntimeError:
        return False  # "could not create a primitive descriptor": no bf16 kernels
    return True


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        bf16_ok = torch.cuda.is_bf16_supported()
        if precision == "fp16" or (precision == "auto" and not bf16_ok):
            return torch.float16
        if not bf16_ok:
            raise ConfigError(f"precision bf16: {torch.cuda.get_device_name(device)} lacks bf16")
        return torch.bfloat16
    if precision == "fp16":
        raise ConfigError("precision fp16 needs a CUDA device; on CPU use bf16 or fp32")
    if cpu_supports_bf16():
        return torch.bfloat16
    if precision == "bf16":
        raise ConfigError(
            "precision bf16: this CPU has no native bf16 (needs AVX-512 BF16 or AMX); "
            "use precision fp32 or auto"
        )
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast to ``dtype`` on ``device``; a no-op for None (fp32)."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield
