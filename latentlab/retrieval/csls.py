"""CSLS: cross-domain similarity local scaling, a hubness-reducing retrieval score.

    CSLS(x, y) = 2 cos(x, y) − r_G(x) − r_Q(y)

with r_G(x) the mean cosine of query x to its k nearest gallery rows and r_Q(y) the mean
cosine of gallery row y to its k nearest queries (k = 10 as in the paper). A gallery row
that is close to many queries (a hub) gets a large r_Q and is pushed down. The
neighbourhoods are taken in the evaluated sets themselves, as in the paper.

References
----------
Conneau, Lample, Ranzato, Denoyer & Jégou, "Word Translation Without Parallel Data",
ICLR 2018 (§2.3, Eq. 6).
"""
from __future__ import annotations

import torch

from ..compute import as_backend
from ..io import as_embeddings, require_same_dim
from ..knn import clamp_k, topk_cosine
from .scoring import AdjustedScores

#: neighbourhood size of the paper
CSLS_K = 10


#: Rows of ``rows`` whose top-k lists are held at once by :func:`mean_topk` (k values + indices each).
MEAN_TOPK_ROWS = 65536


def mean_topk(rows, against, k: int, backend) -> torch.Tensor:
    """Mean cosine of each row of ``rows`` to its ``k`` nearest rows of ``against`` (a vector on the device).

    Both sets are read in chunks (:func:`latentlab.knn.topk_cosine`: query blocks × chunks,
    top-k merged) and only the means are kept, so a gallery of millions of rows needs
    O(n) memory, not its n × k neighbour lists. Means in float64: the offsets are subtracted
    from every score in a row / column.
    """
    out = torch.empty(len(rows), dtype=torch.float64)
    for lo in range(0, len(rows), MEAN_TOPK_ROWS):
        hi = min(lo + MEAN_TOPK_ROWS, len(rows))
        part = rows if hi - lo == len(rows) else _Slice(rows, lo, hi)
        v, _ = topk_cosine(part, against, k, backend=backend)
        out[lo:hi] = torch.as_tensor(v, dtype=torch.float64).mean(1)
    return out.to(backend.device, backend.dtype)


class _Slice:
    """Rows ``lo:hi`` of a row source, read on demand (topk_cosine slices it block by block)."""

    def __init__(self, data, lo: int, hi: int):
        self.data, self.lo, self.hi = data, lo, hi
        self.shape, self.dtype, self.ndim = (hi - lo, int(data.shape[1])), data.dtype, 2

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, index):
        start, stop, _ = index.indices(len(self))
        return self.data[self.lo + start : self.lo + stop]


class CSLSScores(AdjustedScores):
    """CSLS scores of queries × gallery; ``r_query`` = r_G(x), ``r_gallery`` = r_Q(y)."""

    kind = "CSLS score (similarity, higher = more similar; range [-4, 4])"

    def __init__(self, queries, gallery, backend, k: int):
        super().__init__(queries, gallery, backend)
        self.k = k
        self.r_query = mean_topk(queries, gallery, clamp_k(k, len(gallery), "CSLS k"), backend)
        self.r_gallery = mean_topk(gallery, queries, clamp_k(k, len(queries), "CSLS k"), backend)

    def adjust(self, s, q0, q1, g0, g1):
        return 2 * s - self.r_query[q0:q1, None] - self.r_gallery[None, g0:g1]


def csls(queries, gallery, k: int = CSLS_K, *, device="auto", dtype="float32") -> CSLSScores:
    """CSLS scores (Conneau et al. 2018) of ``queries`` against ``gallery``.

    Returns an :class:`~latentlab.retrieval.scoring.AdjustedScores` holding only the O(n)
    offsets; get dense blocks with ``.scores(slice)``, ranks with ``.ranks(truth)`` and
    neighbour lists with ``.topk(k)``. ``k`` is clamped to the set sizes (with a warning).
    """
    backend = as_backend(device, dtype)
    eq, eg = as_embeddings(queries, "queries"), as_embeddings(gallery, "gallery")
    require_same_dim(eq, eg, "CSLS")
    return CSLSScores(eq.data, eg.data, backend, int(k))
