#!/usr/bin/env bash
# A corpus in LibriSpeech's own layout made here, for running this recipe without LibriSpeech:
# the books of TEXT_DIR read by the synthesisers Debian ships (asr prepare synth --layout
# librispeech). OUT/LibriSpeech/{train-clean-100,dev-clean,test-clean} with SPEAKERS.TXT,
# CHAPTERS.TXT, BOOKS.TXT; OUT/lm/librispeech-lm-norm.txt (every sentence of the books but the
# dev and test ones) and librispeech-vocab.txt. Then: ../run.sh --corpus-dir OUT
#
#   local/make_synth_corpus.sh [--text-dir DIR] [--hours H] [--seed S] [--jobs N]
#                              [--chapter-utts N] [--dev-utts N] [--test-utts N] OUT
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
. ./path.sh
. ../utils/books.sh

text_dir=../../../shared/text   # the books: DIR/*/*.txt and DIR/*.txt
hours=10          # hours of training speech (train-clean-100)
seed=0            # sentences, voices, prosody
jobs=0            # synthesis processes; 0: one per core
chapter_utts=20   # sentences a voice reads from one book in a row (a chapter)
dev_utts=0        # 0: 5% of the training utterances, at least 200
test_utts=0       # 0: as dev
. ../utils/parse_options.sh
[ $# -eq 1 ] || { echo "usage: ${0##*/} [options] OUT (see the header)" >&2; exit 1; }
out=$(readlink -f "$1")

books=$out/.books
utf8_books "$text_dir" "$books"
asr prepare synth "$out" --layout librispeech --hours "$hours" --seed "$seed" --jobs "$jobs" \
  --chapter-utts "$chapter_utts" --dev-utts "$dev_utts" --test-utts "$test_utts" \
  --no-progress --text "$books"/*.txt
rm -rf "$books"
