"""Aligners keep their tensors on the chosen device: every method fitted and applied on each
device (the ``device`` fixture: cpu, and cuda when present) agrees with the CPU float64 fit to
float32 tolerance, and ``transform`` is the published map written out in numpy from the fitted
state (what it returned before the device path)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone

from latentlab.align import METHODS, evaluate_aligner, fit_aligner, make_aligner, match
from latentlab.align.linear import gcv_scores, loo_scores
from latentlab.compute import Backend
from latentlab.errors import InputError
from latentlab.io import as_embeddings

#: one configuration per method, plus the paths with their own code (alpha search, L2, centring)
CONFIGS = {
    "lstsq": ("lstsq", {}),
    "affine": ("affine", {"standardize": True}),
    "ridge": ("ridge", {"alpha": 0.5}),
    "ridge gcv": ("ridge", {"alpha": "auto"}),
    "ridge loo": ("ridge", {"alpha": "auto", "alpha_cv": "loo"}),
    "ridge l2": ("ridge", {"alpha": 0.2, "l2": True}),
    "procrustes": ("procrustes", {"scale": True}),
    "lst": ("lst", {}),
    "lowrank": ("lowrank", {"rank": 3, "alpha": 0.1}),
    "cca": ("cca", {"components": 4, "reg": 0.1}),
    "relative": ("relative", {"center": True}),
    "ot": ("ot", {"iters": 5, "gw_rows": 40, "solver": "emd"}),
}


def test_every_method_is_covered():
    # mlp is trained and unsupervised searches from random starts: float32 and float64 fits differ by more
    # than round-off; their own checks are in test_mlp.py and test_unsupervised.py
    assert {m for m, _ in CONFIGS.values()} == set(METHODS) - {"mlp", "unsupervised"}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(260, 12)) + 0.5
    Y = X @ rng.normal(size=(12, 10)) + 0.3 * rng.normal(size=(260, 10)) + 1.0
    Q = np.linalg.qr(rng.normal(size=(12, 12)))[0]
    return X, Y, X @ Q  # the last: a rotated copy, for ot


def _fit(name, data, device, dtype):
    method, params = CONFIGS[name]
    X, Y, Xr = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "ot":
            X, Xr = X[:120], Xr[:120]  # OT's plan is n × m: keep it small
            return fit_aligner(method, X, Xr, n_anchors=30, device=device, dtype=dtype, **params), X, Xr
        return fit_aligner(method, X, Y, n_anchors=200, device=device, dtype=dtype, **params), X, Y


def _scale(a):
    return max(1.0, float(np.abs(a).max()))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fit_and_transform_agree_with_cpu_float64(device, name, data):
    ref, X, Y = _fit(name, data, "cpu", "float64")
    got, _, _ = _fit(name, data, device, "float32")
    tol = 2e-4
    for side, rows in (("transform", X), ("transform_target", Y)):
        a, b = getattr(got, side)(rows), getattr(ref, side)(rows)
        assert a.dtype == np.float64 and a.shape == b.shape
        assert np.abs(a - b).max() <= tol * _scale(b), side
    for attr in got.TENSORS:
        assert np.abs(getattr(got, attr) - getattr(ref, attr)).max() <= tol * _scale(getattr(ref, attr)), attr
    if "alpha" in got.fit_stats_:
        # the same grid point (α = grid × mean eigenvalue of float32 vs float64 moments)
        assert got.fit_stats_["alpha"] == pytest.approx(ref.fit_stats_["alpha"], rel=1e-5)


def _l2(a):
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def _pre(pre, a, *, invertible=True):
    """The documented preprocessing (L2 → centre → standardise) in numpy."""
    a = _l2(a) if pre.l2 else a
    if invertible and pre.mean is not None:
        a = a - pre.mean
    if invertible and pre.std is not None:
        a = a / pre.std
    return a


def _numpy_transform(al, rows, side):
    """Each family's map written out in numpy from the fitted attributes."""
    if al.method == "cca":
        return _pre(al.pre_x_, rows) @ al.A_ if side == "source" else _pre(al.pre_y_, rows) @ al.B_
    if al.method == "relative":
        pre, anchors = (al.pre_x_, al.anchors_source_) if side == "source" else (al.pre_y_, al.anchors_target_)
        return _l2(_pre(pre, rows)) @ anchors.T
    if side == "target":  # direct maps: targets only get their L2 step
        return _pre(al.pre_y_, rows, invertible=False)
    z = _pre(al.pre_x_, rows) @ al.W_
    std = al.pre_y_.std if al.pre_y_.std is not None else 1.0
    mean = al.pre_y_.mean if al.pre_y_.mean is not None else 0.0
    return z * std + mean


@pytest.mark.parametrize("name", list(CONFIGS))
def test_transform_is_the_map_written_out_in_numpy(device, name, data):
    al, X, Y = _fit(name, data, device, "float64")
    for side, rows in (("source", X), ("target", Y)):
        out = al.transform(rows) if side == "source" else al.transform_target(rows)
        expect = _numpy_transform(al, rows, side)
        assert np.abs(out - expect).max() <= 1e-10 * _scale(expect), side
        # small blocks (many host ↔ device round trips) give the same rows
        small = al.transform(rows, block_rows=7) if side == "source" else al.transform_target(rows, block_rows=7)
        assert np.abs(small - out).max() <= 1e-12 * _scale(out)


