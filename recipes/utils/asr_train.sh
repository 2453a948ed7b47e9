# asr_train NPROC ARG...: `asr train ARG...` as one process, or with NPROC > 1 as NPROC
# processes on this machine under torchrun (DistributedDataParallel; gloo on CPU), which
# asr train detects from the environment torchrun sets. The recipes' --nproc N.
asr_train() {
  local nproc=$1
  shift
  if ! [[ $nproc =~ ^[0-9]+$ ]]; then
    echo "${0##*/}: --nproc is a number of processes, not '$nproc'" >&2
    return 1
  fi
  if [ "$nproc" -gt 1 ]; then
    torchrun --standalone --nproc_per_node "$nproc" -m asr train "$@"
  else
    asr train "$@"
  fi
}
