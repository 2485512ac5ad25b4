"""Closed forms: each method recovers a known map, agrees with a naive/reference solution."""
import warnings

import numpy as np
import pytest

from functools import partial

from latentlab.align import fit_aligner as _fit_aligner
from latentlab.align import make_aligner

# closed forms are checked to ~1e-10, so the block products are formed in float64 here;
# the float32 default is checked against it in test_float32_default_agrees_with_float64
fit_aligner = partial(_fit_aligner, dtype="float64")
from latentlab.errors import LatentlabWarning


def _rot(d, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


@pytest.fixture(scope="module")
def xr():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 24)) * rng.uniform(0.2, 3.0, size=24) + 2.0  # anisotropic, off-centre
    R = _rot(24, 1)
    return X, R


def test_procrustes_recovers_rotation_exactly(xr):
    X, R = xr
    al = fit_aligner("procrustes", X, X @ R)
    assert np.abs(al.W_ - R).max() < 1e-10
    assert np.abs(al.transform(X) - X @ R).max() < 1e-10


def test_procrustes_scale_recovers_dilation(xr):
    X, R = xr
    al = fit_aligner("procrustes", X, 2.5 * X @ R + 1.0, scale=True)
    assert al.scale_ == pytest.approx(2.5, rel=1e-12)
    assert np.abs(al.transform(X) - (2.5 * X @ R + 1.0)).max() < 1e-9


def test_procrustes_unequal_dims_zero_pad():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 10))
    Q = _rot(16, 3)[:10]  # 10 × 16, orthonormal rows: zero-padded X then rotated
    al = fit_aligner("procrustes", X, X @ Q)
    assert al.W_.shape == (10, 16)
    assert np.abs(al.transform(X) - X @ Q).max() < 1e-10
    back = fit_aligner("procrustes", X @ Q, X)  # larger source → smaller target
    assert np.abs(back.transform(X @ Q) - X).max() < 1e-10


def test_procrustes_matches_scipy(xr):
    from scipy.linalg import orthogonal_procrustes

    X, _ = xr
    Y = np.random.default_rng(5).normal(size=X.shape)
    al = fit_aligner("procrustes", X, Y)
    R_ref, _ = orthogonal_procrustes(X - X.mean(0), Y - Y.mean(0))
    assert np.abs(al.W_ - R_ref).max() < 1e-10


def test_lst_exact_when_dimensions_share_spread():
    rng = np.random.default_rng(4)
    Z = rng.normal(size=(300, 12))
    Z -= Z.mean(0)
    U, _, Vt = np.linalg.svd(Z, full_matrices=False)
    X = U @ Vt * np.sqrt(len(Z) - 1) + 3.0  # empirical covariance exactly I
    R = _rot(12, 6)
    al = fit_aligner("lst", X, X @ R)
    assert np.abs(al.W_ - R).max() < 1e-10
    assert np.abs(al.transform(X) - X @ R).max() < 1e-10


def test_lst_is_standardised_procrustes(xr):
    X, _ = xr
    Y = np.random.default_rng(7).normal(size=(400, 20)) * 5 + 1
    al = fit_aligner("lst", X, Y)
    zs = lambda a: (a - a.mean(0)) / a.std(0, ddof=1)  # noqa: E731
    U, _, Vt = np.linalg.svd(np.pad(zs(X).T @ zs(Y), ((0, 0), (0, 4))))
    R = (U @ Vt)[:24, :20]
    expect = (zs(X) @ R) * Y.std(0, ddof=1) + Y.mean(0)
    assert np.abs(al.transform(X) - expect).max() < 1e-9


def test_lowrank_recovers_rank3_map():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(500, 20))
    B = rng.normal(size=(20, 3)) @ rng.normal(size=(3, 15))
    al = fit_aligner("lowrank", X, X @ B, rank=3)
    assert np.abs(al.W_ - B).max() < 1e-10
    assert np.linalg.matrix_rank(al.W_, tol=1e-8) == 3


def test_lstsq_and_affine_match_numpy():
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(300, 15)) + 1, rng.normal(size=(300, 7))
    al = fit_aligner("lstsq", X, Y)
    assert np.abs(al.W_ - np.linalg.lstsq(X, Y, rcond=None)[0]).max() < 1e-10
    aff = fit_aligner("affine", X, Y)
    X1 = np.hstack([X, np.ones((300, 1))])
    coef = np.linalg.lstsq(X1, Y, rcond=None)[0]
    assert np.abs(aff.transform(X) - X1 @ coef).max() < 1e-10


