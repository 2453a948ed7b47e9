"""Language models: ARPA files, KenLM's tools, and the phone bigram."""
