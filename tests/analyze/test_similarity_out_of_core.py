"""similarity out of core: every registered measure holds the rows (its resampling recomputes on
them), so above the memory budget each one refuses before reading a row, naming the sampled form;
the sampled form is the measure on the seeded sample's rows."""
from __future__ import annotations

import numpy as np
import pytest

import latentlab
from latentlab.analyze import prep, registry
from latentlab.errors import InputError
from latentlab.io import read_embeddings
from latentlab.io.rowsource import NpyRows


@pytest.fixture
def pair(tmp_path, write_shards):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 4))
    y = x @ rng.normal(size=(4, 4)) + 0.3 * rng.normal(size=(120, 4))
    return x, y, *(read_embeddings(write_shards(tmp_path / name, arr, [70, 50])) for name, arr in (("a", x), ("b", y)))


@pytest.mark.parametrize("metric", sorted(registry.MEASURES))
def test_each_measure_refuses_above_the_budget_before_reading(pair, monkeypatch, metric):
    _, _, ea, eb = pair
    count = {"n": 0}
    original = NpyRows._read_range

    def counting(self, fh, start, stop):
        count["n"] += stop - start
        return original(self, fh, start, stop)

    monkeypatch.setattr(NpyRows, "_read_range", counting)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 1000)
    with pytest.raises(InputError, match=r"similarity needs all 120 rows .* cannot stream\): pass `sample` N"):
        latentlab.similarity(ea, eb, [metric], bootstrap=5, calibrate=19)
    assert count["n"] == 0


def test_sampled_form_is_the_measure_on_the_sampled_rows(pair, monkeypatch):
    x, y, ea, eb = pair
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 2000)  # under the pair, over a 30-row sample
    res = latentlab.similarity(ea, eb, ["linear_cka", "mutual_knn"], sample=30, seed=4, bootstrap=20, k=5)
    rows = prep.sample_rows(120, 30, 4)
    want = latentlab.similarity(x[rows], y[rows], ["linear_cka", "mutual_knn"], seed=4, bootstrap=20, k=5)
    assert res.n == 30 and "30 of 120" in res.notes[0]
    for got, exp in zip(res.scores, want.scores):
        assert (got.value.value, got.value.ci_low, got.value.ci_high) == pytest.approx(
            (exp.value.value, exp.value.ci_low, exp.value.ci_high), abs=1e-6)
        assert got.value.ci_low <= got.value.value <= got.value.ci_high
