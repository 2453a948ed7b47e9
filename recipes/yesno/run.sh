#!/usr/bin/env bash
# Kaldi's egs/yesno with a BiLSTM-CTC model: one speaker saying eight words of yes or no per file.
# The first 30 recordings train (5 of them held out as dev for learning-rate halving and early
# stopping), the last 30 test, as in Kaldi's recipe. Kaldi's split puts every recording that
# starts with YES in the test half, so the training data gets new utterances: --splice-utts N
# (the default) adds N random word sequences spliced from the training recordings' words and
# pauses (asr data splice-words), each starting or ending inside a word with chance
# --fragments, as real recordings do; --crops-per-utt N instead adds N random word spans of each
# training recording, cut at the pauses between words (asr data crop-at-pauses). Dev gets
# --dev-splice sequences spliced the same way from its own recordings, so that early stopping
# sees word fragments too. See RESULTS.
#
# --models N trains N models, with seeds S, S+100, ..., S+100(N-1) (each also drawing its own
# spliced data), and combines their outputs by word voting (asr rover, NIST's ROVER): a word
# one model gets wrong is outvoted by the others. The default is 3; the %WER line is the
# combination's, and each model's own line is printed above it.
#
#   ./run.sh [--corpus-dir DIR] [--stage N] [--stop-stage M] [--seed S] [--models N]
#            [--jobs N] [--threads N] [--splice-utts N] [--fragments P]
#            [--fragment-label WORD] [--dev-splice N] [--crops-per-utt N]
#            [--precision auto|fp32|bf16] [--data DIR] [--exp DIR]
#
# --precision overrides the training config's (auto: bf16 where the CPU runs it natively);
# train.log's first line and the decode's wer file name the precision each model used.
#
# Without --corpus-dir the corpus is downloaded from openslr (checksum verified) into downloads/.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh
. ../utils/stage.sh

corpus_dir=       # waves_yesno/; empty: download it from openslr into downloads/
stage=0           # first stage to run
stop_stage=100    # last stage to run
seed=0            # model initialisation, batch order, spliced utterances and crops
# Three models voted (asr rover): for seeds 0-4 the 15 models alone made 0-3 errors in 240
# words in fp32 (7 at none) and 0-4 in bf16 (12 at none), mostly each on its own, and the
# ten votes none (RESULTS, 2026-12-07)
models=3          # models trained with seeds seed, seed+100, ...; 1: no combination
jobs=1            # models trained at once (each on --threads threads)
# Spliced word sequences by default: on whole recordings alone seeds 2-4 stayed on the CTC
# plateau, and crops at pauses left 0.8-6.3% WER (see RESULTS)
splice_utts=400   # 0: no spliced utterances
# Fragments by default: a test recording that starts in the tail of a YES was read as YES by
# models that never saw a fragment (RESULTS)
fragments=0.5     # chance of a word fragment at each end of a spliced utterance
fragment_label=   # transcribe each fragment as this word (e.g. [noise]; scoring drops it);
                  # empty: fragments are not transcribed
dev_splice=100    # dev: its 5 recordings plus N sequences spliced from them; 0: the 5 only
crops_per_utt=0   # used when --splice-utts is 0; 0: train on the whole recordings only
precision=        # empty: the training config's
# One torch thread by default: the result is then the same on every run (more threads change
# the order of floating-point sums, and training on 25 recordings is sensitive to that).
threads=1   # 0: all cores
feature_conf=conf/fbank.yaml   # asr features config
train_conf=conf/train.yaml     # asr train config
data=data         # data directories
exp=exp/blstm     # the experiment: EXP/sSEED per model, EXP/decode_test the combination
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }

for v in models jobs; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "${0##*/}: --$v is a positive integer, not '${!v}'" >&2; exit 1; }
done
seeds=()
for ((k = 0; k < models; k++)); do seeds+=($((seed + 100 * k))); done

thread_opts=()
[ "$threads" -gt 0 ] && thread_opts=(--threads "$threads")
precision_opts=()
[ -n "$precision" ] && precision_opts=(--precision "$precision")
# models trained side by side would interleave their progress bars: each keeps its train.log
progress_opts=()
[ "$jobs" -gt 1 ] && progress_opts=(--no-progress)

# the training and dev sets of the model with seed $1
train_set() {
  if [ "$splice_utts" -gt 0 ]; then echo "train_splice_s$1"
  elif [ "$crops_per_utt" -gt 0 ]; then echo "train_crops_s$1"
  else echo train_nodev; fi
}
dev_set() { if [ "$dev_splice" -gt 0 ]; then echo "dev_splice_s$1"; else echo dev; fi; }

