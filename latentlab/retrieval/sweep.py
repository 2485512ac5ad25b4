"""Hyperparameter grids for the post-hoc fixes: ``--sweep r=0:1:0.1`` and picking the best."""
from __future__ import annotations

import itertools

import numpy as np

from ..errors import InputError
from ..grid import parse_grid
from .invgc import check_pool_rate

#: names a sweep may vary ("r" sets both InvGC rates)
SWEEPABLE = ("r", "r_gallery", "r_query", "pool_rate", "k", "beta", "beta_gallery")


def check_param(name: str, value) -> float | int:
    """One fix parameter checked against its valid range; the one home of these rules.

    - ``r_gallery``, ``r_query`` (and ``r``, both): InvGC's propagation rate in [0, 1] —
      InvGC *subtracts* the neighbours' message (Jian & Wang, Findings of EMNLP 2023), so a
      negative rate is ordinary graph smoothing, the opposite of the method, and a rate above
      1 removes more than the whole message (the authors search 0–1);
    - ``pool_rate``: LocalAdj's share of the bank, in (0, 1];
    - ``k``: a whole number ≥ 1; ``beta``, ``beta_gallery``: positive temperatures.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} {value!r}: must be a number") from None
    if not np.isfinite(v):
        raise InputError(f"{name} {value}: must be a finite number")
    if name in ("r", "r_gallery", "r_query"):
        if not 0.0 <= v <= 1.0:
            raise InputError(f"{name} {value}: InvGC's rate must be in [0, 1] (0 = no change)")
        return v
    if name == "pool_rate":
        check_pool_rate(v)
        return value
    if name == "k":
        if v != int(v) or v < 1:
            raise InputError(f"{name} {value}: must be a whole number ≥ 1")
        return int(v)
    if name in ("beta", "beta_gallery"):
        if v <= 0:
            raise InputError(f"{name} {value}: must be a positive number")
        return v
    return value


def parse_sweep(spec: str) -> tuple[str, list[float]]:
    """``"r=0:1:0.1"`` → ("r", [0, 0.1, …, 1]) (stop inclusive); ``"beta=10,20,40"`` → a list."""
    name, sep, values = spec.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not values.strip():
        raise InputError(f"sweep {spec!r}: expected NAME=START:STOP:STEP or NAME=v1,v2,…")
    if name not in SWEEPABLE:
        raise InputError(f"sweep {spec!r}: cannot sweep {name!r}; choose from {', '.join(SWEEPABLE)}")
    grid = parse_grid(values, f"sweep {spec!r}")
    if not grid or len(grid) > 1000:
        raise InputError(f"sweep {spec!r}: the grid must have 1 to 1000 values, got {len(grid)}")
    try:
        grid = [check_param(name, v) for v in grid]
    except InputError as exc:
        raise InputError(f"sweep {spec!r}: {exc}") from None
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
