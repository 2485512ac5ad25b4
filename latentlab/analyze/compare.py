"""`latentlab similarity`: any registered paired measure, each score beside its chance value.

The measures and their properties live in :mod:`latentlab.analyze.registry`; this module
loads the two sets once, evaluates the requested measures, and — on request — their
null-calibrated scores (one permutation null per measure, from what each measure kept:
moments, k-NN lists, dissimilarity matrices), permutation p-values and intervals.

Intervals: linear and debiased CKA resample stored moments (:func:`linear_cka_bootstrap`);
every other measure is recomputed on half-samples (n/2 distinct rows, so a row is never its
own copy's neighbour; :data:`latentlab.stats.HALF_SCHEME`), median-centred on the estimate.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..compute import as_backend
from ..errors import InputError
from ..io import require_nonzero_rows
from ..results import Estimate, ResultMixin, estimate
from .. import stats
from . import registry
from .prep import check_positive, load, pair, require_in_memory, sample_rows

DEFAULT_METRICS = ("linear_cka", "debiased_cka", "mutual_knn", "cknna", "svcca", "rsa", "distance_correlation")


@dataclass(frozen=True)
class SimilarityScore(ResultMixin):
    """One measure of A against B: its value, what chance gives, and what it is invariant to."""

    metric: str
    value: Estimate | None
    direction: str
    range: list[float]
    invariances: list[str]
    params: dict
    calibration: stats.Calibration | None = None
    p_value: float | None = None
    bootstrap: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SimilarityResult(ResultMixin):
    """Several paired measures of the same two sets."""

    n: int
    dim_a: int
    dim_b: int
    scores: list[SimilarityScore]
    notes: list[str] = field(default_factory=list)

    def score(self, metric: str) -> SimilarityScore:
        return next(s for s in self.scores if s.metric == metric)


def check_metrics(metrics) -> list[registry.Measure]:
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise InputError("metrics: name at least one measure")
    return [registry.get(n) for n in names]


def measure_params(measure: registry.Measure, params: dict | None, shared: dict | None = None) -> dict:
    """The measure's own parameters: ``shared`` (e.g. k) where it takes them, then ``params[name]``."""
    out = {k: v for k, v in (shared or {}).items() if k in measure.params and v is not None}
    out.update((params or {}).get(measure.name, {}))
    return out


def constant_reason(x: torch.Tensor, name: str) -> str | None:
    """Why a measure is undefined for ``x`` (every column constant), or None."""
    if x.shape[0] < 2 or float((x - x[0]).abs().max()) == 0.0:
        return constant_message(name)
    return None


def constant_message(name: str) -> str:
    """The note of a constant input (every row the same), wherever it was found."""
    return f"{name}: every row is the same (zero variance); similarity is undefined"


def interval(measure: registry.Measure, x, y, params: dict, value: float, n_resamples: int, *,
             seed: int, level: float, backend) -> Estimate:
    """95 % interval of one measure: moments for linear CKA, half-samples for the rest."""
    if measure.name in ("linear_cka", "debiased_cka"):
        from .cka import linear_cka_bootstrap
        return linear_cka_bootstrap(x, y, n_resamples, debiased=params.get("debiased", measure.params["debiased"]),
                                    seed=seed, level=level, value=value)
    return stats.bootstrap(lambda u, v: measure.prepare(u, v, backend=backend, **params).value, x, y,
                           n_resamples=n_resamples, seed=seed, level=level, value=value, scheme="half")


