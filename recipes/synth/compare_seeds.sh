#!/usr/bin/env bash
# The phone model of run.sh trained with several seeds in each precision (fp32 and bf16), so that
# a figure is a mean and spread over seeds rather than one run, and so that bf16 can be checked
# against fp32. Run after stage 1 of run.sh. Prints one %PER line per run (test set, greedy,
# unseen voices) and the mean and standard deviation per precision. See RESULTS.
#
#   ./compare_seeds.sh [--data DIR] [--exp DIR] [--seeds "0 1 2"] [--precisions "fp32 bf16"]
#                      [--parallel N] [--threads N] [--conf FILE]
#
# bf16 needs a CPU with native bf16 (AVX-512 BF16 or AMX) or a GPU; elsewhere asr train refuses
# it with the reason, and the table says so (ASR_CPU_BF16=1 forces PyTorch's slow emulation).
# --parallel N trains N models at once, each with --threads torch threads.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh

data=data                  # run.sh's data directories (after its stage 1)
exp=exp/seeds              # one folder per precision and seed
seeds="0 1 2"              # the seeds of each precision
precisions="fp32 bf16"     # asr train --precision values
parallel=2                 # models trained at once
threads=1                  # torch threads of each
conf=conf/train_phone.yaml # asr train config
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }
mkdir -p "$exp"

train_one() {  # $1 = precision, $2 = seed
  local dir=$exp/$1_seed$2
  if ! asr train --config "$conf" --train-dir "$data/train_phone" --dev-dir "$data/dev_phone" \
      --exp-dir "$dir" --seed "$2" --precision "$1" --threads "$threads" --resume \
      --no-progress > "$dir.out" 2>&1; then
    tail -1 "$dir.out" > "$dir.failed"
    return 0
  fi
  asr decode "$dir/final.pt" "$data/test_phone" "$dir/decode_greedy" --threads "$threads" \
    --no-progress 2>>"$dir/decode.log"
  asr score "$data/test_phone/text" "$dir/decode_greedy/text" --metric PER \
    > "$dir/decode_greedy/per"
}

running=0
for p in $precisions; do
  for s in $seeds; do
    mkdir -p "$exp"
    train_one "$p" "$s" &
    running=$((running + 1))
    if [ "$running" -ge "$parallel" ]; then wait -n; running=$((running - 1)); fi
  done
done
wait

for p in $precisions; do
  pers=()
  for s in $seeds; do
    dir=$exp/${p}_seed$s
    if [ -f "$dir.failed" ]; then
      echo "$p seed $s: not run: $(cat "$dir.failed")"
      continue
    fi
    line=$(head -1 "$dir/decode_greedy/per")
    # the precision the run really used, as train.log's first line states it
    used=$(sed -n 's/.*; precision \([a-z0-9]*\) (asked.*/\1/p' "$dir/train.log" | head -1)
    echo "$p seed $s (trained in $used): $line; $(tail -1 "$dir/train.log" | cut -c3-60)"
    pers+=("$(echo "$line" | awk '{print $2}')")
  done
  if [ "${#pers[@]}" -gt 0 ]; then
    printf '%s\n' "${pers[@]}" | awk -v p="$p" '
      { x[NR] = $1; sum += $1 }
      END { m = sum / NR; for (i = 1; i <= NR; i++) ss += (x[i] - m) ^ 2
            sd = NR > 1 ? sqrt(ss / (NR - 1)) : 0
            printf "%s: %%PER mean %.2f, sd %.2f over %d seed(s)\n", p, m, sd, NR }'
  fi
done
