#!/usr/bin/env bash
# Large-vocabulary read speech made here: sentences of the public-domain books and speeches in
# ../shared/text read by the synthesisers Debian ships, a character BiLSTM-CTC model, and
# decoding with a lexicon and a word 3-gram (KenLM, modified Kneser-Ney) trained on the rest of
# that text. Dev and test sentences never occur in the LM text or in training, and the test
# voices never speak in training. Reports greedy WER and lexicon+LM WER. See RESULTS.
#
#   ./run.sh [--text-dir DIR] [--hours H] [--dev-utts N] [--test-utts N]
#            [--stage N] [--stop-stage M] [--seed S]
#            [--threads N] [--jobs N] [--order N] [--char-order N]
#            [--beam-size B] [--beam-threshold T] [--beam-size-token K]
#            [--lm-weights "a,b,..."] [--word-scores "x,y,..."]
#            [--char-lm-weights "a,b,..."] [--bpe-size N] [--bpe-conf FILE]
#            [--vocal-tract LOW:HIGH] [--vtlp W] [--augment "reverb codec"]
#            [--device cpu|cuda] [--conf FILE] [--data DIR] [--exp DIR]
#
# Stages:
#   0  text: the books (non-UTF-8 files converted from Latin-1) -> asr prepare synth --text:
#      train/dev/test speech and data/local/lm_text (every sentence but dev and test ones)
#   1  features: 40 log-mel + deltas, per-voice CMVN (conf/fbank.yaml); with --augment,
#      train_aug: the training set plus a reverberant and/or a coded copy
#   2  lexicon: every word of the LM text and the training transcripts, spelled in characters
#      (data/local/dict_char), and in CMUdict phones with flite letter-to-sound for the rest
#      (data/local/dict_phone, for phone models; cached)
#   3  LMs from data/local/lm_text (asr lm train): a word 3-gram, and a character 6-gram for
#      lexicon-free search; KenLM binaries; perplexities on the dev and test sentences
#   4  train the character model (conf/train_char.yaml)
#   5  decode dev: greedy; lexicon + word LM beam search over a grid of LM weights and word
#      scores (Kaldi's local/score.sh practice), and lexicon-free + char LM search over LM
#      weights; each grid's best goes to its best.json
#   6  decode test: greedy, and both searches with the pair tuned on dev (--tuned-on)
#   7  score test: %WER of each, per-voice reports, the paired comparisons, and per test voice
#      greedy and lexicon + LM %WER and their ratio
#   8  BPE units: sentencepiece (--bpe-size pieces) trained on the training transcripts,
#      every set's transcripts in pieces (data/*_bpe), a lexicon of the same words in pieces,
#      and a BPE model (conf/train_bpe.yaml)
#   9  the BPE model: greedy, and lexicon + 3-gram tuned on dev, scored on test in words
# The levers for unseen voices of recipes/synth (off by default; see its RESULTS for the
# ablation) are options here too: --vocal-tract 0.85:1.15 --vtlp 0.1 --augment "reverb codec".
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh
. ../utils/stage.sh
. ../utils/levers.sh
. ../utils/books.sh

text_dir=../../../shared/text   # the books: DIR/*/*.txt and DIR/*.txt
hours=2         # hours of training speech to synthesise
dev_utts=0      # 0: 5% of the training utterances, at least 200
test_utts=0     # 0: 5% of the training utterances, at least 200
stage=0         # first stage to run
stop_stage=100  # last stage to run
seed=0          # synthesis, model initialisation and batch order
threads=0       # 0: all cores
jobs=0          # synthesis processes; 0: one per core
order=3         # n of the word n-gram
char_order=6    # n of the character n-gram (lexicon-free search)
beam_size=50    # beam of the LM searches
beam_threshold=25   # score threshold of the LM searches
beam_size_token=0   # 0: every token at every frame
lm_weights=0.5,1.0,1.5,2.0    # word LM weights tried on dev
word_scores=-1,0,1,2          # word scores tried on dev
char_lm_weights=0.25,0.5,0.75,1.0,1.5   # lexicon-free search has no word score
vocal_tract=1:1 # formant scaling of flite's and festival's training voices (e.g. 0.85:1.15)
vtlp=0          # VTLP: largest random warp of the mel axis in training (training.vtlp_max_warp)
augment=        # copies of each training utterance: reverb (a simulated room), codec (one of
                # telephone, gsm, mp3, opus), or both; empty: none
device=cpu      # cpu or cuda
conf=conf/train_char.yaml     # asr train config of the character model
bpe_conf=conf/train_bpe.yaml  # asr train config of the BPE model (stage 8)
bpe_size=300    # sentencepiece pieces (stage 8)
feature_conf=conf/fbank.yaml  # asr features config
data=data       # data directories
exp=exp         # experiments: exp/char and exp/bpe
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }

thread_opts=()
[ "$threads" -gt 0 ] && thread_opts+=(--threads "$threads")
train_set=train
[ -n "$augment" ] && train_set=train_aug
check_augment "$augment"
lm=$data/local/lm/${order}gram
char_lm=$data/local/lm/char${char_order}gram
model=$exp/char/final.pt

