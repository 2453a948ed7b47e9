#!/usr/bin/env bash
# LibriSpeech (OpenSLR 12) with a BiLSTM-CTC model over characters (or BPE pieces), decoded
# with a lexicon and a word n-gram LM (flashlight LexiconDecoder + KenLM), LM weight and word
# score tuned on dev and applied to test, Kaldi style. It runs unchanged on a corpus made here
# in LibriSpeech's layout (`asr prepare synth --layout librispeech`; see RESULTS).
#
#   ./run.sh --corpus-dir DIR [--download] [--train-sets "SET ..."] [--eval-sets "SET ..."]
#            [--conf FILE] [--unit char|bpe] [--bpe-size N] [--lm auto|official|norm|train]
#            [--lm-order N]
#            [--lm-weights "a,b,c"] [--word-scores "x,y,z"] [--beam-size B]
#            [--stage N] [--stop-stage M] [--threads N] [--device cpu|cuda] [--nproc N]
#            [--data DIR] [--exp DIR]
#
# Stages:
#   0  asr prepare librispeech (with --download: fetch the sets, MD5-checked, resumable, and
#      OpenSLR 11's 3-gram.pruned.1e-7.arpa.gz and librispeech-vocab.txt into CORPUS_DIR/lm)
#   1  features: 80 log-mel, per-speaker (reader-chapter) CMVN (conf/fbank.yaml); the train
#      sets combined into data/train
#   2  units: char (the transcripts as they are) or BPE (asr bpe train/encode on train text)
#   3  lexicon for the LM vocabulary (asr lexicon prepare --units char|bpe)
#   4  word LM, to a KenLM binary (asr lm binary): the official pruned 3-gram (--lm official),
#      a KenLM n-gram (lmplz) of the LM text CORPUS_DIR/lm/librispeech-lm-norm.txt[.gz]
#      (--lm norm), or of the training transcripts (--lm train); --lm auto (the default):
#      official if its file is there or --download fetches it, else norm if the LM text is
#      there, else train
#   5  train (conf/train_100h.yaml for train-clean-100, conf/train_960h.yaml for all 960 h)
#   6  decode dev-clean and dev-other over the --lm-weights x --word-scores grid
#   7  decode test-clean and test-other with the weights chosen on the matching dev set
#      (of the --eval-sets: by default those in CORPUS_DIR, all four with --download)
#      (--tuned-on), then greedy (no LM) for comparison
#   8  score: %WER of each decode (asr score)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh
. ./cmd.sh
. ../utils/stage.sh
. ../utils/asr_train.sh

corpus_dir=       # where LibriSpeech/ is (or goes, with --download), and lm/
download=false    # stage 0 fetches the sets and OpenSLR 11's LM files first
train_sets="train-clean-100"   # one or more of train-clean-100 train-clean-360 train-other-500
eval_sets=        # dev/test sets; empty: those of dev-clean dev-other test-clean test-other
                  # that CORPUS_DIR holds (all four with --download)
conf=             # empty: conf/train_100h.yaml for one training set, conf/train_960h.yaml for more
feature_conf=conf/fbank.yaml   # asr features config
unit=char         # char or bpe
bpe_size=300      # BPE pieces with --unit bpe
lm=auto           # official (the pruned 3-gram), norm (an n-gram of the LM text), train (of
                  # the training transcripts) or auto (see stage 4)
lm_order=3        # n of the n-gram with --lm train
lm_weights="0.5,1.0,1.5,2.0"   # the LM weights tried on dev
word_scores="-1,0,1,2"         # the word scores tried on dev
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
case "$unit" in char|bpe) ;; *) echo "run.sh: --unit is char or bpe" >&2; exit 2 ;; esac
case "$lm" in auto|official|norm|train) ;;
  *) echo "run.sh: --lm is auto, official, norm or train" >&2; exit 2 ;; esac
