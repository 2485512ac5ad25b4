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
from measure import Reporter, gemm_rate, load1, load_info, make_pair, row, run_child  # noqa: E402

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
    p.add_argument("--json", action="store_true", help="print the table rows as JSON on stdout (run_all.py)")
    p.add_argument("--gemm-rate", type=float, help="multiply-adds/s measured once by run_all.py (default: measure)")
    args = p.parse_args()
    if args.quick:
        args.pdist_n, args.n = 4_000, 10_000
    out = Reporter(args.json)
    out.say(load_info(), "(shared machine: timings are noisy)")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({args.pdist_n, args.n}):
            pa, pb = os.path.join(tmp, f"a{n}.npy"), os.path.join(tmp, f"b{n}.npy")
            make_pair(pa, pb, n, args.d)
            # re-measured next to each run when standalone (the load on a shared machine drifts);
            # run_all.py passes the one rate it measured, so all rows share one yardstick
            rate = args.gemm_rate or gemm_rate()
            r = run_child(LATENTLAB.format(a=pa), yardstick=True)
            macs = n * n * args.d / 2  # the n(n−1)/2 pairwise inner products
            size = f"{n:,} × {args.d}"
            q = run_child(PDIST.format(a=pa)) if n == args.pdist_n else None
            note = f"value {r['value']:.5f} vs {q['value']:.5f}" if q and "value" in q and "value" in r else ""
            out.add(row("uniformity (exact)", size, r, "torch.pdist (Wang & Isola)" if q else "—", q,
                        macs=macs, rate=rate, target="≤1.5x GEMM", note=note))
            if "error" in r:
                out.say(f"latentlab uniformity n={n:>6}: failed ({r['error']})")
                continue
            rate = r.get("gemm_rate", rate)  # measured around this run (measure.run_child)
            bound = macs / rate
            out.say(f"latentlab uniformity n={n:>6} d={args.d}: {r['seconds']:7.2f} s  value={r['value']:.6f}  "
                    f"peak +{r['extra_mib']:5.0f} MiB  GEMM bound (n²·d/2 at {rate / 1e9:.1f} G/s) {bound:6.2f} s → "
                    f"{r['seconds'] / bound:.2f}× the bound   [{load1()}]")
            if q is None:
                continue
            if "error" in q:
                out.say(f"  torch.pdist (Wang & Isola) n={n:>6}: failed ({q['error']})")
            else:
                out.say(f"  torch.pdist (Wang & Isola) n={n:>6}: {q['seconds']:7.2f} s  value={q['value']:.6f}  "
                        f"peak +{q['extra_mib']:5.0f} MiB → latentlab {q['seconds'] / r['seconds']:.1f}× faster"
                        f"   [{load1()}]")
    out.say(load_info())
    out.finish()


if __name__ == "__main__":
    main()
