import numpy as np
import pytest

import latentlab
from latentlab.analyze.spectrum import spectral_stats
from latentlab.errors import InputError


def test_effective_rank_and_participation_ratio_naive():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 12)) * np.linspace(0.5, 4, 12) + 3.0
    res = latentlab.spectrum(x, hubness=False, dtype="float64")
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    p = s / s.sum()
    assert res.effective_rank == pytest.approx(np.exp(-np.sum(p * np.log(p))), abs=1e-9)
    lam = s**2
    assert res.participation_ratio == pytest.approx(lam.sum() ** 2 / (lam**2).sum(), abs=1e-9)
    assert res.explained_variance == pytest.approx((lam / lam.sum())[:10], abs=1e-12)


def test_closed_forms():
    # k equal variances: effective rank and participation ratio are both k
    x = np.concatenate([np.eye(4), -np.eye(4)]) * 3.0
    st = spectral_stats(np.linalg.eigvalsh(np.cov(x.T)))
    assert st["effective_rank"] == pytest.approx(4) and st["participation_ratio"] == pytest.approx(4)


def test_anisotropy_is_mean_pairwise_cosine():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 5)) + 1.0
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = xn @ xn.T
    naive = c[~np.eye(150, dtype=bool)].mean()
    assert latentlab.spectrum(x, hubness=False, dtype="float64").anisotropy == pytest.approx(naive, abs=1e-12)


def test_bootstrap_contains_value_and_narrows():
    rng = np.random.default_rng(2)
    widths = []
    for n in (200, 3200):
        x = rng.normal(size=(n, 3)) * np.array([3, 2, 1]) + 0.5
        res = latentlab.spectrum(x, bootstrap=100, k=5, dtype="float64")
        for name in ("effective_rank", "participation_ratio", "anisotropy"):
            est = getattr(res, name)
            assert est.ci_low <= est.value <= est.ci_high, name
        widths.append(res.anisotropy.ci_high - res.anisotropy.ci_low)
    assert widths[1] < widths[0] / 2


def test_clip_text_spectrum(mtg_dir):
    res = latentlab.spectrum(f"{mtg_dir / 'features_clip.npy'}::1")
    assert 0.4 < res.anisotropy < 0.7 and res.hubs > 0 and res.effective_rank > res.participation_ratio


def test_constant_input_gives_null_with_the_reason():
    res = latentlab.spectrum(np.ones((10, 4)))
    assert res.effective_rank is None and res.anisotropy is None and "constant" in res.notes[0]
