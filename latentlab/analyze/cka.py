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
from .prep import SIMILARITY, Prepared, check_positive, load, pair, require_variance

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
    bootstrap : number of percentile-bootstrap resamples (rows resampled, pairs together);
        the interval is median-centred on the estimate (resampled duplicates inflate CKA).
    permutations : number of row shufflings of B for a one-sided p-value (null: unrelated pairing).
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
            value = linear_cka_streamed(ea, eb, debiased=debiased, backend=backend)
        except DegenerateInput as exc:  # a constant input: CKA is undefined, not an error
            return CKAResult(cka=None, kernel=kernel, debiased=debiased, n=ea.n, dim_a=ea.dim, dim_b=eb.dim,
                             notes=[str(exc)])
        x = y = None
        if bootstrap or permutations or calibrate:
            x, y = load(ea, backend), load(eb, backend)
        metric = lambda u, v: linear_cka(u, v, debiased=debiased)  # noqa: E731
    else:
        sigma_frac = check_positive(sigma_frac, "sigma_frac")
        rows = None
        if sample is not None:
            sample = check_positive(sample, "sample", integer=True)
            if sample < ea.n:
                rows = np.sort(np.random.default_rng(seed).choice(ea.n, sample, replace=False))
                notes.append(f"RBF CKA on {sample} of {ea.n} rows (seeded sample without replacement)")
        count = ea.n if rows is None else len(rows)
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
        if kernel == "linear":
            est = linear_cka_bootstrap(x, y, bootstrap, debiased=debiased, seed=seed, level=level, value=value)
        else:
            est = _generic_bootstrap(metric, x, y, bootstrap, seed, level, value)
        boot_scheme = est.method
    if permutations or calibrate:
        prep = (prepare_linear_cka(x, y, debiased=debiased) if kernel == "linear"
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
    mom, ext = _stream([ea, eb], backend, debiased)
    require_variance(float(torch.trace(mom.centered(0))), ea, "CKA")
    require_variance(float(torch.trace(mom.centered(1))), eb, "CKA")
    return _ratio(_hsic_linear(mom, ext, 0, 1, debiased), _hsic_linear(mom, ext, 0, 0, debiased),
                  _hsic_linear(mom, ext, 1, 1, debiased))


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


def linear_cka_bootstrap(x, y, n_resamples: int, *, debiased: bool = False, seed: int = 0, level: float = 0.95,
                         value: float | None = None, budget: int = stats.DEFAULT_SUMS_BUDGET) -> Estimate:
    """Bootstrap interval of linear CKA (biased or debiased) from resampled moments.

    Every term of the feature-space CKA — and of Song et al.'s unbiased HSIC — is a function
    of sums over rows (Σx, Σxxᵀ, Σxyᵀ, and for the debiased form Σa, Σab, Σa·y with
    a = ‖x − s‖², s a fixed shift), so a replicate is a weighted sum of stored per-group sums
    (:func:`latentlab.stats.bootstrap_sums`): no recomputation over rows. With one group per
    row it equals recomputing CKA on the resampled rows exactly.

    The interval is median-centred on ``value`` (:func:`latentlab.stats.make_estimate`):
    a resample's duplicated rows inflate CKA, which the centring removes.
    """
    x, y = _f64(x), _f64(y)
    n, dx, dy = x.shape[0], x.shape[1], y.shape[1]
    per_group = 8 * (dx * dx + dy * dy + dx * dy + dx + dy + 1) + (8 * (2 * (dx + dy) + 5) if debiased else 0)
    groups = stats.group_count(n, per_group, budget)
    label = torch.as_tensor(stats.group_labels(n, groups, seed), device=x.device)
    # centre on the full-data mean first so the resampled S₂ − S₁S₁ᵀ/N does not cancel
    xc, yc = x - x.mean(0), y - y.mean(0)
    sums = _group_sums(xc, yc, label, groups, debiased)

    def statistic(s: dict) -> float:
        return _cka_from_sums(s, debiased)

    if value is None:
        value = linear_cka(x, y, debiased=debiased)
    arrays = {k: v.cpu().numpy() for k, v in sums.items()}
    return stats.bootstrap_sums(arrays, statistic, n_resamples=n_resamples, seed=seed, level=level, value=value)


def _group_sums(xc: torch.Tensor, yc: torch.Tensor, label: torch.Tensor, groups: int, debiased: bool) -> dict:
    """Per-group sums of every per-row quantity the (debiased) linear CKA is built from."""
    n, f64 = xc.shape[0], dict(dtype=torch.float64, device=xc.device)  # sums stay on the rows' device
    out = {"n": torch.zeros(groups, **f64).index_add_(0, label, torch.ones(n, **f64)),
           "sx": torch.zeros(groups, xc.shape[1], **f64).index_add_(0, label, xc),
           "sy": torch.zeros(groups, yc.shape[1], **f64).index_add_(0, label, yc)}
    if debiased:
        a, b = (xc * xc).sum(1), (yc * yc).sum(1)
        for name, v in (("sa", a), ("sb", b), ("saa", a * a), ("sbb", b * b), ("sab", a * b)):
            out[name] = torch.zeros(groups, **f64).index_add_(0, label, v)
        for name, w, c in (("a_x", a, xc), ("a_y", a, yc), ("b_x", b, xc), ("b_y", b, yc)):
            out[name] = torch.zeros(groups, c.shape[1], **f64).index_add_(0, label, w[:, None] * c)
    if groups == n:  # one row per group: outer products, ordered by the label permutation
        order = torch.argsort(label)
        xo, yo = xc[order], yc[order]
        out["xx"], out["yy"], out["xy"] = (torch.einsum("ni,nj->nij", p, q) for p, q in ((xo, xo), (yo, yo), (xo, yo)))
    else:
        out["xx"], out["yy"], out["xy"] = (torch.zeros(groups, p, q, **f64) for p, q in
                                           ((xc.shape[1],) * 2, (yc.shape[1],) * 2, (xc.shape[1], yc.shape[1])))
        for g in range(groups):
            m = label == g
            xg, yg = xc[m], yc[m]
            out["xx"][g], out["yy"][g], out["xy"][g] = xg.T @ xg, yg.T @ yg, xg.T @ yg
    return out


def _cka_from_sums(s: dict, debiased: bool) -> float:
    """CKA from summed moments (around a fixed shift); the debiased form per :func:`_hsic_linear`."""
    nn = float(s["n"])
    raw = {("x", "x"): s["xx"], ("y", "y"): s["yy"], ("x", "y"): s["xy"]}
    cen = {k: v - np.outer(s["s" + k[0]], s["s" + k[1]]) / nn for k, v in raw.items()}
    hsic = {k: float((c * c).sum()) for k, c in cen.items()}
    if debiased:
        sq = {"x": "a", "y": "b"}  # a = ‖x − s‖², b = ‖y − s‖²
        tr = {"x": float(np.trace(cen[("x", "x")])), "y": float(np.trace(cen[("y", "y")]))}
        for (i, j), value in list(hsic.items()):
            ai, aj = sq[i], sq[j]
            saa = s["s" + "".join(sorted(ai + aj))]  # "saa", "sab" or "sbb"
            rows = kernels.centred_sqnorm_products(nn, float(saa), float(s[f"s{ai}"]), float(s[f"s{aj}"]),
                                                   s[f"{ai}_{j}"], s[f"{aj}_{i}"], s[f"s{i}"], s[f"s{j}"], raw[(i, j)])
            hsic[(i, j)] = _hsic_from_parts(value, rows, tr[i], tr[j], nn, True)
    return _ratio(hsic[("x", "y")], hsic[("x", "x")], hsic[("y", "y")])


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
def _generic_bootstrap(metric, x, y, n_resamples, seed, level, value) -> Estimate:
    reps = []
    for idx in stats.resample_indices(x.shape[0], n_resamples, seed):
        t = torch.as_tensor(idx, device=x.device)
        reps.append(metric(x[t], y[t]))
    return stats.make_estimate(value, reps, level, f"{stats.ROW_SCHEME}, paired (recomputed)")


def prepare_linear_cka(x, y, *, debiased: bool = False, backend=None) -> Prepared:
    """Linear CKA of in-memory x, y ready for shuffled pairing.

    Shuffling B's rows leaves both self-HSICs and the means unchanged: only the cross term
    ‖XcᵀYc[π]‖²_F (and, debiased, Σ_r ‖x̄_r‖²‖ȳ_π(r)‖²) moves, via :func:`_hsic_from_parts`.
    """
    xc, yc = _f64(x), _f64(y)
    xc, yc = xc - xc.mean(0), yc - yc.mean(0)
    n = xc.shape[0]
    ax, ay = (xc * xc).sum(1), (yc * yc).sum(1)
    tx, ty = float(ax.sum()), float(ay.sum())
    hx = _hsic_from_parts(float(((xc.T @ xc) ** 2).sum()), float(ax @ ax), tx, tx, n, debiased)
    hy = _hsic_from_parts(float(((yc.T @ yc) ** 2).sum()), float(ay @ ay), ty, ty, n, debiased)

    def score(perm) -> float:
        p = torch.as_tensor(perm, device=yc.device)
        hxy = _hsic_from_parts(float(((xc.T @ yc[p]) ** 2).sum()), float(ax @ ay[p]), tx, ty, n, debiased)
        return _ratio(hxy, hx, hy)

    return Prepared(score(np.arange(n)), score)


def prepare_rbf_cka(x, y, *, sigma_frac: float = 0.5, debiased: bool = False, backend=None) -> Prepared:
    """RBF CKA ready for shuffled pairing (each null score recomputes the chunked kernels)."""
    x, y = _as_t(x), _as_t(y)

    def score(perm) -> float:
        return rbf_cka(x, y[torch.as_tensor(perm, device=y.device)], sigma_frac=sigma_frac, debiased=debiased)

    return Prepared(score(np.arange(x.shape[0])), score)


__all__ = ["cka", "CKAResult", "linear_cka", "rbf_cka", "linear_cka_bootstrap",
           "prepare_linear_cka", "prepare_rbf_cka"]
