"""Run every benchmark, each comparing latentlab with its peers in the same run.

    python bench/run_all.py          # quick sizes (minutes)
    python bench/run_all.py --full   # the sizes the issues name (an hour or more on 2 cores)
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK = {
    "bench_gap_memory.py": ["--rows", "200000"],
    "bench_cka.py": ["--quick"],
    "bench_uniformity.py": ["--quick"],
    "bench_align.py": ["--size", "small"],
    "bench_retrieval.py": ["--n", "20000", "--eval-queries", "1000", "--ref-n", "5000"],
    "bench_embed.py": ["--n", "500", "--repeats", "2"],
    "bench_report.py": ["--n", "2000"],
}


def main() -> int:
    full = "--full" in sys.argv[1:]
    failed = []
    for script, quick_args in QUICK.items():
        cmd = [sys.executable, str(HERE / script), *([] if full else quick_args)]
        print(f"\n=== {' '.join(cmd[1:])}", flush=True)
        if subprocess.run(cmd).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
