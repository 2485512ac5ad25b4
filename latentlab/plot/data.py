"""What the figures need, computed from embeddings: 2-D projections and similarity samples."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """Sorted seeded sample of at most ``limit`` row indices out of ``n``."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def paired_sample(n_a: int, n_b: int, max_points: int, seed: int, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows of two sets (n_a, n_b rows) to show in a joint view of at most ``max_points``: each set
    a sorted seeded sample of at most half (seeds ``seed`` and ``seed + 1``), the same rows of both
    when ``paired`` so every shown point keeps its partner."""
    half = max(1, max_points // 2)
    idx_a = sample_rows(n_a, half, seed)
    return idx_a, idx_a if paired else sample_rows(n_b, half, seed + 1)


def joint_projection(a, b, *, method: str = "umap", max_points: int = 10_000, seed: int = 0,
                     paired: bool | None = None) -> dict:
    """2-D coordinates of both sets projected together (L2-normalised rows).

    ``max_points`` caps the total: each set keeps at most half (the same rows of both when
    paired). PCA is exact and instant; UMAP (McInnes et al. 2018) uses the cosine metric.

    Returns a dict with ``a``, ``b`` (coordinates), ``index_a``, ``index_b`` (rows kept),
    ``paired``, ``method`` and ``subsampled``.
    """
    n_a, n_b = len(a), len(b)
    paired = (n_a == n_b) if paired is None else paired
    idx_a, idx_b = paired_sample(n_a, n_b, max_points, seed, paired)
    xa, xb = _unit(np.asarray(a[idx_a])), _unit(np.asarray(b[idx_b]))
    both = np.concatenate([xa, xb])
    if method == "pca":
        centred = both - both.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        coords = centred @ vt[:2].T
    elif method == "umap":
        coords = _umap(both, seed)
    else:
        from ..errors import InputError

        raise InputError(f"projection {method!r}: expected pca or umap")
    return {"a": coords[: len(xa)], "b": coords[len(xa):], "index_a": idx_a, "index_b": idx_b,
            "paired": paired, "method": method, "subsampled": len(idx_a) < n_a or len(idx_b) < n_b}


def numba_cache() -> Path:
    """numba's cache folder for UMAP: ``$NUMBA_CACHE_DIR``, else ``~/.cache/latentlab/numba``.

    numba JIT-compiles umap on first use in every process (~35 s here); a persistent cache
    pays that once per machine instead of once per run. Set before numba is imported.
    """
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "latentlab" / "numba"
    cache = Path(os.environ.setdefault("NUMBA_CACHE_DIR", str(default)))
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def require_umap():
    """The umap module, or an ``InputError`` naming ``pip install 'latentlab[viz]'``.

    Call it before long work that ends in a UMAP view (the report does), so a missing extra
    stops the run at once instead of after the other sections.
    """
    import warnings

    from ..extras import require

    numba_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba / umap import-time deprecation noise
        return require("umap", "the UMAP projection (--projection umap)")


def _umap(x: np.ndarray, seed: int) -> np.ndarray:
    import warnings

    from ..progress import note

    umap = require_umap()
    cache = numba_cache()
    if not any(cache.rglob("*.nbi")):  # numba's index files: none yet = this run compiles
        note(f"compiling UMAP once (numba, about half a minute), cached in {cache}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns about n_jobs with a fixed random_state
        neighbours = int(min(15, max(2, len(x) - 1)))
        reducer = umap.UMAP(n_components=2, metric="cosine", n_neighbors=neighbours, random_state=seed,
                            init="spectral" if len(x) > neighbours + 2 else "random")
        return reducer.fit_transform(x)


#: display labels of the kinds of pair :func:`similarity_samples` returns (keys are identifiers)
PAIR_LABELS = {"true_pairs": "true pairs", "random_pairs": "random pairs (A, B)", "within_a": "within A",
               "within_b": "within B"}


def similarity_samples(a, b, *, n_pairs: int = 20_000, seed: int = 0, paired: bool | None = None) -> dict:
    """Cosine similarities of true pairs, random cross-set pairs and random intra-set pairs,
    keyed ``true_pairs``, ``random_pairs``, ``within_a``, ``within_b`` (labels: :data:`PAIR_LABELS`)."""
    rng = np.random.default_rng(seed)
    n_a, n_b = len(a), len(b)
    paired = (n_a == n_b) if paired is None else paired
    out = {}
    if paired:
        idx = sample_rows(n_a, n_pairs, seed)
        out["true_pairs"] = np.sum(_unit(np.asarray(a[idx])) * _unit(np.asarray(b[idx])), axis=1)
    i, j = rng.integers(n_a, size=n_pairs), rng.integers(n_b, size=n_pairs)
    if paired:
        keep = i != j
        i, j = i[keep], j[keep]
    out["random_pairs"] = _pair_cos(a, b, i, j)
    for name, x, n in (("within_a", a, n_a), ("within_b", b, n_b)):
        p, q = rng.integers(n, size=n_pairs), rng.integers(n, size=n_pairs)
        keep = p != q
        if keep.any():
            out[name] = _pair_cos(x, x, p[keep], q[keep])
    return out


def _pair_cos(x, y, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    ui, inv_i = np.unique(i, return_inverse=True)
    uj, inv_j = np.unique(j, return_inverse=True)
    xi, yj = _unit(np.asarray(x[ui]))[inv_i], _unit(np.asarray(y[uj]))[inv_j]
    return np.sum(xi * yj, axis=1)
