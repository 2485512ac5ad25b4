"""save → load round trip, no pickle, loading refuses files that are not artifacts."""
import json
import struct

import numpy as np
import pytest

from latentlab.align import METHODS, fit_aligner, load_aligner
from latentlab.errors import InputError

PARAMS = {"lowrank": {"rank": 3}, "cca": {"components": 4}, "ridge": {"alpha": "auto"}}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 10)) + 1.0
    Y = X @ rng.normal(size=(10, 8)) + 0.1 * rng.normal(size=(120, 8))
    return X, Y


@pytest.mark.parametrize("method", sorted(METHODS))
def test_round_trip_equals_in_memory(method, data, tmp_path):
    X, Y = data
    kw = {"n_anchors": 60} if method != "ot" else {"gw_rows": 120, "iters": 3}
    al = fit_aligner(method, X, Y, **kw, **PARAMS.get(method, {}))
    path = al.save(tmp_path / "map.safetensors")
    back = load_aligner(path)
    assert type(back) is type(al)
    assert np.array_equal(back.transform(X), al.transform(X))
    assert np.array_equal(back.transform_target(Y), al.transform_target(Y))
    if method != "ot":
        assert np.array_equal(back.anchor_indices_, al.anchor_indices_)
    meta = json.loads(_header(path)["__metadata__"]["latentlab"])
    assert meta["method"] == method and meta["dims"]["source"] == 10 and meta["dims"]["target"] == 8
    assert "latentlab_version" in meta and "preprocessing" in meta and "fit_stats" in meta


def _header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n])


def test_artifact_has_no_pickle(data, tmp_path):
    X, Y = data
    path = fit_aligner("procrustes", X, Y).save(tmp_path / "m.safetensors")
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])  # pure JSON header
    body = len(raw) - 8 - n
    spans = sorted(v["data_offsets"] for k, v in header.items() if k != "__metadata__")
    # the tensors tile the body exactly: nothing else (no pickle stream) is stored
    assert spans[0][0] == 0 and spans[-1][1] == body
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} <= {"F64", "I64"}
    assert not raw.startswith(b"\x80") and b"PK\x03\x04" not in raw[:4]


def test_load_refuses_non_artifacts(tmp_path, data):
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    with pytest.raises(InputError, match="not a latentlab aligner artifact"):
        load_aligner(tmp_path / "x.npy")
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(InputError, match="not a latentlab aligner artifact"):
        load_aligner(tmp_path / "plain.safetensors")
    with pytest.raises(InputError, match="no such file"):
        load_aligner(tmp_path / "missing.safetensors")


def test_wrong_dimension_is_refused(data):
    X, Y = data
    al = fit_aligner("affine", X, Y)
    with pytest.raises(InputError, match="dimension 10"):
        al.transform(Y)
    with pytest.raises(InputError, match="dimension 8"):
        al.transform_target(X)
