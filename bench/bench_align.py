"""Aligner speed and memory: streamed closed-form fits, and the unsupervised ``ot`` aligner.

1. Closed-form fits (lstsq, ridge, procrustes, cca) on N × 768 anchor pairs read from
   .npy files: one streamed pass (block products in float32 — the default --dtype — summed in
   float64; O(d²) memory), plus lstsq with float64 blocks. Peers in the same run: numpy's
   in-memory ``np.linalg.lstsq`` and scikit-learn's ``Ridge`` (which load the whole
   matrices), ``scipy.linalg.orthogonal_procrustes`` beside procrustes, and each fit's
   fraction of the machine's GEMM rate. Each case runs in a fresh process (measure.run_child).
2. ``ot`` (Wasserstein-Procrustes from a GW start on the 1000 rows farthest from each
   centroid, then sinkhorn/Procrustes on the full sets) on M × M unpaired rows, on CPU:
   an exact rotated + permuted copy at d = 32 (as in the n = 500 test) and a noisy,
   anisotropic one at d = 768. Target: under a minute at M = 5000, accuracy 1.0.
3. The OT solves it is built on, against POT called directly on the same M × M rows: the
   exact ``emd`` plan (POT with ``numItermax`` raised so that it reaches the optimum) and the
   entropic ``sinkhorn`` plan (cost ÷ its max, reg 0.05) of the squared-distance cost, cost
   included. Target: no slower than POT.

    python bench/bench_align.py              # N = 100,000, M = 5,000
    python bench/bench_align.py --size small # N = 10,000,  M = 1,000 (quick check)
    python bench/bench_align.py --size quick --no-aligner   # N = 4,000, M = 800: run_all.py --quick
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import Reporter, gemm_rate, row, run_child  # noqa: E402

SIZES = {"full": (100_000, 5_000), "small": (10_000, 1_000), "quick": (4_000, 800)}
D = 768


def make_pairs(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    W = rng.normal(size=(D, D)).astype(np.float32) / np.sqrt(D)
    xs = np.lib.format.open_memmap(folder / "x.npy", mode="w+", dtype=np.float32, shape=(n, D))
    ys = np.lib.format.open_memmap(folder / "y.npy", mode="w+", dtype=np.float32, shape=(n, D))
    for lo in range(0, n, 10_000):
        x = rng.normal(size=(min(10_000, n - lo), D)).astype(np.float32)
        xs[lo : lo + len(x)] = x
        ys[lo : lo + len(x)] = x @ W + 0.1 * rng.normal(size=x.shape).astype(np.float32)
    xs.flush(), ys.flush()
    del xs, ys


# latentlab reads the .npy files itself (streamed); the peers load them whole, as their docs do.
FIT = """
import time, warnings
warnings.simplefilter("ignore")
from latentlab.align import fit_aligner
mark()
t = time.perf_counter()
fit_aligner({method!r}, {x!r}, {y!r}, device="cpu", dtype="float32", **{params!r})
RESULT = {{"seconds": time.perf_counter() - t}}
"""
NUMPY_LSTSQ = """
import time, numpy as np
mark()
t = time.perf_counter()
X, Y = np.load({x!r}).astype(np.float64), np.load({y!r}).astype(np.float64)
np.linalg.lstsq(X, Y, rcond=None)
RESULT = {{"seconds": time.perf_counter() - t}}
"""
SKLEARN_RIDGE = """
import time, numpy as np
from sklearn.linear_model import Ridge
mark()
t = time.perf_counter()
X, Y = np.load({x!r}).astype(np.float64), np.load({y!r}).astype(np.float64)
Ridge(alpha=1.0).fit(X, Y)
RESULT = {{"seconds": time.perf_counter() - t}}
"""
SCIPY_PROCRUSTES = """
import time, numpy as np
from scipy.linalg import orthogonal_procrustes
mark()
t = time.perf_counter()
X, Y = np.load({x!r}), np.load({y!r})
R, scale = orthogonal_procrustes(X, Y)   # argmin ‖X R − Y‖_F over orthogonal R
RESULT = {{"seconds": time.perf_counter() - t}}
"""
# The OT solves on M × M rows: latentlab's transport_plan (torch, float32 rows) vs POT's
# documented numpy calls (ot.dist, then ot.emd / ot.sinkhorn with uniform weights).
OT_LATENTLAB = """
import time, numpy as np, torch
import ot
from latentlab.align.ot import sq_dists, transport_plan
# float64 rows, as POT's side below: the network simplex's pivots (and so its time) depend on
# the cost's rounding, so both sides solve the identical float64 problem
X, Y = (torch.from_numpy(np.load(f)[:{m}].astype(np.float64)) for f in ({x!r}, {y!r}))
mark()
t = time.perf_counter()
P = transport_plan(sq_dists(X, Y), {solver!r}, 0.05)
RESULT = {{"seconds": time.perf_counter() - t, "cost": float((P * sq_dists(X, Y)).sum())}}
"""
OT_POT = """
import time, numpy as np
import ot
X, Y = np.load({x!r})[:{m}].astype(np.float64), np.load({y!r})[:{m}].astype(np.float64)
mark()
t = time.perf_counter()
M = ot.dist(X, Y)                      # squared Euclidean
a = b = np.full({m}, 1.0 / {m})
if {solver!r} == "emd":
    # POT's default numItermax (100,000) stops a 5,000² network simplex before the optimum (it
    # warns; cost 1360 vs the optimum 1347.6): raised so both sides return the optimal plan
    P = ot.emd(a, b, M, numItermax=100_000_000)