def test_lstsq_fewer_anchors_than_dims_is_min_norm_and_warns():
    rng = np.random.default_rng(10)
    X, Y = rng.normal(size=(20, 50)), rng.normal(size=(20, 8))
    X[:, 3] = 0.0  # a dead unit
    with pytest.warns(LatentlabWarning, match="fewer anchors than"):
        al = fit_aligner("lstsq", X, Y)
    assert np.abs(al.W_ - np.linalg.pinv(X) @ Y).max() < 1e-8


def test_ridge_matches_sklearn_and_naive_gcv():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(11)
    X = rng.normal(size=(120, 10)) + 0.5
    Y = X @ rng.normal(size=(10, 4)) + rng.normal(size=(120, 4)) * 0.5 + 2
    al = fit_aligner("ridge", X, Y, alpha=3.0)
    ref = Ridge(alpha=3.0, fit_intercept=True).fit(X, Y)
    assert np.abs(al.transform(X) - ref.predict(X)).max() < 1e-10

    auto = fit_aligner("ridge", X, Y, alpha="auto")
    grid = auto.fit_stats_["alpha_grid"]
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    n = len(X)

    def gcv(a):  # explicit hat matrix with intercept
        H = np.full((n, n), 1 / n) + Xc @ np.linalg.solve(Xc.T @ Xc + a * np.eye(10), Xc.T)
        r = Yc - (H - np.full((n, n), 1 / n)) @ Yc
        return n * np.sum(r * r) / (n - np.trace(H)) ** 2

    assert auto.alpha_ == pytest.approx(grid[int(np.argmin([gcv(a) for a in grid]))])


def test_ridge_loo_matches_refits():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(40, 6))
    Y = X @ rng.normal(size=(6, 3)) + rng.normal(size=(40, 3))
    auto = fit_aligner("ridge", X, Y, alpha="auto", alpha_cv="loo")
    grid = auto.fit_stats_["alpha_grid"]

    def loo(a):
        err = 0.0
        for i in range(len(X)):
            keep = np.arange(len(X)) != i
            m = make_aligner("ridge", alpha=a, dtype="float64").fit(X[keep], Y[keep])
            err += np.sum((m.transform(X[i : i + 1]) - Y[i]) ** 2)
        return err / len(X)

    chosen = loo(auto.alpha_)
    assert auto.fit_stats_["cv_error"] == pytest.approx(chosen, rel=1e-8)
    assert chosen <= min(loo(a) for a in grid[::6]) + 1e-12


def test_cca_correlations_match_naive():
    rng = np.random.default_rng(13)
    Z = rng.normal(size=(600, 3))
    X = Z @ rng.normal(size=(3, 8)) + 0.5 * rng.normal(size=(600, 8))
    Y = Z @ rng.normal(size=(3, 6)) + 0.5 * rng.normal(size=(600, 6))
    al = fit_aligner("cca", X, Y, components=3)
    u, v = al.transform(X), al.transform_target(Y)
    # canonical variates: unit variance, uncorrelated, pairwise correlation = canonical corr
    assert np.allclose(np.cov(u.T), np.eye(3), atol=1e-10)
    assert np.allclose(np.cov(v.T), np.eye(3), atol=1e-10)
    corr = [np.corrcoef(u[:, i], v[:, i])[0, 1] for i in range(3)]
    assert np.allclose(corr, al.correlations_, atol=1e-10)
    Cx, Cy = np.cov(X.T), np.cov(Y.T)
    Cxy = np.cov(X.T, Y.T)[:8, 8:]
    M = np.linalg.solve(Cx, Cxy) @ np.linalg.solve(Cy, Cxy.T)  # eigenvalues = ρ²
    rho = np.sqrt(np.sort(np.linalg.eigvals(M).real)[::-1][:3])
    assert np.allclose(al.correlations_, rho, atol=1e-10)


def test_relative_invariant_to_orthogonal_and_scaling():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(200, 16)) + 1.0
    Y = rng.normal(size=(200, 12))
    R = _rot(16, 15)
    for center in (False, True):
        base = fit_aligner("relative", X[:30], Y[:30], center=center)
        moved = fit_aligner("relative", 3.7 * X[:30] @ R, 0.2 * Y[:30], center=center)
        assert np.abs(base.transform(X) - moved.transform(3.7 * X @ R)).max() < 1e-12
        assert np.abs(base.transform_target(Y) - moved.transform_target(0.2 * Y)).max() < 1e-12
    assert base.dim_common_ == 30


