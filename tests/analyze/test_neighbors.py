import warnings

import numpy as np
import pytest

import latentlab
from latentlab.analyze.neighbors import mutual_knn_graphs, mutual_knn_permutation, overlap_counts
from latentlab.compute import Backend
from latentlab.errors import LatentlabWarning

CPU = Backend.make("cpu", "float64")


def platonic_mutual_knn(a, b, k):
    """Huh et al.'s reference: normalise, fill the diagonal, top-k, mean |∩| / k."""
    def knn(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        s = x @ x.T
        np.fill_diagonal(s, -1e8)
        return np.argsort(-s, axis=1, kind="stable")[:, :k]
    ka, kb = knn(a), knn(b)
    return np.mean([len(set(p) & set(q)) / k for p, q in zip(ka, kb)])


def test_matches_reference_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(120, 6))
    b = a @ rng.normal(size=(6, 8)) + 0.5 * rng.normal(size=(120, 8))
    g = mutual_knn_graphs(a, b, 5, CPU)
    assert g.value == pytest.approx(platonic_mutual_knn(a, b, 5), abs=1e-12)


def test_permutation_relabelling_equals_recomputation():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    g = mutual_knn_graphs(a, b, 3, CPU)
    perm = np.random.default_rng([7, 104729]).permutation(50)  # the first draw of permutation_test(seed=7)
    direct = mutual_knn_graphs(a, b[perm], 3, CPU).value
    res = mutual_knn_permutation(g, 1, seed=7)
    assert res.null_mean == pytest.approx(direct, abs=1e-12)


def test_overlap_counts():
    assert overlap_counts(np.array([[1, 2, 3]]), np.array([[3, 4, 1]])).tolist() == [2]


def test_k_clamped_with_warning():
    x = np.random.default_rng(2).normal(size=(4, 3))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        g = mutual_knn_graphs(x, x, 10, CPU)
    assert g.k == 3 and g.value == 1.0
    assert any(issubclass(i.category, LatentlabWarning) and "clamped" in str(i.message) for i in w)


def test_hubness_skew_matches_scipy_with_zeros():
    from scipy.stats import skew
    x = np.random.default_rng(3).normal(size=(200, 30))
    res = latentlab.spectrum(x, k=5, dtype="float64")
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    np.fill_diagonal(s, -np.inf)
    idx = np.argsort(-s, axis=1)[:, :5]
    occ = np.bincount(idx.ravel(), minlength=200)
    assert res.hubness_skew == pytest.approx(skew(occ), abs=1e-12)
    assert res.hubs == int((occ > 10).sum())
