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

Every interval is *median-centred on the estimate*: the replicates are shifted so that their
median equals the full-data value before the equal-tailed percentiles are read. Resampling
itself biases many statistics of embeddings (duplicated rows raise CKA and lower every
spectral statistic), and the plain percentile interval can then miss its own estimate; the
shift removes the resampling bias and keeps the replicates' spread, so an interval always
contains its estimate (the median lies between the 2.5 % and 97.5 % quantiles). Statistics
of a spectrum use *half-sampling* instead of the row bootstrap (``scheme="half"``): each
replicate holds n/2 distinct rows drawn without replacement, whose spread equals the
full-sample spread for smooth statistics (the finite-population factor (n − m)/n = 1/2
cancels the 2 of n/m), with no duplicated rows.

Permutation p-values (:func:`permutation_test`) test the null of unrelated pairing by
shuffling the rows of one side: ``p = (1 + #{null ≥ observed}) / (1 + N)`` (never 0).
:func:`calibrate` turns the same null into a *null-calibrated* score (Gröger, Wen & Brbić,
ICML 2026): τ = the (1 − α) quantile of the observed score together with the K null scores,
``calibrated = clamp((s − τ) / (s_max − τ), 0, 1)``; :mod:`latentlab.analyze.matrix` does it
for the best or mean cell of a layer × layer matrix, applying one permutation to every layer
of one model so the aggregate's null is right.

References
----------
Efron & Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall 1993 (§13, percentile
interval; §10, bootstrap estimate of bias). McCarthy, "Pseudo-replication: half samples",
Rev. Int. Stat. Inst. 37, 1969; Politis, Romano & Wolf, "Subsampling", Springer 1999
(resampling without replacement). Phipson & Smyth, "Permutation p-values should never be
zero", SAGMB 9(1), 2010. Gröger, Wen & Brbić, "An Aristotelian view of the Platonic
representation hypothesis", ICML 2026 (null calibration; reference package
``calibrated-similarity``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import InputError, LatentlabWarning
from .progress import progress
from .results import Estimate, ResultMixin

#: Bytes the stored per-group sums of :func:`bootstrap_sums` may occupy.
DEFAULT_SUMS_BUDGET = 512 * 2**20
ROW_SCHEME = "percentile bootstrap over rows"
HALF_SCHEME = "half-sampling without replacement (m = n/2)"
CENTRED = "median-centred on the estimate"
SCHEMES = ("bootstrap", "half")


@dataclass(frozen=True)
class PermutationResult(ResultMixin):
    """A one-sided permutation test: is the observed value larger than under shuffled pairing?"""

    p_value: float
    n_permutations: int
    null_mean: float
    method: str = "permutation test (rows of B shuffled), p = (1 + #{null ≥ observed}) / (1 + N)"


def check_resamples(n_resamples: int, what: str = "n_resamples") -> int:
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or int(n_resamples) < 1:
        raise InputError(f"{what} {n_resamples}: must be a positive whole number")
    return int(n_resamples)


def check_alpha(alpha: float, what: str = "alpha") -> float:
    """A significance level strictly between 0 and 1."""
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise InputError(f"{what} {alpha!r}: must be a number in (0, 1)") from None
    if not 0.0 < alpha < 1.0:
        raise InputError(f"{what} {alpha}: must be in (0, 1)")
    return alpha


def percentile_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The equal-tailed percentile interval of bootstrap replicates (NaN replicates dropped)."""
    vals = np.asarray(values, dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(vals, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def resample_indices(n: int, n_resamples: int, seed: int, scheme: str = "bootstrap"):
    """Yield ``n_resamples`` seeded index vectors: n rows with replacement (``"bootstrap"``)
    or n // 2 distinct rows, sorted (``"half"``)."""
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        if scheme == "half":
            yield np.sort(rng.choice(n, size=max(n // 2, 1), replace=False))
        else:
            yield rng.integers(0, n, size=n)


def scheme_name(scheme: str) -> str:
    return HALF_SCHEME if scheme == "half" else ROW_SCHEME


def make_estimate(value: float, replicates, level: float, method: str) -> Estimate:
    """Percentile interval of ``replicates`` median-centred on ``value`` (module docstring).

    The replicates are shifted by (their median − ``value``): the resampling bias is
    removed, the spread kept, and the interval contains the estimate by construction.
    """
    reps = np.asarray(replicates, dtype=np.float64)
    finite = reps[np.isfinite(reps)]
    if finite.size and np.isfinite(value):
        reps = reps - (float(np.median(finite)) - float(value))
    lo, hi = percentile_interval(reps, level)
    if np.isfinite(value) and np.isfinite(lo):
        # the shift is exact up to rounding: keep the estimate inside when it sits on a bound
        lo, hi = min(lo, float(value)), max(hi, float(value))
    return Estimate(value=float(value), ci_low=lo, ci_high=hi, level=level, method=f"{method}, {CENTRED}",
                    n_resamples=len(reps))


def bootstrap(metric: Callable[..., float], *arrays, n_resamples: int = 1000, seed: int = 0,
              level: float = 0.95, value: float | None = None, scheme: str = "bootstrap") -> Estimate:
    """Percentile-bootstrap interval of ``metric(*arrays)``, resampling rows (paired together).

    Parameters
    ----------
    metric : function of one or more row-aligned arrays returning a float.
    arrays : row-aligned numpy arrays or torch tensors (indexed where they are: a resample of
        a CUDA tensor stays on the GPU); the same row indices are drawn for all of them.
    value : the full-data value, if already known (else computed).
    scheme : ``"bootstrap"`` (n rows with replacement) or ``"half"`` (n // 2 distinct rows; for
        statistics that duplicated rows distort, module docstring).

    Returns
    -------
    Estimate with ``method`` naming the scheme.
    """
    n_resamples = check_resamples(n_resamples)
    arrays = [a if _is_tensor(a) else np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise InputError("bootstrap needs row-aligned inputs of equal length")
    if value is None:
        value = metric(*arrays)
    reps = [metric(*(_rows(a, idx) for a in arrays))
            for idx in progress(resample_indices(n, n_resamples, seed, scheme), total=n_resamples, desc="bootstrap",
                                unit="resample")]
    name = scheme_name(scheme)
    return make_estimate(value, reps, level, f"{name}, paired" if len(arrays) > 1 else name)


def _is_tensor(a) -> bool:
    return type(a).__module__.startswith("torch")


def _rows(a, idx: np.ndarray):
    """Rows ``idx`` of a numpy array or of a torch tensor (the index moved to its device)."""
    if _is_tensor(a):
        import torch

        return a[torch.as_tensor(idx, device=a.device)]
    return a[idx]


def bootstrap_weighted(metric: Callable[[np.ndarray], float], n: int, *, n_resamples: int = 1000,
                       seed: int = 0, level: float = 0.95, value: float, scheme: str = ROW_SCHEME) -> Estimate:
    """Bootstrap a metric that takes row multiplicities: ``metric(counts)`` with counts summing to n."""
    n_resamples = check_resamples(n_resamples)
    reps = [metric(np.bincount(idx, minlength=n))
            for idx in progress(resample_indices(n, n_resamples, seed), total=n_resamples, desc="bootstrap",
                                unit="resample")]
    return make_estimate(value, reps, level, scheme)


def bootstrap_counts(n: int, n_resamples: int, seed: int, scheme: str = "bootstrap") -> np.ndarray:
    """(n_resamples, n) multiplicity matrix, the same draws as :func:`resample_indices`."""
    return np.stack([np.bincount(idx, minlength=n) for idx in resample_indices(n, n_resamples, seed, scheme)])


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
                   squared: Sequence[str] = (), chunk_bytes: int = 128 * 2**20, scheme: str = "bootstrap"):
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

    scheme : ``"bootstrap"`` (G groups drawn with replacement) or ``"half"`` (G // 2 distinct
        groups, for statistics that duplicated rows bias, such as spectra).

    Replicate b draws groups (``counts`` from :func:`bootstrap_counts`) and evaluates ``statistic({k: counts @ sums[k]})``; replicates are formed in chunks so
    at most ``chunk_bytes`` of resampled sums are held at once.
    """
    n_resamples = check_resamples(n_resamples)
    first = next(iter(group_sums.values()))
    groups = int(first.shape[0])
    flat = {k: np.asarray(v, dtype=np.float64).reshape(groups, -1) for k, v in group_sums.items()}
    shapes = {k: np.asarray(v).shape[1:] for k, v in group_sums.items()}
    width = sum(f.shape[1] for f in flat.values())
    step = max(1, int(chunk_bytes // (8 * max(width, 1))))
    counts = bootstrap_counts(groups, n_resamples, seed, scheme).astype(np.float64)
    reps: list = []
    for lo in range(0, n_resamples, step):
        c = counts[lo : lo + step]
        summed = {k: c @ f for k, f in flat.items()}
        summed.update({f"{k}^2": (c * c) @ flat[k] for k in squared})
        for b in range(c.shape[0]):
            reps.append(statistic({k: summed[k][b].reshape(shapes[k.removesuffix("^2")]) for k in summed}))
    nrows = int(np.asarray(group_sums.get("n", np.ones(groups))).sum())
    name = scheme_name(scheme)
    method = f"{name} (resampled moments)" if groups >= nrows else (
        f"{name} over {groups} random row groups (resampled moments)")
    if isinstance(value, dict):
        return {k: make_estimate(v, [r[k] for r in reps], level, method) for k, v in value.items()}
    return make_estimate(value, reps, level, method)


def permutation_test(metric: Callable[[np.ndarray], float], n: int, *, observed: float,
                     n_permutations: int = 1000, seed: int = 0) -> PermutationResult:
    """One-sided permutation p-value: ``metric(perm)`` is the metric with B's rows reordered by perm.

    The null hypothesis is that the pairing of rows carries no information; larger values
    mean "more related". ``p = (1 + #{null ≥ observed}) / (1 + N)`` (Phipson & Smyth 2010).
    """
    null = null_scores(metric, n, n_permutations, seed)
    return PermutationResult(p_value=_p_value(observed, null), n_permutations=len(null),
                             null_mean=float(np.nanmean(null)))


def permutations(n: int, n_permutations: int, seed: int):
    """The seeded row permutations every null in latentlab draws (one stream per seed)."""
    rng = np.random.default_rng([seed, 104729])
    for _ in range(n_permutations):
        yield rng.permutation(n)


def null_scores(metric: Callable[[np.ndarray], float], n: int, n_permutations: int, seed: int = 0) -> np.ndarray:
    """``metric(perm)`` for ``n_permutations`` seeded permutations of n rows."""
    n_permutations = check_resamples(n_permutations, "n_permutations")
    return np.array([metric(p) for p in progress(permutations(n, n_permutations, seed), total=n_permutations,
                                                 desc="permutations", unit="perm")], dtype=np.float64)


def _p_value(observed: float, null: np.ndarray) -> float:
    # a tiny tolerance so that a null score equal to the observed one up to rounding counts
    exceed = int(np.sum(null >= observed - 1e-12 * max(1.0, abs(observed))))
    return (1 + exceed) / (1 + len(null))


@dataclass(frozen=True)
class Calibration(ResultMixin):
    """A score beside its chance value under shuffled pairing (Gröger, Wen & Brbić 2026).

    ``tau`` is the (1 − α) quantile of {observed} ∪ null (for a distance: the α quantile),
    ``calibrated`` = clamp((s − τ)/(s_best − τ), 0, 1) — 0 at or below chance, 1 at the best
    attainable score — and ``p_value`` the add-one permutation p-value.
    """

    value: float
    calibrated: float
    tau: float
    p_value: float
    null_mean: float
    n_permutations: int
    alpha: float
    method: str = "null calibration: rows of B shuffled, τ = (1 − α) quantile of observed ∪ null"


def calibrate_scores(observed: float, null, *, alpha: float = 0.05, best: float = 1.0,
                     higher_is_better: bool = True) -> Calibration:
    """Null-calibrate ``observed`` against the permutation scores ``null``.

    τ is the ⌈(1 − α)(K + 1)⌉-th smallest of the K + 1 scores (observed included), as in the
    reference ``calibrated_similarity.calibrate``. For a distance (``higher_is_better``
    False) everything is negated first: τ is then the α quantile and ``best`` the smallest
    attainable distance.
    """
    alpha = check_alpha(alpha)
    if len(null) < int(np.ceil(1.0 / alpha)) - 1:
        # ⌈(1 − α)(K + 1)⌉ = K + 1: τ is the largest of all scores, so nothing can exceed it
        warnings.warn(f"calibrate: {len(null)} shuffles are too few at alpha {alpha:g} (τ is the largest score and "
                      f"every calibrated value 0); use at least {int(np.ceil(1.0 / alpha)) - 1}",
                      LatentlabWarning, stacklevel=2)
    sign = 1.0 if higher_is_better else -1.0
    null = sign * np.asarray(null, dtype=np.float64)
    obs, top = sign * float(observed), sign * float(best)
    combined = np.sort(np.append(null, obs))
    k = len(null)
    tau = float(combined[min(max(int(np.ceil((1.0 - alpha) * (k + 1))) - 1, 0), k)])
    cal = float(np.clip((obs - tau) / max(top - tau, 1e-12), 0.0, 1.0))
    return Calibration(value=float(observed), calibrated=cal, tau=sign * tau, p_value=_p_value(obs, null),
                       null_mean=sign * float(np.nanmean(null)), n_permutations=k, alpha=alpha)


def calibrate(prepared, n: int, n_permutations: int, *, alpha: float = 0.05, best: float = 1.0,
              higher_is_better: bool = True, seed: int = 0) -> Calibration:
    """Null-calibrate a :class:`~latentlab.analyze.prep.Prepared` score of n paired rows."""
    null = null_scores(prepared.shuffled, n, n_permutations, seed)
    return calibrate_scores(prepared.value, null, alpha=alpha, best=best, higher_is_better=higher_is_better)


__all__ = [
    "bootstrap", "bootstrap_sums", "bootstrap_weighted", "bootstrap_counts", "permutation_test",
    "percentile_interval", "PermutationResult", "group_count", "group_labels", "resample_indices",
    "make_estimate", "check_resamples", "check_alpha", "Calibration", "calibrate", "calibrate_scores",
    "null_scores", "permutations", "scheme_name",
]