# Run "$@ SEED" for each model's seed, --jobs at a time; fail if any of them failed.
for_each_model() {
  local s running=0 failed=0
  for s in "${seeds[@]}"; do
    "$@" "$s" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n || failed=1; running=$((running - 1)); fi
  done
  while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done
  [ "$failed" -eq 0 ]
}

if run_stage 0; then
  echo "stage 0: data preparation (${#seeds[@]} training set(s): seeds ${seeds[*]})"
  if [ -n "$corpus_dir" ]; then
    asr prepare yesno --corpus-dir "$corpus_dir" "$data"
  else
    asr prepare yesno --download downloads "$data"
  fi
  # Hold out the last 5 training recordings as dev (Kaldi's subset_data_dir.sh --first/--last).
  asr data subset "$data/train" --first 25 "$data/train_nodev"
  asr data subset "$data/train" --last 5 "$data/dev"
  for s in "${seeds[@]}"; do
    t=$(train_set "$s")
    if [ "$splice_utts" -gt 0 ]; then
      asr data splice-words "$data/train_nodev" "$data/$t" --count "$splice_utts" \
        --fragments "$fragments" ${fragment_label:+--fragment-label "$fragment_label"} --seed "$s"
    elif [ "$crops_per_utt" -gt 0 ]; then
      asr data crop-at-pauses "$data/train_nodev" "$data/$t" --per-utt "$crops_per_utt" --seed "$s"
    fi
    if [ "$dev_splice" -gt 0 ]; then
      asr data splice-words "$data/dev" "$data/$(dev_set "$s")" --count "$dev_splice" \
        --fragments "$fragments" ${fragment_label:+--fragment-label "$fragment_label"} --seed "$s"
    fi
  done
  sets=(test)
  for s in "${seeds[@]}"; do sets+=("$(train_set "$s")" "$(dev_set "$s")"); done
  for d in $(printf '%s\n' "${sets[@]}" | sort -u); do asr data validate "$data/$d"; done
fi

if run_stage 1; then
  echo "stage 1: features ($feature_conf)"
  sets=(test)
  for s in "${seeds[@]}"; do sets+=("$(train_set "$s")" "$(dev_set "$s")"); done
  for d in $(printf '%s\n' "${sets[@]}" | sort -u); do
    asr features "$data/$d" --config "$feature_conf" --ark-dir "$data/$d/ark"
  done
fi

train_model() {  # SEED
  asr train --config "$train_conf" --train-dir "$data/$(train_set "$1")" \
    --dev-dir "$data/$(dev_set "$1")" --exp-dir "$exp/s$1" --seed "$1" --resume \
    "${thread_opts[@]}" "${precision_opts[@]}" "${progress_opts[@]}"
}

if run_stage 2; then
  echo "stage 2: training ($train_conf), seeds ${seeds[*]}, $jobs at a time"
  for_each_model train_model
fi

decode_model() {  # SEED
  asr decode "$exp/s$1/final.pt" "$data/test" "$exp/s$1/decode_test" "${thread_opts[@]}" \
    "${progress_opts[@]}"
}

if run_stage 3; then
  echo "stage 3: greedy CTC decoding"
  for_each_model decode_model
fi

if run_stage 4; then
  echo "stage 4: scoring each model and their combination (asr rover)"
  # a fragment label is a non-speech word for the scorer (asr score --remove-fillers)
  score_opts=(${fragment_label:+--remove-fillers})
  hyps=()
  origin=()
  for s in "${seeds[@]}"; do
    m=$exp/s$s
    asr score "$data/test/text" "$m/decode_test/text" "${score_opts[@]}" > "$m/decode_test/wer"
    # the precision and seed the model was trained with, from train.log's first line
    sed -n '1s/.*; \(seed [0-9]*\); \(precision [a-z0-9]*\).*/# \1, \2/p' "$m/train.log" \
      > "$m/decode_test/origin"
    echo "model $(cut -c3- "$m/decode_test/origin") alone: $(head -1 "$m/decode_test/wer")"
    hyps+=("$m/decode_test/text")
    origin+=("$m/decode_test/origin")
  done
  asr rover "${hyps[@]}" -o "$exp/decode_test/text"
  asr score "$data/test/text" "$exp/decode_test/text" --alignments "$exp/decode_test/per_utt" \
    "${score_opts[@]}" > "$exp/decode_test/wer"
  cat "${origin[@]}" >> "$exp/decode_test/wer"
  cat "$exp/decode_test/wer"
fi