else:
    P = ot.sinkhorn(a, b, M / M.max(), 0.05, numItermax=2000, stopThr=1e-7)
RESULT = {{"seconds": time.perf_counter() - t, "cost": float((P * M).sum())}}
"""


def bench_ot(m: int, d: int, noise: float) -> dict:
    import torch

    from latentlab.align import fit_aligner

    rng = np.random.default_rng(1)
    A = rng.normal(size=(m, d)) * (np.linspace(2.0, 0.5, d) if noise else 1.0)
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    perm = rng.permutation(m)
    B = np.empty_like(A)
    B[perm] = A @ (q * np.sign(np.diag(r))) + noise * rng.normal(size=A.shape)
    torch.set_num_threads(os.cpu_count() or 1)
    t = time.perf_counter()
    al = fit_aligner("ot", A, B, device="cpu")
    secs = time.perf_counter() - t
    mapped, target = al.transform(A), al.transform_target(B)
    hits = 0
    for lo in range(0, m, 1000):  # nearest target by cosine, chunked
        s = mapped[lo : lo + 1000] @ target.T
        s /= np.linalg.norm(mapped[lo : lo + 1000], axis=1)[:, None] * np.linalg.norm(target, axis=1)[None]
        hits += int(np.sum(s.argmax(1) == perm[lo : lo + 1000]))
    R = q * np.sign(np.diag(r))
    return {"seconds": secs, "nn_accuracy": hits / m, "rotation_error": float(np.abs(al.W_ - R).max()),
            **{k: al.fit_stats_[k] for k in ("solver", "iterations", "converged")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--no-aligner", action="store_true", help="skip the end-to-end ot aligner runs (part 2)")
    ap.add_argument("--json", action="store_true", help="print the table rows as JSON on stdout (run_all.py)")
    ap.add_argument("--gemm-rate", type=float, help="multiply-adds/s measured once by run_all.py (default: measure)")
    args = ap.parse_args()
    out = Reporter(args.json)
    n, m = SIZES[args.size]
    rate = args.gemm_rate or gemm_rate()
    out.say(f"closed-form fits on {n:,} × {D} pairs (float32 .npy on disk, {2 * n * D * 4 / 2**20:.0f} MB); "
            f"GEMM rate {rate / 1e9:.1f} G multiply-adds/s")
    size = f"{n:,} × {D} pairs"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_pairs(folder, n)
        # flush the freshly written pairs: otherwise the first timed fit (always lstsq) competes with
        # the kernel writing 600 MB of dirty pages back to disk
        os.sync()
        x, y = str(folder / "x.npy"), str(folder / "y.npy")
        # (method, params, the d × d moments it needs in multiply-adds, peer name, peer code)
        fits = [("lstsq", {}, 2 * n * D**2, "numpy.linalg.lstsq (float64)", NUMPY_LSTSQ),
                ("ridge", {"alpha": "auto"}, 2 * n * D**2, "sklearn Ridge α=1 (latentlab: GCV over 37 α)",
                 SKLEARN_RIDGE),
                ("procrustes", {}, n * D**2, "scipy.linalg.orthogonal_procrustes", SCIPY_PROCRUSTES),
                ("cca", {"components": 64}, 3 * n * D**2, "—", None)]
        for method, params, macs, peer_name, peer_code in fits:
            r = run_child(FIT.format(method=method, x=x, y=y, params=params), yardstick=True)
            g = run_child(peer_code.format(x=x, y=y)) if peer_code else None
            # GEMM counts the n·d² moment products only: the d × d solve (O(d³), an SVD/eigh in
            # float64) is not GEMM-shaped and dominates while n ≲ 20·d (the quick sizes)
            rr = out.add(row(f"fit {method} (streamed)", size, r, peer_name, g, macs=macs, rate=rate,
                             target="≤1.5x GEMM", note="GEMM: n·d² moments only (d³ solve excluded)"))
            out.say(f"  {method:10s} latentlab {_fmt(r)}  GEMM fraction {_num(rr['gemm_fraction'], '.2f')}"
                    + (f"   {peer_name}: {_fmt(g)}  ratio {_num(rr['ratio'], '.2f')}" if g else ""))
        out.say(f"OT plans on {m:,} × {m:,} rows (d = {D}) vs POT called directly")
        for solver in ("emd", "sinkhorn"):
            r = run_child(OT_LATENTLAB.format(x=x, y=y, m=m, solver=solver))
            g = run_child(OT_POT.format(x=x, y=y, m=m, solver=solver))
            note = (f"transport cost {r['cost']:.5g} vs {g['cost']:.5g}" if "cost" in r and "cost" in g else "")
            rr = out.add(row(f"OT plan ({solver})", f"{m:,} × {m:,} × {D}", r, f"POT ot.{solver}", g,
                             target="≤1x peer", note=note))
            out.say(f"  {solver:8s} latentlab {_fmt(r)}   POT {_fmt(g)}   ratio {_num(rr['ratio'], '.2f')}   {note}")
    if not args.no_aligner:
        out.say(f"ot aligner on {m:,} × {m:,} unpaired rows (rotated + permuted copy), CPU")
        for d, noise, what in ((32, 0.0, "exact copy, isotropic"), (768, 0.05, "noise 0.05, anisotropic")):
            r = bench_ot(m, d, noise)
            out.add(row("ot aligner (Wasserstein-Procrustes)", f"{m:,} × {m:,} × {d}", {"seconds": r["seconds"]},
                        note=f"{what}; accuracy {r['nn_accuracy']:.3f}"))
            out.say(f"  d = {d:3d} ({what}): {r['seconds']:.1f} s, solver {r['solver']}, {r['iterations']} "
                    f"iterations (converged {r['converged']}), permutation accuracy (nearest mapped target) "
                    f"{r['nn_accuracy']:.3f}, max |R - R_true| {r['rotation_error']:.1e}")
    out.finish()


def _fmt(r: dict | None) -> str:
    if r is None:
        return "—"
    if "error" in r:
        return r["error"]
    return f"{r['seconds']:7.2f} s, peak +{r['extra_mib']:5.0f} MiB"


def _num(v, spec: str) -> str:
    return "—" if v is None else format(v, spec)


if __name__ == "__main__":
    main()
