"""Uncertainty for any scalar metric: percentile bootstrap intervals and permutation p-values.

Three bootstrap schemes, each named in the :class:`~latentlab.results.Estimate` it returns:

* :func:`bootstrap` — the generic scheme: resample rows with replacement (paired inputs
  together) and recompute the metric on every replicate.
* :func:`bootstrap_sums` — for statistics that are a function of *sums over rows* (means,
  covariances, cross-covariances: linear CKA, effective rank, anisotropy …). The rows are
  split once into G groups and each group's sums are stored; a replicate resamples groups and
  adds their stored sums, so a replicate costs O(G·m) instead of a pass over the data. With
  G = n this is exactly the row bootstrap (same draws as :func:`bootstrap` for the same seed);
  with G < n (large d, where n per-row moment matrices would not fit) it is a bootstrap of
  random row groups, which has the same first-order variance (group sums are i.i.d.).
* :func:`bootstrap_weighted` — for metrics that accept per-row multiplicities (counts)
  directly, e.g. a U-statistic over distinct pairs that must not pair a row with its copy.

Permutation p-values (:func:`permutation_test`) test the null of unrelated pairing by
shuffling the rows of one side: ``p = (1 + #{null ≥ observed}) / (1 + N)`` (never 0).

References
----------
Efron & Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall 1993 (§13, percentile
interval). Phipson & Smyth, "Permutation p-values should never be zero", SAGMB 9(1), 2010.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import InputError
from .results import Estimate, ResultMixin

#: Bytes the stored per-group sums of :func:`bootstrap_sums` may occupy.
DEFAULT_SUMS_BUDGET = 512 * 2**20
ROW_SCHEME = "percentile bootstrap over rows"


@dataclass(frozen=True)
class PermutationResult(ResultMixin):
    """A one-sided permutation test: is the observed value larger than under shuffled pairing?"""

    p_value: float
    n_permutations: int
    null_mean: float
    method: str = "permutation test (rows of B shuffled), p = (1 + #{null ≥ observed}) / (1 + N)"


def check_resamples(n_resamples: int, what: str = "--bootstrap") -> int:
    if int(n_resamples) < 1:
        raise InputError(f"{what} {n_resamples}: must be a positive number of resamples")
    return int(n_resamples)


def percentile_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The equal-tailed percentile interval of bootstrap replicates (NaN replicates dropped)."""
    vals = np.asarray(values, dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(vals, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def resample_indices(n: int, n_resamples: int, seed: int):
    """Yield ``n_resamples`` index vectors of length ``n`` drawn with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        yield rng.integers(0, n, size=n)


def make_estimate(value: float, replicates, level: float, method: str, recenter: bool = False) -> Estimate:
    """Percentile interval of ``replicates``.

    ``recenter``: first shift the replicates by (their mean − ``value``), i.e. remove the
    bootstrap estimate of bias. For statistics that resampling itself biases (CKA: a
    resample holds ~63 % distinct rows, and CKA rises as the number of distinct items
    falls), the plain percentile interval can miss the estimate altogether; the recentred
    one keeps the replicates' spread around the full-data value.
    """
    reps = np.asarray(replicates, dtype=np.float64)
    if recenter:
        finite = reps[np.isfinite(reps)]
        if finite.size:
            reps = reps - (finite.mean() - float(value))
            method = f"{method}, recentred on the estimate (bootstrap bias removed)"
    lo, hi = percentile_interval(reps, level)
    return Estimate(value=float(value), ci_low=lo, ci_high=hi, level=level, method=method,
                    n_resamples=len(reps))


def bootstrap(metric: Callable[..., float], *arrays, n_resamples: int = 1000, seed: int = 0,
              level: float = 0.95, value: float | None = None) -> Estimate:
    """Percentile-bootstrap interval of ``metric(*arrays)``, resampling rows (paired together).

    Parameters
    ----------
    metric : function of one or more row-aligned arrays returning a float.
    arrays : row-aligned numpy arrays; the same row indices are drawn for all of them.
    value : the full-data value, if already known (else computed).

    Returns
    -------
    Estimate with ``method`` naming the scheme.
    """
    n_resamples = check_resamples(n_resamples)
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise InputError("bootstrap needs row-aligned inputs of equal length")
    if value is None:
        value = metric(*arrays)
    reps = [metric(*(a[idx] for a in arrays)) for idx in resample_indices(n, n_resamples, seed)]
    return make_estimate(value, reps, level, f"{ROW_SCHEME}, paired" if len(arrays) > 1 else ROW_SCHEME)


def bootstrap_weighted(metric: Callable[[np.ndarray], float], n: int, *, n_resamples: int = 1000,
                       seed: int = 0, level: float = 0.95, value: float, scheme: str = ROW_SCHEME) -> Estimate:
    """Bootstrap a metric that takes row multiplicities: ``metric(counts)`` with counts summing to n."""
    n_resamples = check_resamples(n_resamples)
    reps = [metric(np.bincount(idx, minlength=n)) for idx in resample_indices(n, n_resamples, seed)]
    return make_estimate(value, reps, level, scheme)


def bootstrap_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) multiplicity matrix, the same draws as :func:`resample_indices`."""
    return np.stack([np.bincount(idx, minlength=n) for idx in resample_indices(n, n_resamples, seed)])


def group_count(n: int, bytes_per_group: int, budget: int = DEFAULT_SUMS_BUDGET, minimum: int = 20) -> int:
    """How many row groups :func:`bootstrap_sums` uses: one per row when the sums fit the budget."""
    fit = max(1, int(budget // max(bytes_per_group, 1)))
    return int(min(n, max(fit, min(minimum, n))))


def group_labels(n: int, groups: int, seed: int) -> np.ndarray:
    """Random, balanced assignment of n rows to ``groups`` groups (identity when groups == n)."""
    if groups >= n:
        return np.arange(n)
    rng = np.random.default_rng([seed, 7919])
    return rng.permutation(np.arange(n) % groups)


def bootstrap_sums(group_sums: dict[str, np.ndarray], statistic: Callable[[dict], float], *,
                   n_resamples: int = 1000, seed: int = 0, level: float = 0.95, value: float,
                   squared: Sequence[str] = (), chunk_bytes: int = 128 * 2**20, recenter: bool = False):
    """Bootstrap a statistic of row sums by resampling stored per-group sums.

    Parameters
    ----------
    group_sums : name → array of shape (G, ...): each group's sum of a per-row quantity
        (include ``"n"`` of shape (G,) with the rows per group).
    statistic : function of a dict name → summed array (same names, group axis summed),
        returning a float, or a dict name → float for several statistics at once.
    value : the full-data value (a dict of them when ``statistic`` returns a dict).

    squared : names whose sums are also given weighted by the squared counts, as
        ``name + "^2"`` (Σ_g c_g² s_g), to remove pairs of copies of one row from pairwise sums.

    Returns an :class:`Estimate`, or a dict name → Estimate.

    Replicate b draws G groups with replacement (``counts`` from :func:`bootstrap_counts`)
    and evaluates ``statistic({k: counts @ sums[k]})``; replicates are formed in chunks so
    at most ``chunk_bytes`` of resampled sums are held at once.
    """
    n_resamples = check_resamples(n_resamples)
    first = next(iter(group_sums.values()))
    groups = int(first.shape[0])
    flat = {k: np.asarray(v, dtype=np.float64).reshape(groups, -1) for k, v in group_sums.items()}
    shapes = {k: np.asarray(v).shape[1:] for k, v in group_sums.items()}
    width = sum(f.shape[1] for f in flat.values())
    step = max(1, int(chunk_bytes // (8 * max(width, 1))))
    counts = bootstrap_counts(groups, n_resamples, seed).astype(np.float64)
    reps: list = []
    for lo in range(0, n_resamples, step):
        c = counts[lo : lo + step]
        summed = {k: c @ f for k, f in flat.items()}
        summed.update({f"{k}^2": (c * c) @ flat[k] for k in squared})
        for b in range(c.shape[0]):
            reps.append(statistic({k: summed[k][b].reshape(shapes[k.removesuffix("^2")]) for k in summed}))
    nrows = int(np.asarray(group_sums.get("n", np.ones(groups))).sum())
    scheme = f"{ROW_SCHEME} (resampled moments)" if groups >= nrows else (
        f"percentile bootstrap over {groups} random row groups (resampled moments)")
    if isinstance(value, dict):
        return {k: make_estimate(v, [r[k] for r in reps], level, scheme, recenter) for k, v in value.items()}
    return make_estimate(value, reps, level, scheme, recenter)


def outside_notes(values: dict) -> list[str]:
    """Notes for estimates whose full-data value lies outside their own bootstrap interval."""
    out = []
    for name, est in values.items():
        if isinstance(est, Estimate) and not (est.ci_low <= est.value <= est.ci_high):
            out.append(f"{name}: the full-data value lies outside its bootstrap interval — the statistic "
                       "is biased under resampling at this n (duplicated rows); read the interval as its spread")
    return out


def permutation_test(metric: Callable[[np.ndarray], float], n: int, *, observed: float,
                     n_permutations: int = 1000, seed: int = 0) -> PermutationResult:
    """One-sided permutation p-value: ``metric(perm)`` is the metric with B's rows reordered by perm.

    The null hypothesis is that the pairing of rows carries no information; larger values
    mean "more related". ``p = (1 + #{null ≥ observed}) / (1 + N)`` (Phipson & Smyth 2010).
    """
    n_permutations = check_resamples(n_permutations, "--permutations")
    rng = np.random.default_rng([seed, 104729])
    null = np.array([metric(rng.permutation(n)) for _ in range(n_permutations)], dtype=np.float64)
    # a tiny tolerance so that a null replicate equal to the observed value up to rounding counts
    exceed = int(np.sum(null >= observed - 1e-12 * max(1.0, abs(observed))))
    return PermutationResult(p_value=(1 + exceed) / (1 + n_permutations), n_permutations=n_permutations,
                             null_mean=float(np.nanmean(null)))


__all__ = [
    "bootstrap", "bootstrap_sums", "bootstrap_weighted", "bootstrap_counts", "permutation_test",
    "percentile_interval", "PermutationResult", "group_count", "group_labels", "resample_indices",
    "make_estimate", "check_resamples", "outside_notes",
]
