"""compose: A → B then B → C (VIP-ANT pivots) — folded affine maps, pipelines, artifacts, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from latentlab.align import evaluate_aligner, fit_aligner, load_aligner
from latentlab.align.compose import Pipeline, compose
from latentlab.errors import InputError

KW = dict(dtype="float64", device="cpu")


@pytest.fixture(scope="module")
def spaces():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 8)) * rng.uniform(0.5, 3, 8) + 1.0
    R = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    b = a @ R + 0.3 * rng.standard_normal((200, 8)) - 2.0
    c = np.tanh(b @ rng.standard_normal((8, 5))) + 0.1 * rng.standard_normal((200, 5))
    return a, b, c


def test_procrustes_there_and_back_is_the_identity(spaces):
    # default procrustes preprocessing: centring with the anchor means, no L2, no --scale, the same
    # anchor pairs both ways — then B→A's rotation is exactly Rᵀ and the means cancel
    a, b, _ = spaces
    ab, ba = fit_aligner("procrustes", a, b, **KW), fit_aligner("procrustes", b, a, **KW)
    there_and_back = compose(ab, ba)
    assert there_and_back.method == "affine"
    np.testing.assert_allclose(there_and_back.W_, np.eye(8), atol=1e-6)
    np.testing.assert_allclose(there_and_back.transform(a), a, atol=1e-6)
    # a map that is not its own inverse's inverse is not: a scaled Procrustes fit is shrunk both ways
    scaled = compose(fit_aligner("procrustes", a, b, scale=True, **KW), fit_aligner("procrustes", b, a, scale=True, **KW))
    assert np.abs(scaled.transform(a) - a).max() > 1e-2


@pytest.mark.parametrize("second", [dict(method="lstsq"), dict(method="ridge", alpha=0.5, standardize=True),
                                    dict(method="lst"), dict(method="affine")])
def test_folded_map_equals_applying_both_in_sequence(spaces, second, tmp_path):
    a, b, c = spaces
    first = fit_aligner("lstsq", a, b, **KW)
    kw = dict(second)
    bc = fit_aligner(kw.pop("method"), b, c, **kw, **KW)
    ac = compose(first, bc)
    assert ac.method == "affine" and ac.W_.shape == (8, 5)
    seq = bc.transform(first.transform(a))
    np.testing.assert_allclose(ac.transform(a), seq, atol=1e-9)
    np.testing.assert_allclose(ac.transform_target(c), bc.transform_target(c), atol=1e-12)
    loaded = load_aligner(ac.save(tmp_path / "ac.safetensors"))  # an ordinary affine artifact
    np.testing.assert_allclose(loaded.transform(a), seq, atol=1e-9)
    assert loaded.fit_stats_["composed_of"][0]["method"] == "lstsq"


def test_l2_on_the_pivot_gives_a_pipeline_that_loads_and_evaluates(spaces, tmp_path):
    a, b, c = spaces
    ab = fit_aligner("affine", a, b, **KW)
    bc = fit_aligner("procrustes", b, c, l2=True, **KW)  # the L2 step on B makes the chain nonlinear
    ac = compose(ab, bc)
    assert isinstance(ac, Pipeline) and [s.method for s in ac.stages] == ["affine", "procrustes"]
    seq = bc.transform(ab.transform(a))
    np.testing.assert_allclose(ac.transform(a), seq, atol=1e-12)
    path = ac.save(tmp_path / "p.safetensors")
    loaded = load_aligner(path)
    assert isinstance(loaded, Pipeline)
    np.testing.assert_allclose(loaded.transform(a), seq, atol=1e-12)
    np.testing.assert_allclose(loaded.transform_target(c), bc.transform_target(c), atol=1e-12)
    res = evaluate_aligner(path, a, c)
    assert res.method == "pipeline" and res.rows.startswith("all rows")
    # a pipeline composed again is flattened, and still equals the sequence
    abc = compose(ac, fit_aligner("lstsq", c, b, **KW))
    assert [s.method for s in abc.stages] == ["affine", "procrustes", "lstsq"]


def test_edited_pipeline_artifacts_are_refused(spaces, tmp_path):
    from safetensors.numpy import load_file, save_file

    a, b, c = spaces
    ac = compose(fit_aligner("affine", a, b, **KW), fit_aligner("procrustes", b, c, l2=True, **KW))
    path = ac.save(tmp_path / "p.safetensors")
    tensors = load_file(path)
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as fh:
        header = fh.metadata()
    meta = json.loads(header["latentlab"])

    def write(t, m, name):
        out = tmp_path / name
        save_file(t, out, metadata={**header, "latentlab": json.dumps(m)})
        return out

    bad_shape = dict(tensors, **{"stage1/W_": np.zeros((8, 4))})
    with pytest.raises(InputError, match=r"stage 1.*W_"):
        load_aligner(write(bad_shape, meta, "shape.safetensors"))
    with pytest.raises(InputError, match="no stage for the tensor"):
        load_aligner(write(dict(tensors, extra=np.zeros(3)), meta, "extra.safetensors"))
    broken = json.loads(json.dumps(meta))
    broken["stages"][1]["dims"]["source"] = 7
    broken["stages"][1]["preprocessing"]["source"]["center"] = False
    with pytest.raises(InputError, match="corrupt"):
        load_aligner(write({k: v for k, v in tensors.items() if k != "stage1/source.mean"}, broken, "chain.safetensors"))
    with pytest.raises(InputError, match="stages"):
        load_aligner(write(tensors, {**meta, "stages": meta["stages"][:1]}, "one.safetensors"))
    nan = dict(tensors, **{"stage0/W_": np.full_like(tensors["stage0/W_"], np.nan)})
    with pytest.raises(InputError, match="NaN"):
        load_aligner(write(nan, meta, "nan.safetensors"))


def test_dimension_mismatch_and_common_space_maps_are_refused(spaces):
    a, b, c = spaces
    bc = fit_aligner("lstsq", b, c, **KW)
    with pytest.raises(InputError, match="maps into 5 dims.*expects source rows of 8"):
        compose(bc, bc)
    with pytest.raises(InputError, match="common space of its own"):
        compose(fit_aligner("cca", a, b, components=3, **KW), bc)


def test_cli_compose_apply_and_errors(cli, spaces, tmp_path):
    a, b, c = spaces
    for name, arr in (("a", a), ("b", b), ("c", c)):
        np.save(tmp_path / f"{name}.npy", arr)
    cli("fit", "procrustes", tmp_path / "a.npy", tmp_path / "b.npy", "-o", tmp_path / "ab.safetensors", "--dtype", "float64")
    cli("fit", "lstsq", tmp_path / "b.npy", tmp_path / "c.npy", "-o", tmp_path / "bc.safetensors", "--dtype", "float64")
    out = cli.json("compose", tmp_path / "ab.safetensors", tmp_path / "bc.safetensors", "-o", tmp_path / "ac.safetensors")
    assert out["kind"] == "folded" and out["dims"] == {"source": 8, "target": 5, "common": 5}
    cli("apply", tmp_path / "ac.safetensors", tmp_path / "a.npy", "-o", tmp_path / "ac.npy", "--dtype", "float64")
    seq = load_aligner(tmp_path / "bc.safetensors").transform(load_aligner(tmp_path / "ab.safetensors").transform(a))
    np.testing.assert_allclose(np.load(tmp_path / "ac.npy"), seq, atol=1e-9)
    assert "folded into one affine map" in cli("compose", tmp_path / "ab.safetensors", tmp_path / "bc.safetensors",
                                               "-o", tmp_path / "ac2.safetensors").stdout
    res = cli("compose", tmp_path / "bc.safetensors", tmp_path / "ab.safetensors", "-o", tmp_path / "x.safetensors", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error:") and "bc.safetensors" in res.stderr
    assert res.stderr.count("\n") == 1 and not (tmp_path / "x.safetensors").exists()
    res = cli("compose", tmp_path / "ab.safetensors", tmp_path / "bc.safetensors", "-o", tmp_path / "ab.safetensors", ok=False)
    assert res.exit_code == 2 and "-o" in res.stderr
