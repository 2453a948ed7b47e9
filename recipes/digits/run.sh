#!/usr/bin/env bash
# Spoken digits (Free Spoken Digit Dataset): BiLSTM-CTC over the ten digit words, scored on
# speakers it has heard (the official split) and on speakers it has never heard
# (leave-one-speaker-out). See RESULTS.
#
#   ./run.sh [--corpus-dir DIR] [--protocol official|loso|both] [--folds "SPK ..."]
#            [--stage N] [--stop-stage M] [--seed S] [--threads N] [--nproc N]
#            [--trim-silence true|false] [--speed-perturb true|false] [--noise true|false]
#            [--speed-factors "0.9 1.0 1.1"] [--spec-augment true|false]
#            [--precision auto|fp32|bf16|fp16] [--average N] [--data DIR] [--exp DIR]
#
# Protocols (asr prepare fsdd):
#   official  test = recordings 0-4 of every speaker (the dataset's split), dev = 5-9, train = rest
#   loso      one fold per speaker: test = all of his recordings; train and dev (recordings 5-9)
#             come from the other speakers only, so model selection never sees him either
# End-pointing: every utterance is cut to its speech +-50 ms (asr data trim-silence), since the
# speakers left very different silences around their words.
# Augmentation (defaults in conf/augment.conf; each switchable here):
#   speed perturbation 0.9/1.0/1.1 of the training data (asr data speed-perturb, Kaldi's sp copies),
#   additive noise at a random SNR (asr data add-noise), SpecAugment during training.
# --nproc N trains with N processes (torchrun, DistributedDataParallel, gloo on CPU).
# Without --corpus-dir the dataset's public git archive is downloaded into downloads/.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh
. ../utils/stage.sh
. ../utils/asr_train.sh

corpus_dir=       # the dataset (recordings/); empty: download it into downloads/
protocol=both     # official, loso or both
folds=            # default: every speaker of the corpus
stage=0           # first stage to run
stop_stage=100    # last stage to run
seed=0            # model initialisation, batch order and noise
threads=0         # 0: all cores
nproc=1           # training processes (torchrun when more than 1)
precision=        # empty: the training config's
feature_conf=conf/fbank.yaml   # asr features config
train_conf=conf/train.yaml     # asr train config
data=data         # data directories, one folder per protocol and fold
exp=exp/blstm     # the experiments, one folder per protocol and fold
. conf/augment.conf   # trim_silence, speed_perturb, noise, noise_*, spec_augment, average
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }
case "$protocol" in official|loso|both) ;; *) echo "run.sh: bad --protocol $protocol" >&2; exit 2 ;; esac

if [ -z "$corpus_dir" ]; then
  # a complete copy already in downloads/ is reused without the network
  asr prepare fsdd --download downloads "$data/official/raw" >/dev/null
  corpus_dir=downloads/free-spoken-digit-dataset-1.0.10
fi
if [ -z "$folds" ]; then
  folds=$(ls "$corpus_dir"/recordings 2>/dev/null || ls "$corpus_dir")
  folds=$(echo "$folds" | sed -n 's/^[0-9]_\(.*\)_[0-9]*\.wav$/\1/p' | sort -u | tr '\n' ' ')
fi

train_opts=(--seed "$seed" --resume --no-progress)
[ "$threads" -gt 0 ] && train_opts+=(--threads "$threads")
[ -n "$precision" ] && train_opts+=(--precision "$precision")
[ "$spec_augment" = true ] || train_opts+=(--no-spec-augment)

# One experiment: prepare, augment, extract, train, average, decode, score. $1 = data dir,
# $2 = exp dir, the rest = asr prepare fsdd options.
run_one() {
  local d=$1 e=$2; shift 2
  local train_set=train
  [ "$speed_perturb" = true ] && train_set=${train_set}_sp
  [ "$noise" = true ] && train_set=${train_set}_noise

  if run_stage 0; then
    if [ "$trim_silence" = true ]; then
      # end-pointing, the same for train, dev and test (no transcript is used): see RESULTS
      asr prepare fsdd --corpus-dir "$corpus_dir" "$@" "$d/raw" >/dev/null
      for x in train dev test; do
        asr data trim-silence "$d/raw/$x" "$d/$x" --no-progress >/dev/null
      done
    else
      asr prepare fsdd --corpus-dir "$corpus_dir" "$@" "$d" >/dev/null
    fi
    for x in train dev test; do asr data validate "$d/$x"; done
  fi
  if run_stage 1; then
    local src=train
    if [ "$speed_perturb" = true ]; then
      # shellcheck disable=SC2086  # the factors, split on whitespace on purpose
      asr data speed-perturb "$d/train" "$d/train_sp" --factors $speed_factors --no-progress
      src=train_sp
    fi
    if [ "$noise" = true ]; then
      local noise_src=(--noise-type "$noise_type")
      [ -n "$noise_dir" ] && noise_src=(--noise-dir "$noise_dir")
      asr data add-noise "$d/$src" "$d/${src}_noise" --snr "$noise_snr" "${noise_src[@]}" \
        --seed "$seed" --no-progress
    fi
  fi
  if run_stage 2; then
    for x in "$train_set" dev test; do
      asr features "$d/$x" --config "$feature_conf" --ark-dir "$d/$x/ark" --no-progress \
        2>>"$d/features.log"
    done
  fi
  if run_stage 3; then
    asr_train "$nproc" --config "$train_conf" --train-dir "$d/$train_set" --dev-dir "$d/dev" \
      --exp-dir "$e" "${train_opts[@]}" | tail -1
  fi
  if run_stage 4; then
    # the model of the recipe: the average of the best epochs by dev loss
    asr average "$e" "$e/average.pt" --num "$average" --select best
  fi
  if run_stage 5; then
    asr decode "$e/average.pt" "$d/test" "$e/decode_test" --no-progress 2>>"$e/decode.log"
    asr score "$d/test/text" "$e/decode_test/text" --alignments "$e/decode_test/per_utt" \
      > "$e/decode_test/wer"
  fi
}

if [ "$protocol" != loso ]; then
  echo "== official split: test = recordings 0-4 of every speaker"
  run_one "$data/official" "$exp/official"
  run_stage 5 && echo "official $(head -1 "$exp/official/decode_test/wer")"
fi

if [ "$protocol" != official ]; then
  echo "== leave-one-speaker-out: $folds"
  for spk in $folds; do
    run_one "$data/loso_$spk" "$exp/loso_$spk" --test-speaker "$spk"
    run_stage 5 && echo "loso $spk $(head -1 "$exp/loso_$spk/decode_test/wer")"
  done
  if run_stage 5; then
    # the mean of the folds' WERs, and the pooled WER (all errors / all words) beside it
    for spk in $folds; do head -1 "$exp/loso_$spk/decode_test/wer"; done \
      | awk '{ s += $2; e += $4; w += $6; n++ }
             END { printf "%%WER %.2f mean of %d leave-one-speaker-out folds (pooled %.2f [ %d / %d ])\n",
                   s / n, n, 100 * e / w, e, w }' \
      | tee "$exp/loso_mean_wer"
  fi
fi
