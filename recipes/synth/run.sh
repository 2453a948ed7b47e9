#!/usr/bin/env bash
# Read English made by the synthesisers Debian ships (espeak-ng, flite, festival): a phone
# recogniser and a word recogniser (characters), both BiLSTM-CTC, scored on voices and sentences
# that never occur in training. Needs no corpus and no network; `make demo` runs it. See RESULTS.
#
#   ./run.sh [--hours H] [--dev-utts N] [--test-utts N] [--stage N] [--stop-stage M]
#            [--seed S] [--threads N] [--jobs N]
#            [--beam-size B] [--text "FILE ..."] [--device cpu|cuda] [--nproc N]
#            [--phone-conf FILE] [--word-conf FILE] [--data DIR] [--exp DIR]
#
# Stages:
#   0  generate: asr prepare synth (train --hours H, dev and test 5% of it, at least 200 each)
#   1  features: 40 log-mel + deltas, per-voice CMVN; phone copies of each set (asr data copy)
#   2  train the phone model (conf/train_phone.yaml)
#   3  train the word model over characters (conf/train_char.yaml)
#   4  decode test: greedy and CTC prefix beam search (no LM)
#   5  score: %PER and %WER lines for the unseen-voice test set
#   6  transcribe one test utterance from its audio
# The default size (1 hour) trains both models in 11 minutes on 2 CPU cores (the whole run took
# 12; see RESULTS); --hours 10 with a GPU
# (--device cuda) is the larger run. --text takes prompts from text files instead of the
# built-in grammar (e.g. --text "$(ls ../../../shared/text/*/*.txt)").
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh
. ../utils/stage.sh
. ../utils/asr_train.sh

hours=1         # hours of training speech to synthesise
dev_utts=0      # 0: 5% of the training utterances, at least 200
test_utts=0     # 0: 5% of the training utterances, at least 200
stage=0         # first stage to run
stop_stage=100  # last stage to run
seed=0          # synthesis, model initialisation and batch order
threads=0       # 0: all cores
jobs=0          # synthesis processes; 0: one per core
beam_size=10    # CTC prefix beam search width (stage 4)
text=           # text files of prompts (a whitespace-separated list); empty: the built-in grammar
device=cpu      # cpu or cuda
nproc=1         # training processes (torchrun when more than 1)
phone_conf=conf/train_phone.yaml   # asr train config of the phone model
word_conf=conf/train_char.yaml     # asr train config of the word (character) model
feature_conf=conf/fbank.yaml       # asr features config
data=data       # data directories
exp=exp         # experiments: exp/phone and exp/word
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }

thread_opts=()
[ "$threads" -gt 0 ] && thread_opts+=(--threads "$threads")

if run_stage 0; then
  echo "== stage 0: synthesise $hours h of training speech into $data"
  prompt_opts=()
  # shellcheck disable=SC2206  # a list of file names, split on whitespace on purpose
  [ -n "$text" ] && prompt_opts=(--text $text)
  asr prepare synth "$data" --hours "$hours" --dev-utts "$dev_utts" --test-utts "$test_utts" \
    --seed "$seed" --jobs "$jobs" --no-progress \
    "${prompt_opts[@]}"
fi

if run_stage 1; then
  echo "== stage 1: features"
  for x in train dev test; do
    asr features "$data/$x" --config "$feature_conf" --ark-dir "$data/$x/ark" --no-progress \
      2>>"$data/features.log"
    asr data copy "$data/$x" "$data/${x}_phone" --text "$data/$x/phones" >/dev/null
  done
fi

train() {  # $1 = conf, $2 = train set, $3 = dev set, $4 = exp dir
  asr_train "$nproc" --config "$1" --train-dir "$data/$2" --dev-dir "$data/$3" --exp-dir "$4" \
    --seed "$seed" --device "$device" --resume --no-progress "${thread_opts[@]}" | tail -1
}
if run_stage 2; then
  echo "== stage 2: phone model"
  train "$phone_conf" train_phone dev_phone "$exp/phone"
fi
if run_stage 3; then
  echo "== stage 3: word model (characters)"
  train "$word_conf" train dev "$exp/word"
fi

if run_stage 4; then
  echo "== stage 4: decode test (greedy and beam $beam_size)"
  for m in phone word; do
    test_set=test; [ "$m" = phone ] && test_set=test_phone
    asr decode "$exp/$m/final.pt" "$data/$test_set" "$exp/$m/decode_greedy" --device "$device" \
      --no-progress "${thread_opts[@]}" 2>>"$exp/$m/decode.log"
    asr decode "$exp/$m/final.pt" "$data/$test_set" "$exp/$m/decode_beam$beam_size" \
      --beam-size "$beam_size" --device "$device" --no-progress "${thread_opts[@]}" \
      2>>"$exp/$m/decode.log"
  done
fi

if run_stage 5; then
  echo "== stage 5: score (test: unseen voices, unseen sentences)"
  for d in greedy "beam$beam_size"; do
    # Per-voice tables (.sys, utt2spk is the voice), alignments, confusions and an HTML page.
    asr score "$data/test_phone/text" "$exp/phone/decode_$d/text" --metric PER \
      --alignments "$exp/phone/decode_$d/per_utt" --reports "$exp/phone/decode_$d/scoring" \
      > "$exp/phone/decode_$d/per"
    asr score "$data/test/text" "$exp/word/decode_$d/text" \
      --alignments "$exp/word/decode_$d/per_utt" --reports "$exp/word/decode_$d/scoring" \
      > "$exp/word/decode_$d/wer"
    echo "phone $d $(head -1 "$exp/phone/decode_$d/per")"
    echo "word  $d $(head -1 "$exp/word/decode_$d/wer")"
  done
  echo "reports: $exp/{phone,word}/decode_*/scoring/text.{sys,pra,dtl,json,html}"
fi

if run_stage 6; then
  echo "== stage 6: transcribe one test utterance from its audio"
  utt=$(head -1 "$data/test/text" | cut -d' ' -f1)
  audio=$(grep "^$utt " "$data/test/wav.scp" | cut -d' ' -f2-)
  # straight from the FLAC file: features, CMVN over this one recording, greedy decoding
  # (also as subtitles, word times and confidences: exp/word/transcribe/<utt>.{srt,json,...})
  hyp=$(asr transcribe "$exp/word/final.pt" "$audio" --device "$device" --no-progress \
    --format all --output-dir "$exp/word/transcribe" "${thread_opts[@]}" | cut -f2-)
  echo "audio: $audio ($(grep "^$utt " "$data/test/utt2voice" | cut -d' ' -f2-))"
  echo "REF: $(grep "^$utt " "$data/test/text" | cut -d' ' -f2-)"
  echo "HYP: $hyp"
fi
