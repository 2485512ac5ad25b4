"""CPU vs CUDA wall time of the main paths, measured in the same run (for `bench/gpu_check.sh`).

    python bench/bench_devices.py [--n 20000] [--out bench/gpu_table.md]

Prints a Markdown table (operation, CPU s, CUDA s, speed-up, agreement |CPU − CUDA|) and writes
it to --out. Without a CUDA device it says so and measures the CPU column alone.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import latentlab


def ops(n: int):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 512)).astype(np.float32)
    y = (x @ rng.normal(size=(512, 512)) / 20 + rng.normal(size=(n, 512))).astype(np.float32)
    small = min(n, 4000)
    return [
        ("linear CKA", lambda d: latentlab.cka(x, y, device=d).cka),
        ("linear CKA --bootstrap 200", lambda d: latentlab.cka(x, y, bootstrap=200, device=d).cka.ci_low),
        ("linear CKA --calibrate 200", lambda d: latentlab.cka(x, y, calibrate=200, device=d).calibration.tau),
        ("spectrum --bootstrap 100", lambda d: latentlab.spectrum(x, bootstrap=100, device=d).effective_rank.value),
        ("overlap", lambda d: latentlab.overlap(x, y, device=d).procrustes_angle_rad),
        ("uniformity (exact)", lambda d: latentlab.uniformity(x, device=d).uniformity),
        ("gap --bootstrap 200", lambda d: latentlab.gap(x, y, bootstrap=200, separability=False,
                                                        device=d).centroid_distance.value),
        ("retrieval both ways + CSLS", lambda d: latentlab.retrieval.evaluate(x, y, fix="csls", both=True,
                                                                              device=d).forward.fixed.r_at_1),
        (f"similarity (all measures, n = {small}) --calibrate 50",
         lambda d: latentlab.similarity(x[:small], y[:small], list(latentlab.MEASURES), calibrate=50,
                                        device=d).score("cknna").value),
    ]


def timed(fn, device):
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    value = fn(device)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, float(value)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--out", default=str(Path(__file__).with_name("gpu_table.md")))
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if cuda else "none"
    lines = [f"n = {args.n} × 512 float32; CPU threads {torch.get_num_threads()}; CUDA device: {name}", "",
             "| operation | CPU s | CUDA s | speed-up | \\|CPU − CUDA\\| |", "|---|---|---|---|---|"]
    for label, fn in ops(args.n):
        t_cpu, v_cpu = timed(fn, "cpu")
        if cuda:
            timed(fn, "cuda")  # warm-up: kernels and allocator
            t_gpu, v_gpu = timed(fn, "cuda")
            lines.append(f"| {label} | {t_cpu:.2f} | {t_gpu:.2f} | {t_cpu / t_gpu:.1f}× | {abs(v_cpu - v_gpu):.1e} |")
        else:
            lines.append(f"| {label} | {t_cpu:.2f} | — | — | — |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    if not cuda:
        print("no CUDA device here: the CUDA column is empty (run bench/gpu_check.sh on a GPU machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
