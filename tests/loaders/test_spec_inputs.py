"""Spec parsing, layer selection, input reading and pooling: no model library needed."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latentlab.errors import InputError
from latentlab.loaders.inputs import read_inputs
from latentlab.loaders.pooling import pool_tokens
from latentlab.loaders.spec import parse_layers, parse_spec, resolve_layers


def test_parse_spec_kinds(tmp_path):
    s = parse_spec("hf:bert-base-uncased")
    assert (s.kind, s.name, s.local) == ("hf", "bert-base-uncased", None)
    s = parse_spec(f"st:{tmp_path}")
    assert s.kind == "st" and s.local == tmp_path.resolve()
    assert parse_spec("st:sentence-transformers/all-MiniLM-L6-v2").local is None  # org/name is a hub name
    s = parse_spec("openclip:ViT-B-32:laion2b_s34b_b79k")
    assert (s.kind, s.name, s.pretrained, s.local) == ("openclip", "ViT-B-32", "laion2b_s34b_b79k", None)
    w = tmp_path / "w.safetensors"
    w.write_bytes(b"")
    s = parse_spec(f"openclip:ViT-B-32:{w}")
    assert s.pretrained == str(w) and s.local == w.resolve()
    assert parse_spec("openclip:hf-hub:timm/x").name == "hf-hub:timm/x"


@pytest.mark.parametrize("spec, message", [
    ("bert-base", "unknown model spec"),
    ("tf:bert", "unknown model spec"),
    ("hf:", "names no model"),
    ("hf:./does/not/exist", "does not exist"),
    ("st:/nowhere/model", "does not exist"),
    ("openclip:ViT-B-32", "give the weights"),
    ("openclip:ViT-B-32:/no/such/weights.safetensors", "does not exist"),
])
def test_parse_spec_errors(spec, message):
    with pytest.raises(InputError, match=message):
        parse_spec(spec)


def test_layers():
    assert parse_layers(None) is None and parse_layers("output") is None
    assert parse_layers("all") == "all"
    assert parse_layers("0,3,-1") == [0, 3, -1]
    assert resolve_layers("all", 7, "m") == list(range(7))
    assert resolve_layers([-1, 0, 6], 7, "m") == [0, 6]
    with pytest.raises(InputError, match="has 7 hidden-state layers"):
        resolve_layers([7], 7, "m")
    with pytest.raises(InputError, match="expected all"):
        parse_layers("first")


def test_read_text_and_tables(tmp_path):
    (tmp_path / "a.txt").write_text("one\ntwo\n\nfour\n")
    got = read_inputs(tmp_path / "a.txt")
    assert got.items == ["one", "two", "", "four"] and got.modality == "text"  # rows stay aligned
    assert read_inputs(tmp_path / "a.txt", limit=2).items == ["one", "two"]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps({"id": i, "text": t}) for i, t in enumerate("xyz")))
    assert read_inputs(tmp_path / "a.jsonl", column="text").items == ["x", "y", "z"]
    (tmp_path / "a.csv").write_text('id,caption\n1,"a, b"\n2,c\n')
    assert read_inputs(tmp_path / "a.csv", column="caption").items == ["a, b", "c"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"t": ["p", "q"]}), tmp_path / "a.parquet")
    assert read_inputs(tmp_path / "a.parquet").items == ["p", "q"]  # one column: no --column needed
    with pytest.raises(InputError, match="pick the column"):
        read_inputs(tmp_path / "a.csv")
    with pytest.raises(InputError, match="no column 'nope'"):
        read_inputs(tmp_path / "a.jsonl", column="nope")
    with pytest.raises(InputError, match="int values, not text"):
        read_inputs(tmp_path / "a.jsonl", column="id")


def test_read_errors_and_images(tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(InputError, match="empty input"):
        read_inputs(tmp_path / "empty.txt")
    with pytest.raises(InputError, match="no such file"):
        read_inputs(tmp_path / "missing.txt")
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.png", "a.jpg", "sub/c.png", "notes.txt"):
        (folder / name).write_bytes(b"x")
    got = read_inputs(folder)
    assert got.modality == "image" and [p.split("imgs/")[1] for p in got.items] == ["a.jpg", "b.png", "sub/c.png"]
    (tmp_path / "list.txt").write_text("imgs/a.jpg\nimgs/b.png\n")
    got = read_inputs(tmp_path / "list.txt", modality="image")
    assert got.items == [str(folder / "a.jpg"), str(folder / "b.png")]


def _naive_pool(h, m, how):
    out = []
    for row, mask in zip(h, m):
        valid = row[mask.astype(bool)]
        out.append({"mean": valid.mean(0), "cls": row[0], "last": valid[-1], "max": valid.max(0)}[how])
    return np.stack(out)


@pytest.mark.parametrize("how", ["mean", "cls", "last", "max"])
def test_pooling_matches_naive(how):
    rng = np.random.default_rng(0)
    h = rng.normal(size=(4, 6, 5)).astype(np.float32)
    m = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0]])
    got = pool_tokens(torch.from_numpy(h), torch.from_numpy(m), how).numpy()
    np.testing.assert_allclose(got, _naive_pool(h, m, how), rtol=1e-6, atol=1e-6)


def test_last_pooling_left_padding():
    h = torch.arange(12, dtype=torch.float32).reshape(2, 3, 2)
    m = torch.tensor([[0, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(pool_tokens(h, m, "last").numpy(), h[:, -1].numpy())
