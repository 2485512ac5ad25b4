"""Hyperparameter grids for the post-hoc fixes: ``--sweep r=0:1:0.1`` and picking the best."""
from __future__ import annotations

import itertools

from ..errors import InputError
from ..grid import parse_grid

#: names a sweep may vary ("r" sets both InvGC rates)
SWEEPABLE = ("r", "r_gallery", "r_query", "pool_rate", "k", "beta", "beta_gallery")


def parse_sweep(spec: str) -> tuple[str, list[float]]:
    """``"r=0:1:0.1"`` → ("r", [0, 0.1, …, 1]) (stop inclusive); ``"beta=10,20,40"`` → a list."""
    name, sep, values = spec.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not values.strip():
        raise InputError(f"--sweep {spec!r}: expected NAME=START:STOP:STEP or NAME=v1,v2,…")
    if name not in SWEEPABLE:
        raise InputError(f"--sweep {spec!r}: cannot sweep {name!r}; choose from {', '.join(SWEEPABLE)}")
    grid = parse_grid(values, f"--sweep {spec!r}")
    if not grid or len(grid) > 1000:
        raise InputError(f"--sweep {spec!r}: the grid must have 1 to 1000 values, got {len(grid)}")
    return name, grid


def expand_grid(sweep: dict) -> list[dict]:
    """Cartesian product of {name: values}; ``r`` expands to r_gallery = r_query = r."""
    names = list(sweep)
    points = []
    for values in itertools.product(*(sweep[n] for n in names)):
        point = {}
        for n, v in zip(names, values):
            if n == "r":
                point["r_gallery"] = point["r_query"] = v
            else:
                point[n] = v
        points.append(point)
    return points


def pick_best(points) -> int:
    """Index of the best metrics: highest R@1, then highest MRR, then the first."""
    return max(range(len(points)), key=lambda i: (points[i].r_at_1, points[i].mrr, -i))
