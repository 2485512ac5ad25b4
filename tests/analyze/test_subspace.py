import warnings

import numpy as np
import pytest
import scipy.linalg as sl

import latentlab
from latentlab.analyze.subspace import canonical, principal_angles
from latentlab.errors import InputError, LatentlabWarning


def test_principal_angles_agree_with_scipy_reversed():
    rng = np.random.default_rng(0)
    qa, _ = np.linalg.qr(rng.normal(size=(30, 6)))
    qb, _ = np.linalg.qr(rng.normal(size=(30, 4)))
    near, _ = np.linalg.qr(qa[:, :4] + 1e-8 * rng.normal(size=(30, 4)))  # tiny angles: sine branch
    for b in (qb, near):
        assert np.allclose(principal_angles(qa, b), sl.subspace_angles(qa, b)[::-1], atol=1e-13)
        assert np.allclose(principal_angles(b, qa), sl.subspace_angles(b, qa)[::-1], atol=1e-13)


def test_overlap_of_pca_subspaces_matches_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 10)) * np.arange(1, 11)
    b = a @ rng.normal(size=(10, 10)) + rng.normal(size=(300, 10))
    res = latentlab.overlap(a, b, rank=3, dtype="float64")

    def top(x, r):
        x = x - x.mean(0)
        return np.linalg.svd(x, full_matrices=False)[2][:r].T

    ref = sl.subspace_angles(top(a, 3), top(b, 3))[::-1]
    assert np.allclose(res.principal_angles_rad, ref, atol=1e-9)
    assert res.overlap == pytest.approx(np.mean(np.cos(ref) ** 2), abs=1e-9)
    assert res.grassmann_distance_rad == pytest.approx(np.linalg.norm(ref), abs=1e-9)


def test_variance_rank_default():
    x = np.random.default_rng(2).normal(size=(500, 6)) * np.array([10, 10, 10, 0.1, 0.1, 0.1])
    res = latentlab.overlap(x, x, variance=0.99, dtype="float64")
    assert res.rank_a == 3 and res.overlap == pytest.approx(1.0) and res.grassmann_distance_rad == pytest.approx(0, abs=1e-6)


def naive_cca(x, y):
    """Canonical correlations from thin QR of the centred data (Björck & Golub)."""
    qx, _ = np.linalg.qr(x - x.mean(0))
    qy, _ = np.linalg.qr(y - y.mean(0))
    return np.linalg.svd(qx.T @ qy, compute_uv=False)


def test_svcca_pwcca_procrustes_match_naive_formulas():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 8)) * np.array([5, 4, 3, 2, 1, 0.01, 0.01, 0.01])
    y = x[:, :5] @ rng.normal(size=(5, 5)) + rng.normal(size=(400, 5))
    res = latentlab.overlap(x, y, dtype="float64")
    # SVCCA: project each view on its top PCA directions reaching 99% of the variance
    def reduce(z):
        zc = z - z.mean(0)
        u, s, vt = np.linalg.svd(zc, full_matrices=False)
        r = np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.99) + 1
        return zc @ vt[:r].T
    assert res.svcca == pytest.approx(naive_cca(reduce(x), reduce(y)).mean(), abs=1e-9)
    # PWCCA: y has fewer dims → its canonical variates, weighted by its own centred neurons
    yc, xc = y - y.mean(0), x - x.mean(0)
    qy, ry = np.linalg.qr(yc)
    qx, _ = np.linalg.qr(xc)
    u, rho, _ = np.linalg.svd(qy.T @ qx)
    h = qy @ u[:, :5]  # canonical variates of y, orthonormal
    alpha = np.abs(h.T @ yc).sum(1)
    assert res.pwcca == pytest.approx(np.sum(alpha / alpha.sum() * rho[:5]), abs=1e-9)
    nuc = np.linalg.svd(xc.T @ yc, compute_uv=False).sum()
    assert res.procrustes_angle_rad == pytest.approx(np.arccos(nuc / np.linalg.norm(xc) / np.linalg.norm(yc)), abs=1e-9)


def test_pwcca_weights_come_from_the_weighted_view():
    # swapping the arguments must not change PWCCA: the same (smaller) view is weighted
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 6))
    y = x[:, :3] + 0.3 * rng.normal(size=(200, 3))
    a = latentlab.overlap(x, y, dtype="float64").pwcca
    b = latentlab.overlap(y, x, dtype="float64").pwcca
    assert a == pytest.approx(b, abs=1e-10)


