"""Property-based tests of the option parsers (grids, sweeps, fix parameters, positive numbers):
any input gives a result or InputError, never another exception (issue 11, fuzzing)."""
from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st

from latentlab.analyze.prep import check_positive
from latentlab.errors import InputError
from latentlab.grid import MAX_GRID, parse_grid
from latentlab.retrieval.sweep import SWEEPABLE, check_param, parse_sweep

NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30))
TEXT = st.text(alphabet="0123456789.-+:,eEinfa= _rkx", max_size=24)
ANY = st.one_of(NUMBERS, st.text(max_size=8), st.none(), st.booleans(), st.lists(st.integers(), max_size=2))


@settings(max_examples=300)
@given(TEXT)
def test_parse_grid(spec):
    try:
        grid = parse_grid(spec, "--shift")
    except InputError as exc:
        assert str(exc).startswith("--shift")
        return
    assert 1 <= len(grid) <= MAX_GRID and all(math.isfinite(v) for v in grid)


@settings(max_examples=300)
@given(st.sampled_from(SWEEPABLE + ("bogus",)), TEXT)
def test_parse_sweep(name, values):
    try:
        got, grid = parse_sweep(f"{name}={values}")
    except InputError as exc:
        assert str(exc).startswith("sweep")
        return
    assert got == name and grid
    for v in grid:
        assert check_param(name, v) == v  # every accepted value passes the fix's own check


@settings(max_examples=300)
@given(st.sampled_from(SWEEPABLE), ANY)
def test_check_param(name, value):
    try:
        v = check_param(name, value)
    except InputError as exc:
        assert str(exc).startswith(name)
        return
    assert math.isfinite(float(v))
    if name in ("r", "r_gallery", "r_query"):
        assert 0 <= v <= 1


@settings(max_examples=300)
@given(ANY, st.booleans())
def test_check_positive(value, integer):
    try:
        v = check_positive(value, "k", integer=integer)
    except InputError as exc:
        assert str(exc).startswith("k")
        return
    assert v is None or (v > 0 and math.isfinite(v) and (not integer or isinstance(v, int)))
