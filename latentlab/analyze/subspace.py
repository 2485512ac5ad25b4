"""Subspace overlap of two embedding sets: principal angles, SVCCA, PWCCA, Procrustes, mutual k-NN.

Everything except mutual k-NN is a function of the centred (cross-)covariances, which are
streamed in float64 (O(d²) memory). Every inverse square root of a covariance goes through
an eigendecomposition truncated at ``RTOL`` × the largest eigenvalue, so dead units and
n < d (rank-deficient covariances) are handled without a plain inverse.

Similarity or distance: ``overlap``, ``svcca``, ``pwcca``, ``mutual_knn`` are similarities
(1 = identical); ``principal_angles`` (radians), ``grassmann_distance`` and
``procrustes_distance`` (radians, in [0, π/2]) are distances (0 = identical).

References
----------
Björck & Golub, "Numerical methods for computing angles between linear subspaces", Math.
Comp. 27, 1973; Knyazev & Argentati, SIAM J. Sci. Comput. 23, 2002 (the sine/cosine
combination scipy uses). Raghu, Gilmer, Yosinski & Sohl-Dickstein, "SVCCA", NeurIPS 2017.
Morcos, Raghu & Bengio, "Insights on representational similarity in neural networks with
canonical correlation" (PWCCA), NeurIPS 2018. Williams, Kunz, Kornblith & Linderman,
"Generalized Shape Metrics on Neural Representations", NeurIPS 2021 (angular Procrustes).
Huh et al., "The Platonic Representation Hypothesis", ICML 2024 (mutual k-NN).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..compute import as_backend, stream_moments
from ..errors import InputError
from ..io import as_embeddings, require_rows
from ..results import Estimate, ResultMixin
from .. import stats
from . import neighbors
from .prep import check_positive, load, require_variance, warn_cca_degenerate

RTOL = 1e-10


@dataclass(frozen=True)
class OverlapResult(ResultMixin):
    """Subspace and representational overlap of A and B (see module docstring for directions)."""

    principal_angles: list[float] | None
    overlap: float | Estimate | None
    grassmann_distance: float | Estimate | None
    svcca: float | Estimate | None
    pwcca: float | Estimate | None
    procrustes_distance: float | Estimate | None
    mutual_knn: float | Estimate | None
    rank_a: int
    rank_b: int
    svcca_dims: list[int] | None
    k: int | None
    n_a: int
    n_b: int
    paired: bool
    p_values: dict = field(default_factory=dict)
    bootstrap: dict = field(default_factory=dict)
    permutation: str | None = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- linear algebra
def pca_basis(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, clipped at 0) and eigenvectors of a covariance."""
    vals, vecs = np.linalg.eigh(cov)
    return np.clip(vals[::-1], 0.0, None), vecs[:, ::-1]


def rank_for_variance(eigvals: np.ndarray, fraction: float) -> int:
    """Smallest r whose top-r eigenvalues hold at least ``fraction`` of the total variance."""
    total = eigvals.sum()
    return int(min(np.searchsorted(np.cumsum(eigvals) / total, fraction - 1e-12) + 1, len(eigvals)))


