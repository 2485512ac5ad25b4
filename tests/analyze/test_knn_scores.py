"""kNN alignment scores (CKNNA, cycle, LCS, edit distance) against dense n × n references."""
import warnings

import numpy as np
import pytest
import torch

from latentlab.analyze import knn_scores as ks
from latentlab.analyze.cka import linear_cka
from latentlab.compute import Backend
from latentlab.errors import InputError, LatentlabWarning

CPU64 = Backend.make("cpu", "float64")
SCORES = {"cknna": (ks.cknna, ks.prepare_cknna), "cycle_knn": (ks.cycle_knn, ks.prepare_cycle_knn),
          "lcs_knn": (ks.lcs_knn, ks.prepare_lcs_knn),
          "edit_distance_knn": (ks.edit_distance_knn, ks.prepare_edit_distance_knn)}


# --- dense references, following platonic-rep's metrics.py -----------------------------

def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def dense_knn(x, k, normalize=True):
    """Top-k of the full kernel with the diagonal excluded; ties by ascending index."""
    x = unit(x) if normalize else x
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def hsic_unbiased(K, L):
    m = len(K)
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0)
    np.fill_diagonal(Lt, 0)
    return ((Kt * Lt.T).sum() + Kt.sum() * Lt.sum() / ((m - 1) * (m - 2))
            - 2 * (Kt @ Lt).sum() / (m - 2)) / (m * (m - 3))


def topk_mask(M, k):
    """1 at row i's top-k of the kernel M (diagonal excluded), as the reference's unbiased path."""
    s = M.copy()
    np.fill_diagonal(s, -np.inf)
    out = np.zeros_like(M)
    out[np.arange(len(M))[:, None], np.argsort(-s, axis=1, kind="stable")[:, :k]] = 1
    return out


def dense_cknna(x, y, k, normalize=True):
    x, y = (unit(x), unit(y)) if normalize else (x, y)
    K, L = x @ x.T, y @ y.T
    mk, ml = topk_mask(K, k), topk_mask(L, k)
    kl = hsic_unbiased(mk * ml * K, mk * ml * L)
    return kl / np.sqrt(hsic_unbiased(mk * K, mk * K) * hsic_unbiased(ml * L, ml * L))


def dense_cycle(x, y, k):
    ka, kb = dense_knn(x, k), dense_knn(y, k)
    return (ka[kb] == np.arange(len(x))[:, None, None]).reshape(len(x), -1).any(1).mean()


def lcs_py(a, b):
    dp = np.zeros((len(a) + 1, len(b) + 1), int)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            dp[i, j] = dp[i - 1, j - 1] + 1 if a[i - 1] == b[j - 1] else max(dp[i - 1, j], dp[i, j - 1])
    return dp[-1, -1]


def lev_py(a, b):
    dp = np.zeros((len(a) + 1, len(b) + 1), int)
    dp[:, 0], dp[0, :] = np.arange(len(a) + 1), np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            dp[i, j] = min(dp[i - 1, j] + 1, dp[i, j - 1] + 1, dp[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return dp[-1, -1]


def dense_lcs(x, y, k):
    return np.mean([lcs_py(p, q) for p, q in zip(dense_knn(x, k), dense_knn(y, k))]) / k


def dense_edit(x, y, k):
    return 1 - np.mean([lev_py(p, q) for p, q in zip(dense_knn(x, k), dense_knn(y, k))]) / k


DENSE = {"cknna": dense_cknna, "cycle_knn": dense_cycle, "lcs_knn": dense_lcs, "edit_distance_knn": dense_edit}


def related(seed, n=60, noise=0.6):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 8))
    b = a @ rng.normal(size=(8, 12)) + noise * rng.normal(size=(n, 12))
    return a, b


def rotation(d, seed):
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))[0]


# --- tests -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SCORES))
@pytest.mark.parametrize("seed,k", [(0, 5), (1, 10), (2, 3)])
def test_matches_dense_reference(name, seed, k):
    a, b = related(seed)
    got = SCORES[name][0](a, b, k=k, backend=CPU64)
    assert got == pytest.approx(DENSE[name](a, b, k), abs=1e-6)
    assert 0 < got <= 1


