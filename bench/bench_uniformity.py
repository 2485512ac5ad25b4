"""Exact uniformity: latentlab's blocked streaming log-sum-exp vs ``torch.pdist`` (Wang & Isola's code).

Also compares latentlab's time with the n²·d/2 multiply-adds the exact statistic needs at
this machine's measured float32 GEMM rate. Every measured run is a separate process; its
peak memory is that process's peak RSS minus its RSS just before the measured call (for
pdist: after loading the input). latentlab reads the input from the .npy file itself.

    python bench/bench_uniformity.py --quick     # n = 4,000 / 10,000 × 768
    python bench/bench_uniformity.py             # the issue's sizes: 10,000 (vs pdist) and 50,000
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from bench_cka import gemm_rate, load1, load_info, make_pair, run_child  # noqa: E402

LATENTLAB = """
import time, latentlab
latentlab.cka, latentlab.uniformity  # import the modules before timing
mark()
t = time.perf_counter()
v = latentlab.uniformity({a!r}, device="cpu").uniformity
RESULT = {{"seconds": time.perf_counter() - t, "value": float(v)}}
"""

PDIST = """
import time, numpy as np, torch
x = torch.from_numpy(np.load({a!r}))
mark()
t = time.perf_counter()
x = torch.nn.functional.normalize(x, dim=1)
v = torch.pdist(x, p=2).pow(2).mul(-2).exp().mean().log()   # Wang & Isola's uniform_loss
RESULT = {{"seconds": time.perf_counter() - t, "value": float(v)}}
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="n = 4,000 vs pdist and 10,000 alone")
    p.add_argument("--pdist-n", type=int, default=10_000)
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--d", type=int, default=768)
    args = p.parse_args()
    if args.quick:
        args.pdist_n, args.n = 4_000, 10_000
    print(load_info(), "(shared machine: timings are noisy)")
    rate = gemm_rate()
    print(f"measured float32 GEMM rate: {rate / 1e9:.1f} G multiply-adds/s")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({args.pdist_n, args.n}):
            pa, pb = os.path.join(tmp, f"a{n}.npy"), os.path.join(tmp, f"b{n}.npy")
            make_pair(pa, pb, n, args.d)
            rate = gemm_rate()  # re-measured next to each run: the load on a shared machine drifts
            r = run_child(LATENTLAB.format(a=pa))
            if "error" in r:
                print(f"latentlab uniformity n={n:>6}: failed ({r['error']})")
                continue
            bound = n * n * args.d / 2 / rate
            print(f"latentlab uniformity n={n:>6} d={args.d}: {r['seconds']:7.2f} s  value={r['value']:.6f}  "
                  f"peak +{r['extra_mib']:5.0f} MiB  GEMM bound (n²·d/2 at {rate / 1e9:.1f} G/s) {bound:6.2f} s → "
                  f"{r['seconds'] / bound:.2f}× the bound   [{load1()}]")
            if n == args.pdist_n:
                q = run_child(PDIST.format(a=pa))
                if "error" in q:
                    print(f"  torch.pdist (Wang & Isola) n={n:>6}: failed ({q['error']})")
                else:
                    print(f"  torch.pdist (Wang & Isola) n={n:>6}: {q['seconds']:7.2f} s  value={q['value']:.6f}  "
                          f"peak +{q['extra_mib']:5.0f} MiB → latentlab {q['seconds'] / r['seconds']:.1f}× faster"
                          f"   [{load1()}]")
    print(load_info())


if __name__ == "__main__":
    main()
