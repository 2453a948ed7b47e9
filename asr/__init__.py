"""asr: BiLSTM-CTC speech recognition with Kaldi-compatible features."""

__version__ = "0.1.0"
