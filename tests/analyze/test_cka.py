import numpy as np
import pytest

import latentlab
from latentlab.analyze.cka import linear_cka, linear_cka_bootstrap, rbf_cka
from latentlab.errors import InputError


def kornblith_demo():
    np.random.seed(1337)
    x = np.random.randn(100, 10)
    y = np.random.randn(100, 10) + x
    return x, y


def gram_cka(k, l, debiased=False):
    """Naive Gram-form CKA: Kornblith's centring (biased) or Song et al.'s unbiased HSIC."""
    n = len(k)
    if not debiased:
        h = np.eye(n) - 1.0 / n
        kc, lc = h @ k @ h, h @ l @ h
        return np.sum(kc * lc) / np.sqrt(np.sum(kc * kc) * np.sum(lc * lc))

    def hsic(a, b):
        a, b = a - np.diag(np.diag(a)), b - np.diag(np.diag(b))
        one = np.ones(n)
        return (np.trace(a @ b) + one @ a @ one * (one @ b @ one) / ((n - 1) * (n - 2))
                - 2.0 / (n - 2) * one @ a @ b @ one) / (n * (n - 3))

    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def rbf_gram(x, frac):
    sq = np.sum((x[:, None] - x[None]) ** 2, -1)
    return np.exp(-sq / (2 * frac**2 * np.median(sq)))


@pytest.mark.parametrize("kw, expected", [({}, 0.5576132566), ({"kernel": "rbf"}, 0.6548311823),
                                          ({"debiased": True}, 0.5134564895)])
def test_kornblith_demo_values(kw, expected):
    x, y = kornblith_demo()
    assert latentlab.cka(x, y, dtype="float64", **kw).cka == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
@pytest.mark.parametrize("debiased", [False, True])
def test_agrees_with_naive_gram_form(kernel, debiased):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(61, 7)) + 4.0
    y = x @ rng.normal(size=(7, 5)) + rng.normal(size=(61, 5))
    if kernel == "linear":
        expected = gram_cka(x @ x.T, y @ y.T, debiased)
    else:
        expected = gram_cka(rbf_gram(x, 0.7), rbf_gram(y, 0.7), debiased)
    res = latentlab.cka(x, y, kernel=kernel, debiased=debiased, sigma_frac=0.7, dtype="float64")
    assert res.cka == pytest.approx(expected, abs=1e-10)


def test_rbf_blocks_do_not_change_the_value():
    x, y = kornblith_demo()
    assert rbf_cka(x, y, block=7) == pytest.approx(rbf_cka(x, y, block=4096), abs=1e-12)
    assert rbf_cka(x, y, block=7, debiased=True) == pytest.approx(0.4192767510, abs=1e-8)


def test_streamed_blocks_match_in_memory(tmp_path):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(3000, 12)) + 100.0, rng.normal(size=(3000, 9))
    y[:, :3] += x[:, :3]
    np.save(tmp_path / "x.npy", x), np.save(tmp_path / "y.npy", y)
    from latentlab.compute import Backend
    from latentlab.analyze.cka import linear_cka_streamed
    from latentlab.io import read_embeddings
    small = Backend.make("cpu", "float64", block_bytes=4096)  # many tiny blocks
    for debiased in (False, True):
        got = linear_cka_streamed(read_embeddings(tmp_path / "x.npy"), read_embeddings(tmp_path / "y.npy"),
                                  debiased=debiased, backend=small)
        assert got == pytest.approx(linear_cka(x, y, debiased=debiased), abs=1e-10)


def test_orthogonal_scaled_shifted_copy_gives_one():
    x, _ = kornblith_demo()
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 10)))
    assert latentlab.cka(x, 3.7 * x @ q + 5, dtype="float64").cka == pytest.approx(1.0, abs=1e-12)


def test_cka_matrix_matches_pairwise_and_is_symmetric():
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(80, d)) for d in (4, 6, 5)]
    xs[1][:, :4] += xs[0]
    for debiased in (False, True):
        m = np.array(latentlab.cka_matrix(xs, dtype="float64", debiased=debiased).matrix)
        assert np.allclose(m, m.T) and np.allclose(np.diag(m), 1.0)
        assert m[0, 1] == pytest.approx(linear_cka(xs[0], xs[1], debiased=debiased), abs=1e-12)
        assert m[1, 2] == pytest.approx(linear_cka(xs[1], xs[2], debiased=debiased), abs=1e-12)
    mr = latentlab.cka_matrix(xs, kernel="rbf", dtype="float64").matrix
    assert mr[0][2] == pytest.approx(rbf_cka(xs[0], xs[2]), abs=1e-12)


