"""Linear CKA: latentlab's streamed feature-space form vs the peers' Gram-matrix implementations.

Peers, run in the same session on the same data: ckatorch 1.0.3 ``core.cka_base`` (Gram form,
float64, Kornblith's centring), ckatorch ``core.cka_batch`` and torch-cka 0.21 ``CKA._HSIC``
(Nguyen et al.'s unbiased minibatch HSIC accumulated over batches — the value depends on the
batch size). Both installed with ``pip install --no-deps`` (their plotting imports stubbed).

    python bench/bench_cka.py --quick            # small sizes, seconds
    python bench/bench_cka.py                    # the issue's sizes: n = 100,000 × 768 etc.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import json
import subprocess
import types

import numpy as np

# ---- helpers shared with bench_uniformity.py: child-process peak RSS, GEMM rate, peer imports


def run_child(code: str) -> dict:
    """Run ``code`` (which prints one JSON line) in a fresh interpreter; add its peak RSS (MiB)."""
    wrapper = ("import resource, json, sys\n" + code +
               "\nprint(json.dumps({**RESULT, 'maxrss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))")
    env = {**os.environ, "LATENTLAB_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, env=env)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_rss() -> float:
    """Peak RSS of an interpreter that only imports torch and latentlab (MiB)."""
    return run_child("import torch, latentlab.analyze.cka, latentlab.analyze.uniformity\nRESULT = {}")["maxrss_mib"]


def gemm_rate(dtype="float32", size: int = 2048, repeats: int = 5) -> float:
    """Measured multiply-adds per second of a square matrix product on this machine (best of N)."""
    import torch
    a = torch.randn(size, size, dtype=getattr(torch, dtype))
    b = torch.randn(size, size, dtype=getattr(torch, dtype))
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return size**3 / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def make_pair(path_a, path_b, n: int, d: int, seed: int = 0) -> None:
    """Correlated float32 embeddings written as .npy (read lazily by latentlab)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)).astype(np.float32) / np.sqrt(d)
    a = np.lib.format.open_memmap(path_a, mode="w+", dtype=np.float32, shape=(n, d))
    b = np.lib.format.open_memmap(path_b, mode="w+", dtype=np.float32, shape=(n, d))
    for lo in range(0, n, 8192):
        x = rng.normal(size=(min(8192, n - lo), d)).astype(np.float32)
        a[lo : lo + len(x)] = x
        b[lo : lo + len(x)] = x @ mix + rng.normal(size=x.shape).astype(np.float32)
    a.flush(), b.flush()
    del a, b


def stub_plotting() -> None:
    """torch-cka / ckatorch import matplotlib / seaborn for plots only; stub them when absent."""
    for name in ("matplotlib", "matplotlib.pyplot", "seaborn", "mpl_toolkits", "mpl_toolkits.axes_grid1"):
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.__getattr__ = lambda attr: None  # type: ignore[attr-defined]
            sys.modules[name] = mod


def load_info() -> str:
    try:
        return "load average %.2f %.2f %.2f on %d cores" % (*os.getloadavg(), os.cpu_count())
    except OSError:
        return "load average unavailable"

# ---- the benchmark

LATENTLAB = """
import time, latentlab
latentlab.cka, latentlab.uniformity  # import the modules before timing
t = time.perf_counter()
v = latentlab.cka({a!r}, {b!r}, device="cpu").cka
RESULT = {{"seconds": time.perf_counter() - t, "cka": float(v)}}
"""

GRAM = """
import sys, time, numpy as np, torch
sys.path.insert(0, {bench!r})
from bench_cka import stub_plotting
stub_plotting()
from ckatorch.core import cka_base
x = torch.from_numpy(np.load({a!r})[:{n}]); y = torch.from_numpy(np.load({b!r})[:{n}])
t = time.perf_counter()
v = cka_base(x, y)
RESULT = {{"seconds": time.perf_counter() - t, "cka": float(v)}}
"""

