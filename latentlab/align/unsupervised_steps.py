"""The steps of :mod:`latentlab.align.unsupervised`: similarity-distribution descriptors, the
dense CSLS matrix, mutual nearest neighbours, and the pairs-free selection score.

References are in :mod:`latentlab.align.unsupervised`.
"""
from __future__ import annotations

import torch

from ..analyze.neighbors import mutual_knn_graphs
from ..blas import svd
from ..compute import Backend, l2_normalize
from ..retrieval.csls import CSLS_K, CSLSScores

#: neighbourhood size of the selection score (mutual k-NN, as Huh et al.)
SELECTION_K = 10


def profile_descriptors(a: torch.Tensor) -> torch.Tensor:
    """VecMap's rotation-invariant row descriptors (Artetxe et al. 2018, §3.2): the sorted rows
    of ``sqrt(A Aᵀ) = U S Uᵀ`` (``A = U S Vᵀ``), L2-normalised, centred, L2-normalised.

    Rotating ``A`` (``A Q``) leaves ``U`` and ``S``, hence the descriptors, unchanged.
    """
    U, S, _ = svd(a, full_matrices=False)  # numpy's LAPACK on CPU, as every other SVD here
    M = torch.sort((U * S) @ U.T, dim=1).values
    M = l2_normalize(M)
    return l2_normalize(M - M.mean(0))


def csls_matrix(a: torch.Tensor, b: torch.Tensor, k: int = CSLS_K) -> torch.Tensor:
    """Dense CSLS scores (len(a) × len(b)) of rows ``a`` against ``b`` on their device, the
    neighbourhood terms from :class:`~latentlab.retrieval.csls.CSLSScores` (one home for
    the formula)."""
    backend = Backend.make(a.device, a.dtype)
    scorer = CSLSScores(a, b, backend, min(k, len(a) - 1, len(b) - 1))
    return scorer.adjust(l2_normalize(a) @ l2_normalize(b).T, 0, len(a), 0, len(b))


def mutual_pairs(C: torch.Tensor) -> torch.Tensor:
    """(p, 2) long tensor of the (row, column) pairs that are each other's best in score matrix ``C``."""
    fwd, bwd = C.argmax(1), C.argmax(0)
    rows = torch.arange(len(C), device=C.device)
    keep = bwd[fwd] == rows
    return torch.stack([rows[keep], fwd[keep]], dim=1)


def selection_score(x: torch.Tensor, y: torch.Tensor, pairs: torch.Tensor, backend: Backend,
                    k: int = SELECTION_K) -> float:
    """Mutual k-NN agreement (Huh et al. 2024) of the pseudo-pairs: mean over pairs (i, j) of
    |kNN(x_i) ∩ kNN(y_j)| / k, each neighbourhood taken among the paired rows of its own
    space (so no coordinates are compared). 0.0 when there are too few pairs (≤ 2k)."""
    if len(pairs) <= 2 * k:
        return 0.0
    xs, ys = x[pairs[:, 0]], y[pairs[:, 1]]
    return mutual_knn_graphs(xs, ys, k, backend).value


__all__ = ["profile_descriptors", "csls_matrix", "mutual_pairs", "selection_score", "SELECTION_K"]
