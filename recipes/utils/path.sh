# Sourced by every recipe's path.sh (Kaldi's path.sh): puts this checkout's programs on PATH,
# so that a recipe runs from its folder right after `make setup` with no PATH of its own:
#   .venv/bin        the virtual environment `make setup` makes: asr, torchrun
#   tools/kenlm/bin  KenLM's lmplz, build_binary, query (tools/install_kenlm.sh); asr lm finds
#                    them there by itself, PATH makes them the shell's too
# A folder that does not exist is skipped; one already on PATH stays where it is (e.g. the
# interpreter's folder a test puts first). .venv/bin ends up first.
_asr_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
for _asr_bin in "$_asr_root/tools/kenlm/bin" "$_asr_root/.venv/bin"; do
  if [ -d "$_asr_bin" ]; then
    case ":${PATH:-}:" in
      *":$_asr_bin:"*) ;;
      *) PATH=$_asr_bin${PATH:+:$PATH} ;;
    esac
  fi
done
export PATH
unset _asr_root _asr_bin
