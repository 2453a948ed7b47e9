#!/usr/bin/env bash
# The GPU check of issue 21 (item 4) as one command for a lent GPU machine: bench/bench_gpu.py
# on CUDA (per_direction vs packed, trainer vs bare nn.LSTM, bf16 vs fp32, torchrun with NCCL,
# the CUDA tests), under a hard limit of 8 minutes. Results: $OUT/gpu.json and $OUT/gpu.log.
#
# The device machine gets a copy of the working tree but no .venv, no package registry, and its
# own python3 (3.12) with its own torch, which is used as it is: asr runs from the tree through
# PYTHONPATH, not installed (pyproject pins torch 2.13.0 and Python < 3.12, which would pull
# or refuse). asr's dependencies that the machine's image lacks travel as wheels, in .whl/
# (git-ignored). Once, here:
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     kaldiio soundfile soxr cffi pycparser
#
# (about 2 MB; the image already has numpy, pyyaml, tqdm, matplotlib, tensorboard, pytest).
# Then, with the device tool (about 3-5 minutes of device time with the machine's start):
#
#   run(command="bash bench/run_gpu_check.sh", carry=[".whl"], timeout_s=560)
#
# and copy the figures into docs/benchmarks.md, naming the GPU the log's first line names.
# Without the device tool: `OUT=/tmp/gpu bash bench/run_gpu_check.sh` on any CUDA machine.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/asr-gpu-check}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"

if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/asr-site .whl/*.whl || exit 1
  export PYTHONPATH="$PYTHONPATH:/tmp/asr-site"
fi
if ! "$PY" -c "import asr" 2>/dev/null; then
  # only where the tree cannot be imported as it is; --no-deps keeps the machine's own torch
  "$PY" -m pip install -q --no-deps --ignore-requires-python -e . || exit 1
fi
missing=$("$PY" - <<'EOF'
import importlib.util
names = ["torch", "numpy", "yaml", "tqdm", "kaldiio", "soundfile", "soxr", "matplotlib",
         "tensorboard", "pytest"]
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))
EOF
)
[ -n "$missing" ] && echo "missing Python modules: $missing (the sections needing them will fail)"

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  timeout 480 "$PY" bench/bench_gpu.py --device cuda --json "$OUT/gpu.json"
} 2>&1 | tee "$OUT/gpu.log"
