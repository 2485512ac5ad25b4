"""overlap out of core: the covariance scores' bootstrap (per-group moment sums) and the svcca / pwcca
nulls (one streamed pass per shuffle) on shard folders equal the in-memory paths; mutual k-NN's
bootstrap refuses above the budget before reading a row, naming the sampled form, which works."""
from __future__ import annotations

import numpy as np
import pytest

import latentlab
from latentlab import stats
from latentlab.analyze import prep
from latentlab.analyze.overlap_resample import covariance_bootstrap, geometry
from latentlab.compute import Backend
from latentlab.errors import InputError
from latentlab.io import read_embeddings
from latentlab.io.rowsource import NpyRows

F64_SMALL = Backend.make("cpu", "float64", block_bytes=2048)  # many blocks per shard
COV = ("overlap", "grassmann_distance_rad", "svcca", "pwcca", "procrustes_angle_rad")


@pytest.fixture
def pair(tmp_path, write_shards):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(240, 6)) * np.array([3, 2, 1.5, 1, 0.5, 0.2]) + 2.0
    y = x @ rng.normal(size=(6, 6)) * 0.4 + rng.normal(size=(240, 6))
    sizes = [50, 1, 120, 69]
    return x, y, *(read_embeddings(write_shards(tmp_path / name, arr, sizes)) for name, arr in (("a", x), ("b", y)))


@pytest.fixture
def reads(monkeypatch):
    count = {"n": 0}
    original = NpyRows._read_range

    def counting(self, fh, start, stop):
        count["n"] += stop - start
        return original(self, fh, start, stop)

    monkeypatch.setattr(NpyRows, "_read_range", counting)
    return count


def test_one_group_per_row_equals_recomputing_on_resampled_rows():
    # the closed form: a replicate of stored per-row moments is the geometry of the resampled rows
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 4)) + 5.0
    y = x @ rng.normal(size=(4, 4)) + 0.5 * rng.normal(size=(60, 4))
    ranks, dims = (2, 3), (3, 3)
    wanted = set(COV)

    def scores(xr, yr):
        c = np.cov(np.hstack([xr, yr]).T)
        return geometry(c[:4, :4], c[4:, 4:], c[:4, 4:], ranks, dims, wanted)

    full = scores(x, y)
    got = covariance_bootstrap(x, y, full, ranks, dims, n_resamples=50, seed=9, level=0.9)
    reps = [scores(x[i], y[i]) for i in stats.resample_indices(60, 50, 9)]
    for name in COV:
        want = stats.make_estimate(full[name], [r[name] for r in reps], 0.9, "x")
        assert (got[name].ci_low, got[name].ci_high) == pytest.approx((want.ci_low, want.ci_high), abs=1e-9), name
        assert got[name].ci_low <= full[name] <= got[name].ci_high
        assert got[name].ci_high - got[name].ci_low > 1e-4, name  # a real interval
        assert "ranks fixed" in got[name].method


def test_streamed_bootstrap_and_nulls_equal_in_memory(pair, monkeypatch):
    x, y, ea, eb = pair
    kw = dict(rank=3, k=None, bootstrap=40, permutations=15, calibrate=20, seed=4)
    mem = latentlab.overlap(x, y, dtype="float64", **kw)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 0)  # nothing fits: every resampling path streams
    disk = latentlab.overlap(ea, eb, device=F64_SMALL, **kw)
    for name in COV:
        a, b = getattr(disk, name), getattr(mem, name)
        assert a.value == pytest.approx(b.value, abs=1e-10), name
        assert (a.ci_low, a.ci_high) == pytest.approx((b.ci_low, b.ci_high), abs=1e-10), name
        assert a.ci_low <= a.value <= a.ci_high and a.ci_high > a.ci_low, name
        assert a.method == b.method
    assert set(disk.p_values) == {"svcca", "pwcca"} and disk.p_values == mem.p_values
    for name in ("svcca", "pwcca"):
        assert disk.calibration[name].tau == pytest.approx(mem.calibration[name].tau, abs=1e-10)
        assert disk.calibration[name].null_mean == pytest.approx(mem.calibration[name].null_mean, abs=1e-10)
        assert disk.p_values[name] == pytest.approx(1 / 16)  # related pairs: no shuffle reaches them