def test_dead_units_and_n_below_d_give_null_cca_with_reason_not_failure():
    rng = np.random.default_rng(5)
    x = np.zeros((20, 40))
    x[:, :30] = rng.normal(size=(20, 30))  # 10 dead units, n < d
    y = rng.normal(size=(20, 40))
    res = latentlab.overlap(x, y, dtype="float64")
    # ranks 19 + 19 > 19 centred rows: 19 canonical correlations are 1 whatever the data
    assert res.svcca is None and res.pwcca is None
    assert any("pwcca undefined" in n and "by construction" in n for n in res.notes)
    assert np.isfinite(res.procrustes_angle_rad) and res.to_dict()["pwcca"] is None
    rho, _, _ = canonical(np.cov(x.T), np.cov(y.T), np.cov(x.T, y.T)[:40, 40:])
    assert len(rho) <= 19 and np.allclose(rho, 1.0)  # what the null guards against


def test_cca_is_kept_when_ranks_fit_the_rows():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(30, 10))
    res = latentlab.overlap(x, rng.normal(size=(30, 10)), dtype="float64")  # 10 + 10 ≤ 29
    assert res.svcca is not None and res.pwcca is not None and not any("undefined" in n for n in res.notes)


def test_bootstrap_and_permutations():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 4))
    y = x @ rng.normal(size=(4, 4)) + rng.normal(size=(300, 4))
    res = latentlab.overlap(x, y, rank=2, bootstrap=30, permutations=19, dtype="float64")
    for name in ("svcca", "pwcca", "procrustes_angle_rad", "mutual_knn", "overlap"):
        est = getattr(res, name)
        assert est.ci_low <= est.ci_high and name in res.bootstrap
    assert res.p_values["svcca"] == pytest.approx(0.05) and res.p_values["mutual_knn"] == pytest.approx(0.05)


def test_unpaired_and_bad_inputs():
    rng = np.random.default_rng(7)
    res = latentlab.overlap(rng.normal(size=(50, 5)), rng.normal(size=(60, 5)), rank=2)
    assert res.svcca is None and len(res.principal_angles_rad) == 2 and not res.paired
    res = latentlab.overlap(np.ones((10, 3)), rng.normal(size=(10, 3)))
    assert res.overlap is None and res.svcca is None and "constant" in res.notes[0]
    with pytest.raises(InputError, match="variance"):
        latentlab.overlap(np.eye(3), np.eye(3), variance=1.5)


def test_procrustes_distance_to_an_exact_rotation_is_exact_in_float32():
    # arccos of a cosine rounded in float32 moments gave 1.5–2.9e-4 rad; netrep's tests expect < 1e-6
    rng = np.random.default_rng(9)
    x = rng.normal(size=(500, 64)).astype(np.float32)
    for seed in range(3):
        q = np.linalg.qr(np.random.default_rng(seed).normal(size=(64, 64)))[0].astype(np.float32)
        assert latentlab.overlap(x, x @ q, k=5).procrustes_angle_rad < 1e-6


def test_default_ranks_never_manufacture_overlap_and_chance_is_reported():
    rng = np.random.default_rng(10)
    d = 40
    a, b = rng.normal(size=(400, d)), rng.normal(size=(400, d))  # isotropic: 0.99 of the variance needs ~38 dims
    res = latentlab.overlap(a, b, k=5, dtype="float64")
    assert res.rank_a + res.rank_b <= d and res.forced_zero_angles == 0 and "capped" in res.rank_rule
    assert res.overlap_chance == pytest.approx(max(res.rank_a, res.rank_b) / d)
    forced = latentlab.overlap(a, b, rank=30, k=5, dtype="float64")  # an explicit rank is honoured and counted
    assert forced.forced_zero_angles == 20 and np.sum(np.array(forced.principal_angles_rad) < 1e-6) >= 20
    assert any("by construction" in n for n in forced.notes)


def test_independent_random_subspaces_overlap_at_their_chance_value():
    rng = np.random.default_rng(11)
    d, r = 30, 6
    vals = []
    for _ in range(60):
        qa, qb = (np.linalg.qr(rng.normal(size=(d, r)))[0] for _ in range(2))
        a = rng.normal(size=(200, r)) * np.linspace(3, 1, r) @ qa.T + 0.01 * rng.normal(size=(200, d))
        b = rng.normal(size=(200, r)) * np.linspace(3, 1, r) @ qb.T + 0.01 * rng.normal(size=(200, d))
        res = latentlab.overlap(a, b, rank=r, k=5, dtype="float64")
        vals.append(res.overlap)
    # E[mean cos²] = max(r_A, r_B)/d for independent uniformly random subspaces (exact)
    assert np.mean(vals) == pytest.approx(res.overlap_chance, abs=3 * np.std(vals) / np.sqrt(60))
    assert res.overlap_chance == pytest.approx(r / d)
