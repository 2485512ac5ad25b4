"""Time the Dask engine with 1 and 2 workers against the local engine on a generated shard folder.

    python bench/bench_dask.py                                  # 2,000,000 × 768 float16, 40 shards a side
    python bench/bench_dask.py --rows 20000 --dim 64 --shards 4 # a smoke run
    python bench/bench_dask.py --scheduler tcp://host:8786      # an existing cluster (shared --workdir)
    python bench/bench_dask.py --device cuda --table bench/gpu_table.md   # workers on the GPU (gpu_check.sh)

Writes two row-paired LAION-style folders (``img_emb/img_emb_N.npy``, ``text_emb/text_emb_N.npy``)
into --workdir (default: a temp folder, removed after), then times gap, linear CKA, CKA with a
100-resample bootstrap (group sums formed on the workers), spectrum (without hubness), a
Procrustes fit and an exact top-10 scan (--queries rows of A against all of B) locally and on a
``distributed.LocalCluster`` of 1 and 2 worker processes (one thread each), and checks that
every engine gives the local numbers (relative difference printed; rows/s = rows streamed per
second, queries per second for top-k). The cluster start and the workers' first imports are not
timed. With --scheduler, that cluster replaces the local ones (its workers must see --workdir).
``--device`` goes to every call (the workers compute their blocks on it); ``--table FILE`` also
appends the table to FILE as Markdown.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_folders(root: Path, rows: int, dim: int, shards: int, seed: int = 0) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)).astype(np.float32) / np.sqrt(dim)
    per = -(-rows // shards)
    for name in ("img_emb", "text_emb"):
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, lo in enumerate(range(0, rows, per)):
        n = min(per, rows - lo)
        x = rng.standard_normal((n, dim), dtype=np.float32) + 0.3
        y = x @ mix + 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
        np.save(root / "img_emb" / f"img_emb_{i}.npy", x.astype(np.float16))
        np.save(root / "text_emb" / f"text_emb_{i}.npy", y.astype(np.float16))
    return str(root / "img_emb"), str(root / "text_emb")


def tasks(a: str, b: str, queries: int, device: str = "cpu") -> dict:
    """name → (function returning a number to compare with local, rows it streams)."""
    import latentlab
    from latentlab.align import fit_aligner
    from latentlab.compute import as_backend
    from latentlab.io import read_embeddings
    from latentlab.knn import topk_cosine

    n = read_embeddings(a).n
    q = np.asarray(read_embeddings(a).rows(slice(0, min(queries, n))))  # query rows in memory, gallery streamed

    def topk():
        values, _ = topk_cosine(q, read_embeddings(b).data, 10, backend=as_backend(device, "float32"))
        return float(np.asarray(values, dtype=np.float64).sum())

    return {
        "gap": (lambda: latentlab.gap(a, b, separability=False, device=device).centroid_distance, n),
        "cka": (lambda: latentlab.cka(a, b, device=device).cka, n),
        "cka --bootstrap 100": (lambda: latentlab.cka(a, b, bootstrap=100, device=device).cka.ci_high, n),
        "spectrum": (lambda: latentlab.spectrum(a, hubness=False, device=device).effective_rank, n),
        "fit procrustes": (lambda: float(np.asarray(fit_aligner("procrustes", a, b, device=device).W_).sum()), n),
        f"top-10 ({len(q):,} q)": (topk, len(q)),
    }


def _warm() -> None:
    import latentlab.analyze.cka  # noqa: F401
    import latentlab.analyze.gap  # noqa: F401


def run_all(work: dict, repeat: int) -> dict:
    out = {}
    for name, (fn, rows) in work.items():
        best, value = float("inf"), None
        for _ in range(repeat):
            t0 = time.perf_counter()
            value = fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = (best, float(value), rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--shards", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--queries", type=int, default=2000, help="query rows of the top-k scan (the gallery is B)")
    ap.add_argument("--scheduler", help="an existing scheduler instead of local clusters of 1 and 2 workers")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N for every call, on the workers too")
    ap.add_argument("--table", type=Path, help="also append the table to this Markdown file")
    args = ap.parse_args()

    import distributed

    from latentlab.dask import DaskEngine

    work_dir = args.workdir or Path(tempfile.mkdtemp(prefix="latentlab-bench-dask-"))
    try:
        t0 = time.perf_counter()
        a, b = make_folders(work_dir, args.rows, args.dim, args.shards)
        made = time.perf_counter() - t0
        work = tasks(a, b, args.queries, args.device)
        results = {"local": run_all(work, args.repeat)}
        if args.scheduler:
            with DaskEngine(args.scheduler):
                results[f"dask {args.scheduler}"] = run_all(work, args.repeat)
        else:
            for workers in (1, 2):
                with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                              dashboard_address=":0") as cluster, \
                        distributed.Client(cluster) as client, DaskEngine(client=client):
                    client.run(_warm)  # worker processes import torch and latentlab once, untimed
                    results[f"dask {workers} worker{'s' * (workers > 1)}"] = run_all(work, args.repeat)
        local = results["local"]
        rows = []
        for engine, res in results.items():
            for name, (secs, value, n_rows) in res.items():
                ref_secs, ref, _ = local[name]
                rows.append({"engine": engine, "op": name, "seconds": round(secs, 3), "rows_per_s": n_rows / secs,
                             "speedup_vs_local": round(ref_secs / secs, 2),
                             "rel_diff_vs_local": abs(value - ref) / max(abs(ref), 1e-300)})
        if args.table:
            _append_table(args.table, results, args)
        if args.json:
            print(json.dumps({"rows": args.rows, "dim": args.dim, "shards": args.shards, "device": args.device,
                              "results": rows}))
            return
        print(f"{args.rows:,} × {args.dim} float16 a side, {args.shards} shards (written in {made:.1f} s)")
        print(f"{'engine':<18}{'op':<24}{'seconds':>9}{'rows/s':>12}{'× local':>9}{'rel. diff':>11}")
        for r in rows:
            print(f"{r['engine']:<18}{r['op']:<24}{r['seconds']:>9.3f}{r['rows_per_s']:>12,.0f}"
                  f"{r['speedup_vs_local']:>9.2f}{r['rel_diff_vs_local']:>11.1e}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work_dir, ignore_errors=True)


def _append_table(path: Path, results: dict, args) -> None:
    """The README's shape: one row per operation, seconds per engine, the largest relative difference."""
    engines = list(results)
    local = results["local"]
    lines = [f"\nDask engine on `--device {args.device}`: 2 × {args.rows:,} × {args.dim} float16 rows in "
             f"{args.shards} LAION-style shards (`bench/bench_dask.py`; seconds, workers of one thread each)\n",
             "| operation | " + " | ".join(f"{e} s" for e in engines) + " | relative difference |",
             "|---|" + "--:|" * (len(engines) + 1)]
    for name, (ref_secs, ref, _) in local.items():
        diff = max(abs(res[name][1] - ref) / max(abs(ref), 1e-300) for res in results.values())
        lines.append(f"| {name} | " + " | ".join(f"{results[e][name][0]:.1f}" for e in engines) + f" | {diff:.1e} |")
    with path.open("a") as fh:  # appended, as bench_mlp.py and bench_out_of_core.py append theirs
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
