import numpy as np
import pytest

from latentlab import stats
from latentlab.errors import InputError


def test_percentile_interval_of_the_mean_matches_normal_theory():
    x = np.random.default_rng(0).normal(size=2000)
    est = stats.bootstrap(np.mean, x, n_resamples=2000, seed=1)
    half = 1.96 * x.std() / np.sqrt(len(x))
    assert est.value == pytest.approx(x.mean())
    assert est.ci_high - est.ci_low == pytest.approx(2 * half, rel=0.1)
    assert est.method.startswith("percentile bootstrap") and est.n_resamples == 2000


def test_bootstrap_sums_with_rows_equals_generic_bootstrap():
    x = np.random.default_rng(1).normal(size=(80, 2))
    sums = {"n": np.ones(80), "s": x, "ss": x * x}
    def var(s):
        return float((s["ss"][0] - s["s"][0] ** 2 / s["n"]) / (s["n"] - 1))
    fast = stats.bootstrap_sums(sums, var, n_resamples=50, seed=2, value=0.0)
    slow = stats.bootstrap(lambda a: float(np.var(a[:, 0], ddof=1)), x, n_resamples=50, seed=2, value=0.0)
    assert (fast.ci_low, fast.ci_high) == pytest.approx((slow.ci_low, slow.ci_high), abs=1e-12)
    assert "resampled moments" in fast.method


def test_squared_counts_and_dict_statistics():
    sums = {"n": np.ones(3), "v": np.array([1.0, 2.0, 3.0])}
    out = stats.bootstrap_sums(sums, lambda s: {"a": float(s["v"]), "b": float(s["v^2"])},
                               n_resamples=5, value={"a": 6.0, "b": 14.0}, squared=("v",))
    assert set(out) == {"a", "b"} and out["b"].ci_high >= out["a"].ci_low


def test_permutation_p_value_never_zero_and_uniform_under_null():
    rng = np.random.default_rng(3)
    a = rng.normal(size=100)
    res = stats.permutation_test(lambda p: float(np.corrcoef(a, a[p])[0, 1]), 100, observed=1.0, n_permutations=99)
    assert res.p_value == pytest.approx(0.01)
    b = rng.normal(size=100)
    obs = float(np.corrcoef(a, b)[0, 1])
    res = stats.permutation_test(lambda p: float(np.corrcoef(a, b[p])[0, 1]), 100, observed=obs, n_permutations=199)
    assert 0.02 < res.p_value <= 1


def test_group_count_and_labels():
    assert stats.group_count(100, 10, budget=10_000) == 100
    assert stats.group_count(10_000, 1000, budget=50_000) == 50
    labels = stats.group_labels(1000, 50, seed=0)
    assert np.bincount(labels).tolist() == [20] * 50


def test_bad_counts():
    with pytest.raises(InputError):
        stats.bootstrap(np.mean, np.ones(3), n_resamples=0)
