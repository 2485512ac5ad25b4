"""Few-pair curves: held-out R@1 per method and number of anchor pairs, baselines, errors, figure."""
from __future__ import annotations

import json

import numpy as np
import pytest

from latentlab.align.curve import curve
from latentlab.errors import InputError

KW = dict(device="cpu", dtype="float64")


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((150, 6))
    R = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    return x, x @ R + 0.15 * rng.standard_normal((150, 6))


@pytest.fixture(scope="module")
def result(pair):
    return curve(["procrustes", "lstsq"], *pair, pairs=[4, 10, 60], draws=3, **KW)


def test_points_summarise_their_draws(result):
    assert result.n_test == 30 and result.n_train == 120 and result.pairs == [4, 10, 60]
    assert [(p.method, p.pairs) for p in result.points] == [(m, p) for m in ("procrustes", "lstsq") for p in (4, 10, 60)]
    for p in result.points:
        v = np.asarray(p.r_at_1)
        assert len(v) == 3 and p.r_at_1_mean == pytest.approx(v.mean()) and p.r_at_1_std == pytest.approx(v.std(ddof=1))
        assert p.r_at_1_min == v.min() and p.r_at_1_max == v.max() and np.all(v * 30 == np.round(v * 30))


def test_more_pairs_recover_the_rotation_and_beat_the_baselines(result):
    proc = {p.pairs: p for p in result.series("procrustes")}
    assert proc[60].r_at_1_mean > 0.9 and proc[60].r_at_1_mean >= proc[4].r_at_1_mean
    assert result.baselines["random_rotation"] < 0.5 < proc[60].r_at_1_min
    assert result.baselines["identity"] is not None  # equal dims: the identity baseline is reported
    assert any("fewer anchors than dimensions" in n for n in result.notes)  # 4 pairs for 6 dims


def test_draws_do_not_depend_on_the_other_methods_and_are_seeded(pair, result):
    alone = curve(["procrustes"], *pair, pairs=[4, 10, 60], draws=3, **KW)
    assert [p.r_at_1 for p in alone.points] == [p.r_at_1 for p in result.series("procrustes")]
    assert alone.baselines == result.baselines
    other = curve(["procrustes"], *pair, pairs=[4], draws=3, seed=1, **KW)
    assert other.points[0].r_at_1 != alone.points[0].r_at_1 or other.baselines != alone.baselines


def test_identity_baseline_on_identical_rows_and_omitted_for_unequal_dims(pair):
    x, y = pair
    same = curve(["lstsq"], x, x, pairs=[10], draws=1, **KW)
    assert same.baselines["identity"] == 1.0 and same.points[0].r_at_1_mean == 1.0
    wide = curve(["lstsq"], x, np.hstack([y, y[:, :2]]), pairs=[10], draws=1, **KW)
    assert wide.baselines["identity"] is None and any("identity baseline omitted" in n for n in wide.notes)


def test_bad_inputs_name_the_argument(pair):
    with pytest.raises(InputError, match=r"^pairs 200: more anchor pairs than the 120 training rows"):
        curve(["lstsq"], *pair, pairs=[10, 200], **KW)
    with pytest.raises(InputError, match="^test_frac"):
        curve(["lstsq"], *pair, test_frac=1.0, **KW)
    with pytest.raises(InputError, match="^pairs"):
        curve(["lstsq"], *pair, pairs=[1], **KW)
    with pytest.raises(InputError, match="unknown method"):
        curve(["nope"], *pair, **KW)
    with pytest.raises(InputError, match="paired rows"):
        curve(["lstsq"], pair[0], pair[1][:100], **KW)


def test_cli_table_json_plot_and_errors(cli, pair, tmp_path):
    x, y = pair
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    args = ("procrustes", "lstsq", tmp_path / "x.npy", tmp_path / "y.npy", "--pairs", "4,20", "--draws", "2")
    out = cli.json("curve", *args, "-o", tmp_path / "c.json", "--plot", tmp_path / "c.png")
    assert out["methods"] == ["procrustes", "lstsq"] and len(out["points"]) == 4 and out["figure"].endswith("c.png")
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["points"] == out["points"] and (tmp_path / "c.png").stat().st_size > 1000
    assert "R@1 mean" in cli("curve", *args).stdout
    res = cli.json("plot", "curve", tmp_path / "c.json", "-o", tmp_path / "c.svg", "--names", "Procrustes,LSQ",
                   "--title", "My curve")
    svg = (tmp_path / "c.svg").read_text()
    assert res["figure"].endswith("c.svg") and "My curve" in svg and "Procrustes" in svg
    res = cli("curve", "lstsq", tmp_path / "x.npy", tmp_path / "y.npy", "--pairs", "10,1000", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: --pairs 1000") and res.stdout == ""
    res = cli("plot", "curve", tmp_path / "c.json", "-o", tmp_path / "d.png", "--names", "one", ok=False)
    assert res.exit_code == 2 and "--names" in res.stderr
    (tmp_path / "bad.json").write_text("{}")
    res = cli("plot", "curve", tmp_path / "bad.json", "-o", tmp_path / "d.png", ok=False)
    assert res.exit_code == 2 and "bad.json" in res.stderr and not (tmp_path / "d.png").exists()
