#!/usr/bin/env bash
# WSJ (LDC93S6B + LDC94S13B) as EESEN's recipe: BiLSTM-CTC 4x320 on train_si284 (95% of its
# speakers; 5% held out for early stopping), over CMUdict phones (EESEN's phone setup) or
# characters, decoded with a lexicon and the standard 20k trigram (tcb20onp) through
# flashlight's LexiconDecoder + KenLM; LM weight and word score tuned on dev93, applied to
# eval92. Nothing of it was run here: see RESULTS.
#
#   ./run.sh --wsj0 DIR --wsj1 DIR [--unit phone|char] [--conf FILE] [--audio auto|sph2pipe|flac]
#            [--lm-weights "a,b,c"] [--word-scores "x,y,z"] [--beam-size B]
#            [--stage N] [--stop-stage M] [--threads N] [--device cpu|cuda] [--nproc N]
#            [--data DIR] [--exp DIR]
#
# Stages:
#   0  asr prepare wsj: train_si284, test_dev93, test_eval92 (Kaldi's wsj_data_prep.sh sets
#      and transcript normalisation; audio through sph2pipe pipes, or decoded once to FLAC
#      with ffmpeg), and the 20k trigram and its vocabulary into data/local/lm
#   1  features: 40 log-mel + deltas, per-speaker CMVN (conf/fbank.yaml, as EESEN);
#      train_si284 split by speaker into train_tr95 / train_cv05 (EESEN's split)
#   2  lexicon over the 20k vocabulary plus the training words (asr lexicon prepare: CMUdict
#      phones, stress removed, flite letter-to-sound for the rest; or spellings for char)
#   3  training transcripts in the unit: phones through the lexicon (utterances with a word
#      without a pronunciation left out, counted), or the characters; <NOISE> dropped
#   4  the LM: tcb20onp as a KenLM binary (asr lm check / asr lm binary)
#   5  train (conf/train_phone.yaml: EESEN's 4x320; conf/train_char.yaml)
#   6  decode dev93 over the --lm-weights x --word-scores grid
#   7  decode eval92 with the weights chosen on dev93 (--tuned-on), and greedy
#   8  score: %WER of each decode
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh
. ./cmd.sh
. ../utils/stage.sh
. ../utils/asr_train.sh

wsj0=             # the LDC93S6B directory
wsj1=             # the LDC94S13B directory
unit=phone        # phone or char
conf=             # empty: conf/train_$unit.yaml
feature_conf=conf/fbank.yaml   # asr features config
audio=auto        # auto, sph2pipe or flac: how stage 0 reads the SPHERE audio
lm_weights="0.5,0.8,1.0,1.5"   # the LM weights tried on dev93
word_scores="-1,0,1"           # the word scores tried on dev93
beam_size=50      # lexicon decoder beam
beam_threshold=25 # lexicon decoder score threshold
stage=0           # first stage to run
stop_stage=100    # last stage to run
threads=0         # 0: all cores
device=cpu        # cpu or cuda
nj=4              # jobs for features and decoding (split by speaker; run as cmd.sh says)
nproc=1           # training processes (torchrun when more than 1)
data=data         # data directories
exp=exp           # experiments
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }
case "$unit" in phone|char) ;; *) echo "run.sh: --unit is phone or char" >&2; exit 2 ;; esac
[ -n "$conf" ] || conf=conf/train_$unit.yaml

thread_opts=()
[ "$threads" -gt 0 ] && thread_opts+=(--threads "$threads")
pipes=(--allow-pipes)  # wav.scp may hold sph2pipe pipes (written by our own stage 0)
lang=$data/local/lang_$unit
lmdir=$data/local/lm
name=blstm_$unit
e=$exp/$name

if run_stage 0; then
  [ -n "$wsj0" ] && [ -n "$wsj1" ] || { echo "run.sh: --wsj0 and --wsj1 are required (LDC93S6B, LDC94S13B)" >&2; exit 2; }
  echo "== stage 0: prepare WSJ into $data"
  asr prepare wsj "$wsj0" "$wsj1" "$data" --audio "$audio" --lm-dir "$lmdir"
fi

if run_stage 1; then
  echo "== stage 1: features ($feature_conf); 95/5 speaker split of train_si284"
  for s in train_si284 test_dev93 test_eval92; do
    asr features "$data/$s" --config "$feature_conf" "${pipes[@]}" --no-progress \
      --nj "$nj" --cmd "$train_cmd"
  done
  # every 20th speaker for cross-validation (EESEN: --cv-spk-percent 5)
  awk 'NR % 20 == 0 {print $1}' "$data/train_si284/spk2utt" > "$data/cv05.spk"
  rm -rf "$data/train_tr95" "$data/train_cv05"
  asr data subset --exclude-spk-list "$data/cv05.spk" "$data/train_si284" "$data/train_tr95"
  asr data subset --spk-list "$data/cv05.spk" "$data/train_si284" "$data/train_cv05"
fi

