"""Out of core, measured: every streaming method on a folder of .npy shards, peak RSS against 3 GB.

    python bench/bench_out_of_core.py                  # 2,000,000 × 768 float16 a side (3 GB each), as issue 13 asks
    python bench/bench_out_of_core.py --rows 200000    # smoke run (0.3 GB a side)
    python bench/bench_out_of_core.py --only gap,cka   # a subset of the operations
    python bench/bench_out_of_core.py --device cuda --table bench/gpu_table.md   # on a GPU (bench/gpu_check.sh)

Writes two row-paired shard folders of float16 rows (``a/emb_0.npy …``, ``b/…``; shards of
``--shard-rows`` rows) into --workdir (default: a temp folder, removed afterwards), then runs
each operation in its own subprocess — gap, linear CKA, CKA --bootstrap / --permutations /
--debiased, cka-matrix of three layers (a, b, a), spectrum, spectrum --bootstrap (no hubness:
the k-NN graph is quadratic), overlap's covariance parts (principal angles, SVCCA, PWCCA,
Procrustes angle; no mutual k-NN), fit lstsq / ridge / procrustes + apply (streamed into a
.npy), and retrieval top-k of ``--queries`` query rows against the whole gallery, plain, with
CSLS and with InvGC (the gallery folder as its bank) — and prints one table:
operation, rows, seconds, rows/s, peak RSS (ru_maxrss of the child, which counts mapped file
pages too), the bound and whether it held. Exit status 1 when a bound was broken.
``--device`` is passed to every command (the rows are read on the host, blocks computed on the
device); ``--table FILE`` also appends the table to FILE as Markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BOUND_GB = 3.0

OVERLAP = """
import json, sys, latentlab
res = latentlab.overlap(sys.argv[1], sys.argv[2], k=None, device=sys.argv[3])
print(json.dumps({"overlap": res.overlap, "procrustes_angle_rad": res.procrustes_angle_rad}, default=float))
"""


def make_folder(folder: Path, rows: int, dim: int, shard_rows: int, seed: int, mix: np.ndarray | None = None) -> None:
    """Shards of float16 rows: a low-rank signal plus noise (a spectrum with structure, CKA away from 0 and 1)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(0).standard_normal((32, dim)).astype(np.float32) / np.sqrt(32)
    for i, lo in enumerate(range(0, rows, shard_rows)):
        n = min(shard_rows, rows - lo)
        z = np.random.default_rng([1, i]).standard_normal((n, 32)).astype(np.float32)  # shared by both sides
        x = z @ (basis if mix is None else mix) + 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
        np.save(folder / f"emb_{i}.npy", x.astype(np.float16))


def operations(a: Path, b: Path, work: Path, queries: int, permutations: int = 20,
               bank: Path | None = None, device: str = "cpu") -> dict[str, tuple[list[str], int]]:
    """name → (command, rows it streams)."""
    py, cli = sys.executable, [sys.executable, "-m", "latentlab"]
    common = ["--json", "--device", device]
    rows = sum(len(np.load(p, mmap_mode="r")) for p in a.glob("*.npy"))
    mapped, mapfile = work / "mapped.npy", work / "map.safetensors"
    q = work / "queries.npy"
    return {
        "gap": (cli + ["gap", str(a), str(b)] + common, rows),
        "cka": (cli + ["cka", str(a), str(b)] + common, rows),
        "cka --bootstrap 100": (cli + ["cka", str(a), str(b), "--bootstrap", "100"] + common, rows),
        f"cka --permutations {permutations}": (cli + ["cka", str(a), str(b), "--permutations", str(permutations)]
                                              + common, rows),
        "cka --debiased": (cli + ["cka", str(a), str(b), "--debiased"] + common, rows),
        "cka-matrix (3 layers)": (cli + ["cka-matrix", str(a), str(b), str(a)] + common, rows),  # a third layer: a again
        "spectrum": (cli + ["spectrum", str(a), "--no-hubness"] + common, rows),
        "spectrum --bootstrap 100": (cli + ["spectrum", str(a), "--no-hubness", "--bootstrap", "100"] + common, rows),
        "overlap (covariance parts)": ([py, "-c", OVERLAP, str(a), str(b), device], rows),
        "fit lstsq": (cli + ["fit", "lstsq", str(a), str(b), "-o", str(work / "lstsq.safetensors")] + common, rows),
        "fit ridge": (cli + ["fit", "ridge", str(a), str(b), "-o", str(work / "ridge.safetensors")] + common, rows),
        "fit procrustes": (cli + ["fit", "procrustes", str(a), str(b), "-o", str(mapfile)] + common, rows),
        "apply": (cli + ["apply", str(mapfile), str(a), "-o", str(mapped)] + common, rows),
        f"retrieval ({queries} queries)": (cli + ["retrieval", str(q), str(b), "--truth", str(work / "truth.npy")]
                                           + common, rows),
        "retrieval --fix csls": (cli + ["retrieval", str(q), str(b), "--truth", str(work / "truth.npy"),
                                        "--fix", "csls"] + common, rows),
        # the gallery's own folder as its bank (every bank pass streams the whole folder too; quadratic
        # in the gallery), or --bank-rows of it
        "retrieval --fix invgc": (cli + ["retrieval", str(q), str(b), "--truth", str(work / "truth.npy"),
                                         "--fix", "invgc", "--bank-gallery", str(bank or b)] + common, rows),
    }


