"""Retrieval benchmark: latentlab's chunked evaluation vs a dense reference, speed and peak RSS.

1. Scale: queries and gallery of N × D float32 (default 200,000 × 512) held in memory,
   evaluated by ``latentlab.retrieval.evaluate`` (baseline ranks + top-10 hubness) and with
   LocalAdj InvGC against a bank; peak RSS of the process is reported (target < 4 GB).
   ``--eval-queries M`` ranks only the first M queries against the full gallery (the arrays
   stay fully resident, so the memory figure is that of the full problem; time is also
   extrapolated to all N queries).
2. Peers, at a size the dense code can hold (``--ref-n``): the InvGC authors' functions
   (dense n × |T| similarity, LocalAdj mask filled in a Python loop, then the dense n × n
   score matrix and its ranks) against ``latentlab.retrieval.invgc`` + chunked ranks.
   Each measurement runs in its own subprocess so peaks do not mix. Ratios are printed.
3. Exact top-k (``latentlab.knn.topk_cosine``, chunked) against faiss-cpu's exact flat
   inner-product index (``IndexFlatIP``: add the normalised gallery, ``search`` the
   normalised queries), same rows, k = 10, normalisation included on both sides; and the
   fraction of the GEMM rate (n_q·n_g·d multiply-adds). Target: within 1.2× of faiss.

    python bench/bench_retrieval.py                      # full size (slow on a laptop CPU)
    python bench/bench_retrieval.py --n 20000 --ref-n 4000 --eval-queries 2000   # quick
    python bench/bench_retrieval.py --no-scale --ref-n 2000 --topk-n 10000 --json  # run_all.py --quick
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

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import Reporter, gemm_rate, row, run_child  # noqa: E402

TOPK_LATENTLAB = """
import time, numpy as np
from latentlab.compute import Backend
from latentlab.knn import topk_cosine
q, g = np.load({q!r})[:{n}], np.load({g!r})[:{n}]
mark()
t = time.perf_counter()
v, i = topk_cosine(q, g, {k}, backend=Backend.make("cpu"))
RESULT = {{"seconds": time.perf_counter() - t, "top1": i[:, 0].tolist()[:200]}}
"""
# faiss's documented exact search: IndexFlatIP on L2-normalised rows = cosine top-k.
TOPK_FAISS = """
import time, numpy as np
import faiss
q, g = np.load({q!r})[:{n}], np.load({g!r})[:{n}]
mark()
t = time.perf_counter()
q, g = q.copy(), g.copy()
faiss.normalize_L2(q); faiss.normalize_L2(g)
index = faiss.IndexFlatIP(g.shape[1])
index.add(g)
D, I = index.search(q, {k})
RESULT = {{"seconds": time.perf_counter() - t, "top1": I[:, 0].tolist()[:200]}}
"""


def make(n, dim, seed, path):
    """A narrow cone with shared structure (like CLIP features): hubness is present."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    centre = rng.normal(size=dim).astype(np.float32)
    for lo in range(0, n, 50_000):
        m = min(50_000, n - lo)
        out[lo : lo + m] = rng.standard_normal((m, dim), dtype=np.float32) + 2.0 * centre
    out.flush()
    del out


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB on Linux


# --------------------------------------------------------------------------- workers
def worker_ours_scale(args):
    from latentlab.retrieval import evaluate, invgc

    q, g, tg = np.load(args["q"]), np.load(args["g"]), np.load(args["tg"])  # fully resident
    m = args["eval_queries"] or len(q)
    t = time.perf_counter()
    invgc(g, bank_gallery=tg, local_adj=True, pool_rate=args["pool_rate"], device="cpu")  # query-independent part
    invgc_s = time.perf_counter() - t
    t0 = time.perf_counter()
    base = evaluate(q[:m], g, dtype="float32", device="cpu")
    t1 = time.perf_counter()
    fixed = evaluate(q[:m], g, fix="localadj", bank_gallery=tg, pool_rate=args["pool_rate"], r_gallery=0.1,
                     device="cpu")
    t2 = time.perf_counter()
    return {"baseline_s": t1 - t0, "localadj_s": t2 - t1, "invgc_s": invgc_s, "r_at_1": base.baseline.r_at_1,
            "r_at_1_fixed": fixed.fixed.r_at_1, "skew": base.baseline.hubness_skew,
            "skew_fixed": fixed.fixed.hubness_skew, "peak_gb": peak_rss_gb(), "m": m}


