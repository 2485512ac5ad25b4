"""`fit mlp`: the projector MLP aligner and the STRUCTURE regulariser.

Small dims and few epochs throughout (the whole file stays well under a minute on two busy cores).
"""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone

from latentlab.align import evaluate_aligner, fit_aligner, load_aligner, make_aligner
from latentlab.align.structure import js_rows, structure_loss
from latentlab.analyze.neighbors import prepare_mutual_knn_xy
from latentlab.errors import InputError

FAST = dict(hidden=64, epochs=8, batch_size=32)


def _fit(method, X, Y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_aligner(method, X, Y, **kw)


def _tanh_pairs(n, d, e, noise, seed, scale=3.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = np.tanh(X @ (rng.normal(size=(d, e)) * scale / np.sqrt(d))) + noise * rng.normal(size=(n, e))
    return X, Y


# ---------------------------------------------------------------------- the regulariser
def test_js_closed_forms():
    P = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    Q = torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.8, 0.2]], dtype=torch.float64)
    js = js_rows(P, Q)
    assert js[0] == pytest.approx(math.log(2), abs=1e-15)  # disjoint supports: the maximum, log 2
    assert js[1] == 0.0
    # JS([.2,.8] ‖ [.8,.2]) with m = [.5,.5]: ½Σ p log(p/m) + ½Σ q log(q/m) = Σ p log(2p)
    assert js[2] == pytest.approx(0.2 * math.log(0.4) + 0.8 * math.log(1.6), abs=1e-15)
    assert torch.equal(js_rows(Q, P), js)  # symmetric


def test_structure_is_zero_for_the_identity_and_positive_otherwise():
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(40, 8)))
    for levels in (1, 2, 3):
        assert float(structure_loss(X, X, levels)) == 0.0
        # invariances of the definition: scale (rows are L2-normalised) and rotation (only cosines count)
        Q = torch.linalg.qr(torch.as_tensor(rng.normal(size=(8, 8))))[0]
        assert float(structure_loss(X, 3.0 * X @ Q, levels)) < 1e-12
        assert float(structure_loss(X, torch.tanh(2 * X[:, :5]), levels)) > 1e-3
        assert float(structure_loss(X, X[torch.randperm(40)], levels)) > 1e-2
    # bounded by log 2 (the standard JS direction; the reverse-KL pair is unbounded)
    assert float(structure_loss(X, torch.as_tensor(rng.normal(size=(40, 3))))) < math.log(2)


def test_structure_gradient_pulls_towards_the_source_structure():
    rng = np.random.default_rng(1)
    X = torch.as_tensor(rng.normal(size=(30, 6)))
    Z = (X + 0.5 * torch.as_tensor(rng.normal(size=(30, 6)))).requires_grad_(True)
    loss = structure_loss(X, Z)
    before = float(loss.detach())
    loss.backward()
    with torch.no_grad():
        after = float(structure_loss(X, Z - 0.5 * Z.grad / Z.grad.norm()))
    assert after < before


# ---------------------------------------------------------------------- the aligner
@pytest.mark.slow
def test_nonlinear_relation_mlp_beats_linear_maps():
    X, Y = _tanh_pairs(1700, 8, 8, 0.2, seed=0, scale=4.0)
    anchors = np.arange(1200)
    r1 = {m: evaluate_aligner(_fit(m, X, Y, anchors=anchors, **kw), X, Y, device="cpu").r_at_1
          for m, kw in (("lstsq", {}), ("procrustes", {}),
                        ("mlp", dict(hidden=128, epochs=80, batch_size=128, lr=1e-2, patience=80)))}
    print("held-out R@1:", r1)
    assert r1["mlp"] >= max(r1["lstsq"], r1["procrustes"]) + 0.1, r1


def test_linear_relation_mlp_is_close_to_lstsq():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1200, 8))
    Y = X @ rng.normal(size=(8, 8)) + 1.5 * rng.normal(size=(1200, 8))
    anchors = np.arange(800)
    ls = evaluate_aligner(_fit("lstsq", X, Y, anchors=anchors), X, Y, device="cpu").r_at_1
    mlp = evaluate_aligner(_fit("mlp", X, Y, anchors=anchors, hidden=64, epochs=15, batch_size=64, lr=3e-3),
                           X, Y, device="cpu").r_at_1
    assert 0.1 < ls < 0.9  # neither trivial nor hopeless, so a gap could show
    assert mlp >= ls - 0.03, (mlp, ls)


