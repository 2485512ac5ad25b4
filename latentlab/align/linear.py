"""Least-squares maps: ``lstsq`` (no bias), ``affine`` (with bias), ``ridge``.

All three solve float64 normal equations built from one streamed pass of moments
(O(d²) memory whatever the number of anchors). A bias is fitted by centring both sides
with the anchor means (the intercept is then ``μ_y − μ_x W``, and it is not penalised).
The inverse of ``XᵀX`` is a pseudo-inverse with rank truncation: with fewer anchors than
dimensions (or dead units) this gives the minimum-norm least-squares solution.

References
----------
Mikolov, Le & Sutskever, "Exploiting Similarities among Languages for Machine
Translation", arXiv 1309.4168, 2013 (linear maps between embedding spaces).
Hoerl & Kennard, "Ridge Regression: Biased Estimation for Nonorthogonal Problems",
Technometrics 12(1), 1970.
Golub, Heath & Wahba, "Generalized Cross-Validation as a Method for Choosing a Good Ridge
Parameter", Technometrics 21(2), 1979 (GCV, and the leave-one-out shortcut r_i/(1 − h_ii)).
"""
from __future__ import annotations

import numpy as np
import torch

from ..compute import Backend
from ..blas import eigh
from ..errors import InputError
from .base import DirectAligner, opt, psd_solve, register
from .preprocess import PairStats

#: the moments a least-squares map needs: XᵀX and XᵀY (of YᵀY only its trace, always kept)
NORMAL_EQUATIONS = ("xx", "xy")
#: --alpha auto searches mean-eigenvalue × 10^k for k on this grid
ALPHA_GRID = np.logspace(-6, 3, 37)


@register
class Lstsq(DirectAligner):
    """Linear map without bias: ``W = (XᵀX)⁺ XᵀY`` (minimum-norm least squares)."""

    method = "lstsq"

    def _fit(self, X, Y, backend):
        stats = self._stats(X, Y, backend, NORMAL_EQUATIONS)
        W, rank = psd_solve(stats.Sxx, stats.Sxy, rtol=stats.rtol)
        self._record_fit(stats, W, rank=rank)


@register
class Affine(Lstsq):
    """Linear map with bias (ordinary least squares on centred anchors)."""

    method = "affine"
    PRE = {"center": True}


@register
class Ridge(DirectAligner):
    """Ridge map ``W = (XcᵀXc + αI)⁻¹ XcᵀYc`` with an unpenalised bias (like scikit-learn's
    ``Ridge(fit_intercept=True)``); ``alpha="auto"`` picks α on a grid by GCV (from the moments,
    no extra pass) or exact leave-one-out (``alpha_cv="loo"``, one more streamed pass)."""

    method = "ridge"
    PRE = {"center": True}
    underdetermined_solution = "the ridge penalty α makes it unique, but it rests on α alone"
    PARAMS = {"alpha": 1.0, "alpha_cv": "gcv"}

    def __init__(self, *, alpha=1.0, alpha_cv="gcv", l2=None, center=None, standardize=None, device="auto", dtype="float32"):
        self.alpha = alpha
        self.alpha_cv = alpha_cv
        super().__init__(l2=l2, center=center, standardize=standardize, device=device, dtype=dtype)

    def _check_params(self, params):
        a = params["alpha"]
        if isinstance(a, str):
            if a.strip().lower() != "auto":
                try:
                    a = float(a)
                except ValueError:
                    raise InputError(f"{opt('alpha', a)}: expected a number ≥ 0 or 'auto'") from None
            else:
                a = "auto"
        try:
            ok = a == "auto" or (np.isfinite(float(a)) and float(a) >= 0)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"{opt('alpha', a)}: must be ≥ 0 (or 'auto')")
        params["alpha"] = a if a == "auto" else float(a)
        if params["alpha_cv"] not in ("gcv", "loo"):
            raise InputError(f"{opt('alpha_cv', params['alpha_cv'])}: expected gcv or loo")
        return params

    def _fit(self, X, Y, backend):
        stats = self._stats(X, Y, backend, NORMAL_EQUATIONS)
        alpha, extra = self.params_["alpha"], {}
        if alpha == "auto":
            grid = ALPHA_GRID * max(float(torch.trace(stats.Sxx)) / stats.Sxx.shape[0], 1e-300)
            if self.params_["alpha_cv"] == "gcv":
                scores = gcv_scores(stats, grid, intercept=self.pre_x_.center)
            else:
                scores = loo_scores(X.data, Y.data, self.pre_x_, self.pre_y_, stats, grid,
                                    intercept=self.pre_x_.center)
            best = int(torch.argmin(scores))
            alpha = float(grid[best])
            extra = {"alpha_selection": self.params_["alpha_cv"], "cv_error": float(scores[best]),
                     "alpha_grid": [float(g) for g in grid]}
            if best in (0, len(grid) - 1):
                extra["note"] = "chosen alpha is at the edge of the grid"
        W, _ = psd_solve(stats.Sxx, stats.Sxy, alpha=alpha, rtol=stats.rtol)
        self.alpha_ = alpha
        self._record_fit(stats, W, alpha=alpha, **extra)