def test_streamed_null_scores_are_the_scores_of_shuffled_pairs(pair):
    from latentlab.analyze.overlap_resample import CrossNull
    from latentlab.analyze.subspace import prepare_pwcca
    x, y, ea, eb = pair
    cross = CrossNull([ea], [eb], [x.mean(0)], [y.mean(0)], F64_SMALL)
    perm = np.random.default_rng(3).permutation(len(x))
    xc, yc = x - x.mean(0), y - y.mean(0)
    assert cross(perm)[0] == pytest.approx(xc.T @ yc[perm], abs=1e-9)
    d = len(x) - 1.0
    from latentlab.analyze.subspace import pwcca_from_cov
    got = pwcca_from_cov(xc.T @ xc / d, yc.T @ yc / d, cross(perm)[0] / d)
    assert got == pytest.approx(prepare_pwcca(x, y).shuffled(perm), abs=1e-10)


def test_knn_null_streams_but_its_bootstrap_refuses_before_reading(pair, monkeypatch, reads):
    x, y, ea, eb = pair
    mem = latentlab.overlap(x, y, rank=3, k=5, calibrate=19, seed=1, dtype="float64")
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 10_000)  # under the pair (23,040 B), over a 100-row sample
    disk = latentlab.overlap(ea, eb, rank=3, k=5, calibrate=19, seed=1, device=F64_SMALL)  # relabelled lists
    assert disk.calibration["mutual_knn"].tau == mem.calibration["mutual_knn"].tau
    reads["n"] = 0
    with pytest.raises(InputError, match=r"mutual k-NN bootstrap .* cannot stream\): pass `sample` N"):
        latentlab.overlap(ea, eb, rank=3, k=5, bootstrap=5, device=F64_SMALL)
    assert reads["n"] == 0
    # the offered way out: the same scores as on the sampled rows themselves
    sampled = latentlab.overlap(ea, eb, rank=3, k=5, bootstrap=20, sample=100, seed=2, device=F64_SMALL)
    rows = prep.sample_rows(len(x), 100, 2)
    direct = latentlab.overlap(x[rows], y[rows], rank=3, k=5, bootstrap=20, seed=2, dtype="float64")
    assert sampled.n_a == 100 and "100 of 240" in " ".join(sampled.notes)
    for name in COV + ("mutual_knn",):
        a, b = getattr(sampled, name), getattr(direct, name)
        assert (a.value, a.ci_low, a.ci_high) == pytest.approx((b.value, b.ci_low, b.ci_high), abs=1e-10), name
    assert sampled.mutual_knn.ci_low <= sampled.mutual_knn.value <= sampled.mutual_knn.ci_high


def test_sample_is_checked(pair):
    x, y, _, _ = pair
    with pytest.raises(InputError, match="sample 1: need at least 2 rows"):
        latentlab.overlap(x, y, sample=1)
    with pytest.raises(InputError, match="sample -3"):
        latentlab.overlap(x, y, sample=-3)
    assert latentlab.overlap(x, y, sample=10_000, k=None).n_a == len(x)  # not below n: every row


def test_cli_overlap_refusal_names_sample_and_sample_runs(cli, pair, monkeypatch, tmp_path):
    x, y, _, _ = pair
    np.save(tmp_path / "x.npy", x), np.save(tmp_path / "y.npy", y)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 3000)  # under the pair, over a float64 sample of 20 rows
    res = cli("overlap", tmp_path / "x.npy", tmp_path / "y.npy", "--bootstrap", "5", ok=False)
    assert res.exit_code == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--sample N" in lines[0]
    res = cli("overlap", tmp_path / "x.npy", tmp_path / "y.npy", "--bootstrap", "5", "--sample", "20", "--json")
    import json
    out = json.loads(res.stdout)
    assert out["n_a"] == 20 and out["ci"]["mutual_knn"]["low"] <= out["mutual_knn"] <= out["ci"]["mutual_knn"]["high"]
