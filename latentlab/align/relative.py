"""Relative representations: each row becomes its cosine similarities to the anchors.

Source rows are described by their cosine to the source anchors and target rows by their
cosine to the target anchors (anchor k in both spaces is the same item), so both land in
the same K-dimensional space without fitting any map. Cosine makes this invariant to
orthogonal maps and isotropic scaling of either space. With ``center`` each space's
anchor mean is subtracted first (rows and anchors alike): plain relative representations
fail between anisotropic spaces whose cosines all crowd near one value (e.g. across the
modality gap), and centring fixes that. Relative vectors are not re-normalised.

References
----------
Moschella, Maiorca, Fumero, Norelli, Locatello & Rodolà, "Relative representations enable
zero-shot latent space communication", ICLR 2023.
"""
from __future__ import annotations

import torch

from ..compute import l2_normalize
from .base import Aligner, register


@register
class Relative(Aligner):
    """Cosine similarity to the (optionally centred) anchors in each space."""

    method = "relative"
    PRE = {"center": False}
    TENSORS = ("anchors_source_", "anchors_target_")
    warn_underdetermined = False
    min_anchors = 2

    @property
    def dim_common_(self) -> int:
        return int(self.anchors_source_.shape[0])

    @classmethod
    def _tensor_shapes(cls, ds, dt, dc):
        return {"anchors_source_": (dc, ds), "anchors_target_": (dc, dt)}

    def _fit(self, X, Y, backend):
        # the anchor statistics and the anchors themselves: two bounded passes over K rows,
        # the anchors preprocessed in float64 on the device (as transform maps rows)
        self._stats(X, Y, backend, ("xy",))  # only the preprocessing's means and spreads are used
        exact = backend.float64()
        anchors = []
        for emb, pre in ((X, self.pre_x_), (Y, self.pre_y_)):
            on, rows = pre.on(exact), exact.block_rows(emb.dim)
            anchors.append(l2_normalize(torch.cat([on.apply(exact.tensor(emb.data[lo : lo + rows]))
                                                   for lo in range(0, emb.n, rows)])))
        ax, ay = anchors
        k = len(ax)
        cos = float(torch.sum(ax.sum(0) ** 2))  # Σ_ij cos(a_i, a_j), the diagonal included
        self.anchors_source_, self.anchors_target_ = ax.cpu().numpy(), ay.cpu().numpy()
        self.fit_stats_ = {"n_anchors": k,
                           "mean_anchor_cosine_source": float((cos - k) / max(k * (k - 1), 1))}

    def _map_source(self, x, fitted):
        return l2_normalize(fitted.pre_x.apply(x)) @ fitted.anchors_source_.T

    def _map_target(self, y, fitted):
        return l2_normalize(fitted.pre_y.apply(y)) @ fitted.anchors_target_.T
