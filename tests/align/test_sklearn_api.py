"""Aligners follow scikit-learn's estimator conventions (get/set_params, clone, fitted `_`)."""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils.validation import check_is_fitted

from latentlab.align import METHODS, fit_aligner, load_aligner, make_aligner
from latentlab.errors import InputError

#: non-default constructor arguments per method (cheap to fit on 40 × 5 rows)
NON_DEFAULT = {
    "relative": dict(center=True),
    "lstsq": dict(l2=True),
    "affine": dict(standardize=True),
    "ridge": dict(alpha=0.5, alpha_cv="loo"),
    "procrustes": dict(scale=True),
    "lst": dict(l2=True),
    "lowrank": dict(rank=2, alpha=0.1),
    "cca": dict(components=2, reg=0.1),
    "ot": dict(solver="emd", reg=0.1, iters=5, gw_rows=20, seed=3),
    "mlp": dict(hidden=16, epochs=3, batch_size=8, structure=1.0, loss="mse"),
    "unsupervised": dict(init="profile", restarts=1, iters=5, patience=2, init_rows=40, seed=2),
}
COMMON = {"l2", "center", "standardize", "device", "dtype"}


@pytest.fixture(scope="module")
def XY():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    Q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    return X, X @ Q


def _fit(al, X, Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return al.fit(X, Y)


def test_every_method_has_non_default_params():
    assert set(NON_DEFAULT) == set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_get_params_match_signature(method):
    cls = METHODS[method]
    sig = inspect.signature(cls.__init__)
    names = {n for n in sig.parameters if n != "self"}
    al = make_aligner(method, **NON_DEFAULT[method])
    assert set(al.get_params()) == names == set(cls.PARAMS) | COMMON
    # defaults in the signature agree with PARAMS
    assert {n: sig.parameters[n].default for n in cls.PARAMS} == cls.PARAMS
    # arguments are stored unchanged
    for k, v in NON_DEFAULT[method].items():
        assert getattr(al, k) is v


@pytest.mark.parametrize("method", sorted(METHODS))
def test_clone_round_trip(method, XY):
    al = METHODS[method](**NON_DEFAULT[method], dtype="float64")
    c = clone(al)
    assert c is not al and type(c) is type(al)
    assert c.get_params() == al.get_params()
    _fit(al, *XY)
    c2 = clone(al)  # clone of a fitted aligner is unfitted, same params
    assert c2.get_params() == al.get_params()
    assert not any(k.endswith("_") for k in vars(c2))
    with pytest.raises(NotFittedError):
        check_is_fitted(c2)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_fitted_attributes_end_in_underscore(method, XY):
    al = METHODS[method](**NON_DEFAULT[method])
    before = set(vars(al))
    assert before == set(al.get_params())
    _fit(al, *XY)
    added = set(vars(al)) - before
    assert added and all(k.endswith("_") for k in added), sorted(added)
    check_is_fitted(al)
    assert al.get_params() == METHODS[method](**NON_DEFAULT[method]).get_params()  # fit leaves params alone


@pytest.mark.parametrize("method", sorted(METHODS))
def test_transform_before_fit(method, XY):
    al = make_aligner(method, **NON_DEFAULT[method])
    with pytest.raises(NotFittedError):
        check_is_fitted(al)
    with pytest.raises(InputError, match="not fitted"):
        al.transform(XY[0])


def test_set_params_then_fit(XY):
    X, Y = XY
    al = make_aligner("ridge", alpha=10.0)
    assert al.set_params(alpha=0.0, dtype="float64") is al
    assert al.alpha == 0.0
    _fit(al, X, Y)
    assert al.params_["alpha"] == 0.0
    np.testing.assert_allclose(al.transform(X), Y, atol=1e-8)
    lr = make_aligner("lowrank", rank=1).set_params(rank=5, dtype="float64")
    np.testing.assert_allclose(_fit(lr, X, Y).transform(X), Y, atol=1e-8)


def test_validation_happens_in_fit_and_names_the_argument(XY):
    al = METHODS["ridge"](alpha=-1)  # the constructor does not validate
    assert al.alpha == -1
    with pytest.raises(InputError, match=r"`alpha` -1"):
        al.fit(*XY)
    with pytest.raises(InputError, match=r"`rank`"):
        METHODS["lowrank"]().fit(*XY)
    with pytest.raises(InputError, match=r"`components` 0"):
        METHODS["cca"](components=0).fit(*XY)
    with pytest.raises(InputError, match=r"`iters` 0"):
        METHODS["ot"](iters=0).fit(*XY)
    with pytest.raises(InputError, match=r"l2='yes'"):
        METHODS["procrustes"](l2="yes").fit(*XY)
    with pytest.raises(InputError, match="does not apply"):
        make_aligner("procrustes", rank=3)


@pytest.mark.parametrize("method", ["procrustes", "ridge", "cca", "relative"])
def test_pipeline(method, XY):
    X, Y = XY
    al = make_aligner(method, **NON_DEFAULT[method], dtype="float64")
    pipe = make_pipeline(al)
    out = _fit(pipe, X, Y).transform(X)
    np.testing.assert_allclose(out, al.transform(X))
    np.testing.assert_allclose(_fit(clone(al), X, Y).fit_transform(X, Y), out)


def test_fit_aligner_and_loaded_aligner_params(XY, tmp_path):
    X, Y = XY
    al = fit_aligner("lowrank", X, Y, rank=3, alpha=0.5)
    assert al.rank == 3 and al.alpha == 0.5 and al.params_ == {"rank": 3, "alpha": 0.5}
    loaded = load_aligner(al.save(tmp_path / "m.safetensors"))
    assert loaded.get_params()["rank"] == 3 and loaded.params_ == al.params_
    refit = _fit(clone(loaded), X, Y)
    np.testing.assert_allclose(refit.transform(X), loaded.transform(X), atol=1e-4)
    ot = fit_aligner("ot", X, Y, seed=5, iters=3)
    assert ot.seed == 5 and ot.params_["seed"] == 5