def test_relative_is_cosine_to_anchors():
    rng = np.random.default_rng(16)
    X, Y = rng.normal(size=(50, 5)), rng.normal(size=(50, 4))
    al = fit_aligner("relative", X[:10], Y[:10])
    un = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    assert np.abs(al.transform(X) - un(X) @ un(X[:10]).T).max() < 1e-12


def test_streamed_fit_equals_in_memory(tmp_path):
    rng = np.random.default_rng(17)
    X, Y = rng.normal(size=(3000, 8)), rng.normal(size=(3000, 5))
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", Y.astype(np.float32))
    a = fit_aligner("affine", tmp_path / "x.npy", tmp_path / "y.npy")
    b = fit_aligner("affine", X.astype(np.float32), Y.astype(np.float32))
    assert np.abs(a.W_ - b.W_).max() < 1e-12


@pytest.mark.parametrize("method, kw", [("lstsq", {}), ("ridge", {"alpha": "auto"}), ("procrustes", {}),
                                        ("cca", {"components": 4}), ("lowrank", {"rank": 3})])
def test_float32_default_agrees_with_float64(method, kw):
    rng = np.random.default_rng(21)
    X = rng.normal(size=(4000, 12)) + 3.0  # an offset mean: the shifted sums must not cancel
    Y = X @ rng.normal(size=(12, 9)) + 0.1 * rng.normal(size=(4000, 9))
    a = _fit_aligner(method, X, Y, **kw)  # float32 block products (default), float64 sums
    b = _fit_aligner(method, X, Y, dtype="float64", **kw)
    assert a.metadata()["compute_dtype"] == "float32"
    if method == "cca":  # correlations all ≈ 1 here, so the directions are not unique: compare those
        assert np.abs(a.correlations_ - b.correlations_).max() < 1e-5
        return
    ya, yb = a.transform(X[:200]), b.transform(X[:200])
    assert np.abs(ya - yb).max() < 1e-4 * np.abs(yb).max()


def test_lstsq_float32_min_norm_does_not_invert_round_off():
    rng = np.random.default_rng(22)
    X, Y = rng.normal(size=(10, 40)), rng.normal(size=(10, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentlabWarning)
        al = _fit_aligner("lstsq", X, Y)  # rank 10 < 40: float32 noise eigenvalues must be cut
    assert al.fit_stats_["rank"] == 10
    assert np.abs(al.W_ - np.linalg.pinv(X) @ Y).max() < 1e-4


def test_nan_anchor_named_after_the_single_pass():
    from latentlab.errors import InputError

    X = np.random.default_rng(23).normal(size=(50, 4))
    Y = X.copy()
    X[17, 2] = np.nan
    with pytest.raises(InputError, match="row 17"):
        _fit_aligner("procrustes", X, Y)


@pytest.mark.parametrize("n,d", [(30, 80), (120, 10)])
def test_ridge_gcv_matches_hat_matrix_when_interpolating(n, d):
    """With anchors ≤ dimensions the fit interpolates at small α: GCV must still follow the
    explicit hat-matrix formula (it used to round RSS to 0 and always pick the grid's edge)."""
    rng = np.random.default_rng(13)
    X = rng.normal(size=(n, d))
    Y = X[:, :5] @ rng.normal(size=(5, 4)) + rng.normal(size=(n, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatentlabWarning)  # n < d warns, as it should
        auto = fit_aligner("ridge", X, Y, alpha="auto")
    grid = np.asarray(auto.fit_stats_["alpha_grid"])
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)

    def gcv(a):
        H = Xc @ np.linalg.solve(Xc.T @ Xc + a * np.eye(d), Xc.T)
        r = Yc - H @ Yc
        return n * np.sum(r * r) / (n - 1 - np.trace(H)) ** 2

    ref = np.array([gcv(a) for a in grid])
    assert 0 < int(np.argmin(ref)) < len(grid) - 1  # an interior optimum: the test can tell
    assert auto.alpha_ == pytest.approx(grid[int(np.argmin(ref))])
    assert auto.fit_stats_["cv_error"] == pytest.approx(ref.min(), rel=1e-6)