def test_cknna_unnormalized_matches_dense():
    a, b = related(3, n=50)
    a = a * np.random.default_rng(0).uniform(0.5, 2, size=(50, 1))  # unequal row norms matter here
    got = ks.cknna(a, b, k=6, backend=CPU64, normalize=False)
    assert got == pytest.approx(dense_cknna(a, b, 6, normalize=False), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_cknna_full_k_is_debiased_linear_cka(seed):
    a, b = related(seed, n=45)
    got = ks.cknna(a, b, k=44, backend=CPU64)
    assert got == pytest.approx(linear_cka(unit(a), unit(b), debiased=True), abs=1e-8)
    assert got == pytest.approx(dense_cknna(a, b, 44), abs=1e-8)


def test_vectorised_dp_matches_plain_dp():
    rng = np.random.default_rng(0)
    for k in (1, 2, 5, 9):
        p, q = rng.integers(0, 6, size=(40, k)), rng.integers(0, 6, size=(40, k))  # repeats too
        assert np.array_equal(ks.lcs_lengths(p, q), [lcs_py(r, s) for r, s in zip(p, q)])
        assert np.array_equal(ks.levenshtein(p, q), [lev_py(r, s) for r, s in zip(p, q)])


@pytest.mark.parametrize("name", list(SCORES))
def test_identical_inputs_score_one(name):
    a, _ = related(4)
    assert SCORES[name][0](a, a, k=7) == pytest.approx(1.0, abs=1e-6)
    assert SCORES[name][0](torch.as_tensor(a), torch.as_tensor(a).float(), k=7) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", list(SCORES))
def test_shuffled_equals_recomputation(name):
    a, b = related(5, n=70, noise=0.3)
    fn, prep = SCORES[name]
    prepared = prep(a, b, k=8)  # default backend (CPU, float32)
    assert prepared.value == pytest.approx(fn(a, b, k=8), abs=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(5):
        perm = rng.permutation(len(a))
        assert prepared.shuffled(perm) == pytest.approx(fn(a, b[perm], k=8), abs=1e-6)
    assert prepared.shuffled(np.arange(len(a))) == pytest.approx(prepared.value, abs=1e-12)


@pytest.mark.parametrize("name", list(SCORES))
def test_invariances(name):
    fn = SCORES[name][0]
    changed = False
    for seed in range(3):
        a, b = related(seed)
        base = fn(a, b, k=6, backend=CPU64)
        rotated = fn(a @ rotation(8, seed), b @ rotation(12, seed + 10), k=6, backend=CPU64)
        scaled = fn(3.7 * a, 0.2 * b, k=6, backend=CPU64)
        assert rotated == pytest.approx(base, abs=1e-6)
        assert scaled == pytest.approx(base, abs=1e-6)
        changed |= abs(fn(a + 1.5, b, k=6, backend=CPU64) - base) > 1e-3
    assert changed, f"{name} did not change under translation"


def test_cknna_unnormalized_invariances():
    a, b = related(6)
    base = ks.cknna(a, b, k=6, backend=CPU64, normalize=False)
    moved = ks.cknna(2.5 * a @ rotation(8, 1), 0.3 * b @ rotation(12, 2), k=6, backend=CPU64, normalize=False)
    assert moved == pytest.approx(base, abs=1e-6)


def test_independent_inputs_score_near_chance():
    n, k = 400, 10
    chance = k / (n - 1)
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(n, 32)), rng.normal(size=(n, 32))
    assert abs(ks.cknna(a, b, k=k)) < 0.1
    assert ks.cycle_knn(a, b, k=k) == pytest.approx(1 - (1 - chance) ** k, abs=0.07)
    assert ks.lcs_knn(a, b, k=k) < 2.5 * chance
    assert ks.edit_distance_knn(a, b, k=k) < 2.5 * chance
    related_a, related_b = related(0, n=n, noise=0.3)
    for fn in (ks.cknna, ks.cycle_knn, ks.lcs_knn, ks.edit_distance_knn):  # and well above it when related
        assert fn(related_a, related_b, k=k) > fn(a, b, k=k) + 0.05


@pytest.mark.parametrize("name", list(SCORES))
@pytest.mark.parametrize("k", [0, -2, 2.5, True])
def test_bad_k_raises(name, k):
    a, b = related(0, n=20)
    with pytest.raises(InputError, match="k"):
        SCORES[name][0](a, b, k=k)


def test_cknna_needs_k_two_and_four_rows():
    a, b = related(0, n=20)
    with pytest.raises(InputError, match="k must be at least 2 for cknna"):
        ks.cknna(a, b, k=1)
    with pytest.raises(InputError, match="at least 4 rows"):
        ks.cknna(a[:3], b[:3], k=2)
    with pytest.raises(InputError, match="paired"):
        ks.cycle_knn(a, b[:10], k=2)


def test_large_k_is_clamped_with_warning():
    a, b = related(1, n=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = ks.lcs_knn(a, b, k=100)
    assert any(issubclass(w.category, LatentlabWarning) and "clamped to 29" in str(w.message) for w in caught)
    assert got == pytest.approx(ks.lcs_knn(a, b, k=29), abs=1e-12)


def test_degenerate_cknna_is_nan_and_noted(monkeypatch):
    a, b = related(2, n=30)
    monkeypatch.setattr(ks, "_hsic_masked", lambda keys, kv, lv, n: -1.0)
    prepared = ks.prepare_cknna(a, b, k=4)
    assert prepared.value is None and "undefined" in prepared.notes[0]
    assert np.isnan(ks.cknna(a, b, k=4)) and np.isnan(prepared.shuffled(np.arange(30)))
