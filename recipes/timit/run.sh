#!/usr/bin/env bash
# TIMIT phone recognition with a BiLSTM-CTC model, as EESEN (Graves et al. 2013 trained on all 61
# phones): train on 48 phones, score on 39 (Lee & Hon's folding, applied to reference and
# hypothesis), on the 24-speaker core test set. Needs the LDC corpus (LDC93S1); --sample runs the
# same code on the 16-speaker sample in ../shared (speakers held out for dev and test); --sample
# --folds 8 cross-validates over all 16 sample speakers. See RESULTS.
#
#   ./run.sh --corpus-dir DIR [--sample [--folds N]] [--conf FILE] [--stage N] [--stop-stage M]
#            [--threads N] [--beam-size B] [--lm-weight W] [--insertion-bonus B]
#            [--vtln MIN:MAX:STEP] [--speed-perturb true|false] [--device cpu|cuda]
#            [--synth-model FILE] [--synth-data DIR [--synth-utts N]] [--starter NAME]
#            [--word-model FILE [--lexicon FILE] [--word-lm FILE] [--fsdd-dir DIR]]
#            [--data DIR] [--exp DIR]
#
# Stages:
#   0  asr prepare timit: train (462 speakers, SI+SX), dev (50), core test (24); SA excluded.
#      With --folds N: data/fold1 ... data/foldN, each with train, dev and test (exp/foldK
#      likewise), and stages 1-5 run for each fold; data/full (every speaker) for stage 7.
#      With --speed-perturb true: train_sp beside each train, its utterances at speeds 0.9, 1.0
#      and 1.1 (asr data speed-perturb, Kaldi's 3-way copies); the phone models of stages 2-7
#      train on it
#   1  features: 40 log-mel + energy, deltas, per-speaker CMVN (conf/fbank.yaml)
#   2  train (conf/train_cpu.yaml). The published 5x250 setup of Graves et al. 2013 trains on the
#      61 phones in two phases, conf/train_graves.yaml then conf/train_graves_noise.yaml, on
#      conf/fbank_graves.yaml features: the commands are in conf/train_graves.yaml
#   3  decode test: greedy, CTC prefix beam search, and beam search with a phone bigram LM
#      trained on the training transcripts (shallow fusion: --lm-weight, --insertion-bonus);
#      with --vtln, greedy and beam + bigram again on features warped per test speaker
#      (test-time VTLN: the factor of lowest posterior entropy, no transcripts; decode_*_vtln)
#   4  score: %PER on 39 phones, per-speaker reports in exp/*/decode_*/scoring
#   5  with --synth-model (the synth recipe's phone model): the same model trained from
#      scratch and fine-tuned from synthetic speech, both on the synth recipe's features
#      (40 log-mel, no energy, as the synthetic model was trained), decoded and scored.
#      With --synth-data (a synth recipe data directory with phone transcripts, e.g.
#      ../synth/data/train_phone): multi-condition training, the same model trained from
#      scratch on the real training speakers plus --synth-utts synthetic utterances (0: all;
#      spread evenly over the voices), on the same features; dev and test stay real
#   6  with --folds: each fold's %PER and the pooled %PER over every fold's test speakers (each
#      sample speaker once), with a bootstrap interval; test sentences a training speaker also
#      read are scored apart
#   7  with --folds: the starter model, the configuration of --starter (auto: the one with the
#      lowest pooled %PER in stage 6, beam + bigram) trained once more on every sample speaker
#      (data/full: dev = each speaker's first SI) into exp/full/NAME/final.pt, beside the
#      cross-validated %PER of its configuration (exp/full/NAME/cv_per)
# Words (with --folds and --word-model, recipes/synth_books' character model of synthetic read
# speech; its lexicon and word 3-gram, from ../shared/text alone, decode):
#   8  DIR_words: each set with the synth features and the .WRD words as its transcripts;
#      with --fsdd-dir, DIR/train_words_fsdd: the training set plus --fsdd-utts FSDD digits
#   9  per fold: the book model as it is (char_books), and fine-tuned on the fold's real
#      training speakers (char_books_ft; with --fsdd-dir also char_books_ft_fsdd, on the
#      FSDD speakers too) with conf/train_char.yaml and --init-from; LM weight and word score
#      tuned on the fold's dev, then test decoded greedy and with the lexicon + word LM
#   10 each fold's %WER and the pooled %WER over every fold's test speakers, with a bootstrap
#      interval (and %CER), greedy and lexicon + LM; the word LM's perplexity on the test
#      sentences, and the test words outside the lexicon counted
#   11 the word-level starter model: the fine-tuned row with the lower pooled lexicon + LM
#      %WER, trained again on every sample speaker (data/full), its LM weight tuned on
#      data/full/dev, packaged with the lexicon and LM embedded as exp/full/NAME/words.pt, so
#      that `asr transcribe words.pt AUDIO` decodes with them; its cross-validated %WER in
#      exp/full/NAME/cv_wer
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
vtln=             # test-time VTLN warp factors per test speaker (e.g. 0.80:1.25:0.025); empty: off
speed_perturb=false          # true: the phone models train on 3-way speed-perturbed copies
speed_factors="0.9 1.0 1.1"  # the speeds of --speed-perturb (1.0: the originals)
device=cpu        # cpu or cuda
synth_model=      # the synth recipe's phone model (final.pt): stage 5 runs with it
synth_data=       # a synth recipe data dir with phone transcripts: stage 5 trains on it too
synth_utts=0      # synthetic utterances joining each training set (spread over the voices); 0: all
starter=auto      # stage 7: blstm, blstm_synthfeat, blstm_synthinit, blstm_multi, or auto
word_model=       # recipes/synth_books' character model (exp/char/final.pt): stages 8-11 run
lexicon=../synth_books/data/local/dict_char/lexicon.txt   # the words it may read, spelled
word_lm=../synth_books/data/local/lm/3gram.bin            # KenLM word n-gram of ../shared/text
word_conf=conf/train_char.yaml    # asr train config of the fine-tuned character model
lm_weights=0.5,1.0,1.5,2.0        # word LM weights tried on each fold's dev
word_scores=-1,0,1,2              # word scores tried on each fold's dev
word_beam_size=50                 # beam of the lexicon + LM search
word_beam_threshold=25            # score threshold of the lexicon + LM search
fsdd_dir=         # FSDD (the folder holding recordings/): its speakers join word training too
fsdd_utts=300     # FSDD training recordings joining (spread evenly over speakers and digits)
data=data         # data directories
exp=exp           # experiments
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }

