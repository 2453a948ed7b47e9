"""Corpus preparation: one module per corpus, each turning a corpus on disk into data directories."""
