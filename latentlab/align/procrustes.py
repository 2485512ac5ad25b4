"""Orthogonal Procrustes on centred anchors, with optional isotropic scaling.

``R = U Vᵀ`` from the SVD ``XcᵀYc = U Σ Vᵀ`` minimises ‖XcR − Yc‖_F over orthogonal R
(Schönemann 1966); with ``scale`` the isotropic factor ``s = tr Σ / ‖Xc‖²_F`` is added
(Schönemann & Carroll 1970). Unequal dimensions: the smaller side is zero-padded to the
larger, R is square, and the map keeps the rows/columns that exist (``W = s·R[:dx, :dy]``).

References
----------
Schönemann, "A generalized solution of the orthogonal Procrustes problem",
Psychometrika 31(1), 1966.
Schönemann & Carroll, "Fitting one matrix to another under choice of a central dilation
and a rigid motion", Psychometrika 35(2), 1970.
"""
from __future__ import annotations

import numpy as np
import torch

from ..blas import svd
from ..errors import InputError
from .base import DirectAligner, opt, register


def procrustes_rotation(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonal R (D × D, D = max(dx, dy)) maximising tr(Rᵀ M) for a dx × dy cross-product
    M (zero-padded), and the singular values of M; float64 on M's device."""
    dx, dy = M.shape
    D = max(dx, dy)
    P = torch.zeros((D, D), dtype=torch.float64, device=M.device)
    P[:dx, :dy] = M
    U, S, Vt = svd(P)
    return U @ Vt, S


@register
class Procrustes(DirectAligner):
    """Orthogonal map (rotation/reflection) between centred anchors; ``scale`` adds a
    global scale factor. Y = X·R with orthogonal R is recovered exactly (to round-off)."""

    method = "procrustes"
    PRE = {"center": True}
    PARAMS = {"scale": False}

    def __init__(self, *, scale=False, l2=None, center=None, standardize=None, device="auto", dtype="float32"):
        self.scale = scale
        super().__init__(l2=l2, center=center, standardize=standardize, device=device, dtype=dtype)

    def _check_params(self, params):
        if not isinstance(params["scale"], (bool, np.bool_)):
            raise InputError(f"{opt('scale', params['scale'])}: expected True or False")
        params["scale"] = bool(params["scale"])
        return params

    def _fit(self, X, Y, backend):
        # XᵀY is all the rotation needs; XᵀX only when dx > dy, where W = R[:dx, :dy] loses
        # orthogonal rows and the fit's residual needs the full quadratic form
        stats = self._stats(X, Y, backend, ("xy", "xx") if X.dim > Y.dim else ("xy",))
        self._fit_stats(stats)

    def _fit_stats(self, stats):
        R, S = procrustes_rotation(stats.Sxy)
        dx, dy = stats.Sxy.shape
        s = 1.0
        if self.params_.get("scale", False):
            sxx = float(stats.dxx.sum())
            s = float(S.sum()) / sxx if sxx > 0 else 1.0
        self.R_ = R.cpu().numpy()
        self.scale_ = s
        self._record_fit(stats, s * R[:dx, :dy], scale=s, padded_dim=R.shape[0])
