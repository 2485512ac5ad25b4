"""k-NN alignment scores of the Platonic Representation Hypothesis: CKNNA, cycle, LCS, edit distance.

All four compare, row by row, the k nearest neighbours of row i in space A with those of row i
in space B (rows paired, dimensions free). The k-NN lists come from
:func:`latentlab.analyze.neighbors.knn_graph` (cosine, self excluded, ties by ascending index,
chunked); nothing here holds an n × n matrix: every score is computed from the n·k stored
neighbours in O(n·k·log(n·k)) (CKNNA, cycle) or O(n·k²) (LCS, edit distance) time.

Each ``prepare_*`` keeps the neighbour lists (and, for CKNNA, the kernel values at them), so
that ``shuffled(perm)`` — the score of (x, y[perm]) — only relabels B's lists: if B' = B[π]
then kNN_B'(i) = π⁻¹(kNN_B(π(i))) and L'_ij = L_π(i)π(j); no neighbour search is repeated.

References
----------
Huh, Cheung, Wang & Isola, "The Platonic Representation Hypothesis", ICML 2024 (reference code
``minyoungg/platonic-rep``, ``metrics.py``).
Song, Smola, Gretton, Bedo & Borgwardt, "Feature Selection via Dependence Maximization",
JMLR 13, 2012 (the unbiased HSIC estimator, eq. 5).
"""
from __future__ import annotations

import numpy as np

from ..compute import as_backend
from ..errors import InputError
from ..io import require_nonzero_rows
from ..knn import topk_cosine
from .neighbors import knn_graph, relabel
from .prep import Prepared, clamp_neighbours, pair


def _setup(x, y, k, backend, name: str, minimum: int = 1, min_rows: int = 2):
    """Validated row sources, the clamped k and the backend (default: CPU, float32)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError(f"k must be a whole number, got {k!r}")
    if k < minimum:
        raise InputError(f"k must be at least {minimum} for {name}, got {k}")
    ea, eb = pair(x, y, name, min_rows=min_rows)
    require_nonzero_rows(ea, name), require_nonzero_rows(eb, name)  # neighbours by cosine
    k = clamp_neighbours(int(k), ea.n, f"{name} k")
    backend = as_backend("cpu", "float32") if backend is None else as_backend(backend)
    return ea.data, eb.data, k, backend


def _is_member(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which ``queries`` occur in ``sorted_keys``, and where (positions valid only where found)."""
    pos = np.searchsorted(sorted_keys, queries).clip(max=len(sorted_keys) - 1)
    return sorted_keys[pos] == queries, pos


def _edge_keys(idx: np.ndarray) -> np.ndarray:
    """Key i·n + j of every stored neighbour j of row i (unique: a list holds distinct indices)."""
    n = len(idx)
    return (np.arange(n, dtype=np.int64)[:, None] * n + idx).ravel()


def _list_score(x, y, k, backend, name, per_rows) -> Prepared:
    """A score computed from the two k-NN graphs alone, re-evaluable under shuffled pairing."""
    x, y, k, backend = _setup(x, y, k, backend, name)
    ia, ib = knn_graph(x, k, backend), knn_graph(y, k, backend)
    return Prepared(per_rows(ia, ib, k), lambda perm: per_rows(ia, relabel(ib, perm), k))


# --- cycle k-NN -------------------------------------------------------------------------

def _cycle(ia: np.ndarray, ib: np.ndarray, k: int) -> float:
    # i comes back to itself iff some j ∈ kNN_B(i) has i ∈ kNN_A(j), i.e. A holds the edge j → i;
    # looking the k reverse edges up in A's sorted edge keys avoids the (n, k, k) array.
    n = len(ia)
    back = ib * n + np.arange(n, dtype=np.int64)[:, None]
    found, _ = _is_member(np.sort(_edge_keys(ia)), back)
    return float(found.any(axis=1).mean())


def prepare_cycle_knn(x, y, *, k: int = 10, backend=None) -> Prepared:
    """:func:`cycle_knn` of (x, y), with ``shuffled(perm)`` = cycle_knn(x, y[perm]) without new searches."""
    return _list_score(x, y, k, backend, "cycle_knn", _cycle)


def cycle_knn(x, y, *, k: int = 10, backend=None) -> float:
    """Cycle k-NN (Huh et al., ICML 2024): fraction of rows i that return to i via B then A.

    For each row i take B's k neighbours of i and, for each of them, A's k neighbours; the row
    counts if i is among those k² indices (reference: ``compute_knn_accuracy(knn_A[knn_B])``).
    A similarity in [0, 1]; 1 when every neighbourhood cycles back (e.g. identical spaces).
    Not symmetric in (x, y). Chance level for unrelated spaces ≈ 1 − (1 − k/(n−1))^k.

    Invariant to rotations and isotropic scaling of either space (only cosine neighbourhoods
    are used); not invariant to translation, which changes cosine neighbourhoods.
    """
    return prepare_cycle_knn(x, y, k=k, backend=backend).value


