#!/usr/bin/env bash
# Runs benchmarks/gpu.py on a lent GPU machine that has Python, PyTorch (with Triton and CuPy) and pytest but
# no network and no .venv: the missing pure-Python wheels travel in .whl/ and the four plugins are used from
# their source folders (PYTHONPATH), so nothing is built or installed outside /tmp.
#
#   1. here, with pip access, from the repo root (once; .whl/ is git-ignored through info/exclude):
#        bash benchmarks/gpu_setup.sh download
#   2. on the GPU machine, from the repo root of a copy of the working tree with .whl/ carried along:
#        bash benchmarks/gpu_setup.sh [gpu.py options, e.g. --budget-s 420]
#      It writes gpu.json, gpu.md, gpu.log and the pytest junit files to $OUT (default runs/gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
WHL=.whl
PY=${PYTHON:-python3}

if [ "${1:-}" = download ]; then
  exclude=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$exclude")"
  grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
  rm -rf "$WHL"
  # SpikingJelly 2.x and its logger (pure Python); 0.0.0.0.14 apart (the CuPy line, --sj14), never mixed
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$WHL" spikingjelly==2.0.0 loguru==0.7.3
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$WHL/sj14" spikingjelly==0.0.0.0.14
  ls -l "$WHL" "$WHL/sj14"
  exit 0
fi

OUT_DIR=${OUT:-runs/gpu}
mkdir -p "$OUT_DIR"
SITE=/tmp/sj_site
"$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHL"/*.whl
args=()
if compgen -G "$WHL/sj14/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/sj14 "$WHL"/sj14/*.whl
  args+=(--sj14 /tmp/sj14)
fi
export PYTHONPATH="$PWD/sj_common/src:$PWD/sj_calib/src:$PWD/sj_bkd/src:$PWD/sj_transfer/src:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" benchmarks/gpu.py --out "$OUT_DIR" "${args[@]}" "$@" 2>&1 | tee "$OUT_DIR/gpu.log"
