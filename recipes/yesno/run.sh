#!/usr/bin/env bash
# Kaldi's egs/yesno with a BiLSTM-CTC model: one speaker saying eight words of yes or no per file.
# The first 30 recordings train (5 of them held out as dev for learning-rate halving and early
# stopping), the last 30 test, as in Kaldi's recipe. Kaldi's split puts every recording that
# starts with YES in the test half, so the training data gets new utterances: --splice-utts N
# (the default) adds N random word sequences spliced from the training recordings' words and
# pauses (asr data splice-words); --crops-per-utt N instead adds N random word spans of each
# training recording, cut at the pauses between words (asr data crop-at-pauses). See RESULTS.
#
#   ./run.sh [--corpus-dir DIR] [--stage N] [--stop-stage M] [--seed S] [--threads N]
#            [--splice-utts N] [--fragments P] [--fragment-label WORD] [--crops-per-utt N]
#            [--precision auto|fp32|bf16]
#            [--data DIR] [--exp DIR]
#
# --precision overrides the training config's (auto: bf16 where the CPU runs it natively);
# train.log's first line and the decode's wer file name the precision a run used.
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
# Spliced word sequences by default: on whole recordings alone seeds 2-4 stayed on the CTC
# plateau, and crops at pauses left 0.8-6.3% WER (see RESULTS)
splice_utts=400   # 0: no spliced utterances
fragments=0       # chance of a word fragment at each end of a spliced utterance
fragment_label=   # transcribe each fragment as this word (e.g. [noise]; scoring drops it);
                  # empty: fragments are not transcribed
crops_per_utt=0   # used when --splice-utts is 0; 0: train on the whole recordings only
precision=        # empty: the training config's
# One torch thread by default: the result is then the same on every run (more threads change
# the order of floating-point sums, and training on 25 recordings is sensitive to that).
threads=1   # 0: all cores
feature_conf=conf/fbank.yaml   # asr features config
train_conf=conf/train.yaml     # asr train config
data=data         # data directories
exp=exp/blstm     # the experiment: model, logs, decoding
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }

train_set=train_nodev
if [ "$splice_utts" -gt 0 ]; then
  train_set=train_splice
elif [ "$crops_per_utt" -gt 0 ]; then
  train_set=train_crops
fi
thread_opts=()
[ "$threads" -gt 0 ] && thread_opts=(--threads "$threads")
precision_opts=()
[ -n "$precision" ] && precision_opts=(--precision "$precision")

if run_stage 0; then
  echo "stage 0: data preparation"
  if [ -n "$corpus_dir" ]; then
    asr prepare yesno --corpus-dir "$corpus_dir" "$data"
  else
    asr prepare yesno --download downloads "$data"
  fi
  # Hold out the last 5 training recordings as dev (Kaldi's subset_data_dir.sh --first/--last).
  asr data subset "$data/train" --first 25 "$data/train_nodev"
  asr data subset "$data/train" --last 5 "$data/dev"
  if [ "$train_set" = train_splice ]; then
    asr data splice-words "$data/train_nodev" "$data/$train_set" --count "$splice_utts" \
      --fragments "$fragments" ${fragment_label:+--fragment-label "$fragment_label"} \
      --seed "$seed"
  elif [ "$train_set" = train_crops ]; then
    asr data crop-at-pauses "$data/train_nodev" "$data/$train_set" --per-utt "$crops_per_utt" \
      --seed "$seed"
  fi
  for d in "$train_set" dev test; do asr data validate "$data/$d"; done
fi

if run_stage 1; then
  echo "stage 1: features ($feature_conf)"
  for d in "$train_set" dev test; do
    asr features "$data/$d" --config "$feature_conf" --ark-dir "$data/$d/ark"
  done
fi

if run_stage 2; then
  echo "stage 2: training ($train_conf)"
  asr train --config "$train_conf" --train-dir "$data/$train_set" --dev-dir "$data/dev" \
    --exp-dir "$exp" --seed "$seed" --resume "${thread_opts[@]}" "${precision_opts[@]}"
fi

if run_stage 3; then
  echo "stage 3: greedy CTC decoding"
  asr decode "$exp/final.pt" "$data/test" "$exp/decode_test" "${thread_opts[@]}"
fi

if run_stage 4; then
  echo "stage 4: scoring"
  # a fragment label is a non-speech word for the scorer (asr score --remove-fillers)
  asr score "$data/test/text" "$exp/decode_test/text" --alignments "$exp/decode_test/per_utt" \
    ${fragment_label:+--remove-fillers} > "$exp/decode_test/wer"
  # the precision and seed the model was trained with, from train.log's first line
  sed -n '1s/.*; \(seed [0-9]*\); \(precision [a-z0-9]*\).*/# \1, \2/p' "$exp/train.log" \
    >> "$exp/decode_test/wer"
  cat "$exp/decode_test/wer"
fi
