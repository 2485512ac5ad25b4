"""The Dask engine gives the local numbers: a 2-worker LocalCluster inside the tests, shard folders."""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
import torch

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.array")

import latentlab  # noqa: E402
from latentlab.compute import (Joint, StreamingMoments, UnitSums, accumulate_rows, as_backend,  # noqa: E402
                               current_engine)
from latentlab.align import fit_aligner  # noqa: E402
from latentlab.analyze import kernels  # noqa: E402
from latentlab.retrieval.evaluate import evaluate  # noqa: E402
from latentlab.dask import DaskEngine  # noqa: E402
from latentlab.errors import InputError  # noqa: E402


def close(a, b, rtol=1e-9):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=1e-12)


def test_merged_partial_moments_equal_one_pass():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.standard_normal((300, 5)) + 100.0)
    y = torch.as_tensor(rng.standard_normal((300, 3)))
    whole = Joint.of(StreamingMoments, kernels.RowNormMoments, UnitSums)().update(x, y)
    backend = as_backend("cpu", "float64")
    shift = whole.shift
    make = Joint.of(StreamingMoments, kernels.RowNormMoments, UnitSums)
    parts = [accumulate_rows([x, y], make, backend, rows=40, start=lo, stop=min(lo + 70, 300), shift=shift)
             for lo in range(0, 300, 70)]
    merged = parts[0]
    for p in parts[1:]:
        merged.merge(p)
    m, w = merged.parts, whole.parts
    assert m[0].n == 300
    for i, j in ((0, 0), (0, 1), (1, 1)):
        close(m[0].centered(i, j), w[0].centered(i, j), rtol=1e-10)
        close(m[1].sqnorm_products(i, j, m[0].centered(i, j)), w[1].sqnorm_products(i, j, w[0].centered(i, j)))
    close(m[2].sums[0], w[2].sums[0])
    with pytest.raises(ValueError, match="same shift"):
        StreamingMoments().update(x[:10], y[:10]).merge(StreamingMoments().update(x[10:20], y[10:20]))


def test_gap_cka_spectrum_match_the_local_path(folders, on_dask):
    a, b, _, _ = folders
    opts = dict(device="cpu", dtype="float64")  # float64 blocks: the sums agree to 1e-9 whatever the blocking
    local = (latentlab.gap(a, b, separability=False, **opts), latentlab.gap(a, b, paired=False, separability=False, **opts),
             latentlab.cka(a, b, **opts), latentlab.cka(a, b, debiased=True, **opts),
             latentlab.spectrum(a, **opts))
    dask = on_dask(lambda: (latentlab.gap(a, b, separability=False, **opts),
                            latentlab.gap(a, b, paired=False, separability=False, **opts),
                            latentlab.cka(a, b, **opts), latentlab.cka(a, b, debiased=True, **opts),
                            latentlab.spectrum(a, **opts)), range_rows=300)
    assert on_dask.calls["accumulate"] == 6 and on_dask.calls["topk"] == 1  # every pass went to the workers
    for key in ("centroid_distance", "pair_distance", "pair_cosine", "relative_gap"):
        close(getattr(dask[0], key), getattr(local[0], key))
    close(dask[0].gap_vector, local[0].gap_vector)
    close(dask[1].centroid_distance, local[1].centroid_distance)
    close(dask[2].cka, local[2].cka)
    close(dask[3].cka, local[3].cka)
    for key in ("effective_rank", "participation_ratio", "anisotropy", "hubness_skew", "hubs"):
        close(getattr(dask[4], key), getattr(local[4], key))
    close(dask[4].eigenvalues, local[4].eigenvalues)


def test_cka_matrix_matches_the_local_path(folders, on_dask):
    a, b, _, _ = folders
    local = latentlab.cka_matrix([a, b, a], device="cpu", dtype="float64")
    dask = on_dask(lambda: latentlab.cka_matrix([a, b, a], device="cpu", dtype="float64"))  # one task per shard
    assert on_dask.calls["accumulate"] == 1
    close(np.asarray(dask.matrix, dtype=float), np.asarray(local.matrix, dtype=float))


@pytest.mark.parametrize("method,params", [("lstsq", {}), ("ridge", {"alpha": 3.0}), ("procrustes", {}),
                                           ("procrustes", {"l2": True})])
def test_closed_form_fits_match_the_local_path(folders, on_dask, method, params):
    a, b, _, _ = folders
    local = fit_aligner(method, a, b, device="cpu", dtype="float64", **params)
    dask = on_dask(lambda: fit_aligner(method, a, b, device="cpu", dtype="float64", **params), range_rows=350)
    assert on_dask.calls["accumulate"] >= 1
    close(np.asarray(dask.W_), np.asarray(local.W_), rtol=1e-8)


def test_retrieval_matches_the_local_path(folders, on_dask):
    a, b, _, _ = folders
    local = evaluate(a, b, device="cpu").to_dict()
    dask = on_dask(lambda: evaluate(a, b, device="cpu").to_dict(), range_rows=256)
    assert on_dask.calls["true_ranks"] >= 1 and on_dask.calls["topk"] >= 1
    assert dask == local


