import math
import warnings

import numpy as np
import pytest
import scipy.linalg as sl
import scipy.stats as ss
import torch

from latentlab.analyze.shape import (INVARIANCES, invariances, prepare_shape, shape_distance,
                                     shape_distance_streamed, shape_from_moments, shape_residual_angle)
from latentlab.compute import Backend, StreamingMoments
from latentlab.errors import InputError
from latentlab.io import as_embeddings

ALPHAS = (0.0, 0.5, 1.0)
F32 = Backend.make("cpu", "float32")


def pair(seed=0, n=300, dx=8, dy=8, noise=1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dx)) * np.linspace(3, 0.5, dx) + rng.normal(size=dx)
    y = np.tanh(x[:, : min(dx, dy)] @ rng.normal(size=(min(dx, dy), dy))) + noise * rng.normal(size=(n, dy))
    return x, y


def rotation(d, seed):
    return ss.ortho_group.rvs(d, random_state=seed)


def closed_form(x, y, alpha):
    """Independent route: netrep's φ_α via scipy's matrix power (full rank, equal widths) and
    scipy's orthogonal Procrustes, then arccos of the Frobenius cosine (fine away from 0)."""
    def phi(z):
        zc = z - z.mean(0)
        c = zc.T @ zc  # netrep whitens with the unnormalised XᵀX
        return zc @ (alpha * np.eye(len(c)) + (1 - alpha) * np.real(sl.fractional_matrix_power(c, -0.5)))
    a, b = phi(x), phi(y)
    r, _ = sl.orthogonal_procrustes(b, a)
    return math.acos(np.sum(a * (b @ r)) / (np.linalg.norm(a) * np.linalg.norm(b)))


def qr_cca(x, y):
    """Canonical correlations from thin QR of the centred data, restricted to each rank."""
    def basis(z):
        u, s, _ = np.linalg.svd(z - z.mean(0), full_matrices=False)
        return u[:, s > 1e-9 * s[0]]
    qx, qy = basis(x), basis(y)
    return np.linalg.svd(qx.T @ qy, compute_uv=False), qx.shape[1], qy.shape[1]


# --------------------------------------------------------------------------- closed forms
def test_alpha_one_is_angular_procrustes():
    from latentlab.analyze.subspace import procrustes_from_cov

    for dy in (8, 5):
        x, y = pair(1, dy=dy)
        xc, yc = x - x.mean(0), y - y.mean(0)
        nuc = np.linalg.svd(xc.T @ yc, compute_uv=False).sum()
        ref = math.acos(nuc / (np.linalg.norm(xc) * np.linalg.norm(yc)))
        cov = [a.T @ b / (len(x) - 1) for a, b in ((xc, xc), (yc, yc), (xc, yc))]
        assert ref > 0.3
        assert shape_distance(x, y, alpha=1.0) == pytest.approx(ref, abs=1e-10)
        assert shape_distance(x, y, alpha=1.0) == pytest.approx(procrustes_from_cov(*cov), abs=1e-10)


def test_alpha_zero_is_arccos_of_summed_canonical_correlations():
    # cos θ = Σρ / √(r_x r_y): the mean canonical correlation when the ranks are equal
    for dx, dy, dead in ((6, 6, False), (7, 4, False), (6, 6, True)):
        x, y = pair(2, n=200, dx=dx, dy=dy, noise=0.5)
        if dead:
            x[:, 2] = 4.0  # a dead unit: r_x = dx − 1 < r_y
        rho, rx, ry = qr_cca(x, y)
        assert (rx, ry) == (dx - dead, dy)
        expect = math.acos(rho.sum() / math.sqrt(rx * ry))
        assert shape_distance(x, y, alpha=0.0) == pytest.approx(expect, abs=1e-10)
        if rx == ry:
            assert shape_distance(x, y, alpha=0.0) == pytest.approx(math.acos(rho.mean()), abs=1e-10)


@pytest.mark.parametrize("alpha", ALPHAS + (0.25, 0.9))
def test_matches_independent_partial_whitening(alpha):
    x, y = pair(3, n=120, dx=5, dy=5)
    assert shape_distance(x, y, alpha=alpha) == pytest.approx(closed_form(x, y, alpha), abs=1e-9)


