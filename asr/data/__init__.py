"""Data preparation: Kaldi data directories and their audio (read, trim, crop, perturb, noise)."""