def test_structure_keeps_neighbourhoods_with_few_pairs():
    """200 pairs: λ = 10 keeps the projected neighbourhoods closer to the source's (mutual
    k-NN, k = 10, on the held-out rows) than λ = 0, and held-out R@1 is not worse."""
    X, Y = _tanh_pairs(1200, 16, 16, 0.6, seed=1, scale=2.0)
    anchors, held = np.arange(200), np.arange(200, 1200)
    out = {}
    for lam in (0.0, 10.0):
        al = _fit("mlp", X, Y, anchors=anchors, hidden=128, epochs=20, batch_size=64, lr=3e-3, structure=lam)
        out[lam] = (prepare_mutual_knn_xy(X[held], al.transform(X[held]), k=10).value,
                    evaluate_aligner(al, X, Y, device="cpu").r_at_1)
    print("structure 0 vs 10 (mutual kNN, R@1):", out)
    assert out[10.0][0] >= out[0.0][0] + 0.01, out
    assert out[10.0][1] >= out[0.0][1] - 0.01, out


def test_seeded_fit_is_deterministic(tmp_path):
    X, Y = _tanh_pairs(200, 6, 5, 0.1, seed=3)
    kw = dict(FAST, structure=1.0, structure_levels=2, dropout=0.2)
    a, b = _fit("mlp", X, Y, seed=4, **kw), _fit("mlp", X, Y, seed=4, **kw)
    assert np.array_equal(a.transform(X), b.transform(X))
    assert a.fit_stats_["train_loss"] == b.fit_stats_["train_loss"]
    c = _fit("mlp", X, Y, seed=5, **kw)
    assert not np.array_equal(a.transform(X), c.transform(X))


def test_save_load_transform_equals_in_memory_and_records_training(tmp_path):
    X, Y = _tanh_pairs(150, 6, 4, 0.1, seed=4)
    al = _fit("mlp", X, Y, n_anchors=120, layers=3, **FAST)
    back = load_aligner(al.save(tmp_path / "m.safetensors"))
    assert np.array_equal(back.transform(X), al.transform(X))
    assert np.array_equal(back.transform_target(Y), al.transform_target(Y))
    assert back.params_ == al.params_ and back.hid_W_.shape == (1, 64, 64)
    st = back.fit_stats_
    assert len(st["train_loss"]) == len(st["val_loss"]) == st["epochs_run"] and 0 <= st["best_epoch"] <= st["epochs_run"]
    assert st["best_val_loss"] == min([st["val_loss_start"], *st["val_loss"]])  # the best checkpoint is kept
    assert "GELU" in st["architecture"]


@pytest.mark.parametrize("edit", [("layers", 2), ("layers", 4), ("hidden", 32)])
def test_edited_architecture_in_the_header_is_refused(tmp_path, edit):
    from tests.align.test_artifact_validation import edited

    X, Y = _tanh_pairs(80, 5, 4, 0.1, seed=5)
    path = _fit("mlp", X, Y, layers=3, **FAST).save(tmp_path / "m.safetensors")
    key, value = edit
    bad = edited(path, tmp_path / "bad.safetensors", edit_meta=lambda m: m["params"].__setitem__(key, value))
    with pytest.raises(InputError, match="corrupt aligner artifact.*'params'"):
        load_aligner(bad)


def test_clone_and_sklearn_conventions():
    X, Y = _tanh_pairs(100, 5, 4, 0.1, seed=6)
    al = make_aligner("mlp", **FAST, structure=2.0)
    fitted = _fit("mlp", X, Y, **FAST, structure=2.0)
    twin = clone(fitted)
    assert twin.get_params() == al.get_params() and not any(k.endswith("_") for k in vars(twin))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin.fit(X, Y)
    assert np.array_equal(twin.transform(X), fitted.transform(X))  # same seed, same rows: the same map


@pytest.mark.parametrize("kw", [dict(structure=-1.0), dict(loss="hinge"), dict(layers=1), dict(val_frac=1.0),
                                dict(lr=0.0), dict(batch_size=1), dict(dropout=1.0), dict(structure_levels=0),
                                dict(epochs=2.5), dict(patience=0), dict(weight_decay=float("nan"))])
def test_bad_options_name_the_argument(kw):
    X, Y = _tanh_pairs(40, 4, 3, 0.1, seed=7)
    (name,) = kw
    with pytest.raises(InputError, match=rf"`?{name}`?[ =]"):
        _fit("mlp", X, Y, **kw)


def test_device_fit_and_transform(device, tmp_path):
    X, Y = _tanh_pairs(120, 6, 5, 0.1, seed=8)
    al = _fit("mlp", X, Y, device=device, **FAST)
    t = al.map_rows(X, "source")
    assert t.device.type == torch.device(device).type
    assert np.abs(t.cpu().numpy() - al.transform(X, block_rows=7)).max() <= 1e-12 * max(1.0, float(t.abs().max()))
    res = evaluate_aligner(al, X, Y, device=device)
    assert res.r_at_1 > 2 * res.baselines["random_rotation"]["r_at_1"]
    back = load_aligner(al.save(tmp_path / "m.safetensors")).set_params(device=device)
    assert np.array_equal(back.transform(X), al.transform(X))


