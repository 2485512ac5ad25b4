"""An aligner artifact whose header was edited must not load (InputError naming the field)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from latentlab.align import fit_aligner, load_aligner
from latentlab.errors import InputError

METHODS = {"procrustes": {}, "ridge": {"alpha": 0.5}, "lowrank": {"rank": 2}}


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    d = tmp_path_factory.mktemp("maps")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 6))
    Y = X[:, :4] @ rng.normal(size=(4, 4))
    np.save(d / "x.npy", X)
    out = {m: fit_aligner(m, X, Y, n_anchors=30, **kw).save(d / f"{m}.safetensors") for m, kw in METHODS.items()}
    return d, out


def read_st(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_st(path: Path, header: dict, data: bytes) -> None:
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # safetensors pads the header to 8 bytes; offsets are relative to the data
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


def edited(src: Path, dst: Path, edit_meta=None, edit_header=None) -> Path:
    header, data = read_st(src)
    if edit_meta is not None:
        meta = json.loads(header["__metadata__"]["latentlab"])
        edit_meta(meta)
        header["__metadata__"]["latentlab"] = json.dumps(meta)
    if edit_header is not None:
        edit_header(header)
    write_st(dst, header, data)
    return dst


def _set(path, value):
    def f(meta):
        *head, last = path.split(".")
        d = meta
        for k in head:
            d = d[k]
        d[last] = value
    return f


def _swap_shape(name):
    def f(header):
        header[name]["shape"] = header[name]["shape"][::-1]  # same bytes, shape contradicts dims
    return f


CORRUPTIONS = [
    ("method-ridge", dict(edit_meta=_set("method", "ridge")), "params", ["procrustes", "lowrank"]),
    ("method-procrustes", dict(edit_meta=_set("method", "procrustes")), "params", ["ridge", "lowrank"]),
    ("method-lstsq", dict(edit_meta=_set("method", "lstsq")), "method", ["procrustes", "ridge", "lowrank"]),
    ("method-cca", dict(edit_meta=_set("method", "cca")), "params", ["procrustes"]),
    ("method-unknown", dict(edit_meta=_set("method", "telepathy")), "method", None),
    ("method-not-str", dict(edit_meta=_set("method", 3)), "method", None),
    ("dims-16", dict(edit_meta=_set("dims.source", 16)), "dims", None),
    ("dims-neg", dict(edit_meta=_set("dims.source", -5)), "dims.source", None),
    ("dims-huge", dict(edit_meta=_set("dims.target", 10**12)), "dims.target", None),
    ("dims-common", dict(edit_meta=_set("dims.common", 16)), "dims.common", None),
    ("dims-str", dict(edit_meta=_set("dims.target", "4")), "dims.target", None),
    ("dims-bool", dict(edit_meta=_set("dims.target", True)), "dims.target", None),
    ("l2-yes", dict(edit_meta=_set("preprocessing.source.l2", "yes please")), "preprocessing.source.l2", None),
    ("center-int", dict(edit_meta=_set("preprocessing.target.center", 1)), "preprocessing.target.center", None),
    ("center-off", dict(edit_meta=_set("preprocessing.source.center", False)), "method", None),
    ("params-bad", dict(edit_meta=_set("params.alpha", -3)), "params", ["ridge", "lowrank"]),
    ("params-not-obj", dict(edit_meta=_set("params", [1])), "params", None),
    ("n-rows", dict(edit_meta=_set("n_rows", 5)), "n_rows", None),
    ("shape-W", dict(edit_header=_swap_shape("W_")), "dims", None),
]


def _cases():
    for name, edit, field, methods in CORRUPTIONS:
        for m in methods or METHODS:
            yield pytest.param(m, edit, field, id=f"{m}-{name}")


@pytest.mark.parametrize("method,edit,field", list(_cases()))
def test_corrupt_header_is_refused(maps, tmp_path, method, edit, field):
    _, files = maps
    assert load_aligner(files[method]).method == method  # the original loads
    bad = edited(files[method], tmp_path / "bad.safetensors", **edit)
    with pytest.raises(InputError) as err:
        load_aligner(bad)
    msg = str(err.value)
    assert "\n" not in msg and str(bad) in msg and f"'{field}'" in msg, msg


def test_missing_tensor_dropped_bytes(maps, tmp_path):
    """A tensor removed together with its bytes (a well-formed file) is named as missing."""
    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    _, files = maps
    src = files["procrustes"]
    with safe_open(str(src), framework="np") as fh:
        meta = fh.metadata()
    tensors = load_file(str(src))
    tensors.pop("W_")
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata=meta)
    with pytest.raises(InputError, match=r"m\.safetensors: .*'method' .*needs the tensor\(s\) W_"):
        load_aligner(tmp_path / "m.safetensors")
    tensors = load_file(str(src))
    tensors.pop("target.mean")
    save_file(tensors, str(tmp_path / "n.safetensors"), metadata=meta)
    with pytest.raises(InputError, match=r"needs the tensor\(s\) target\.mean"):
        load_aligner(tmp_path / "n.safetensors")


def test_unedited_rewrite_loads(maps, tmp_path):
    """The rewriting helper itself keeps the file valid (so the failures above are the edits)."""
    _, files = maps
    for m, f in files.items():
        ok = edited(f, tmp_path / f"{m}.safetensors", edit_meta=lambda meta: None)
        np.testing.assert_array_equal(load_aligner(ok).W_, load_aligner(f).W_)


@pytest.mark.parametrize("edit", [_set("method", "ridge"), _set("dims.source", 10**12),
                                  _set("preprocessing.source.l2", "yes please")])
def test_cli_apply_refuses_corrupt_map(maps, tmp_path, cli, edit):
    d, files = maps
    bad = edited(files["procrustes"], tmp_path / "bad.safetensors", edit_meta=edit)
    out = tmp_path / "out.npy"
    res = cli("apply", bad, d / "x.npy", "-o", out, ok=False)
    assert res.exit_code == 2
    assert res.stderr.startswith("error:") and res.stderr.count("\n") == 1 and str(bad) in res.stderr
    assert not out.exists() and res.stdout == ""


def test_save_is_atomic(maps, tmp_path, monkeypatch):
    """A write failing at the rename leaves neither the target nor a temporary file behind."""
    import latentlab.io.writers as writers

    _, files = maps
    al = load_aligner(files["ridge"])
    seen = []

    def boom(src, dst):
        seen.append((Path(src).name, Path(src).stat().st_size))  # the whole map was in our temporary
        raise OSError("disk full")

    monkeypatch.setattr(writers.os, "replace", boom)
    with pytest.raises(OSError):
        al.save(tmp_path / "m.safetensors")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    assert len(seen) == 1 and seen[0][0].startswith(".m.") and seen[0][1] == files["ridge"].stat().st_size