# netrep LinearMetric(alpha, center_columns=True, zero_pad=True).fit(X, Y).score(X, Y) on this
# input, from a step-by-step re-derivation of its algorithm (zero-pad, then whiten with
# eigenvalues of XᵀX clipped at 1e-7 and its variance-preserving rescale, SVD alignment,
# arccos of the Frobenius cosine); netrep itself is not installable here.
NETREP = {0.0: 1.0181061198239965, 0.5: 0.6447708832982303, 1.0: 0.6118782176275467}


def test_reference_numbers_unequal_widths():
    rng = np.random.default_rng(2021)
    x = rng.normal(size=(40, 6)) * np.array([3.0, 2.0, 1.0, 0.5, 0.2, 0.1])
    y = np.tanh(x[:, :4] @ rng.normal(size=(4, 4))) + 0.3 * rng.normal(size=(40, 4))
    for alpha, ref in NETREP.items():
        assert shape_distance(x, y, alpha=alpha) == pytest.approx(ref, abs=1e-10)
        assert shape_distance(y, x, alpha=alpha) == pytest.approx(ref, abs=1e-10)


# --------------------------------------------------------------------------- numerics
@pytest.mark.parametrize("alpha", ALPHAS)
def test_rotated_copy_in_float32_is_zero(alpha):
    """X vs X Q (float32): arccos of the covariance cosine gives ~1e-4 rad (or clips to 0);
    the residual pass gives ~1e-7, the true angle between X and the float32-rounded X Q."""
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(500, 64)) + 3.0).astype(np.float32)
    y = (x @ rotation(64, 4)).astype(np.float32)
    assert shape_distance(x, y, alpha=alpha, backend=F32) < 1e-6  # float32 moments
    assert shape_distance(x, y, alpha=alpha) < 1e-6  # float64 moments
    assert shape_distance(torch.as_tensor(x), torch.as_tensor(x), alpha=alpha, backend=F32) < 1e-6
    small = Backend(torch.device("cpu"), torch.float32, block_bytes=64 * 64 * 4)
    assert shape_distance_streamed(as_embeddings(x), as_embeddings(y), alpha=alpha, backend=small) < 1e-6


def test_residual_angle_agrees_with_cosine_away_from_zero():
    x, y = pair(5, dx=6, dy=9)
    for alpha in ALPHAS:
        fit = shape_from_moments(StreamingMoments().update(torch.as_tensor(x), torch.as_tensor(y)), alpha)
        stable = shape_residual_angle(fit, [(torch.as_tensor(x[i:i + 70]), torch.as_tensor(y[i:i + 70]))
                                            for i in range(0, len(x), 70)])
        assert fit.angle_from_cos > 0.2
        assert stable == pytest.approx(fit.angle_from_cos, abs=1e-12)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_streamed_equals_in_memory(alpha):
    x, y = pair(6, n=500, dx=12, dy=7)
    ea, eb = as_embeddings(x.astype(np.float32)), as_embeddings(y.astype(np.float32))
    small = Backend(torch.device("cpu"), torch.float32, block_bytes=4096)  # 64-row blocks
    assert small.block_rows(19, copies=2) < 100
    ref = shape_distance(x.astype(np.float32), y.astype(np.float32), alpha=alpha)
    assert shape_distance_streamed(ea, eb, alpha=alpha, backend=small) == pytest.approx(ref, abs=1e-6)
    big = Backend.make("cpu", "float64")
    assert shape_distance_streamed(ea, eb, alpha=alpha, backend=big) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_fewer_rows_than_dims_with_dead_units(alpha):
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(20, 50)), rng.normal(size=(20, 30))
    x[:, :5] = 1.5  # dead units
    y[:, -3:] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from a divide or sqrt
        values = [shape_distance(x, y, alpha=alpha), shape_distance(y, x, alpha=alpha),
                  shape_distance(x, y, alpha=alpha, backend=F32),
                  shape_distance_streamed(as_embeddings(x), as_embeddings(y), alpha=alpha, backend=F32)]
    assert all(0.0 <= v <= math.pi / 2 for v in values)
    if alpha == 0.0:
        # rank n − 1 on both sides: the same centred row space, every canonical correlation is 1
        assert max(values[:2]) < 1e-6