thread_opts=()
[ "$threads" -gt 0 ] && thread_opts+=(--threads "$threads")
train=train  # the phone models' training set in each data dir
[ "$speed_perturb" = true ] && train=train_sp
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
  if [ "$train" = train_sp ]; then
    full=()
    [ "$folds" -gt 0 ] && full=(full)
    for p in "${parts[@]}" "${full[@]}"; do
      d=$data${p:+/$p}
      # shellcheck disable=SC2086  # the factors, split on whitespace on purpose
      asr data speed-perturb "$d/train" "$d/train_sp" --factors $speed_factors --no-progress
    done
  fi
fi

if run_stage 1; then
  echo "== stage 1: features ($feature_conf)"
  for p in "${parts[@]}"; do
    for s in "$train" dev test; do
      asr features "$data${p:+/$p}/$s" --config "$feature_conf" --no-progress
    done
  done
fi

# train, decode and score one model: PART NAME CONF DATA_SUFFIX TRAIN [extra asr train options]
# (PART: empty, or foldK: the folder under $data and $exp; TRAIN: the training set's folder
# there; dev and test are dev$DATA_SUFFIX and test..; the bigram learns train's transcripts)
train_decode_score() {
  local part=$1 name=$2 train_conf=$3 suffix=$4 train_set=$5
  shift 5
  local d=$data${part:+/$part} e=$exp${part:+/$part}/$name label=${part:+$part }$name
  mkdir -p "$(dirname "$e")"
  asr train --config "$train_conf" --train-dir "$d/$train_set" --dev-dir "$d/dev$suffix" \
    --exp-dir "$e" --device "$device" --no-progress "${thread_opts[@]}" "$@" 2>>"$e.log"
  asr decode "$e/final.pt" "$d/test$suffix" "$e/decode_greedy" --device "$device" \
    --no-progress "${thread_opts[@]}" 2>>"$e.log"
  asr decode "$e/final.pt" "$d/test$suffix" "$e/decode_beam$beam_size" \
    --beam-size "$beam_size" --device "$device" --no-progress "${thread_opts[@]}" 2>>"$e.log"
  asr decode "$e/final.pt" "$d/test$suffix" "$e/decode_beam${beam_size}_bigram" \
    --beam-size "$beam_size" --bigram-lm "$d/train/text" --lm-weight "$lm_weight" \
    --insertion-bonus "$insertion_bonus" --device "$device" --no-progress "${thread_opts[@]}" \
    2>>"$e.log"
  if [ -n "$vtln" ]; then
    # the factor is chosen per test speaker from the greedy posteriors; both searches use it
    asr decode "$e/final.pt" "$d/test$suffix" "$e/decode_greedy_vtln" --vtln "$vtln" \
      --device "$device" --no-progress "${thread_opts[@]}" 2>>"$e.log"
    asr decode "$e/final.pt" "$d/test$suffix" "$e/decode_beam${beam_size}_bigram_vtln" \
      --vtln "$vtln" --beam-size "$beam_size" --bigram-lm "$d/train/text" \
      --lm-weight "$lm_weight" --insertion-bonus "$insertion_bonus" --device "$device" \
      --no-progress "${thread_opts[@]}" 2>>"$e.log"
  fi
  for x in "${decoders[@]}"; do
    # 48 training phones folded to the 39 scoring phones on both sides (Lee & Hon 1989)
    asr score "$d/test$suffix/text" "$e/decode_$x/text" --metric PER \
      --phone-map timit48-39 --reports "$e/decode_$x/scoring" > "$e/decode_$x/per" \
      2>>"$e.log"
    echo "$label $x $(head -1 "$e/decode_$x/per")"
  done
}