def test_moment_bootstrap_equals_recomputation_on_the_same_draws():
    x, y = kornblith_demo()
    fast = linear_cka_bootstrap(x, y, 40, seed=3)
    slow = latentlab.stats.bootstrap(lambda a, b: linear_cka(a, b), x, y, n_resamples=40, seed=3)
    assert (fast.ci_low, fast.ci_high) == pytest.approx((slow.ci_low, slow.ci_high), abs=1e-10)
    assert "resampled moments" in fast.method


def test_grouped_moment_bootstrap_is_used_when_rows_do_not_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 3))
    y = x + rng.normal(size=(3000, 3))
    est = linear_cka_bootstrap(x, y, 200, budget=8 * 34 * 200)
    assert "200 random row groups" in est.method
    assert est.ci_low < linear_cka(x, y) < est.ci_high


def test_bootstrap_contains_value_and_narrows_and_permutation():
    rng = np.random.default_rng(2)
    widths = []
    for n in (200, 3200):
        x = rng.normal(size=(n, 3))
        y = x + rng.normal(size=(n, 3))
        res = latentlab.cka(x, y, dtype="float64", bootstrap=200, permutations=99)
        assert res.cka.ci_low <= res.cka.value <= res.cka.ci_high
        assert res.p_value == pytest.approx(0.01)
        widths.append(res.cka.ci_high - res.cka.ci_low)
    assert widths[1] < widths[0] / 2
    z = rng.normal(size=(200, 3))
    null = latentlab.cka(z, rng.normal(size=(200, 3)), permutations=99, dtype="float64")
    assert null.p_value > 0.05


def test_permutation_shortcut_matches_direct_shuffle():
    from latentlab.analyze.cka import prepare_linear_cka
    import torch
    x, y = kornblith_demo()
    for debiased in (False, True):
        direct = latentlab.stats.permutation_test(
            lambda p: linear_cka(x, y[p], debiased=debiased), 100, observed=0.3, n_permutations=20, seed=1)
        prep = prepare_linear_cka(torch.tensor(x), torch.tensor(y), debiased=debiased)
        assert prep.value == pytest.approx(linear_cka(x, y, debiased=debiased), abs=1e-12)
        fast = latentlab.stats.permutation_test(prep.shuffled, 100, observed=0.3, n_permutations=20, seed=1)
        assert fast.p_value == direct.p_value and fast.null_mean == pytest.approx(direct.null_mean, abs=1e-12)


def test_bad_inputs():
    x, y = kornblith_demo()
    res = latentlab.cka(np.ones((10, 3)), y[:10])  # undefined, not an error: null with the reason
    assert res.cka is None and "constant" in res.notes[0] and res.to_dict()["cka"] is None
    assert latentlab.cka(x[:10], np.ones((10, 3)), kernel="rbf").cka is None
    with pytest.raises(InputError, match="paired"):
        latentlab.cka(x, y[:50])
    with pytest.raises(InputError, match="max_n"):
        latentlab.cka(x, y, kernel="rbf", max_n=50)
    assert latentlab.cka(x, y, kernel="rbf", max_n=50, sample=50).notes
    bad = x.copy()
    bad[4, 2] = np.nan
    with pytest.raises(InputError, match="row 4"):
        latentlab.cka(bad, y)


def test_debiased_moment_bootstrap_equals_recomputation_on_the_same_draws():
    x, y = kornblith_demo()
    fast = linear_cka_bootstrap(x, y, 40, seed=3, debiased=True)
    slow = latentlab.stats.bootstrap(lambda a, b: linear_cka(a, b, debiased=True), x, y, n_resamples=40, seed=3)
    assert (fast.ci_low, fast.ci_high) == pytest.approx((slow.ci_low, slow.ci_high), abs=1e-10)
    per_group = 8 * (3 * 10 * 10 + 2 * 10 + 1) + 8 * (2 * 20 + 5)
    grouped = linear_cka_bootstrap(x, y, 200, seed=3, debiased=True, budget=per_group * 20)
    assert "20 random row groups" in grouped.method


def test_centred_interval_contains_the_estimate_where_duplicates_bias_cka():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 40))
    y = x @ rng.normal(size=(40, 40)) + 3 * rng.normal(size=(300, 40))
    value = linear_cka(x, y)
    raw = [linear_cka(x[i], y[i]) for i in latentlab.stats.resample_indices(300, 200, 1)]
    lo, hi = latentlab.stats.percentile_interval(raw)
    assert lo > value  # resamples have fewer distinct rows: CKA drifts up, the plain interval misses
    res = latentlab.cka(x, y, bootstrap=200, seed=1, dtype="float64")
    assert res.cka.ci_low < res.cka.value < res.cka.ci_high and "median-centred" in res.bootstrap
    assert res.cka.ci_high - res.cka.ci_low == pytest.approx(hi - lo, rel=1e-9)  # the spread is kept
