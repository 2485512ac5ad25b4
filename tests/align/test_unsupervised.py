"""fit unsupervised: pairs-free translation (coordinate-free starts, CSLS self-learning, selection score)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from latentlab.align import fit_aligner, load_aligner, make_aligner
from latentlab.align.unsupervised_steps import profile_descriptors
from latentlab.errors import InputError

FAST = {"init": "profile", "restarts": 1, "iters": 40}


def _r1(al, X, Y, truth):
    xm, ym = al.transform(X), al.transform_target(Y)
    xm /= np.linalg.norm(xm, axis=1, keepdims=True)
    ym /= np.linalg.norm(ym, axis=1, keepdims=True)
    return float(np.mean((xm @ ym.T).argmax(1) == truth))


def _latent(rng, n, dl=6, k=12):
    centres = rng.normal(size=(k, dl)) * 2
    return centres[rng.integers(0, k, n)] + 0.6 * rng.normal(size=(n, dl))


@pytest.fixture(scope="module")
def nonlinear():
    """One clustered latent set seen through a linear map (then rotated) and through tanh of
    another map; the target rows are shuffled. Returns X, Yp, truth, B (the tanh map)."""
    rng = np.random.default_rng(0)
    n, d, dl = 300, 24, 6
    Z = _latent(rng, n, dl)
    A, B = rng.normal(size=(dl, d)), rng.normal(size=(dl, d)) / 2
    X = Z @ A + 0.05 * rng.normal(size=(n, d))
    Y = np.tanh(Z @ B) + 0.05 * rng.normal(size=(n, d))
    X = X @ np.linalg.qr(rng.normal(size=(d, d)))[0]
    perm = rng.permutation(n)
    return X, Y[perm], np.argsort(perm), B


@pytest.fixture(scope="module")
def fitted(nonlinear):
    X, Yp, _, _ = nonlinear
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_aligner("unsupervised", X, Yp, **FAST)


def test_beats_ot_on_a_nonlinear_relation(nonlinear, fitted):
    X, Yp, truth, _ = nonlinear
    ot = fit_aligner("ot", X, Yp)
    r_uns, r_ot = _r1(fitted, X, Yp, truth), _r1(ot, X, Yp, truth)
    assert r_uns >= r_ot + 0.1, (r_uns, r_ot)
    assert r_uns > 20 / len(X)  # far above chance (1/300)


def test_recovers_a_rotated_permuted_copy():
    rng = np.random.default_rng(1)
    n, d = 200, 8
    X = _latent(rng, n, d, k=6) + 0.3 * rng.normal(size=(n, d))
    Q = np.linalg.qr(rng.normal(size=(d, d)))[0]
    perm = rng.permutation(n)
    Y = (X @ Q)[perm]
    al = fit_aligner("unsupervised", X, Y, dtype="float64", **FAST)
    assert _r1(al, X, Y, np.argsort(perm)) == 1.0
    np.testing.assert_allclose(al.W_, Q, atol=1e-6)  # the map itself, not only the ranking
    assert al.fit_stats_["verdict"] == "aligned"


def test_selection_score_separates_a_good_fit_from_unrelated_data(nonlinear, fitted):
    X, _, _, B = nonlinear
    rng = np.random.default_rng(5)
    other = np.tanh(_latent(rng, len(X)) @ B) + 0.05 * rng.normal(size=(len(X), B.shape[1]))  # a different latent set
    bad = fit_aligner("unsupervised", X, other, **FAST)
    good, poor = fitted.fit_stats_, bad.fit_stats_
    assert good["selection_gain"] > poor["selection_gain"] + 0.05, (good, poor)
    assert 0 <= poor["selection_null"] < 1 and 0 <= good["selection_score"] <= 1
    assert len(good["starts"]) == 1 and good["starts"][0]["selection_score"] == good["selection_score"]


def test_profile_descriptors_ignore_rotations():
    rng = np.random.default_rng(2)
    A = torch.tensor(rng.normal(size=(50, 6)))
    Q = torch.tensor(np.linalg.qr(rng.normal(size=(6, 6)))[0])
    torch.testing.assert_close(profile_descriptors(A @ Q), profile_descriptors(A), atol=1e-10, rtol=0)
    assert not torch.allclose(profile_descriptors(A), profile_descriptors(A[:, [1, 0, 2, 3, 4, 5]] * 2 + 1))


def test_deterministic_with_a_seed_and_round_trips(tmp_path, nonlinear, fitted):
    X, Yp, _, _ = nonlinear
    again = fit_aligner("unsupervised", X, Yp, **FAST)
    np.testing.assert_array_equal(again.W_, fitted.W_)
    path = fitted.save(tmp_path / "u.safetensors")
    loaded = load_aligner(path)
    np.testing.assert_allclose(loaded.transform(X), fitted.transform(X), atol=1e-12)
    assert loaded.fit_stats_["selection_score"] == fitted.fit_stats_["selection_score"]


@pytest.mark.parametrize("params, word", [({"init": "spectral"}, "init"), ({"keep_prob": 0}, "keep_prob"),
                                          ({"keep_prob": 1.5}, "keep_prob"), ({"restarts": 0}, "restarts"),
                                          ({"iters": 2.5}, "iters"), ({"init_rows": 5}, "init_rows"),
                                          ({"seed": -1}, "seed"), ({"patience": True}, "patience")])
def test_bad_options(params, word):
    with pytest.raises(InputError, match=word):
        make_aligner("unsupervised", **params)


def test_bad_data():
    rng = np.random.default_rng(3)
    with pytest.raises(InputError, match="at least 20 rows"):
        fit_aligner("unsupervised", rng.normal(size=(10, 4)), rng.normal(size=(30, 4)))
    X = rng.normal(size=(40, 4))
    X[7, 2] = np.nan
    with pytest.raises(InputError):
        fit_aligner("unsupervised", X, rng.normal(size=(40, 4)))


def test_cli(tmp_path, nonlinear):
    import json

    from click.testing import CliRunner

    from latentlab.cli.main import cli

    X, Yp, _, _ = nonlinear
    np.save(tmp_path / "x.npy", X[:120])
    np.save(tmp_path / "y.npy", Yp[:120])
    out = tmp_path / "u.safetensors"
    args = ["fit", "unsupervised", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "-o", str(out),
            "--init", "profile", "--restarts", "1", "--iters", "10"]
    res = CliRunner().invoke(cli, args + ["--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert {"selection_score", "selection_null", "selection_gain", "verdict"} <= set(got) and out.is_file()
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0 and "selection_score" in res.output and "verdict" in res.output
    bad = CliRunner().invoke(cli, args + ["--keep-prob", "2"])
    assert bad.exit_code == 2 and "--keep-prob" in bad.output and "keep_prob" not in bad.output


# ---------------------------------------------------------------- few-pair mode (seed_pairs)
def _seeds(truth, k, seed=0):
    src = np.random.default_rng(seed).choice(len(truth), k, replace=False)
    return np.stack([src, truth[src]], axis=1)


@pytest.fixture(scope="module")
def smooth():
    """A Gaussian latent set seen linearly (then rotated) and through tanh of another map, target
    rows shuffled: unlike ``nonlinear`` (clusters) a rotation fits it well once the pairs are known.
    Returns X, Yp, truth."""
    rng = np.random.default_rng(0)
    n, d, dl = 300, 24, 8
    Z = rng.normal(size=(n, dl))
    X = Z @ rng.normal(size=(dl, d)) + 0.05 * rng.normal(size=(n, d))
    Y = np.tanh(Z @ rng.normal(size=(dl, d)) / 2) + 0.05 * rng.normal(size=(n, d))
    X = X @ np.linalg.qr(rng.normal(size=(d, d)))[0]
    perm = rng.permutation(n)
    return X, Y[perm], np.argsort(perm)


@pytest.fixture(scope="module")
def seeded(smooth):
    X, Yp, truth = smooth
    return fit_aligner("unsupervised", X, Yp, seed_pairs=_seeds(truth, 10))


def test_ten_seed_pairs_recover_the_matching_and_beat_the_pairs_free_fit(smooth, seeded):
    X, Yp, truth = smooth
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        free = fit_aligner("unsupervised", X, Yp, **FAST)
        oracle = fit_aligner("procrustes", X, Yp[truth])  # every true pair
    r_seeded, r_free, r_oracle = _r1(seeded, X, Yp, truth), _r1(free, X, Yp, truth), _r1(oracle, X, Yp[truth], np.arange(len(X)))
    # measured: seeded 0.950, Procrustes on all 300 true pairs 0.953, pairs-free 0.023
    assert r_seeded >= r_oracle - 0.05 and r_seeded >= r_free + 0.5, (r_seeded, r_oracle, r_free)
    s = seeded.fit_stats_
    assert s["init"] == "seeded (10 pairs)" and s["n_seed_pairs"] == 10 and seeded.n_anchors_ == 10
    assert s["gw_loss"] < 0.8 * s["gw_loss_random"], s  # the matching is far better than a random one
    assert s["seed_r_at_1"] >= 0.8 and s["final_gw_ratio"] <= 0.65 and s["verdict"] == "aligned", s


def test_wrong_seed_pairs_give_a_failed_verdict(smooth, seeded):
    X, Yp, truth = smooth
    wrong = _seeds(np.random.default_rng(9).permutation(len(truth)), 10)  # pairs that are not partners
    s = fit_aligner("unsupervised", X, Yp, seed_pairs=wrong).fit_stats_
    # here the wrong map still keeps much of the geometry (ratio 0.22 vs 0.14): the seeds give it away
    assert s["verdict"].startswith("failed") and s["seed_r_at_1"] <= 0.3, s
    assert s["final_gw_ratio"] > seeded.fit_stats_["final_gw_ratio"]
    assert s["gw_loss"] / s["gw_loss_random"] > seeded.fit_stats_["gw_loss"] / seeded.fit_stats_["gw_loss_random"]


def test_two_seed_pairs_are_too_few_and_say_so(smooth):
    X, Yp, truth = smooth
    al = fit_aligner("unsupervised", X, Yp, seed_pairs=_seeds(truth, 2))
    assert _r1(al, X, Yp, truth) < 0.2 and al.fit_stats_["verdict"].startswith("failed"), al.fit_stats_


def test_seeded_with_unequal_sizes_pads(smooth):
    """n_A ≠ n_B: the smaller kernel is padded; rows matched to padding are dropped."""
    X, Yp, truth = smooth
    keep = np.sort(np.random.default_rng(4).choice(len(Yp), 260, replace=False))  # target rows kept
    Y2 = Yp[keep]
    pos = np.full(len(Yp), -1)
    pos[keep] = np.arange(len(keep))
    t2 = pos[truth]  # partner of each source row in Y2 (−1: dropped)
    has = np.flatnonzero(t2 >= 0)
    src = np.random.default_rng(1).choice(has, 10, replace=False)
    al = fit_aligner("unsupervised", X, Y2, seed_pairs=np.stack([src, t2[src]], axis=1))
    assert al.fit_stats_["matching_rows"] == [300, 260]
    xm, ym = al.transform(X[has]), al.transform_target(Y2)
    r1 = float(np.mean((xm @ ym.T / np.linalg.norm(ym, axis=1)).argmax(1) == t2[has]))
    assert r1 >= 0.7, r1


def test_seeded_is_deterministic(smooth, seeded):
    X, Yp, truth = smooth
    again = fit_aligner("unsupervised", X, Yp, seed_pairs=_seeds(truth, 10))
    np.testing.assert_array_equal(again.W_, seeded.W_)
    assert again.fit_stats_ == seeded.fit_stats_


@pytest.mark.parametrize("pairs, word", [([[0, 1]], "at least 2"), ([[0, 1], [0, 2]], "source row 0"),
                                         ([[0, 1], [2, 1]], "target row 1"), ([1, 2, 3], "k × 2"),
                                         ([[0, 1], [-1, 2]], "negative"), ([[0.5, 1], [2, 3]], "whole"),
                                         ([[0, 1], [2, 999]], "out of range")])
def test_bad_seed_pairs(smooth, pairs, word):
    X, Yp, _ = smooth
    with pytest.raises(InputError, match="seed_pairs") as err:
        fit_aligner("unsupervised", X, Yp, seed_pairs=pairs)
    assert word in str(err.value)


def test_cli_seed_pairs(tmp_path, smooth):
    import json

    from click.testing import CliRunner

    from latentlab.cli.main import cli

    X, Yp, truth = smooth
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Yp)
    np.savetxt(tmp_path / "pairs.csv", _seeds(truth, 10), fmt="%d", delimiter=",")
    np.save(tmp_path / "bad.npy", np.array([[0, 1], [0, 2]]))
    args = ["fit", "unsupervised", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "-o", str(tmp_path / "s.safetensors")]
    res = CliRunner().invoke(cli, args + ["--seed-pairs", str(tmp_path / "pairs.csv"), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["verdict"] == "aligned" and {"gw_loss", "gw_loss_random", "seed_r_at_1"} <= set(got)
    assert got["params"]["seed_pairs"] == _seeds(truth, 10).tolist()
    bad = CliRunner().invoke(cli, args + ["--seed-pairs", str(tmp_path / "bad.npy")])
    assert bad.exit_code == 2 and "--seed-pairs" in bad.output and "source row 0" in bad.output, bad.output
    assert "seed_pairs" not in bad.output