# the decodes of each model, as decode_* folders
decoders=(greedy "beam$beam_size" "beam${beam_size}_bigram")
[ -n "$vtln" ] && decoders+=(greedy_vtln "beam${beam_size}_bigram_vtln")

models=(blstm)
if run_stage 2; then
  echo "== stage 2-4: train ($conf), decode, score"
  for p in "${parts[@]}"; do train_decode_score "$p" blstm "$conf" "" "$train"; done
fi

synth_features=../synth/conf/fbank.yaml
# DIR_synthfeat: a copy of the data directory DIR with the synth recipe's features
synth_feature_copy() {
  asr data copy "$1" "$1_synthfeat"
  asr features "$1_synthfeat" --config "$synth_features" --no-progress
}
# DIR/train_multi: DIR/$train and the chosen synthetic utterances, with the synth features and
# per-speaker CMVN (the synthetic voices are its speakers)
multi_condition_set() {
  asr data combine "$1/train_multi" "$1/$train" "$data/synth"
  asr features "$1/train_multi" --config "$synth_features" --no-progress
}

# real speech alone on the synth features is the baseline of both synthetic-speech rows
if [ -n "$synth_model$synth_data" ]; then models+=(blstm_synthfeat); fi
if [ -n "$synth_model" ]; then models+=(blstm_synthinit); fi
if [ -n "$synth_data" ]; then models+=(blstm_multi); fi
if run_stage 5 && [ -n "$synth_model$synth_data" ]; then
  echo "== stage 5: with synthetic speech${synth_model:+: fine-tuned from $synth_model}" \
    "${synth_data:+: trained on the real speakers and $synth_data}"
  if [ -n "$synth_data" ]; then
    [ -s "$synth_data/utt2spk" ] && [ -s "$synth_data/text" ] || {
      echo "run.sh: --synth-data $synth_data: not a data directory with text and utt2spk" >&2
      exit 1; }
    [[ $synth_utts =~ ^[0-9]+$ ]] || {
      echo "run.sh: --synth-utts $synth_utts: a count of utterances (0: all)" >&2; exit 1; }
    # the same synthetic utterances join every fold: N spread evenly over the sorted ids (which
    # are grouped by voice), so that every voice has its share and a rerun agrees
    total=$(wc -l < "$synth_data/utt2spk")
    n=$synth_utts
    { [ "$n" -gt 0 ] && [ "$n" -le "$total" ]; } || n=$total
    mkdir -p "$data/local"
    sort "$synth_data/utt2spk" | awk -v n="$n" -v t="$total" \
      'int((NR - 1) * n / t) != int(NR * n / t) { print $1 }' > "$data/local/synth_utts"
    asr data subset "$synth_data" --utt-list "$data/local/synth_utts" "$data/synth"
  fi
  for p in "${parts[@]}"; do
    d=$data${p:+/$p}
    for s in "$train" dev test; do synth_feature_copy "$d/$s"; done
    train_decode_score "$p" blstm_synthfeat "$conf" _synthfeat "${train}_synthfeat"
    if [ -n "$synth_model" ]; then
      train_decode_score "$p" blstm_synthinit "$conf" _synthfeat "${train}_synthfeat" \
        --init-from "$synth_model"
    fi
    if [ -n "$synth_data" ]; then
      multi_condition_set "$d"
      train_decode_score "$p" blstm_multi "$conf" _synthfeat train_multi
    fi
  done