# --- ordered-list scores: LCS and edit distance, vectorised over rows --------------------

def lcs_lengths(ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Length of the longest common subsequence of ``ia[r]`` and ``ib[r]`` for every row r.

    Row-vectorised DP over the k entries of ``ia``. The in-row recurrence
    cur[j] = max(prev[j], cur[j−1], prev[j−1] + match) is a running maximum, because on a
    match prev[j−1] + 1 already dominates both other terms; so each step is one cummax.
    """
    n, k = ia.shape
    prev = np.zeros((n, k + 1), dtype=np.int64)
    for t in range(k):
        step = np.maximum(prev[:, 1:], prev[:, :-1] + (ia[:, t : t + 1] == ib))
        prev = np.concatenate([prev[:, :1], np.maximum.accumulate(step, axis=1)], axis=1)
    return prev[:, -1]


def levenshtein(ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Levenshtein distance (unit insert / delete / substitute costs) between ``ia[r]`` and ``ib[r]``.

    Row-vectorised DP; cur[j] = min(a[j], cur[j−1] + 1) unrolls to
    cur[j] = j + min_{j' ≤ j}(a[j'] − j'), a running minimum.
    """
    n, k = ia.shape
    cols = np.arange(k + 1, dtype=np.int64)
    prev = np.broadcast_to(cols, (n, k + 1)).copy()
    for t in range(1, k + 1):
        a = np.empty_like(prev)
        a[:, 0] = t
        a[:, 1:] = np.minimum(prev[:, 1:] + 1, prev[:, :-1] + (ia[:, t - 1 : t] != ib))
        prev = np.minimum.accumulate(a - cols, axis=1) + cols
    return prev[:, -1]


def prepare_lcs_knn(x, y, *, k: int = 10, backend=None) -> Prepared:
    """:func:`lcs_knn` of (x, y), with ``shuffled(perm)`` = lcs_knn(x, y[perm]) without new searches."""
    return _list_score(x, y, k, backend, "lcs_knn", lambda ia, ib, k: float(lcs_lengths(ia, ib).mean() / k))


def lcs_knn(x, y, *, k: int = 10, backend=None) -> float:
    """Mean longest common subsequence of the ordered k-NN lists, divided by k (Huh et al., ICML 2024).

    The reference (``longest_ordinal_sequence``) returns the raw mean length; this is that
    length / k, so multiply by k to compare with the reference. A similarity in [0, 1]; 1 when
    both spaces rank the same k neighbours in the same order. Chance ≈ k/(n−1) or less.

    Invariant to rotations and isotropic scaling of either space (only cosine neighbourhoods
    are used); not invariant to translation, which changes cosine neighbourhoods.
    """
    return prepare_lcs_knn(x, y, k=k, backend=backend).value


def prepare_edit_distance_knn(x, y, *, k: int = 10, backend=None) -> Prepared:
    """:func:`edit_distance_knn` of (x, y), with ``shuffled(perm)`` without new searches."""
    return _list_score(x, y, k, backend, "edit_distance_knn",
                       lambda ia, ib, k: float(1.0 - levenshtein(ia, ib).mean() / k))


def edit_distance_knn(x, y, *, k: int = 10, backend=None) -> float:
    """1 − mean Levenshtein distance between the ordered k-NN lists / k (Huh et al., ICML 2024).

    The reference computes the distance with ``torchaudio.functional.edit_distance``; here it
    is a row-vectorised numpy DP with the same unit costs. A similarity in [0, 1]; 1 when both
    spaces give identical ordered neighbour lists, 0 when no position can be matched.

    Invariant to rotations and isotropic scaling of either space (only cosine neighbourhoods
    are used); not invariant to translation, which changes cosine neighbourhoods.
    """
    return prepare_edit_distance_knn(x, y, k=k, backend=backend).value


# --- CKNNA ------------------------------------------------------------------------------

def _sorted_edges(idx: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted keys i·n + j of the stored entries (i, j) and the kernel values there (float64)."""
    keys = _edge_keys(idx)
    order = np.argsort(keys)
    return keys[order], np.asarray(vals, dtype=np.float64).ravel()[order]


def _hsic_masked(keys: np.ndarray, kv: np.ndarray, lv: np.ndarray, n: int) -> float:
    """Song et al.'s unbiased HSIC (eq. 5, as ``hsic_unbiased`` of the reference) of two kernels
    that vanish outside the sorted off-diagonal entries ``keys`` (values ``kv``, ``lv``).

    HSIC = [Σ K̃∘L̃ᵀ + ΣK̃·ΣL̃/((n−1)(n−2)) − 2·1ᵀK̃L̃1/(n−2)] / (n(n−3)), where
    1ᵀK̃L̃1 = (K̃ᵀ1)·(L̃1) is a product of column sums of K̃ and row sums of L̃.
    """
    rows, cols = np.divmod(keys, n)
    # the transpose term pairs the entry (i, j) of K̃ with (j, i) of L̃, present only if stored
    hit, pos = _is_member(keys, cols * n + rows)
    trace = float(kv[hit] @ lv[pos[hit]])
    ones = float(np.bincount(cols, kv, minlength=n) @ np.bincount(rows, lv, minlength=n))
    return (trace + kv.sum() * lv.sum() / ((n - 1) * (n - 2)) - 2.0 * ones / (n - 2)) / (n * (n - 3))


def _hsic_intersection(ka, va, kb, vb, n: int) -> float:
    """HSIC of (mask∘K, mask∘L) where mask = (j ∈ kNN_K(i)) ∧ (j ∈ kNN_L(i))."""
    common, pa, pb = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    return _hsic_masked(common, va[pa], vb[pb], n)


def prepare_cknna(x, y, *, k: int = 10, backend=None, normalize: bool = True) -> Prepared:
    """:func:`cknna` of (x, y), with ``shuffled(perm)`` = cknna(x, y[perm]) without new searches.

    B's neighbour lists and kernel values are relabelled (L'_ij = L_π(i)π(j)); the kernel
    values needed at the intersection are all among B's stored ones, and sim_ll is unchanged.
    """
    x, y, k, backend = _setup(x, y, k, backend, "cknna", minimum=2, min_rows=4)
    n = len(x)
    # top-k of K = XXᵀ with the diagonal excluded (the reference's unbiased=True path)
    va, ia = topk_cosine(x, x, k, backend=backend, exclude_self=True, normalize=normalize)
    vb, ib = topk_cosine(y, y, k, backend=backend, exclude_self=True, normalize=normalize)
    ka, kva = _sorted_edges(ia, va)
    kb, kvb = _sorted_edges(ib, vb)
    sim_kk, sim_ll = _hsic_masked(ka, kva, kva, n), _hsic_masked(kb, kvb, kvb, n)
    if not (sim_kk > 0 and sim_ll > 0):
        note = (f"cknna undefined: a masked self-HSIC is not positive (sim_kk={sim_kk:.3g}, "
                f"sim_ll={sim_ll:.3g}); use more rows or a larger k")
        return Prepared(None, lambda perm: float("nan"), [note])
    scale = float(np.sqrt(sim_kk * sim_ll))

    def shuffled(perm: np.ndarray) -> float:
        kp, vp = _sorted_edges(relabel(ib, perm), vb[perm])
        return _hsic_intersection(ka, kva, kp, vp, n) / scale

    return Prepared(_hsic_intersection(ka, kva, kb, kvb, n) / scale, shuffled)


def cknna(x, y, *, k: int = 10, backend=None, normalize: bool = True) -> float:
    """CKNNA, centred kernel nearest-neighbour alignment (Huh et al., ICML 2024).

    CKA restricted to mutual neighbours: with K = XXᵀ, L = YYᵀ (rows L2-normalised first when
    ``normalize``, as the PRH pipeline does) and mask_ij = [j ∈ top-k of K_i·] ∧ [j ∈ top-k of
    L_i·] (diagonal excluded; not symmetric), sim(K, L) = HSIC_unbiased(mask∘K, mask∘L) and
    CKNNA = sim(K, L) / sqrt(sim(K, K)·sim(L, L)). Unlike the reference, no 1e-6 is added to the
    denominator; when a self-term is ≤ 0 the score is undefined and NaN is returned.
    At k = n − 1 it is the debiased linear CKA of the (normalised) rows.

    A similarity, 1 for identical neighbourhoods, near 0 for unrelated spaces; usually in
    [0, 1], though slightly negative values (and, since numerator and denominator use
    different masks, values just above 1) are possible. k must be at least 2; n at least 4.
    Computed from the n·k stored neighbours and their kernel values, never an n × n matrix.

    Invariant to rotations and isotropic scaling of either space (CKA-type normalisation
    absorbs the scale when ``normalize`` is False); not invariant to translation.
    """
    value = prepare_cknna(x, y, k=k, backend=backend, normalize=normalize).value
    return float("nan") if value is None else value


__all__ = ["cknna", "prepare_cknna", "cycle_knn", "prepare_cycle_knn", "lcs_knn", "prepare_lcs_knn",
           "edit_distance_knn", "prepare_edit_distance_knn", "lcs_lengths", "levenshtein"]
