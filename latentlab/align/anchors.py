"""Choosing anchor rows: given indices, or K rows picked by a seeded strategy.

Strategies (on the source rows, cosine geometry = Euclidean on L2-normalised rows):

* ``random`` — K distinct rows uniformly at random.
* ``kmeans`` — k-means++ seeding then Lloyd iterations with K centres; the anchor for each
  centre is the row nearest to it (Arthur & Vassilvitskii 2007; Lloyd 1982).
* ``fps`` — farthest-point sampling: start from a random row, repeatedly add the row
  farthest from the chosen set (Gonzalez 1985) — covers the space evenly.
* ``stratified`` — K rows spread over the classes of ``labels`` in proportion to class size
  (largest-remainder rounding, at least one per class when K allows), random within class.

All return sorted, distinct row indices. Distances are computed in row blocks (O(n·K)).

References
----------
Gonzalez, "Clustering to minimize the maximum intercluster distance", Theoretical
Computer Science 38, 1985.
Arthur & Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007.
"""
from __future__ import annotations

import numpy as np

from ..compute import Backend
from ..errors import InputError
from ..io import integer_indices

STRATEGIES = ("random", "kmeans", "fps", "stratified")


def check_anchor_indices(idx, n_source: int, n_target: int | None = None, name: str = "anchors") -> np.ndarray:
    """Validate user-given anchor indices: 1-D integers, in range for both files, no duplicates."""
    arr = np.asarray(idx)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{name}: expected a non-empty 1-D array of row indices, got shape {arr.shape}")
    arr = integer_indices(arr, name)
    limit = n_source if n_target is None else min(n_source, n_target)
    bad = (arr < 0) | (arr >= limit)
    if bad.any():
        raise InputError(f"{name}: index {int(arr[np.argmax(bad)])} is out of range; rows present in both files "
                         f"are 0..{limit - 1}")
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"{name}: index {int(uniq[np.argmax(counts > 1)])} appears {int(counts.max())} times; "
                         f"anchor indices must be distinct")
    return arr.astype(np.int64)


def select_anchors(X, k: int, strategy: str = "random", *, labels=None, seed: int = 0,
                   iters: int = 20) -> np.ndarray:
    """``k`` sorted distinct row indices of ``X`` (array or row source) chosen by ``strategy``."""
    n = len(X)
    if strategy not in STRATEGIES:
        raise InputError(f"anchor_strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if not 1 <= k <= n:
        raise InputError(f"n_anchors {k}: must be between 1 and the number of rows ({n})")
    rng = np.random.default_rng(seed)
    if strategy == "random":
        return np.sort(rng.choice(n, k, replace=False))
    if strategy == "stratified":
        return _stratified(labels, n, k, rng)
    Z = np.asarray(X, dtype=np.float64)
    Z = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
    if strategy == "fps":
        return _fps(Z, k, rng)
    return _kmeans_anchors(Z, k, rng, iters)


def _sq_to(Z: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(np.sum((Z - c) ** 2, axis=1), 0.0)


def _fps(Z: np.ndarray, k: int, rng) -> np.ndarray:
    chosen = [int(rng.integers(len(Z)))]
    dist = _sq_to(Z, Z[chosen[0]])
    for _ in range(k - 1):
        dist[chosen] = -1.0  # never pick a row twice (duplicates have distance 0)
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, _sq_to(Z, Z[nxt]))
    return np.sort(np.asarray(chosen, dtype=np.int64))


def _block_sq(Z: np.ndarray, C: np.ndarray, block: int | None = None):
    """Nearest centre and its squared distance for every row, in row blocks (host memory:
    anchor selection runs on the CPU before any fit, so its blocks follow the CPU budget)."""
    block = block or Backend.make("cpu", "float64").block_rows(Z.shape[1] + len(C), copies=2)
    cn = np.sum(C * C, axis=1)
    lab = np.empty(len(Z), dtype=np.int64)
    dmin = np.empty(len(Z))
    for lo in range(0, len(Z), block):
        z = Z[lo : lo + block]
        d = np.sum(z * z, axis=1)[:, None] + cn[None, :] - 2.0 * z @ C.T
        lab[lo : lo + block] = d.argmin(1)
        dmin[lo : lo + block] = np.maximum(d[np.arange(len(z)), lab[lo : lo + block]], 0.0)
    return lab, dmin


def _kmeans_anchors(Z: np.ndarray, k: int, rng, iters: int) -> np.ndarray:
    n = len(Z)
    centres = [Z[int(rng.integers(n))]]
    dist = _sq_to(Z, centres[0])
    for _ in range(k - 1):  # k-means++ seeding
        total = dist.sum()
        i = int(rng.choice(n, p=dist / total)) if total > 0 else int(rng.integers(n))
        centres.append(Z[i])
        dist = np.minimum(dist, _sq_to(Z, Z[i]))
    C = np.stack(centres)
    for _ in range(iters):  # Lloyd
        lab, _ = _block_sq(Z, C)
        sums = np.zeros_like(C)
        np.add.at(sums, lab, Z)
        counts = np.bincount(lab, minlength=k)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], C)
        if np.allclose(moved, C):
            break
        C = moved
    # the anchor of each centre: its nearest row not already taken
    chosen: list[int] = []
    taken = np.zeros(n, dtype=bool)
    for c in C:
        d = _sq_to(Z, c)
        d[taken] = np.inf
        i = int(np.argmin(d))
        taken[i] = True
        chosen.append(i)
    return np.sort(np.asarray(chosen, dtype=np.int64))


def _stratified(labels, n: int, k: int, rng) -> np.ndarray:
    if labels is None:
        raise InputError("anchor_strategy stratified needs `labels` L.npy (one label per row)")
    lab = np.asarray(labels).reshape(-1)
    if len(lab) != n:
        raise InputError(f"labels: {len(lab)} labels for {n} rows")
    classes, inverse = np.unique(lab, return_inverse=True)
    sizes = np.bincount(inverse)
    quota = k * sizes / n
    alloc = np.floor(quota).astype(np.int64)
    if k >= len(classes):
        alloc = np.maximum(alloc, 1)
    # largest remainder for the rest (ties broken by class order, so the result is reproducible)
    while alloc.sum() < k:
        room = alloc < sizes
        rem = np.where(room, quota - alloc, -np.inf)
        alloc[int(np.argmax(rem))] += 1
    while alloc.sum() > k:
        over = np.where(alloc > 1, alloc - quota, -np.inf)
        alloc[int(np.argmax(over))] -= 1
    alloc = np.minimum(alloc, sizes)
    out = [rng.choice(np.flatnonzero(inverse == c), int(a), replace=False) for c, a in enumerate(alloc) if a > 0]
    return np.sort(np.concatenate(out).astype(np.int64))
