"""Corpus preparation: one module per corpus, turning a corpus on disk into data directories."""
