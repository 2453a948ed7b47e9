#!/usr/bin/env bash
# slurm_train.sh ASR_TRAIN_ARGS...: `asr train` on every node of a Slurm allocation, one
# torchrun per node with PROCS processes each, the rendezvous on the allocation's first node.
# Submit it as a batch job (or run it inside salloc):
#   sbatch --nodes 2 --gpus-per-node 4 --cpus-per-task 16 --time 48:00:00 \
#     ../utils/slurm_train.sh --config conf/train_960h.yaml --train-dir data/train \
#     --dev-dir data/dev_clean --exp-dir exp/blstm --device cuda --resume
# PROCS: $PROCS_PER_NODE, else the GPUs Slurm gave each node ($SLURM_GPUS_ON_NODE), else 1.
# asr train reads its rank and world size from what torchrun sets, so the command is the one
# a single machine runs; --resume continues from the exp dir's checkpoint after a requeue.
set -euo pipefail
if [ -z "${SLURM_JOB_ID:-}" ]; then
  echo "${0##*/}: not inside a Slurm allocation (submit it with sbatch, or run it in salloc)" >&2
  exit 1
fi
procs=${PROCS_PER_NODE:-${SLURM_GPUS_ON_NODE:-1}}
port=${MASTER_PORT:-29500}
master=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -1)
python=${ASR_PYTHON:-python3}
# one task per node; each starts its node's processes and joins the others at $master
srun --ntasks-per-node=1 --kill-on-bad-exit=1 \
  "$python" -m torch.distributed.run --nnodes "$SLURM_JOB_NUM_NODES" --nproc_per_node "$procs" \
  --rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint "$master:$port" \
  -m asr train "$@"
