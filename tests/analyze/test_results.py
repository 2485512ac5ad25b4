"""Estimate behaves like its number; every result has one JSON shape (intervals under "ci")."""
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from latentlab.results import Estimate, ResultMixin, estimate, format_value, interval_methods, to_jsonable

E = Estimate(0.5, 0.4, 0.7, level=0.9, method="percentile bootstrap", n_resamples=10)
P = Estimate(0.5)  # a point estimate: no resampling


def test_estimate_converts_and_compares_like_its_value():
    assert float(E) == 0.5 and int(Estimate(2.7)) == 2 and math.isfinite(E) and not math.isfinite(Estimate(float("nan")))
    assert E == 0.5 and 0.5 == E and E == P and E != 0.6 and E == np.float32(0.5)
    assert E < 0.6 and E <= 0.5 and E > 0.4 and E >= 0.5 and 0.4 < E and Estimate(0.1) < E
    assert not (E < P) and sorted([Estimate(3.0), 1.0, Estimate(2.0)]) == [1.0, 2.0, 3.0]
    assert max([Estimate(0.1), E]) is E and E == pytest.approx(0.5)
    with pytest.raises(TypeError):
        _ = E < "a"
    assert E != "0.5" and E != None  # noqa: E711


def test_estimate_arithmetic_returns_floats():
    for got, want in ((E + 1, 1.5), (1 + E, 1.5), (E - 1, -0.5), (1 - E, 0.5), (E * 4, 2.0), (4 * E, 2.0),
                      (E / 4, 0.125), (1 / E, 2.0), (-E, -0.5), (+E, 0.5), (abs(Estimate(-2.0)), 2.0),
                      (E + E, 1.0), (round(Estimate(0.456), 2), 0.46)):
        assert type(got) is float and got == want
    assert round(Estimate(2.6)) == 3 and type(round(Estimate(2.6))) is int


def test_estimate_converts_to_numpy():
    assert np.asarray(E).dtype == np.float64 and float(np.asarray(E)) == 0.5
    arr = np.array([E, Estimate(1.5)], dtype=float)
    assert arr.tolist() == [0.5, 1.5] and np.isfinite(E) and np.mean([E, Estimate(1.5)]) == 1.0
    assert np.float64(E) == 0.5


def test_hash_agrees_with_eq():
    assert hash(E) == hash(0.5) == hash(P)
    assert len({E, P, 0.5}) == 1 and {0.5: "x"}[E] == "x"


def test_format_shows_the_interval_only_when_there_is_one():
    assert format(E, ".2f") == "0.50 [0.40, 0.70]" and f"{P:.2f}" == "0.50" and str(P) == "0.5"
    assert format_value(E) == "0.5000 [0.4000, 0.7000]" and format_value(P) == "0.5000"
    assert E.interval == (0.4, 0.7) and P.interval is None and P.ci_dict() is None


def test_an_interval_needs_both_bounds():
    with pytest.raises(ValueError):
        Estimate(0.5, 0.4)


def test_estimate_helper_wraps_numbers_and_passes_none_and_estimates():
    assert estimate(None) is None and estimate(E) is E
    assert isinstance(estimate(np.float32(0.25)), Estimate) and estimate(0.25).interval is None


@dataclass(frozen=True)
class _Inner(ResultMixin):
    score: Estimate | None
    label: str


@dataclass(frozen=True)
class _Outer(ResultMixin):
    value: Estimate
    missing: Estimate | None
    cells: list[list[Estimate | None]]
    count: int
    inner: list[_Inner]


def _outer(e):
    return _Outer(value=e, missing=None, cells=[[e, estimate(1.0)], [None, e]], count=3,
                  inner=[_Inner(score=e, label="A→B")])


def test_to_dict_puts_numbers_in_place_and_intervals_under_ci():
    with_ci, without = _outer(E).to_dict(), _outer(P).to_dict()
    assert with_ci["value"] == without["value"] == 0.5 and with_ci["missing"] is None
    assert with_ci["cells"] == without["cells"] == [[0.5, 1.0], [None, 0.5]]
    assert with_ci["ci"]["value"] == {"low": 0.4, "high": 0.7, "level": 0.9, "method": "percentile bootstrap"}
    assert with_ci["ci"]["missing"] is None and without["ci"] == {"value": None, "missing": None, "cells": None}
    assert with_ci["ci"]["cells"]["low"] == [[0.4, None], [None, 0.4]]
    assert with_ci["inner"][0] == {"score": 0.5, "label": "A→B", "ci": {"score": {
        "low": 0.4, "high": 0.7, "level": 0.9, "method": "percentile bootstrap"}}}
    assert set(with_ci) == set(without) and "ci" not in to_jsonable({"count": 1})
    json.dumps(with_ci, allow_nan=False)


def test_plain_dicts_and_bare_estimates():
    assert to_jsonable(E) == 0.5 and to_jsonable(Estimate(float("nan"), float("nan"), float("nan"))) is None
    d = to_jsonable({"cka": E, "n": 3})
    assert d["cka"] == 0.5 and d["ci"]["cka"]["high"] == 0.7 and d["n"] == 3
    assert interval_methods(_outer(E)) == {"value": "percentile bootstrap"} and interval_methods(_outer(P)) == {}
