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

import numpy as np

from ..compute import iter_row_blocks
from .base import Aligner, register


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


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
        # the anchor statistics and the anchors themselves: two bounded passes over K rows
        self._stats(X, Y, backend)
        ax = np.concatenate([self.pre_x_.apply(b) for _, b in iter_row_blocks(X.data, 65536)])
        ay = np.concatenate([self.pre_y_.apply(b) for _, b in iter_row_blocks(Y.data, 65536)])
        self.anchors_source_, self.anchors_target_ = _unit(ax), _unit(ay)
        cos = np.sum(self.anchors_source_ @ self.anchors_source_.T)  # spread of anchor cosines
        k = len(ax)
        self.fit_stats_ = {"n_anchors": k,
                           "mean_anchor_cosine_source": float((cos - k) / max(k * (k - 1), 1))}

    def _map_source(self, x):
        return _unit(x) @ self.anchors_source_.T

    def _map_target(self, y):
        return _unit(y) @ self.anchors_target_.T