def test_cli_engine_dask_gives_the_local_json(folders, cluster, cli):
    a, b, _, _ = folders
    address = cluster[0].scheduler_address
    for cmd in (["gap", a, b, "--no-probe"], ["cka", a, b], ["spectrum", a, "--no-hubness"]):
        local = cli.json(*cmd, "--device", "cpu")
        dask = cli.json(*cmd, "--device", "cpu", "--engine", "dask", "--scheduler", address)
        for key, value in local.items():
            if isinstance(value, float):
                assert dask[key] == pytest.approx(value, rel=1e-5), (cmd, key)  # float32 blocks of other sizes


def test_cli_fit_retrieval_and_parquet_shards_on_dask(folders, cluster, cli, tmp_path):
    a, b, x, _ = folders
    pq_folder = a.replace("img_emb", "pq")
    dask_flags = ("--device", "cpu", "--engine", "dask", "--scheduler", cluster[0].scheduler_address)
    local = cli.json("retrieval", a, b, "--device", "cpu")
    assert cli.json("retrieval", a, b, *dask_flags) == local
    cli("fit", "procrustes", a, b, "-o", tmp_path / "local.safetensors", "--dtype", "float64")
    cli("fit", "procrustes", pq_folder, b, "-o", tmp_path / "dask.safetensors", "--dtype", "float64", *dask_flags)
    w_local = latentlab.load_aligner(tmp_path / "local.safetensors").W_
    w_dask = latentlab.load_aligner(tmp_path / "dask.safetensors").W_
    close(np.asarray(w_dask), np.asarray(w_local), rtol=1e-8)  # parquet shards read by the workers
    m_local = cli.json("cka-matrix", a, b, pq_folder, "--device", "cpu", "--dtype", "float64")
    m_dask = cli.json("cka-matrix", a, b, pq_folder, *dask_flags, "--dtype", "float64")
    close(np.asarray(m_dask["matrix"], dtype=float), np.asarray(m_local["matrix"], dtype=float))


def test_unreachable_scheduler_is_one_error_line_and_writes_nothing(folders, cli, tmp_path):
    a, b, _, _ = folders
    out = tmp_path / "map.safetensors"
    start = time.monotonic()
    res = cli("fit", "lstsq", a, b, "-o", out, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9", ok=False)
    assert time.monotonic() - start < 5
    assert res.exit_code == 2 and not out.exists()
    assert res.stderr.startswith("error: --scheduler tcp://127.0.0.1:9: cannot connect")
    assert res.stderr.count("\n") == 1


def test_missing_extra_says_how_to_install(folders, cli, monkeypatch):
    a, b, _, _ = folders
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed → ImportError
    res = cli("cka", a, b, "--engine", "dask", ok=False)
    assert res.exit_code == 2
    assert "error: --engine dask: needs" in res.stderr and "pip install 'latentlab[dask]'" in res.stderr
    res = cli("cka", a, b, "--scheduler", "tcp://127.0.0.1:9", ok=False)
    assert res.exit_code == 2 and "only used with --engine dask" in res.stderr


class _SlowRows:
    """Rows read slowly; a worker's read leaves ``marker`` (a file: the source is pickled to the cluster)."""

    def __init__(self, x, marker):
        self.x, self.shape, self.dtype, self.marker = x, x.shape, x.dtype, marker

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        if threading.current_thread() is not threading.main_thread():
            self.marker.touch()  # a worker's read (the client validates and reads the first block too)
        time.sleep(0.1)
        return self.x[index]


def test_a_worker_lost_mid_run_is_an_error_naming_it(folders, tmp_path):
    x, marker = folders[2], tmp_path / "reading"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cl, distributed.Client(cl) as client:
        victim = next(iter(cl.workers.values()))

        def kill_when_reading():
            for _ in range(200):
                if marker.exists():
                    return cl.sync(victim.close)
                time.sleep(0.02)

        threading.Thread(target=kill_when_reading, daemon=True).start()
        with pytest.raises(InputError, match=rf"scheduler {cl.scheduler_address}: worker inproc://\S+ left the "
                                             rf"cluster during the run; nothing was written"):
            with DaskEngine(client=client, range_rows=100):
                latentlab.spectrum(_SlowRows(x, marker), hubness=False, device="cpu")


def test_unreachable_address_is_refused_before_any_work():
    start = time.monotonic()
    with pytest.raises(InputError, match="scheduler tcp://127.0.0.1:9: cannot connect"):
        with DaskEngine("tcp://127.0.0.1:9"):
            pass
    assert time.monotonic() - start < 5
    assert current_engine() is None  # a failed connection leaves no engine behind


def test_ranges_follow_the_shards_and_stay_within_the_block_budget(folders, cluster):
    from latentlab.compute import Backend
    from latentlab.io import read_embeddings

    a, b, x, _ = folders
    N, D = x.shape  # noqa: N806 - the folders' rows (shards of 250)
    xa, xb = read_embeddings(a).data, read_embeddings(b).data
    eng = DaskEngine(client=cluster[1])
    roomy = Backend.make("cpu", "float32")
    assert eng._ranges([xa, xb], N, 64, roomy) == [(0, 250), (250, 500), (500, 750), (750, 1000), (1000, 1200)]
    tight = Backend.make("cpu", "float32", block_bytes=128 * 2 * D * 4 // 4)  # 4 budgets = 128 paired rows
    pieces = eng._ranges([xa, xb], N, 64, tight)
    assert max(hi - lo for lo, hi in pieces) == 128 and pieces[0] == (0, 128) and (250, 378) in pieces
    assert sum(hi - lo for lo, hi in pieces) == N
