"""The measure registry: one table-driven test of every declared invariance, direction and range."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latentlab.analyze import registry
from latentlab.errors import InputError

# measure, extra parameters: every registered measure at its defaults, plus parameter variants
# whose invariances differ (shape's whitening α, RSA's dissimilarity)
CASES = [(name, {}) for name in registry.MEASURES] + [
    ("shape", {"alpha": 0.0}), ("shape", {"alpha": 0.5}),
    ("rsa", {"rdm": "cosine"}), ("rsa", {"rdm": "euclidean"}), ("rsa", {"method": "pearson"}),
]


def data(seed: int, n: int = 90):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)) + rng.normal(size=6)
    y = x @ rng.normal(size=(6, 5)) + 0.7 * rng.normal(size=(n, 5))
    return x, y


def transform(kind: str, x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 99])
    d = x.shape[1]
    if kind == "rotation":
        return x @ np.linalg.qr(rng.normal(size=(d, d)))[0]
    if kind == "isotropic_scale":
        return 3.7 * x
    if kind == "translation":
        return x + 2.0 * rng.normal(size=d)
    # invertible and far from a scaled rotation: condition number ~ 10
    q1, q2 = np.linalg.qr(rng.normal(size=(d, d)))[0], np.linalg.qr(rng.normal(size=(d, d)))[0]
    return x @ (q1 @ np.diag(np.linspace(0.3, 3.0, d)) @ q2)


def value(measure, x, y, params) -> float:
    return measure.prepare(torch.as_tensor(x), torch.as_tensor(y), **params).value


@pytest.mark.parametrize("name, params", CASES, ids=[f"{n}{p or ''}" for n, p in CASES])
def test_declared_invariances_hold_and_undeclared_ones_break(name, params):
    m = registry.get(name)
    declared = m.invariant_to(params)
    assert declared <= set(registry.INVARIANCES)
    for kind in registry.INVARIANCES:
        moved = []
        for seed in range(3):
            x, y = data(seed)
            base = value(m, x, y, params)
            moved.append(max(abs(value(m, transform(kind, x, seed), y, params) - base),
                             abs(value(m, x, transform(kind, y, seed + 7), params) - base)))
        if kind in declared:
            assert max(moved) < 1e-6, f"{name} {params} claims {kind} invariance but moved by {max(moved):.2e}"
        else:
            assert max(moved) > 1e-4, f"{name} {params} does not claim {kind} invariance, yet it holds"


@pytest.mark.parametrize("name", list(registry.MEASURES))
def test_identical_inputs_reach_the_best_score_and_values_lie_in_range(name):
    m = registry.get(name)
    x, y = data(3)
    if name == "cycle_knn":  # i returns only if one of its neighbours has i among its own k
        assert 0.9 < value(m, x, x, {}) <= 1.0
    else:
        assert value(m, x, x, {}) == pytest.approx(m.best, abs=1e-6)
    lo, hi = m.range
    v = value(m, x, y, {})
    assert lo - 1e-9 <= v <= hi + 1e-9
    perm = np.random.default_rng(0).permutation(len(x))
    prep = m.prepare(torch.as_tensor(x), torch.as_tensor(y))
    assert prep.shuffled(perm) == pytest.approx(value(m, x, y[perm], {}), abs=1e-6)


def test_unknown_metric_and_parameter():
    with pytest.raises(InputError, match="unknown; expected one of"):
        registry.get("cca_magic")
    with pytest.raises(InputError, match="takes no parameter"):
        registry.get("linear_cka").prepare(torch.zeros(4, 2), torch.zeros(4, 2), k=3)


def test_cli_lists_the_registry_and_refuses_bad_parameters(cli, tmp_path):
    out = cli.json("similarity", "--list")
    assert [m["name"] for m in out["measures"]] == list(registry.MEASURES)
    shape = next(m for m in out["measures"] if m["name"] == "shape")
    assert shape["direction"] == "distance" and shape["invariances"] == ["isotropic_scale", "rotation", "translation"]
    x, y = data(1)
    np.save(tmp_path / "x.npy", x), np.save(tmp_path / "y.npy", y)
    for args, message in [(("--calibrate", "0"), "--calibrate"), (("--calibrate", "5", "--alpha", "1.5"), "--alpha 1.5"),
                          (("--calibrate", "5", "--alpha", "0"), "--alpha 0"), (("-m", "cca_magic"), "unknown"),
                          (("-m", "shape", "--whiten", "2"), "--whiten")]:
        res = cli("similarity", tmp_path / "x.npy", tmp_path / "y.npy", *args, ok=False)
        assert res.exit_code == 2 and res.stderr.startswith("error:") and message in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr and res.stdout == ""
    res = cli("cka-matrix", tmp_path / "x.npy", tmp_path / "y.npy", "--metric", "nope", ok=False)
    assert res.exit_code == 2 and "unknown" in res.stderr


def test_cli_similarity_json_shape(cli, tmp_path):
    x, y = data(2, n=60)
    np.save(tmp_path / "x.npy", x), np.save(tmp_path / "y.npy", y)
    out = cli.json("similarity", tmp_path / "x.npy", tmp_path / "y.npy", "-m", "linear_cka,shape,cknna",
                   "--calibrate", "19", "--k", "5")
    assert [s["metric"] for s in out["scores"]] == ["linear_cka", "shape", "cknna"]
    for s in out["scores"]:
        assert set(s["calibration"]) >= {"calibrated", "tau", "p_value", "n_permutations", "alpha"}
        assert 0 <= s["calibration"]["calibrated"] <= 1 and s["calibration"]["p_value"] == pytest.approx(0.05)
    assert out["scores"][2]["params"]["k"] == 5
    json.dumps(out)