def similarity(a, b, metrics=DEFAULT_METRICS, *, params: dict | None = None, k: int | None = None,
               calibrate: int | None = None, alpha: float = 0.05, permutations: int | None = None,
               bootstrap: int | None = None, sample: int | None = None, seed: int = 0, level: float = 0.95,
               device="auto", dtype="float32") -> SimilarityResult:
    """Paired similarity of A and B under every measure in ``metrics`` (registry names).

    Parameters
    ----------
    params : per-measure parameters, e.g. ``{"rsa": {"method": "pearson"}, "shape": {"alpha": 0.5}}``.
    k : neighbourhood size for every k-NN measure that takes one.
    calibrate : row shufflings of B for null-calibrated scores (τ at level ``alpha``).
    permutations : row shufflings of B for one-sided p-values.
    bootstrap : resamples for 95 % intervals (scheme per measure, module docstring).
    sample : compute every measure on this many rows drawn without replacement (seeded) —
        for the quadratic measures (RSA, distance correlation, k-NN scores) on large n.

    Degenerate inputs (a constant set) give ``value=None`` with the reason in ``notes``.
    """
    measures = check_metrics(metrics)
    backend = as_backend(device, dtype)
    ea, eb = pair(a, b, "similarity", min_rows=4)
    sample = check_positive(sample, "sample", integer=True)
    # every measure here holds the (sampled) rows — resampling recomputes on them — so refuse before any
    # row is read, not at the load; the streamed forms of linear CKA and SVCCA / PWCCA are other commands
    require_in_memory([ea, eb], backend, "similarity", rows=None if sample is None else min(sample, ea.n),
                      hint="pass `sample` N to compute every measure on N random rows (linear CKA with its "
                           "intervals and nulls streams in latentlab cka, SVCCA / PWCCA in latentlab overlap)")
    for m in measures:  # the k-NN family ranks neighbours by cosine: the zero-row rule (io) applies
        if m.invariant_to() == registry._COSINE_KNN:
            require_nonzero_rows(ea, m.name), require_nonzero_rows(eb, m.name)
    calibrate = check_positive(calibrate, "calibrate", integer=True)
    permutations = check_positive(permutations, "permutations", integer=True)
    bootstrap = check_positive(bootstrap, "bootstrap", integer=True)
    if calibrate:
        alpha = stats.check_alpha(alpha)
    for name in params or {}:
        registry.get(name)
    rows, notes_all = sample_rows(ea.n, sample, seed, min_rows=4), []
    if rows is not None:
        notes_all.append(f"every measure on {sample} of {ea.n} rows (seeded sample without replacement)")
    x, y = load(ea, backend, rows), load(eb, backend, rows)
    n = x.shape[0]
    reason = constant_reason(x, ea.name) or constant_reason(y, eb.name)
    scores = []
    for m in measures:
        p = measure_params(m, params, {"k": k})
        base = dict(metric=m.name, direction=m.direction, range=list(m.range),
                    invariances=sorted(m.invariant_to(p)), params={**m.params, **p})
        if reason:
            scores.append(SimilarityScore(value=None, notes=[reason], **base))
            continue
        prep = m.prepare(x, y, backend=backend, **p)
        notes = list(prep.notes)
        value: float | Estimate | None = prep.value
        cal = pv = scheme = None
        if prep.value is not None:
            if calibrate:
                cal = stats.calibrate(prep, n, calibrate, alpha=alpha, best=m.best,
                                      higher_is_better=m.higher_is_better, seed=seed)
            if permutations:
                sign = 1.0 if m.higher_is_better else -1.0
                pv = stats.permutation_test(lambda q: sign * prep.shuffled(q), n, observed=sign * prep.value,
                                            n_permutations=permutations, seed=seed).p_value
            if bootstrap:
                value = interval(m, x, y, p, prep.value, bootstrap, seed=seed, level=level, backend=backend)
                scheme = value.method
        scores.append(SimilarityScore(value=estimate(value), calibration=cal, p_value=pv, bootstrap=scheme, notes=notes, **base))
    return SimilarityResult(n=n, dim_a=ea.dim, dim_b=eb.dim, scores=scores, notes=notes_all)


__all__ = ["similarity", "SimilarityResult", "SimilarityScore", "DEFAULT_METRICS", "interval", "check_metrics",
           "measure_params", "constant_reason", "constant_message"]
