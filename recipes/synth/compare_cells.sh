#!/usr/bin/env bash
# Why LSTM: the phone task with tanh RNN, GRU and LSTM cells, each bidirectional and forward-only,
# at the same parameter count (2.64M, that of the recipe's 3x192 BLSTM), everything else as in
# conf/train_phone.yaml. Run after stage 1 of run.sh. Prints a %PER table for the test set and
# draws the six dev error curves in exp/cells/dev_ter.png. See RESULTS.
#
#   ./compare_cells.sh [--data DIR] [--exp DIR] [--epochs N] [--parallel N] [--threads N]
#                      [--seed S]
#
# --parallel N trains N models at once, each with --threads torch threads (default 2 x 1 thread
# on a 2-core machine).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh

data=data         # run.sh's data directories (after its stage 1)
exp=exp/cells     # the six runs and the plot
epochs=15         # max_epochs of each run (no early stopping)
parallel=2        # models trained at once
threads=1         # torch threads of each
seed=0            # the same for every run
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }

# name cell hidden bidirectional: hidden sizes give 2.64M parameters +-0.2% (120-dim input
# stacked x3, 3 layers, 39 outputs)
runs="blstm:lstm:192:true ulstm:lstm:328:false bgru:gru:225:true ugru:gru:383:false
brnn:rnn:406:true urnn:rnn:687:false"
mkdir -p "$exp"

train_one() {
  local name=$1 cell=$2 hidden=$3 bi=$4
  sed -e "s/^  cell: .*/  cell: $cell/" -e "s/^  hidden_size: .*/  hidden_size: $hidden/" \
      -e "s/^  bidirectional: .*/  bidirectional: $bi/" \
      -e "s/^  max_epochs: .*/  max_epochs: $epochs/" \
      -e "s/^  early_stopping_patience: .*/  early_stopping_patience: 0/" \
      conf/train_phone.yaml > "$exp/$name.yaml"
  asr train --config "$exp/$name.yaml" --train-dir "$data/train_phone" \
    --dev-dir "$data/dev_phone" --exp-dir "$exp/$name" --seed "$seed" --threads "$threads" \
    --resume --no-progress > "$exp/$name.out" 2>&1
  asr decode "$exp/$name/final.pt" "$data/test_phone" "$exp/$name/decode_greedy" \
    --threads "$threads" --no-progress 2>>"$exp/$name/decode.log"
  asr score "$data/test_phone/text" "$exp/$name/decode_greedy/text" --metric PER \
    > "$exp/$name/decode_greedy/per"
}

running=0
for run in $runs; do
  IFS=: read -r name cell hidden bi <<< "$run"
  train_one "$name" "$cell" "$hidden" "$bi" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then wait -n; running=$((running - 1)); fi
done
wait

printf "%-6s %-5s %-14s %7s %s\n" run cell direction params "test %PER (greedy); best dev TER"
curves=()
for run in $runs; do
  IFS=: read -r name cell hidden bi <<< "$run"
  direction=bidirectional; [ "$bi" = true ] || direction=forward-only
  params=$(sed -n 's/.* \([0-9]*\) parameters;.*/\1/p' "$exp/$name/train.log" | head -1)
  best=$(tail -1 "$exp/$name/train.log" | sed -n 's/.*dev TER \([0-9.]*%\).*/\1/p')
  # a run that never left the CTC plateau says so in its stop reason (asr.plateau)
  grep -q "stuck on the CTC plateau" <(tail -1 "$exp/$name/train.log") \
    && best="$best; STUCK on the CTC plateau (see $exp/$name/train.log)"
  printf "%-6s %-5s %-14s %7s %s; %s\n" "$name" "$cell" "$direction" "$params" \
    "$(head -1 "$exp/$name/decode_greedy/per")" "$best"
  curves+=("$cell-$([ "$bi" = true ] && echo bi || echo uni)=$exp/$name")
done
asr plot "$exp/dev_ter.png" "${curves[@]}" > /dev/null
echo "curves: $exp/dev_ter.png"
