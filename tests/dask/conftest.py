"""Fixtures of the Dask tests: a 2-worker LocalCluster inside the tests (no external service) and
small LAION-style shard folders (img_emb/img_emb_N.npy, text_emb/…, and the same rows as parquet)."""
from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.array")

from latentlab.dask import DaskEngine  # noqa: E402

N, D = 1200, 12
SHARD = 250  # 5 shards, the last one short


@pytest.fixture(scope="package")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cl, distributed.Client(cl) as client:
        yield cl, client


@pytest.fixture(scope="package")
def folders(tmp_path_factory, write_shards):
    root = tmp_path_factory.mktemp("dask")
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((N, D)) * np.linspace(0.2, 3, D) + 5).astype(np.float32)  # large mean: shifts matter
    y = (x @ rng.standard_normal((D, D)) / 3 + rng.standard_normal((N, D))).astype(np.float32)
    for name, arr in (("img_emb", x), ("text_emb", y)):
        write_shards(root / name, arr, SHARD, stem=name)
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "pq").mkdir()
    for i, lo in enumerate(range(0, N, SHARD)):  # the same rows as parquet shards, row groups of 64
        pq.write_table(pa.table({"emb": pa.array(list(x[lo : lo + SHARD]), type=pa.list_(pa.float32(), D))}),
                       root / "pq" / f"part-{i}.parquet", row_group_size=64)
    return str(root / "img_emb"), str(root / "text_emb"), x, y


@pytest.fixture
def on_dask(cluster, monkeypatch):
    """Run inside a DaskEngine on the test cluster, counting the passes it really ran."""
    calls = {"accumulate": 0, "topk": 0, "true_ranks": 0}
    for name in calls:
        original = getattr(DaskEngine, name)

        def spy(self, *a, _name=name, _orig=original, **k):
            calls[_name] += 1
            return _orig(self, *a, **k)

        monkeypatch.setattr(DaskEngine, name, spy)

    def run(fn, range_rows=None):
        with DaskEngine(client=cluster[1], range_rows=range_rows):
            return fn()

    run.calls = calls
    return run
