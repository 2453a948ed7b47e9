# The numbered stages of a recipe, as in Kaldi's and icefall's run.sh. Source it, then guard
# each stage with `if run_stage N; then ... fi`: stage N runs when stage <= N <= stop_stage,
# the script's variables of --stage and --stop-stage, read at each call (so after
# parse_options.sh has set them). A value that is not an integer is an error, not a skip.
run_stage() {  # N
  local v
  for v in stage stop_stage; do
    if ! [[ ${!v-} =~ ^-?[0-9]+$ ]]; then
      echo "${0##*/}: --${v//_/-} is an integer, not '${!v-}'" >&2
      exit 1
    fi
  done
  # shellcheck disable=SC2154  # the sourcing script's variables
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}
