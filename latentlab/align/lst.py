"""Latent Space Translation: standard-scale, orthogonal Procrustes, de-standardise.

Both sides are standard-scaled with their anchor statistics (mean, std with ddof 1, a zero
std becomes 1), an orthogonal map is fitted between the standardised anchors (SVD, the
smaller side zero-padded), and mapped rows are de-standardised with the *target* anchor
statistics. Because each dimension is scaled separately, the method is not exactly
rotation-equivariant: ``Y = X·R`` is recovered exactly only when every source dimension
(and hence every target dimension) has the same spread on the anchors.

References
----------
Maiorca, Moschella, Norelli, Fumero, Locatello & Rodolà, "Latent Space Translation via
Semantic Alignment", NeurIPS 2023.
"""
from __future__ import annotations

from ..errors import InputError
from .base import opt, register
from .procrustes import Procrustes


@register
class LST(Procrustes):
    """Latent Space Translation (Maiorca et al. 2023): standardise → Procrustes → de-standardise."""

    method = "lst"
    PRE = {"center": True, "standardize": True}
    PARAMS = {}
    LEGACY_PARAMS = ("scale",)  # artifacts before 0.x recorded scale=False

    def __init__(self, *, l2=None, center=None, standardize=None, device="auto", dtype="float32"):
        super(Procrustes, self).__init__(l2=l2, center=center, standardize=standardize, device=device, dtype=dtype)

    def _check_params(self, params):
        if params.get("scale"):
            raise InputError(f"{opt('scale', params['scale'])}: lst has no scale option")
        return params
