# Sourced by this recipe's scripts: this checkout's .venv/bin (asr, torchrun) and KenLM's
# tools/kenlm/bin on PATH (see ../utils/path.sh).
. "$(dirname "${BASH_SOURCE[0]}")/../utils/path.sh"
