"""The one home of the benchmarks' measuring code: child-process time and peak memory, the
machine's GEMM rate, the machine description, and the row format of the peers' table.

Every bench_*.py script that compares latentlab with a peer measures through ``run_child``
(one fresh interpreter per measured run, so no run inherits another's allocator high-water
mark) and, with ``--json``, prints its results as rows built by ``row`` (``run_all.py``
collects them into one table).
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import types

import numpy as np

NOT_INSTALLED = "not installed"


#: measured runs per side (``BENCH_REPEATS``, ``run_all.py --repeats``): the table keeps the fastest,
#: as the GEMM yardstick keeps its best of 5 — on this shared VM one run moves by ±25 %
REPEATS = max(1, int(os.environ.get("BENCH_REPEATS", "3")))
#: a run longer than this is not repeated (the Gram-form CKA peers take minutes and lose by 50×+)
REPEAT_BELOW_S = 60.0


def run_child(code: str, repeats: int | None = None, *, yardstick: bool = False) -> dict:
    """Run ``code`` in fresh interpreters ``repeats`` times (default :data:`REPEATS`; once when a
    run takes over :data:`REPEAT_BELOW_S`) and return the fastest run's ``RESULT`` dict, with
    ``extra_mib`` the largest over the runs and ``runs`` / ``seconds_all`` saying what was kept.
    The first failing run is returned as it is.

    ``yardstick``: also measure the GEMM rate in this (idle) parent right before and right after
    each run, and return the larger of the kept run's two as ``gemm_rate``. This VM's speed
    drifts by ±25 % within minutes (a 2048³ GEMM at 63–95 G multiply-adds/s in one half hour),
    so a method's fraction of the GEMM rate is read against the rate of its own moment.
    """
    repeats = REPEATS if repeats is None else max(1, repeats)
    results = []
    for _ in range(repeats):
        before = gemm_rate(repeats=3) if yardstick else None
        r = _run_once(code)
        if "error" in r or "seconds" not in r:
            return r
        if yardstick:
            r["gemm_rate"] = max(before, gemm_rate(repeats=3))
        results.append(r)
        if r["seconds"] > REPEAT_BELOW_S:
            break
    best = dict(min(results, key=lambda r: r["seconds"]))
    best["extra_mib"] = max(r["extra_mib"] for r in results)
    best["maxrss_mib"] = max(r["maxrss_mib"] for r in results)
    best["runs"], best["seconds_all"] = len(results), [round(r["seconds"], 4) for r in results]
    return best


def _run_once(code: str) -> dict:
    """Run ``code`` in a fresh interpreter and return its ``RESULT`` dict plus peak memory.

    The snippet calls ``mark()`` right before the measured section (after imports, a warm-up
    GEMM that maps the BLAS kernels, and — for the peers — loading their input into memory);
    ``extra_mib`` = the child's peak RSS (``ru_maxrss``) minus its RSS at ``mark()``, i.e. the
    memory the measured computation itself added. latentlab reads its input lazily with
    plain file reads (no mmap), so its figure contains every byte of input it holds.
    A peer module that is not importable gives ``{"error": "not installed"}``.
    """
    wrapper = (
        "import resource, json, os, sys, torch\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "torch.ones(64, 64) @ torch.ones(64, 64)\n"
        "def _rss():\n"
        "    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20\n"
        "_BEFORE = [None]\n"
        "def mark(): _BEFORE[0] = _rss()\n"
        "try:\n"
        + "\n".join("    " + line for line in code.strip("\n").splitlines()) +
        "\nexcept ImportError as e:\n"
        f"    print(json.dumps({{'error': {NOT_INSTALLED!r}, 'detail': str(e)}})); sys.exit(0)\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps({**RESULT, 'maxrss_mib': peak, 'extra_mib': peak - _BEFORE[0]}))")
    # every child (ours and the peers') runs as the latentlab CLI does: OpenBLAS and OpenMP
    # threads spin briefly after a call (see latentlab/__init__.py); a caller's own setting wins
    env = {"OPENBLAS_THREAD_TIMEOUT": "16", "GOMP_SPINCOUNT": "1000", **os.environ, "LATENTLAB_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, env=env)
    if out.returncode:
        tail = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        return {"error": tail if out.returncode > 0 else f"killed by signal {-out.returncode} (out of memory?)"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def gemm_rate(dtype="float32", size: int = 2048, repeats: int = 5) -> float:
    """Measured multiply-adds per second of a square GEMM on this machine (best of N).

    The best of ``torch.matmul`` and numpy's BLAS: the fastest GEMM at hand is the yardstick,
    whichever library the method uses (``latentlab.blas`` picks numpy's OpenBLAS where torch's
    MKL is slow). FLOP/s is twice this; a method's "fraction of the GEMM rate" is its
    multiply-add count ÷ its time ÷ this rate (the same ratio in FLOPs).
    """
    import torch
    a = torch.randn(size, size, dtype=getattr(torch, dtype))
    b = torch.randn(size, size, dtype=getattr(torch, dtype))
    an, bn, out = a.numpy(), b.numpy(), np.empty((size, size), dtype=dtype)
    candidates = [lambda: torch.matmul(a, b), lambda: np.matmul(an, bn, out=out)]
    best = float("inf")
    for fn in candidates:
        fn()
        best = min(best, *(timed(fn) for _ in range(repeats)))
    return size**3 / best


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def installed(module: str) -> bool:
    """Whether a peer's module can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def make_pair(path_a, path_b, n: int, d: int, seed: int = 0) -> None:
    """Correlated float32 embeddings written as .npy (read lazily by latentlab)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)).astype(np.float32) / np.sqrt(d)
    a = np.lib.format.open_memmap(path_a, mode="w+", dtype=np.float32, shape=(n, d))
    b = np.lib.format.open_memmap(path_b, mode="w+", dtype=np.float32, shape=(n, d))
    for lo in range(0, n, 8192):
        x = rng.normal(size=(min(8192, n - lo), d)).astype(np.float32)
        a[lo : lo + len(x)] = x
        b[lo : lo + len(x)] = x @ mix + rng.normal(size=x.shape).astype(np.float32)
    a.flush(), b.flush()
    del a, b


def stub_plotting() -> None:
    """torch-cka / ckatorch import matplotlib / seaborn for plots only; stub them when absent."""
    for name in ("matplotlib", "matplotlib.pyplot", "seaborn", "mpl_toolkits", "mpl_toolkits.axes_grid1"):
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.__getattr__ = lambda attr: None  # type: ignore[attr-defined]
            sys.modules[name] = mod


def load_info() -> str:
    try:
        return "load average %.2f %.2f %.2f on %d cores" % (*os.getloadavg(), os.cpu_count())
    except OSError:
        return "load average unavailable"


def load1() -> str:
    return "load %.1f" % os.getloadavg()[0]


def machine() -> dict:
    """CPU model, cores, torch / numpy versions, date and load: printed above every table."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": load_info(), "cpu_blas": _cpu_blas()}


