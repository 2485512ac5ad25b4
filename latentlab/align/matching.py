"""``match``: a one-to-one assignment between two unpaired sets of equal size.

* ``emd`` / ``sinkhorn`` with ``rotate`` (default): the inputs need not share coordinates.
  Rows are L2-normalised and centred per set, and an orthogonal map is solved jointly with
  the matching (Wasserstein-Procrustes from a Gromov-Wasserstein start on the ``gw_rows``
  rows farthest from each centroid, see :mod:`latentlab.align.ot`); the final plan is exact
  (``emd``) or entropic (``sinkhorn``).
* ``emd`` / ``sinkhorn`` with ``rotate=False``: the inputs already share coordinates (same
  dim); the cost is the cosine distance 1 − cos(a_i, b_j) (lower = more similar).
* ``gw``: the Gromov-Wasserstein coupling of the two sets' own (normalised squared)
  distance matrices, coordinate-free, started from the TLB matching of sorted distance
  profiles (cubic per iteration: meant for a few thousand rows).

The assignment is ``linear_sum_assignment`` on the plan (maximising transported mass), so it
is always a permutation — for ``emd`` it is the plan's own permutation.

References
----------
Peyré & Cuturi, "Computational Optimal Transport", Foundations and Trends in ML 11, 2019.
Mémoli, "Gromov–Wasserstein distances and the metric approach to object matching",
Foundations of Computational Mathematics 11, 2011.
(and those of :mod:`latentlab.align.ot`)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..compute import Backend, l2_normalize
from ..errors import InputError
from ..io import as_embeddings, require_paired
from ..results import ResultMixin
from .ot import gw_coupling, transport_plan, wasserstein_procrustes

MATCH_METHODS = ("emd", "sinkhorn", "gw")


@dataclass(frozen=True)
class MatchResult(ResultMixin):
    """Row i of A ↔ row ``assignment[i]`` of B; ``accuracy`` (fraction correct) with a truth."""

    method: str
    n: int
    rotate: bool
    accuracy: float | None
    transport_cost: float | None
    iterations: int | None
    notes: list[str] = field(default_factory=list)
    assignment: np.ndarray = field(default=None, repr=False, compare=False)
    plan: np.ndarray = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in super().to_dict().items() if k not in ("assignment", "plan")}


def check_truth(truth, n: int) -> np.ndarray:
    t = np.asarray(truth)
    if t.ndim != 1 or len(t) != n:
        raise InputError(f"truth: expected {n} indices (row i of A ↔ row truth[i] of B), got shape {t.shape}")
    if t.dtype.kind == "f" and np.all(np.isfinite(t)) and np.all(t == np.round(t)):
        t = t.astype(np.int64)
    if t.dtype.kind not in "iu":
        raise InputError(f"truth: indices must be integers, got dtype {t.dtype}")
    if t.min() < 0 or t.max() >= n:
        raise InputError(f"truth: indices must lie in 0..{n - 1}")
    return t.astype(np.int64)


def _unit_centred(x):
    """Rows L2-normalised, then centred on their mean (the ``rotate`` / ``gw`` preprocessing)."""
    x = l2_normalize(x)
    return x - x.mean(0)


def match(A, B, method: str = "emd", *, reg: float = 0.05, rotate: bool = True, truth=None,
          iters: int = 20, gw_rows: int = 1000, seed: int = 0, device="auto") -> MatchResult:
    """Optimal-transport assignment between equally many rows of ``A`` and ``B``."""
    from scipy.optimize import linear_sum_assignment

    if method not in MATCH_METHODS:
        raise InputError(f"method {method!r}: expected one of {', '.join(MATCH_METHODS)}")
    if not reg > 0:
        raise InputError(f"reg {reg}: must be > 0")
    ea, eb = as_embeddings(A, "A"), as_embeddings(B, "B")
    require_paired(ea, eb, "match (two sets of equal size)")
    if ea.n < 2:
        raise InputError("match needs at least 2 rows per set")
    t = check_truth(truth, ea.n) if truth is not None else None
    notes: list[str] = []
    iterations = None
    backend = Backend.make(device, "float64")
    if method == "gw" or rotate:
        Xa, Xb = (_unit_centred(backend.tensor(e.data)) for e in (ea, eb))
        if method == "gw":
            if ea.n > 3000:
                notes.append(f"gw on {ea.n} rows is cubic per iteration; expect a long run")
            P = gw_coupling(Xa, Xb)
            cost = None
        else:
            res = wasserstein_procrustes(Xa, Xb, solver=method, reg=reg, iters=iters, gw_rows=gw_rows,
                                         seed=seed, device=backend.device)
            P, cost, iterations = res["plan"], res["cost"], res["iterations"]
            if not res["converged"]:
                notes.append(f"the matching still changed after {iters} iterations (raise `iters`)")
    else:
        if ea.dim != eb.dim:
            raise InputError(f"no_rotate: match compares rows directly, so it needs equal dims "
                             f"({ea.dim} vs {eb.dim}); drop `no_rotate` or map A first (latentlab apply)")
        xa, xb = (l2_normalize(backend.tensor(e.data)) for e in (ea, eb))
        C = (1.0 - xa @ xb.T).clamp_min(0.0)
        P = transport_plan(C, method, reg)
        cost = float((P * C).sum())
    plan = P.detach().cpu().numpy()
    _, assign = linear_sum_assignment(plan, maximize=True)
    acc = float(np.mean(assign == t)) if t is not None else None
    return MatchResult(method=method, n=ea.n, rotate=bool(rotate or method == "gw"), accuracy=acc,
                       transport_cost=cost, iterations=iterations, notes=notes,
                       assignment=assign.astype(np.int64), plan=plan)
