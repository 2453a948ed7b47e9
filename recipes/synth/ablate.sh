#!/usr/bin/env bash
# The levers for voices and channels never heard in training, each on its own and together: the
# phone model of run.sh (conf/train_phone.yaml) retrained with one lever at a time, scored
# greedily on the unseen-voice test set, overall and per engine (espeak-ng, flite, festival).
# Run after stages 0-2 of run.sh with the same --seed, --data and --exp: run.sh's own phone
# model (stage 2) is the row without levers. Prints one line per lever; --table prints mean and
# standard deviation over several runs' lines. See RESULTS ("ablation").
#
#   ./ablate.sh [--data DIR] [--exp DIR] [--seed S] [--hours H] [--threads N]
#               [--levers "vtlp vtl ..."]
#   ./ablate.sh --table "exp_s0 exp_s1 exp_s2"
#
# Levers (the options they stand for are documented in docs/training.md and docs/recipes.md):
#   vtlp    training.vtlp_max_warp 0.1: a random VTLN warp of the mel axis per utterance
#   vtl     the training corpus synthesised again with --vocal-tract 0.85:1.15 (flite and
#           festival voices with scaled formants; the same prompts, dev and test)
#   reverb  plus one reverberant copy of each training utterance (asr data reverberate, 50
#           simulated rooms, RT60 0.2-0.6 s)
#   codec   plus one copy of each through a telephone band or a codec (asr data codec --one-each)
#   wnoise  training.weight_noise 0.03 (Graves 2013)
#   voices  vtlp and vtl together (no extra training utterances)
#   all     vtlp, vtl, reverb and codec together (three times the training utterances)
# and, by --levers only, the levers at other amounts of compute:
#   all5    all, trained for 5 epochs instead of 15: the default's number of updates
#   none45  no lever, 45 epochs instead of 15: the number of updates of all
#   mix     vtlp and vtl, each training utterance once: clean, reverberant or coded (a third
#           each, drawn with --seed): the default's number of utterances and updates
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
. ./path.sh

data=data           # run.sh's data directories (after its stage 1)
exp=exp             # run.sh's experiments: exp/phone is the baseline, runs go to exp/ablate
seed=0              # run.sh's --seed: the corpus (for vtl) and the training seed
hours=1             # run.sh's --hours (for vtl)
threads=1           # torch threads of each run
levers="vtlp vtl reverb codec wnoise voices all"  # all5 none45 mix: by --levers only
table=              # run.sh exp dirs whose ablate lines to summarise instead of training
. ../utils/parse_options.sh
[ $# -eq 0 ] || { echo "${0##*/}: unexpected argument $1 (see --help)" >&2; exit 1; }

engines="espeak flite festival"   # test utterance ids start with the engine's name

if [ -n "$table" ]; then
  lines=()
  for e in $table; do
    for f in "$e"/phone/ablate.line "$e"/ablate/*.line; do [ -f "$f" ] && lines+=("$f"); done
  done
  [ "${#lines[@]}" -gt 0 ] || { echo "${0##*/}: no ablate lines under $table" >&2; exit 1; }
  cat "${lines[@]}" |
    awk -F'\t' '
    { n[$1]++; for (i = 2; i <= NF; i++) { s[$1, i] += $i; q[$1, i] += $i * $i }; nf = NF
      if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
    END {
      printf "%-8s %5s  %-14s %-14s %-14s %-14s %-14s\n", "lever", "runs", "test %PER",
             "espeak", "flite", "festival", "dev TER"
      for (j = 1; j <= k; j++) {
        l = order[j]; printf "%-8s %5d ", l, n[l]
        for (i = 2; i <= nf; i++) {
          m = s[l, i] / n[l]
          if (n[l] == 1) { printf " %6.2f       ", m; continue }  # one run: no spread
          v = (q[l, i] - n[l] * m * m) / (n[l] - 1)
          printf " %6.2f (%4.2f)", m, sqrt(v > 0 ? v : 0)
        }
        printf "\n"
      }
    }'
  exit 0
fi

mkdir -p "$exp/ablate"
conf_with() {  # $1 = name, then "key: value" lines to add under training:
  local name=$1 out=$exp/ablate/$1.yaml
  shift
  cp conf/train_phone.yaml "$out"
  for kv in "$@"; do sed -i "s/^training:\$/training:\n  $kv/" "$out"; done
  echo "$out"
}

vtl_data() {  # the training corpus again, flite and festival voices with scaled vocal tracts
  local v=$data/ablate_vtl
  if [ ! -f "$v/train_phone/feats.scp" ]; then
    asr prepare synth "$v" --hours "$hours" --seed "$seed" --vocal-tract 0.85:1.15 \
      --no-progress >&2
    asr features "$v/train" --config conf/fbank.yaml --ark-dir "$v/train/ark" --no-progress \
      2>>"$v.features.log" >&2
    asr data copy "$v/train" "$v/train_phone" --text "$v/train/phones" >/dev/null
  fi
  echo "$v/train_phone"
}

augmented() {  # $1 = source train set, $2 = name, then "reverb" and/or "codec"
  local src=$1 out=$data/ablate_$2 parts=()
  shift 2
  if [ ! -f "$out/feats.scp" ]; then
    parts=("$src")
    for a in "$@"; do
      case $a in
        reverb) asr data reverberate "$src" "$out.reverb" --rooms 50 --seed "$seed" --no-clean \
                  --no-progress >&2 ;;
        codec) asr data codec "$src" "$out.codec" --one-each --seed "$seed" --no-clean \
                 --no-progress >&2 ;;
      esac
      parts+=("$out.$a")
    done
    asr data combine "$out" "${parts[@]}" >&2
    asr features "$out" --config conf/fbank.yaml --ark-dir "$out/ark" --no-progress \
      2>>"$out.features.log"
  fi
  echo "$out"
}

