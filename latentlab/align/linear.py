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

from ..errors import InputError
from .base import DirectAligner, opt, psd_solve, register
from .preprocess import PairStats

#: --alpha auto searches mean-eigenvalue × 10^k for k on this grid
ALPHA_GRID = np.logspace(-6, 3, 37)


@register
class Lstsq(DirectAligner):
    """Linear map without bias: ``W = (XᵀX)⁺ XᵀY`` (minimum-norm least squares)."""

    method = "lstsq"

    def _fit(self, X, Y, backend):
        stats = self._stats(X, Y, backend)
        self.W_, rank = psd_solve(stats.Sxx, stats.Sxy, rtol=stats.rtol)
        self._record_fit(stats, rank=rank)


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
        stats = self._stats(X, Y, backend)
        alpha, extra = self.params_["alpha"], {}
        if alpha == "auto":
            grid = ALPHA_GRID * max(float(np.trace(stats.Sxx)) / stats.Sxx.shape[0], 1e-300)
            if self.params_["alpha_cv"] == "gcv":
                scores = gcv_scores(stats, grid, intercept=self.pre_x_.center)
            else:
                scores = loo_scores(X.data, Y.data, self.pre_x_, self.pre_y_, stats, grid,
                                    intercept=self.pre_x_.center)
            best = int(np.argmin(scores))
            alpha = float(grid[best])
            extra = {"alpha_selection": self.params_["alpha_cv"], "cv_error": float(scores[best]),
                     "alpha_grid": [float(g) for g in grid]}
            if best in (0, len(grid) - 1):
                extra["note"] = "chosen alpha is at the edge of the grid"
        self.W_, _ = psd_solve(stats.Sxx, stats.Sxy, alpha=alpha, rtol=stats.rtol)
        self.alpha_ = alpha
        self._record_fit(stats, alpha=alpha, **extra)


def _eig(stats: PairStats):
    lam, Q = np.linalg.eigh(stats.Sxx)
    return np.maximum(lam, 0.0), Q


def gcv_scores(stats: PairStats, grid, *, intercept: bool) -> np.ndarray:
    """GCV(α) = n·RSS(α) / (n − tr H(α))², all from the moments (Golub et al. 1979).

    tr H = Σ λ_j/(λ_j+α) (+1 for an unpenalised intercept); RSS per target column summed.
    """
    lam, Q = _eig(stats)
    G = Q.T @ stats.Sxy  # d × dy
    g2 = np.sum(G * G, axis=1)
    syy = float(np.trace(stats.Syy))
    n = stats.n
    out = np.empty(len(grid))
    for i, a in enumerate(grid):
        f = 1.0 / (lam + a)
        # RSS = tr Syy − 2 Σ_j f_j g_j² + Σ_j λ_j f_j² g_j²
        rss = syy - 2.0 * np.sum(f * g2) + np.sum(lam * f * f * g2)
        trh = np.sum(lam * f) + (1.0 if intercept else 0.0)
        out[i] = n * max(rss, 0.0) / max(n - trh, 1e-12) ** 2
    return out


def loo_scores(Xdata, Ydata, pre_x, pre_y, stats: PairStats, grid, *, intercept: bool,
               block_rows: int = 8192) -> np.ndarray:
    """Exact leave-one-out squared error Σ_i ‖r_i‖² / (1 − h_ii)², one streamed pass.

    For ridge with an unpenalised intercept the hat matrix is 11ᵀ/n + Xc(XcᵀXc + αI)⁻¹Xcᵀ
    (the ones column is orthogonal to the centred columns), so the shortcut is exact for
    refits that re-centre on the n − 1 remaining rows.
    """
    lam, Q = _eig(stats)
    G = Q.T @ stats.Sxy
    n = len(Xdata)
    out = np.zeros(len(grid))
    for lo in range(0, n, block_rows):
        x = pre_x.apply(np.asarray(Xdata[lo : lo + block_rows], dtype=np.float64))
        y = pre_y.apply(np.asarray(Ydata[lo : lo + block_rows], dtype=np.float64))
        Z = x @ Q
        for i, a in enumerate(grid):
            f = 1.0 / (lam + a)
            r = y - (Z * f) @ G
            h = np.sum(Z * Z * f, axis=1) + (1.0 / n if intercept else 0.0)
            out[i] += np.sum(np.sum(r * r, axis=1) / np.maximum(1.0 - h, 1e-12) ** 2)
    return out / n
