"""Synthetic speech for the offline corpus: engines, phone labels, prompts."""
