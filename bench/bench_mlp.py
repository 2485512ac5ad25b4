"""``fit mlp`` throughput: pairs per second of training on N pairs of 768 → 512 dims.

Synthetic pairs (Y = tanh(X·W) + noise, float32), the default architecture (hidden 1024,
2 layers, loss both), batch 256, a fixed number of epochs with no early stopping
(``patience`` = epochs) so every device does the same work; with ``--structure`` the
STRUCTURE regulariser is on too (``--structure 0,10``: one run per value). Reported per device
(cpu, and cuda when present): the training time and pairs/s as the fit itself measures them
(``fit_stats_['pairs_per_second']``: training pairs × epochs / seconds, validation passes
included), the precision it trained in (CUDA: bf16 autocast where native), whether the pairs
were resident on the device, the time of ``transform`` on all N rows, and the 1-minute load
average (a shared CPU's number means little without it). CUDA runs after a small warm-up fit
(kernel and cuBLAS start-up is not throughput).

    python bench/bench_mlp.py                                  # N = 100,000, 1 epoch, cpu (+ cuda)
    python bench/bench_mlp.py --structure 0,10 --table t.md    # both regimes; append Markdown rows to t.md
    python bench/bench_mlp.py --n 5000                         # smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from latentlab.align import fit_aligner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import gemm_rate, machine  # noqa: E402

HIDDEN = 1024  # the default architecture: 768 → 1024 → 512 plus the linear path 768 → 512


def madds_per_pair(dx: int, dy: int, hidden: int = HIDDEN) -> int:
    """Multiply-adds of one training pair through the default 2-layer projector: the forward
    GEMMs (dx·h + h·dy + dx·dy for the linear path) and about twice that backward (gradients of
    the weights and of the hidden activations); the losses' batch × batch products are small."""
    return 3 * (dx * hidden + hidden * dy + dx * dy)


def make_pairs(n: int, dx: int = 768, dy: int = 512, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dx)).astype(np.float32)
    W = (rng.normal(size=(dx, dy)) * (2.0 / np.sqrt(dx))).astype(np.float32)
    Y = np.tanh(X @ W) + 0.1 * rng.normal(size=(n, dy)).astype(np.float32)
    return X, Y.astype(np.float32)


def run(device: str, X, Y, epochs: int, structure: float) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        al = fit_aligner("mlp", X, Y, device=device, epochs=epochs, patience=epochs, batch_size=256,
                         structure=structure)
        fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    al.transform(X)
    transform_s = time.perf_counter() - t0
    st = al.fit_stats_
    # the CPU's multiply-add rate measured next to the fit (the load on a shared machine moves it)
    rate = gemm_rate() if device == "cpu" else None
    frac = None if rate is None else st["pairs_per_second"] * madds_per_pair(X.shape[1], Y.shape[1]) / rate
    return {"device": device, "n_pairs": len(X), "n_train": st["n_train"], "epochs": st["epochs_run"],
            "structure": structure, "precision": st["precision"], "resident": st["resident"],
            "train_s": round(st["seconds"], 3), "fit_s": round(fit_s, 3),
            "pairs_per_s": round(st["pairs_per_second"], 1), "transform_s": round(transform_s, 3),
            "load_1min": round(os.getloadavg()[0], 2), "threads": torch.get_num_threads(),
            "gemm_gflops": None if rate is None else round(2 * rate / 1e9, 1),
            "gemm_fraction": None if frac is None else round(frac, 3)}


def table_rows(rows: list[dict]) -> str:
    head = ["| fit mlp (768 → 512, hidden 1024, batch 256) | device | precision | pairs/s | fraction of GEMM rate "
            "| train s | transform s | load |", "|---|---|---|---|---|---|---|---|"]
    body = [f"| N = {r['n_pairs']}, {r['epochs']} epoch(s), --structure {r['structure']:g} | {r['device']} | "
            f"{r['precision']} | {r['pairs_per_s']:,.0f} | "
            + ("—" if r["gemm_fraction"] is None else f"{r['gemm_fraction']:.2f} of {r['gemm_gflops']} GFLOP/s")
            + f" | {r['train_s']:.1f} | {r['transform_s']:.2f} | {r['load_1min']} ({r['threads']} threads) |" for r in rows]
    return "\n".join(head + body) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--structure", default="0", help="λ, or several separated by commas: one run each")
    ap.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    ap.add_argument("--table", help="append the rows as a Markdown table to this file")
    args = ap.parse_args()
    print(json.dumps({"machine": machine()}), flush=True)
    X, Y = make_pairs(args.n)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    rows = []
    for dev in devices:
        if dev == "cuda" and not torch.cuda.is_available():
            print(json.dumps({"device": "cuda", "skipped": "no CUDA device"}))
            continue
        if dev == "cuda":
            run(dev, X[:2000], Y[:2000], 1, 0.0)  # warm-up
        for lam in (float(v) for v in args.structure.split(",")):
            rows.append(run(dev, X, Y, args.epochs, lam))
            print(json.dumps(rows[-1]), flush=True)
    if args.table and rows:
        with Path(args.table).open("a") as fh:
            fh.write("\n" + table_rows(rows))


if __name__ == "__main__":
    main()
