import numpy as np
import pytest

import latentlab
from latentlab.analyze.gap import parse_shift


def test_closed_form_orthogonal_unit_vectors():
    res = latentlab.gap(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), dtype="float64")
    assert res.centroid_distance == pytest.approx(np.sqrt(2), abs=1e-12)
    assert res.pair_distance == pytest.approx(np.sqrt(2), abs=1e-12)
    assert res.relative_gap is None and res.linear_separability is None


def test_identical_inputs_have_no_gap():
    x = np.random.default_rng(0).normal(size=(200, 16))
    res = latentlab.gap(x, x.copy(), dtype="float64")
    assert res.centroid_distance == pytest.approx(0.0, abs=1e-12)
    assert res.pair_distance == pytest.approx(0.0, abs=1e-6)
    assert res.pair_cosine == pytest.approx(1.0, abs=1e-12)


def test_relative_gap_matches_naive_formula():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(60, 8)) + 1.0, rng.normal(size=(60, 8)) - 0.5
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)

    def d_intra(x):
        c = x @ x.T
        off = c[~np.eye(len(x), dtype=bool)]
        return 1 - (off.mean() + 1) / 2

    d_m = max(1 - (np.mean(np.sum(an * bn, axis=1)) + 1) / 2, 1e-3)
    expected = d_m / (d_m + (d_intra(an) + d_intra(bn)) / 2)
    res = latentlab.gap(a, b, dtype="float64", separability=False)
    assert res.relative_gap == pytest.approx(expected, abs=1e-12)
    assert res.centroid_distance == pytest.approx(np.linalg.norm(an.mean(0) - bn.mean(0)), abs=1e-12)
    assert res.pair_distance == pytest.approx(np.linalg.norm(an - bn, axis=1).mean(), abs=1e-12)


def test_clip_centroid_distance(mtg_dir):
    path = mtg_dir / "features_clip.npy"
    res = latentlab.gap(f"{path}::0", f"{path}::1")
    assert res.centroid_distance == pytest.approx(0.8514, abs=1e-4)
    assert res.linear_separability > 0.95
    assert sum(d["share"] for d in res.top_dimensions) == pytest.approx(res.top_dimensions_share)


def test_parse_shift():
    assert parse_shift("-1:1:0.5") == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert parse_shift("0,0.25") == [0.0, 0.25]


def test_grid_parsing_is_shared_and_strict():
    from latentlab.errors import InputError
    from latentlab.grid import parse_grid
    from latentlab.retrieval.sweep import parse_sweep

    assert parse_grid("0:1:0.1", "--x")[-1] == 1.0 and len(parse_grid("0:1:0.1", "--x")) == 11
    assert parse_sweep("r=0:1:0.5") == ("r", [0.0, 0.5, 1.0])
    for bad in ("1:0:0.1", "0:1:0", "a,b", ""):
        with pytest.raises(InputError, match="START:STOP:STEP"):
            parse_grid(bad, "--x")


def test_bootstrap_equals_a_naive_row_bootstrap_on_the_same_draws():
    from latentlab.stats import percentile_interval, resample_indices

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(80, 6)) + 1, rng.normal(size=(80, 6))
    res = latentlab.gap(a, b, bootstrap=300, seed=4, dtype="float64", separability=False)
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    draws = list(resample_indices(80, 300, 4))

    def centred(reps, value):  # the percentile interval of replicates shifted to have median = value
        reps = np.asarray(reps)
        return percentile_interval(reps - (np.median(reps) - value))

    lo, hi = centred([np.linalg.norm(an[i].mean(0) - bn[i].mean(0)) for i in draws], res.centroid_distance.value)
    assert (res.centroid_distance.ci_low, res.centroid_distance.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    lo, hi = centred([np.linalg.norm(an[i] - bn[i], axis=1).mean() for i in draws], res.pair_distance.value)
    assert (res.pair_distance.ci_low, res.pair_distance.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    assert res.centroid_distance.ci_low < res.centroid_distance.value < res.centroid_distance.ci_high


def test_bootstrap_unpaired_and_narrowing():
    rng = np.random.default_rng(0)
    widths = []
    for n in (100, 1600):
        res = latentlab.gap(rng.normal(size=(n, 8)) + 0.5, rng.normal(size=(n + 7, 8)), bootstrap=200,
                            separability=False, dtype="float64")
        assert res.paired is False and "independently" in res.centroid_distance.method
        widths.append(res.centroid_distance.ci_high - res.centroid_distance.ci_low)
    assert widths[1] < widths[0] / 2


def test_grids_are_bounded_and_finite():
    from latentlab.errors import InputError
    from latentlab.grid import parse_grid
    for bad, message in (("0:1:1e-9", "at most 1000"), ("0:inf:1", "finite"), ("nan,1", "finite"),
                         ("0:1:nan", "finite"), (",".join(["1"] * 1001), "at most 1000")):
        with pytest.raises(InputError, match=message):
            parse_grid(bad, "--shift")
    assert len(parse_grid("0:999:1", "--shift")) == 1000