official=$corpus_dir/lm/3-gram.pruned.1e-7.arpa.gz
norm_text=$corpus_dir/lm/librispeech-lm-norm.txt
[ -f "$norm_text" ] || norm_text=$norm_text.gz
if [ "$lm" = auto ]; then
  if $download || [ -f "$official" ]; then lm=official
  elif [ -n "$corpus_dir" ] && [ -f "$norm_text" ]; then lm=norm
  else lm=train; fi
fi
setdir() { echo "${1//-/_}"; }  # Kaldi's data directory names: dev-clean -> dev_clean
if [ -z "$eval_sets" ]; then
  for s in dev-clean dev-other test-clean test-other; do
    if $download || [ -d "$corpus_dir/LibriSpeech/$s" ] || [ -d "$corpus_dir/$s" ] \
        || [ -d "$data/$(setdir "$s")" ]; then
      eval_sets="$eval_sets $s"
    fi
  done
  eval_sets=${eval_sets# }
fi

thread_opts=()
[ "$threads" -gt 0 ] && thread_opts+=(--threads "$threads")
# shellcheck disable=SC2206  # set names, split on whitespace on purpose
train_list=($train_sets)
if [ -z "$conf" ]; then
  conf=conf/train_100h.yaml
  [ "${#train_list[@]}" -gt 1 ] && conf=conf/train_960h.yaml
fi
evaluated() { [[ " $eval_sets " == *" $1 "* ]]; }  # is set $1 (dev-clean) one of --eval-sets
if ! evaluated dev-clean; then
  echo "run.sh: --eval-sets must hold dev-clean (training's dev set)" >&2
  exit 2
fi
suffix=""; [ "$unit" = bpe ] && suffix=_bpe
lang=$data/local/lang_$unit
lmdir=$data/local/lm
name=blstm_$unit
e=$exp/$name

if run_stage 0; then
  [ -n "$corpus_dir" ] || { echo "run.sh: --corpus-dir is required (where LibriSpeech/ is or goes)" >&2; exit 2; }
  echo "== stage 0: prepare ${train_sets} and ${eval_sets} into $data"
  opts=()
  $download && opts+=(--download --lm 3-gram.pruned.1e-7.arpa.gz librispeech-vocab.txt)
  # shellcheck disable=SC2086
  asr prepare librispeech "$corpus_dir" "$data" --sets $train_sets $eval_sets "${opts[@]}"
fi

if run_stage 1; then
  echo "== stage 1: features ($feature_conf)"
  for s in $train_sets $eval_sets; do
    asr features "$data/$(setdir "$s")" --config "$feature_conf" --no-progress \
      --nj "$nj" --cmd "$train_cmd"
  done
  srcs=()
  for s in $train_sets; do srcs+=("$data/$(setdir "$s")"); done
  rm -rf "$data/train"
  asr data combine "$data/train" "${srcs[@]}"
fi

if run_stage 2; then
  echo "== stage 2: units ($unit)"
  if [ "$unit" = bpe ]; then
    mkdir -p "$lang"
    asr bpe train "$data/train/text" --vocab-size "$bpe_size" "$lang/bpe"
    for s in train $(for x in $eval_sets; do setdir "$x"; done); do
      asr bpe encode "$lang/bpe.model" "$data/$s/text" "$data/$s/text.bpe"
      rm -rf "$data/$s$suffix"
      asr data copy "$data/$s" "$data/$s$suffix" --text "$data/$s/text.bpe"
    done
  fi
fi

if run_stage 3; then
  echo "== stage 3: lexicon over the LM vocabulary ($unit units)"
  vocab=${corpus_dir:+$corpus_dir/lm/librispeech-vocab.txt}
  if [ "$lm" = train ] || [ ! -f "$vocab" ]; then
    # the training transcripts' words (asr lexicon prepare collects them with --from-text)
    bpe_opt=(); [ "$unit" = bpe ] && bpe_opt=(--bpe-model "$lang/bpe.model")
    asr lexicon prepare "$data/train/text" "$lang" --from-text --units "$unit" "${bpe_opt[@]}"
  else
    bpe_opt=(); [ "$unit" = bpe ] && bpe_opt=(--bpe-model "$lang/bpe.model")
    asr lexicon prepare "$vocab" "$lang" --units "$unit" "${bpe_opt[@]}"
  fi
fi

if run_stage 4; then
  echo "== stage 4: word LM ($lm)"
  mkdir -p "$lmdir"
  if [ "$lm" = official ]; then
    [ -f "$official" ] || { echo "run.sh: $official not found (stage 0 with --download fetches it)" >&2; exit 1; }
    asr lm check "$official"
    asr lm binary "$official" "$lmdir/lm.bin"
  elif [ "$lm" = norm ]; then
    asr lm train "$norm_text" --order "$lm_order" "$lmdir/lm.arpa" --binary "$lmdir/lm.bin"
  else
    asr lm train "$data/train/text" --skip-ids --order "$lm_order" "$lmdir/lm.arpa" \
      --binary "$lmdir/lm.bin"
  fi
fi

if run_stage 5; then
  echo "== stage 5: train ($conf) on $train_sets"
  mkdir -p "$e"
  # the unit follows --unit whatever the conf says
  sed "s/^\( *unit:\).*/\1 $unit/" "$conf" > "$e/train.yaml"
  asr_train "$nproc" --config "$e/train.yaml" --train-dir "$data/train$suffix" \
    --dev-dir "$data/dev_clean$suffix" --exp-dir "$e" --device "$device" --resume \
    --no-progress "${thread_opts[@]}" | tail -1
fi

decode() {  # $1 = set, $2 = out dir, then extra asr decode options
  local s=$1 out=$2
  shift 2
  asr decode "$e/final.pt" "$data/$s$suffix" "$out" --lexicon "$lang/lexicon.txt" \
    --word-lm "$lmdir/lm.bin" --beam-size "$beam_size" --beam-threshold "$beam_threshold" \
    --device "$device" --no-progress "${thread_opts[@]}" --nj "$nj" --cmd "$decode_cmd" "$@" \
    2>>"$e/decode.log"
}

if run_stage 6; then
  echo "== stage 6: decode dev over LM weights {$lm_weights} x word scores {$word_scores}"
  for x in dev-clean dev-other; do
    evaluated "$x" || continue
    s=$(setdir "$x")
    decode "$s" "$e/decode_${s}_lex" --lm-weight="$lm_weights" --word-score="$word_scores"
    echo "$s best: $(cat "$e/decode_${s}_lex/best.json")"
  done
fi

if run_stage 7; then
  echo "== stage 7: decode test with the weights tuned on dev; greedy for comparison"
  for pair in "test_clean dev_clean" "test_other dev_other"; do
    read -r s d <<< "$pair"
    evaluated "${s//_/-}" || continue
    evaluated "${d//_/-}" || { echo "run.sh: ${s//_/-} needs ${d//_/-} to tune on" >&2; exit 2; }
    decode "$s" "$e/decode_${s}_lex" --tuned-on "$e/decode_${d}_lex"
    asr decode "$e/final.pt" "$data/$s$suffix" "$e/decode_${s}_greedy" --device "$device" \
      --no-progress "${thread_opts[@]}" 2>>"$e/decode.log"
  done
fi

if run_stage 8; then
  echo "== stage 8: score (%WER on words; BPE hypotheses are written as words)"
  for s in dev_clean dev_other test_clean test_other; do
    for d in lex greedy; do
      out=$e/decode_${s}_$d
      [ -f "$out/text" ] || continue
      asr score "$data/$s/text" "$out/text" --reports "$out/scoring" > "$out/wer"
      echo "$name $s $d $(head -1 "$out/wer")"
    done
  done
fi
