"""Training: the CTC loop, its config, history and exp dir, checkpoint averaging, curves."""
