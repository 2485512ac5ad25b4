"""Dump folders as they come: numbered shards, LAION-style roots, parquet shards, bad shards."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from latentlab.errors import InputError  # noqa: E402
from latentlab.io import read_embeddings  # noqa: E402
from latentlab.io.dumps import ParquetRows  # noqa: E402

SIZES = [3, 5, 2, 4, 1, 3, 2, 2, 3, 4, 2, 5]  # 12 shards: img_emb_10 must come after img_emb_9


def _rows(seed=0, d=6):
    return np.random.default_rng(seed).standard_normal((sum(SIZES), d)).astype(np.float32)


def _laion(root, x, *, meta=True, text=None):
    (root / "img_emb").mkdir(parents=True)
    if meta:
        (root / "metadata").mkdir()
    lo = 0
    for i, n in enumerate(SIZES):
        np.save(root / "img_emb" / f"img_emb_{i}.npy", x[lo : lo + n])
        if text is not None:
            (root / "text_emb").mkdir(exist_ok=True)
            np.save(root / "text_emb" / f"text_emb_{i}.npy", text[lo : lo + n])
        if meta:
            pq.write_table(pa.table({"caption": [f"c{j}" for j in range(lo, lo + n)]}),
                           root / "metadata" / f"metadata_{i}.parquet")
        lo += n
    return root


def _parquet_folder(folder, x, *, fixed=False, extra=None, group=2):
    folder.mkdir()
    lo = 0
    for i, n in enumerate(SIZES):
        block = x[lo : lo + n]
        typ = pa.list_(pa.float32(), x.shape[1]) if fixed else pa.list_(pa.float32())
        cols = {"id": pa.array(range(lo, lo + n)), "emb": pa.array(list(block), type=typ)}
        if extra is not None:
            cols["emb2"] = pa.array(list(extra[lo : lo + n]), type=pa.list_(pa.float32()))
        pq.write_table(pa.table(cols), folder / f"part-{i}.parquet", row_group_size=group)
        lo += n
    return folder


def test_laion_embedding_folder_reads_in_shard_number_order(tmp_path):
    x = _rows()
    root = _laion(tmp_path / "dump", x)
    emb = read_embeddings(root / "img_emb")
    np.testing.assert_array_equal(np.asarray(emb), x)  # lexicographic order would put _10 after _1
    np.testing.assert_array_equal(emb.rows(np.array([30, 0, 17])), x[[30, 0, 17]])


def test_laion_root_offers_its_embedding_folders_as_keys(tmp_path):
    x, t = _rows(0), _rows(1)
    root = _laion(tmp_path / "dump", x, text=t)
    np.testing.assert_array_equal(np.asarray(read_embeddings(f"{root}::text_emb")), t)
    np.testing.assert_array_equal(np.asarray(read_embeddings(f"{root}::img_emb")), x)
    with pytest.raises(InputError, match="img_emb.*text_emb|pick one"):
        read_embeddings(root)


def test_a_missing_shard_is_named(tmp_path):
    root = _laion(tmp_path / "dump", _rows(), meta=False)
    (root / "img_emb" / "img_emb_4.npy").unlink()
    with pytest.raises(InputError, match=r"img_emb_4\.npy: missing shard 4"):
        read_embeddings(root / "img_emb")


def test_a_truncated_shard_is_named(tmp_path):
    root = _laion(tmp_path / "dump", _rows(), meta=False)
    shard = root / "img_emb" / "img_emb_10.npy"
    shard.write_bytes(shard.read_bytes()[:-7])
    with pytest.raises(InputError, match=r"img_emb_10\.npy: truncated"):
        read_embeddings(root / "img_emb")


@pytest.mark.parametrize("damage", ["vanished", "truncated"])
def test_a_shard_damaged_after_listing_is_named_when_read(tmp_path, damage):
    """The local path, as the Dask workers (tests/dask): listed and checked, then gone or cut mid-run."""
    import latentlab

    root = _laion(tmp_path / "dump", _rows(), meta=False)
    emb = read_embeddings(root / "img_emb")
    shard = root / "img_emb" / "img_emb_10.npy"
    if damage == "vanished":
        shard.unlink()
    else:
        shard.write_bytes(shard.read_bytes()[:-7])
    with pytest.raises(InputError, match=rf"^{shard}: " + ("cannot read it any more" if damage == "vanished"
                                                            else "file ended early")):
        latentlab.spectrum(emb, hubness=False, device="cpu")


def test_a_wrong_width_shard_is_named(tmp_path):
    root = _laion(tmp_path / "dump", _rows(), meta=False)
    np.save(root / "img_emb" / "img_emb_7.npy", np.zeros((2, 5), np.float32))
    with pytest.raises(InputError, match=r"img_emb_7\.npy: 5 columns"):
        read_embeddings(root / "img_emb")


def test_metadata_rows_must_match_their_embedding_shard(tmp_path):
    root = _laion(tmp_path / "dump", _rows())
    pq.write_table(pa.table({"caption": ["a"]}), root / "metadata" / "metadata_3.parquet")
    with pytest.raises(InputError, match=r"metadata_3\.parquet: 1 rows, but its embedding shard .*img_emb_3\.npy has 4"):
        read_embeddings(root / "img_emb")
    (root / "metadata" / "metadata_3.parquet").unlink()
    with pytest.raises(InputError, match=r"metadata_3\.parquet: missing"):
        read_embeddings(f"{root}::img_emb")


@pytest.mark.parametrize("fixed", [False, True])
def test_parquet_shards_read_row_group_by_row_group(tmp_path, fixed):
    x = _rows()
    folder = _parquet_folder(tmp_path / "pq", x, fixed=fixed)
    emb = read_embeddings(folder)  # the single list column is picked automatically
    assert emb.shape == x.shape and emb.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(emb), x)
    np.testing.assert_array_equal(emb.rows(slice(3, 29)), x[3:29])
    np.testing.assert_array_equal(emb.rows(np.array([35, 2, 2, 11])), x[[35, 2, 2, 11]])


def test_parquet_part_decodes_one_row_group_per_read(tmp_path, monkeypatch):
    x = _rows()
    folder = _parquet_folder(tmp_path / "pq", x, group=2)
    part = ParquetRows(folder / "part-1.parquet", "emb")  # 5 rows in row groups of 2, 2, 1
    assert part.shape == (5, 6) and part.group_rows == [2, 2, 1]
    seen = []
    original = ParquetRows._group

    def spy(self, g):
        if self._cache is None or self._cache[0] != g:
            seen.append(g)
        return original(self, g)

    monkeypatch.setattr(ParquetRows, "_group", spy)
    np.testing.assert_array_equal(part[2:4], x[5:7])
    assert seen == [1]  # only the row group holding rows 2..3, never the whole file
    clone = pickle.loads(pickle.dumps(part))  # Dask workers receive it by pickling
    assert clone._cache is None
    np.testing.assert_array_equal(clone[:], x[3:8])


def test_parquet_folder_with_two_list_columns_needs_a_key(tmp_path):
    x, y = _rows(0), _rows(1, d=3)
    folder = _parquet_folder(tmp_path / "pq", x, extra=y)
    with pytest.raises(InputError, match="emb, emb2"):
        read_embeddings(folder)
    np.testing.assert_array_equal(np.asarray(read_embeddings(f"{folder}::emb2")), y)


def test_parquet_bad_shards_are_named(tmp_path):
    x = _rows()
    folder = _parquet_folder(tmp_path / "pq", x)
    good = (folder / "part-5.parquet").read_bytes()
    (folder / "part-5.parquet").write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match=r"part-5\.parquet: truncated or corrupt"):
        read_embeddings(folder)
    (folder / "part-5.parquet").write_bytes(good)
    pq.write_table(pa.table({"emb": pa.array([[1.0, 2.0]], type=pa.list_(pa.float32()))}), folder / "part-9.parquet")
    with pytest.raises(InputError, match=r"part-9\.parquet: 2 columns"):
        read_embeddings(folder)
    (folder / "part-9.parquet").unlink()
    with pytest.raises(InputError, match=r"part-9\.parquet: missing shard 9"):
        read_embeddings(folder)


def test_ragged_parquet_rows_are_named(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.table({"emb": pa.array([[1.0, 2.0], [1.0, 2.0, 3.0], [0.0]], type=pa.list_(pa.float32()))}),
                   folder / "part-0.parquet")
    with pytest.raises(InputError, match=r"part-0\.parquet::emb: row 1 has 3 values"):
        np.asarray(read_embeddings(folder))


def test_unnumbered_npy_folders_keep_the_plain_rules(tmp_path):
    x = _rows()
    folder = tmp_path / "plain"
    folder.mkdir()
    np.save(folder / "a.npy", x[:10])
    np.save(folder / "b.npy", x[10:])
    np.testing.assert_array_equal(np.asarray(read_embeddings(folder)), x)


def test_cli_names_the_missing_shard(tmp_path, cli):
    root = _laion(tmp_path / "dump", _rows())
    (root / "img_emb" / "img_emb_11.npy").unlink()
    res = cli("spectrum", f"{root}::img_emb", ok=False)
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith("error: ") and "img_emb_11.npy: missing shard 11" in res.stderr
