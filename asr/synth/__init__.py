"""Speech synthesis for the offline corpus: engines, phone labels and prompts."""
