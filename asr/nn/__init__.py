"""The network: BiLSTM-CTC model, SpecAugment, precision, model packages, loading and export."""
