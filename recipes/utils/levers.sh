# The training levers for voices a model never heard, shared by the synthetic recipes (synth,
# synth_books): copies of the training set through a simulated room or a codec (--augment), and
# VTLP (--vtlp). recipes/synth/RESULTS has the ablation that chose them. Source it; it calls asr.

# check_augment "LEVERS": exit 1 unless each word is reverb or codec, before any stage runs.
check_augment() {
  local a
  for a in $1; do
    case $a in
      reverb | codec) ;;
      *) echo "${0##*/}: --augment takes reverb and codec, not '$a'" >&2; exit 1 ;;
    esac
  done
}

# augment_copies DATA SET "LEVERS" SEED FEATURE_CONF: DATA/SET_aug, the set itself plus for each
# lever a copy of every utterance, named PREFIX-UTT with its original's text: rev1- (a room of
# 50 simulated ones), codec- (telephone band, GSM, MP3 or Opus, each for a quarter of them).
# Features of the whole set follow (FEATURE_CONF, log in DATA/features.log).
augment_copies() {
  local data=$1 set=$2 levers=$3 seed=$4 feature_conf=$5
  local parts=("$data/$set") a
  for a in $levers; do
    if [ "$a" = reverb ]; then
      asr data reverberate "$data/$set" "$data/${set}_reverb" --rooms 50 --seed "$seed" \
        --no-clean --no-progress
    else
      asr data codec "$data/$set" "$data/${set}_codec" --one-each --seed "$seed" --no-clean \
        --no-progress
    fi
    parts+=("$data/${set}_$a")
  done
  asr data combine "$data/${set}_aug" "${parts[@]}"
  asr features "$data/${set}_aug" --config "$feature_conf" --ark-dir "$data/${set}_aug/ark" \
    --no-progress 2>>"$data/features.log"
}

# vtlp_conf CONF W DIR: prints the training config to use: CONF itself when W is 0, else a copy
# DIR/$(basename CONF) with training.vtlp_max_warp set to W (asr train has no key=value
# overrides, so the recipe writes the config it trained with beside the model).
vtlp_conf() {
  local conf=$1 warp=$2 dir=$3
  if [ "$warp" = 0 ]; then
    echo "$conf"
    return
  fi
  mkdir -p "$dir"
  local out
  out=$dir/$(basename "$conf")
  if grep -q '^  vtlp_max_warp:' "$conf"; then
    sed "s/^  vtlp_max_warp:.*/  vtlp_max_warp: $warp/" "$conf" > "$out"
  else
    sed "s/^training:\$/training:\n  vtlp_max_warp: $warp/" "$conf" > "$out"
  fi
  echo "$out"
}
