"""Chunked ranking under an adjusted score: the engine behind CSLS, QB-Norm and DB-Norm.

The score-normalising fixes change every query × gallery score by terms that depend only on
the query row, the gallery column, or both through O(n) vectors (CSLS offsets, QB-Norm's
per-gallery normaliser). So the adjusted score of a block is a cheap element-wise function
of the raw cosine block, and ranks and top-k lists are computed exactly like the baseline:
query blocks against gallery chunks, memory O(block · chunk + n_q · k), never n_q × n_g.

Ranks follow :mod:`latentlab.ranks`: 0-based, ties count against the query.
"""
from __future__ import annotations

import numpy as np
import torch

from ..blas import matmul
from ..compute import Backend, as_backend, l2_normalize
from ..knn import order_ties
from ..ranks import check_truth


class AdjustedScores:
    """Query × gallery scores of a post-hoc fix, computed block by block on demand.

    Subclasses hold O(n) state and implement :meth:`adjust`, which maps a raw cosine block
    (queries ``q0:q1`` × gallery ``g0:g1``) to the adjusted scores. Higher = more similar.
    """

    #: what a score means, for outputs
    kind = "adjusted similarity (higher = more similar)"

    def __init__(self, queries, gallery, backend: Backend):
        self.queries, self.gallery, self.backend = queries, gallery, backend

    def adjust(self, s: torch.Tensor, q0: int, q1: int, g0: int, g1: int) -> torch.Tensor:
        raise NotImplementedError

    # ------------------------------------------------------------------ public helpers
    def scores(self, rows=None) -> np.ndarray:
        """Dense adjusted scores for query ``rows`` (a slice; default all) × the whole gallery.

        Holds ``len(rows) × n_gallery`` numbers: ask for row slices on large problems.
        """
        rows = rows if rows is not None else slice(0, len(self.queries))
        start, stop, _ = rows.indices(len(self.queries))
        q = l2_normalize(self.backend.tensor(np.asarray(self.queries[start:stop])))
        g = l2_normalize(self.backend.tensor(np.asarray(self.gallery[:])))
        return self.adjust(matmul(q, g.T), start, stop, 0, len(self.gallery)).cpu().numpy()

    def ranks(self, truth=None, **kw) -> np.ndarray:
        """0-based rank of each query's truth under the adjusted scores (ties against)."""
        return ranked_pass(self.queries, self.gallery, truth, backend=self.backend, scorer=self, k=0, **kw)[0]

    def topk(self, k: int, **kw) -> np.ndarray:
        """(n_q, k) gallery indices of the k best adjusted scores (ties: lower index first)."""
        return ranked_pass(self.queries, self.gallery, None, backend=self.backend, scorer=self, k=k,
                           want_ranks=False, **kw)[1]


def _merge_topk(best_v, best_i, v, i, k):
    if best_v is None:
        return v, i
    v, i = torch.cat([best_v, v], 1), torch.cat([best_i, i], 1)
    best_v, pos = torch.topk(v, min(k, v.shape[1]), dim=1)
    return best_v, torch.gather(i, 1, pos)


def ranked_pass(queries, gallery, truth=None, *, backend: Backend | None = None, scorer: AdjustedScores | None = None,
                k: int = 10, want_ranks: bool = True, block_rows: int | None = None,
                gallery_chunk: int | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Ranks of the truth and top-``k`` gallery indices under (adjusted) cosine scores.

    Two passes over the gallery chunks with the same kernel (as in
    :func:`~latentlab.ranks.true_ranks`): the first finds the best relevant
    item's score and the running top-k, the second counts the items scoring at least as high,
    so the truth's score is bit-identical in both. One pass when the gallery fits a chunk.

    Returns ``(ranks or None, indices or None)``; ``k = 0`` skips the top-k lists.
    """
    backend = backend or as_backend()
    n_q, n_g = len(queries), len(gallery)
    t = check_truth(truth, n_q, n_g) if want_ranks else None
    dim = int(gallery.shape[1])
    block, chunk = backend.score_tiles(n_g, dim, chunk=gallery_chunk)
    block = block_rows or block
    k = min(k, n_g)
    whole = l2_normalize(backend.tensor(np.asarray(gallery[:]))) if n_g <= chunk else None
    ranks = np.empty(n_q, dtype=np.int64) if want_ranks else None
    top = np.empty((n_q, k), dtype=np.int64) if k else None

    def chunk_scores(q, q0, g0):
        g = whole if whole is not None else l2_normalize(backend.tensor(np.asarray(gallery[g0 : g0 + chunk])))
        s = matmul(q, g.T)
        if scorer is not None:
            s = scorer.adjust(s, q0, q0 + q.shape[0], g0, g0 + g.shape[0])
        return s

    for q0 in range(0, n_q, block):
        q = l2_normalize(backend.tensor(np.asarray(queries[q0 : q0 + block])))
        rows = q.shape[0]
        tb = torch.as_tensor(t[q0 : q0 + rows], device=backend.device) if want_ranks else None
        best = torch.full((rows,), -torch.inf, dtype=q.dtype, device=q.device)
        best_v = best_i = None
        kept = None
        for g0 in range(0, n_g, chunk):
            s = chunk_scores(q, q0, g0)
            if k:
                v, i = torch.topk(s, min(k, s.shape[1]), dim=1)
                best_v, best_i = _merge_topk(best_v, best_i, v, i + g0, k)
            if want_ranks:
                inside = (tb >= g0) & (tb < g0 + s.shape[1])
                rel = torch.gather(s, 1, (tb - g0).clamp(0, s.shape[1] - 1))
                rel = torch.where(inside, rel, torch.full_like(rel, -torch.inf))
                best = torch.maximum(best, rel.max(dim=1).values)
            kept = s if whole is not None else None
        if want_ranks:
            if kept is not None:  # single chunk: count on the block already computed
                count = (kept >= best[:, None]).sum(dim=1)
            else:
                count = torch.zeros(rows, dtype=torch.int64, device=q.device)
                for g0 in range(0, n_g, chunk):
                    count += (chunk_scores(q, q0, g0) >= best[:, None]).sum(dim=1)
            ranks[q0 : q0 + rows] = (count - 1).cpu().numpy()
        if k:
            top[q0 : q0 + rows] = order_ties(best_v, best_i)[1].cpu().numpy()
    return ranks, top
