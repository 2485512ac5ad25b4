#!/usr/bin/env bash
# The one prepared GPU check (issues 11 and 13): on a machine with CUDA, from the repository root,
#   bash bench/gpu_check.sh            # sized by estimate (never run on one yet) for ~10 min on one H200
# 1. tests: the device tests (CPU vs CUDA agreement of every resampling / calibration path, every
#    registered measure, and every aligner's fit, transform, evaluate and match; on a CPU-only
#    machine the CUDA cases skip and say why),
# 2. devices: times the main paths on CPU and CUDA in the same run (aligners: fit + transform of
#    both sides, agreement = the largest entry-wise difference of the mapped rows) and writes the
#    table ($TABLE, default bench/gpu_table.md; this step starts it afresh),
# 3. ooc: the out-of-core benchmark on the device (bench/bench_out_of_core.py --device cuda:
#    OOC_ROWS rows a side in .npy shards, peak host RSS against 3 GB), appended to the table,
# 4. dask: the Dask engine, local vs 1 and 2 workers computing on the device (bench/bench_dask.py
#    --device cuda, DASK_ROWS rows a side), appended,
# 5. mlp: `fit mlp` training (pairs/s on MLP_N pairs of 768 → 512, 1 epoch, --structure 0 and 10)
#    on CPU and CUDA, appended.
# STEPS picks and orders them (default "tests devices ooc dask mlp"): a lease too short for all
# can run `STEPS="tests devices mlp"` and then `STEPS="ooc dask"` (which append to $TABLE). On the
# lent machine, where $OUT is emptied before each call: TABLE=$OUT/gpu_table.md, one per call.
# Sizes: N rows for the timed paths (default 20000), MLP_N pairs (default N when N is set, else
# 100000), OOC_ROWS (default 1000000) and DASK_ROWS (default 500000); a quick end-to-end check on
# a CPU: N=300 OOC_ROWS=20000 DASK_ROWS=20000 bash bench/gpu_check.sh
#
# Python: $PY if set; else .venv/bin/python; else, on a machine whose python3 already holds torch
# and latentlab's other dependencies but reaches no package index (the lent GPU image), that
# python3 with this checkout on PYTHONPATH and the missing packages (POT, Dask) installed from the
# wheels that `bash bench/gpu_wheels.sh` put in .whl/ (carry that folder along); else a fresh
# .venv from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
TABLE=${TABLE:-bench/gpu_table.md}
STEPS=${STEPS:-"tests devices ooc dask mlp"}
WHEELS=${WHEELS:-.whl}
if [ -n "${PY:-}" ]; then
  :
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
elif python3 -c "import torch, numpy, scipy, sklearn, click, tqdm, safetensors, pyarrow, matplotlib, pytest" 2>/dev/null; then
  PY=python3
  site=/tmp/latentlab-gpu-site
  if compgen -G "$WHEELS/*.whl" >/dev/null; then
    python3 -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target "$site" "$WHEELS"/*.whl
  fi
  export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  python3 -m venv .venv
  PY=.venv/bin/python
  "$PY" -m pip -q install -e ".[test]"
fi
DEVICE=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
"$PY" -c "import torch, latentlab; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'latentlab', latentlab.__version__)"
[ "$DEVICE" = cpu ] && echo "no CUDA device: the benchmarks below run on the CPU (a dry run of this script)"
failed=""
for step in $STEPS; do
  echo "== $step ($(date -u +%H:%M:%S) UTC)"
  # a failing step is reported at the end; the steps after it still run (their rows still count)
  case $step in
    tests) "$PY" -m pytest -q -rs -p no:cacheprovider tests/analyze/test_devices.py \
             tests/align/test_align_devices.py tests/align/test_mlp_devices.py || failed="$failed $step" ;;
    devices) "$PY" bench/bench_devices.py --n "${N:-20000}" --out "$TABLE" || failed="$failed $step" ;;
    ooc) "$PY" bench/bench_out_of_core.py --device "$DEVICE" --rows "${OOC_ROWS:-1000000}" --shard-rows 100000 \
           --queries 1000 --bank-rows 2000 --permutations 5 --table "$TABLE" || failed="$failed $step" ;;
    dask) if "$PY" -c "import dask, distributed" 2>/dev/null; then
            "$PY" bench/bench_dask.py --device "$DEVICE" --rows "${DASK_ROWS:-500000}" --shards 10 --queries 1000 \
              --table "$TABLE" || failed="$failed $step"
          else
            echo "dask: not installed (pip install 'latentlab[dask]', or the wheels of bench/gpu_wheels.sh): skipped"
            failed="$failed $step"
          fi ;;
    mlp) "$PY" bench/bench_mlp.py --n "${MLP_N:-${N:-100000}}" --epochs 1 --structure 0,10 --table "$TABLE" \
           || failed="$failed $step" ;;
    *) echo "error: unknown step '$step' in STEPS (tests, devices, ooc, dask, mlp)" >&2; exit 2 ;;
  esac
done
if [ -n "$failed" ]; then
  echo "== done ($(date -u +%H:%M:%S) UTC) with failures in:$failed; table: $TABLE" >&2
  exit 1
fi
echo "== done ($(date -u +%H:%M:%S) UTC): $TABLE"
