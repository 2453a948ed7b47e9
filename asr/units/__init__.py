"""Units a model emits and how words map to them: tokens, BPE, lexicons, G2P, phone sets."""
