"""Linear CKA: latentlab's streamed feature-space form vs the peers' Gram-matrix implementations.

Peers, run in the same session on the same data, each through its own code path:
ckatorch 1.0.3 ``core.cka_base`` (Kornblith's biased CKA from centred float64 Gram matrices,
O(n²·d) time, ~5.4·n²·8 bytes), torch-cka 0.21's ``CKA.compare`` body with one batch of all
rows (its Gram mode: unbiased ``_HSIC`` with trace(K @ L), O(n³)) and with minibatches
(Nguyen et al.'s minibatch CKA — an approximation whose value depends on the batch size).
Both from ``pip install -e ".[bench]"`` (plotting imports stubbed if absent; a missing peer: "not installed"). Every
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import Reporter, gemm_rate, load1, load_info, make_pair, row, run_child  # noqa: E402

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
from measure import stub_plotting
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
from measure import stub_plotting
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
    p.add_argument("--json", action="store_true", help="print the table rows as JSON on stdout (run_all.py)")
    p.add_argument("--gemm-rate", type=float, help="multiply-adds/s measured once by run_all.py (default: measure)")
    args = p.parse_args()
    if args.quick:
        args.n, args.gram_n, args.batch_n = 20_000, 4_000, 10_000
    tgram = args.torch_cka_gram_n or args.gram_n
    out = Reporter(args.json)
    out.say(load_info(), "(shared machine: timings are noisy)")
    rate = args.gemm_rate or gemm_rate()
    out.say(f"float32 GEMM rate: {rate / 1e9:.1f} G multiply-adds/s "
            f"(linear CKA needs 3·n·d² of them: {3 * args.n * args.d**2 / rate:.2f} s at n={args.n})")
    out.say("peak = the child process's peak RSS minus its RSS just before the measured call "
            "(peers: after loading their input)")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted({args.gram_n, tgram, args.batch_n, args.n}):
            sa, sb = os.path.join(tmp, f"a{n}.npy"), os.path.join(tmp, f"b{n}.npy")
            make_pair(sa, sb, n, args.d)
            r = run_child(LATENTLAB.format(a=sa, b=sb), yardstick=n == args.n)
            size = f"{n:,} × {args.d}"
            macs = 3 * n * args.d**2  # XᵀX, YᵀY, XᵀY: the d × d moments linear CKA needs
            if n == args.n:
                out.add(row("linear CKA (streamed)", size, r, macs=macs, rate=rate, target="≤1.5x GEMM"))
            if "error" in r:
                out.say(f"latentlab linear CKA  n={n:>7}: failed ({r['error']})")
                continue
            out.say(f"latentlab linear CKA  n={n:>7} d={args.d}: {r['seconds']:8.2f} s   cka={r['cka']:.6f}   "
                    f"{_mib(r)}   GEMM bound {macs / r.get('gemm_rate', rate):5.2f} s   [{load1()}]")
            peers = []  # (op, peer, code, target): Gram-form peers at their largest feasible n
            if n == args.gram_n:
                peers.append(("linear CKA vs Gram form", "ckatorch cka_base (float64 Gram)",
                              CKATORCH_GRAM.format(a=sa, b=sb, n=n), "peer≥50x"))
            if n == tgram:
                peers.append(("linear CKA vs Gram form", "torch-cka full batch (_HSIC)",
                              TORCHCKA.format(a=sa, b=sb, n=n, batch=n), "peer≥50x"))
            if n == args.batch_n:
                peers.append(("linear CKA vs minibatch", f"torch-cka minibatch {args.batch} (approx.)",
                              TORCHCKA.format(a=sa, b=sb, n=n, batch=args.batch), ""))
            for op, name, code, target in peers:
                g = run_child(code)
                note = f"cka {r['cka']:.4f} vs {g['cka']:.4f}" if "cka" in g else ""
                out.add(row(op, size, r, name, g, target=target, note=note))
                if "error" in g:
                    out.say(f"  {name:<36} n={n:>7}: {g['error']}")
                    continue
                out.say(f"  {name:<36} n={n:>7}: {g['seconds']:8.2f} s   cka={g['cka']:.6f}   {_mib(g)}   "
                        f"→ latentlab {g['seconds'] / r['seconds']:.1f}× faster   [{load1()}]")
        out.say(load_info())
    out.finish()


if __name__ == "__main__":
    main()