def _ranks_dense(q, g):
    import torch

    s = torch.nn.functional.normalize(q, dim=1) @ g.T
    true = torch.diagonal(s)
    return ((s >= true[:, None]).sum(1) - 1).numpy()


def worker_dense(args):
    """The authors' InvGC / LocalAdj functions (InvGC/InvGC.py), then dense scores and ranks."""
    import torch

    q, g, tg = (torch.from_numpy(np.load(args[k])) for k in ("q", "g", "tg"))
    n = args["ref_n"]
    q, g, tg = (torch.nn.functional.normalize(x[:n], dim=1) for x in (q, g, tg))
    t0 = time.perf_counter()
    w = g.matmul(tg.T)
    if args["local"]:
        temp = torch.zeros([w.shape[0], w.shape[1]])
        pnum = int(args["pool_rate"] * tg.shape[0])
        ranks = torch.topk(w, pnum, dim=1)
        for i in range(g.shape[0]):  # the reference fills its mask row by row
            temp[i][ranks.indices[i]] = ranks.values[i]
        new = g - temp.matmul(tg) / pnum * 0.1
    else:
        el1 = torch.sum(w) / (w.shape[0] * w.shape[1])
        new = g - (w - el1).matmul(tg) / w.shape[1] * 0.1
    new = torch.nn.functional.normalize(new, dim=1)
    r = _ranks_dense(q, new)
    return {"s": time.perf_counter() - t0, "r_at_1": float(np.mean(r == 0)), "peak_gb": peak_rss_gb()}


def worker_ours_ref(args):
    from latentlab.retrieval import invgc, true_ranks

    n = args["ref_n"]
    q, g, tg = (np.load(args[k])[:n] for k in ("q", "g", "tg"))
    t0 = time.perf_counter()
    new = invgc(g, bank_gallery=tg, r_gallery=0.1, local_adj=args["local"], pool_rate=args["pool_rate"], device="cpu")
    r = true_ranks(q, new)
    return {"s": time.perf_counter() - t0, "r_at_1": float(np.mean(r == 0)), "peak_gb": peak_rss_gb()}


WORKERS = {"ours_scale": worker_ours_scale, "dense": worker_dense, "ours_ref": worker_ours_ref}


