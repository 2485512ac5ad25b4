"""Rank metrics shared by gap, align and retrieval: R@k, median/mean rank, MRR — ties count against the query.

The rank of a query's true item is the number of *other* gallery items scoring at least as
high (0-based), so an item tied with the truth is placed before it and a degenerate model
(all scores equal) gets the worst rank, never the best. With several relevant items per
query (a 2-D truth, e.g. 5 captions per COCO image) the best-ranked one counts.

Scores are computed in query blocks against gallery chunks: memory is O(block · chunk), the
full score matrix is never held.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .blas import matmul
from .compute import PROGRESS_SCORES, Backend, as_backend
from .errors import InputError
from .io import integer_indices
from .knn import prep
from .progress import row_blocks
from .results import ResultMixin

KS = (1, 5, 10)


@dataclass(frozen=True)
class RankMetrics(ResultMixin):
    """Recall at k (fractions in [0, 1]), 1-based median/mean rank, mean reciprocal rank."""

    r_at_1: float
    r_at_5: float
    r_at_10: float
    median_rank: float
    mean_rank: float
    mrr: float
    n_queries: int


def check_truth(truth, n_queries: int, n_gallery: int, name: str = "truth") -> np.ndarray:
    """Validate ground truth: (n_q,) or (n_q, m) gallery indices; ``None`` → the diagonal."""
    if truth is None:
        if n_queries > n_gallery:
            raise InputError(f"{name}: row i of the queries matches row i of the gallery by default, "
                             f"but there are {n_queries} queries and only {n_gallery} gallery rows")
        return np.arange(n_queries)[:, None]
    t = np.asarray(truth)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2 or t.shape[0] != n_queries:
        raise InputError(f"{name}: expected {n_queries} rows of gallery indices, got shape {np.asarray(truth).shape}")
    t = integer_indices(t, name)
    if t.size and (t.min() < 0 or t.max() >= n_gallery):
        bad = int(np.argmax(((t < 0) | (t >= n_gallery)).any(axis=1)))
        raise InputError(f"{name}: row {bad} has an index outside 0..{n_gallery - 1}")
    return t.astype(np.int64)


def ranks_from_scores(scores: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """0-based rank of the best relevant item for each row of a score block.

    ``truth`` is (rows, m) with column indices into ``scores``. Rank of relevant item r is
    #{j ≠ r : s_j ≥ s_r}; the minimum over r is returned.
    """
    rel = torch.gather(scores, 1, truth)  # (rows, m)
    best = rel.max(dim=1, keepdim=True).values
    # count of all items ≥ best, minus the best relevant item itself
    return (scores >= best).sum(dim=1) - 1


def true_ranks(queries, gallery, truth=None, *, backend: Backend | None = None, normalize: bool = True,
               block_rows: int | None = None, gallery_chunk: int | None = None) -> np.ndarray:
    """Ranks (0-based, ties against) of each query's truth among the gallery rows by cosine.

    Parameters
    ----------
    queries, gallery : 2-D arrays or row sources with equal width.
    truth : None (diagonal), (n_q,) or (n_q, m) gallery indices.
    normalize : cosine (L2-normalise rows); ``False`` uses raw dot products.
    """
    backend = backend or as_backend()
    n_q, n_g = len(queries), len(gallery)
    t = check_truth(truth, n_q, n_g)
    from .compute import current_engine

    if current_engine() is not None:  # query blocks on the engine's workers (latentlab.dask)
        return current_engine().true_ranks(queries, gallery, t, backend=backend, normalize=normalize,
                                           block_rows=block_rows, gallery_chunk=gallery_chunk)
    dim = int(gallery.shape[1])
    block, chunk = backend.score_tiles(n_g, dim, chunk=gallery_chunk)
    block = block_rows or block
    whole = None
    if n_g <= chunk:
        whole = prep(backend.tensor(gallery[:]), normalize)
    out = np.empty(n_q, dtype=np.int64)
    desc = "ranks" if n_q * n_g >= PROGRESS_SCORES else None
    for q0 in row_blocks(0, n_q, block, desc):
        q = prep(backend.tensor(queries[q0 : q0 + block]), normalize)
        tb = torch.as_tensor(t[q0 : q0 + q.shape[0]], device=backend.device)
        if whole is not None:
            out[q0 : q0 + q.shape[0]] = ranks_from_scores(matmul(q, whole.T), tb).cpu().numpy()
            continue
        # Two passes over the same chunks with the same kernel, so the truth's score is
        # bit-identical in both: pass 1 finds it, pass 2 counts the items at or above it.
        best = torch.full((q.shape[0],), -torch.inf, dtype=q.dtype, device=q.device)
        chunks = range(0, n_g, chunk)
        for g0 in chunks:
            s = matmul(q, prep(backend.tensor(gallery[g0 : g0 + chunk]), normalize).T)
            inside = (tb >= g0) & (tb < g0 + s.shape[1])
            rel = torch.gather(s, 1, (tb - g0).clamp(0, s.shape[1] - 1))
            rel = torch.where(inside, rel, torch.full_like(rel, -torch.inf))
            best = torch.maximum(best, rel.max(dim=1).values)
        count = torch.zeros(q.shape[0], dtype=torch.int64, device=backend.device)
        for g0 in chunks:
            s = matmul(q, prep(backend.tensor(gallery[g0 : g0 + chunk]), normalize).T)
            count += (s >= best[:, None]).sum(dim=1)
        out[q0 : q0 + q.shape[0]] = (count - 1).cpu().numpy()
    return out


def summarize_ranks(ranks: np.ndarray, ks=KS) -> RankMetrics:
    """R@k, 1-based median and mean rank, and MRR from 0-based ranks."""
    r = np.asarray(ranks, dtype=np.float64)
    if r.size == 0:
        raise InputError("no queries to evaluate")
    recall = {k: float(np.mean(r < k)) for k in ks}
    return RankMetrics(r_at_1=recall[1], r_at_5=recall[5], r_at_10=recall[10],
                       median_rank=float(np.median(r + 1)), mean_rank=float(np.mean(r + 1)),
                       mrr=float(np.mean(1.0 / (r + 1))), n_queries=int(r.size))


#: The k of a recall@k curve (those ≤ the gallery size are drawn).
RECALL_KS = (1, 2, 5, 10, 20, 50, 100)


def recall_curve(ranks: np.ndarray, n_gallery: int, ks=RECALL_KS) -> tuple[list[int], list[float]]:
    """Recall@k for every k ≤ ``n_gallery`` from 0-based ranks of the true item (ties against the query)."""
    ks = [k for k in ks if k <= n_gallery]
    ranks = np.asarray(ranks)
    return ks, [float(np.mean(ranks < k)) for k in ks]


def rank_metrics(scores, truth=None) -> RankMetrics:
    """Metrics for a precomputed (n_q, n_g) score matrix (higher = more similar)."""
    s = torch.as_tensor(np.asarray(scores))
    if s.ndim != 2:
        raise InputError(f"scores must be a 2-D matrix, got shape {tuple(s.shape)}")
    t = torch.as_tensor(check_truth(truth, s.shape[0], s.shape[1]))
    return summarize_ranks(ranks_from_scores(s, t).numpy())
