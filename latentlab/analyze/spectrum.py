"""The spectrum of an embedding set: effective rank, participation ratio, anisotropy, hubness.

Covariance and centroid statistics are streamed (float64 moments, O(d²) memory); the
hubness statistics need the k-NN graph, computed in chunks by :mod:`latentlab.knn`.

Directions: ``effective_rank`` and ``participation_ratio`` count effective dimensions
(higher = variance spread over more directions); ``anisotropy`` is the mean pairwise
cosine (0 = isotropic, 1 = all rows point the same way); ``hubness_skew`` and ``hubs`` grow
with hubness (0 / none = no hubs).

References
----------
Roy & Vetterli, "The effective rank: a measure of effective dimensionality", EUSIPCO 2007.
Gao, Trautmann, Yu, Santhanam, Ryu, Shenoy & Ganguli, "A theory of multineuronal
dimensionality, dynamics and measurement", bioRxiv 2017 (participation ratio).
Ethayarajh, "How Contextual are Contextualized Word Representations?", EMNLP 2019
(anisotropy as the mean cosine between random pairs).
Radovanović, Nanopoulos & Ivanović, "Hubs in space", JMLR 11, 2010 (k-occurrence skewness,
zeros included, as in scikit-hubness; hubs: N_k > 2k).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from ..compute import Joint, StreamingMoments, UnitSums, accumulate, as_backend, l2_normalize
from ..errors import DegenerateInput
from ..io import as_embeddings, require_rows
from ..progress import progress
from ..results import Estimate, ResultMixin, estimate, interval_methods
from .. import stats
from . import neighbors
from .prep import GroupSums, add_group_products, check_positive, load, require_in_memory, require_variance

RTOL = 1e-12


@dataclass(frozen=True)
class SpectrumResult(ResultMixin):
    """Spectral and neighbourhood statistics of one embedding set (directions: module docstring)."""

    effective_rank: Estimate | None
    participation_ratio: Estimate | None
    explained_variance: list[float]
    anisotropy: Estimate | None
    hubness_skew: Estimate | None
    hubs: int | None
    k: int | None
    n: int
    dim: int
    notes: list[str] = field(default_factory=list)
    #: covariance eigenvalues, descending (for spectrum plots); not serialised
    eigenvalues: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def bootstrap(self) -> dict:
        """Statistic → its interval scheme (also each interval's ``method`` in JSON ``ci``)."""
        return interval_methods(self)

    def to_dict(self) -> dict:
        return {k: v for k, v in super().to_dict().items() if k != "eigenvalues"}


def spectral_stats(eigvals: np.ndarray) -> dict:
    """effective rank (exp entropy of normalised singular values) and participation ratio.

    ``eigvals`` are covariance eigenvalues λ; singular values of the centred data are
    √((n−1)λ), and the constant cancels in the normalisation p_i = σ_i / Σσ.
    """
    lam = np.clip(np.asarray(eigvals, dtype=np.float64), 0.0, None)
    lam = np.where(lam > RTOL * lam.max(), lam, 0.0)
    sv = np.sqrt(lam)
    p = sv[sv > 0] / sv.sum()
    return {"effective_rank": float(np.exp(-(p * np.log(p)).sum())),
            "participation_ratio": float(lam.sum() ** 2 / (lam**2).sum())}


def mean_pairwise_cosine(unit_sum: np.ndarray, unit_sq: float, n: int) -> float:
    """mean_{i≠j} cos(x_i, x_j) = (‖Σ x̂_i‖² − Σ‖x̂_i‖²) / (n(n−1)), from the centroid of unit rows."""
    return float((unit_sum @ unit_sum - unit_sq) / (n * (n - 1.0)))


def spectrum(a, *, top: int = 10, k: int = 10, hubness: bool = True, bootstrap: int | None = None,
             seed: int = 0, level: float = 0.95, device="auto", dtype="float32") -> SpectrumResult:
    """Spectrum statistics of embeddings ``a`` (covariance of the centred rows).

    Parameters
    ----------
    top : how many leading components' explained-variance ratios to list.
    k : neighbourhood size for hubness (clamped to n − 1 with a warning).
    hubness : compute the k-NN graph for ``hubness_skew`` and ``hubs`` (quadratic in n, chunked).
    bootstrap : number of resamples for 95 % intervals. Effective rank, participation ratio
        and anisotropy use *half-sampling* of stored moments (n/2 distinct rows per replicate,
        :func:`latentlab.stats.bootstrap_sums` with ``scheme="half"``): duplicated rows of a
        with-replacement resample lower every spectral statistic (280 → 208 for the effective
        rank of 500 CLIP captions), while half-samples have no duplicates and the same spread
        as the full sample. Hubness skew is recomputed on half-samples too, its k-NN graph
        rebuilt each time (a resampled gallery would make copies each other's
        neighbours; fixing the graph ignores its variability). Every interval is
        median-centred on its estimate.
    """
    backend = as_backend(device, dtype)
    ea = as_embeddings(a, "A")
    require_rows(ea, 2, "spectrum")
    top = check_positive(top, "top", integer=True, allow_none=False)
    bootstrap = check_positive(bootstrap, "bootstrap", integer=True)
    if bootstrap and hubness:  # the hubness intervals rebuild k-NN graphs of half-samples: all rows at once
        require_in_memory([ea], backend, "the hubness interval (`bootstrap` with `hubness`)",
                          hint="turn `hubness` off (the spectral intervals stream) or subsample the rows")
    rows = backend.block_rows(ea.dim, copies=4)
    # one pass on the current engine (compute.use_engine): covariance moments and unit-row sums
    mom, units = accumulate([ea.data], Joint.of(StreamingMoments, UnitSums), backend, rows=rows,
                            desc="spectrum").parts
    unit_sum, unit_sq = units.sums[0], float(units.sq[0])
    cov = mom.covariance().cpu().numpy()
    try:
        require_variance(float(np.trace(cov)), ea, "the spectrum")
    except DegenerateInput as exc:  # a constant set has no spectrum: null values, the reason in notes
        return SpectrumResult(effective_rank=None, participation_ratio=None, explained_variance=[], anisotropy=None,
                              hubness_skew=None, hubs=None, k=None, n=ea.n, dim=ea.dim, notes=[str(exc)])
    lam = np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None)
    values: dict = spectral_stats(lam)
    values["anisotropy"] = mean_pairwise_cosine(unit_sum.cpu().numpy(), unit_sq, ea.n)
    explained = (lam[:top] / lam.sum()).tolist()
    hub = occ = None
    if hubness:
        hub, occ = neighbors.hubness_stats(ea.data, k, backend)
        values["hubness_skew"] = hub["skew"]
    out = dict(values)
    if bootstrap:
        # products in float64 when a half-sample can be rank-deficient (float32 rounding would lift its zero
        # eigenvalues); with n/2 well above d the compute dtype, as the point estimate's moments
        gemm = torch.float64 if ea.n < 8 * ea.dim else backend.dtype
        # long blocks: fewer G·d² float64 adds
        out.update(_bootstrap_moments(ea, backend, 4 * rows, mom.mean(0), values, bootstrap, seed, level, gemm))
        if occ is not None:
            x = load(ea, backend, what="the hubness interval")
            # the k-NN graph is recomputed on each half-sample: resampling the k-occurrences
            # with the graph fixed ignores the graph's own variability (88 % coverage in simulation)
            reps = [neighbors.hubness_stats(x[torch.as_tensor(idx, device=x.device)], hub["k"], backend)[0]["skew"]
                    for idx in progress(stats.resample_indices(ea.n, bootstrap, seed, "half"), total=bootstrap,
                                        desc="hubness intervals", unit="resample")]
            out["hubness_skew"] = stats.make_estimate(values["hubness_skew"], reps, level,
                                                      f"{stats.HALF_SCHEME} (k-NN graph recomputed)")
    notes: list[str] = []
    return SpectrumResult(
        effective_rank=estimate(out["effective_rank"]), participation_ratio=estimate(out["participation_ratio"]),
        explained_variance=explained, anisotropy=estimate(out["anisotropy"]),
        hubness_skew=estimate(out.get("hubness_skew")),
        hubs=hub["hubs"] if hub else None, k=hub["k"] if hub else None, n=ea.n, dim=ea.dim,
        notes=notes, eigenvalues=lam)


