"""Every format and selector reads back the same array; bad inputs raise one-line InputErrors."""
from pathlib import Path

import numpy as np
import pytest
import torch

from latentlab.errors import InputError
from latentlab.io import read_embeddings, write_embeddings, save_array, as_embeddings


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(37, 5)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".pt", ".pth", ".safetensors", ".parquet", ".csv", ".tsv"])
def test_write_read_round_trip(tmp_path, x, suffix):
    path = tmp_path / f"emb{suffix}"
    write_embeddings(path, x)
    emb = read_embeddings(path)
    assert emb.shape == x.shape
    np.testing.assert_allclose(np.asarray(emb), x, rtol=1e-6 if suffix in (".csv", ".tsv") else 0)
    assert not list(tmp_path.glob(".*tmp*")), "temporary file left behind"


def test_npy_is_read_lazily_and_indexes_like_numpy(tmp_path, x):
    np.save(tmp_path / "a.npy", x)
    emb = read_embeddings(tmp_path / "a.npy")
    assert type(emb.data).__name__ == "NpyRows"
    np.testing.assert_array_equal(emb.rows(slice(3, 9)), x[3:9])
    idx = np.array([5, 1, 1, 30, 2, 3, 4])
    np.testing.assert_array_equal(emb.rows(idx), x[idx])
    np.testing.assert_array_equal(emb.rows(slice(0, 37, 4)), x[0:37:4])
    np.testing.assert_array_equal(emb.data[4], x[4])
    np.testing.assert_array_equal(emb.data[2:6, 1:3], x[2:6, 1:3])


def test_3d_selector_and_key_selectors(tmp_path, x):
    stacked = np.stack([x, 2 * x])
    np.save(tmp_path / "pair.npy", stacked)
    np.testing.assert_array_equal(np.asarray(read_embeddings(f"{tmp_path}/pair.npy::1")), 2 * x)
    np.testing.assert_array_equal(np.asarray(read_embeddings(f"{tmp_path}/pair.npy::-2")), x)
    np.savez(tmp_path / "m.npz", img=x, txt=3 * x, both=stacked)
    np.testing.assert_array_equal(np.asarray(read_embeddings(f"{tmp_path}/m.npz::txt")), 3 * x)
    np.testing.assert_array_equal(np.asarray(read_embeddings(f"{tmp_path}/m.npz::both::1")), 2 * x)
    torch.save({"a": torch.from_numpy(x), "nested": {"b": torch.from_numpy(2 * x)}}, tmp_path / "d.pt")
    np.testing.assert_array_equal(np.asarray(read_embeddings(f"{tmp_path}/d.pt::nested::b")), 2 * x)
    from safetensors.torch import save_file
    save_file({"u": torch.from_numpy(x), "v": torch.from_numpy(x).to(torch.bfloat16)}, str(tmp_path / "s.safetensors"))
    v = np.asarray(read_embeddings(f"{tmp_path}/s.safetensors::v"))
    assert v.dtype == np.float32
    np.testing.assert_allclose(v, x, rtol=1e-2, atol=1e-2)


def test_parquet_list_column_and_key(tmp_path, x):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": pa.array(range(len(x))),
                      "fixed": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 5),
                      "var": pa.array([list(map(float, r)) for r in x])})
    pq.write_table(table, tmp_path / "t.parquet")
    np.testing.assert_allclose(np.asarray(read_embeddings(f"{tmp_path}/t.parquet::var")), x, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(read_embeddings(f"{tmp_path}/t.parquet::fixed")), x)
    with pytest.raises(InputError, match="fixed, var"):
        read_embeddings(tmp_path / "t.parquet")


def test_csv_with_header(tmp_path, x):
    path = tmp_path / "h.csv"
    path.write_text("a,b,c,d,e\n" + "\n".join(",".join(f"{v:.9g}" for v in r) for r in x))
    np.testing.assert_allclose(np.asarray(read_embeddings(path)), x, rtol=1e-6)


@pytest.mark.parametrize("kind", ["npy", "parquet"])
def test_shard_folder_reads_as_one_matrix(tmp_path, x, kind):
    folder = tmp_path / "shards"
    folder.mkdir()
    for i, (lo, hi) in enumerate([(0, 10), (10, 11), (11, 37)]):
        write_embeddings(folder / f"part-{i:03d}.{kind}", x[lo:hi])
    emb = read_embeddings(folder)
    assert emb.shape == x.shape
    np.testing.assert_array_equal(np.asarray(emb), x)
    np.testing.assert_array_equal(emb.rows(slice(8, 13)), x[8:13])
    idx = np.array([36, 0, 10, 10, 11])
    np.testing.assert_array_equal(emb.rows(idx), x[idx])


