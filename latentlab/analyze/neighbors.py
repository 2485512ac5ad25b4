"""Neighbourhood statistics: mutual k-NN alignment of two spaces, and k-occurrence hubness.

The k-NN lists come from :func:`latentlab.knn.topk_cosine` (chunked; the n × n similarity
matrix is never held). Rows are L2-normalised and a row is never its own neighbour.

References
----------
Huh, Cheung, Wang & Isola, "The Platonic Representation Hypothesis", ICML 2024 (mutual
k-NN: mean over rows of |kNN_A(i) ∩ kNN_B(i)| / k; reference code ``platonic-rep``).
Radovanović, Nanopoulos & Ivanović, "Hubs in space", JMLR 11, 2010 (k-occurrence skewness).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compute import Backend
from ..knn import hubness, topk_cosine
from .. import stats
from .prep import Prepared, clamp_neighbours


@dataclass(frozen=True)
class NeighbourGraphs:
    """k-NN lists of two row-paired sets and the per-row overlap |kNN_A(i) ∩ kNN_B(i)| / k."""

    k: int
    idx_a: np.ndarray
    idx_b: np.ndarray
    per_row: np.ndarray

    @property
    def value(self) -> float:
        return float(self.per_row.mean())


def knn_graph(x, k: int, backend: Backend) -> np.ndarray:
    """(n, k) indices of each row's k nearest other rows by cosine."""
    return topk_cosine(x, x, k, backend=backend, exclude_self=True)[1]


def overlap_counts(idx_a: np.ndarray, idx_b: np.ndarray, block: int = 8192) -> np.ndarray:
    """|idx_a[i] ∩ idx_b[i]| for every row (each list holds distinct indices)."""
    out = np.empty(len(idx_a), dtype=np.int64)
    for lo in range(0, len(idx_a), block):
        a, b = idx_a[lo : lo + block], idx_b[lo : lo + block]
        out[lo : lo + block] = (a[:, :, None] == b[:, None, :]).any(2).sum(1)
    return out


def mutual_knn_graphs(x, y, k: int, backend: Backend) -> NeighbourGraphs:
    """Mutual k-NN of paired sets ``x``, ``y`` (k clamped to n − 1 with a warning)."""
    k = clamp_neighbours(k, len(x), "mutual_knn k")
    ia, ib = knn_graph(x, k, backend), knn_graph(y, k, backend)
    return NeighbourGraphs(k=k, idx_a=ia, idx_b=ib, per_row=overlap_counts(ia, ib) / k)


def relabel(idx_b: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """k-NN lists of B[perm] from those of B: kNN_B'(i) = π⁻¹(kNN_B(π(i))) — no new search."""
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    return inv[idx_b[perm]]


def prepare_mutual_knn(graphs: NeighbourGraphs) -> Prepared:
    """Mutual k-NN ready for shuffled pairing: each permutation only relabels B's lists."""
    return Prepared(graphs.value,
                    lambda perm: float(overlap_counts(graphs.idx_a, relabel(graphs.idx_b, perm)).mean() / graphs.k))


def prepare_mutual_knn_xy(x, y, *, k: int = 10, backend: Backend | None = None) -> Prepared:
    """Mutual k-NN of in-memory (or lazy) row-paired x, y, ready for shuffled pairing."""
    from ..compute import as_backend
    return prepare_mutual_knn(mutual_knn_graphs(x, y, k, backend or as_backend("cpu")))


def mutual_knn_permutation(graphs: NeighbourGraphs, n_permutations: int, seed: int = 0) -> stats.PermutationResult:
    """p-value of mutual k-NN under shuffled pairing, without recomputing any neighbours."""
    prep = prepare_mutual_knn(graphs)
    return stats.permutation_test(prep.shuffled, len(graphs.idx_a), observed=graphs.value,
                                  n_permutations=n_permutations, seed=seed)


def hubness_stats(x, k: int, backend: Backend) -> tuple[dict, np.ndarray]:
    """Hubness of the k-NN graph of ``x`` (k clamped to n − 1) and the k-occurrence counts."""
    k = clamp_neighbours(k, len(x), "hubness k")
    idx = knn_graph(x, k, backend)
    return hubness(idx, len(x)), np.bincount(idx.reshape(-1), minlength=len(x))


__all__ = ["mutual_knn_graphs", "mutual_knn_permutation", "prepare_mutual_knn", "prepare_mutual_knn_xy", "relabel", "knn_graph",
           "overlap_counts", "hubness_stats", "NeighbourGraphs"]