def _bootstrap_moments(ea, backend, rows: int, mean: torch.Tensor, full: dict, n_resamples: int, seed: int,
                       level: float, gemm_dtype=torch.float64, budget: int | None = None) -> dict:
    """Half-sampling intervals of the spectral statistics from per-group sums of one streamed pass.

    A half-sample is a random half of the G row groups (``stats.bootstrap_sums``, scheme "half"):
    each group keeps Σ(x − x̄), Σ(x − x̄)(x − x̄)ᵀ, Σ x̂, Σ‖x̂‖², so memory is G·d² whatever n
    (G = n when the sums fit :data:`latentlab.stats.DEFAULT_SUMS_BUDGET`). Rows are centred on the
    full-data mean (``mean``, from the point pass) so S₂ − S₁S₁ᵀ/N does not cancel; the d × d
    products are formed in ``gemm_dtype`` and summed in float64. The pass (blocks of ``rows``) goes
    through :func:`latentlab.compute.accumulate`: on the Dask engine the workers form the sums.
    """
    d = int(mean.shape[0])
    per_group = 8 * (d * d + 2 * d + 2)
    groups = stats.group_count(ea.n, per_group, budget or stats.DEFAULT_SUMS_BUDGET)
    make = functools.partial(GroupSums, ea.n, groups, seed, functools.partial(_add_half_sums, gemm_dtype=gemm_dtype),
                             (mean.to(torch.float64).cpu(),), per_group)
    sums = accumulate([ea.data], make, backend, rows=rows, desc="spectrum bootstrap").sums

    def statistic(s: dict) -> dict:
        nn = float(s["n"])
        cov = (s["s2"] - np.outer(s["s1"], s["s1"]) / nn) / (nn - 1.0)
        out = spectral_stats(np.linalg.eigvalsh(cov))
        # pairs of two copies of one row (cos = 1) are excluded, as in the full-data statistic
        pairs = nn * nn - float(s["n^2"])
        out["anisotropy"] = float((s["su"] @ s["su"] - float(s["suu^2"])) / pairs)
        return out

    wanted = {k: full[k] for k in ("effective_rank", "participation_ratio", "anisotropy")}
    return stats.bootstrap_sums({k: v.cpu().numpy() for k, v in sums.items()}, statistic,
                                n_resamples=n_resamples, seed=seed, level=level, value=wanted,
                                squared=("n", "suu"), scheme="half")