if run_stage 2; then
  echo "== stage 2: lexicon ($unit) over the 20k vocabulary and the training words"
  mkdir -p "$lang"
  { cat "$lmdir/vocab.txt"; cut -d' ' -f2- "$data/train_si284/text" | tr ' ' '\n'; } |
    grep -v -e '^$' -e '^<NOISE>$' | LC_ALL=C sort -u > "$lang/words.txt"
  if [ "$unit" = phone ]; then
    asr lexicon prepare "$lang/words.txt" "$lang" --units phone --phone-set cmu --g2p flite
  else
    asr lexicon prepare "$lang/words.txt" "$lang" --units char
  fi
fi

if run_stage 3; then
  echo "== stage 3: training transcripts in $unit units"
  for s in train_tr95 train_cv05 test_dev93 test_eval92; do
    if [ "$unit" = phone ]; then
      # words -> the lexicon's first pronunciation; utterances with an unknown word left out
      awk -v out="$data/$s/text.$unit" 'NR == FNR { if (!($1 in pron)) { $1 = $1; w = $1;
          sub(/^[^ ]+ /, ""); pron[w] = $0 } next }
        { line = $1; ok = 1
          for (i = 2; i <= NF; i++) { if ($i == "<NOISE>") continue
            if (!($i in pron)) { ok = 0; break } line = line " " pron[$i] }
          if (ok && line != $1) print line > out; else dropped++ }
        END { printf "%d utterances without a pronunciation left out\n", dropped + 0 }' \
        "$lang/lexicon.txt" "$data/$s/text"
    else
      sed 's/ <NOISE>//g' "$data/$s/text" | awk 'NF > 1' > "$data/$s/text.$unit"
    fi
    rm -rf "$data/${s}_$unit"
    asr data subset --utt-list "$data/$s/text.$unit" "$data/$s" "$data/${s}_$unit.tmp"
    asr data copy "$data/${s}_$unit.tmp" "$data/${s}_$unit" --text "$data/$s/text.$unit"
    rm -rf "$data/${s}_$unit.tmp"
    case "$s" in test_*)
      # the same utterances with their word transcripts (<NOISE> removed): what lexicon
      # decoding writes, so what its dev tuning and the scoring compare against
      sed 's/ <NOISE>//g' "$data/$s/text" |
        awk 'NR == FNR { keep[$1]; next } $1 in keep' "$data/${s}_$unit/utt2spk" - \
        > "$data/$s/text.words"
      rm -rf "$data/${s}_words"
      asr data copy "$data/${s}_$unit" "$data/${s}_words" --text "$data/$s/text.words"
    esac
  done
fi

if run_stage 4; then
  echo "== stage 4: the 20k trigram as a KenLM binary"
  asr lm check "$lmdir/lm_tg.arpa"
  asr lm binary "$lmdir/lm_tg.arpa" "$lmdir/lm_tg.bin"
fi

if run_stage 5; then
  echo "== stage 5: train ($conf)"
  mkdir -p "$exp"
  asr_train "$nproc" --config "$conf" --train-dir "$data/train_tr95_$unit" \
    --dev-dir "$data/train_cv05_$unit" --exp-dir "$e" --device "$device" --resume \
    --no-progress "${thread_opts[@]}" | tail -1
fi

decode() {  # $1 = set, $2 = out dir, then extra asr decode options
  local s=$1 out=$2
  shift 2
  mkdir -p "$e"
  asr decode "$e/final.pt" "$data/${s}_words" "$out" --lexicon "$lang/lexicon.txt" \
    --word-lm "$lmdir/lm_tg.bin" --beam-size "$beam_size" --beam-threshold "$beam_threshold" \
    --device "$device" --no-progress "${thread_opts[@]}" --nj "$nj" --cmd "$decode_cmd" "$@" \
    2>>"$e/decode.log"
}

if run_stage 6; then
  echo "== stage 6: decode dev93 over LM weights {$lm_weights} x word scores {$word_scores}"
  decode test_dev93 "$e/decode_dev93_tg" --lm-weight="$lm_weights" --word-score="$word_scores"
  echo "dev93 best: $(cat "$e/decode_dev93_tg/best.json")"
fi

if run_stage 7; then
  echo "== stage 7: decode eval92 with the dev93 weights; greedy for comparison"
  decode test_eval92 "$e/decode_eval92_tg" --tuned-on "$e/decode_dev93_tg"
  asr decode "$e/final.pt" "$data/test_eval92_$unit" "$e/decode_eval92_greedy" \
    --device "$device" --no-progress "${thread_opts[@]}" 2>>"$e/decode.log"
fi

if run_stage 8; then
  echo "== stage 8: score (%WER against the word transcripts, <NOISE> removed)"
  for s in dev93 eval92; do
    for d in tg greedy; do
      out=$e/decode_${s}_$d
      [ -f "$out/text" ] || continue
      if [ "$d" = greedy ] && [ "$unit" = phone ]; then ref=$data/test_${s}_$unit/text; metric=PER
      else ref=$data/test_${s}_words/text; metric=WER; fi
      asr score "$ref" "$out/text" --metric "$metric" --reports "$out/scoring" > "$out/score"
      echo "$name $s $d $(head -1 "$out/score")"
    done
  done
fi
