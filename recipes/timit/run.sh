#!/usr/bin/env bash
# TIMIT phone recognition with a BiLSTM-CTC model, as Graves et al. 2013 and EESEN: train on 48
# phones, score on 39 (Lee & Hon's folding, applied to reference and hypothesis), on the
# 24-speaker core test set. Needs the LDC corpus (LDC93S1); --sample runs the same code on the
# 16-speaker sample in ../shared (speakers held out for dev and test). See RESULTS.
#
#   ./run.sh --corpus-dir DIR [--sample] [--conf FILE] [--stage N] [--stop-stage M]
#            [--threads N] [--beam-size B] [--lm-weight W] [--insertion-bonus B]
#            [--device cpu|cuda]
#            [--synth-model FILE]
#            [--data DIR] [--exp DIR]
#
# Stages:
#   0  asr prepare timit: train (462 speakers, SI+SX), dev (50), core test (24); SA excluded
#   1  features: 40 log-mel + energy, deltas, per-speaker CMVN (conf/fbank.yaml)
#   2  train (conf/train_cpu.yaml; conf/train_graves.yaml is the published 5x250 setup)
#   3  decode test: greedy, CTC prefix beam search, and beam search with a phone bigram LM
#      trained on the training transcripts (shallow fusion: --lm-weight, --insertion-bonus)
#   4  score: %PER on 39 phones, per-speaker reports in exp/*/decode_*/scoring
#   5  with --synth-model (the synth recipe's phone model): the same model trained from
#      scratch and fine-tuned from synthetic speech, both on the synth recipe's features
#      (40 log-mel, no energy, as the synthetic model was trained), decoded and scored
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh
. ../utils/stage.sh

corpus_dir=       # the LDC TIMIT directory (or the sample, with --sample)
sample=false      # the 16-speaker sample: speakers held out for dev and test
conf=conf/train_cpu.yaml       # asr train config
feature_conf=conf/fbank.yaml   # asr features config
stage=0           # first stage to run
stop_stage=100    # last stage to run
threads=0         # 0: all cores
beam_size=10      # CTC prefix beam search width
lm_weight=0.2     # with --insertion-bonus 0.5: the best of 6 settings on the sample's dev set
insertion_bonus=0.5   # added to the score per phone (the decode with the bigram LM)
device=cpu        # cpu or cuda
synth_model=      # the synth recipe's phone model (final.pt): stage 5 runs with it
data=data         # data directories
exp=exp           # experiments
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }

thread_opts=()
[ "$threads" -gt 0 ] && thread_opts+=(--threads "$threads")

if run_stage 0; then
  [ -n "$corpus_dir" ] || { echo "run.sh: --corpus-dir is required (the LDC TIMIT directory)" >&2; exit 2; }
  echo "== stage 0: prepare $corpus_dir into $data"
  sample_opt=()
  $sample && sample_opt=(--sample)
  asr prepare timit "$corpus_dir" "$data" "${sample_opt[@]}"
fi

if run_stage 1; then
  echo "== stage 1: features ($feature_conf)"
  for s in train dev test; do
    asr features "$data/$s" --config "$feature_conf" --no-progress
  done
fi

# train, decode and score one model: NAME CONF DATA_SUFFIX [extra asr train options]
train_decode_score() {
  local name=$1 train_conf=$2 suffix=$3
  shift 3
  local e=$exp/$name
  asr train --config "$train_conf" --train-dir "$data/train$suffix" --dev-dir "$data/dev$suffix" \
    --exp-dir "$e" --device "$device" --no-progress "${thread_opts[@]}" "$@" 2>>"$e.log"
  asr decode "$e/final.pt" "$data/test$suffix" "$e/decode_greedy" --device "$device" \
    --no-progress "${thread_opts[@]}" 2>>"$e.log"
  asr decode "$e/final.pt" "$data/test$suffix" "$e/decode_beam$beam_size" \
    --beam-size "$beam_size" --device "$device" --no-progress "${thread_opts[@]}" 2>>"$e.log"
  asr decode "$e/final.pt" "$data/test$suffix" "$e/decode_beam${beam_size}_bigram" \
    --beam-size "$beam_size" --bigram-lm "$data/train$suffix/text" --lm-weight "$lm_weight" \
    --insertion-bonus "$insertion_bonus" --device "$device" --no-progress "${thread_opts[@]}" 2>>"$e.log"
  for d in greedy "beam$beam_size" "beam${beam_size}_bigram"; do
    # 48 training phones folded to the 39 scoring phones on both sides (Lee & Hon 1989)
    asr score "$data/test$suffix/text" "$e/decode_$d/text" --metric PER \
      --phone-map timit48-39 --reports "$e/decode_$d/scoring" > "$e/decode_$d/per" \
      2>>"$e.log"
    echo "$name $d $(head -1 "$e/decode_$d/per")"
  done
}

if run_stage 2; then
  echo "== stage 2-4: train ($conf), decode, score"
  mkdir -p "$exp"
  train_decode_score blstm "$conf" ""
fi

if run_stage 5 && [ -n "$synth_model" ]; then
  echo "== stage 5: from scratch and fine-tuned from $synth_model, on its features"
  synth_features=../synth/conf/fbank.yaml
  for s in train dev test; do
    asr data copy "$data/$s" "$data/${s}_synthfeat"
    asr features "$data/${s}_synthfeat" --config "$synth_features" --no-progress
  done
  train_decode_score blstm_synthfeat "$conf" _synthfeat
  train_decode_score blstm_synthinit "$conf" _synthfeat --init-from "$synth_model"
fi
