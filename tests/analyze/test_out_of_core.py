"""Out of core: the resampling paths on shard folders equal the in-memory ones; what cannot stream
refuses above the memory budget before reading a row, naming the sampled form."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import latentlab
from latentlab import stats
from latentlab.analyze import prep
from latentlab.analyze.cka import linear_cka, linear_cka_bootstrap, prepare_linear_cka
from latentlab.analyze.spectrum import spectral_stats
from latentlab.compute import Backend
from latentlab.errors import InputError
from latentlab.io import read_embeddings
from latentlab.io.rowsource import NpyRows

F64_SMALL = Backend.make("cpu", "float64", block_bytes=2048)  # blocks of 64 rows: many blocks per shard


@pytest.fixture
def pair(tmp_path, write_shards):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 5)) + 3.0
    y = 0.7 * x + rng.normal(size=(300, 5))
    sizes = [70, 130, 1, 99]
    return x, y, *(read_embeddings(write_shards(tmp_path / name, arr, sizes)) for name, arr in (("a", x), ("b", y)))


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("budget", [stats.DEFAULT_SUMS_BUDGET, 8 * 80 * 40])  # one group per row / 40-odd groups
def test_streamed_cka_bootstrap_equals_in_memory(pair, debiased, budget):
    from latentlab.analyze.cka_resample import linear_cka_bootstrap_streamed
    x, y, ea, eb = pair
    value = linear_cka(x, y, debiased=debiased)
    mem = linear_cka_bootstrap(x, y, 60, debiased=debiased, seed=5, value=value, budget=budget)
    streamed = linear_cka_bootstrap_streamed(ea, eb, (x.mean(0), y.mean(0)), 60, backend=F64_SMALL,
                                             debiased=debiased, seed=5, value=value, budget=budget)
    assert streamed.method == mem.method
    assert (streamed.ci_low, streamed.ci_high) == pytest.approx((mem.ci_low, mem.ci_high), abs=1e-10)
    assert mem.ci_high - mem.ci_low > 1e-3  # a real interval, not a degenerate one


def test_cka_api_on_shards_equals_the_same_arrays(pair):
    x, y, ea, eb = pair
    disk = latentlab.cka(ea, eb, bootstrap=80, permutations=30, seed=2, device=F64_SMALL)
    mem = latentlab.cka(x, y, bootstrap=80, permutations=30, seed=2, dtype="float64")
    assert disk.cka.value == pytest.approx(mem.cka.value, abs=1e-12)
    assert (disk.cka.ci_low, disk.cka.ci_high) == pytest.approx((mem.cka.ci_low, mem.cka.ci_high), abs=1e-10)
    assert disk.p_value == mem.p_value


@pytest.mark.parametrize("debiased", [False, True])
def test_streamed_permutation_null_equals_in_memory(pair, monkeypatch, debiased):
    x, y, ea, eb = pair
    mem = latentlab.cka(ea, eb, debiased=debiased, calibrate=40, seed=7, device=F64_SMALL)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 0)  # nothing fits: the null streams, one pass per shuffle
    streamed = latentlab.cka(ea, eb, debiased=debiased, calibrate=40, seed=7, device=F64_SMALL)
    assert streamed.calibration.tau == pytest.approx(mem.calibration.tau, abs=1e-10)
    assert streamed.calibration.null_mean == pytest.approx(mem.calibration.null_mean, abs=1e-10)
    assert streamed.calibration.p_value == mem.calibration.p_value
    # and each streamed null score is CKA of the shuffled pairing itself
    from latentlab.analyze.cka import _linear_pass, prepare_linear_cka_streamed
    value, mom, ext = _linear_pass(ea, eb, debiased=debiased, backend=F64_SMALL)
    prepared = prepare_linear_cka_streamed(ea, eb, value, mom, ext, backend=F64_SMALL, debiased=debiased)
    perm = np.random.default_rng(1).permutation(len(x))
    assert prepared.shuffled(perm) == pytest.approx(linear_cka(x, y[perm], debiased=debiased), abs=1e-10)
    assert prepared.shuffled(perm) == pytest.approx(prepare_linear_cka(x, y, debiased=debiased).shuffled(perm),
                                                    abs=1e-10)


def test_streamed_spectrum_half_sampling_equals_recomputation(pair):
    x, _, ea, _ = pair
    res = latentlab.spectrum(ea, hubness=False, bootstrap=40, seed=3, device=F64_SMALL)

    def metric(rows, key):
        return spectral_stats(np.linalg.eigvalsh(np.cov(rows.T)))[key]

    for key in ("effective_rank", "participation_ratio"):
        got = getattr(res, key)
        want = stats.bootstrap(lambda r: metric(r, key), x, n_resamples=40, seed=3, scheme="half")
        assert got.value == pytest.approx(want.value, rel=1e-10)
        assert (got.ci_low, got.ci_high) == pytest.approx((want.ci_low, want.ci_high), rel=1e-9)
    mem = latentlab.spectrum(x, hubness=False, bootstrap=40, seed=3, dtype="float64")
    assert (res.anisotropy.ci_low, res.anisotropy.ci_high) == pytest.approx(
        (mem.anisotropy.ci_low, mem.anisotropy.ci_high), abs=1e-12)


def test_grouped_spectrum_half_sampling_matches_row_version(pair):
    from latentlab.analyze.spectrum import _bootstrap_moments
    x, _, ea, _ = pair
    full = {k: getattr(latentlab.spectrum(x, hubness=False, dtype="float64"), k).value
            for k in ("effective_rank", "participation_ratio", "anisotropy")}
    mean = torch.as_tensor(x.mean(0))

    def run(budget):
        return _bootstrap_moments(ea, F64_SMALL, 64, mean, full, 300, 3, 0.95, budget=budget)

    rows, grouped = run(None), run(8 * 37 * 50)  # one group per row / 50 groups of 6 rows
    assert "50 random row groups" in grouped["effective_rank"].method
    assert "groups" not in rows["effective_rank"].method
    for key in ("effective_rank", "participation_ratio"):  # statistically equivalent: about the same width
        width = [r[key].ci_high - r[key].ci_low for r in (rows, grouped)]
        assert 0.6 < width[1] / width[0] < 1.6, (key, width)


@pytest.fixture
def reads(monkeypatch):
    """Count row reads of .npy files (header checks are not row reads)."""
    count = {"n": 0}
    original = NpyRows._read_range

    def counting(self, fh, start, stop):
        count["n"] += stop - start
        return original(self, fh, start, stop)

    monkeypatch.setattr(NpyRows, "_read_range", counting)
    return count


@pytest.mark.parametrize("call", [
    lambda a, b: latentlab.cka(a, b, kernel="rbf"),
    lambda a, b: latentlab.similarity(a, b),
    lambda a, b: latentlab.overlap(a, b, bootstrap=5),
    lambda a, b: latentlab.spectrum(a, bootstrap=5),
])
def test_non_streaming_methods_refuse_above_the_budget_before_reading(pair, monkeypatch, reads, call):
    _, _, ea, eb = pair
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 1000)
    with pytest.raises(InputError, match="rows in memory .* over the .* budget; it cannot stream"):
        call(ea, eb)
    assert reads["n"] == 0


def test_streaming_paths_run_under_a_tiny_budget(pair, monkeypatch):
    x, y, ea, eb = pair
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 2000)  # under the 12,000 bytes of the pair
    res = latentlab.cka(ea, eb, bootstrap=20, permutations=5, device=F64_SMALL)
    assert res.cka.ci_low <= res.cka.value <= res.cka.ci_high and res.p_value is not None
    spec = latentlab.spectrum(ea, hubness=False, bootstrap=10, device=F64_SMALL)
    assert spec.effective_rank.ci_low <= spec.effective_rank.value <= spec.effective_rank.ci_high
    gap = latentlab.gap(ea, eb, bootstrap=10)
    assert gap.centroid_distance.ci_low is not None
    sampled = latentlab.cka(ea, eb, kernel="rbf", sample=30)  # the offered way out
    assert 0 < sampled.cka.value <= 1


def test_cli_refusal_names_the_sample_flag(cli, pair, monkeypatch, tmp_path):
    x, y, _, _ = pair
    np.save(tmp_path / "x.npy", x), np.save(tmp_path / "y.npy", y)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 1000)
    res = cli("cka", tmp_path / "x.npy", tmp_path / "y.npy", "--kernel", "rbf", ok=False)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--sample N" in lines[0]
    assert res.stdout == ""


def test_permuted_rows_read_in_the_permuted_order_and_need_one_entry_per_row():
    """The shuffled pairing of a streamed permutation null: row i is data[perm[i]]."""
    from latentlab.io.rowsource import IndexedRows

    data = np.arange(24.0).reshape(8, 3)
    perm = np.random.default_rng(0).permutation(8)
    rows = IndexedRows.permuted(data, perm)
    np.testing.assert_array_equal(rows[2:6], data[perm[2:6]])
    assert rows.shape == data.shape and np.array_equal(rows.source_rows, perm)
    with pytest.raises(ValueError, match="a permutation of 8 rows has 5 entries"):
        IndexedRows.permuted(data, perm[:5])
