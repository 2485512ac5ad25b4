"""Reduced-rank regression: the least-squares (or ridge) map constrained to rank r.

The full-rank fit W (pseudo-inverse, or ridge with ``alpha`` > 0) is projected onto the top-r
right singular vectors of the fitted values X'W: ``W_r = W V_r V_rᵀ`` with V_r the leading
eigenvectors of ``(X'W)ᵀ(X'W) = Wᵀ(XᵀX)W`` — the closed-form RRR solution with identity
weighting (Izenman 1975). A noise-free ``Y = X·B`` with rank-r B gives ``W_r = B``.

References
----------
Izenman, "Reduced-rank regression for the multivariate linear model", Journal of
Multivariate Analysis 5(2), 1975.
"""
from __future__ import annotations

import numpy as np
import torch

from ..blas import eigh
from ..errors import InputError
from .base import DirectAligner, opt, psd_solve, register
from .linear import NORMAL_EQUATIONS


@register
class LowRank(DirectAligner):
    """Rank-``rank`` linear map with bias (centred anchors); ``alpha`` ridge before truncation."""

    method = "lowrank"
    PRE = {"center": True}
    PARAMS = {"rank": None, "alpha": 0.0}

    def __init__(self, *, rank=None, alpha=0.0, l2=None, center=None, standardize=None, device="auto", dtype="float32"):
        self.rank = rank
        self.alpha = alpha
        super().__init__(l2=l2, center=center, standardize=standardize, device=device, dtype=dtype)

    def _check_params(self, params):
        r = params["rank"]
        if r is None:
            raise InputError("lowrank needs `rank` (the rank of the map)")
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, float, np.number)) or int(r) != r or int(r) < 1:
            raise InputError(f"{opt('rank', r)}: must be a positive integer")
        params["rank"] = int(r)
        try:
            a = float(params["alpha"])
        except (TypeError, ValueError):
            raise InputError(f"{opt('alpha', params['alpha'])}: lowrank takes a number ≥ 0 (no 'auto')") from None
        if not np.isfinite(a) or a < 0:
            raise InputError(f"{opt('alpha', a)}: must be ≥ 0 for lowrank")
        params["alpha"] = a
        return params

    def _fit(self, X, Y, backend):
        r = self.params_["rank"]
        if r > min(X.dim, Y.dim):
            raise InputError(f"`rank` {r}: exceeds min(source dim, target dim) = {min(X.dim, Y.dim)} for lowrank")
        stats = self._stats(X, Y, backend, NORMAL_EQUATIONS)
        W, rank = psd_solve(stats.Sxx, stats.Sxy, alpha=self.params_["alpha"], rtol=stats.rtol)
        fitted_gram = W.T @ stats.Sxx @ W
        lam, V = eigh((fitted_gram + fitted_gram.T) / 2)
        lam, V = lam.flip(0), V.flip(1)  # descending
        Vr = V[:, :r]
        kept = float(lam[:r].sum()) / max(float(lam.sum()), 1e-300)
        self._record_fit(stats, W @ Vr @ Vr.T, rank=r, input_rank=rank, fitted_variance_kept=kept)