fi

# gather_pooled OUT MODEL DECODER: every fold's decode_DECODER/text of MODEL, sorted, into
# OUT/text; a model that this run did not decode in every fold (e.g. --stage 5) is said, not
# pooled (status 1)
gather_pooled() {
  local out=$1 m=$2 x=$3 missing= p
  for p in "${parts[@]}"; do
    [ -f "$exp/$p/$m/decode_$x/text" ] || missing="$missing $p"
  done
  [ -z "$missing" ] || { echo "pooled $m $x: not decoded in$missing"; return 1; }
  mkdir -p "$out"
  for p in "${parts[@]}"; do cat "$exp/$p/$m/decode_$x/text"; done | sort > "$out/text"
}

# lowest_pooled DIR SUFFIX MODEL...: the MODEL whose pooled result DIR/MODEL_SUFFIX has the
# lowest rate on its first line (nothing when none has one): a choice by cross-validation
lowest_pooled() {
  local dir=$1 suffix=$2 m f
  shift 2
  for m in "$@"; do
    f=$dir/${m}_$suffix
    if [ -s "$f" ]; then echo "$(awk 'NR == 1 { print $2 }' "$f") $m"; fi
  done | sort -g | head -1 | cut -d' ' -f2
}

if run_stage 6 && [ "$folds" -gt 0 ]; then
  echo "== stage 6: pooled over the $folds folds (every sample speaker tested once)"
  pooled=$exp/pooled
  mkdir -p "$pooled"
  for p in "${parts[@]}"; do cat "$data/$p/test/text"; done | sort > "$pooled/ref"
  for p in "${parts[@]}"; do cat "$data/$p/test_seen_prompt"; done | sort > "$pooled/seen_prompt"
  for m in "${models[@]}"; do
    for x in "${decoders[@]}"; do
      out=$pooled/${m}_$x
      gather_pooled "$out" "$m" "$x" || continue
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

if run_stage 7 && [ "$folds" -gt 0 ]; then
  name=$starter
  if [ "$name" = auto ]; then
    # the lowest pooled %PER with the bigram among stage 6's rows
    name=$(lowest_pooled "$exp/pooled" "beam${beam_size}_bigram/per" "${models[@]}")
    [ -n "$name" ] || { echo "run.sh: stage 7 needs stage 6's pooled results" >&2; exit 1; }
  fi
  case $name in
    blstm | blstm_synthfeat | blstm_synthinit | blstm_multi) ;;
    *) echo "run.sh: --starter $name: not one of auto blstm blstm_synthfeat" \
         "blstm_synthinit blstm_multi" >&2; exit 2 ;;
  esac
  per=$exp/pooled/${name}_beam${beam_size}_bigram/per
  [ -s "$per" ] || { echo "run.sh: --starter $name: no pooled result $per (stage 6)" >&2; exit 1; }
  echo "== stage 7: the starter model, $name trained on every sample speaker"
  full=$data/full
  [ -d "$full/train" ] || { echo "run.sh: $full/train missing: rerun stage 0" >&2; exit 1; }
  init_opts=()
  case $name in
    blstm)
      for s in "$train" dev; do
        asr features "$full/$s" --config "$feature_conf" --no-progress
      done
      train_set=$train dev_set=dev ;;
    blstm_synthfeat | blstm_synthinit | blstm_multi)
      for s in "$train" dev; do synth_feature_copy "$full/$s"; done
      train_set=${train}_synthfeat dev_set=dev_synthfeat
      if [ "$name" = blstm_synthinit ]; then
        [ -n "$synth_model" ] || { echo "run.sh: --starter $name needs --synth-model" >&2; exit 1; }
        init_opts=(--init-from "$synth_model")
      elif [ "$name" = blstm_multi ]; then
        [ -d "$data/synth" ] || {
          echo "run.sh: --starter $name needs stage 5's $data/synth" >&2; exit 1; }
        multi_condition_set "$full"
        train_set=train_multi
      fi ;;
  esac
  e=$exp/full/$name
  mkdir -p "$e"
  asr train --config "$conf" --train-dir "$full/$train_set" --dev-dir "$full/$dev_set" \
    --exp-dir "$e" --device "$device" --no-progress "${thread_opts[@]}" "${init_opts[@]}" \
    2>>"$e.log"
  { echo "# $name trained on every sample speaker ($full/$train_set); its configuration" \
      "cross-validated over $folds folds (pooled, beam $beam_size + bigram):"
    head -1 "$per"; } > "$e/cv_per"
  echo "starter model: $e/final.pt; cross-validated: $(head -1 "$per")"
