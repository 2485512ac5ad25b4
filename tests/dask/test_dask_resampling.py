"""Resampling on the Dask engine: CKA's bootstrap and streamed permutation null and the spectrum's
half-sampling run on the workers and give the local numbers; failures mid-run are one error line."""
from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
import pytest
import torch

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.array")

import latentlab  # noqa: E402
from latentlab.analyze import prep  # noqa: E402
from latentlab.analyze.cka_resample import _group_sums, stream_group_sums  # noqa: E402
from latentlab.compute import accumulate_rows, as_backend  # noqa: E402
from latentlab.dask import DaskEngine, engine as dask_engine  # noqa: E402
from latentlab.errors import InputError  # noqa: E402
from latentlab.io import read_embeddings  # noqa: E402

F64 = dict(device="cpu", dtype="float64")


def interval(est):
    return np.array([est.value, est.ci_low, est.ci_high])


def test_group_sums_split_anywhere_add_up_to_one_pass():
    """The grouping depends on the global row index only: ranges told where they start (seek) merge
    to the sums of one pass, whatever the split — what lets workers form them."""
    rng = np.random.default_rng(3)
    x, y = torch.as_tensor(rng.standard_normal((301, 4)) + 7), torch.as_tensor(rng.standard_normal((301, 3)))
    backend = as_backend("cpu", "float64")
    for budget in (10**9, 8 * 40 * 30):  # one group per row / 30-odd groups of ten rows
        make = _group_sums(301, (x.mean(0), y.mean(0)), 5, True, budget, torch.float64)
        whole = make().update(x, y).sums
        parts = [accumulate_rows([x[lo:hi], y[lo:hi]], make, backend, rows=17, offset=lo)
                 for lo, hi in ((0, 90), (90, 91), (91, 301))]
        merged = parts[2].merge(parts[0]).merge(parts[1]).sums  # any order
        assert set(merged) == set(whole)
        for key in whole:
            np.testing.assert_allclose(merged[key], whole[key], rtol=1e-11, atol=1e-11)
        # a range not told where it starts takes the first rows' groups: the sums differ
        blind = accumulate_rows([x[91:301], y[91:301]], make, backend, rows=17).merge(parts[0]).merge(parts[1]).sums
        assert not torch.allclose(blind["xy"], whole["xy"])


@pytest.mark.parametrize("lanes", [False, True])
def test_cka_bootstrap_runs_on_the_workers_and_matches_local(folders, on_dask, monkeypatch, lanes):
    a, b, _, _ = folders
    if lanes:  # the large-accumulator shape: one chain of range tasks per worker
        monkeypatch.setattr(sys.modules["latentlab.dask.engine"], "PARTIAL_BYTES", 0)  # the module, not engine()
    for debiased in (False, True):
        local = latentlab.cka(a, b, bootstrap=50, seed=4, debiased=debiased, **F64).cka
        before = on_dask.calls["accumulate"]
        remote = on_dask(lambda: latentlab.cka(a, b, bootstrap=50, seed=4, debiased=debiased, **F64).cka,
                         range_rows=170)
        assert on_dask.calls["accumulate"] - before == 2  # the point pass and the group-sum pass
        np.testing.assert_allclose(interval(remote), interval(local), rtol=1e-9)
        assert local.ci_high - local.ci_low > 1e-3


def test_grouped_cka_bootstrap_matches_local(folders, on_dask, monkeypatch):
    """Fewer groups than rows (a big n): each range sorts its rows by group before multiplying."""
    from latentlab.analyze.cka_resample import linear_cka_bootstrap_streamed

    a, b, x, y = folders
    ea, eb = read_embeddings(a), read_embeddings(b)
    backend = as_backend("cpu", "float64")
    run = lambda: linear_cka_bootstrap_streamed(ea, eb, (x.mean(0), y.mean(0)), 40, backend=backend,  # noqa: E731
                                                seed=2, value=0.5, budget=8 * 400 * 60)
    local = run()
    assert "52 random row groups" in local.method  # 192,000 B of sums, 3,656 B a group
    np.testing.assert_allclose(interval(on_dask(run, range_rows=333)), interval(local), rtol=1e-9)


def test_spectrum_half_sampling_runs_on_the_workers_and_matches_local(folders, on_dask):
    a, _, _, _ = folders
    local = latentlab.spectrum(a, hubness=False, bootstrap=40, seed=6, **F64)
    remote = on_dask(lambda: latentlab.spectrum(a, hubness=False, bootstrap=40, seed=6, **F64), range_rows=300)
    assert on_dask.calls["accumulate"] == 2
    for key in ("effective_rank", "participation_ratio", "anisotropy"):
        np.testing.assert_allclose(interval(getattr(remote, key)), interval(getattr(local, key)), rtol=1e-9)


