"""A hand-made corpus of malformed inputs, run through the real CLI.

Every case must end as one ``error: …`` line naming the file, exit status 2, nothing on
stdout, no traceback — and quickly, without allocating what a lying header claims.
"""
from __future__ import annotations

import json
import re
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from latentlab.errors import InputError
from latentlab.io import read_embeddings, read_indices


def raw_npy_header(header_text: str) -> bytes:
    """A v1.0 .npy header with arbitrary dict text (no validation at all)."""
    body = header_text.encode("latin1")
    pad = (64 - (10 + len(body) + 1) % 64) % 64
    body += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body


def npy_bytes(header: dict, payload: bytes = b"") -> bytes:
    """A .npy file with a hand-written header (numpy's writer refuses impossible shapes)."""
    text = "{" + "".join(f"{k!r}: {header[k]!r}, " for k in ("descr", "fortran_order", "shape")) + "}"
    return raw_npy_header(text) + payload


def good(n=16, d=4) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)


def _npy(name, header, payload=b""):
    def make(p: Path) -> Path:
        (p / name).write_bytes(npy_bytes(header, payload))
        return p / name
    return make


def _raw(name, data: bytes):
    def make(p: Path) -> Path:
        (p / name).write_bytes(data)
        return p / name
    return make


def truncated_npy(p):
    np.save(p / "trunc.npy", good())
    data = (p / "trunc.npy").read_bytes()
    (p / "trunc.npy").write_bytes(data[: len(data) // 2])
    return p / "trunc.npy"


def header_only_npy(p):
    np.save(p / "head.npy", good())
    data = (p / "head.npy").read_bytes()
    (p / "head.npy").write_bytes(data[:128])
    return p / "head.npy"


def object_npy(p):
    payload = b"\x80\x04N."  # a pickle of None: must never be loaded
    (p / "obj.npy").write_bytes(npy_bytes({"descr": "|O", "fortran_order": False, "shape": (1, 1)}, payload))
    return p / "obj.npy"


def object_npz(p):
    np.savez(p / "obj.npz", x=np.array([[{"a": 1}]], dtype=object), allow_pickle=True)
    return p / "obj.npz"


def object_npz_selected(p):
    np.savez(p / "objsel.npz", x=np.array([[{"a": 1}]], dtype=object), y=good(), allow_pickle=True)
    return str(p / "objsel.npz") + "::x"


def crc_npz(p):
    """Flip one byte of the array data inside a stored (uncompressed) member."""
    np.savez(p / "crc.npz", x=good())
    data = bytearray((p / "crc.npz").read_bytes())
    with zipfile.ZipFile(p / "crc.npz") as zf:
        info = zf.getinfo("x.npy")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size - 5] ^= 0xFF
    (p / "crc.npz").write_bytes(bytes(data))
    return p / "crc.npz"


def truncated_npz(p):
    np.savez(p / "tz.npz", x=good(64))
    data = (p / "tz.npz").read_bytes()
    (p / "tz.npz").write_bytes(data[: len(data) // 2])
    return p / "tz.npz"


def zip_not_npz(p):
    with zipfile.ZipFile(p / "notes.npz", "w") as zf:
        zf.writestr("readme.txt", "hello")
    return p / "notes.npz"


def huge_member_npz(p):
    """A member whose .npy header claims 10**12 rows."""
    member = npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (10**12, 768)}, b"\0" * 64)
    with zipfile.ZipFile(p / "huge.npz", "w") as zf:
        zf.writestr("x.npy", member)
    return p / "huge.npz"


def negative_member_npz(p):
    member = npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (-1, 32)}, b"\0" * 64)
    with zipfile.ZipFile(p / "neg.npz", "w") as zf:
        zf.writestr("x.npy", member)
    return p / "neg.npz"


def garbage_member_npz(p):
    with zipfile.ZipFile(p / "garb.npz", "w") as zf:
        zf.writestr("x.npy", b"not an npy at all")
    return p / "garb.npz"


def shard_subfolder(p):
    folder = p / "shards_sub"
    (folder / "nested").mkdir(parents=True)
    np.save(folder / "part0.npy", good())
    np.save(folder / "nested" / "part1.npy", good())
    return folder


def shard_width(p):
    folder = p / "shards_w"
    folder.mkdir()
    np.save(folder / "part0.npy", good(8, 4))
    np.save(folder / "part1.npy", good(8, 5))
    return folder


def shard_dtype(p):
    folder = p / "shards_t"
    folder.mkdir()
    np.save(folder / "part0.npy", good(8, 4))
    np.save(folder / "part1.npy", good(8, 4).astype(np.float64))
    return folder


def shard_corrupt(p):
    folder = p / "shards_c"
    folder.mkdir()
    np.save(folder / "part0.npy", good(8, 4))
    (folder / "part1.npy").write_bytes(b"garbage")
    return folder


def pt_dict_of_strings(p):
    torch.save({"a": "hello", "b": "world"}, p / "strs.pt")
    return p / "strs.pt"


def pt_one_string(p):
    torch.save({"a": "hello"}, p / "str1.pt")
    return p / "str1.pt"


def pt_garbage(p):
    (p / "garb.pt").write_bytes(b"\x00" * 100)
    return p / "garb.pt"


def safetensors_garbage(p):
    (p / "garb.safetensors").write_bytes(b"\xff" * 40)
    return p / "garb.safetensors"


def parquet_garbage(p):
    (p / "garb.parquet").write_bytes(b"PAR1 nonsense")
    return p / "garb.parquet"


CASES = {
    "truncated npy": truncated_npy,
    "npy cut inside the data": header_only_npy,
    "header with 10**12 rows": _npy("huge.npy", {"descr": "<f4", "fortran_order": False, "shape": (10**12, 768)},
                                    b"\0" * 1024),
    "header with overflowing shape": _npy("ovf.npy", {"descr": "<f8", "fortran_order": False,
                                                      "shape": (2**62, 2**62)}, b"\0" * 64),
    "negative dim header": _npy("neg.npy", {"descr": "<f4", "fortran_order": False, "shape": (-1, 32)}, b"\0" * 128),
    "negative dim fortran": _npy("negf.npy", {"descr": "<f4", "fortran_order": True, "shape": (4, -8)}, b"\0" * 128),
    "zero rows header": _npy("zero.npy", {"descr": "<f4", "fortran_order": False, "shape": (0, 32)}),
    "zero-size dtype": _npy("v0.npy", {"descr": "|V0", "fortran_order": False, "shape": (10**12, 768)}),
    "huge fortran header": _npy("hf.npy", {"descr": "<f4", "fortran_order": True, "shape": (10**9, 10**3)}, b"\0" * 64),
    "unknown dtype in header": _raw("dt.npy", raw_npy_header("{'descr': '<q9', 'fortran_order': False, "
                                                             "'shape': (2, 2), }")),
    "non-int shape in header": _raw("sh.npy", raw_npy_header("{'descr': '<f4', 'fortran_order': False, "
                                                             "'shape': (2.5, 2), }")),
    "header not a dict": _raw("nd.npy", raw_npy_header("[1, 2, 3]")),
    "header with code": _raw("code.npy", raw_npy_header("__import__('os').system('true')")),
    "object npy": object_npy,
    "empty npy file": _raw("empty.npy", b""),
    "text file named .npy": _raw("text.npy", b"1,2,3\n4,5,6\n"),
    "magic only": _raw("magic.npy", b"\x93NUMPY\x01\x00"),
    "object npz": object_npz,
    "object npz member selected": object_npz_selected,
    "corrupted-CRC npz": crc_npz,
    "truncated npz": truncated_npz,
    "zip that is not npz": zip_not_npz,
    "empty npz file": _raw("empty.npz", b""),
    "text file named .npz": _raw("text.npz", b"hello world\n"),
    "npz member with 10**12 rows": huge_member_npz,
    "npz member with negative dim": negative_member_npz,
    "npz member not npy": garbage_member_npz,
    "shard folder with a sub-folder": shard_subfolder,
    "shards with mismatched widths": shard_width,
    "shards with mismatched dtypes": shard_dtype,
    "shard folder with a corrupt shard": shard_corrupt,
    "pt dict of strings": pt_dict_of_strings,
    "pt single string": pt_one_string,
    "pt garbage": pt_garbage,
    "safetensors garbage": safetensors_garbage,
    "parquet garbage": parquet_garbage,
    "csv with text": _raw("t.csv", b"1,2,3\nfoo,bar,baz\n"),
}

#: The file (or shard) each case's error must name.
NAMED = {"shard folder with a sub-folder": "nested", "shards with mismatched widths": "part1.npy",
         "shards with mismatched dtypes": "part1.npy", "shard folder with a corrupt shard": "part1.npy"}


@pytest.fixture
def good_npy(tmp_path) -> Path:
    np.save(tmp_path / "good.npy", good())
    return tmp_path / "good.npy"


@pytest.fixture(scope="module")
def warm_imports():
    """Import what the commands import lazily (torch, scikit-learn, matplotlib) once, untimed:
    the time limit below is about work done on a malformed file, not first imports."""
    import importlib

    for module in ("latentlab.align", "latentlab.analyze.gap", "latentlab.report", "latentlab.plot.figures"):
        importlib.import_module(module)


@pytest.fixture(scope="module")
def good_map(tmp_path_factory) -> Path:
    """A valid 4 → 4 procrustes map (fitted once), for apply/evaluate with a malformed X."""
    from latentlab.align import fit_aligner

    path = tmp_path_factory.mktemp("map") / "good.safetensors"
    fit_aligner("procrustes", good(40).astype(np.float64), good(40)[:, ::-1].astype(np.float64),
                n_anchors=20).save(path)
    return path


def _map_edited(name, edit):
    """The good map with its latentlab header metadata edited (dims, method, flags)."""
    def make(p: Path, good_map: Path) -> Path:
        raw = good_map.read_bytes()
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + n])
        meta = json.loads(header["__metadata__"]["latentlab"])
        edit(meta)
        header["__metadata__"]["latentlab"] = json.dumps(meta)
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        (p / name).write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n :])
        return p / name
    return make


def _map_raw(name, cut=None, data=None):
    def make(p: Path, good_map: Path) -> Path:
        (p / name).write_bytes(data if data is not None else good_map.read_bytes()[:cut])
        return p / name
    return make


def _embedding_safetensors(p: Path, good_map: Path) -> Path:
    from latentlab.io import write_embeddings

    return write_embeddings(p / "memb.safetensors", good())


#: Malformed MAP files for apply/evaluate (header edits are the issue's classes).
MAP_CASES = {
    "map garbage": _map_raw("mgarb.safetensors", data=b"\xff" * 40),
    "map truncated": _map_raw("mcut.safetensors", cut=200),
    "map header length huge": _map_raw("mlen.safetensors", data=(10**15).to_bytes(8, "little") + b"{}"),
    "map dims 10**12": _map_edited("mhuge.safetensors", lambda m: m["dims"].update(source=10**12)),
    "map dims -5": _map_edited("mneg.safetensors", lambda m: m["dims"].update(source=-5)),
    "map dims 16": _map_edited("m16.safetensors", lambda m: m["dims"].update(target=16)),
    "map method edited": _map_edited("mmeth.safetensors", lambda m: m.update(method="ridge")),
    "map l2 'yes please'": _map_edited("ml2.safetensors", lambda m: m["preprocessing"]["source"].update(
        l2="yes please")),
    "map is an embedding file": _embedding_safetensors,
}

#: One malformed file per class for the commands beyond gap/cka/spectrum (which take the whole
#: corpus): lying, overflowing and negative .npy headers, truncation, pickled objects, npz
#: corruption, shard folders, and each other reader's garbage.
CLASSES = ["truncated npy", "header with 10**12 rows", "header with overflowing shape", "negative dim header",
           "object npy", "object npz", "corrupted-CRC npz", "npz member with 10**12 rows",
           "shard folder with a sub-folder", "shards with mismatched widths", "pt dict of strings",
           "safetensors garbage", "parquet garbage", "csv with text"]

#: Every command that reads embeddings; BAD is the malformed file, GOOD a valid 16 × 4 array,
#: MAP a valid map, OUT a fresh output folder. Each malformed position of a command is a row.
COMMANDS = {
    "gap": ["gap", "BAD", "GOOD"],
    "cka": ["cka", "BAD", "GOOD"],
    "spectrum": ["spectrum", "BAD"],
    "similarity": ["similarity", "GOOD", "BAD", "-m", "linear_cka"],
    "cka-matrix": ["cka-matrix", "GOOD", "BAD"],
    "cka-matrix rows×cols": ["cka-matrix", "--rows", "GOOD", "--cols", "BAD"],
    "overlap": ["overlap", "BAD", "GOOD"],
    "uniformity A": ["uniformity", "BAD"],
    "uniformity B": ["uniformity", "GOOD", "BAD"],
    "retrieval": ["retrieval", "GOOD", "BAD"],
    "retrieval bank": ["retrieval", "GOOD", "GOOD", "--fix", "qbnorm", "--bank-queries", "BAD"],
    "fit SRC": ["fit", "procrustes", "BAD", "GOOD", "-o", "OUT/m.safetensors"],
    "fit TGT": ["fit", "ridge", "GOOD", "BAD", "--alpha", "1", "-o", "OUT/m.safetensors"],
    "apply X": ["apply", "MAP", "BAD", "-o", "OUT/x.npy"],
    "evaluate": ["evaluate", "MAP", "GOOD", "BAD"],
    "match": ["match", "BAD", "GOOD"],
    "plot sims": ["plot", "sims", "BAD", "GOOD", "-o", "OUT/f.png"],
    "plot joint umap": ["plot", "joint", "GOOD", "BAD", "--projection", "umap", "-o", "OUT/f.png"],
    "plot spectrum": ["plot", "spectrum", "BAD", "-o", "OUT/f.png"],
    "plot angles": ["plot", "angles", "BAD", "GOOD", "-o", "OUT/f.png"],
    "plot cka": ["plot", "cka", "GOOD", "BAD", "-o", "OUT/f.png"],
    "plot retrieval": ["plot", "retrieval", "BAD", "GOOD", "-o", "OUT/f.png"],
    "plot shift": ["plot", "shift", "GOOD", "BAD", "-o", "OUT/f.png"],
    "report": ["report", "BAD", "GOOD", "--sections", "gap", "--bootstrap", "0", "--calibrate", "0",
               "-o", "OUT/r.html"],
    "report --compare": ["report", "--compare", "one:GOOD,GOOD", "two:GOOD,BAD", "--sections", "gap",
                         "--bootstrap", "0", "--calibrate", "0", "-o", "OUT/r.html"],
    "view": ["view", "BAD", "GOOD", "-o", "OUT/v.html"],
    "export": ["export", "GOOD", "BAD", "--projector", "OUT/proj"],
}
#: Commands that take a malformed MAP (the rest of their arguments valid).
MAP_COMMANDS = {
    "apply MAP": ["apply", "BAD", "GOOD", "-o", "OUT/x.npy"],
    "evaluate MAP": ["evaluate", "BAD", "GOOD", "GOOD"],
}


def _params():
    full = {"gap", "cka", "spectrum"}  # the whole corpus through the cheapest readers of each kind
    for command, argv in COMMANDS.items():
        for case in (CASES if command in full else CLASSES):
            yield pytest.param(argv, CASES[case], case, id=f"{command}-{case}")
    for command, argv in MAP_COMMANDS.items():
        for case, make in MAP_CASES.items():
            yield pytest.param(argv, make, case, id=f"{command}-{case}")