fi

# the word-level model: lexicon + LM search options, and the models of stages 9-10
word_search=(--lexicon "$lexicon" --word-lm "$word_lm" --beam-size "$word_beam_size"
  --beam-threshold "$word_beam_threshold")
word_models=(char_books char_books_ft)
[ -n "$fsdd_dir" ] && word_models+=(char_books_ft_fsdd)
# the training set (under a fold's or full's data dir) of a fine-tuned word row
word_train_set() {
  if [ "$1" = char_books_ft_fsdd ]; then echo train_words_fsdd; else echo train_words; fi
}
if [ -n "$word_model" ] && [ "$folds" -gt 0 ] && { run_stage 8 || run_stage 9 || run_stage 11; }; then
  for f in "$word_model" "$lexicon" "$word_lm"; do
    [ -s "$f" ] || { echo "run.sh: $f: missing (recipes/synth_books stages 0-4 make it)" >&2; exit 1; }
  done
fi

if run_stage 8 && [ -n "$word_model" ] && [ "$folds" -gt 0 ]; then
  echo "== stage 8: word transcripts (.WRD) on the synth features${fsdd_dir:+, FSDD joining}"
  if [ -n "$fsdd_dir" ]; then
    # FSDD is 8 kHz: the features resample it to the synth features' 16 kHz (no content
    # above 4 kHz, a telephone-band speaker among full-band ones)
    asr prepare fsdd "$fsdd_dir" "$data/fsdd_all" >/dev/null
    total=$(wc -l < "$data/fsdd_all/train/utt2spk")
    n=$fsdd_utts
    { [ "$n" -gt 0 ] && [ "$n" -le "$total" ]; } || n=$total
    mkdir -p "$data/local"
    sort "$data/fsdd_all/train/utt2spk" | awk -v n="$n" -v t="$total" \
      'int((NR - 1) * n / t) != int(NR * n / t) { print $1 }' > "$data/local/fsdd_utts"
    rm -rf "$data/fsdd"
    asr data subset "$data/fsdd_all/train" --utt-list "$data/local/fsdd_utts" "$data/fsdd" \
      >/dev/null
  fi
  for d in "${parts[@]/#/$data/}" "$data/full"; do
    sets=(train dev test)
    [ "$d" = "$data/full" ] && sets=(train dev)
    for s in "${sets[@]}"; do
      [ -s "$d/${s}_synthfeat/feats.scp" ] || synth_feature_copy "$d/$s"
      rm -rf "$d/${s}_words"
      asr data copy "$d/${s}_synthfeat" "$d/${s}_words" --text "$d/$s/words" >/dev/null
    done
    if [ -n "$fsdd_dir" ]; then
      rm -rf "$d/train_words_fsdd"
      asr data combine "$d/train_words_fsdd" "$d/train_words" "$data/fsdd" >/dev/null
      asr features "$d/train_words_fsdd" --config "$synth_features" --no-progress
    fi
  done
fi

# decode DATA/dev_words with the LM grid and DATA/test_words greedy and tuned on dev: PART NAME
# MODEL (the model's outputs go to $exp/PART/NAME/decode_*)
decode_words() {
  local d=$data/$1 e=$exp/$1/$2 model=$3
  mkdir -p "$e"
  asr decode "$model" "$d/dev_words" "$e/decode_dev_lex" "${word_search[@]}" \
    --lm-weight="$lm_weights" --word-score="$word_scores" --device "$device" --no-progress \
    "${thread_opts[@]}" 2>>"$e/decode.log"
  asr decode "$model" "$d/test_words" "$e/decode_greedy" --device "$device" --no-progress \
    "${thread_opts[@]}" 2>>"$e/decode.log"
  asr decode "$model" "$d/test_words" "$e/decode_lex" "${word_search[@]}" \
    --tuned-on "$e/decode_dev_lex" --device "$device" --no-progress "${thread_opts[@]}" \
    2>>"$e/decode.log"
  for x in greedy lex; do
    asr score "$d/test_words/text" "$e/decode_$x/text" --reports "$e/decode_$x/scoring" \
      > "$e/decode_$x/wer" 2>>"$e/decode.log"
    echo "$1 $2 $x $(head -1 "$e/decode_$x/wer")"
  done
}

