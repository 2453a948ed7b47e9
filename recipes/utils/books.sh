# Public-domain books as UTF-8, shared by the recipes that synthesise read speech from them
# (synth_books, librispeech's local/make_synth_corpus.sh). Source it.

# utf8_books TEXT_DIR OUT_DIR: each TEXT_DIR/*/*.txt and TEXT_DIR/*.txt as OUT_DIR/FOLDER-NAME,
# UTF-8. A few Gutenberg and speech files are Latin-1 (asr prepare synth reads UTF-8 only and
# names a file that is not): convert them rather than lose them, and say which.
utf8_books() {
  local text_dir=$1 out_dir=$2 f out
  [ -d "$text_dir" ] || { echo "${0##*/}: $text_dir: no such text directory" >&2; return 1; }
  mkdir -p "$out_dir"
  for f in "$text_dir"/*/*.txt "$text_dir"/*.txt; do
    [ -f "$f" ] || continue
    out=$out_dir/$(basename "$(dirname "$f")")-$(basename "$f")
    if iconv -f UTF-8 -t UTF-8 "$f" > "$out.tmp" 2>/dev/null; then
      mv "$out.tmp" "$out"
    else
      iconv -f LATIN1 -t UTF-8 "$f" > "$out.tmp" && mv "$out.tmp" "$out"
      echo "$f: not UTF-8, read as Latin-1"
    fi
  done
}
