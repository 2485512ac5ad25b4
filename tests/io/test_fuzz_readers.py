"""Property tests: a reader returns valid 2-D numeric embeddings or raises InputError, nothing else."""
from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentlab.errors import InputError
from latentlab.grid import parse_grid
from latentlab.io import read_embeddings

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_bytes(suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"v{suffix}"
        x = np.arange(24, dtype=np.float32).reshape(6, 4)
        np.save(path, x) if suffix == ".npy" else np.savez(path, x=x)
        return path.read_bytes()


VALID = {".npy": _valid_bytes(".npy"), ".npz": _valid_bytes(".npz")}


def read_all(spec) -> None:
    """Read ``spec`` and every row; anything but a valid matrix must be an InputError."""
    try:
        emb = read_embeddings(spec)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert len(emb.shape) == 2 and emb.n > 0 and emb.dim > 0
    assert emb.dtype.kind in "fiu"
    arr = np.asarray(emb)
    assert arr.shape == emb.shape


@st.composite
def mutated(draw, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "append", "set"]))
        if op == "flip" and out:
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and out:
            i = draw(st.integers(0, len(out) - 1))
            out[i] = draw(st.integers(0, 255))
        elif op == "truncate":
            del out[draw(st.integers(0, len(out))):]
        else:
            out += draw(st.binary(max_size=64))
    return bytes(out)


def _write(data: bytes, suffix: str) -> tuple[tempfile.TemporaryDirectory, Path]:
    d = tempfile.TemporaryDirectory()
    path = Path(d.name) / f"f{suffix}"
    path.write_bytes(data)
    return d, path


@SETTINGS
@given(mutated(VALID[".npy"]))
def test_mutated_npy(data):
    d, path = _write(data, ".npy")
    with d:
        read_all(path)


@SETTINGS
@given(mutated(VALID[".npz"]))
def test_mutated_npz(data):
    d, path = _write(data, ".npz")
    with d:
        read_all(path)


_dims = st.one_of(st.integers(-3, 8), st.integers(-(2**70), 2**70), st.sampled_from([10**12, 2**62, 2**63]))
_descr = st.one_of(
    st.sampled_from(["<f4", "<f8", "<f2", "|u1", "<i8", ">f4", "|b1", "<c8", "|O", "<U3", "|S0", "|V0", "|V8",
                     "<M8[s]", "(2,3)<f4"]),
    st.text(max_size=8),
)


def _header_text(descr, fortran, shape) -> str:
    return "{" + f"'descr': {descr!r}, 'fortran_order': {fortran!r}, 'shape': {shape!r}, " + "}"


@SETTINGS
@given(descr=_descr, fortran=st.one_of(st.booleans(), st.integers(0, 2)),
       shape=st.one_of(st.tuples(_dims), st.tuples(_dims, _dims), st.tuples(_dims, _dims, _dims)),
       payload=st.integers(0, 512), selector=st.sampled_from(["", "::0", "::1", "::x"]))
def test_random_npy_headers(descr, fortran, shape, payload, selector):
    body = _header_text(descr, fortran, shape).encode("latin1", "replace")
    body += b" " * ((64 - (11 + len(body)) % 64) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body + b"\x01" * payload
    d, path = _write(data, ".npy")
    with d:
        read_all(f"{path}{selector}")
        # the same member inside an .npz archive
        with zipfile.ZipFile(path.with_suffix(".npz"), "w") as zf:
            zf.writestr("x.npy", data)
        read_all(path.with_suffix(".npz"))


@SETTINGS
@given(keys=st.lists(st.text(max_size=12), min_size=1, max_size=3))
def test_random_selectors(keys):
    with tempfile.TemporaryDirectory() as d:
        x = np.arange(24, dtype=np.float32).reshape(6, 4)
        np.savez(Path(d) / "m.npz", a=x, b=x)
        np.save(Path(d) / "t.npy", np.stack([x, x]))
        for base in ("m.npz", "t.npy"):
            read_all(f"{Path(d) / base}::" + "::".join(keys))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), st.text(alphabet="0123456789.:,-+eEinfa ", max_size=30)))
def test_parse_grid(spec):
    try:
        values = parse_grid(spec, "--grid")
    except InputError:
        return
    assert values and all(np.isfinite(values)) and len(values) <= 1000
