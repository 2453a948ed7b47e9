"""Mixed precision: which autocast dtype a device supports, and the context that applies it.

``auto`` means bf16 where the hardware runs it natively (a CUDA GPU with bf16, or a CPU whose
oneDNN has a bf16 LSTM: AVX-512 BF16 or AMX), fp16 on older GPUs, and fp32 otherwise. On a CPU
without native bf16, PyTorch's fallback LSTM under autocast was measured here about 20x slower
than fp32, so ``auto`` does not use it and an explicit ``bf16`` is refused with the reason.

The environment variable ``ASR_CPU_BF16`` overrides the CPU detection, read at every call so
one machine can run a test both ways:

- unset, empty or ``auto``: detect (the result of the probe is cached);
- ``0``: answer "no native bf16" even where the CPU has it: ``auto`` trains in fp32 and an
  explicit ``bf16`` is refused, naming the switch;
- ``1``: take the bf16 path even where detection says no. On a CPU without native bf16,
  autocast then runs on PyTorch's own (non-oneDNN) kernels: slow, but it exercises the bf16
  code on any machine.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import torch

from asr.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CPU_BF16_ENV = "ASR_CPU_BF16"
_CPU_BF16_CHOICES = {"": None, "auto": None, "0": False, "1": True}


def cpu_bf16_override() -> bool | None:
    """What ``$ASR_CPU_BF16`` asks for: True (``1``), False (``0``) or None (detect)."""
    value = os.environ.get(CPU_BF16_ENV, "").strip().lower()
    if value not in _CPU_BF16_CHOICES:
        raise ConfigError(f"{CPU_BF16_ENV} must be 0, 1 or auto, got {value!r}")
    return _CPU_BF16_CHOICES[value]


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bf16 natively, or when ``$ASR_CPU_BF16`` says to act as if.

    The switch is read at every call (only the hardware probe is cached), so a test can flip it.
    """
    override = cpu_bf16_override()
    return _cpu_has_native_bf16() if override is None else override


@functools.cache
def _cpu_has_native_bf16() -> bool:
    """True when a bf16 LSTM forward and backward run through oneDNN on this CPU."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):
        pass  # older builds lack the query: the probe below decides
    try:
        # the backward needs autograd, whatever context the first caller is in (inference
        # under no_grad or inference_mode made this probe fail, and the cache kept "no")
        with torch.inference_mode(False), torch.enable_grad():
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
        why = (
            f"{CPU_BF16_ENV}=0 says this CPU has no native bf16"
            if cpu_bf16_override() is False
            else "this CPU has no native bf16 (needs AVX-512 BF16 or AMX)"
        )
        raise ConfigError(f"precision bf16: {why}; use precision fp32 or auto")
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast to ``dtype`` on ``device``; a no-op for None (fp32)."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype), _emulated_bf16(device, dtype):
        yield


@contextlib.contextmanager
def _emulated_bf16(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Under ``ASR_CPU_BF16=1`` on a CPU without native bf16, keep the LSTM off oneDNN.

    oneDNN has no bf16 LSTM there ("could not create a primitive descriptor"), so the forced
    path runs PyTorch's own kernels instead; a CPU with native bf16 is left as it is.
    """
    if device.type != "cpu" or dtype != torch.bfloat16 or _cpu_has_native_bf16():
        yield
        return
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled
