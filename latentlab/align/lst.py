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

from .base import register
from .procrustes import Procrustes


@register
class LST(Procrustes):
    """Latent Space Translation (Maiorca et al. 2023): standardise → Procrustes → de-standardise."""

    method = "lst"
    PRE = {"center": True, "standardize": True}
    PARAMS = {}

    def _fit(self, X, Y, backend):
        self.params["scale"] = False
        stats = self._stats(X, Y, backend)
        self._fit_stats(stats)
