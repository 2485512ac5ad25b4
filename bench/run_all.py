"""The peers' table: every comparison of latentlab with its peers, from one run, in one table.

    python bench/run_all.py           # quick sizes (a few minutes on 2 cores)
    python bench/run_all.py --full    # the sizes the issues name (about half an hour on 2 cores)
    python bench/run_all.py --extras  # then also the benchmarks without a peer (gap memory, embed, report)

Measures the machine's float32 GEMM rate once (the best of ``torch.matmul`` and numpy's BLAS),
runs each comparing script with ``--json --gemm-rate RATE`` (their progress lines go to stderr), and prints one Markdown
table — per operation latentlab's time and peak memory, the peer's on the same data, the
ratio, the fraction of the GEMM rate for compute-bound methods, and the target with ok/miss —
under the machine's description. The table is also written to ``bench/results/latest.md``
and ``latest.json``. Produce the table you quote on a quiet machine: on a shared one the
timings move with the other jobs' load. Every measured side is the fastest of ``--repeats``
fresh processes (default 3; a run over a minute is not repeated), as the yardstick is the best
of its 5 GEMMs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import measure  # noqa: E402
from measure import gemm_rate, machine  # noqa: E402

# script → (quick arguments, full arguments); every one also gets --json --gemm-rate
PEER_SCRIPTS = {
    "bench_cka.py": (["--quick"], []),
    "bench_uniformity.py": (["--quick"], []),
    "bench_align.py": (["--size", "quick", "--no-aligner"], []),
    "bench_retrieval.py": (["--no-scale", "--ref-n", "2000", "--topk-n", "10000"], ["--no-scale", "--topk-n", "50000"]),
}
# benchmarks with no peer: they print their own lines (--extras)
EXTRAS = {
    "bench_gap_memory.py": ["--rows", "200000"],
    "bench_embed.py": ["--n", "500", "--repeats", "2"],
    "bench_report.py": ["--n", "2000"],
    "bench_retrieval.py": ["--ref-n", "2000", "--topk-n", "10000", "--n", "20000"],  # the scale run (no peer)
}
TARGETS = {"peer≥50x": "≥ 50× faster than the peer", "≤1.5x GEMM": "≤ 1.5× the GEMM-bound time",
           "≤1.2x peer": "≤ 1.2× the peer's time", "≤1x peer": "no slower than the peer"}


def collect(script: str, args: list[str], rate: float) -> list[dict]:
    """Run one script with --json; its rows, or one row saying why there are none."""
    cmd = [sys.executable, str(HERE / script), *args, "--json", "--gemm-rate", repr(rate)]
    print(f"=== {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # stderr (progress) passes through
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return [{"op": script, "size": "", "peer": "", "target": "", "verdict": "",
                 "note": f"failed (exit {out.returncode})", "latentlab_s": None, "latentlab_mib": None,
                 "peer_s": None, "peer_mib": None, "ratio": None, "gemm_fraction": None}]


def _cell(v, spec: str, error: str | None = None) -> str:
    if v is None:
        return error or "—"
    return format(v, spec)


def markdown(rows: list[dict], info: dict, rate: float, sizes: str) -> str:
    lines = [f"Machine: {info['cpu']}, {info['cores']} cores (torch {info['torch']}, {info['torch_threads']} "
             f"threads; numpy {info['numpy']}; Python {info['python']}), {info['date']}, {info['load']}.",
             f"Sizes: {sizes}. Measured float32 GEMM rate (best of torch.matmul and numpy's BLAS): "
             f"{2 * rate / 1e9:.1f} GFLOP/s. latentlab's CPU products run in {info.get('cpu_blas', '?')}; "
             "every child process runs with OPENBLAS_THREAD_TIMEOUT=16 and GOMP_SPINCOUNT=1000, as the "
             "latentlab CLI does.",
             f"Times: each side the fastest of {info.get('repeats', 1)} fresh processes (a run over "
             f"{measure.REPEAT_BELOW_S:.0f} s: one); peak memory: the largest of them.",
             "Peak = the process's peak RSS minus its RSS just before the measured call (peers: after "
             "loading their input), unless the note says otherwise. ratio = peer time ÷ latentlab time "
             "(> 1: latentlab faster). GEMM = the method's FLOPs ÷ its time ÷ the GEMM rate measured right "
             "before and after that run (the larger of the two; the rate above is the one at the start).",
             "",
             "| operation | size | latentlab s | latentlab MiB | peer | peer s | peer MiB | ratio | GEMM | target | | note |",
             "|---|---|--:|--:|---|--:|--:|--:|--:|---|---|---|"]
    for r in rows:
        peer_err = r.get("peer_error")
        cells = [
            r["op"], r["size"],
            _cell(r["latentlab_s"], ".2f", r.get("latentlab_error")), _cell(r["latentlab_mib"], ".0f"),
            r["peer"], _cell(r["peer_s"], ".2f", peer_err), _cell(r["peer_mib"], ".0f", "—"),
            _cell(r["ratio"], ".2f") + ("×" if r["ratio"] is not None else ""),
            _cell(r["gemm_fraction"], ".0%"), TARGETS.get(r["target"], r["target"]), r["verdict"],
            r["note"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")  # a | inside a cell
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="the issues' sizes instead of the quick ones")
    ap.add_argument("--extras", action="store_true", help="also run the benchmarks that have no peer")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="folder for latest.md / latest.json")
    ap.add_argument("--repeats", type=int, default=measure.REPEATS,
                    help="fresh processes per measured side; the fastest is kept (default %(default)s)")
    args = ap.parse_args()
    os.environ["BENCH_REPEATS"] = str(max(1, args.repeats))  # the scripts read it (measure.REPEATS)
    info = machine()
    info["repeats"] = max(1, args.repeats)
    rate = gemm_rate()  # once, so every row's GEMM fraction uses the same yardstick
    rows: list[dict] = []
    for script, (quick, full) in PEER_SCRIPTS.items():
        rows += collect(script, full if args.full else quick, rate)
    info["load_after"] = machine()["load"]
    sizes = "full (the issues' sizes)" if args.full else "quick (--quick; far below the issues' sizes)"
    table = markdown(rows, info, rate, sizes)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "latest.md", table)
    write_atomic(args.out / "latest.json", json.dumps(
        {"machine": info, "gemm_macs_per_s": rate, "sizes": "full" if args.full else "quick", "rows": rows},
        indent=1) + "\n")
    print(f"written: {args.out / 'latest.md'}, {args.out / 'latest.json'}", file=sys.stderr)
    failed = [r["op"] for r in rows if r["note"].startswith("failed")]
    if args.extras:
        for script, quick_args in EXTRAS.items():
            cmd = [sys.executable, str(HERE / script), *([] if args.full else quick_args)]
            print(f"\n=== {' '.join(cmd[1:])}", flush=True)
            if subprocess.run(cmd).returncode != 0:
                failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
