"""The invariances each metric is known to have, written once as a table and checked for each."""
import numpy as np
import pytest

import latentlab

RNG = np.random.default_rng(0)
X = RNG.normal(size=(150, 6)) * np.array([4, 3, 2, 1, 0.5, 0.25])
Y = X @ RNG.normal(size=(6, 5)) + RNG.normal(size=(150, 5))
Q6 = np.linalg.qr(RNG.normal(size=(6, 6)))[0]
Q5 = np.linalg.qr(RNG.normal(size=(5, 5)))[0]
M6 = RNG.normal(size=(6, 6)) + 3 * np.eye(6)

TRANSFORMS = {
    "orthogonal": lambda a, q: a @ q,
    "isotropic_scale": lambda a, q: 2.5 * a,
    "orthogonal_scale_shift": lambda a, q: 0.3 * a @ q + 7.0,
    "signed_permutation_shift": lambda a, q: -a[:, ::-1] * np.array([1, -1, 1, -1, 1])[: a.shape[1]] + 3.0,
}


def _cka(a, b, **kw):
    return latentlab.cka(a, b, dtype="float64", **kw).cka


def _ov(name, **kw):
    return lambda a, b: getattr(latentlab.overlap(a, b, dtype="float64", **kw), name)


METRICS = {  # metric → (function of (A, B), transforms of B it is invariant to)
    "cka_linear": (_cka, ["orthogonal", "isotropic_scale", "orthogonal_scale_shift"]),
    "cka_debiased": (lambda a, b: _cka(a, b, debiased=True), ["orthogonal", "isotropic_scale", "orthogonal_scale_shift"]),
    "cka_rbf": (lambda a, b: _cka(a, b, kernel="rbf"), ["orthogonal", "isotropic_scale", "orthogonal_scale_shift"]),
    "svcca": (_ov("svcca"), ["orthogonal", "isotropic_scale", "orthogonal_scale_shift"]),
    # PWCCA weights sum |projections| over neurons, so only neuron permutations / sign flips
    # (not general rotations) leave it unchanged
    "pwcca": (_ov("pwcca"), ["isotropic_scale", "signed_permutation_shift"]),
    "procrustes_angle_rad": (_ov("procrustes_angle_rad"), ["orthogonal", "isotropic_scale", "orthogonal_scale_shift"]),
    "mutual_knn": (_ov("mutual_knn", k=5), ["orthogonal", "isotropic_scale"]),
}
CASES = [(m, t) for m, (_, ts) in METRICS.items() for t in ts]


@pytest.mark.parametrize("metric, transform", CASES)
def test_invariance(metric, transform):
    fn, _ = METRICS[metric]
    before = fn(X, Y)
    after = fn(X, TRANSFORMS[transform](Y, Q5))
    assert after == pytest.approx(before, abs=1e-8)


def test_principal_angles_invariant_to_change_of_basis_of_the_ambient_space():
    # overlap compares subspaces: rotating both sets by the same orthogonal map changes nothing
    z = X @ M6 + RNG.normal(size=X.shape)
    a = latentlab.overlap(X, z, rank=3, dtype="float64")
    b = latentlab.overlap(X @ Q6, z @ Q6, rank=3, dtype="float64")
    assert np.allclose(a.principal_angles_rad, b.principal_angles_rad, atol=1e-9)


def test_cca_measures_invariant_to_invertible_linear_maps():
    # CCA is invariant to any invertible change of basis of each view (not just rotations)
    svcca = _ov("svcca", svcca_variance=1.0)  # keep every direction: SVCCA reduces to plain CCA
    assert svcca(X @ M6, Y) == pytest.approx(svcca(X, Y), abs=1e-8)


def test_uniformity_invariant_to_rotation_and_row_scale():
    base = latentlab.uniformity(X, dtype="float64").uniformity
    scaled = X @ Q6 * RNG.uniform(0.5, 2.0, size=(150, 1))
    assert latentlab.uniformity(scaled, dtype="float64").uniformity == pytest.approx(base, abs=1e-10)


def test_spectrum_invariant_to_rotation_and_shift_except_anisotropy():
    a = latentlab.spectrum(X, k=5, dtype="float64")
    b = latentlab.spectrum(X @ Q6 * 2.0, k=5, dtype="float64")
    assert b.effective_rank == pytest.approx(a.effective_rank, abs=1e-9)
    assert b.participation_ratio == pytest.approx(a.participation_ratio, abs=1e-9)
    assert b.anisotropy == pytest.approx(a.anisotropy, abs=1e-9)
    assert b.hubness_skew == pytest.approx(a.hubness_skew, abs=1e-9)
