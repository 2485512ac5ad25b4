import numpy as np
import pytest

dcor = pytest.importorskip("dcor")

from latentlab.analyze.distcorr import INVARIANCES, distance_correlation, prepare_distcorr  # noqa: E402
from latentlab.compute import Backend  # noqa: E402
from latentlab.errors import InputError  # noqa: E402


def _pair(seed, n, dx, dy, dependent=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dx)) * rng.uniform(0.3, 3.0, size=dx) + rng.normal(size=dx) * 5
    if dependent:
        y = np.tanh(x @ rng.normal(size=(dx, dy))) + 0.7 * rng.normal(size=(n, dy))
    else:
        y = rng.normal(size=(n, dy))
    return x, y


CASES = [(0, 50, 3, 3, True), (1, 80, 1, 4, True), (2, 121, 7, 2, True), (3, 33, 5, 10, False),
         (4, 64, 1, 1, True), (5, 40, 12, 1, False), (6, 9, 2, 3, True)]


@pytest.mark.parametrize("seed, n, dx, dy, dependent", CASES)
def test_matches_dcor_package(seed, n, dx, dy, dependent):
    x, y = _pair(seed, n, dx, dy, dependent)
    assert distance_correlation(x, y) == pytest.approx(float(dcor.distance_correlation(x, y)), abs=1e-8)
    assert distance_correlation(x, y, bias_corrected=True) == pytest.approx(
        float(dcor.u_distance_correlation_sqr(x, y)), abs=1e-8)


def test_tiles_do_not_change_the_value():
    x, y = _pair(7, 101, 4, 3)
    for bc in (False, True):
        ref = distance_correlation(x, y, bias_corrected=bc)
        for block in (3, 7, 50, 100, 101):
            assert distance_correlation(x, y, bias_corrected=bc, block=block) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("bias_corrected", [False, True])
@pytest.mark.parametrize("block", [2048, 13])
def test_shuffled_equals_recomputation(bias_corrected, block):
    x, y = _pair(8, 70, 5, 3)
    prep = prepare_distcorr(x, y, bias_corrected=bias_corrected, block=block)
    assert prep.value == pytest.approx(distance_correlation(x, y, bias_corrected=bias_corrected), abs=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(3):
        perm = rng.permutation(70)
        assert prep.shuffled(perm) == pytest.approx(
            distance_correlation(x, y[perm], bias_corrected=bias_corrected), abs=1e-9)
    assert prep.shuffled(np.arange(70)) == pytest.approx(prep.value, abs=1e-12)
    with pytest.raises(InputError, match="permutation"):
        prep.shuffled(np.zeros(70, dtype=int))
    reverse = np.arange(70)[::-1]  # a negative-stride view is a valid permutation too
    assert prep.shuffled(reverse) == pytest.approx(
        distance_correlation(x, y[reverse], bias_corrected=bias_corrected), abs=1e-9)


def test_range_direction_and_notes():
    x, y = _pair(9, 60, 3, 3)
    assert distance_correlation(x, x) == pytest.approx(1.0, abs=1e-12)
    assert distance_correlation(x, -2.0 * x + 4.0) == pytest.approx(1.0, abs=1e-12)
    assert distance_correlation(x, x, bias_corrected=True) == pytest.approx(1.0, abs=1e-12)
    _, z = _pair(10, 60, 3, 3, dependent=False)
    dependent, independent = distance_correlation(x, y), distance_correlation(x, z)
    assert 0.0 <= independent < dependent <= 1.0
    # the bias-corrected squared value is near 0, possibly negative, under independence
    values = [distance_correlation(*_pair(s, 30, 2, 2, dependent=False), bias_corrected=True) for s in range(8)]
    assert all(-1.0 <= v <= 1.0 for v in values) and min(values) < 0.0 < max(values) < 0.3
    assert "not squared" in prepare_distcorr(x, y).notes[0]
    assert "squared" in prepare_distcorr(x, y, bias_corrected=True).notes[0]


def test_float32_backend_and_device_spec():
    x, y = _pair(11, 90, 6, 4)
    ref = distance_correlation(x, y)
    assert distance_correlation(x, y, backend=Backend.make("cpu", "float32")) == pytest.approx(ref, abs=1e-5)
    assert distance_correlation(x, y, backend="cpu") == pytest.approx(ref, abs=1e-12)


# --------------------------------------------------------------------------- invariances
RNG = np.random.default_rng(12)
X, Y = _pair(12, 80, 5, 4)
TRANSFORMS = {  # (transform of a d-column input)
    "rotation": lambda a: a @ np.linalg.qr(RNG.normal(size=(a.shape[1],) * 2))[0],
    "isotropic_scale": lambda a: 0.37 * a,
    "translation": lambda a: a + RNG.normal(size=a.shape[1]) * 10.0,
    "invertible_linear": lambda a: a @ (np.diag(np.linspace(0.2, 5.0, a.shape[1]))
                                        + RNG.normal(size=(a.shape[1],) * 2)),
}


def test_invariance_table():
    assert set(INVARIANCES) == set(TRANSFORMS)
    assert INVARIANCES["invertible_linear"] is False


@pytest.mark.parametrize("bias_corrected", [False, True])
@pytest.mark.parametrize("transform, invariant", list(INVARIANCES.items()))
def test_invariance_claims(transform, invariant, bias_corrected):
    base = distance_correlation(X, Y, bias_corrected=bias_corrected)
    for moved in ((TRANSFORMS[transform](X), Y), (X, TRANSFORMS[transform](Y))):
        value = distance_correlation(*moved, bias_corrected=bias_corrected)
        if invariant:
            assert value == pytest.approx(base, abs=1e-9)
        else:
            assert abs(value - base) > 1e-3


# --------------------------------------------------------------------------- errors
def test_constant_input_is_refused():
    x, y = _pair(13, 20, 3, 2)
    const = np.tile([[0.1, 0.2]], (20, 1))
    for bc in (False, True):
        with pytest.raises(InputError, match="distance correlation is undefined for a constant input"):
            distance_correlation(x, const, bias_corrected=bc)
        with pytest.raises(InputError, match="^A: .*constant input"):
            prepare_distcorr(np.tile([[3.0, -1.0, 7.0]], (20, 1)), y, bias_corrected=bc)


def test_bad_arguments():
    x, y = _pair(14, 20, 3, 2)
    with pytest.raises(InputError, match="paired"):
        distance_correlation(x, y[:10])
    with pytest.raises(InputError, match="at least 4 rows"):
        distance_correlation(x[:3], y[:3], bias_corrected=True)
    assert np.isfinite(distance_correlation(x[:3], y[:3]))
    with pytest.raises(InputError, match="block"):
        distance_correlation(x, y, block=0)