@pytest.mark.parametrize("debiased", [False, True])
def test_streamed_permutation_null_runs_on_the_workers_and_matches_local(folders, on_dask, monkeypatch, debiased):
    a, b, x, y = folders
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 0)  # nothing fits: one streamed pass per shuffle
    run = lambda: latentlab.cka(a, b, debiased=debiased, calibrate=6, permutations=4, seed=3, **F64)  # noqa: E731
    local = run()
    remote = on_dask(run, range_rows=256)
    assert on_dask.calls["accumulate"] == 1 + 6 + 4  # the point pass, then one per shuffle
    for key in ("tau", "null_mean", "p_value", "calibrated"):
        assert getattr(remote.calibration, key) == pytest.approx(getattr(local.calibration, key), rel=1e-9, abs=1e-12)
    assert remote.p_value == local.p_value
    # and one null score is CKA of the shuffled pairing itself, formed on the workers
    from latentlab.analyze.cka import _linear_null, _linear_pass, linear_cka

    ea, eb = read_embeddings(a), read_embeddings(b)
    backend = as_backend("cpu", "float64")
    perm = np.random.default_rng(1).permutation(len(x))
    value, mom, ext = _linear_pass(ea, eb, debiased=debiased, backend=backend)
    score = on_dask(lambda: _linear_null(ea, eb, value, mom, ext, debiased, backend).shuffled(perm), range_rows=256)
    assert score == pytest.approx(linear_cka(x.astype(float), y[perm].astype(float), debiased=debiased), abs=1e-10)


@pytest.mark.parametrize("reader", ["client", "worker"])
@pytest.mark.parametrize("damage", ["vanished", "truncated"])
def test_a_shard_damaged_after_listing_is_an_error_naming_it(folders, cluster, tmp_path, damage, reader,
                                                              write_shards):
    a, b, x, y = folders
    for name, arr in (("img_emb", x), ("text_emb", y)):  # a private copy of the folders to damage
        write_shards(tmp_path / name, arr, 250, stem=name)
    ea, eb = read_embeddings(tmp_path / "img_emb"), read_embeddings(tmp_path / "text_emb")  # listed, headers checked
    shard = tmp_path / "text_emb" / "text_emb_3.npy"
    if damage == "vanished":
        shard.unlink()
    else:
        os.truncate(shard, shard.stat().st_size // 2)
    with pytest.raises(InputError, match=rf"^{shard}: ") as err:
        with DaskEngine(client=cluster[1], range_rows=250):
            if reader == "client":  # the point pass reads its first block (the shift) here: all rows
                latentlab.cka(ea, eb, **F64)
            else:  # a pass with a fixed shift reads nothing here: the workers meet the damage
                stream_group_sums(ea, eb, (x.mean(0), y.mean(0)), backend=as_backend("cpu", "float64"), rows=64,
                                  seed=0)
    assert ("early" if damage == "truncated" else "No such file") in str(err.value)


class _KillFirstPass(distributed.WorkerPlugin):
    """The first worker to start a partial pass dies at once (SIGKILL, as an OOM kill would);
    every later partial waits a moment, so the run is still going when the client notices."""

    def __init__(self, marker: str):
        self.marker = marker

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or "_partial" not in str(key):
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            time.sleep(0.5)
            return
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow  # two worker processes start and import torch (~10 s on 2 shared cores)
def test_a_worker_process_killed_mid_run_is_one_error_line_and_writes_nothing(folders, cli, tmp_path):
    a, b, _, _ = folders
    out = tmp_path / "map.safetensors"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cl, distributed.Client(cl) as client:
        client.register_plugin(_KillFirstPass(str(tmp_path / "killed")))
        address = cl.scheduler_address
        res = cli("fit", "lstsq", a, b, "-o", out, "--dtype", "float64", "--engine", "dask", "--scheduler", address,
                  ok=False)
    assert (tmp_path / "killed").exists()  # a worker did die
    assert res.exit_code == 2 and not out.exists() and not list(tmp_path.glob("*.safetensors*"))
    assert res.stderr.startswith(f"error: --scheduler {address}: "), res.stderr
    assert res.stderr.count("\n") == 1 and res.stdout == ""


def test_engine_shorthand_is_the_engine(cluster):
    with dask_engine(client=cluster[1]) as eng:
        assert isinstance(eng, DaskEngine) and eng.address == cluster[0].scheduler_address
