"""Wall time of `latentlab report` on n × d row-paired sets (issue 7: 10,000 × 512 in < 2 min).

    python bench/bench_report.py              # 10,000 × 512
    python bench/bench_report.py --n 2000     # quick look

The pair is synthetic but shaped like a contrastive model's towers: a shared 64-d latent,
a different linear read-out per tower, noise, and an offset per tower (a modality gap).
Times the whole command in a subprocess, with the per-section split from --json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_pair(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 64)).astype(np.float32)
    towers = []
    for k in range(2):
        w = rng.standard_normal((64, d)).astype(np.float32) / 8
        offset = rng.standard_normal(d).astype(np.float32) * 0.3
        towers.append(z @ w + offset + 0.5 * rng.standard_normal((n, d)).astype(np.float32))
    return towers[0], towers[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = make_pair(args.n, args.d)
        np.save(Path(tmp) / "a.npy", a)
        np.save(Path(tmp) / "b.npy", b)
        cmd = [sys.executable, "-m", "latentlab", "report", f"{tmp}/a.npy", f"{tmp}/b.npy", "-o", f"{tmp}/r.html",
               "--bootstrap", str(args.bootstrap), "--json", "--device", "cpu"]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "LATENTLAB_PROGRESS": "0"})
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        rep = json.loads(out.stdout)
        skipped = [k for k, s in rep["sections"].items() if "skipped" in s]
        print(f"report on {args.n:,} × {args.d} pairs: {wall:.1f} s wall ({rep['seconds']:.1f} s inside), "
              f"{len(rep['sections']) - len(skipped)} sections, skipped {skipped or 'none'}; load average {load:.1f}")
        limit = 120.0
        print(f"{'PASS' if wall < limit else 'FAIL'}: {wall:.1f} s vs the {limit:.0f} s target")


if __name__ == "__main__":
    main()
