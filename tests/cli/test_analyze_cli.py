import re

import numpy as np
import pytest


@pytest.fixture
def files(tmp_path):
    np.random.seed(1337)
    x = np.random.randn(100, 10)
    y = np.random.randn(100, 10) + x
    paths = {"x": tmp_path / "x.npy", "y": tmp_path / "y.npy", "z": tmp_path / "z.npy",
             "const": tmp_path / "const.npy", "nan": tmp_path / "nan.npy", "short": tmp_path / "short.npy"}
    np.save(paths["x"], x), np.save(paths["y"], y), np.save(paths["z"], x + 0.1 * y)
    np.save(paths["const"], np.ones((100, 10))), np.save(paths["short"], x[:50])
    bad = y.copy()
    bad[7, 1] = np.nan
    np.save(paths["nan"], bad)
    return paths


def test_cka_json_and_values(cli, files):
    out = cli.json("cka", files["x"], files["y"], "--dtype", "float64")
    assert out["cka"] == pytest.approx(0.5576132566, abs=1e-8) and out["kernel"] == "linear"
    out = cli.json("cka", files["x"], files["y"], "--kernel", "rbf", "--sigma-frac", "0.5", "--dtype", "float64")
    assert out["cka"] == pytest.approx(0.6548311823, abs=1e-8)
    out = cli.json("cka", files["x"], files["y"], "--debiased", "--dtype", "float64")
    assert out["cka"] == pytest.approx(0.5134564895, abs=1e-8)


def test_cka_bootstrap_and_permutations(cli, files):
    out = cli.json("cka", files["x"], files["y"], "--bootstrap", "50", "--permutations", "49", "--seed", "3")
    assert isinstance(out["cka"], float) and out["ci"]["cka"]["low"] <= out["cka"] <= out["ci"]["cka"]["high"]
    assert out["p_value"] == pytest.approx(0.02) and "bootstrap" in out["bootstrap"]
    text = cli("cka", files["x"], files["y"], "--bootstrap", "50").stdout
    assert re.search(r"cka\s+0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]", text)
    assert "intervals: percentile bootstrap over rows (resampled moments)" in text


def test_cka_matrix(cli, files):
    out = cli.json("cka-matrix", files["x"], files["y"], files["z"], "--dtype", "float64")
    assert out["row_labels"] == out["col_labels"] == ["x.npy", "y.npy", "z.npy"] and out["ci"] == {"matrix": None}
    assert out["matrix"][0][1] == pytest.approx(0.5576132566, abs=1e-8)
    assert "CKA matrix" in cli("cka-matrix", files["x"], files["y"]).stdout


def test_uniformity(cli, files):
    out = cli.json("uniformity", files["x"], files["y"], "--bootstrap", "20")
    assert {"uniformity", "uniformity_b", "alignment"} <= set(out) and out["exact"]
    assert isinstance(out["alignment"], float) and set(out["ci"]["alignment"]) == {"low", "high", "level", "method"}
    out = cli.json("uniformity", files["x"], "--sample", "500")
    assert not out["exact"] and out["pairs"] == 500 and out["alignment"] is None
    assert "estimated on 500 pairs" in cli("uniformity", files["x"], "--sample", "500").stdout


def test_overlap_and_spectrum(cli, files):
    out = cli.json("overlap", files["x"], files["z"], "--rank", "3", "--permutations", "19", "--k", "5")
    for key in ("principal_angles_rad", "overlap", "grassmann_distance_rad", "svcca", "pwcca", "procrustes_angle_rad", "mutual_knn"):
        assert out[key] is not None, key
    assert out["principal_angles_rad"] == sorted(out["principal_angles_rad"])
    assert out["p_value_svcca"] == pytest.approx(0.05) and out["p_value_mutual_knn"] == pytest.approx(0.05)
    out = cli.json("spectrum", files["x"], "--bootstrap", "20")
    for key in ("effective_rank", "participation_ratio", "explained_variance", "anisotropy", "hubness_skew", "hubs"):
        assert key in out
    assert isinstance(out["effective_rank"], float) and out["ci"]["effective_rank"]["low"] <= out["effective_rank"]
    assert "effective_rank" in cli("spectrum", files["x"]).stdout


def test_overlap_shows_degenerate_cca_as_undefined_with_the_reason(cli, files, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "w1.npy", rng.normal(size=(20, 30))), np.save(tmp_path / "w2.npy", rng.normal(size=(20, 30)))
    res = cli("overlap", tmp_path / "w1.npy", tmp_path / "w2.npy")
    assert res.exit_code == 0 and re.search(r"^pwcca\s+— \(undefined", res.stdout, re.M) and "by construction (n ≤ d)" in res.stdout
    assert not re.search(r"^pwcca\s+\d", res.stdout, re.M)  # never a headline number
    out = cli.json("overlap", tmp_path / "w1.npy", tmp_path / "w2.npy")
    assert out["pwcca"] is None and out["svcca"] is None and any("pwcca undefined" in n for n in out["notes"])


@pytest.mark.parametrize("args, key", [
    (("cka", "{const}", "{y}"), "cka"),
    (("overlap", "{const}", "{y}"), "overlap"),
    (("spectrum", "{const}"), "effective_rank"),
    (("similarity", "{const}", "{y}", "-m", "linear_cka,rsa"), None),
])
def test_constant_inputs_give_null_with_the_reason(cli, files, args, key):
    args = [a.format(**files) for a in args]
    res = cli(*args)
    assert "undefined" in res.stdout and "const.npy: every" in res.stdout
    out = cli.json(*args)
    if key:
        assert out[key] is None and any("zero variance" in n for n in out["notes"])
    else:
        assert all(s["value"] is None and s["notes"] for s in out["scores"])


@pytest.mark.parametrize("args, message", [
    (("cka", "{x}", "{nan}"), "row 7 contains NaN"),
    (("cka", "{x}", "{short}"), "paired"),
    (("cka-matrix", "{x}", "{short}"), "paired"),
    (("uniformity", "{x}", "{short}"), "paired"),
    (("uniformity", "{nan}"), "NaN"),
    (("cka", "{x}", "{y}", "--kernel", "rbf", "--max-n", "10"), "--max-n"),
    (("cka", "{x}", "{y}", "--sample", "10"), "RBF kernel only"),
    (("cka", "{x}", "{y}", "--calibrate", "0"), "--calibrate"),
    (("cka-matrix", "--rows", "{x}", "--cols", "{y}", "--calibrate", "5", "--alpha", "1"), "--alpha 1"),
    (("cka-matrix", "--rows", "{x}"), "--rows and --cols go together"),
    (("overlap", "{x}", "{y}", "--variance", "2"), "--variance"),
])
def test_bad_inputs_exit_2(cli, files, args, message):
    res = cli(*[a.format(**files) for a in args], ok=False)
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith("error:") and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["uniformity", "cka", "cka-matrix", "overlap", "spectrum"])
def test_help_has_example(cli, command):
    text = cli(command, "--help").stdout
    assert "Example:" in text and "--json" in text


def test_clip_overlap(cli, mtg_dir):
    path = mtg_dir / "features_clip.npy"
    out = cli.json("cka", f"{path}::0", f"{path}::1")
    assert 0.5 < out["cka"] < 0.8
