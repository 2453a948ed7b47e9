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
script=$(readlink -f "$0")
cd "$(dirname "$script")"

hours=1
dev_utts=0      # 0: 5% of the training utterances, at least 200
test_utts=0
stage=0
stop_stage=100
seed=0
threads=0       # 0: all cores
jobs=0          # synthesis processes; 0: one per core
beam_size=10
text_files=
device=cpu
nproc=1
phone_conf=conf/train_phone.yaml
word_conf=conf/train_char.yaml
feature_conf=conf/fbank.yaml
data=data
exp=exp

while [ $# -gt 0 ]; do
  case "$1" in
    --hours) hours=$2; shift 2 ;;
    --dev-utts) dev_utts=$2; shift 2 ;;
    --test-utts) test_utts=$2; shift 2 ;;
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --beam-size) beam_size=$2; shift 2 ;;
    --text) text_files=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --nproc) nproc=$2; shift 2 ;;
    --phone-conf) phone_conf=$2; shift 2 ;;
    --word-conf) word_conf=$2; shift 2 ;;
    --feature-conf) feature_conf=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$script" | grep '^#' | cut -c3-; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

thread_opts=()
[ "$threads" -gt 0 ] && thread_opts+=(--threads "$threads")
train_cmd=(asr train)
[ "$nproc" -gt 1 ] && train_cmd=(torchrun --standalone --nproc_per_node "$nproc" -m asr train)

if run_stage 0; then
  echo "== stage 0: synthesise $hours h of training speech into $data"
  prompt_opts=()
  # shellcheck disable=SC2206  # a list of file names, split on whitespace on purpose
  [ -n "$text_files" ] && prompt_opts=(--text $text_files)
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
  "${train_cmd[@]}" --config "$1" --train-dir "$data/$2" --dev-dir "$data/$3" --exp-dir "$4" \
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
    test_set=test; [ $m = phone ] && test_set=test_phone
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
