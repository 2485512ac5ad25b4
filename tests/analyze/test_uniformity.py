import numpy as np
import pytest
import torch

import latentlab
from latentlab.errors import InputError


def pdist_uniformity(x, t=2.0):
    """Wang & Isola's reference uniform_loss (torch.pdist over L2-normalised rows)."""
    x = torch.nn.functional.normalize(torch.as_tensor(x), dim=1)
    return torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log().item()


def test_regular_simplex_and_antipodal_pair():
    simplex = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float) * 2.5
    assert latentlab.uniformity(simplex, dtype="float64").uniformity == pytest.approx(-16 / 3, abs=1e-12)
    assert latentlab.uniformity(np.array([[0, 2.0], [0, -1.0]]), dtype="float64").uniformity == pytest.approx(-8, abs=1e-12)


@pytest.mark.parametrize("t", [2.0, 0.5, 40.0])
def test_agrees_with_torch_pdist_across_tiles(t):
    x = np.random.default_rng(0).normal(size=(301, 9))
    expected = pdist_uniformity(x, t) if t < 10 else np.log(np.mean(np.exp(-t * torch.pdist(
        torch.nn.functional.normalize(torch.as_tensor(x), dim=1)).pow(2).numpy())))
    for tile in (64, 301, 4096):
        assert latentlab.uniformity(x, t=t, dtype="float64", tile=tile).uniformity == pytest.approx(expected, abs=1e-10)


def test_alignment_and_b():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    res = latentlab.uniformity(a, b, alpha=3.0, dtype="float64")
    assert res.alignment == pytest.approx(np.mean(np.linalg.norm(an - bn, axis=1) ** 3), abs=1e-12)
    assert res.uniformity_b == pytest.approx(pdist_uniformity(b), abs=1e-12)


def test_sampled_estimate_is_close_and_says_so():
    x = np.random.default_rng(2).normal(size=(400, 5))
    res = latentlab.uniformity(x, sample=40000, dtype="float64")
    assert not res.exact and res.pairs == 40000 and "random pairs" in res.notes[0]
    assert res.uniformity == pytest.approx(pdist_uniformity(x), abs=0.03)


def test_bootstrap_weighted_pairs_match_a_naive_replicate():
    from latentlab.stats import resample_indices
    x = np.random.default_rng(3).normal(size=(60, 3))
    res = latentlab.uniformity(x, bootstrap=30, seed=4, dtype="float64", tile=16)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    reps = []
    for idx in resample_indices(60, 30, 4):
        e = np.exp(-2 * np.sum((xn[idx][:, None] - xn[idx][None]) ** 2, -1))
        same = idx[:, None] == idx[None, :]  # pairs of copies of one row are not pairs of items
        reps.append(np.log(e[~same].mean()))
    reps = np.asarray(reps) - (np.median(reps) - res.uniformity.value)  # median-centred on the estimate
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert (res.uniformity.ci_low, res.uniformity.ci_high) == pytest.approx((lo, hi), abs=1e-10)


def test_bootstrap_contains_value_and_narrows():
    rng = np.random.default_rng(5)
    widths = []
    for n in (100, 1600):
        res = latentlab.uniformity(rng.normal(size=(n, 4)), bootstrap=100, dtype="float64")
        assert res.uniformity.ci_low <= res.uniformity.value <= res.uniformity.ci_high
        widths.append(res.uniformity.ci_high - res.uniformity.ci_low)
    assert widths[1] < widths[0] / 2


def test_bad_inputs():
    with pytest.raises(InputError, match=r"row 1 has zero norm \(cannot be L2-normalised for uniformity\)"):
        latentlab.uniformity(np.array([[1.0, 0], [0, 0], [0, 1]]))
    with pytest.raises(InputError, match="paired"):
        latentlab.uniformity(np.eye(3), np.eye(4)[:2, :3])
    with pytest.raises(InputError, match="^t 0"):
        latentlab.uniformity(np.eye(3), t=0)
