"""Transcription: a Recognizer over audio files of any length, and the transcript writers.

``asr.load_model(path)`` (here :func:`load_model`) is the Python entry point; ``asr transcribe``
wraps it.
"""

from asr.transcribe.recognizer import Recognizer, Transcript, load_model

__all__ = ["Recognizer", "Transcript", "load_model"]
