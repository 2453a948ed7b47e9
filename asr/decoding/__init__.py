"""Decoding CTC output: greedy, prefix beam, lexicon + LM beam, timings, and decoding a data dir."""
