"""Centred kernel alignment (CKA): linear (streamed, feature-space), RBF (chunked), debiased.

:mod:`latentlab.analyze.matrix` builds layer × layer matrices on the same pieces.

Linear CKA uses the feature-space identity ‖YcᵀXc‖²_F = ⟨vec(K̄), vec(L̄)⟩, so it needs only
the float64 streaming (cross-)moments of the compute core: memory O(d²) whatever n. The RBF
kernel is genuinely quadratic; it is computed in row blocks (the n × n kernels are never
held) and refused above ``max_n`` rows unless a seeded row sample is requested.

CKA is a *similarity* in [0, 1] (1 = identical up to rotation and isotropic scaling).

References
----------
Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited",
ICML 2019 (CKA; RBF bandwidth σ = fraction of the median distance, their reference code).
Song, Smola, Gretton, Bedo & Borgwardt, "Feature Selection via Dependence Maximization",
JMLR 13, 2012 (the unbiased HSIC estimator, eq. 5).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..compute import Backend, Joint, StreamingMoments, accumulate, as_backend
from ..errors import DegenerateInput, InputError
from ..io import as_embeddings, require_paired, require_rows
from ..results import Estimate, ResultMixin, estimate
from .. import stats
from . import kernels
from .prep import SIMILARITY, Prepared, check_positive, fits_in_memory, load, pair, require_in_memory, require_variance

KERNELS = ("linear", "rbf")


@dataclass(frozen=True)
class CKAResult(ResultMixin):
    """CKA of two row-paired representations; a similarity in [0, 1]."""

    cka: Estimate | None
    kernel: str
    debiased: bool
    n: int
    dim_a: int
    dim_b: int
    sigma_frac: float | None = None
    p_value: float | None = None
    n_permutations: int | None = None
    calibration: stats.Calibration | None = None
    bootstrap: str | None = None
    permutation: str | None = None
    kind: str = SIMILARITY
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- public API
def cka(a, b, *, kernel: str = "linear", debiased: bool = False, sigma_frac: float = 0.5,
        max_n: int = 10000, sample: int | None = None, bootstrap: int | None = None,
        permutations: int | None = None, calibrate: int | None = None, alpha: float = 0.05,
        seed: int = 0, level: float = 0.95, device="auto", dtype="float32") -> CKAResult:
    """CKA between representations ``a`` and ``b`` of the same n items (row-paired).

    Parameters
    ----------
    kernel : ``"linear"`` (streamed, exact for any n) or ``"rbf"`` (Gaussian kernel with
        σ = ``sigma_frac`` · √median(squared distances), Kornblith et al.'s convention: the
        median is over the full n × n matrix of squared Euclidean distances, zeros included).
    debiased : use the unbiased HSIC estimator of Song et al. (2012) in numerator and
        denominators (feature-space form for the linear kernel; needs n ≥ 4).
    max_n : the RBF kernel refuses more rows than this unless ``sample`` is given.
    sample : RBF only: compute on this many rows drawn without replacement (seeded).
    bootstrap : number of resamples for a percentile interval (pairs kept together), median-centred
        on the estimate (resampled duplicates inflate CKA). Linear: the row bootstrap, one streamed
        pass of per-group moment sums (:mod:`~latentlab.analyze.cka_resample`), any n. RBF:
        half-samples (n/2 distinct rows) recomputed, as ``similarity`` does: a duplicated row would
        also shrink the median-distance bandwidth.
    permutations : number of row shufflings of B for a one-sided p-value (null: unrelated pairing).
        Linear: in memory when both inputs fit :data:`~latentlab.analyze.prep.IN_MEMORY_BYTES`, else
        one streamed pass per shuffle (B's rows read in the permuted order). RBF needs every row:
        above the budget it is refused before reading, pointing to ``sample``.
    calibrate : number of row shufflings of B for the null-calibrated score
        (:func:`latentlab.stats.calibrate`; Gröger, Wen & Brbić 2026), at level ``alpha``.
        Linear CKA's null needs only the cross term: the self-HSICs are computed once.

    Returns
    -------
    CKAResult; ``cka`` is always an :class:`~latentlab.results.Estimate` (its interval set when
    ``bootstrap`` is given), and ``None`` (the reason in ``notes``) when an input is constant.
    """
    if kernel not in KERNELS:
        raise InputError(f"kernel {kernel!r}: expected one of {', '.join(KERNELS)}")
    backend = as_backend(device, dtype)
    ea, eb = pair(a, b, "CKA", min_rows=4 if debiased else 2)
    bootstrap = check_positive(bootstrap, "bootstrap", integer=True)
    permutations = check_positive(permutations, "permutations", integer=True)
    calibrate = check_positive(calibrate, "calibrate", integer=True)
    if calibrate:
        alpha = stats.check_alpha(alpha)
    notes: list[str] = []
    if kernel == "linear":
        if sample is not None:
            raise InputError("sample applies to the RBF kernel only (linear CKA is exact and streamed for any n)")
        try:
            value, mom, ext = _linear_pass(ea, eb, debiased=debiased, backend=backend)
        except DegenerateInput as exc:  # a constant input: CKA is undefined, not an error
            return CKAResult(cka=None, kernel=kernel, debiased=debiased, n=ea.n, dim_a=ea.dim, dim_b=eb.dim,
                             notes=[str(exc)])
        x = y = None
    else:
        sigma_frac = check_positive(sigma_frac, "sigma_frac")
        rows = None
        if sample is not None:
            sample = check_positive(sample, "sample", integer=True)
            if sample < ea.n:
                rows = np.sort(np.random.default_rng(seed).choice(ea.n, sample, replace=False))
                notes.append(f"RBF CKA on {sample} of {ea.n} rows (seeded sample without replacement)")
        count = ea.n if rows is None else len(rows)
        require_in_memory([ea, eb], backend, "RBF CKA", rows=count)  # before any row is read
        if count > max_n:
            raise InputError(f"RBF CKA holds n × n kernel blocks; {count} rows exceed `max_n` {max_n}: "
                             "pass `sample` N or raise `max_n`")
        x, y = load(ea, backend, rows), load(eb, backend, rows)
        try:
            _check_rbf_variance(x, ea), _check_rbf_variance(y, eb)
        except DegenerateInput as exc:
            return CKAResult(cka=None, kernel=kernel, debiased=debiased, n=ea.n, dim_a=ea.dim, dim_b=eb.dim,
                             sigma_frac=sigma_frac, notes=[str(exc)])
        metric = lambda u, v: rbf_cka(u, v, sigma_frac=sigma_frac, debiased=debiased)  # noqa: E731
        value = metric(x, y)
    est, p_value, boot_scheme, perm_scheme, calibration = value, None, None, None, None
    if bootstrap:
        # Duplicated rows in a resample inflate CKA (fewer distinct items, as at small n); the
        # replicates are median-centred on the estimate (stats.make_estimate): the interval gives the spread.
        if kernel == "linear":  # one streamed pass of per-group sums (cka_resample), any n
            from .cka_resample import linear_cka_bootstrap_streamed
            est = linear_cka_bootstrap_streamed(ea, eb, (mom.mean(0), mom.mean(1)), bootstrap, backend=backend,
                                                debiased=debiased, seed=seed, level=level, value=value)
        else:
            # half-samples, as `similarity` does for every recomputed measure: a duplicated row
            # adds zero distances, which shrink the median-distance bandwidth and inflate CKA
            est = stats.bootstrap(metric, x, y, n_resamples=bootstrap, seed=seed, level=level, value=value,
                                  scheme="half")
        boot_scheme = est.method
    if permutations or calibrate:
        prep = (_linear_null(ea, eb, value, mom, ext, debiased, backend) if kernel == "linear"
                else Prepared(value, lambda perm: metric(x, y[torch.as_tensor(perm, device=y.device)])))
        if permutations:
            perm = stats.permutation_test(prep.shuffled, ea.n, observed=value, n_permutations=permutations, seed=seed)
            p_value, perm_scheme = perm.p_value, perm.method
        if calibrate:
            calibration = stats.calibrate(prep, ea.n, calibrate, alpha=alpha, seed=seed)
    return CKAResult(cka=estimate(est), kernel=kernel, debiased=debiased, n=ea.n, dim_a=ea.dim, dim_b=eb.dim,
                     sigma_frac=sigma_frac if kernel == "rbf" else None, p_value=p_value,
                     n_permutations=permutations, calibration=calibration, bootstrap=boot_scheme,
                     permutation=perm_scheme, notes=notes)


# --------------------------------------------------------------------------- linear kernel
def linear_cka_streamed(ea, eb, *, debiased: bool, backend: Backend) -> float:
    """Linear CKA of two (lazy) row sources in one streaming pass; O(d²) memory."""
    return _linear_pass(ea, eb, debiased=debiased, backend=backend)[0]


def _linear_pass(ea, eb, *, debiased: bool, backend: Backend):
    """(CKA, moments, row-norm moments) of one streamed pass: the moments serve the resampling too."""
    mom, ext = _stream([ea, eb], backend, debiased)
    require_variance(float(torch.trace(mom.centered(0))), ea, "CKA")
    require_variance(float(torch.trace(mom.centered(1))), eb, "CKA")
    value = _ratio(_hsic_linear(mom, ext, 0, 1, debiased), _hsic_linear(mom, ext, 0, 0, debiased),
                   _hsic_linear(mom, ext, 1, 1, debiased))
    return value, mom, ext


def _linear_null(ea, eb, value, mom, ext, debiased: bool, backend: Backend) -> Prepared:
    """Linear CKA ready for shuffled pairing: in memory when both inputs fit the budget (one
    product per permutation), else one streamed pass per permutation (cka_resample)."""
    from .cka_resample import prepare_linear_cka, prepare_linear_cka_streamed
    if not fits_in_memory([ea, eb], backend.float64()):  # prepare_linear_cka holds float64 copies
        return prepare_linear_cka_streamed(ea, eb, value, mom, ext, backend=backend, debiased=debiased)
    return prepare_linear_cka(load(ea, backend), load(eb, backend), debiased=debiased)


def linear_cka(x, y, *, debiased: bool = False) -> float:
    """Linear CKA of two in-memory matrices (numpy or torch), feature-space form, float64."""
    x, y = _f64(x), _f64(y)
    mom = StreamingMoments().update(x, y)
    ext = kernels.RowNormMoments().update(x, y) if debiased else None
    return _ratio(_hsic_linear(mom, ext, 0, 1, debiased), _hsic_linear(mom, ext, 0, 0, debiased),
                  _hsic_linear(mom, ext, 1, 1, debiased))


def _stream(embs, backend: Backend, debiased: bool):
    width = sum(e.dim for e in embs)
    # Long blocks make each d × d product one efficient GEMM (a block and its centred copy
    # are held, ~2 × block_bytes; float64 copies too when debiased).
    rows = backend.block_rows(width, copies=1 if not debiased else 2)
    # on the current engine (compute.use_engine): local blocks, or Dask workers' partial sums merged
    make = Joint.of(StreamingMoments, kernels.RowNormMoments) if debiased else Joint.of(StreamingMoments)
    acc = accumulate([e.data for e in embs], make, backend, rows=rows, desc="CKA")
    return acc.parts[0], (acc.parts[1] if debiased else None)


def _hsic_linear(mom: StreamingMoments, ext, i: int, j: int, debiased: bool) -> float:
    """‖C_ijᵀ‖²_F (biased), or Kornblith's feature-space form of Song et al.'s unbiased HSIC.

    Unbiased (up to the common factor 1/(n(n−3)), which cancels in CKA):
    ‖XcᵀYc‖² − n/(n−2) Σ_r ‖x̄_r‖²‖ȳ_r‖² + ‖Xc‖²_F ‖Yc‖²_F / ((n−1)(n−2)).
    """
    c = mom.centered(i, j)
    if not debiased:
        return float((c * c).sum())
    rows = ext.sqnorm_products(i, j, c)
    tr_i, tr_j = float(torch.trace(mom.centered(i))), float(torch.trace(mom.centered(j)))
    return _hsic_from_parts(float((c * c).sum()), rows, tr_i, tr_j, mom.n, True)


def _hsic_from_parts(frob: float, rows: float, tr_i: float, tr_j: float, n: int, debiased: bool) -> float:
    """The one home of the feature-space HSIC: ‖C_ij‖²_F, or Song et al.'s unbiased form
    ‖C_ij‖²_F − n/(n−2) Σ_r ‖x̄_r‖²‖ȳ_r‖² + tr C_ii tr C_jj / ((n−1)(n−2)) (times n(n−3))."""
    if not debiased:
        return frob
    return frob - n / (n - 2.0) * rows + tr_i * tr_j / ((n - 1.0) * (n - 2.0))


def _ratio(xy: float, xx: float, yy: float) -> float:
    if not (xx > 0 and yy > 0):
        return float("nan")  # the debiased self-HSIC can be ≤ 0 on tiny samples
    return float(xy / np.sqrt(xx * yy))


def _f64(x) -> torch.Tensor:
    return x.to(torch.float64) if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=torch.float64)


# --------------------------------------------------------------------------- RBF kernel
def rbf_cka(x, y, *, sigma_frac: float = 0.5, debiased: bool = False, block: int = 2048) -> float:
    """RBF-kernel CKA in row blocks (Kornblith et al.'s bandwidth convention)."""
    sigma_frac = check_positive(sigma_frac, "sigma_frac", allow_none=False)  # every RBF path (cka, matrix, similarity)
    x, y = _as_t(x), _as_t(y)
    sx = kernels.median_sq_distance(x, block=block)
    sy = kernels.median_sq_distance(y, block=block)
    acc = kernels.rbf_pair_sums(x, y, 2.0 * sigma_frac**2 * sx, 2.0 * sigma_frac**2 * sy, block=block)
    return _ratio(*(kernels.hsic_from_sums(acc, p, q, debiased) for p, q in (("k", "l"), ("k", "k"), ("l", "l"))))


def _as_t(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def _check_rbf_variance(x: torch.Tensor, emb) -> None:
    require_variance(float((x - x.mean(0)).abs().max()) if x.shape[0] else 0.0, emb, "CKA")


# --------------------------------------------------------------------------- resampling
def prepare_rbf_cka(x, y, *, sigma_frac: float = 0.5, debiased: bool = False, backend=None) -> Prepared:
    """RBF CKA ready for shuffled pairing (each null score recomputes the chunked kernels)."""
    x, y = _as_t(x), _as_t(y)

    def score(perm) -> float:
        return rbf_cka(x, y[torch.as_tensor(perm, device=y.device)], sigma_frac=sigma_frac, debiased=debiased)

    return Prepared(score(np.arange(x.shape[0])), score)


_RESAMPLING = ("linear_cka_bootstrap", "linear_cka_bootstrap_streamed", "prepare_linear_cka",
               "prepare_linear_cka_streamed")


def __getattr__(name):
    # resampling lives in cka_resample, which builds on this module's helpers: re-exported lazily,
    # so either module can be imported first
    if name in _RESAMPLING:
        from . import cka_resample
        return getattr(cka_resample, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["cka", "CKAResult", "linear_cka", "rbf_cka", "linear_cka_bootstrap",
           "prepare_linear_cka", "prepare_rbf_cka"]
