"""Null calibration (Gröger, Wen & Brbić 2026) against the authors' package and its promises."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import latentlab
from latentlab import stats
from latentlab.analyze.cka import linear_cka, prepare_linear_cka
from latentlab.errors import InputError

calibrated_similarity = pytest.importorskip("calibrated_similarity")


def our_perms(n, k, seed):
    """The permutations latentlab draws, served one by one to the reference's perm_fn."""
    it = iter(list(stats.permutations(n, k, seed)))
    return lambda n_, device: torch.as_tensor(next(it), device=device)


def test_scalar_calibration_matches_the_reference_package():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6))
    for y, alpha in ((x @ rng.normal(size=(6, 4)) + 2 * rng.normal(size=(80, 4)), 0.05),
                     (rng.normal(size=(80, 4)), 0.1), (x[:, :3] + 0.1 * rng.normal(size=(80, 3)), 0.01)):
        ours = stats.calibrate(prepare_linear_cka(x, y), 80, 99, alpha=alpha, seed=3)
        ref, p, tau = calibrated_similarity.calibrate(
            torch.as_tensor(x), torch.as_tensor(y), lambda a, b: linear_cka(a, b), K=99, alpha=alpha,
            perm_fn=our_perms(80, 99, 3))
        # the reference keeps its scores in float32
        assert ours.calibrated == pytest.approx(float(ref), abs=1e-5)
        assert ours.tau == pytest.approx(float(tau), abs=1e-6) and ours.p_value == pytest.approx(float(p))


def test_layer_aggregate_matches_the_reference_package():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(60, 5))
    xs = [base @ rng.normal(size=(5, 5)) + s * rng.normal(size=(60, 5)) for s in (0.5, 2.0, 4.0)]
    ys = [base @ rng.normal(size=(5, 4)) + s * rng.normal(size=(60, 4)) for s in (1.0, 3.0)]
    res = latentlab.similarity_matrix(xs, ys, metric="linear_cka", calibrate=49, seed=5, dtype="float64")
    for agg, ours in (("max", res.aggregate["best"]), ("mean", res.aggregate["mean"])):
        ref, p, tau = calibrated_similarity.calibrate_layers(
            [torch.as_tensor(x) for x in xs], [torch.as_tensor(y) for y in ys], lambda a, b: linear_cka(a, b),
            agg=agg, K=49, alpha=0.05, perm_fn=our_perms(60, 49, 5))
        assert ours.calibrated == pytest.approx(float(ref), abs=1e-5)
        assert ours.tau == pytest.approx(float(tau), abs=1e-6) and ours.p_value == pytest.approx(float(p))


def test_independent_inputs_calibrate_to_zero_and_a_rotated_copy_far_above():
    rng = np.random.default_rng(2)
    cal = [latentlab.cka(rng.normal(size=(100, 8)), rng.normal(size=(100, 8)), calibrate=99, seed=s,
                         dtype="float64").calibration for s in range(40)]
    values = np.array([c.calibrated for c in cal])
    # under the null the score exceeds τ in about α of the draws, and then only barely
    assert values.mean() < 0.02 and np.mean(values > 0) <= 0.15
    assert np.mean([c.p_value for c in cal]) == pytest.approx(0.5, abs=0.12)
    x = rng.normal(size=(100, 8))
    q = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    for metric in ("linear_cka", "mutual_knn", "cknna", "svcca", "rsa", "distance_correlation", "shape"):
        s = latentlab.similarity(x, x @ q + 0.05 * rng.normal(size=(100, 8)), [metric], calibrate=199,
                                 seed=1, dtype="float64").score(metric)
        assert s.calibration.calibrated > 0.3 and s.calibration.p_value < 0.01, metric


def test_the_best_of_many_layer_pairs_is_paid_for():
    # 6 × 6 unrelated layers: the best cell looks significant on its own, not as a maximum
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(50, 4)) for _ in range(6)]
    ys = [rng.normal(size=(50, 4)) for _ in range(6)]
    res = latentlab.similarity_matrix(xs, ys, metric="linear_cka", calibrate=99, seed=2, dtype="float64")
    cells = np.array([[c.p_value for c in row] for row in res.calibrated])
    assert cells.min() < 0.05  # a per-cell test on the best of 36 pairs would "find" something
    assert res.aggregate["best"].p_value > 0.05 and res.aggregate["best"].calibrated == 0.0


def test_a_distance_is_calibrated_in_its_own_direction():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(80, 5))
    s = latentlab.similarity(x, x + 0.01 * rng.normal(size=(80, 5)), ["shape"], calibrate=49, dtype="float64")
    cal = s.score("shape").calibration
    assert cal.value < cal.tau < cal.null_mean + 0.2 and cal.calibrated > 0.9


def test_bad_calibration_parameters():
    x = np.random.default_rng(5).normal(size=(20, 3))
    with pytest.raises(InputError, match="calibrate"):
        latentlab.cka(x, x, calibrate=0)
    for alpha in (0.0, 1.0, 1.5, float("nan")):
        with pytest.raises(InputError, match="alpha"):
            latentlab.cka(x, x, calibrate=9, alpha=alpha)
    with pytest.raises(InputError, match="unknown"):
        latentlab.similarity(x, x, ["cca_magic"])


def test_cli_cka_and_overlap_calibrate(cli, tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(120, 6))
    np.save(tmp_path / "x.npy", x), np.save(tmp_path / "y.npy", x @ np.linalg.qr(rng.normal(size=(6, 6)))[0])
    out = cli.json("cka", tmp_path / "x.npy", tmp_path / "y.npy", "--calibrate", "49")
    assert out["calibration"]["calibrated"] > 0.9 and out["calibration"]["p_value"] == pytest.approx(0.02)
    assert "calibrated cka" in cli("cka", tmp_path / "x.npy", tmp_path / "y.npy", "--calibrate", "19").stdout
    out = cli.json("overlap", tmp_path / "x.npy", tmp_path / "y.npy", "--calibrate", "19")
    assert set(out["calibration"]) == {"svcca", "pwcca", "mutual_knn"}
    res = cli("cka", tmp_path / "x.npy", tmp_path / "y.npy", "--calibrate", "9", "--alpha", "2", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: --alpha 2")


def test_too_few_shuffles_warn_and_negative_strides_work():
    from latentlab.errors import LatentlabWarning
    x = np.random.default_rng(7).normal(size=(30, 4))
    with pytest.warns(LatentlabWarning, match="too few"):
        res = latentlab.cka(x, x[:, ::-1], calibrate=10)
    assert res.calibration.calibrated == 0.0 and res.cka == pytest.approx(1.0)
