#!/usr/bin/env bash
# The one prepared GPU check (issue 11): on a machine with CUDA, from the repository root,
#   bash bench/gpu_check.sh            # ~5 min on one GPU
# 1. runs the device tests (CPU vs CUDA agreement of every resampling / calibration path, every
#    registered measure, and every aligner's fit, transform, evaluate and match; on a CPU-only
#    machine the CUDA cases skip and say why),
# 2. times the main paths on CPU and CUDA in the same run (aligners: fit + transform of both
#    sides, agreement = the largest entry-wise difference of the mapped rows) and writes
#    bench/gpu_table.md,
# 3. times `fit mlp` training (pairs/s on MLP_N pairs of 768 → 512, 1 epoch, --structure 0 and 10)
#    on CPU and CUDA and appends those rows to the same table.
# On a machine without CUDA it still runs: the tests' CUDA cases skip, the table has a CPU column.
# Sizes: N rows for the timed paths (default 20000), MLP_N pairs for fit mlp (default N when N is
# set, else 100000); a quick end-to-end check on a CPU: N=300 bash bench/gpu_check.sh
# It installs what it needs into .venv when that is missing (CUDA torch comes from the
# machine's own torch if present, else PyPI's default wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then
  python3 -m venv .venv
  PY=.venv/bin/python
  "$PY" -m pip -q install -e ".[test]"
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
"$PY" -m pytest -q -rs tests/analyze/test_devices.py tests/align/test_align_devices.py tests/align/test_mlp_devices.py
"$PY" bench/bench_devices.py --n "${N:-20000}" --out bench/gpu_table.md
"$PY" bench/bench_mlp.py --n "${MLP_N:-${N:-100000}}" --epochs 1 --structure 0,10 --table bench/gpu_table.md
