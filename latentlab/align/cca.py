"""Canonical correlation analysis into a shared k-dimensional canonical space.

With centred anchors, whitening ``Wx = Σxx^{-1/2}``, ``Wy = Σyy^{-1/2}`` (pseudo-inverse
square roots with rank truncation, so dead units and n < d are handled) and the SVD
``Wx Σxy Wy = U S Vᵀ``, the canonical directions are ``A = Wx U_k`` and ``B = Wy V_k``;
``transform(x) = (x − μx)A``, ``transform_target(y) = (y − μy)B``, and S_k are the canonical
correlations. ``reg`` shrinks each covariance towards a multiple of the identity:
``Σ + reg · mean(diag Σ) · I`` (regularised CCA; scale-free so one value works across models).
This is the subspace approach of "Escaping Plato's Cave": both encoders are projected onto
the shared canonical subspace rather than one mapped into the other.

References
----------
Hotelling, "Relations between two sets of variates", Biometrika 28(3/4), 1936.
Vinod, "Canonical ridge and econometrics of joint production", J. Econometrics 4(2), 1976.
Hadgi, Maiorca, Moschella, Norelli, Locatello & Rodolà (et al.), "Escaping Plato's Cave:
Towards the Alignment of 3D and Text Latent Spaces", CVPR 2025.
"""
from __future__ import annotations

import numpy as np
import torch

from ..blas import eigh, svd
from ..errors import InputError
from .base import Aligner, opt, register


def inv_sqrt_psd(S: torch.Tensor, rtol: float | None = None) -> tuple[torch.Tensor, int]:
    """``S^{-1/2}`` on the numerical range of symmetric PSD S (pseudo-inverse square root),
    float64 on S's device."""
    lam, Q = eigh((S + S.T) / 2)
    top = max(float(lam.max()) if lam.numel() else 0.0, 0.0)
    rtol = S.shape[0] * float(torch.finfo(torch.float64).eps) if rtol is None else rtol
    keep = lam > rtol * top if top > 0 else torch.zeros_like(lam, dtype=torch.bool)
    inv = torch.where(keep, torch.where(keep, lam, torch.ones_like(lam)).rsqrt(), torch.zeros_like(lam))
    return (Q * inv) @ Q.T, int(keep.sum())


def sign_fixed_svd(M: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SVD with each singular pair's sign fixed so that the largest-magnitude entry of the
    left vector is positive (scikit-learn's ``svd_flip`` convention): singular vectors are
    defined up to a common sign, and LAPACK / cuSOLVER may pick different ones, so without
    this the canonical directions would flip between devices."""
    U, S, Vt = svd(M, full_matrices=False)
    pick = U.abs().argmax(dim=0, keepdim=True)
    sign = torch.sign(torch.gather(U, 0, pick))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return U * sign, S, Vt * sign.T


@register
class CCA(Aligner):
    """CCA with ``components`` canonical pairs and covariance shrinkage ``reg`` ∈ [0, 1)."""

    method = "cca"
    PRE = {"center": True}
    PARAMS = {"components": None, "reg": 0.0}
    TENSORS = ("A_", "B_", "correlations_")

    def __init__(self, *, components=None, reg=0.0, l2=None, center=None, standardize=None, device="auto", dtype="float32"):
        self.components = components
        self.reg = reg
        super().__init__(l2=l2, center=center, standardize=standardize, device=device, dtype=dtype)

    def _check_params(self, params):
        k = params["components"]
        if k is None:
            raise InputError("cca needs `components` k (components=...; the number of canonical pairs)")
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, float, np.number)) or int(k) != k or int(k) < 1:
            raise InputError(f"{opt('components', k)}: must be a positive integer")
        params["components"] = int(k)
        try:
            reg = float(params["reg"])
        except (TypeError, ValueError):
            raise InputError(f"{opt('reg', params['reg'])}: must be a number in [0, 1) for cca") from None
        if not (0.0 <= reg < 1.0) or not np.isfinite(reg):
            raise InputError(f"{opt('reg', reg)}: must be in [0, 1) for cca")
        params["reg"] = reg
        return params

    @classmethod
    def _tensor_shapes(cls, ds, dt, dc):
        return {"A_": (ds, dc), "B_": (dt, dc), "correlations_": (dc,)}

    @property
    def min_anchors(self):  # centred anchors span at most n − 1 dimensions
        return 2

    def _why_min(self):
        return "(centring needs two rows)"

    @property
    def dim_common_(self) -> int:
        return int(self.A_.shape[1])

    def _fit(self, X, Y, backend):
        k, reg = self.params_["components"], self.params_["reg"]
        if k > min(X.dim, Y.dim):
            raise InputError(f"cca `components` {k}: exceeds min(source dim, target dim) = {min(X.dim, Y.dim)}")
        if k > X.n - 1:
            raise InputError(f"cca `components` {k} needs at least {k + 1} anchors: centred anchors span at most "
                             f"n − 1 = {X.n - 1} dimensions")
        stats = self._stats(X, Y, backend)
        n1 = max(stats.n - 1, 1)
        cxx, cyy, cxy = stats.Sxx / n1, stats.Syy / n1, stats.Sxy / n1
        if reg > 0:
            cxx = cxx + reg * torch.diagonal(cxx).mean() * torch.eye(len(cxx), dtype=cxx.dtype, device=cxx.device)
            cyy = cyy + reg * torch.diagonal(cyy).mean() * torch.eye(len(cyy), dtype=cyy.dtype, device=cyy.device)
        wx, rx = inv_sqrt_psd(cxx, stats.rtol)
        wy, ry = inv_sqrt_psd(cyy, stats.rtol)
        if k > min(rx, ry):
            raise InputError(f"cca `components` {k}: the anchors only span {min(rx, ry)} dimensions on one side "
                             f"(source rank {rx}, target rank {ry}); lower `components` or add `reg`")
        U, S, Vt = sign_fixed_svd(wx @ cxy @ wy)
        self.A_ = (wx @ U[:, :k]).cpu().numpy()
        self.B_ = (wy @ Vt[:k].T).cpu().numpy()
        self.correlations_ = S[:k].clamp(0.0, 1.0).cpu().numpy()
        self.fit_stats_ = {"n_anchors": stats.n, "canonical_correlations": self.correlations_.tolist(),
                           "mean_canonical_correlation": float(self.correlations_.mean()),
                           "source_rank": rx, "target_rank": ry}

    def _map_source(self, x, fitted):
        return fitted.pre_x.apply(x) @ fitted.A_

    def _map_target(self, y, fitted):
        return fitted.pre_y.apply(y) @ fitted.B_
