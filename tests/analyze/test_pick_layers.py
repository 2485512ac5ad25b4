"""pick-layers: every (source, target) layer pair by mutual k-NN and linear CKA, beside shuffled pairs, ranked."""
from __future__ import annotations

import numpy as np
import pytest

from latentlab.analyze.compare import similarity
from latentlab.analyze.pick_layers import pick_layers
from latentlab.cli.pick_layers_cmd import split_layers
from latentlab.errors import InputError


@pytest.fixture(scope="module")
def layers():
    rng = np.random.default_rng(0)
    n, d = 90, 12
    x = rng.standard_normal((n, d))
    R = np.linalg.qr(rng.standard_normal((d, d)))[0]
    src = {"same": x, "noisy": x + 1.5 * rng.standard_normal((n, d)), "unrelated": rng.standard_normal((n, d))}
    tgt = {"rotated": 2.0 * x @ R, "wide": np.tanh(x @ rng.standard_normal((d, 20)))}
    return src, tgt


def test_ranking_scores_and_chance(layers):
    src, tgt = layers
    res = pick_layers(list(src.values()), list(tgt.values()), k=5, shuffles=19, source_labels=list(src),
                      target_labels=list(tgt), device="cpu", dtype="float64")
    assert len(res.pairs) == 6 and [p.rank for p in res.pairs] == list(range(1, 7))
    best = res.best
    # a rotated, scaled copy: both measures are invariant to it, so it is exactly the best pair
    assert (best.source, best.target) == ("same", "rotated")
    assert best.mutual_knn == pytest.approx(1.0) and best.cka == pytest.approx(1.0)
    assert best.mutual_knn_calibrated == pytest.approx(1.0) and best.mutual_knn_p_value == pytest.approx(1 / 20)
    keys = [(p.mutual_knn, p.cka) for p in res.pairs]
    assert keys == sorted(keys, reverse=True)  # mutual k-NN first, then CKA
    assert [p.source for p in res.pairs[-2:]] == ["unrelated", "unrelated"]
    for p in res.pairs:  # shuffled pairs: mutual k-NN near k/(n − 1), far below a related pair
        assert abs(p.mutual_knn_shuffled - 5 / 89) < 0.03
        assert p.cka_shuffled < 0.35
    worst = res.pairs[-1]
    assert worst.mutual_knn_calibrated < 0.2 and worst.mutual_knn_p_value > 0.05
    assert res.best_calibrated["mutual_knn"].calibrated == pytest.approx(1.0)


def test_cells_equal_the_pairwise_similarity(layers):
    src, tgt = layers
    res = pick_layers([src["noisy"]], [tgt["wide"]], k=7, shuffles=19, device="cpu", dtype="float64")
    one = similarity(src["noisy"], tgt["wide"], ["mutual_knn", "linear_cka"], k=7, device="cpu", dtype="float64")
    assert res.pairs[0].mutual_knn == pytest.approx(float(one.score("mutual_knn").value))
    assert res.pairs[0].cka == pytest.approx(float(one.score("linear_cka").value))


def test_bad_inputs(layers):
    src, tgt = layers
    with pytest.raises(InputError, match="paired rows"):
        pick_layers([src["same"]], [tgt["rotated"][:50]], device="cpu")
    with pytest.raises(InputError, match="^targets"):
        pick_layers([src["same"]], [], device="cpu")
    with pytest.raises(InputError, match="^k"):
        pick_layers([src["same"]], [tgt["rotated"]], k=0, device="cpu")


def test_split_layers_syntax():
    assert split_layers(["--source", "a", "b", "--target", "c,d"]) == (["a", "b"], ["c", "d"])
    assert split_layers(["--source=a", "--target", "c", "--source", "b"]) == (["a", "b"], ["c"])
    with pytest.raises(InputError, match="--target"):
        split_layers(["--source", "a"])
    with pytest.raises(InputError, match="unknown option"):
        split_layers(["--source", "a", "--tagret", "b"])


def test_cli_with_3d_selectors_json_and_errors(cli, layers, tmp_path):
    src, tgt = layers
    np.save(tmp_path / "a.npy", np.stack([src["same"], src["unrelated"]]).astype(np.float32))  # 3-D: PATH::i
    np.save(tmp_path / "b.npy", tgt["rotated"].astype(np.float32))
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    out = cli.json("pick-layers", "--source", f"{a}::0", f"{a}::1", "--target", b, "--shuffles", "19", "--k", "5")
    assert len(out["pairs"]) == 2 and out["best"]["source"] == "a.npy::0" and out["best"]["mutual_knn"] == pytest.approx(1.0)
    assert {"mutual_knn_shuffled", "cka_calibrated", "cka_p_value"} <= set(out["pairs"][1])
    text = cli("pick-layers", "--source", f"{a}::1,{a}::0", "--target", b, "--shuffles", "19").stdout
    assert "best pair: a.npy::0 → b.npy" in text and "shuffled" in text
    np.save(tmp_path / "short.npy", tgt["rotated"][:40])
    res = cli("pick-layers", "--source", a.as_posix() + "::0", "--target", tmp_path / "short.npy", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error:") and "short.npy" in res.stderr and res.stdout == ""
    res = cli("pick-layers", "--source", f"{a}::0", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: --target")
