"""One module per ``asr`` subcommand; each imports the heavy library pieces inside its handler."""
