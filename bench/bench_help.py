"""`latentlab --help` and each command's --help must answer in well under a second (issue 12):
the CLI imports torch, matplotlib and scipy only when a command runs. Times a fresh interpreter
per call (the cost a user pays), the median of --repeats.

    python bench/bench_help.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = [[], ["gap"], ["report"], ["fit"], ["embed"], ["plot"], ["plot", "joint"]]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    base = [sys.executable, "-c", "from latentlab.cli import main; main()"]
    print(f"{'command':28} {'median s':>9} {'max s':>7}")
    worst = 0.0
    for words in COMMANDS:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run([*base, *words, "--help"], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        worst = max(worst, statistics.median(times))
        print(f"{'latentlab ' + ' '.join(words + ['--help']):28} {statistics.median(times):9.3f} {max(times):7.3f}")
    print(f"slowest median {worst:.3f} s (target: well under 1 s)")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
