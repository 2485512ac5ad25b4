"""Linear CKA: latentlab's streamed feature-space form vs the peers' Gram-matrix implementations.

Peers, run in the same session on the same data, each through its own code path:
ckatorch 1.0.3 ``core.cka_base`` (Kornblith's biased CKA from centred float64 Gram matrices,
O(n²·d) time, ~5.4·n²·8 bytes), torch-cka 0.21's ``CKA.compare`` body with one batch of all
rows (its Gram mode: unbiased ``_HSIC`` with trace(K @ L), O(n³)) and with minibatches
(Nguyen et al.'s minibatch CKA — an approximation whose value depends on the batch size).
Both installed with ``pip install --no-deps`` (their plotting imports stubbed). Every
measured run is a separate process (time and peak memory of that process only).

    python bench/bench_cka.py --quick            # small sizes, a minute
    python bench/bench_cka.py                    # the issue's sizes: n = 100,000 × 768 etc.
    python bench/bench_cka.py --torch-cka-gram-n 10000   # cap torch-cka's O(n³) Gram run
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
    """Run ``code`` in a fresh interpreter and return its ``RESULT`` dict plus peak memory.

    One process per measured run, so no run inherits another's allocator high-water mark.
    The snippet calls ``mark()`` right before the measured section (after imports, a warm-up
    GEMM that maps the BLAS kernels, and — for the peers — loading their input into memory);
    ``extra_mib`` = the child's peak RSS (``ru_maxrss``) minus its RSS at ``mark()``, i.e. the
    memory the measured computation itself added. latentlab reads its input lazily with
    plain file reads (no mmap), so its figure contains every byte of input it holds.
    """
    wrapper = (
        "import resource, json, os, sys, torch\n"
        "torch.ones(64, 64) @ torch.ones(64, 64)\n"
        "def _rss():\n"
        "    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20\n"
        "_BEFORE = [None]\n"
        "def mark(): _BEFORE[0] = _rss()\n"
        + code +
        "\npeak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps({**RESULT, 'maxrss_mib': peak, 'extra_mib': peak - _BEFORE[0]}))")
    env = {**os.environ, "LATENTLAB_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, env=env)
    if out.returncode:
        tail = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        return {"error": tail if out.returncode > 0 else f"killed by signal {-out.returncode} (out of memory?)"}
    return json.loads(out.stdout.strip().splitlines()[-1])


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


def load1() -> str:
    return "load %.1f" % os.getloadavg()[0]

# ---- the benchmark

LATENTLAB = """
import time, latentlab
latentlab.cka, latentlab.uniformity  # import the modules before timing
mark()
t = time.perf_counter()
v = latentlab.cka({a!r}, {b!r}, device="cpu").cka
RESULT = {{"seconds": time.perf_counter() - t, "cka": float(v)}}
"""

# ckatorch 1.0.3's own entry point (Kornblith's biased linear CKA via centred float64 Grams).
CKATORCH_GRAM = """
import sys, time, numpy as np, torch
sys.path.insert(0, {bench!r})
from bench_cka import stub_plotting
stub_plotting()
from ckatorch.core import cka_base
x = torch.from_numpy(np.load({a!r})[:{n}]); y = torch.from_numpy(np.load({b!r})[:{n}])
mark()
t = time.perf_counter()
v = cka_base(x, y)
RESULT = {{"seconds": time.perf_counter() - t, "cka": float(v)}}
"""

# torch-cka 0.21's code path (CKA.compare's body): per batch K = XXᵀ, L = YYᵀ with zeroed
# diagonals, then its unbiased CKA._HSIC(K, K), (K, L), (L, L) summed over batches. With one
# batch of all n rows this is its full Gram-matrix mode (trace(K @ L): O(n³)); with batches
# it is Nguyen et al.'s minibatch CKA, an approximation that depends on the batch size.
TORCHCKA = """
import sys, time, numpy as np, torch
sys.path.insert(0, {bench!r})
from bench_cka import stub_plotting
stub_plotting()
from torch_cka.cka import CKA
class _Self:  # CKA._HSIC only reads self.device
    device = "cpu"