if run_stage 9 && [ -n "$word_model" ] && [ "$folds" -gt 0 ]; then
  echo "== stage 9: words: the book model as it is, and fine-tuned on each fold ($word_conf)"
  for p in "${parts[@]}"; do
    decode_words "$p" char_books "$word_model"
    for m in "${word_models[@]:1}"; do
      train_set=$(word_train_set "$m")
      e=$exp/$p/$m
      mkdir -p "$e"
      asr train --config "$word_conf" --train-dir "$data/$p/$train_set" \
        --dev-dir "$data/$p/dev_words" --exp-dir "$e" --init-from "$word_model" \
        --device "$device" --no-progress "${thread_opts[@]}" 2>>"$e.log"
      decode_words "$p" "$m" "$e/final.pt"
    done
  done
fi

if run_stage 10 && [ -n "$word_model" ] && [ "$folds" -gt 0 ]; then
  echo "== stage 10: words pooled over the $folds folds (every sample speaker tested once)"
  pooled=$exp/pooled_words
  mkdir -p "$pooled"
  for p in "${parts[@]}"; do cat "$data/$p/test_words/text"; done | sort > "$pooled/ref"
  for m in "${word_models[@]}"; do
    for x in greedy lex; do
      out=$pooled/${m}_$x
      gather_pooled "$out" "$m" "$x" || continue
      asr score "$pooled/ref" "$out/text" --bootstrap 1000 --reports "$out/scoring" \
        > "$out/wer" 2>>"$pooled/score.log"
      echo "pooled $m $x $(head -1 "$out/wer")"
      grep -i "bootstrap" "$out/wer" | sed 's/^/  /'
      # characters too: how far the spelling is off, before the lexicon and LM choose words
      echo "  $(asr score "$pooled/ref" "$out/text" --metric CER 2>>"$pooled/score.log" | head -1)"
    done
  done
  echo "word LM on the test sentences: $(asr lm perplexity "$word_lm" "$pooled/ref" --skip-ids)"
  # a word the lexicon lacks cannot be read by the lexicon search: counted, not hidden
  cut -d' ' -f2- "$pooled/ref" | tr ' ' '\n' | grep -v '^$' > "$pooled/ref_words"
  cut -d' ' -f1 "$lexicon" | sort -u > "$pooled/lexicon_words"
  oov=$(grep -cvxFf "$pooled/lexicon_words" "$pooled/ref_words" || true)
  echo "test words outside the lexicon: $oov of $(wc -l < "$pooled/ref_words")"
fi

if run_stage 11 && [ -n "$word_model" ] && [ "$folds" -gt 0 ]; then
  # the fine-tuned row with the lowest pooled lexicon + LM %WER
  name=$(lowest_pooled "$exp/pooled_words" lex/wer "${word_models[@]:1}")
  [ -n "$name" ] || { echo "run.sh: stage 11 needs stage 10's pooled results" >&2; exit 1; }
  echo "== stage 11: the word-level starter model, $name trained on every sample speaker"
  full=$data/full
  e=$exp/full/$name
  wer=$exp/pooled_words/${name}_lex/wer
  train_set=$(word_train_set "$name")
  [ -s "$full/$train_set/feats.scp" ] || {
    echo "run.sh: $full/$train_set missing: rerun stage 8" >&2; exit 1; }
  mkdir -p "$e"
  asr train --config "$word_conf" --train-dir "$full/$train_set" --dev-dir "$full/dev_words" \
    --exp-dir "$e" --init-from "$word_model" --device "$device" --no-progress \
    "${thread_opts[@]}" 2>>"$e.log"
  asr decode "$e/final.pt" "$full/dev_words" "$e/decode_dev_lex" "${word_search[@]}" \
    --lm-weight="$lm_weights" --word-score="$word_scores" --device "$device" --no-progress \
    "${thread_opts[@]}" 2>>"$e/decode.log"
  { echo "# the book model fine-tuned on every sample speaker ($full/$train_set); its" \
      "configuration cross-validated over $folds folds (pooled, lexicon + word LM):"
    head -1 "$wer"; } > "$e/cv_wer"
  asr package "$e" "$e/words.pt" --lexicon "$lexicon" --lm "$word_lm" --embed \
    --tuned-on "$e/decode_dev_lex" --beam-size "$word_beam_size" \
    --result "timit-sample-${folds}fold-cv=$wer" --language en
  echo "starter model: $e/words.pt (asr transcribe $e/words.pt AUDIO); cross-validated:" \
    "$(head -1 "$wer")"
fi
