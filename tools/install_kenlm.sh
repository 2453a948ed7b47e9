#!/usr/bin/env bash
# Builds KenLM's command-line tools (lmplz, build_binary, query, filter) into DEST/bin
# (default tools/kenlm/bin). The source is the kenlm 0.3.0 sdist from PyPI: PyPI is reachable
# where GitHub may not be, and the sdist holds the full C++ tree (lm/builder included).
# Needs cmake, a C++ compiler and Debian's libboost-program-options-dev libboost-system-dev
# libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev (`make apt` installs
# them). Idempotent: exits at once when the binaries exist and run.
set -euo pipefail

usage() {
  echo "usage: $0 [DEST]   (default: tools/kenlm; builds DEST/bin/{lmplz,build_binary,query,filter})"
}
case "${1:-}" in -h|--help) usage; exit 0 ;; esac
[ $# -le 1 ] || { usage >&2; exit 2; }

TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
DEST=${1:-$TOOLS_DIR/kenlm}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
VERSION=0.3.0
PROGRAMS="lmplz build_binary query filter"
# The PyPI sdist's sha256, so a corrupt or substituted download fails here, not in cmake.
SHA256=c4628bb9fb63c8a6f9240035b8b037385cfc404cb72e933cf48878291edac1e8

installed() {
  local p rc
  for p in $PROGRAMS; do
    [ -x "$DEST/bin/$p" ] || return 1
    # "runs": without arguments each prints its usage and exits 1; a missing shared library
    # (e.g. after a boost upgrade) makes the loader exit 127.
    rc=0
    "$DEST/bin/$p" --help >/dev/null 2>&1 </dev/null || rc=$?
    [ "$rc" -le 1 ] || return 1
  done
}

if installed; then
  echo "KenLM already built in $DEST/bin"
  exit 0
fi

for tool in cmake make c++; do
  command -v "$tool" >/dev/null || {
    echo "$0: '$tool' not found: install Debian's cmake build-essential (make apt)" >&2
    exit 1
  }
done

PIP=${PIP:-}
if [ -z "$PIP" ]; then
  if [ -x "$TOOLS_DIR/../.venv/bin/pip" ]; then PIP="$TOOLS_DIR/../.venv/bin/pip"; else PIP="python3 -m pip"; fi
fi

TARBALL=$TOOLS_DIR/kenlm-$VERSION.tar.gz
if [ ! -f "$TARBALL" ]; then
  echo "downloading the kenlm $VERSION source package from PyPI"
  tmpdl=$(mktemp -d "$TOOLS_DIR/.kenlm-dl.XXXXXX")
  trap 'rm -rf "$tmpdl"' EXIT
  $PIP download -q --no-deps --no-binary :all: --no-build-isolation -d "$tmpdl" "kenlm==$VERSION" \
    || { echo "$0: pip download of kenlm==$VERSION failed" >&2; exit 1; }
  mv "$tmpdl/kenlm-$VERSION.tar.gz" "$TARBALL"
fi
actual=$(sha256sum "$TARBALL" | cut -d' ' -f1)
if [ "$actual" != "$SHA256" ]; then
  echo "$0: $TARBALL: sha256 $actual, expected $SHA256 (delete it and rerun)" >&2
  exit 1
fi

BUILD=$DEST/build
rm -rf "$BUILD"
mkdir -p "$BUILD"
tar -xzf "$TARBALL" -C "$BUILD"
SRC=$BUILD/kenlm-$VERSION
JOBS=$(nproc 2>/dev/null || echo 2)
echo "building KenLM $VERSION with $JOBS jobs (a few minutes)"
start=$(date +%s)
cmake -S "$SRC" -B "$BUILD/cmake" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 \
  -DCOMPILE_TESTS=OFF -DENABLE_PYTHON=OFF -DCMAKE_DISABLE_FIND_PACKAGE_Eigen3=ON >"$BUILD/cmake.log" 2>&1 \
  || { tail -20 "$BUILD/cmake.log" >&2; echo "$0: cmake failed (log: $BUILD/cmake.log)" >&2; exit 1; }
# shellcheck disable=SC2086
make -C "$BUILD/cmake" -j"$JOBS" $PROGRAMS >"$BUILD/make.log" 2>&1 \
  || { tail -20 "$BUILD/make.log" >&2; echo "$0: make failed (log: $BUILD/make.log)" >&2; exit 1; }
mkdir -p "$DEST/bin"
for p in $PROGRAMS; do
  install -m 755 "$BUILD/cmake/bin/$p" "$DEST/bin/$p"
done
rm -rf "$BUILD"
installed || { echo "$0: the built binaries in $DEST/bin do not run" >&2; exit 1; }
echo "KenLM built in $DEST/bin in $(( $(date +%s) - start )) s"
