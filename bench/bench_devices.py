"""CPU vs CUDA wall time of the main paths, measured in the same run (for `bench/gpu_check.sh`).

    python bench/bench_devices.py [--n 20000] [--out bench/gpu_table.md] [--device cpu] [--only align]

Prints a Markdown table (operation, CPU s, CUDA s, speed-up, agreement max |CPU − CUDA| over
the result: a scalar, or every entry of an aligner's mapped rows) and writes it to --out.
Without a CUDA device (or with ``--device cpu``) it says so and measures the CPU column alone.
``--only TEXT`` keeps the operations whose label contains TEXT. Aligners are fitted with the
default float32 block products and mapped in float64, on the device under test.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import latentlab
from latentlab.align import evaluate_aligner, fit_aligner

#: aligner fits timed with their transform: (label, method, options, anchors)
ALIGNERS = [
    ("procrustes", "procrustes", {}, None),
    ("ridge --alpha auto --alpha-cv loo", "ridge", {"alpha": "auto", "alpha_cv": "loo"}, None),
    ("lowrank --rank 64", "lowrank", {"rank": 64}, None),
    ("cca --components 64 --reg 0.1", "cca", {"components": 64, "reg": 0.1}, None),
    ("lst", "lst", {}, None),
    ("relative (1000 anchors)", "relative", {"center": True}, 1000),
]


def aligner_ops(x, y, n: int):
    def fit_apply(method, params, anchors):
        def run(d):
            idx = None if anchors is None else np.arange(min(anchors, n))
            al = fit_aligner(method, x, y, anchors=idx, device=d, **params)
            return np.concatenate([al.transform(x), al.transform_target(y)], axis=1)
        return run

    small = min(n, 2000)
    out = [(f"fit + transform both sides: {label}", fit_apply(m, p, a)) for label, m, p, a in ALIGNERS]
    with warnings.catch_warnings():  # small --n: fewer anchors than dims is expected here
        warnings.simplefilter("ignore")
        ref = fit_aligner("procrustes", x, y, n_anchors=n // 2, device="cpu")
    out += [
        ("evaluate (procrustes map, held-out half)",
         lambda d: evaluate_aligner(ref, x, y, device=d).mrr),
        (f"fit + transform: ot --solver sinkhorn (n = {small}, 100 seed pairs)",
         lambda d: fit_aligner("ot", x[:small], y[:small], n_anchors=100, solver="sinkhorn", iters=5,
                               device=d).transform(x[:small])),
    ]
    return out


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
    ] + aligner_ops(x, y, n)


def timed(fn, device):
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    value = fn(device)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, np.asarray(value, dtype=np.float64)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--out", default=str(Path(__file__).with_name("gpu_table.md")))
    ap.add_argument("--device", choices=("auto", "cpu"), default="auto",
                    help="auto: CPU and, when present, CUDA; cpu: the CPU column alone")
    ap.add_argument("--only", default="", help="keep the operations whose label contains this text")
    args = ap.parse_args()
    cuda = torch.cuda.is_available() and args.device == "auto"
    name = torch.cuda.get_device_name(0) if cuda else "none"
    lines = [f"n = {args.n} × 512 float32; CPU threads {torch.get_num_threads()}; CUDA device: {name}", "",
             "| operation | CPU s | CUDA s | speed-up | max \\|CPU − CUDA\\| |", "|---|---|---|---|---|"]
    for label, fn in ops(args.n):
        if args.only not in label:
            continue
        t_cpu, v_cpu = timed(fn, "cpu")
        if cuda:
            timed(fn, "cuda")  # warm-up: kernels and allocator
            t_gpu, v_gpu = timed(fn, "cuda")
            diff = float(np.max(np.abs(v_cpu - v_gpu)))
            lines.append(f"| {label} | {t_cpu:.2f} | {t_gpu:.2f} | {t_cpu / t_gpu:.1f}× | {diff:.1e} |")
        else:
            lines.append(f"| {label} | {t_cpu:.2f} | — | — | — |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)
    if not cuda:
        print("no CUDA device measured: the CUDA column is empty (run bench/gpu_check.sh on a GPU machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
