"""Exceptions the library raises for bad input.

Every message names the offending file (or utterance) and the problem in one line, so that a
batch job can log it, skip the item and go on.
"""


class AsrError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class AudioError(AsrError):
    """An audio file is missing, empty, corrupt, or cannot be converted."""


class DataDirError(AsrError):
    """A Kaldi data directory (or one of its files) is malformed or inconsistent."""


class ConfigError(AsrError):
    """A configuration file or option is invalid."""


class PackageError(AsrError):
    """A model package or checkpoint cannot be loaded."""


class CorpusError(AsrError):
    """A corpus on disk, or its download, is missing, incomplete, corrupt or unsafe."""


class TrainingError(AsrError):
    """Training cannot go on (e.g. the loss stays NaN or infinite)."""