def _eig(stats: PairStats):
    lam, Q = eigh(stats.Sxx)
    return lam.clamp_min(0.0), Q


def gcv_scores(stats: PairStats, grid, *, intercept: bool) -> torch.Tensor:
    """GCV(α) = n·RSS(α) / (n − tr H(α))², all from the moments (Golub et al. 1979).

    tr H = Σ λ_j/(λ_j+α) (+1 for an unpenalised intercept); RSS per target column summed.
    Both are written so that nothing cancels when the fit interpolates (anchors ≤ dimensions):
    RSS(α) = RSS(0⁺) + Σ_j g_j² α² / (λ_j (λ_j+α)²) and n − tr H = (n − rank − intercept)
    + Σ_j α/(λ_j+α), over the eigenvalues kept (λ_j > rtol·λ_max). The textbook form
    tr Syy − 2Σ f g² + Σ λ f² g² subtracts numbers of size tr Syy to get an RSS near 0 and, with
    n ≤ d, rounded to 0 at small α — GCV then chose the smallest α on the grid every time.
    One float64 score per grid value, on the moments' device.
    """
    lam, Q = _eig(stats)
    rtol = stats.rtol if stats.rtol is not None else lam.shape[0] * float(torch.finfo(torch.float64).eps)
    top = float(lam.max()) if lam.numel() else 0.0
    keep = lam > rtol * top if top > 0 else torch.zeros_like(lam, dtype=torch.bool)
    G = Q.T @ stats.Sxy  # d × dy
    g2 = torch.sum(G * G, dim=1)[keep]
    lam = lam[keep]
    n = stats.n
    rss_min = (stats.dyy.sum() - torch.sum(g2 / lam)).clamp_min(0.0)
    a = torch.as_tensor(np.asarray(grid, dtype=np.float64), device=lam.device)[:, None]
    shrink = a / (lam + a)  # (grid, rank)
    rss = rss_min + torch.sum(g2 / lam * shrink * shrink, dim=1)
    resid_dof = (n - lam.numel() - (1.0 if intercept else 0.0)) + torch.sum(shrink, dim=1)
    return n * rss / resid_dof.clamp_min(1e-300) ** 2


def loo_scores(Xdata, Ydata, pre_x, pre_y, stats: PairStats, grid, *, intercept: bool,
               block_rows: int | None = None) -> torch.Tensor:
    """Exact leave-one-out squared error Σ_i ‖r_i‖² / (1 − h_ii)², one streamed pass.

    For ridge with an unpenalised intercept the hat matrix is 11ᵀ/n + Xc(XcᵀXc + αI)⁻¹Xcᵀ
    (the ones column is orthogonal to the centred columns), so the shortcut is exact for
    refits that re-centre on the n − 1 remaining rows. Rows are read in blocks and scored
    in float64 on the moments' device; one score per grid value.
    """
    lam, Q = _eig(stats)
    G = Q.T @ stats.Sxy
    backend = Backend.make(stats.Sxx.device, "float64")
    px, py = pre_x.on(backend), pre_y.on(backend)
    n = len(Xdata)
    rows = block_rows or backend.block_rows(int(Q.shape[0]) + int(G.shape[1]), copies=4)
    out = torch.zeros(len(grid), dtype=torch.float64, device=backend.device)
    for lo in range(0, n, rows):
        x = px.apply(backend.tensor(Xdata[lo : lo + rows]))
        y = py.apply(backend.tensor(Ydata[lo : lo + rows]))
        Z = x @ Q
        for i, a in enumerate(grid):
            f = 1.0 / (lam + float(a))
            r = y - (Z * f) @ G
            h = torch.sum(Z * Z * f, dim=1) + (1.0 / n if intercept else 0.0)
            out[i] += torch.sum(torch.sum(r * r, dim=1) / (1.0 - h).clamp_min(1e-12) ** 2)
    return out / n