MINIBATCH = """
import sys, time, numpy as np, torch
sys.path.insert(0, {bench!r})
from bench_cka import stub_plotting
stub_plotting()
from torch_cka.cka import CKA
class _Self:  # CKA._HSIC only reads self.device
    device = "cpu"
x = torch.from_numpy(np.load({a!r})[:{n}]); y = torch.from_numpy(np.load({b!r})[:{n}])
t = time.perf_counter()
h = np.zeros(3); nb = 0
for lo in range(0, {n}, {batch}):
    xb, yb = x[lo:lo + {batch}], y[lo:lo + {batch}]
    if len(xb) < 4: continue
    K, L = xb @ xb.T, yb @ yb.T
    K.fill_diagonal_(0); L.fill_diagonal_(0)  # torch-cka zeroes the diagonals before _HSIC
    h += [CKA._HSIC(_Self, K, K), CKA._HSIC(_Self, K, L), CKA._HSIC(_Self, L, L)]; nb += 1
v = h[1] / np.sqrt(h[0] * h[2])
RESULT = {{"seconds": time.perf_counter() - t, "cka": float(v)}}
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (n=20,000 streamed, 4,000 Gram, 10,000 minibatch)")
    p.add_argument("--n", type=int, default=100_000, help="rows for the streamed latentlab run")
    p.add_argument("--d", type=int, default=768)
    p.add_argument("--gram-n", type=int, default=20_000, help="largest n the Gram peers run at (n² float64 Gram)")
    p.add_argument("--batch-n", type=int, default=50_000, help="n for the minibatch comparison")
    p.add_argument("--batch", type=int, default=1024, help="torch-cka minibatch size")
    args = p.parse_args()
    if args.quick:
        args.n, args.gram_n, args.batch_n = 20_000, 4_000, 10_000
    bench = os.path.dirname(os.path.abspath(__file__))
    print(load_info(), "(shared machine: timings are noisy)")
    rate = gemm_rate()
    print(f"measured float32 GEMM rate: {rate / 1e9:.1f} G multiply-adds/s")
    base = baseline_rss()
    with tempfile.TemporaryDirectory() as tmp:
        pa, pb = os.path.join(tmp, "a.npy"), os.path.join(tmp, "b.npy")
        make_pair(pa, pb, max(args.n, args.batch_n, args.gram_n), args.d)
        rows = []
        for n in sorted({args.gram_n, args.batch_n, args.n}):
            sa, sb = os.path.join(tmp, f"a{n}.npy"), os.path.join(tmp, f"b{n}.npy")
            make_pair(sa, sb, n, args.d)
            r = run_child(LATENTLAB.format(a=sa, b=sb))
            rows.append((n, r))
            print(f"latentlab linear CKA  n={n:>7} d={args.d}: {r.get('seconds', float('nan')):8.2f} s   "
                  f"cka={r.get('cka', float('nan')):.6f}   peak RSS beyond baseline {r.get('maxrss_mib', 0) - base:7.0f} MiB"
                  + (f"  ({r['error']})" if "error" in r else ""))
            if n == args.gram_n:
                g = run_child(GRAM.format(bench=bench, a=sa, b=sb, n=n))
                if "error" in g:
                    print(f"ckatorch cka_base     n={n:>7}: failed ({g['error']})")
                else:
                    print(f"ckatorch cka_base     n={n:>7}: {g['seconds']:8.2f} s   cka={g['cka']:.6f}   "
                          f"peak RSS beyond baseline {g['maxrss_mib'] - base:7.0f} MiB   "
                          f"→ latentlab {g['seconds'] / r['seconds']:.0f}× faster")
            if n == args.batch_n:
                m = run_child(MINIBATCH.format(bench=bench, a=sa, b=sb, n=n, batch=args.batch))
                if "error" in m:
                    print(f"torch-cka minibatch   n={n:>7}: failed ({m['error']})")
                else:
                    print(f"torch-cka minibatch   n={n:>7} batch={args.batch}: {m['seconds']:8.2f} s   "
                          f"cka={m['cka']:.6f} (approximation)   → latentlab {m['seconds'] / r['seconds']:.1f}× faster")
        print(load_info())


if __name__ == "__main__":
    main()
