#!/usr/bin/env bash
# Wheels for a GPU machine that has its own CUDA torch but no package index (such as the lent
# H200 image: torch, numpy, scipy, scikit-learn, matplotlib, pyarrow, safetensors, click, tqdm,
# pytest and Dask's small dependencies are there; POT and Dask are not). Run it here, where pip
# reaches PyPI; bench/gpu_check.sh installs what lies in .whl/ (git-ignored) on that machine.
#   bash bench/gpu_wheels.sh              # for Python 3.12, the versions in .venv (else the latest)
#   PYVER=3.11 WHEELS=/tmp/w bash bench/gpu_wheels.sh   # another Python, another folder
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}
WHEELS=${WHEELS:-.whl}
PKGS=${PKGS:-"pot dask distributed partd locket tblib tornado zict"}
mkdir -p "$WHEELS"
for name in $PKGS; do
  spec=$name
  if [ -x .venv/bin/python ]; then  # the version CI tests with
    v=$(.venv/bin/python -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
    if [ -n "$v" ]; then spec="$name==$v"; fi
  fi
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$PYVER" --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$WHEELS" "$spec" 2> >(grep -v "is ignored: it is neither" >&2) \
    || { echo "error: no wheel of $spec for Python $PYVER on manylinux x86-64" >&2; exit 1; }
done
ls -l "$WHEELS"
du -sh "$WHEELS"