# --------------------------------------------------------------------------- metric
@pytest.mark.parametrize("alpha", ALPHAS)
def test_symmetry_and_triangle_inequality(alpha):
    rng = np.random.default_rng(8)
    for _ in range(5):
        base = rng.normal(size=(31, 30))
        x, y, z = (base + s * rng.normal(size=(31, 30)) for s in rng.uniform(0.3, 2.0, 3))
        dxy, dyx = shape_distance(x, y, alpha=alpha), shape_distance(y, x, alpha=alpha)
        assert dxy == pytest.approx(dyx, abs=1e-10)
        assert dxy <= shape_distance(x, z, alpha=alpha) + shape_distance(z, y, alpha=alpha) + 1e-10
    a, b = pair(9, dx=9, dy=4)
    assert shape_distance(a, b, alpha=alpha) == pytest.approx(shape_distance(b, a, alpha=alpha), abs=1e-10)


TRANSFORMS = {
    "rotation": lambda y, rng: y @ rotation(y.shape[1], 10),
    "isotropic_scale": lambda y, rng: 3.7 * y,
    "translation": lambda y, rng: y + 5.0 * rng.normal(size=y.shape[1]),
    "invertible_linear": lambda y, rng: y @ (rng.normal(size=(y.shape[1],) * 2) + 2 * np.eye(y.shape[1])),
}


@pytest.mark.parametrize("alpha", ALPHAS)
def test_invariances(alpha):
    x, y = pair(11, dx=6, dy=6)
    base = shape_distance(x, y, alpha=alpha)
    assert invariances(alpha) <= INVARIANCES
    for name, f in TRANSFORMS.items():
        moved = shape_distance(x, f(y, np.random.default_rng(12)), alpha=alpha)
        if name in invariances(alpha):
            assert moved == pytest.approx(base, abs=1e-9), name
        else:
            assert abs(moved - base) > 1e-3, name


def test_partial_whitening_depends_on_row_count():
    # netrep whitens with the unnormalised XᵀX: repeating every row changes 0 < α < 1 only
    x, y = pair(13, n=60, dx=5, dy=5)
    xx, yy = np.vstack([x, x]), np.vstack([y, y])
    for alpha in ALPHAS:
        same = shape_distance(xx, yy, alpha=alpha) == pytest.approx(shape_distance(x, y, alpha=alpha), abs=1e-10)
        assert same == (alpha in (0.0, 1.0))


# --------------------------------------------------------------------------- permutations and errors
@pytest.mark.parametrize("alpha", ALPHAS)
def test_prepare_shape_shuffled_equals_recomputation(alpha):
    x, y = pair(14, n=150, dx=7, dy=5, noise=0.3)
    prep = prepare_shape(x, y, alpha=alpha)
    assert prep.value == pytest.approx(shape_distance(x, y, alpha=alpha), abs=1e-12)
    rng = np.random.default_rng(15)
    for _ in range(3):
        perm = rng.permutation(len(x))
        assert prep.shuffled(perm) == pytest.approx(shape_distance(x, y[perm], alpha=alpha), abs=1e-10)
        assert prep.shuffled(perm) > prep.value  # a distance: shuffling moves it up
    assert prep.shuffled(np.arange(len(x))) == pytest.approx(prep.value, abs=1e-12)


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), float("inf"), "half"])
def test_bad_alpha(bad):
    x, y = pair(16, n=20, dx=3, dy=3)
    with pytest.raises(InputError, match="alpha"):
        shape_distance(x, y, alpha=bad)
    with pytest.raises(InputError, match="alpha"):
        prepare_shape(x, y, alpha=bad)
    with pytest.raises(InputError, match="alpha"):
        shape_distance_streamed(as_embeddings(x), as_embeddings(y), alpha=bad, backend=F32)
    with pytest.raises(InputError, match="alpha"):
        invariances(bad)


def test_bad_alpha_message_and_constant_input():
    x, y = pair(17, n=20, dx=3, dy=3)
    with pytest.raises(InputError, match=r"^alpha 1\.5: must be in \[0, 1\]$"):
        shape_distance(x, y, alpha=1.5)
    with pytest.raises(InputError, match="constant"):
        shape_distance(np.ones((20, 3)), y)
    with pytest.raises(InputError, match="constant"):
        shape_distance_streamed(as_embeddings(x), as_embeddings(np.zeros((20, 2))), backend=F32)
    with pytest.raises(InputError, match="row-paired"):
        shape_distance(x, y[:10])
