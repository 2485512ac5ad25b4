"""Shards, resume and the final layouts, driven by a fake encoder (no model library)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latentlab.errors import InputError
from latentlab.io import read_embeddings
from latentlab.loaders import embed, embed_to_file
from latentlab.loaders import run as run_mod
from latentlab.loaders.base import Encoder, Prepared
from latentlab.loaders.spec import ModelSpec, layer_key


class FakeEncoder(Encoder):
    """Item i ↦ layer-dependent vector: [len(text), layer, hash(text) % 97]; records batch contents."""

    modality = "text"
    n_layers = 3

    def __init__(self):
        self.spec = ModelSpec("hf", "fake", "hf:fake")
        self.device = torch.device("cpu")
        self.batches = []

    def prepare(self, items):
        return Prepared(list(items), list(range(len(items))))

    def forward(self, prepared, layers, pool):
        self.batches.append(list(prepared.inputs))
        rows = lambda layer: torch.tensor([[len(t), layer, sum(map(ord, t)) % 97] for t in prepared.inputs],
                                          dtype=torch.float32)
        if layers is None:
            return {layer_key(None): rows(-1)}
        return {layer_key(i): rows(i) for i in layers}


def expected(texts, layer):
    return np.array([[len(t), layer, sum(map(ord, t)) % 97] for t in texts], dtype=np.float32)


TEXTS = [("w" * (i % 7 + 1)) + str(i) for i in range(23)]


def test_order_restored_and_sorted_batches():
    enc = FakeEncoder()
    got = embed(enc, TEXTS, batch_size=4)
    np.testing.assert_array_equal(got, expected(TEXTS, -1))
    lengths = [[len(t) for t in b] for b in enc.batches]
    flat = [x for b in lengths for x in b]
    assert flat == sorted(flat, reverse=True)  # longest first: little padding per batch


def test_layers_dict_and_normalize():
    got = embed(FakeEncoder(), TEXTS, layers="0,2", normalize=True)
    assert set(got) == {0, 2}
    ref = expected(TEXTS, 2)
    np.testing.assert_allclose(got[2], ref / np.linalg.norm(ref, axis=1, keepdims=True), rtol=1e-6)


@pytest.mark.parametrize("out, layers, files", [
    ("e.npy", None, ["e.npy"]),
    ("e.safetensors", "all", ["e.safetensors"]),
    ("folder", "0,2", ["folder/layer00.npy", "folder/layer02.npy"]),
])
def test_layouts_roundtrip(tmp_path, out, layers, files):
    rep = embed_to_file(FakeEncoder(), TEXTS, tmp_path / out, layers=layers, shard_size=5, progress=False)
    assert rep.files == [str(tmp_path / f) for f in files]
    side = json.loads((tmp_path / out).with_suffix(".json").read_text())
    assert side["count"] == len(TEXTS) and side["latentlab_version"] and side["input_sha256"]
    assert not (tmp_path / f"{out}.parts").exists()
    for f in files:
        key = f.split("/")[-1].split(".")[0]
        layer = -1 if key in ("e",) else None
        if out.endswith(".safetensors"):
            from safetensors.numpy import load_file

            tensors = load_file(str(tmp_path / f))  # written by hand: the real reader must accept it
            assert sorted(tensors) == ["layer00", "layer01", "layer02"]
            for i in range(3):
                np.testing.assert_array_equal(tensors[f"layer{i:02d}"], expected(TEXTS, i))
            assert json.loads(__import__("safetensors").safe_open(str(tmp_path / f), "np").metadata()["latentlab"])["count"] == 23
            continue
        emb = read_embeddings(tmp_path / f)
        layer = -1 if layer is not None else int(key[-2:])
        np.testing.assert_array_equal(np.asarray(emb), expected(TEXTS, layer))
        assert emb.provenance.get("count") == 23  # io finds the sidecar beside the file


def test_resume_skips_finished_shards(tmp_path, monkeypatch):
    out = tmp_path / "e.npy"
    real = run_mod._embed_chunk
    calls = []

    def flaky(*args, **kwargs):
        calls.append(args[2])  # shard start row
        if len(calls) == 3:
            raise KeyboardInterrupt  # the run dies during the third shard
        return real(*args, **kwargs)

    monkeypatch.setattr(run_mod, "_embed_chunk", flaky)
    with pytest.raises(KeyboardInterrupt):
        embed_to_file(FakeEncoder(), TEXTS, out, shard_size=5, progress=False)
    assert not out.exists() and len(list((tmp_path / "e.npy.parts").glob("shard-*.json"))) == 2
    monkeypatch.setattr(run_mod, "_embed_chunk", real)
    enc = FakeEncoder()
    rep = embed_to_file(enc, TEXTS, out, shard_size=5, progress=False)
    assert rep.resumed_shards == 2
    assert sum(len(b) for b in enc.batches) == len(TEXTS) - 10  # only unfinished shards recomputed
    np.testing.assert_array_equal(np.load(out), expected(TEXTS, -1))


def test_changed_settings_start_over(tmp_path):
    out = tmp_path / "e.npy"
    parts = tmp_path / "e.npy.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"model": "something else"}))
    (parts / "shard-00000.json").write_text("{}")
    with pytest.warns(UserWarning, match="other settings"):
        rep = embed_to_file(FakeEncoder(), TEXTS, out, shard_size=5, progress=False)
    assert rep.resumed_shards == 0
    np.testing.assert_array_equal(np.load(out), expected(TEXTS, -1))


def test_bad_outputs(tmp_path):
    with pytest.raises(InputError, match="write them to a folder"):
        embed_to_file(FakeEncoder(), TEXTS, tmp_path / "e.npy", layers="all", progress=False)
    with pytest.raises(InputError, match="does not exist"):
        embed_to_file(FakeEncoder(), TEXTS, tmp_path / "nope" / "e.npy", progress=False)
    with pytest.raises(InputError, match="unknown output format"):
        embed_to_file(FakeEncoder(), TEXTS, tmp_path / "e.xyz", progress=False)
