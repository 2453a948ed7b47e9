"""asr: BiLSTM-CTC speech recognition with Kaldi-compatible features."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asr.version import __version__

if TYPE_CHECKING:
    from asr.transcribe import load_model

__all__ = ["__version__", "load_model"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import asr` (and every `asr` command's start) does not import torch.
    if name == "load_model":
        from asr.transcribe import load_model

        return load_model
    raise AttributeError(f"module 'asr' has no attribute {name!r}")
