"""Issue 13: ``apply`` out of core — shard folders in, rows written block by block, the memory
budget does not stop it, and an error or a kill mid-write leaves no output behind."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from latentlab.align import apply_map, fit_aligner, load_aligner, mapped_blocks
from latentlab.align.compose import Pipeline, compose
from latentlab.analyze import prep
from latentlab.errors import InputError
from latentlab.io import read_embeddings

KW = dict(dtype="float64", device="cpu")
SIZES = [70, 130, 1, 99]


@pytest.fixture(scope="module")
def spaces():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 6)) * rng.uniform(0.5, 3, 6) + 1.0
    b = a @ np.linalg.qr(rng.standard_normal((6, 6)))[0] + 0.3 * rng.standard_normal((300, 6)) - 2.0
    c = np.tanh(b @ rng.standard_normal((6, 4))) + 0.1 * rng.standard_normal((300, 4))
    return a, b, c


@pytest.fixture(scope="module")
def maps(spaces):
    a, b, c = spaces
    ab = fit_aligner("procrustes", a, b, **KW)
    return {"procrustes": ab,
            "cca": fit_aligner("cca", a, b, components=3, **KW),
            "pipeline": compose(ab, fit_aligner("lstsq", b, c, l2=True, **KW)),
            "mlp": fit_aligner("mlp", a, b, hidden=8, epochs=2, batch_size=64, **KW)}


@pytest.mark.parametrize("name", ["procrustes", "cca", "pipeline", "mlp"])
def test_shard_folder_through_apply_equals_the_in_memory_transform(tmp_path, spaces, maps, name, write_shards):
    a = spaces[0]
    al = maps[name]
    if name == "pipeline":
        assert isinstance(al, Pipeline)
    folder = write_shards(tmp_path / "a", a, SIZES)
    res = apply_map(al, folder, tmp_path / "out.npy", dtype="float64", block_rows=37)  # blocks cross shards
    assert (res.rows, res.dim_out, res.side) == (300, al.dim_common_, "source")
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), al.transform(a), rtol=1e-12, atol=1e-12)
    # the saved artifact applies the same (what the CLI loads)
    al.save(tmp_path / "m.safetensors")
    apply_map(tmp_path / "m.safetensors", folder, tmp_path / "out2.npy", dtype="float64")
    np.testing.assert_array_equal(np.load(tmp_path / "out2.npy"), np.load(tmp_path / "out.npy"))
    # and the iterator gives the same rows, block by block, in order
    got = list(mapped_blocks(al, folder, block_rows=64))
    assert [lo for lo, _ in got] == list(range(0, 300, 64))
    np.testing.assert_array_equal(np.concatenate([blk for _, blk in got]), np.load(tmp_path / "out.npy"))


def test_target_side(tmp_path, spaces, maps, write_shards):
    b = spaces[1]
    folder = write_shards(tmp_path / "b", b, SIZES)
    res = apply_map(maps["cca"], folder, tmp_path / "t.npy", side="target", dtype="float64")
    assert res.side == "target"
    np.testing.assert_allclose(np.load(tmp_path / "t.npy"), maps["cca"].transform_target(b), rtol=1e-12, atol=1e-12)
    with pytest.raises(InputError, match="expects source rows of dimension 6, got 4"):
        apply_map(maps["cca"], spaces[2], tmp_path / "x.npy")


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".safetensors", ".parquet", ".csv", ".tsv", ".pt"])
def test_every_output_format_holds_the_mapped_rows(tmp_path, spaces, maps, suffix):
    al = maps["procrustes"]
    apply_map(al, spaces[0], tmp_path / f"o{suffix}", block_rows=50)
    got = np.asarray(read_embeddings(tmp_path / f"o{suffix}"))
    tol = 1e-6 if suffix in (".csv", ".tsv") else 1e-7  # float32 output; text keeps 9 significant digits
    np.testing.assert_allclose(got, al.transform(spaces[0]), rtol=tol, atol=tol)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"o{suffix}"]


def test_a_small_memory_budget_does_not_stop_apply_and_rows_never_all_in_memory(tmp_path, monkeypatch,
                                                                               write_shards):
    """Budget 0: the streamed formats still write; the mapped matrix (3.2 MB in float32) is never held."""
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20000, 40)).astype(np.float32)
    al = fit_aligner("lstsq", x[:500], x[:500] @ rng.standard_normal((40, 40)), **KW)
    folder = tmp_path / "x"
    write_shards(folder, x, [5000, 7000, 8000])
    # once untraced first: the modules apply imports lazily would count as allocations when this
    # test runs alone (``-k``), and they are not rows
    apply_map(al, folder, tmp_path / "warm.npy", block_rows=500)
    (tmp_path / "warm.npy").unlink()
    tracemalloc.start()
    try:
        apply_map(al, folder, tmp_path / "out.npy", block_rows=500)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20000 * 40 * 4 / 4, peak  # a quarter of the float32 output: blocks only (numpy's allocations)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), al.transform(x), rtol=1e-5, atol=1e-5)
    # .pt pickles one tensor: refused before any row is read, naming the streamed way
    with pytest.raises(InputError, match=r"out\.pt.*needs all 20000 rows in memory.*write \.npy"):
        apply_map(al, folder, tmp_path / "out.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy", "x"]


class _Boom(RuntimeError):
    pass


def test_an_error_mid_write_leaves_the_old_output_and_no_temporary(tmp_path, spaces, maps, monkeypatch):
    al = maps["procrustes"]
    target = tmp_path / "out.npy"
    np.save(target, np.zeros(3))
    calls = []
    real = type(al)._map_source

    def fail_third(self, x, fitted):
        calls.append(len(x))
        if len(calls) == 3:
            raise _Boom("device lost")
        return real(self, x, fitted)

    monkeypatch.setattr(type(al), "_map_source", fail_third)
    with pytest.raises(_Boom):
        apply_map(al, spaces[0], target, block_rows=40)
    assert len(calls) == 3  # two blocks were on disk in the temporary when it failed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]
    np.testing.assert_array_equal(np.load(target), np.zeros(3))


def test_a_non_finite_row_is_named_and_nothing_is_written(tmp_path, spaces, maps, write_shards):
    x = spaces[0].copy()
    x[157, 2] = np.nan
    with pytest.raises(InputError, match=r"row 157 contains NaN"):
        apply_map(maps["procrustes"], write_shards(tmp_path / "a", x, SIZES), tmp_path / "out.npy", block_rows=40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_cli_apply_shard_folder(cli, tmp_path, spaces, maps, write_shards):
    maps["pipeline"].save(tmp_path / "p.safetensors")
    folder = write_shards(tmp_path / "a", spaces[0], SIZES)
    out = cli.json("apply", tmp_path / "p.safetensors", folder, "-o", tmp_path / "m.parquet", "--device", "cpu")
    assert out == {"method": "pipeline", "side": "source", "rows": 300, "dim_out": 4,
                   "output": str(tmp_path / "m.parquet"), "dtype": "float32"}
    np.testing.assert_allclose(np.asarray(read_embeddings(tmp_path / "m.parquet")),
                               load_aligner(tmp_path / "p.safetensors").transform(spaces[0]), rtol=1e-6, atol=1e-6)
    res = cli("apply", tmp_path / "p.safetensors", folder, "-o", folder / "emb_0.npy", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error:")


# Dies like SIGKILL (no finally runs) after the first block is written to the temporary.
KILLED_APPLY = """
import os, sys
import numpy as np
import latentlab.io.writers as writers
from latentlab.align import apply_map, fit_aligner

real = writers.EmbeddingWriter.write
def write(self, block):
    real(self, block)
    os._exit(9)
writers.EmbeddingWriter.write = write
x = np.random.default_rng(0).standard_normal((400, 4))
apply_map(fit_aligner("procrustes", x, x[:, ::-1], device="cpu"), x, sys.argv[1], block_rows=100)
"""


@pytest.mark.slow  # a fresh interpreter importing torch: several seconds on a busy machine
def test_killed_apply_leaves_no_output_and_the_next_apply_removes_its_temporary(tmp_path, cli, spaces, maps):
    target = tmp_path / "out.npy"
    proc = subprocess.run([sys.executable, "-c", KILLED_APPLY, str(target)], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    assert "out.npy" not in left
    temps = [n for n in left if re.fullmatch(r"\.out\.[0-9a-f]{8}\.tmp\.npy", n)]
    assert len(temps) == 1 and set(left) == {temps[0], ".out.npy.lock"}, left
    maps["procrustes"].save(tmp_path / "m.safetensors")
    np.save(tmp_path / "a.npy", spaces[0])
    out = cli.json("apply", tmp_path / "m.safetensors", tmp_path / "a.npy", "-o", target)
    assert out["rows"] == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "m.safetensors", "out.npy"]
