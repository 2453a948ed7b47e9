# Kaldi-style command-line options for a recipe script (Kaldi's egs/*/utils/parse_options.sh).
# Source it after the script has set its default variables, each with a comment that --help shows:
#
#   stage=0          # first stage to run
#   sample=false     # the 16-speaker sample instead of the full corpus
#   . ../utils/parse_options.sh
#
# Then `--foo-bar VALUE` or `--foo-bar=VALUE` sets the shell variable foo_bar, which the script
# must already have set (a lower-case name; help_message is not an option); any other --option
# is an error (exit 1, one line naming it). A variable whose default is true or false is a flag:
# `--sample` alone sets it to true, and `--sample true|false` or `--sample=true|false` (Kaldi's
# form) set either value; any other value after `=` is an error. (So a flag followed by a
# positional argument that is literally true or false takes it as its value.)
# `--help` or `-h` prints $help_message (or, when the script has none, its opening comment block)
# and then each option: every `name=` at the start of a line of the script before it sources
# this file (or of a file it sources there, e.g. a conf file of defaults), with its default and
# the comments beside and right above the assignment; then it exits 0.
# Options come first: parsing stops at `--` (dropped) or at the first argument that does not
# start with `--`; it and everything after it stay in "$@" for the script.
# Every name this file uses starts with _po_ (never an option name) and is unset at the end.

_po_prog=${0##*/}
declare -A _po_orig=()   # option -> its value before the command line changed it

_po_is_option() {  # NAME: a variable the script set, so an option
  [[ $1 =~ ^[a-z][a-z0-9_]*$ ]] && [ "$1" != help_message ] && [[ -v $1 ]]
}

_po_default() {  # NAME: its value before any option set it
  if [[ -v _po_orig[$1] ]]; then printf '%s' "${_po_orig[$1]}"; else printf '%s' "${!1}"; fi
}

# The options assigned at the top level (column 0) of FILE, up to the line that sources this
# file, and of the files sourced there: "--name [default]", then, indented below it, the
# comment lines right above the assignment and the one on its line. A blank line or any other
# line ends a block of comment lines.
_po_list() {
  local file=$1 line name value comment sourced='^(\.|source)[[:space:]]+([^[:space:];#]+)'
  local -a block=()
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line =~ ^[[:space:]]*(\.|source)[[:space:]].*parse_options\.sh ]]; then
      return 0
    elif [[ $line =~ ^#(.*)$ ]]; then
      block+=("${BASH_REMATCH[1]# }")
      continue
    elif [[ $line =~ ^([a-z][a-z0-9_]*)= ]]; then
      name=${BASH_REMATCH[1]}
      if _po_is_option "$name" && [[ ! -v _po_listed[$name] ]]; then
        _po_listed[$name]=1
        [[ $line =~ [[:space:]]#[[:space:]]?(.*)$ ]] && block+=("${BASH_REMATCH[1]}")
        value=$(_po_default "$name")
        printf '  --%s [%s]\n' "${name//_/-}" "$value"
        for comment in "${block[@]}"; do printf '      %s\n' "$comment"; done
      fi
    elif [[ $line =~ $sourced ]] && [ -f "${BASH_REMATCH[2]}" ]; then
      _po_list "${BASH_REMATCH[2]}"   # e.g. a conf file of defaults
    fi
    block=()
  done < "$file"
}

_po_help() {
  # The script itself: $0 as given, or (run through a relative path from another folder) its
  # name in the folder it moved to before sourcing this, as the recipes cd into theirs.
  local file=$0
  [ -f "$file" ] || file=${0##*/}
  if [ -n "${help_message:-}" ]; then
    printf '%s\n' "$help_message"
  elif [ -f "$file" ]; then
    # the opening comment block after the #! line, without its leading "# "
    awk 'NR == 1 && /^#!/ { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$file"
  fi
  if [ -f "$file" ]; then
    echo
    echo "Options (default in brackets; a true/false option given alone means true):"
    declare -A _po_listed=()
    _po_list "$file"
  fi
}

while [ $# -gt 0 ]; do
  case $1 in
    --) shift; break ;;
    -h|--help) _po_help; exit 0 ;;
    --?*) ;;
    *) break ;;
  esac
  _po_opt=${1%%=*}
  _po_name=${_po_opt#--}
  _po_name=${_po_name//-/_}
  if ! _po_is_option "$_po_name"; then
    echo "$_po_prog: unknown option $_po_opt (see $_po_prog --help)" >&2
    exit 1
  fi
  [[ -v _po_orig[$_po_name] ]] || _po_orig[$_po_name]=${!_po_name}
  _po_flag=false
  case ${_po_orig[$_po_name]} in true|false) _po_flag=true ;; esac
  if [[ $1 == *=* ]]; then
    _po_value=${1#*=}
    shift
  elif $_po_flag; then
    # a flag takes true or false as its value when one follows, and is true alone
    if [ $# -ge 2 ] && { [ "$2" = true ] || [ "$2" = false ]; }; then
      _po_value=$2
      shift 2
    else
      _po_value=true
      shift
    fi
  elif [ $# -ge 2 ]; then
    _po_value=$2
    shift 2
  else
    echo "$_po_prog: option $_po_opt needs a value" >&2
    exit 1
  fi
  if $_po_flag && [ "$_po_value" != true ] && [ "$_po_value" != false ]; then
    echo "$_po_prog: option $_po_opt is true or false, not '$_po_value'" >&2
    exit 1
  fi
  printf -v "$_po_name" '%s' "$_po_value"
done

unset _po_prog _po_orig _po_opt _po_name _po_flag _po_value
unset -f _po_is_option _po_default _po_list _po_help