if run_stage 0; then
  echo "== stage 0: synthesise $hours h of training speech from the text in $text_dir"
  [ -d "$text_dir" ] || { echo "run.sh: $text_dir: no such text directory (--text-dir)" >&2; exit 1; }
  books=$data/local/books
  utf8_books "$text_dir" "$books"
  asr prepare synth "$data" --hours "$hours" --dev-utts "$dev_utts" --test-utts "$test_utts" \
    --seed "$seed" --jobs "$jobs" --vocal-tract "$vocal_tract" --no-progress \
    --text "$books"/*.txt
fi

if run_stage 1; then
  echo "== stage 1: features"
  for x in train dev test; do
    asr features "$data/$x" --config "$feature_conf" --ark-dir "$data/$x/ark" --no-progress \
      2>>"$data/features.log"
  done
  [ -z "$augment" ] || augment_copies "$data" train "$augment" "$seed" "$feature_conf"
fi

if run_stage 2; then
  echo "== stage 2: lexicon"
  mkdir -p "$data/local"
  cat "$data/local/lm_text" <(cut -d' ' -f2- "$data/train/text") | tr ' ' '\n' | grep -v '^$' \
    | sort -u > "$data/local/words.txt"
  echo "$(wc -l < "$data/local/words.txt") words in the LM text and training transcripts"
  asr lexicon prepare "$data/local/words.txt" "$data/local/dict_char" --units char
  asr lexicon prepare "$data/local/words.txt" "$data/local/dict_phone" --units phone \
    --phone-set lee-hon39 --g2p flite
fi

if run_stage 3; then
  echo "== stage 3: word ${order}-gram and character ${char_order}-gram"
  mkdir -p "$data/local/lm"
  asr lm train "$data/local/lm_text" --order "$order" "$lm.arpa" --binary "$lm.bin"
  asr lm train "$data/local/lm_text" --order "$char_order" --characters "$char_lm.arpa" \
    --binary "$char_lm.bin"
  for x in dev test; do
    echo "$x: $(asr lm perplexity "$lm.bin" "$data/$x/text" --skip-ids)"
    echo "$x characters: $(asr lm perplexity "$char_lm.bin" "$data/$x/text" --skip-ids \
      --characters)"
  done
fi

if run_stage 4; then
  echo "== stage 4: character model"
  char_conf=$(vtlp_conf "$conf" "$vtlp" "$exp/char")
  asr train --config "$char_conf" --train-dir "$data/$train_set" --dev-dir "$data/dev" \
    --exp-dir "$exp/char" --seed "$seed" --device "$device" --resume --no-progress \
    "${thread_opts[@]}" | tail -1
fi

search_opts=(--beam-size "$beam_size" --beam-threshold "$beam_threshold")
[ "$beam_size_token" -gt 0 ] && search_opts+=(--beam-size-token "$beam_size_token")
lexicon_opts=(--lexicon "$data/local/dict_char/lexicon.txt" --word-lm "$lm.bin" "${search_opts[@]}")
free_opts=(--token-lm "$char_lm.bin" "${search_opts[@]}")

if run_stage 5; then
  echo "== stage 5: decode dev (greedy; lexicon + word LM, lexicon-free + char LM: weight grids)"
  asr decode "$model" "$data/dev" "$exp/char/decode_dev_greedy" --device "$device" \
    --no-progress "${thread_opts[@]}" 2>>"$exp/char/decode.log"
  asr decode "$model" "$data/dev" "$exp/char/decode_dev_lex${order}g" --device "$device" \
    "${lexicon_opts[@]}" --lm-weight="$lm_weights" --word-score="$word_scores" \
    --no-progress "${thread_opts[@]}" 2>>"$exp/char/decode.log"
  asr decode "$model" "$data/dev" "$exp/char/decode_dev_char${char_order}g" --device "$device" \
    "${free_opts[@]}" --lm-weight="$char_lm_weights" \
    --no-progress "${thread_opts[@]}" 2>>"$exp/char/decode.log"
  echo "dev greedy $(asr score "$data/dev/text" "$exp/char/decode_dev_greedy/text" | head -1)"
  for d in "lex${order}g" "char${char_order}g"; do
    echo "dev $d best of the grid: $(cat "$exp/char/decode_dev_$d/best.json")"
  done
fi

if run_stage 6; then
  echo "== stage 6: decode test (greedy; lexicon + LM with the weights tuned on dev)"
  asr decode "$model" "$data/test" "$exp/char/decode_test_greedy" --device "$device" \
    --no-progress "${thread_opts[@]}" 2>>"$exp/char/decode.log"
  asr decode "$model" "$data/test" "$exp/char/decode_test_lex${order}g" --device "$device" \
    "${lexicon_opts[@]}" --tuned-on "$exp/char/decode_dev_lex${order}g" --nbest 10 \
    --no-progress "${thread_opts[@]}" 2>>"$exp/char/decode.log"
  tail -1 "$exp/char/decode.log"
  asr decode "$model" "$data/test" "$exp/char/decode_test_char${char_order}g" --device "$device" \
    "${free_opts[@]}" --tuned-on "$exp/char/decode_dev_char${char_order}g" \
    --no-progress "${thread_opts[@]}" 2>>"$exp/char/decode.log"
  tail -1 "$exp/char/decode.log"
fi

if run_stage 7; then
  echo "== stage 7: score test (unseen voices, sentences the LM never saw)"
  for d in greedy "lex${order}g" "char${char_order}g"; do
    out=$exp/char/decode_test_$d
    asr score "$data/test/text" "$out/text" --alignments "$out/per_utt" \
      --reports "$out/scoring" --per-speaker > "$out/wer"
    echo "test $d $(head -1 "$out/wer")"
  done
  echo "per test voice: words, greedy %WER, lexicon + ${order}-gram %WER, their ratio"
  # the --per-speaker lines: "VOICE: %WER RATE [ ERRORS / WORDS, ..."
  join <(sed -n 's/^\([^ ]*\): %WER \([^ ]*\) \[ [0-9]* \/ \([0-9]*\),.*/\1 \3 \2/p' \
           "$exp/char/decode_test_greedy/wer" | sort) \
       <(sed -n 's/^\([^ ]*\): %WER \([^ ]*\) .*/\1 \2/p' \
           "$exp/char/decode_test_lex${order}g/wer" | sort) \
    | awk '{ printf "  %-26s %5d %7.2f %7.2f %5.2f\n", $1, $2, $3, $4, ($3 > 0 ? $4 / $3 : 0) }'
  asr score --compare "$exp/char/decode_test_greedy/text" \
    "$exp/char/decode_test_lex${order}g/text" "$data/test/text"
  oov=$(cut -d' ' -f2- "$data/test/text" | tr ' ' '\n' | grep -v '^$' \
    | grep -cvxFf "$data/local/words.txt" || true)
  echo "test words outside the lexicon: $oov of $(cut -d' ' -f2- "$data/test/text" | wc -w)"