def _cpu_blas() -> str:
    from latentlab import blas
    return blas.describe()


# ---- rows of the peers' table

def row(op: str, size: str, ours: dict | None, peer_name: str = "—", peer: dict | None = None, *,
        macs: float | None = None, rate: float | None = None, target: str = "", note: str = "") -> dict:
    """One line of the table. ``ours`` / ``peer`` are ``run_child`` results (seconds,
    extra_mib, or error); ``macs``: the method's multiply-add count for the GEMM fraction.

    ``target`` is one of ``"peer≥50x"`` (peer time ≥ 50 × ours), ``"≤1.2x peer"``,
    ``"≤1x peer"``, ``"≤1.5x GEMM"`` (ours ≤ 1.5 × the GEMM-bound time), or empty; the
    verdict is ``ok`` / ``miss``, or ``—`` when a side is missing.
    """
    def _ok(r):
        return r is not None and "error" not in r
    r = {"op": op, "size": size, "peer": peer_name, "target": target, "note": note,
         "latentlab_s": ours["seconds"] if _ok(ours) else None,
         "latentlab_mib": ours.get("extra_mib") if _ok(ours) else None,
         "peer_s": peer["seconds"] if _ok(peer) else None,
         "peer_mib": peer.get("extra_mib") if _ok(peer) else None,
         # every run's seconds (the table shows the fastest): how much this machine moved meanwhile
         "latentlab_runs_s": ours.get("seconds_all") if _ok(ours) else None,
         "peer_runs_s": peer.get("seconds_all") if _ok(peer) else None}
    if ours is not None and not _ok(ours):
        r["latentlab_error"] = ours["error"]
    if peer is not None and not _ok(peer):
        r["peer_error"] = peer["error"]
    r["ratio"] = r["peer_s"] / r["latentlab_s"] if r["peer_s"] and r["latentlab_s"] else None
    if _ok(ours) and ours.get("gemm_rate"):  # the rate measured around this very run (run_child)
        rate = ours["gemm_rate"]
    r["gemm_rate"] = rate if macs else None
    r["gemm_fraction"] = (macs / r["latentlab_s"] / rate) if macs and rate and r["latentlab_s"] else None
    r["verdict"] = verdict(r)
    return r


def verdict(r: dict) -> str:
    t, ratio, frac = r["target"], r["ratio"], r["gemm_fraction"]
    if not t:
        return ""
    if t == "≤1.5x GEMM":
        return "—" if frac is None else ("ok" if frac >= 1 / 1.5 else "miss")
    if ratio is None:
        return "—"
    need = {"peer≥50x": 50.0, "≤1.2x peer": 1 / 1.2, "≤1x peer": 1.0}[t]
    return "ok" if ratio >= need else "miss"


class Reporter:
    """Human lines to stdout, or — with ``--json`` — to stderr, with the rows as one JSON list
    on stdout at the end (what run_all.py reads)."""

    def __init__(self, as_json: bool):
        self.as_json, self.rows = as_json, []

    def say(self, *parts) -> None:
        print(*parts, file=sys.stderr if self.as_json else sys.stdout, flush=True)

    def add(self, r: dict) -> dict:
        self.rows.append(r)
        return r

    def finish(self) -> None:
        if self.as_json:
            print(json.dumps(self.rows))