mixed() {  # $1 = source train set: each utterance once, clean, reverberant or coded
  local src=$1 out=$data/ablate_mix n
  if [ ! -f "$out/feats.scp" ]; then
    rm -rf "$out".*
    mkdir -p "$out.lists"
    # a seeded shuffle (shuf draws from a byte stream; the seed's own stream keeps it repeatable)
    cut -d' ' -f1 "$src/utt2spk" | shuf --random-source=<(yes "$seed") > "$out.lists/all"
    n=$(( $(wc -l < "$out.lists/all") / 3 ))
    head -n "$n" "$out.lists/all" > "$out.lists/reverb"
    sed -n "$(( n + 1 )),$(( 2 * n ))p" "$out.lists/all" > "$out.lists/codec"
    tail -n "+$(( 2 * n + 1 ))" "$out.lists/all" > "$out.lists/clean"
    for a in clean reverb codec; do
      asr data subset "$src" "$out.$a" --utt-list "$out.lists/$a" >&2
    done
    asr data reverberate "$out.reverb" "$out.reverb_only" --rooms 50 --seed "$seed" --no-clean \
      --no-progress >&2
    asr data codec "$out.codec" "$out.codec_only" --one-each --seed "$seed" --no-clean \
      --no-progress >&2
    asr data combine "$out" "$out.clean" "$out.reverb_only" "$out.codec_only" >&2
    asr features "$out" --config conf/fbank.yaml --ark-dir "$out/ark" --no-progress \
      2>>"$out.features.log"
  fi
  echo "$out"
}

score_line() {  # $1 = lever, $2 = model dir with decode_greedy: one tab-separated line
  local name=$1 dir=$2 line
  line="$name\t$(asr score "$data/test_phone/text" "$dir/decode_greedy/text" --metric PER \
    2>>"$dir/score.log" | head -1 | awk '{print $2}')"
  for eng in $engines; do
    grep "^$eng-" "$data/test_phone/text" > "$dir/decode_greedy/ref.$eng"
    grep "^$eng-" "$dir/decode_greedy/text" > "$dir/decode_greedy/hyp.$eng" || true
    line="$line\t$(asr score "$dir/decode_greedy/ref.$eng" "$dir/decode_greedy/hyp.$eng" \
      --metric PER 2>>"$dir/score.log" | head -1 | awk '{print $2}')"
  done
  line="$line\t$(sed -n 's/^# done:.*dev TER \([0-9.]*\)%.*/\1/p' "$dir/train.log")"
  printf "%b\n" "$line"
}

# the baseline: run.sh's phone model, decoded greedily as its stage 5 does
if [ ! -f "$exp/phone/final.pt" ]; then
  echo "${0##*/}: $exp/phone/final.pt missing: run stages 0-2 of run.sh first" >&2
  exit 1
fi
if [ ! -f "$exp/phone/decode_greedy/text" ]; then
  asr decode "$exp/phone/final.pt" "$data/test_phone" "$exp/phone/decode_greedy" \
    --threads "$threads" --no-progress 2>>"$exp/phone/decode.log"
fi
score_line none "$exp/phone" > "$exp/phone/ablate.line"
printf 'lever\ttest %%PER\tespeak\tflite\tfestival\tdev TER\n'
cat "$exp/phone/ablate.line"

for lever in $levers; do
  conf=conf/train_phone.yaml
  train=$data/train_phone
  case $lever in
    vtlp) conf=$(conf_with vtlp "vtlp_max_warp: 0.1") ;;
    wnoise) conf=$(conf_with wnoise "weight_noise: 0.03") ;;
    vtl) train=$(vtl_data) ;;
    reverb) train=$(augmented "$train" reverb reverb) ;;
    codec) train=$(augmented "$train" codec codec) ;;
    voices) train=$(vtl_data); conf=$(conf_with voices "vtlp_max_warp: 0.1") ;;
    all) train=$(augmented "$(vtl_data)" all reverb codec)
         conf=$(conf_with all "vtlp_max_warp: 0.1") ;;
    all5) train=$(augmented "$(vtl_data)" all reverb codec)
          conf=$(conf_with all5 "vtlp_max_warp: 0.1")
          sed -i 's/^  max_epochs: .*/  max_epochs: 5/' "$conf" ;;
    none45) conf=$(conf_with none45)
            sed -i 's/^  max_epochs: .*/  max_epochs: 45/' "$conf" ;;
    mix) train=$(mixed "$(vtl_data)"); conf=$(conf_with mix "vtlp_max_warp: 0.1") ;;
    *) echo "${0##*/}: unknown lever '$lever' (see the top of this script)" >&2; exit 1 ;;
  esac
  dir=$exp/ablate/$lever
  asr train --config "$conf" --train-dir "$train" --dev-dir "$data/dev_phone" --exp-dir "$dir" \
    --seed "$seed" --threads "$threads" --resume --no-progress > "$dir.out" 2>&1 ||
    { echo "$lever: training failed: $(tail -1 "$dir.out")" >&2; continue; }
  asr decode "$dir/final.pt" "$data/test_phone" "$dir/decode_greedy" --threads "$threads" \
    --no-progress 2>>"$dir/decode.log"
  score_line "$lever" "$dir" | tee "$exp/ablate/$lever.line"
done