def principal_angles(qa: np.ndarray, qb: np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between the column spans of orthonormal qa, qb.

    Cosines for large angles, sines for small ones (cos² ≥ ½), as in
    ``scipy.linalg.subspace_angles`` (which returns the same values in descending order).
    """
    m = qa.T @ qb
    sigma = np.linalg.svd(m, compute_uv=False)
    rest = qb - qa @ m if qa.shape[1] >= qb.shape[1] else qa - qb @ m.T
    sines = np.clip(np.linalg.svd(rest, compute_uv=False), -1.0, 1.0)
    angles_cos = np.arccos(np.clip(sigma, -1.0, 1.0))  # ascending
    small = sigma**2 >= 0.5
    angles_sin = np.arcsin(sines[::-1][: len(sigma)]) if small.any() else np.zeros_like(sigma)
    return np.where(small, angles_sin[: len(sigma)], angles_cos)


def _inv_sqrt(cov: np.ndarray) -> np.ndarray:
    """C^{-1/2} restricted to the numerically non-zero eigenspace (pseudo-inverse square root)."""
    vals, vecs = np.linalg.eigh(cov)
    keep = vals > RTOL * max(vals.max(), 0.0)
    return vecs[:, keep] / np.sqrt(vals[keep])


def canonical(cxx: np.ndarray, cyy: np.ndarray, cxy: np.ndarray):
    """Canonical correlations (descending) and X-side directions from (cross-)covariances.

    With W = C^{-1/2} (rank-truncated), ρ are the singular values of Wxᵀ Cxy Wy and the
    X-side canonical weights are Wx U (each with unit variance: aᵀ Cxx a = 1).
    """
    wx, wy = _inv_sqrt(cxx), _inv_sqrt(cyy)
    u, rho, vt = np.linalg.svd(wx.T @ cxy @ wy, full_matrices=False)
    m = min(wx.shape[1], wy.shape[1])
    return np.clip(rho[:m], 0.0, 1.0), wx @ u[:, :m], wy @ vt.T[:, :m]


def pwcca_from_cov(cxx, cyy, cxy) -> float:
    """PWCCA (Morcos et al. 2018) with weights from the view whose canonical variates are used.

    The view with fewer usable dimensions is weighted (the reference code's choice), and its
    weights come from *its own* centred activations: α_i = Σ_j |⟨h_i/‖h_i‖, x_j⟩| with
    h_i = X a_i; ⟨h_i, x_j⟩ = (Cxx a_i)_j up to n − 1, so no n-sized array is needed. (The
    reference code projects the first view's activations with the second view's means in
    that branch; here each view uses its own.)
    """
    rx, ry = np.linalg.matrix_rank(cxx, tol=None), np.linalg.matrix_rank(cyy, tol=None)
    if ry < rx:
        cxx, cyy, cxy = cyy, cxx, cxy.T
    rho, a, _ = canonical(cxx, cyy, cxy)
    proj = cxx @ a  # (d, m): ⟨x_j, h_i⟩
    norms = np.sqrt(np.maximum(np.einsum("dm,dm->m", a, proj), 1e-300))
    alpha = np.abs(proj).sum(0) / norms
    return float((alpha / alpha.sum()) @ rho)


def svcca_from_cov(cxx, cyy, cxy, dims: tuple[int, int]) -> float:
    """SVCCA (Raghu et al. 2017): CCA between the top ``dims`` PCA directions, mean correlation."""
    lx, vx = pca_basis(cxx)
    ly, vy = pca_basis(cyy)
    vx, vy = vx[:, : dims[0]], vy[:, : dims[1]]
    rho, _, _ = canonical(vx.T @ cxx @ vx, vy.T @ cyy @ vy, vx.T @ cxy @ vy)
    return float(rho.mean())


def procrustes_from_cov(cxx, cyy, cxy) -> float:
    """Angular Procrustes distance arccos(‖XcᵀYc‖_* / (‖Xc‖_F ‖Yc‖_F)) (Williams et al. 2021)."""
    nuc = np.linalg.svd(cxy, compute_uv=False).sum()
    return float(np.arccos(np.clip(nuc / np.sqrt(np.trace(cxx) * np.trace(cyy)), -1.0, 1.0)))


# --------------------------------------------------------------------------- public API
def overlap(a, b, *, rank: int | None = None, variance: float = 0.99, svcca_variance: float = 0.99,
            k: int = 10, bootstrap: int | None = None, permutations: int | None = None, seed: int = 0,
            level: float = 0.95, device="auto", dtype="float32") -> OverlapResult:
    """How much A and B share: principal angles between their top-r PCA subspaces and, for
    row-paired inputs, SVCCA, PWCCA, the angular Procrustes distance and mutual k-NN.

    Parameters
    ----------
    rank : compare the top ``rank`` principal directions of each set; default: the fewest
        directions holding ``variance`` of each set's variance (ranks may then differ).
    svcca_variance : SVCCA keeps the top directions reaching this fraction of variance.
    k : neighbours for mutual k-NN (clamped to n − 1 with a warning).
    bootstrap : percentile-bootstrap resamples for every scalar (ranks held at their
        full-data values; mutual k-NN resamples query rows with the graphs fixed).
    permutations : shufflings of B's rows for p-values of ``svcca`` and ``mutual_knn``.
    """
    backend = as_backend(device, dtype)
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    require_rows(ea, 2, "overlap"), require_rows(eb, 2, "overlap")
    if rank is not None:
        rank = check_positive(rank, "--rank", integer=True)
    if not 0 < variance <= 1:
        raise InputError(f"--variance {variance}: must be in (0, 1]")
    bootstrap = check_positive(bootstrap, "--bootstrap", integer=True)
    permutations = check_positive(permutations, "--permutations", integer=True)
    paired = ea.n == eb.n
    notes: list[str] = []
    if paired:
        mom = stream_moments(ea.data, eb.data, backend=backend)
        cxx, cyy, cxy = (mom.covariance(i, j).cpu().numpy() for i, j in ((0, 0), (1, 1), (0, 1)))
    else:
        cxx = stream_moments(ea.data, backend=backend).covariance().cpu().numpy()
        cyy = stream_moments(eb.data, backend=backend).covariance().cpu().numpy()
        cxy = None
        notes.append(f"unpaired inputs ({ea.n} vs {eb.n} rows): only the principal angles are computed")
    require_variance(float(np.trace(cxx)), ea, "overlap")
    require_variance(float(np.trace(cyy)), eb, "overlap")
    lx, vx = pca_basis(cxx)
    ly, vy = pca_basis(cyy)
    ra = min(rank, ea.dim) if rank else rank_for_variance(lx, variance)
    rb = min(rank, eb.dim) if rank else rank_for_variance(ly, variance)
    scal: dict = {}
    angles = None
    if ea.dim == eb.dim:
        angles = principal_angles(vx[:, :ra], vy[:, :rb])
        scal["overlap"] = float(np.mean(np.cos(angles) ** 2))
        scal["grassmann_distance"] = float(np.linalg.norm(angles))
    else:
        notes.append(f"principal angles need equal dimensions ({ea.dim} vs {eb.dim})")
    dims = None
    graphs = None
    if paired:
        warn_cca_degenerate(ea.n, (ea.dim, eb.dim), "svcca/pwcca")
        dims = (rank_for_variance(lx, svcca_variance), rank_for_variance(ly, svcca_variance))
        scal["svcca"] = svcca_from_cov(cxx, cyy, cxy, dims)
        scal["pwcca"] = pwcca_from_cov(cxx, cyy, cxy)
        scal["procrustes_distance"] = procrustes_from_cov(cxx, cyy, cxy)
        graphs = neighbors.mutual_knn_graphs(ea.data, eb.data, k, backend)
        scal["mutual_knn"] = graphs.value
    elif bootstrap or permutations:
        notes.append("--bootstrap/--permutations need paired rows; skipped")
    values: dict = dict(scal)
    schemes: dict = {}
    p_values: dict = {}
    if paired and (bootstrap or permutations):
        x, y = load(ea, backend).to(torch.float64), load(eb, backend).to(torch.float64)
        if bootstrap:
            values.update(_bootstrap(x, y, scal, (ra, rb), dims, same_dim=ea.dim == eb.dim,
                                     n_resamples=bootstrap, seed=seed, level=level))
            values["mutual_knn"] = neighbors.mutual_knn_bootstrap(graphs, bootstrap, seed, level)
            schemes = {name: v.method for name, v in values.items() if isinstance(v, Estimate)}
            notes += stats.outside_notes(values)
        if permutations:
            p_values["svcca"] = _svcca_permutation(x, y, dims, scal["svcca"], permutations, seed).p_value
            p_values["mutual_knn"] = neighbors.mutual_knn_permutation(graphs, permutations, seed).p_value
    return OverlapResult(
        principal_angles=None if angles is None else angles.tolist(),
        overlap=values.get("overlap"), grassmann_distance=values.get("grassmann_distance"),
        svcca=values.get("svcca"), pwcca=values.get("pwcca"),
        procrustes_distance=values.get("procrustes_distance"), mutual_knn=values.get("mutual_knn"),
        rank_a=ra, rank_b=rb, svcca_dims=list(dims) if dims else None, k=graphs.k if graphs else None,
        n_a=ea.n, n_b=eb.n, paired=paired, p_values=p_values, bootstrap=schemes,
        permutation=stats.PermutationResult.method if p_values else None, notes=notes)


def _cov(x: torch.Tensor, y: torch.Tensor):
    xc, yc = x - x.mean(0), y - y.mean(0)
    d = max(x.shape[0] - 1, 1)
    return ((xc.T @ xc) / d).numpy(), ((yc.T @ yc) / d).numpy(), ((xc.T @ yc) / d).numpy()


def _scalars(x, y, ranks, dims, same_dim: bool) -> dict:
    cxx, cyy, cxy = _cov(x, y)
    out = {"svcca": svcca_from_cov(cxx, cyy, cxy, dims), "pwcca": pwcca_from_cov(cxx, cyy, cxy),
           "procrustes_distance": procrustes_from_cov(cxx, cyy, cxy)}
    if same_dim:
        angles = principal_angles(pca_basis(cxx)[1][:, : ranks[0]], pca_basis(cyy)[1][:, : ranks[1]])
        out["overlap"] = float(np.mean(np.cos(angles) ** 2))
        out["grassmann_distance"] = float(np.linalg.norm(angles))
    return out


def _bootstrap(x, y, full: dict, ranks, dims, *, same_dim, n_resamples, seed, level) -> dict:
    reps: dict[str, list] = {}
    for idx in stats.resample_indices(x.shape[0], n_resamples, seed):
        t = torch.as_tensor(idx)
        for name, v in _scalars(x[t], y[t], ranks, dims, same_dim).items():
            reps.setdefault(name, []).append(v)
    scheme = f"{stats.ROW_SCHEME}, paired (recomputed; ranks fixed at full-data values)"
    return {name: stats.make_estimate(full[name], r, level, scheme) for name, r in reps.items()}


def _svcca_permutation(x, y, dims, observed, n_permutations, seed):
    """Shuffle B's rows: the PCA bases are unchanged, so only the reduced cross-covariance moves."""
    cxx, cyy, _ = _cov(x, y)
    vx, vy = pca_basis(cxx)[1][:, : dims[0]], pca_basis(cyy)[1][:, : dims[1]]
    xr = (x - x.mean(0)) @ torch.as_tensor(vx.copy())
    yr = (y - y.mean(0)) @ torch.as_tensor(vy.copy())
    rxx, ryy = (xr.T @ xr).numpy(), (yr.T @ yr).numpy()

    def shuffled(perm):
        rho, _, _ = canonical(rxx, ryy, (xr.T @ yr[torch.as_tensor(perm)]).numpy())
        return float(rho.mean())

    return stats.permutation_test(shuffled, x.shape[0], observed=observed, n_permutations=n_permutations, seed=seed)


__all__ = ["overlap", "OverlapResult", "principal_angles", "canonical", "pwcca_from_cov", "svcca_from_cov",
           "procrustes_from_cov", "pca_basis", "rank_for_variance"]