fi

if run_stage 8; then
  echo "== stage 8: BPE units ($bpe_size pieces) and the BPE model ($bpe_conf)"
  mkdir -p "$data/local/bpe"
  asr bpe train "$data/train/text" --vocab-size "$bpe_size" "$data/local/bpe/bpe"
  for x in "$train_set" dev test; do
    asr bpe encode "$data/local/bpe/bpe.model" "$data/$x/text" "$data/local/bpe/$x.text"
    rm -rf "$data/${x}_bpe"
    asr data copy "$data/$x" "$data/${x}_bpe" --text "$data/local/bpe/$x.text" >/dev/null
  done
  asr lexicon prepare "$data/local/words.txt" "$data/local/dict_bpe" --units bpe \
    --bpe-model "$data/local/bpe/bpe.model"
  bpe_train_conf=$(vtlp_conf "$bpe_conf" "$vtlp" "$exp/bpe")
  asr train --config "$bpe_train_conf" --train-dir "$data/${train_set}_bpe" \
    --dev-dir "$data/dev_bpe" --exp-dir "$exp/bpe" --seed "$seed" --device "$device" --resume \
    --no-progress "${thread_opts[@]}" | tail -1
fi

if run_stage 9; then
  echo "== stage 9: decode with the BPE model (greedy; lexicon + ${order}-gram tuned on dev)"
  bpe_lexicon_opts=(--lexicon "$data/local/dict_bpe/lexicon.txt" --word-lm "$lm.bin"
    "${search_opts[@]}")
  # the grid is scored on words: the pieces of data/dev_bpe/text are joined back into words
  asr decode "$exp/bpe/final.pt" "$data/dev_bpe" "$exp/bpe/decode_dev_lex${order}g" \
    --device "$device" "${bpe_lexicon_opts[@]}" --lm-weight="$lm_weights" \
    --word-score="$word_scores" --no-progress "${thread_opts[@]}" 2>>"$exp/bpe/decode.log"
  echo "dev bpe lex${order}g best of the grid: $(cat "$exp/bpe/decode_dev_lex${order}g/best.json")"
  asr decode "$exp/bpe/final.pt" "$data/test_bpe" "$exp/bpe/decode_test_greedy" \
    --device "$device" --no-progress "${thread_opts[@]}" 2>>"$exp/bpe/decode.log"
  asr decode "$exp/bpe/final.pt" "$data/test_bpe" "$exp/bpe/decode_test_lex${order}g" \
    --device "$device" "${bpe_lexicon_opts[@]}" --tuned-on "$exp/bpe/decode_dev_lex${order}g" \
    --no-progress "${thread_opts[@]}" 2>>"$exp/bpe/decode.log"
  for d in greedy "lex${order}g"; do
    out=$exp/bpe/decode_test_$d
    asr score "$data/test/text" "$out/text" --reports "$out/scoring" > "$out/wer"
    echo "test bpe $d $(head -1 "$out/wer")"
  done
fi
