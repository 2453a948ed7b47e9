#!/usr/bin/env bash
# TIMIT phone recognition with a BiLSTM-CTC model, as Graves et al. 2013 and EESEN: train on 48
# phones, score on 39 (Lee & Hon's folding, applied to reference and hypothesis), on the
# 24-speaker core test set. Needs the LDC corpus (LDC93S1); --sample runs the same code on the
# 16-speaker sample in ../shared (speakers held out for dev and test); --sample --folds 8
# cross-validates over all 16 sample speakers. See RESULTS.
#
#   ./run.sh --corpus-dir DIR [--sample [--folds N]] [--conf FILE] [--stage N] [--stop-stage M]
#            [--threads N] [--beam-size B] [--lm-weight W] [--insertion-bonus B]
#            [--device cpu|cuda]
#            [--synth-model FILE]
#            [--data DIR] [--exp DIR]
#
# Stages:
#   0  asr prepare timit: train (462 speakers, SI+SX), dev (50), core test (24); SA excluded.
#      With --folds N: data/fold1 ... data/foldN, each with train, dev and test (exp/foldK
#      likewise), and stages 1-5 run for each fold
#   1  features: 40 log-mel + energy, deltas, per-speaker CMVN (conf/fbank.yaml)
#   2  train (conf/train_cpu.yaml; conf/train_graves.yaml is the published 5x250 setup)
#   3  decode test: greedy, CTC prefix beam search, and beam search with a phone bigram LM
#      trained on the training transcripts (shallow fusion: --lm-weight, --insertion-bonus)
#   4  score: %PER on 39 phones, per-speaker reports in exp/*/decode_*/scoring
#   5  with --synth-model (the synth recipe's phone model): the same model trained from
#      scratch and fine-tuned from synthetic speech, both on the synth recipe's features
#      (40 log-mel, no energy, as the synthetic model was trained), decoded and scored
#   6  with --folds: each fold's %PER and the pooled %PER over every fold's test speakers (each
#      sample speaker once), with a bootstrap interval; test sentences a training speaker also
#      read are scored apart
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh
. ../utils/stage.sh

corpus_dir=       # the LDC TIMIT directory (or the sample, with --sample)
sample=false      # the 16-speaker sample: speakers held out for dev and test
folds=0           # with --sample: cross-validation folds (8: a woman and a man tested in each)
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
# the data and exp folders of each part: $data and $exp themselves, or a foldK in each
parts=("")
if [ "$folds" -gt 0 ]; then
  $sample || { echo "run.sh: --folds needs --sample" >&2; exit 2; }
  parts=()
  for ((k = 1; k <= folds; k++)); do parts+=("fold$k"); done
fi

if run_stage 0; then
  [ -n "$corpus_dir" ] || { echo "run.sh: --corpus-dir is required (the LDC TIMIT directory)" >&2; exit 2; }
  echo "== stage 0: prepare $corpus_dir into $data"
  sample_opt=()
  $sample && sample_opt=(--sample --folds "$folds")
  asr prepare timit "$corpus_dir" "$data" "${sample_opt[@]}"
fi

if run_stage 1; then
  echo "== stage 1: features ($feature_conf)"
  for p in "${parts[@]}"; do
    for s in train dev test; do
      asr features "$data${p:+/$p}/$s" --config "$feature_conf" --no-progress
    done
  done
fi