def run(name, args):
    cmd = [sys.executable, __file__, "--worker", name, "--args", json.dumps(args)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    if out.returncode != 0:
        raise SystemExit(f"{name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-scale", action="store_true", help="skip part 1 (the scale run)")
    ap.add_argument("--topk-n", type=int, default=50_000, help="queries = gallery rows of the faiss comparison")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print the table rows as JSON on stdout (run_all.py)")
    ap.add_argument("--gemm-rate", type=float, help="multiply-adds/s measured once by run_all.py (default: measure)")
    ap.add_argument("--n", type=int, default=200_000, help="queries = gallery rows at scale")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--bank", type=int, default=20_000, help="bank rows for LocalAdj at scale")
    ap.add_argument("--eval-queries", type=int, default=0, help="rank only the first M queries (0 = all)")
    ap.add_argument("--ref-n", type=int, default=10_000, help="size of the dense comparison (n = |T|)")
    ap.add_argument("--pool-rate", type=float, default=0.01)
    ap.add_argument("--worker")
    ap.add_argument("--args")
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(WORKERS[a.worker](json.loads(a.args))))
        return
    out = Reporter(a.json)
    if a.no_scale:  # only the comparisons: generate no more rows than they read
        a.n = max(a.topk_n, a.ref_n)
    a.topk_n = min(a.topk_n, a.n)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {k: os.path.join(tmp, f"{k}.npy") for k in ("q", "g", "tg")}
        n_bank = max(a.bank, a.ref_n)
        make(a.n, a.dim, 0, paths["q"])
        make(a.n, a.dim, 0, paths["g"])  # same seed: row i of G is row i of Q plus noise below
        g = np.load(paths["g"], mmap_mode="r+")
        rng = np.random.default_rng(1)
        for lo in range(0, a.n, 50_000):
            g[lo : lo + 50_000] += 4.0 * rng.standard_normal(g[lo : lo + 50_000].shape, dtype=np.float32)
        g.flush()
        del g
        make(n_bank, a.dim, 2, paths["tg"])
        base = {**paths, "pool_rate": a.pool_rate}
        if not a.no_scale:
            out.say(f"scale: queries = gallery = {a.n} × {a.dim} float32, LocalAdj bank {a.bank} "
                    f"(k = {max(1, int(a.pool_rate * a.bank))}), {os.cpu_count()} CPU cores")
            s = run("ours_scale", {**base, "eval_queries": a.eval_queries})
            scale = a.n / s["m"]
            out.say(f"  latentlab evaluate: {s['m']} of {a.n} queries ranked; baseline {s['baseline_s']:.1f} s, "
                    f"with localadj {s['localadj_s']:.1f} s (its gallery correction alone {s['invgc_s']:.1f} s)"
                    + (f"; ≈ {s['baseline_s'] * scale:.0f} s / "
                       f"{s['invgc_s'] + (s['localadj_s'] - s['invgc_s']) * scale:.0f} s for all queries"
                       if scale > 1 else ""))
            out.say(f"  R@1 {s['r_at_1']:.4f} → {s['r_at_1_fixed']:.4f}; hubness skew {s['skew']:.2f} → "
                    f"{s['skew_fixed']:.2f}; peak RSS {s['peak_gb']:.2f} GB (target < 4 GB: "
                    f"{'ok' if s['peak_gb'] < 4 else 'EXCEEDED'})")
            out.add(row("retrieval evaluate + LocalAdj", f"{s['m']:,} of {a.n:,} queries × {a.dim}",
                        {"seconds": s["localadj_s"], "extra_mib": s["peak_gb"] * 1024},
                        note=f"peak is the whole process's RSS (target < 4 GB); R@1 {s['r_at_1_fixed']:.4f}"))
        for local in (True, False):
            name = "InvGC w/ LocalAdj" if local else "InvGC (full)"
            args = {**base, "ref_n": a.ref_n, "local": local}
            d, o = run("dense", args), run("ours_ref", args)
            out.say(f"{name} + ranks at n = |T| = {a.ref_n}: dense reference {d['s']:.2f} s, {d['peak_gb']:.2f} GB; "
                    f"latentlab {o['s']:.2f} s, {o['peak_gb']:.2f} GB → speed ×{d['s'] / o['s']:.1f}, "
                    f"memory ×{d['peak_gb'] / o['peak_gb']:.1f}; R@1 {d['r_at_1']:.4f} vs {o['r_at_1']:.4f}")
            # these workers report the whole process's peak RSS (both sides the same way)
            out.add(row(f"{name} + ranks", f"n = |T| = {a.ref_n:,} × {a.dim}",
                        {"seconds": o["s"], "extra_mib": o["peak_gb"] * 1024}, "InvGC authors' dense code",
                        {"seconds": d["s"], "extra_mib": d["peak_gb"] * 1024},
                        note=f"peak = process RSS; R@1 {o['r_at_1']:.4f} vs {d['r_at_1']:.4f}"))
        rate = a.gemm_rate or gemm_rate()
        n = a.topk_n
        r = run_child(TOPK_LATENTLAB.format(q=paths["q"], g=paths["g"], n=n, k=a.k), yardstick=True)
        f = run_child(TOPK_FAISS.format(q=paths["q"], g=paths["g"], n=n, k=a.k))
        same = (f"top-1 agrees on {sum(x == y for x, y in zip(r['top1'], f['top1']))}/{len(r['top1'])} checked"
                if "top1" in r and "top1" in f else "")
        rr = out.add(row(f"exact top-{a.k} (cosine)", f"{n:,} × {n:,} × {a.dim}", r, "faiss IndexFlatIP", f,
                         macs=n * n * a.dim, rate=rate, target="≤1.2x peer", note=same))
        if "error" in r or "error" in f:
            out.say(f"exact top-{a.k}: latentlab {r.get('error', 'ok')}, faiss {f.get('error', 'ok')}")
        else:
            out.say(f"exact top-{a.k} at {n} × {n} × {a.dim}: latentlab {r['seconds']:.2f} s, faiss "
                    f"{f['seconds']:.2f} s → faiss / latentlab time {rr['ratio']:.2f} (target ≥ 0.83), "
                    f"GEMM fraction {rr['gemm_fraction']:.2f}; {same}")
    out.finish()

if __name__ == "__main__":
    main()