@pytest.mark.parametrize("argv,make,case", list(_params()))
def test_cli_refuses_malformed_input(cli, tmp_path, good_npy, good_map, warm_imports, argv, make, case):
    """Exit 2, one ``error:`` line naming the file, nothing on stdout, nothing written, no
    traceback or internal error — quickly and without allocating what a header claims."""
    bad = str(make(tmp_path, good_map) if case in MAP_CASES else make(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    subs = {"BAD": bad, "GOOD": str(good_npy), "MAP": str(good_map), "OUT": str(out)}
    args = [re.sub(r"\b(BAD|GOOD|MAP|OUT)\b", lambda m: subs[m.group(1)], a) for a in argv]
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        res = cli(*args, ok=False)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    err = res.stderr.strip()
    assert res.exit_code == 2, (res.exit_code, err)
    assert res.stdout == ""
    assert "\n" not in err and err.startswith("error:"), err
    assert "Traceback" not in err and "internal error" not in err
    assert NAMED.get(case, Path(bad.split("::")[0]).name) in err, err
    assert list(out.iterdir()) == [], "an output was written for a malformed input"
    assert peak < 64 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"
    assert elapsed < 10, elapsed


@pytest.mark.parametrize("case", ["header with 10**12 rows", "npz member with 10**12 rows"])
def test_absurd_header_refused_in_milliseconds(tmp_path, case):
    path = CASES[case](tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="header promises"):
        read_embeddings(path)
    assert time.perf_counter() - t0 < 0.5


def test_negative_shape_never_reaches_a_report(tmp_path):
    path = CASES["negative dim header"](tmp_path)
    with pytest.raises(InputError, match="negative dimension"):
        read_embeddings(path)


def test_object_arrays_are_never_unpickled(tmp_path):
    with pytest.raises(InputError, match="Python objects; latentlab reads numeric arrays only"):
        read_embeddings(object_npz(tmp_path))
    with pytest.raises(InputError, match="Python objects; latentlab reads numeric arrays only"):
        read_embeddings(object_npy(tmp_path))


def test_unreadable_file(tmp_path, monkeypatch):
    np.save(tmp_path / "locked.npy", good())
    real_open = open

    def deny(file, *args, **kwargs):  # tests may run as root, where chmod 000 does not stop reads
        if str(file).endswith("locked.npy"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(InputError, match=r"locked\.npy: cannot read \(Permission denied\)"):
        read_embeddings(tmp_path / "locked.npy")


@pytest.mark.parametrize("make,match", [
    (lambda p: np.save(p / "i.npy", np.array([0.5, 1.0])), "whole numbers"),
    (lambda p: np.save(p / "i.npy", np.array(["a", "b"])), "integers"),
    (lambda p: np.save(p / "i.npy", np.array([1e30, 0.0])), "out of range"),
    (lambda p: np.save(p / "i.npy", np.array([2**64 - 1], dtype=np.uint64)), "out of range"),
    (lambda p: (p / "i.npy").write_bytes(npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (10**12,)})),
     "header promises"),
    (lambda p: (p / "i.npy").write_bytes(npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (-3,)})),
     "negative dimension"),
    (lambda p: np.save(p / "i.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True), "Python objects"),
    (lambda p: (p / "i.npy").write_bytes(b"junk"), "not a valid .npy"),
])
def test_malformed_index_files(tmp_path, make, match):
    make(tmp_path)
    with pytest.raises(InputError, match=match) as err:
        read_indices(tmp_path / "i.npy", "--truth")
    assert str(err.value).startswith("--truth") and "i.npy" in str(err.value)


@pytest.mark.parametrize("truth,match", [
    ("-1\n0\n", "outside"), ("0\n99\n", "outside"), ("0.5\n1\n", "whole numbers"), ("a\nb\n", "cannot read"),
])
def test_retrieve_refuses_bad_truth_files(cli, tmp_path, good_npy, truth, match):
    (tmp_path / "t.txt").write_text(truth)
    np.save(tmp_path / "q.npy", good(2, 4))
    res = cli("retrieval", tmp_path / "q.npy", good_npy, "--truth", tmp_path / "t.txt", ok=False)
    assert res.exit_code == 2 and match in res.stderr and res.stdout == "", res.stderr
    # range checks happen in the retrieval code, which still names the option and the file
    assert res.stderr.startswith("error: --truth ") and "t.txt" in res.stderr, res.stderr
