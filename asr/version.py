"""The asr version: here, below every stage, so that any stage may record it (packages do)."""

__version__ = "0.1.0"
