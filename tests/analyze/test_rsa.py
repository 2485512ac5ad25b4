import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import pdist

from latentlab.analyze.rsa import INVARIANCES, RDMS, prepare_rsa, rankdata, rdm_upper, rsa
from latentlab.compute import Backend
from latentlab.errors import InputError

RNG = np.random.default_rng(7)
X = RNG.normal(size=(60, 6)) * np.array([3, 2, 1.5, 1, 0.5, 0.3]) + 1.0
Y = np.tanh(X[:, :4] @ RNG.normal(size=(4, 5))) + 0.5 * RNG.normal(size=(60, 5))
SCIPY = {"spearman": stats.spearmanr, "pearson": stats.pearsonr}
METHODS = list(SCIPY)


def _scipy_rsa(a, b, method, rdm):
    return float(SCIPY[method](pdist(a, rdm), pdist(b, rdm))[0])


@pytest.mark.parametrize("rdm", RDMS)
def test_rdm_upper_is_pdist(rdm):
    assert np.allclose(rdm_upper(X, rdm=rdm), pdist(X, rdm), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rdm", RDMS)
def test_agrees_with_scipy_on_pdist(method, rdm):
    assert rsa(X, Y, method=method, rdm=rdm) == pytest.approx(_scipy_rsa(X, Y, method, rdm), abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rdm", RDMS)
def test_agrees_with_scipy_on_own_triangles(method, rdm):
    ta, tb = rdm_upper(X, rdm=rdm), rdm_upper(Y, rdm=rdm)
    assert rsa(X, Y, method=method, rdm=rdm) == pytest.approx(float(SCIPY[method](ta, tb)[0]), abs=1e-9)


def test_rankdata_averages_ties_like_scipy():
    v = np.array([3.0, 1.0, 3.0, 2.0, 1.0, 3.0, 0.5, 2.0, 7.0, 3.0])
    assert np.array_equal(rankdata(torch.as_tensor(v)).numpy(), stats.rankdata(v))
    w = RNG.integers(0, 6, size=500).astype(float)
    assert np.array_equal(rankdata(torch.as_tensor(w)).numpy(), stats.rankdata(w))


@pytest.mark.parametrize("rdm", RDMS)
@pytest.mark.parametrize("dim, scaled", [(5, False), (5, True), (7, False), (50, True), (1000, True)])
def test_ties_of_a_categorical_model_rdm(rdm, dim, scaled):
    # A categorical model RDM (one-hot class labels, repeated rows) is all ties: 0 within a
    # class and one value across classes (per class pair for scaled Euclidean). Computed
    # values can differ by a few ulps (e.g. the correlation RDM of 5-dim one-hots); they
    # must still tie, so the reference is built from the labels, not from the floats.
    labels = np.arange(60) % 4
    scales = np.r_[[1.0, 3.3, 0.7, 2.0, 1.0], RNG.uniform(0.5, 3.0, dim - 5)] if scaled else np.ones(dim)
    model = np.eye(dim)[labels] * scales
    if rdm == "euclidean":
        exact = pdist(scales[labels][:, None], lambda u, v: np.hypot(u[0], v[0])) * pdist(labels[:, None], "hamming")
    else:  # normalised rows: a class's rows coincide, and every class pair is alike
        exact = pdist(labels[:, None], "hamming")
    expected = float(stats.spearmanr(pdist(X, rdm), exact)[0])
    assert rsa(X, model, rdm=rdm) == pytest.approx(expected, abs=1e-9)
    prep = prepare_rsa(X, model, rdm=rdm)
    perm = np.random.default_rng(dim).permutation(60)
    assert prep.shuffled(perm) == pytest.approx(rsa(X, model[perm], rdm=rdm), abs=1e-9)


def test_tie_tolerance_only_merges_rounding_noise():
    import latentlab.analyze.rsa as mod
    eps = np.finfo(np.float64).eps
    v = torch.tensor([1.25, 1.25 + 2 * eps, 1.25 - 4 * eps, 0.0, 3e-16, 0.7, 0.7 + 1e-9], dtype=torch.float64)
    tol = mod.tie_tolerance(v, dim=10)
    assert 1e-14 < tol < 1e-12
    r = rankdata(v, tol).numpy()
    assert r[0] == r[1] == r[2] == 6.0 and r[3] == r[4] == 1.5 and r[5] < r[6]
    w = torch.as_tensor(RNG.normal(size=2000))
    assert np.array_equal(rankdata(w, mod.tie_tolerance(w, 768)).numpy(), stats.rankdata(w.numpy()))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rdm", RDMS)
def test_shuffled_equals_recomputation(method, rdm):
    prep = prepare_rsa(X, Y, method=method, rdm=rdm)
    assert prep.value == pytest.approx(rsa(X, Y, method=method, rdm=rdm), abs=1e-12)
    rng = np.random.default_rng(1)
    for _ in range(3):
        perm = rng.permutation(len(X))
        assert prep.shuffled(perm) == pytest.approx(rsa(X, Y[perm], method=method, rdm=rdm), abs=1e-9)


def test_strip_size_does_not_change_the_result():
    import latentlab.analyze.rsa as mod
    perm = np.random.default_rng(2).permutation(60)
    za = torch.linspace(-1, 1, 60 * 59 // 2, dtype=torch.float64)
    zb = torch.as_tensor(RNG.normal(size=60 * 59 // 2))
    p = torch.as_tensor(perm)
    assert mod._permuted_dot(za, zb, p, 60, block=7) == pytest.approx(mod._permuted_dot(za, zb, p, 60), abs=1e-12)
    tri = mod.rdm_triangle(torch.as_tensor(X), "cosine", block=7).numpy()
    assert tri == pytest.approx(pdist(X, "cosine"), abs=1e-12)


def test_shuffled_rejects_a_non_permutation():
    prep = prepare_rsa(X, Y)
    with pytest.raises(InputError, match="permutation"):
        prep.shuffled(np.zeros(60, dtype=int))
    reverse = np.arange(60)[::-1]  # a negative-stride view is a valid permutation too
    assert prep.shuffled(reverse) == pytest.approx(rsa(X, Y[reverse]), abs=1e-9)


# --------------------------------------------------------------------------- invariances
Q = np.linalg.qr(RNG.normal(size=(6, 6)))[0]
M = RNG.normal(size=(6, 6)) + 2 * np.eye(6)
T = RNG.normal(size=6) * 3.0
TRANSFORMS = {
    "rotation": lambda a: a @ Q,
    "isotropic_scale": lambda a: 2.5 * a,
    "translation": lambda a: a + T,
    "invertible_linear": lambda a: a @ M,
}
CLAIMS = [(rdm, t, inv) for rdm, table in INVARIANCES.items() for t, inv in table.items()]


def test_invariance_table_covers_every_rdm_and_transform():
    assert set(INVARIANCES) == set(RDMS)
    assert all(set(t) == set(TRANSFORMS) for t in INVARIANCES.values())
    assert INVARIANCES["correlation"]["rotation"] is False
    assert np.linalg.matrix_rank(M) == 6


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rdm, transform, invariant", CLAIMS)
def test_invariance_claims(method, rdm, transform, invariant):
    base = rsa(X, Y, method=method, rdm=rdm)
    moved = rsa(TRANSFORMS[transform](X), Y, method=method, rdm=rdm)
    if invariant:
        assert moved == pytest.approx(base, abs=1e-9)
        # the claim is about either input
        y6 = np.hstack([Y, Y[:, :1]])
        assert rsa(X, TRANSFORMS[transform](y6), method=method, rdm=rdm) == pytest.approx(
            rsa(X, y6, method=method, rdm=rdm), abs=1e-9)
    else:
        assert abs(moved - base) > 1e-3


# --------------------------------------------------------------------------- range and errors
def test_range_and_identity():
    assert rsa(X, X) == pytest.approx(1.0, abs=1e-12)
    assert rsa(X, 3 * X + 1, rdm="euclidean", method="pearson") == pytest.approx(1.0, abs=1e-12)
    for rdm in RDMS:
        assert -1.0 <= rsa(X, Y, rdm=rdm) <= 1.0


def test_float32_backend_still_computes_in_float64():
    cpu32 = Backend.make("cpu", "float32")
    assert rsa(X, Y, backend=cpu32) == pytest.approx(rsa(X, Y), abs=1e-12)
    assert rsa(X, Y, backend="cpu") == pytest.approx(rsa(X, Y), abs=1e-12)
    assert rsa(torch.as_tensor(X), torch.as_tensor(Y)) == pytest.approx(rsa(X, Y), abs=1e-12)


def test_bad_choices_name_the_argument():
    with pytest.raises(InputError, match="method 'kendal': expected spearman or pearson"):
        rsa(X, Y, method="kendal")
    with pytest.raises(InputError, match="rdm 'manhattan': expected correlation, cosine or euclidean"):
        rsa(X, Y, rdm="manhattan")
    with pytest.raises(InputError, match="max_n"):
        rsa(X, Y, max_n=0)
    with pytest.raises(InputError, match="sample"):
        rsa(X, Y, sample=2)
    with pytest.raises(InputError, match="paired"):
        rsa(X, Y[:50])


def test_constant_row_under_correlation_is_named():
    x = X.copy()
    x[17] = 4.2
    with pytest.raises(InputError, match="row 17 .*constant"):
        rsa(x, Y)
    assert np.isfinite(rsa(x, Y, rdm="euclidean"))  # only the correlation RDM needs row variance
    x[17] = 0.0
    with pytest.raises(InputError, match="row 17 .*zeros"):
        rsa(x, Y, rdm="cosine")


def test_constant_rdm_is_refused():
    simplex = np.eye(4)  # every pair at the same distance
    with pytest.raises(InputError, match="constant RDM"):
        rsa(simplex, X[:4], rdm="euclidean")


def test_max_n_and_seeded_sample():
    with pytest.raises(InputError, match="60 rows exceed max_n 50: pass sample"):
        rsa(X, Y, max_n=50)
    prep = prepare_rsa(X, Y, max_n=50, sample=40, seed=3)
    assert prep.notes and "40 of 60 rows" in prep.notes[0]
    rows = np.sort(np.random.default_rng(3).choice(60, 40, replace=False))
    assert prep.value == pytest.approx(rsa(X[rows], Y[rows]), abs=1e-12)
    assert rsa(X, Y, max_n=50, sample=40, seed=3) == prep.value
    perm = np.random.default_rng(0).permutation(40)
    assert prep.shuffled(perm) == pytest.approx(rsa(X[rows], Y[rows][perm]), abs=1e-9)
    with pytest.raises(InputError, match="45 rows exceed max_n 40"):
        rsa(X, Y, max_n=40, sample=45)
    assert prepare_rsa(X, Y, sample=100).notes == []  # sample ≥ n: all rows, nothing to say