def _add_half_sums(acc: GroupSums, blocks, label, *, gemm_dtype) -> None:
    """One block's per-group Σ(x − x̄), Σ x̂, Σ‖x̂‖², Σ(x − x̄)(x − x̄)ᵀ into ``acc.sums``."""
    (xb,), (mean,), sums = blocks, acc.shift, acc.sums
    f64 = dict(dtype=torch.float64, device=xb.device)
    d = xb.shape[1]
    if not sums:
        sums.update({"n": torch.zeros(acc.groups, **f64), "s1": torch.zeros(acc.groups, d, **f64),
                     "su": torch.zeros(acc.groups, d, **f64), "suu": torch.zeros(acc.groups, **f64),
                     "s2": torch.zeros(acc.groups, d, d, **f64)})
    x = xb.to(torch.float64)
    xc = x - mean.to(x.device)
    u = l2_normalize(x)
    sums["n"].index_add_(0, label, torch.ones(x.shape[0], **f64))
    sums["s1"].index_add_(0, label, xc)
    sums["su"].index_add_(0, label, u)
    sums["suu"].index_add_(0, label, (u * u).sum(1))
    xg = xc.to(gemm_dtype)
    add_group_products([(sums["s2"], xg, xg)], label, acc.one_per_row)


__all__ = ["spectrum", "SpectrumResult", "spectral_stats", "mean_pairwise_cosine"]