@pytest.mark.parametrize("name", ["ridge", "cca", "relative"])
def test_map_rows_stays_on_the_device(device, name, data):
    al, X, Y = _fit(name, data, "cpu", "float64")
    backend = Backend.make(device, "float32")
    t = al.map_rows(X, "source", backend=backend)
    assert t.device.type == torch.device(device).type and t.dtype == torch.float64
    assert np.abs(t.cpu().numpy() - al.transform(X)).max() <= 1e-12 * _scale(t.cpu().numpy())
    with pytest.raises(InputError, match="side="):
        al.map_rows(X, "sideways")


def test_evaluate_agrees_with_the_cpu(device, data):
    al, X, Y = _fit("procrustes", data, "cpu", "float64")
    labels = np.arange(len(X)) % 5
    got = evaluate_aligner(al, X, Y, labels=labels, device=device)
    ref = evaluate_aligner(al, X, Y, labels=labels, device="cpu")
    for key in ("r_at_1", "r_at_5", "mrr", "median_rank", "mean_cosine", "knn_accuracy"):
        assert getattr(got, key) == pytest.approx(getattr(ref, key), abs=1e-9), key
    assert got.baselines["random_rotation"]["mrr"] == pytest.approx(ref.baselines["random_rotation"]["mrr"], abs=1e-9)
    # and the scores are the dense computation: cosine of mapped rows, rank of the partner
    q, g = _l2(al.transform(X[_held_out(al, X)])), _l2(al.transform_target(Y[_held_out(al, X)]))
    assert ref.mean_cosine == pytest.approx(float(np.mean(np.sum(q * g, axis=1))), abs=1e-12)
    s = q @ g.T
    assert ref.r_at_1 == pytest.approx(float(np.mean(s.argmax(1) == np.arange(len(s)))))


def _held_out(al, X):
    held = np.ones(len(X), dtype=bool)
    held[al.anchor_indices_] = False
    return np.flatnonzero(held)


def test_match_agrees_with_the_cpu(device):
    rng = np.random.default_rng(3)
    A = rng.normal(size=(60, 8))
    perm = rng.permutation(60)
    B = A[perm] @ np.linalg.qr(rng.normal(size=(8, 8)))[0]
    truth = np.argsort(perm)
    got, ref = match(A, B, "emd", truth=truth, device=device), match(A, B, "emd", truth=truth, device="cpu")
    assert np.array_equal(got.assignment, ref.assignment) and ref.accuracy == 1.0
    assert got.transport_cost == pytest.approx(ref.transport_cost, abs=1e-6)


def test_ridge_scores_on_the_device_match_the_cpu_and_block_size(device, data):
    X, Y, _ = data
    al, _, _ = _fit("ridge loo", data, "cpu", "float64")
    grid = np.asarray(al.fit_stats_["alpha_grid"])
    for backend in (Backend.make("cpu", "float64"), Backend.make(device, "float32")):
        fresh = make_aligner("ridge", alpha=1.0, device=backend.device, dtype=backend.dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fresh.fit(X, Y)
        stats = fresh._stats(as_embeddings(X), as_embeddings(Y), backend)
        assert stats.Sxx.device.type == backend.device.type and stats.Sxx.dtype == torch.float64
        gcv = gcv_scores(stats, grid, intercept=True)
        loo = loo_scores(X, Y, fresh.pre_x_, fresh.pre_y_, stats, grid, intercept=True)
        loo7 = loo_scores(X, Y, fresh.pre_x_, fresh.pre_y_, stats, grid, intercept=True, block_rows=7)
        assert gcv.device.type == loo.device.type == backend.device.type
        assert torch.allclose(loo, loo7, rtol=1e-10)
        if backend.dtype == torch.float64:
            ref_gcv, ref_loo = gcv.cpu().numpy(), loo.cpu().numpy()
        else:  # float32 block products: the scores agree to float32 tolerance
            assert np.allclose(gcv.cpu().numpy(), ref_gcv, rtol=1e-4)
            assert np.allclose(loo.cpu().numpy(), ref_loo, rtol=1e-4)


@pytest.mark.parametrize("name", ["cca", "ridge loo", "relative"])
def test_clone_of_a_device_aligner_refits_to_the_same_map(device, name, data):
    al, X, Y = _fit(name, data, device, "float32")
    twin = clone(al)
    assert twin.get_params() == al.get_params() and twin.device == device
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        twin.fit(*(_fit_rows(al, X, Y)))
    assert np.abs(twin.transform(X) - al.transform(X)).max() <= 1e-10 * _scale(al.transform(X))


def _fit_rows(al, X, Y):
    idx = al.anchor_indices_
    return X[idx], Y[idx]


def test_cli_apply_computes_on_the_device_it_is_given(cli, tmp_path, data, device):
    X, Y, _ = data
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    cli("fit", "ridge", tmp_path / "x.npy", tmp_path / "y.npy", "-o", tmp_path / "m.safetensors", "--dtype", "float64")
    out = cli.json("apply", tmp_path / "m.safetensors", tmp_path / "x.npy", "-o", tmp_path / "o.npy",
                   "--device", device, "--dtype", "float64")
    ref = fit_aligner("ridge", X, Y, device="cpu", dtype="float64").transform(X)
    assert out["rows"] == len(X) and np.abs(np.load(tmp_path / "o.npy") - ref).max() <= 1e-6 * _scale(ref)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cli_apply_honours_device_cuda_without_a_gpu(cli, tmp_path, data):
    X, Y, _ = data
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    cli("fit", "ridge", tmp_path / "x.npy", tmp_path / "y.npy", "-o", tmp_path / "m.safetensors")
    res = cli("apply", tmp_path / "m.safetensors", tmp_path / "x.npy", "-o", tmp_path / "o.npy",
              "--device", "cuda", ok=False)
    assert res.exit_code == 2 and "--device cuda" in res.stderr and not (tmp_path / "o.npy").exists()
