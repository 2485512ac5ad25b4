"""cka-matrix / similarity_matrix out of core: linear and debiased CKA cells, their intervals and
the shared-shuffle null stream from shard folders and equal the in-memory matrix; every other
measure refuses above the budget before reading a row, naming the sampled form, which works."""
from __future__ import annotations

import json

import numpy as np
import pytest

from latentlab.analyze import prep
from latentlab.analyze.cka import linear_cka
from latentlab.analyze.matrix import similarity_matrix
from latentlab.compute import Backend
from latentlab.errors import InputError
from latentlab.io import read_embeddings
from latentlab.io.rowsource import NpyRows

F64_SMALL = Backend.make("cpu", "float64", block_bytes=2048)


SIZES = (40, 1, 99, 40)  # a one-row shard: a block boundary inside and between shards


@pytest.fixture
def layers(tmp_path, write_shards):
    rng = np.random.default_rng(8)
    x0 = rng.normal(size=(180, 4)) + 4.0
    xs = [x0, x0 @ rng.normal(size=(4, 5)) + 0.5 * rng.normal(size=(180, 5)),
          np.tanh(x0[:, :3]) + 0.8 * rng.normal(size=(180, 3)), rng.normal(size=(180, 4))]
    return xs, [read_embeddings(write_shards(tmp_path / f"l{i}", x, SIZES)) for i, x in enumerate(xs)]


@pytest.fixture
def reads(monkeypatch):
    count = {"n": 0}
    original = NpyRows._read_range

    def counting(self, fh, start, stop):
        count["n"] += stop - start
        return original(self, fh, start, stop)

    monkeypatch.setattr(NpyRows, "_read_range", counting)
    return count


def _same(disk, mem):
    assert disk.n == mem.n and disk.bootstrap == mem.bootstrap
    for rd, rm in zip(disk.matrix, mem.matrix):
        for a, b in zip(rd, rm):
            assert (a is None) == (b is None)
            if a is not None:
                assert (a.value, a.ci_low, a.ci_high) == pytest.approx((b.value, b.ci_low, b.ci_high), abs=1e-10)
                if a.ci_low is not None:
                    assert a.ci_low <= a.value <= a.ci_high
    for rd, rm in zip(disk.calibrated or [], mem.calibrated or []):
        for a, b in zip(rd, rm):
            if a is not None:
                assert (a.tau, a.null_mean, a.p_value) == pytest.approx((b.tau, b.null_mean, b.p_value), abs=1e-10)
    for agg in mem.aggregate:
        a, b = disk.aggregate[agg], mem.aggregate[agg]
        assert (a.value, a.tau, a.calibrated, a.p_value) == pytest.approx((b.value, b.tau, b.calibrated, b.p_value),
                                                                           abs=1e-10)


@pytest.mark.parametrize("metric", ["linear_cka", "debiased_cka"])
def test_square_streamed_equals_in_memory(layers, monkeypatch, metric):
    xs, embs = layers
    kw = dict(metric=metric, calibrate=19, bootstrap=25, seed=3)
    mem = similarity_matrix(xs, dtype="float64", **kw)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 0)  # nothing fits: cells, intervals and null stream
    disk = similarity_matrix(embs, device=F64_SMALL, **kw)
    _same(disk, mem)
    assert disk.matrix[0][1].value == pytest.approx(linear_cka(xs[0], xs[1], debiased=metric == "debiased_cka"),
                                                    abs=1e-12)
    assert disk.aggregate["best"].p_value == pytest.approx(1 / 20)  # layer 0 vs 1 is related: no shuffle reaches it


def test_rectangular_streamed_equals_in_memory(layers, monkeypatch):
    xs, embs = layers
    kw = dict(metric="linear_cka", calibrate=19, bootstrap=20, seed=5)
    mem = similarity_matrix(xs[:2], xs[2:] + xs[:1], dtype="float64", **kw)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 0)
    disk = similarity_matrix(embs[:2], embs[2:] + embs[:1], device=F64_SMALL, **kw)
    _same(disk, mem)
    assert disk.matrix[0][2].value == pytest.approx(1.0)  # layer 0 against itself


def test_constant_layer_is_undefined_when_streamed(layers, monkeypatch, tmp_path, write_shards):
    xs, embs = layers
    const = read_embeddings(write_shards(tmp_path / "const", np.ones((180, 3)), SIZES))
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 0)
    res = similarity_matrix([embs[0], const, embs[1]], calibrate=19, device=F64_SMALL)
    assert res.matrix[0][1] is None and res.matrix[1][2] is None and res.matrix[0][2] is not None
    assert any("zero variance" in n for n in res.notes)


def test_measures_that_cannot_stream_refuse_before_reading_and_sample_works(layers, monkeypatch, reads):
    xs, embs = layers
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 6000)  # under the layers, over a 40-row float64 sample
    with pytest.raises(InputError, match=r"the mutual_knn matrix needs all 180 rows .* cannot stream\): pass `sample`"):
        similarity_matrix(embs[:2], embs[2:], metric="mutual_knn", device=F64_SMALL)
    assert reads["n"] == 0
    res = similarity_matrix(embs[:2], embs[2:], metric="mutual_knn", sample=40, seed=1, calibrate=19,
                            device=F64_SMALL)
    rows = prep.sample_rows(180, 40, 1)
    want = similarity_matrix([x[rows] for x in xs[:2]], [x[rows] for x in xs[2:]], metric="mutual_knn", seed=1,
                             calibrate=19, dtype="float64")
    assert res.n == 40 and "40 of 180" in res.notes[0]
    assert [[c.value for c in row] for row in res.matrix] == [[c.value for c in row] for row in want.matrix]
    with pytest.raises(InputError, match="sample 3: need at least 4 rows"):
        similarity_matrix(xs[:2], metric="rsa", sample=3)


def test_cli_cka_matrix_streams_linear_and_names_sample(cli, layers, monkeypatch, tmp_path):
    xs, _ = layers
    paths = []
    for i, x in enumerate(xs):
        paths.append(tmp_path / f"x{i}.npy")
        np.save(paths[-1], x)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 1000)
    res = cli("cka-matrix", "--rows", f"{paths[0]},{paths[1]}", "--cols", paths[2], "--metric", "cknna", ok=False)
    assert res.exit_code == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--sample N" in lines[0]
    out = json.loads(cli("cka-matrix", *paths[:3], "--calibrate", "19", "--bootstrap", "10", "--json").stdout)
    assert out["matrix"][0][1] == pytest.approx(linear_cka(xs[0], xs[1]), abs=1e-5)
    assert out["aggregate"]["best"]["p_value"] == pytest.approx(1 / 20)