def test_half_precision_inputs_accepted(tmp_path, x):
    np.save(tmp_path / "h.npy", x.astype(np.float16))
    assert read_embeddings(tmp_path / "h.npy").dtype == np.float16
    emb = as_embeddings(torch.from_numpy(x).to(torch.bfloat16))
    assert emb.shape == x.shape


@pytest.mark.parametrize("make,match", [
    (lambda p: np.save(p / "v.npy", np.zeros(4)), "2-D array"),
    (lambda p: np.save(p / "v.npy", np.zeros((0, 4))), "empty"),
    (lambda p: np.save(p / "v.npy", np.zeros((2, 3, 4, 5))), "4-D"),
    (lambda p: np.save(p / "v.npy", np.array([["a", "b"]])), "non-numeric"),
    (lambda p: np.save(p / "v.npy", np.array([[1.0, 2.0], [3.0, np.nan], [np.inf, 0]])), "row 1 contains NaN"),
    (lambda p: np.save(p / "v.npy", np.array([[1.0, 2.0], [np.inf, 0]])), "row 1 contains Inf"),
    (lambda p: (p / "v.npy").write_bytes(b"garbage"), "not a valid .npy"),
    (lambda p: np.save(p / "v.npy", np.zeros((2, 500, 8))), r"pick a slice"),
])
def test_bad_inputs(tmp_path, make, match):
    make(tmp_path)
    with pytest.raises(InputError, match=match) as err:
        read_embeddings(tmp_path / "v.npy")
    assert "v.npy" in str(err.value) and "\n" not in str(err.value)


def test_missing_unknown_and_bad_selectors(tmp_path, x):
    with pytest.raises(InputError, match="no such file"):
        read_embeddings(tmp_path / "nope.npy")
    (tmp_path / "a.xyz").write_text("1")
    with pytest.raises(InputError, match="unknown format"):
        read_embeddings(tmp_path / "a.xyz")
    np.savez(tmp_path / "m.npz", img=x, txt=x)
    with pytest.raises(InputError, match="img, txt"):
        read_embeddings(tmp_path / "m.npz")
    with pytest.raises(InputError, match="no key 'foo'"):
        read_embeddings(f"{tmp_path}/m.npz::foo")
    np.save(tmp_path / "p.npy", np.stack([x, x]))
    with pytest.raises(InputError, match="out of range"):
        read_embeddings(f"{tmp_path}/p.npy::2")


class Evil:
    """Anything that is not a tensor needs the unpickler."""


def test_pt_with_pickled_object_is_refused(tmp_path):
    torch.save({"obj": Evil()}, tmp_path / "e.pt")
    with pytest.raises(InputError, match="weights_only"):
        read_embeddings(tmp_path / "e.pt")


def test_truncated_npy(tmp_path, x):
    np.save(tmp_path / "t.npy", x)
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-40])
    with pytest.raises(InputError, match="truncated"):
        read_embeddings(tmp_path / "t.npy")


def test_atomic_write_leaves_old_file_on_failure(tmp_path, x):
    target = tmp_path / "out.npy"
    save_array(target, x)
    with pytest.raises(InputError, match="2-D numeric"):
        write_embeddings(target, np.array(["a", "b"]))
    np.testing.assert_array_equal(np.load(target), x)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]


def test_failed_write_leaves_previous_file_and_no_partial(tmp_path, x, monkeypatch):
    target = tmp_path / "out.npy"
    save_array(target, x)

    import latentlab.io.writers as writers

    def broken(block):  # the header is on disk already: a partial temporary exists when this fails
        raise OSError("disk full")

    monkeypatch.setattr(writers, "_raw", broken)
    with pytest.raises(OSError, match="disk full"):
        write_embeddings(target, 2 * x)
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(target), x)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]


def test_a_folder_of_layer_files_is_not_read_as_shards(tmp_path, x):
    import json

    folder = tmp_path / "layers"
    folder.mkdir()
    for k in (0, 3):
        np.save(folder / f"layer{k:02d}.npy", x)
        (folder / f"layer{k:02d}.json").write_text(json.dumps({"file_layer": str(k), "model": "st:mini"}))
    with pytest.raises(InputError, match="one file per layer"):
        read_embeddings(folder)
    emb = read_embeddings(folder / "layer03.npy")
    assert emb.provenance["model"] == "st:mini"
