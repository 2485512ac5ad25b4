"""``fit mlp`` throughput: pairs per second of training on N pairs of 768 → 512 dims.

Synthetic pairs (Y = tanh(X·W) + noise, float32), the default architecture (hidden 1024,
2 layers, loss both), batch 256, a fixed number of epochs with no early stopping
(``patience`` = epochs) so every device does the same work; with ``--structure`` the
STRUCTURE regulariser is on too. Reported per device (cpu, and cuda when present): the
training time and pairs/s as the fit itself measures them (``fit_stats_['pairs_per_second']``:
training pairs × epochs / seconds), plus the time of ``transform`` on all N rows.

    python bench/bench_mlp.py                        # N = 100,000, 2 epochs, cpu (+ cuda)
    python bench/bench_mlp.py --n 5000 --epochs 1    # smoke run
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch

from latentlab.align import fit_aligner


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
    st = al.fit_stats_
    return {"device": device, "n_pairs": len(X), "n_train": st["n_train"], "epochs": st["epochs_run"],
            "structure": structure, "train_s": round(st["seconds"], 3), "fit_s": round(fit_s, 3),
            "pairs_per_s": round(st["pairs_per_second"], 1), "transform_s": round(time.perf_counter() - t0, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--structure", type=float, default=0.0)
    ap.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    args = ap.parse_args()
    X, Y = make_pairs(args.n)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for dev in devices:
        if dev == "cuda" and not torch.cuda.is_available():
            print(json.dumps({"device": "cuda", "skipped": "no CUDA device"}))
            continue
        print(json.dumps(run(dev, X, Y, args.epochs, args.structure)), flush=True)


if __name__ == "__main__":
    main()