# ---------------------------------------------------------------------- the CLI
@pytest.fixture
def files(tmp_path):
    X, Y = _tanh_pairs(160, 6, 4, 0.1, seed=9)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    bad = X.copy()
    bad[17, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.save(tmp_path / "short.npy", X[:100])
    np.save(tmp_path / "wide.npy", np.hstack([X, X]))
    return tmp_path


def test_cli_fit_apply_evaluate(cli, files):
    out = cli.json("fit", "mlp", files / "x.npy", files / "y.npy", "-o", files / "m.safetensors", "--hidden", "32",
                   "--layers", "2", "--loss", "both", "--epochs", "5", "--batch-size", "32", "--val-frac", "0.1",
                   "--structure", "10", "--structure-levels", "2", "--lr", "3e-3", "--weight-decay", "0.05",
                   "--patience", "3", "--n-anchors", "120")
    assert out["method"] == "mlp" and out["params"]["structure"] == 10.0 and out["params"]["hidden"] == 32
    assert len(out["train_loss"]) == out["epochs_run"] and len(out["structure_loss"]) == out["epochs_run"]
    ev = cli.json("evaluate", files / "m.safetensors", files / "x.npy", files / "y.npy")
    assert ev["n_rows"] == 40 and ev["r_at_1"] > ev["baselines"]["random_rotation"]["r_at_1"]
    ap = cli.json("apply", files / "m.safetensors", files / "x.npy", "-o", files / "o.npy")
    assert ap["dim_out"] == 4 and np.load(files / "o.npy").shape == (160, 4)


@pytest.mark.parametrize("args, needle", [
    (["x.npy", "y.npy", "--structure", "-1"], "--structure"),
    (["x.npy", "y.npy", "--n-anchors", "8"], "--val-frac"),
    (["nan.npy", "y.npy"], "nan.npy"),
    (["x.npy", "short.npy"], "short.npy"),
    (["x.npy", "y.npy", "--loss", "hinge"], "--loss"),
    (["x.npy", "y.npy", "--batch-size", "1"], "--batch-size"),
    (["x.npy", "y.npy", "--layers", "1"], "--layers"),
    (["x.npy", "y.npy", "--val-frac", "1.5"], "--val-frac"),
])
def test_cli_fit_bad_input_is_exit_2(cli, files, args, needle):
    res = cli("fit", "mlp", *[files / a if a.endswith(".npy") else a for a in args], "-o", files / "m.safetensors",
              "--epochs", "2", "--hidden", "8", ok=False)
    assert res.exit_code == 2 and needle in res.stderr and not (files / "m.safetensors").exists()
    assert "Traceback" not in res.output


def test_cli_apply_wrong_dims_is_exit_2(cli, files):
    cli("fit", "mlp", files / "x.npy", files / "y.npy", "-o", files / "m.safetensors", "--epochs", "2", "--hidden", "8")
    res = cli("apply", files / "m.safetensors", files / "wide.npy", "-o", files / "o.npy", ok=False)
    assert res.exit_code == 2 and "wide.npy" in res.stderr and "dimension 6" in res.stderr
    res = cli("evaluate", files / "m.safetensors", files / "y.npy", files / "x.npy", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error:")
    meta = json.loads(json.dumps(load_aligner(files / "m.safetensors").fit_stats_))  # the header is JSON
    assert meta["n_train"] + meta["n_val"] == 160


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_cli_precision_reaches_the_fit(cli, files, precision):
    """`fit mlp --precision` is the CLI's form of ``fit_aligner(precision=…)``; fit_stats say what ran."""
    out = cli.json("fit", "mlp", files / "x.npy", files / "y.npy", "-o", files / "m.safetensors", "--epochs", "2",
                   "--hidden", "8", "--precision", precision)
    assert out["precision"].startswith(precision)
    assert ("autocast" in out["precision"]) == (precision == "bfloat16")
    assert "precision" not in out["params"]  # a runtime setting, like the device: not in the artifact


def test_precision_choices_and_other_methods(cli, files):
    from latentlab.align.feed import PRECISIONS
    from latentlab.cli.align_cmd import fit_cmd
    choice = next(p for p in fit_cmd.params if p.name == "precision").type
    assert tuple(choice.choices) == PRECISIONS  # the flag offers what the fit accepts
    X, Y = _tanh_pairs(40, 4, 3, 0.1, seed=7)
    with pytest.raises(InputError, match="`precision` 'half'"):
        fit_aligner("mlp", X, Y, precision="half")
    with pytest.raises(InputError, match="mlp only"):
        fit_aligner("procrustes", X, Y, precision="float32")
    res = cli("fit", "procrustes", files / "x.npy", files / "y.npy", "-o", files / "p.safetensors",
              "--precision", "float32", ok=False)
    assert res.exit_code == 2 and "--precision" in res.stderr and not (files / "p.safetensors").exists()
