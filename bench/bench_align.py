"""Aligner speed and memory: streamed closed-form fits, and the unsupervised ``ot`` aligner.

1. Closed-form fits (lstsq, ridge, procrustes, cca) on N × 768 anchor pairs read from
   .npy files: one streamed pass (block products in float32 — the default --dtype — summed in
   float64; O(d²) memory), plus lstsq with float64 blocks. Peers in the same run: numpy's
   in-memory ``np.linalg.lstsq`` and scikit-learn's ``Ridge`` (which load the whole
   matrices). Each case runs in a fresh process so its peak RSS is its own.
2. ``ot`` (Wasserstein-Procrustes from a GW start on the 1000 rows farthest from each
   centroid, then sinkhorn/Procrustes on the full sets) on M × M unpaired rows, on CPU:
   an exact rotated + permuted copy at d = 32 (as in the n = 500 test) and a noisy,
   anisotropic one at d = 768. Target: under a minute at M = 5000, accuracy 1.0.

    python bench/bench_align.py              # N = 100,000, M = 5,000
    python bench/bench_align.py --size small # N = 10,000,  M = 1,000 (quick check)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

SIZES = {"full": (100_000, 5_000), "small": (10_000, 1_000)}
D = 768


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def run_case(case: str, folder: Path) -> dict:
    """Runs inside a fresh process; prints one JSON line."""
    warnings.simplefilter("ignore")
    x, y = folder / "x.npy", folder / "y.npy"
    t = time.perf_counter()
    if case.startswith("latentlab-"):
        from latentlab.align import fit_aligner

        method, _, dtype = case.split("-", 1)[1].partition("@")
        params = {"cca": {"components": 64}, "ridge": {"alpha": "auto"}}.get(method, {})
        fit_aligner(method, x, y, device="cpu", dtype=dtype or "float32", **params)
    elif case == "numpy-lstsq":
        X, Y = np.load(x).astype(np.float64), np.load(y).astype(np.float64)
        np.linalg.lstsq(X, Y, rcond=None)
    elif case == "sklearn-ridge":
        from sklearn.linear_model import Ridge

        X, Y = np.load(x).astype(np.float64), np.load(y).astype(np.float64)
        Ridge(alpha=1.0).fit(X, Y)
    return {"case": case, "seconds": time.perf_counter() - t, "peak_mb": peak_mb()}


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
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, Path(args.folder))))
        return
    n, m = SIZES[args.size]
    print(f"closed-form fits on {n:,} × {D} pairs (float32 .npy on disk, {2 * n * D * 4 / 2**20:.0f} MB)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_pairs(folder, n)
        cases = ["latentlab-lstsq", "latentlab-ridge", "latentlab-procrustes", "latentlab-cca",
                 "latentlab-lstsq@float64", "numpy-lstsq", "sklearn-ridge"]
        results = {}
        for case in cases:
            out = subprocess.run([sys.executable, __file__, "--case", case, "--folder", str(folder)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"  {case:22s} failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            results[case] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[case]
            print(f"  {case:22s} {r['seconds']:8.2f} s   peak RSS {r['peak_mb']:8.0f} MB")
        if "latentlab-lstsq" in results and "numpy-lstsq" in results:
            a, b = results["latentlab-lstsq"], results["numpy-lstsq"]
            print(f"  lstsq: numpy / latentlab time ratio {b['seconds'] / a['seconds']:.2f}, "
                  f"memory ratio {b['peak_mb'] / a['peak_mb']:.2f}")
        if "latentlab-ridge" in results and "sklearn-ridge" in results:
            a, b = results["latentlab-ridge"], results["sklearn-ridge"]
            print(f"  ridge (latentlab with --alpha auto over 37 values): sklearn / latentlab time ratio "
                  f"{b['seconds'] / a['seconds']:.2f}, memory ratio {b['peak_mb'] / a['peak_mb']:.2f}")
        if "latentlab-lstsq" in results and "latentlab-lstsq@float64" in results:
            print(f"  lstsq: float64-block / float32-block time ratio "
                  f"{results['latentlab-lstsq@float64']['seconds'] / results['latentlab-lstsq']['seconds']:.2f}")
    print(f"\not aligner on {m:,} × {m:,} unpaired rows (rotated + permuted copy), CPU")
    for d, noise, what in ((32, 0.0, "exact copy, isotropic"), (768, 0.05, "noise 0.05, anisotropic")):
        r = bench_ot(m, d, noise)
        print(f"  d = {d:3d} ({what}): {r['seconds']:.1f} s, solver {r['solver']}, {r['iterations']} iterations "
              f"(converged {r['converged']}), permutation accuracy (nearest mapped target) {r['nn_accuracy']:.3f}, "
              f"max |R - R_true| {r['rotation_error']:.1e}")


if __name__ == "__main__":
    main()