x = torch.from_numpy(np.load({a!r})[:{n}]); y = torch.from_numpy(np.load({b!r})[:{n}])
mark()
t = time.perf_counter()
h = np.zeros(3); nb = 0
for lo in range(0, {n}, {batch}):
    xb, yb = x[lo:lo + {batch}], y[lo:lo + {batch}]
    if len(xb) < 4: continue
    K, L = xb @ xb.T, yb @ yb.T
    K.fill_diagonal_(0); L.fill_diagonal_(0)  # as torch-cka's compare() does before _HSIC
    h += [CKA._HSIC(_Self, K, K), CKA._HSIC(_Self, K, L), CKA._HSIC(_Self, L, L)]; nb += 1
    del K, L
v = h[1] / np.sqrt(h[0] * h[2])
RESULT = {{"seconds": time.perf_counter() - t, "cka": float(v)}}
"""


def _mib(r: dict) -> str:
    return f"peak +{r['extra_mib']:6.0f} MiB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (n=20,000 streamed, 4,000 Gram, 10,000 minibatch)")
    p.add_argument("--n", type=int, default=100_000, help="rows for the streamed latentlab run")
    p.add_argument("--d", type=int, default=768)
    p.add_argument("--gram-n", type=int, default=18_000,
                   help="n for ckatorch's Gram form (about 5.4 n² × 8 bytes: 14 GB at 18,000 — the largest "
                        "that leaves room for the other processes of a shared 24 GB machine)")
    p.add_argument("--torch-cka-gram-n", type=int, default=None,
                   help="n for torch-cka's full-batch Gram mode (3 n³ multiply-adds; default: --gram-n)")
    p.add_argument("--batch-n", type=int, default=50_000, help="n for the minibatch comparison")
    p.add_argument("--batch", type=int, default=1024, help="torch-cka minibatch size")
    args = p.parse_args()
    if args.quick:
        args.n, args.gram_n, args.batch_n = 20_000, 4_000, 10_000
    tgram = args.torch_cka_gram_n or args.gram_n
    bench = os.path.dirname(os.path.abspath(__file__))
    print(load_info(), "(shared machine: timings are noisy)")
    rate = gemm_rate()
    print(f"measured float32 GEMM rate: {rate / 1e9:.1f} G multiply-adds/s "
          f"(linear CKA needs 3·n·d² of them: {3 * args.n * args.d**2 / rate:.2f} s at n={args.n})")
    print("peak = the child process's peak RSS minus its RSS just before the measured call "
          "(peers: after loading their input)")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({args.gram_n, tgram, args.batch_n, args.n}):
            sa, sb = os.path.join(tmp, f"a{n}.npy"), os.path.join(tmp, f"b{n}.npy")
            make_pair(sa, sb, n, args.d)
            r = run_child(LATENTLAB.format(a=sa, b=sb))
            if "error" in r:
                print(f"latentlab linear CKA  n={n:>7}: failed ({r['error']})")
                continue
            print(f"latentlab linear CKA  n={n:>7} d={args.d}: {r['seconds']:8.2f} s   cka={r['cka']:.6f}   {_mib(r)}"
                  f"   GEMM bound {3 * n * args.d**2 / rate:5.2f} s   [{load1()}]")
            peers = []
            if n == args.gram_n:
                peers.append(("ckatorch cka_base (Gram, float64)", CKATORCH_GRAM.format(bench=bench, a=sa, b=sb, n=n)))
            if n == tgram:
                peers.append(("torch-cka full-batch Gram (_HSIC)",
                              TORCHCKA.format(bench=bench, a=sa, b=sb, n=n, batch=n)))
            if n == args.batch_n:
                peers.append((f"torch-cka minibatch {args.batch} (approx.)",
                              TORCHCKA.format(bench=bench, a=sa, b=sb, n=n, batch=args.batch)))
            for name, code in peers:
                g = run_child(code)
                if "error" in g:
                    print(f"  {name:<36} n={n:>7}: failed ({g['error']})")
                    continue
                print(f"  {name:<36} n={n:>7}: {g['seconds']:8.2f} s   cka={g['cka']:.6f}   {_mib(g)}   "
                      f"→ latentlab {g['seconds'] / r['seconds']:.1f}× faster   [{load1()}]")
        print(load_info())


if __name__ == "__main__":
    main()