PROBE = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"wall_s": time.perf_counter() - t0, "rc": proc.returncode, "stdout": proc.stdout[-2000:],
                  "stderr": proc.stderr[-500:],
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9}))
"""


def measure(cmd: list[str]) -> dict:
    """Wall time and peak RSS of ``cmd`` alone: a fresh interpreter runs it as its only child."""
    out = subprocess.run([sys.executable, "-c", PROBE, *cmd], capture_output=True, text=True, check=True,
                         env={**os.environ, "LATENTLAB_PROGRESS": "0"})
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--shard-rows", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=10_000, help="query rows of the retrieval top-k")
    ap.add_argument("--only", help="comma-separated operation names, or prefixes of them")
    ap.add_argument("--permutations", type=int, default=20, help="shufflings of `cka --permutations` (one pass each)")
    ap.add_argument("--bank-rows", type=int, default=0,
                    help="InvGC's bank: the first N gallery rows (0: the whole gallery folder; quadratic at 2M rows)")
    ap.add_argument("--workdir", type=Path, help="where the shards go (kept); default a temp folder, removed")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: passed to every command (default cpu)")
    ap.add_argument("--table", type=Path, help="also append the table to this Markdown file")
    args = ap.parse_args()
    need_gb = 2 * args.rows * args.dim * 2 / 1e9 * 2.1  # both sides, float16, plus apply's float32 output
    free_gb = shutil.disk_usage(args.workdir.parent if args.workdir else tempfile.gettempdir()).free / 1e9
    if need_gb > free_gb:
        raise SystemExit(f"error: about {need_gb:.1f} GB of disk needed, {free_gb:.1f} GB free; use --rows")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="latentlab-ooc-"))
    work.mkdir(parents=True, exist_ok=True)
    failed = False
    try:
        a, b = work / "a", work / "b"
        t0 = time.perf_counter()
        mix = np.random.default_rng(9).standard_normal((32, args.dim)).astype(np.float32) / np.sqrt(32)
        reused = (work / "queries.npy").exists()
        if reused:  # a kept --workdir of an earlier run: the same seeded shards
            have = sum(len(np.load(p, mmap_mode="r")) for p in a.glob("*.npy"))
            if have != args.rows:
                raise SystemExit(f"error: {work} holds {have:,} rows a side, not --rows {args.rows:,}")
        else:
            make_folder(a, args.rows, args.dim, args.shard_rows, 1)
            make_folder(b, args.rows, args.dim, args.shard_rows, 2, mix=mix)
        first = np.load(sorted(a.glob("*.npy"))[0])
        bank = None
        if args.bank_rows:
            bank = work / "bank.npy"
            np.save(bank, np.load(sorted(b.glob("*.npy"))[0], mmap_mode="r")[: args.bank_rows])
        np.save(work / "queries.npy", first[: args.queries])
        np.save(work / "truth.npy", np.arange(min(args.queries, len(first))))  # query i's match: gallery row i
        print(f"inputs: 2 × {args.rows:,} × {args.dim} float16 in shards of {args.shard_rows:,} rows "
              f"({args.rows * args.dim * 2 / 1e9:.2f} GB a side), "
              + (f"reused from {work}" if reused else f"written in {time.perf_counter() - t0:.1f} s"),
              flush=True)
        ops = operations(a, b, work, min(args.queries, args.rows), args.permutations, bank, args.device)
        if args.only:
            wanted = [w.strip() for w in args.only.split(",")]
            # a name given whole picks that operation alone ("cka" is not "cka --bootstrap 100"); else a prefix
            ops = {k: v for k, v in ops.items() if any(k == w or (w not in ops and k.startswith(w)) for w in wanted)}
        header = f"{'operation':<32} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'peak RSS GB':>11} {'bound GB':>8}  ok?"
        print(f"device: {args.device}\n" + header + "\n" + "-" * len(header), flush=True)
        # appended row by row (as bench_mlp.py appends its rows): a run cut short keeps the rows it measured
        _append(args.table, f"\nOut of core on `--device {args.device}`: 2 × {args.rows:,} × {args.dim} float16 rows in "
                f"shards of {args.shard_rows:,} (`bench/bench_out_of_core.py`; peak RSS is the host process's)\n\n"
                "| operation | rows | s | rows/s | peak RSS GB | < 3 GB |\n|---|--:|--:|--:|--:|---|")
        for name, (cmd, rows) in ops.items():
            res = measure(cmd)
            ok = res["rc"] == 0 and res["peak_rss_gb"] < BOUND_GB
            failed |= not ok
            status = "yes" if ok else ("no" if res["rc"] == 0 else f"FAILED rc={res['rc']}")
            print(f"{name:<32} {rows:>10,} {res['wall_s']:>8.1f} {rows / res['wall_s']:>10,.0f} "
                  f"{res['peak_rss_gb']:>11.2f} {BOUND_GB:>8.1f}  {status}", flush=True)
            _append(args.table, f"| {name} | {rows:,} | {res['wall_s']:.1f} | {rows / res['wall_s']:,.0f} | "
                                f"{res['peak_rss_gb']:.2f} | {status} |")
            if res["rc"] != 0:
                print("   " + res["stderr"].strip().replace("\n", "\n   "), flush=True)
        machine = f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}" + _gpu_name(args.device)
        print(f"machine: {machine}, RSS limit {resource.getrlimit(resource.RLIMIT_AS)[0]}")
        _append(args.table, f"\nMachine: {machine}.")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def _gpu_name(device: str) -> str:
    if device == "cpu":
        return ""
    import torch  # only here: the parent process otherwise needs numpy alone

    return f", {torch.cuda.get_device_name(torch.device(device))}, torch {torch.__version__}"


def _append(path: Path | None, text: str) -> None:
    """Add ``text`` and a newline to the Markdown table file ``path`` (none given: nothing)."""
    if path is not None:
        with path.open("a") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
