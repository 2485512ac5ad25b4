"""The linear algebra of subspace overlap: principal angles, SVCCA, PWCCA, angular Procrustes.

Everything is a function of the centred (cross-)covariances, which the callers stream in
float64 (O(d²) memory); :mod:`latentlab.analyze.overlap` is the command built on it. Every inverse square root of a covariance goes through
an eigendecomposition truncated at ``RTOL`` × the largest eigenvalue, so dead units and
n < d (rank-deficient covariances) are handled without a plain inverse.

Similarity or distance: ``overlap``, ``svcca``, ``pwcca``, ``mutual_knn`` are similarities
(1 = identical); ``principal_angles`` (radians), the Grassmann distance and
the angular Procrustes distance (radians, in [0, π/2]) are distances (0 = identical).

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

import numpy as np
import torch

from ..errors import InputError
from .prep import Prepared

RTOL = 1e-10


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


def cca_degenerate(rank_x: int, rank_y: int, n: int, what: str) -> str | None:
    """The reason a CCA-based similarity is meaningless for n rows, or None.

    n centred rows span at most n − 1 dimensions; two subspaces of that span whose ranks add
    up to more than n − 1 intersect in rank_x + rank_y − (n − 1) dimensions, and each shared
    direction is a canonical correlation of exactly 1 whatever the data.
    """
    rank_x, rank_y = min(rank_x, n - 1), min(rank_y, n - 1)
    forced = rank_x + rank_y - (n - 1)
    if forced > 0:
        return (f"{what} undefined: ranks {rank_x} + {rank_y} exceed the {n - 1} centred rows, so {forced} canonical "
                "correlations are 1 by construction (n ≤ d); use more rows or fewer dimensions"
                + (" (a lower --variance)" if what == "svcca" else ""))
    return None


def numerical_rank(cov: np.ndarray) -> int:
    """Rank of a covariance at the tolerance every inverse here uses (RTOL × largest eigenvalue)."""
    vals = np.linalg.eigvalsh(cov)
    return int((vals > RTOL * max(vals.max(), 0.0)).sum())


# --------------------------------------------------------------------------- permutation nulls
def _centred(x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x).to(torch.float64)
    return x - x.mean(0)


def prepare_svcca(x, y, dims: tuple[int, int]) -> Prepared:
    """SVCCA of in-memory x, y ready for shuffled pairing.

    Shuffling B's rows leaves both PCA bases unchanged, so only the reduced cross-covariance
    moves: each null score is one (r_x × r_y) product and a small SVD.
    """
    xc, yc = _centred(x), _centred(y)
    reason = cca_degenerate(dims[0], dims[1], xc.shape[0], "svcca")
    if reason:
        return Prepared(None, lambda perm: float("nan"), [reason])
    vx = torch.as_tensor(pca_basis((xc.T @ xc).cpu().numpy())[1][:, : dims[0]].copy(), device=xc.device)
    vy = torch.as_tensor(pca_basis((yc.T @ yc).cpu().numpy())[1][:, : dims[1]].copy(), device=yc.device)
    xr, yr = xc @ vx, yc @ vy
    wx, wy = _inv_sqrt((xr.T @ xr).cpu().numpy()), _inv_sqrt((yr.T @ yr).cpu().numpy())

    def score(perm) -> float:
        cross = (xr.T @ yr[torch.as_tensor(perm, device=yr.device)]).cpu().numpy()
        rho = np.linalg.svd(wx.T @ cross @ wy, compute_uv=False)[: min(wx.shape[1], wy.shape[1])]
        return float(np.clip(rho, 0.0, 1.0).mean())

    return Prepared(score(np.arange(xc.shape[0])), score)


def prepare_svcca_xy(x, y, *, variance: float = 0.99, backend=None) -> Prepared:
    """SVCCA keeping the top directions that hold ``variance`` of each set's variance."""
    if not 0 < variance <= 1:
        raise InputError(f"variance {variance}: must be in (0, 1]")
    xc, yc = _centred(x), _centred(y)
    dims = tuple(rank_for_variance(pca_basis((c.T @ c).cpu().numpy())[0], variance) for c in (xc, yc))
    return prepare_svcca(xc, yc, dims)


def prepare_pwcca(x, y, *, backend=None) -> Prepared:
    """PWCCA of in-memory x, y ready for shuffled pairing (the self-covariances are kept)."""
    xc, yc = _centred(x), _centred(y)
    d = max(xc.shape[0] - 1, 1)
    cxx, cyy = (xc.T @ xc).cpu().numpy() / d, (yc.T @ yc).cpu().numpy() / d
    reason = cca_degenerate(numerical_rank(cxx), numerical_rank(cyy), xc.shape[0], "pwcca")
    if reason:
        return Prepared(None, lambda perm: float("nan"), [reason])

    def score(perm) -> float:
        cxy = (xc.T @ yc[torch.as_tensor(perm, device=yc.device)]).cpu().numpy() / d
        return pwcca_from_cov(cxx, cyy, cxy)

    return Prepared(score(np.arange(xc.shape[0])), score)


__all__ = ["principal_angles", "canonical", "pwcca_from_cov", "svcca_from_cov", "procrustes_from_cov",
           "pca_basis", "rank_for_variance", "prepare_svcca", "prepare_svcca_xy", "prepare_pwcca",
           "cca_degenerate", "numerical_rank"]
