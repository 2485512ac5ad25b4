"""Few-pair curves: held-out R@1 of each aligner against the number of anchor pairs.

The figure every few-pair alignment paper draws (e.g. STRUCTURE, Gröger et al. 2025; relative
representations, Moschella et al. 2023): the rows are split once (seeded) into a training part
and a fixed held-out part; for each number of pairs p and each of ``draws`` seeded draws, p
anchor pairs are drawn from the training part, each method is fitted on *the same* anchors,
and R@1 of held-out source rows retrieving their partners among the held-out target rows is
recorded (:func:`latentlab.align.evaluate_aligner`, ties count against the map). Reported per
method and p: the mean, standard deviation (ddof 1), min and max over draws, beside the
baselines a map must beat on the same held-out rows — the identity on raw rows (when the
dims agree) and a fixed random rotation.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..io import as_embeddings, require_paired
from ..results import ResultMixin

DEFAULT_PAIRS = (25, 50, 100, 200, 500, 1000)


@dataclass(frozen=True)
class CurvePoint(ResultMixin):
    """Held-out R@1 of one method at one number of anchor pairs, over the draws."""

    method: str
    pairs: int
    r_at_1_mean: float
    r_at_1_std: float
    r_at_1_min: float
    r_at_1_max: float
    r_at_1: list[float]


@dataclass(frozen=True)
class CurveResult(ResultMixin):
    """Few-pair curves of several methods (R@1 is a fraction; higher = better)."""

    methods: list[str]
    pairs: list[int]
    draws: int
    n_train: int
    n_test: int
    test_frac: float
    points: list[CurvePoint]
    #: R@1 on the same held-out rows: identity (None when dims differ) and the fixed random rotation
    baselines: dict
    source: str = ""
    target: str = ""
    notes: list[str] = field(default_factory=list)

    def series(self, method: str) -> list[CurvePoint]:
        return [p for p in self.points if p.method == method]


def _check_pairs(pairs) -> list[int]:
    try:
        out = [int(p) for p in pairs]
    except (TypeError, ValueError):
        raise InputError(f"pairs {pairs!r}: expected whole numbers of anchor pairs") from None
    if not out or any(p < 2 for p in out) or any(float(p) != float(q) for p, q in zip(out, pairs)):
        raise InputError(f"pairs {list(pairs)!r}: expected whole numbers ≥ 2")
    return sorted(set(out))


def curve(methods, X, Y, *, pairs=DEFAULT_PAIRS, draws: int = 5, test_frac: float = 0.2, seed: int = 0,
          params: dict | None = None, device="auto", dtype="float32") -> CurveResult:
    """Held-out R@1 of each of ``methods`` fitted on 25, 50, … anchor pairs of ``X`` → ``Y``.

    Parameters
    ----------
    methods : aligner names (``latentlab.align.METHODS``), each with its default options unless
        ``params[method]`` gives some.
    X, Y : row-paired source and target (paths, arrays or Embeddings).
    pairs : numbers of anchor pairs; each must fit in the training part (InputError naming ``pairs``).
    draws : seeded anchor draws per number of pairs (the same draws for every method).
    test_frac : fraction of the rows held out once (seeded) for every evaluation.
    """
    from . import evaluate_aligner, fit_aligner, make_aligner

    names = [methods] if isinstance(methods, str) else list(methods)
    if not names:
        raise InputError("methods: name at least one aligner")
    for m in names:
        make_aligner(m, **(params or {}).get(m, {}))  # unknown methods / options fail before any work
    pairs = _check_pairs(pairs)
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise InputError(f"draws {draws!r}: expected a whole number ≥ 1")
    try:
        ok = 0.0 < float(test_frac) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"test_frac {test_frac!r}: expected a fraction in (0, 1)")
    ex, ey = as_embeddings(X, "source"), as_embeddings(Y, "target")
    require_paired(ex, ey, "curve")
    n = ex.n
    n_test = int(round(float(test_frac) * n))  # float64 arithmetic (0.2 × n exactly as written)
    if n_test < 2 or n - n_test < 2:
        raise InputError(f"test_frac {test_frac}: {n} rows give {n_test} held-out and {n - n_test} training rows; "
                         f"each part needs at least 2")
    order = np.random.default_rng([seed, 7919]).permutation(n)
    test, train = np.sort(order[:n_test]), order[n_test:]
    too_many = [p for p in pairs if p > len(train)]
    if too_many:
        raise InputError(f"pairs {too_many[0]}: more anchor pairs than the {len(train)} training rows "
                         f"({n} rows, {n_test} held out by test_frac {test_frac}); use at most {len(train)}")
    values: dict[tuple[str, int], list[float]] = {}
    warned: dict[str, tuple[str, list[int]]] = {}  # method → (its first fit warning, the pair counts that warned)
    baselines = None
    for p in pairs:
        for d in range(draws):
            anchors = np.sort(np.random.default_rng([seed, p, d]).choice(train, p, replace=False))
            for m in names:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    al = fit_aligner(m, ex, ey, anchors=anchors, seed=seed + d, device=device, dtype=dtype,
                                     **(params or {}).get(m, {}))
                if caught and d == 0:
                    warned.setdefault(m, (str(caught[0].message), []))[1].append(p)
                res = evaluate_aligner(al, ex, ey, rows=test, baselines=baselines is None, device=device)
                if baselines is None:
                    baselines = {k: (v["r_at_1"] if v else None) for k, v in res.baselines.items()}
                values.setdefault((m, p), []).append(res.r_at_1)
    notes = [f"{m} at {', '.join(map(str, ps))} pairs: {msg}" for m, (msg, ps) in warned.items()]
    points = []
    for m in names:
        for p in pairs:
            v = np.asarray(values[(m, p)])
            points.append(CurvePoint(method=m, pairs=p, r_at_1_mean=float(v.mean()),
                                     r_at_1_std=float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                                     r_at_1_min=float(v.min()), r_at_1_max=float(v.max()), r_at_1=v.tolist()))
    if ex.dim != ey.dim:
        notes.append("identity baseline omitted: source and target dims differ")
    return CurveResult(methods=names, pairs=pairs, draws=int(draws), n_train=len(train), n_test=n_test,
                       test_frac=float(test_frac), points=points, baselines=baselines or {}, source=ex.name,
                       target=ey.name, notes=notes)


__all__ = ["curve", "CurveResult", "CurvePoint", "DEFAULT_PAIRS"]