# train, decode and score one model: PART NAME CONF DATA_SUFFIX [extra asr train options]
# (PART: empty, or foldK: the folder under $data and $exp)
train_decode_score() {
  local part=$1 name=$2 train_conf=$3 suffix=$4
  shift 4
  local d=$data${part:+/$part} e=$exp${part:+/$part}/$name label=${part:+$part }$name
  mkdir -p "$(dirname "$e")"
  asr train --config "$train_conf" --train-dir "$d/train$suffix" --dev-dir "$d/dev$suffix" \
    --exp-dir "$e" --device "$device" --no-progress "${thread_opts[@]}" "$@" 2>>"$e.log"
  asr decode "$e/final.pt" "$d/test$suffix" "$e/decode_greedy" --device "$device" \
    --no-progress "${thread_opts[@]}" 2>>"$e.log"
  asr decode "$e/final.pt" "$d/test$suffix" "$e/decode_beam$beam_size" \
    --beam-size "$beam_size" --device "$device" --no-progress "${thread_opts[@]}" 2>>"$e.log"
  asr decode "$e/final.pt" "$d/test$suffix" "$e/decode_beam${beam_size}_bigram" \
    --beam-size "$beam_size" --bigram-lm "$d/train$suffix/text" --lm-weight "$lm_weight" \
    --insertion-bonus "$insertion_bonus" --device "$device" --no-progress "${thread_opts[@]}" \
    2>>"$e.log"
  for x in greedy "beam$beam_size" "beam${beam_size}_bigram"; do
    # 48 training phones folded to the 39 scoring phones on both sides (Lee & Hon 1989)
    asr score "$d/test$suffix/text" "$e/decode_$x/text" --metric PER \
      --phone-map timit48-39 --reports "$e/decode_$x/scoring" > "$e/decode_$x/per" \
      2>>"$e.log"
    echo "$label $x $(head -1 "$e/decode_$x/per")"
  done
}

models=(blstm)
if run_stage 2; then
  echo "== stage 2-4: train ($conf), decode, score"
  for p in "${parts[@]}"; do train_decode_score "$p" blstm "$conf" ""; done
fi

if [ -n "$synth_model" ]; then models+=(blstm_synthfeat blstm_synthinit); fi
if run_stage 5 && [ -n "$synth_model" ]; then
  echo "== stage 5: from scratch and fine-tuned from $synth_model, on its features"
  synth_features=../synth/conf/fbank.yaml
  for p in "${parts[@]}"; do
    for s in train dev test; do
      asr data copy "$data${p:+/$p}/$s" "$data${p:+/$p}/${s}_synthfeat"
      asr features "$data${p:+/$p}/${s}_synthfeat" --config "$synth_features" --no-progress
    done
    train_decode_score "$p" blstm_synthfeat "$conf" _synthfeat
    train_decode_score "$p" blstm_synthinit "$conf" _synthfeat --init-from "$synth_model"
  done
fi

if run_stage 6 && [ "$folds" -gt 0 ]; then
  echo "== stage 6: pooled over the $folds folds (every sample speaker tested once)"
  pooled=$exp/pooled
  mkdir -p "$pooled"
  for p in "${parts[@]}"; do cat "$data/$p/test/text"; done | sort > "$pooled/ref"
  for p in "${parts[@]}"; do cat "$data/$p/test_seen_prompt"; done | sort > "$pooled/seen_prompt"
  for m in "${models[@]}"; do
    for x in greedy "beam$beam_size" "beam${beam_size}_bigram"; do
      out=$pooled/${m}_$x
      mkdir -p "$out"
      for p in "${parts[@]}"; do cat "$exp/$p/$m/decode_$x/text"; done | sort > "$out/text"
      # the utterances, not the folds, are resampled: a 95% interval of the pooled rate
      asr score "$pooled/ref" "$out/text" --metric PER --phone-map timit48-39 \
        --bootstrap 1000 --reports "$out/scoring" > "$out/per" 2>>"$pooled/score.log"
      echo "pooled $m $x $(head -1 "$out/per")"
      grep -i "bootstrap" "$out/per" | sed 's/^/  /'
      if [ -s "$pooled/seen_prompt" ]; then
        # TIMIT's SX sentences are read by several speakers: a test sentence that a training
        # speaker read is easier, so those are scored apart
        for kind in seen new; do
          keep=(-v); [ "$kind" = seen ] && keep=()
          grep -wFf "$pooled/seen_prompt" "${keep[@]}" "$pooled/ref" > "$out/ref_$kind" || true
          grep -wFf "$pooled/seen_prompt" "${keep[@]}" "$out/text" > "$out/text_$kind" || true
          [ -s "$out/ref_$kind" ] || continue
          echo "  sentence $kind in training: $(asr score "$out/ref_$kind" "$out/text_$kind" \
            --metric PER --phone-map timit48-39 2>>"$pooled/score.log" | head -1)"
        done
      else
        echo "  no test sentence was read by a training speaker of its fold"
      fi
    done
  done
fi
