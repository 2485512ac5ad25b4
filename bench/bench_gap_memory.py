"""Peak memory of `latentlab gap` on a large float16 .npy, against the naive load-everything way.

    python bench/bench_gap_memory.py                 # 2,000,000 × 768 float16 (3 GB), as issue 2 asks
    python bench/bench_gap_memory.py --rows 200000   # quick look

Writes two row-paired float16 files into --workdir (default: a temp folder, removed after),
runs `latentlab gap A B --shift -1:1:0.5` in a subprocess and reports its peak resident
memory (ru_maxrss, which counts mapped file pages too) and wall time. The peer is the way
the Mind-the-Gap reference code computes the gap: load both arrays, normalise, take means
(`np.load` + numpy), run in its own subprocess on the same files.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NAIVE = """
import sys, numpy as np
a = np.load(sys.argv[1]).astype(np.float32); b = np.load(sys.argv[2]).astype(np.float32)
a /= np.linalg.norm(a, axis=1, keepdims=True); b /= np.linalg.norm(b, axis=1, keepdims=True)
print(float(np.linalg.norm(a.mean(0) - b.mean(0))))
"""


def make_file(path: Path, rows: int, dim: int, offset: float, seed: int, block: int = 100_000) -> None:
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(rows, dim))
    direction = np.zeros(dim, dtype=np.float32)
    direction[0] = offset
    for lo in range(0, rows, block):
        hi = min(lo + block, rows)
        out[lo:hi] = (rng.standard_normal((hi - lo, dim), dtype=np.float32) * 0.05 + direction).astype(np.float16)
    out.flush()
    del out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--skip-naive", action="store_true", help="skip the load-everything peer")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="latentlab-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        a, b = work / "a.npy", work / "b.npy"
        t0 = time.perf_counter()
        make_file(a, args.rows, args.dim, 0.1, 1)
        make_file(b, args.rows, args.dim, -0.1, 2)
        size_gb = a.stat().st_size / 1e9
        print(f"inputs: 2 × {args.rows:,} × {args.dim} float16 ({size_gb:.2f} GB each), written in {time.perf_counter() - t0:.1f} s")
        results = {}
        cli = [sys.executable, "-m", "latentlab", "gap", str(a), str(b), "--shift", "-1:1:0.5", "--bootstrap", "200",
               "--json", "--device", "cpu"]
        results["latentlab"] = measure(cli)
        print(f"latentlab gap: {results['latentlab']['wall_s']:.1f} s, peak RSS {results['latentlab']['peak_rss_gb']:.2f} GB, "
              f"centroid_distance {format_estimate(json.loads(results['latentlab']['stdout']), 'centroid_distance')}")
        if not args.skip_naive:
            results["naive"] = measure([sys.executable, "-c", NAIVE, str(a), str(b)])
            print(f"naive np.load: {results['naive']['wall_s']:.1f} s, peak RSS {results['naive']['peak_rss_gb']:.2f} GB, "
                  f"centroid_distance {float(results['naive']['stdout']):.6f}")
            ratio = results["naive"]["peak_rss_gb"] / results["latentlab"]["peak_rss_gb"]
            print(f"ratio naive/latentlab peak memory: {ratio:.1f}×")
        limit = 2.0
        verdict = "PASS" if results["latentlab"]["peak_rss_gb"] < limit else "FAIL"
        print(f"{verdict}: latentlab peak RSS {results['latentlab']['peak_rss_gb']:.2f} GB vs limit {limit} GB")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def format_estimate(out: dict, key: str) -> str:
    """``v [lo, hi]`` from a result's JSON: the number in place, its interval under ``ci``."""
    ci = (out.get("ci") or {}).get(key)
    return f"{out[key]:.6f}" + (f" [{ci['low']:.6f}, {ci['high']:.6f}]" if ci else "")


PROBE = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"wall_s": time.perf_counter() - t0, "rc": proc.returncode, "stdout": proc.stdout,
                  "stderr": proc.stderr[-500:],
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9}))
"""


def measure(cmd: list[str]) -> dict:
    """Wall time and peak RSS of ``cmd`` alone: a fresh interpreter runs it as its only child."""
    out = subprocess.run([sys.executable, "-c", PROBE, *cmd], capture_output=True, text=True, check=True,
                         env={**os.environ, "LATENTLAB_PROGRESS": "0"})
    res = json.loads(out.stdout)
    if res["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({res['rc']}): {res['stderr']}")
    return res


if __name__ == "__main__":
    main()
