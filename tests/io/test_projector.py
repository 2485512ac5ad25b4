"""TensorBoard projector export (io/projector.py) and `latentlab export --projector`."""
from __future__ import annotations

import re

import numpy as np
import pytest

from latentlab.errors import InputError
from latentlab.io.projector import CONFIG, write_projector


def _config(path) -> list[dict]:
    """The embeddings blocks of a projector_config.pbtxt (the fields this writer uses)."""
    blocks = re.findall(r"embeddings \{\n(.*?)\n\}", path.read_text(encoding="utf-8"), re.S)
    out = []
    for b in blocks:
        fields = dict(re.findall(r'^\s*(tensor_name|tensor_path|metadata_path): "(.*)"$', b, re.M))
        fields["tensor_shape"] = [int(v) for v in re.findall(r"^\s*tensor_shape: (\d+)$", b, re.M)]
        out.append(fields)
    return out


def _meta(path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, 5)).astype(np.float32), rng.normal(size=(12, 5)).astype(np.float32)


def test_two_sets_parse_back(tmp_path, pair):
    a, b = pair
    texts = [f"cap {i}" for i in range(12)]
    texts[2] = "tab\there\nand a new line"
    out = write_projector(tmp_path / "proj", a, b, labels=[f"c{i % 2}" for i in range(12)], text_b=texts,
                          names=("img", "txt"))
    folder = tmp_path / "proj"
    tensors = np.loadtxt(folder / "tensors.tsv", delimiter="\t", dtype=np.float32)
    np.testing.assert_array_equal(tensors, np.concatenate([a, b]))       # float32 round-trips exactly
    meta = _meta(folder / "metadata.tsv")
    assert meta[0] == ["set", "row", "label", "text"] and len(meta) == len(tensors) + 1
    assert all(len(r) == 4 for r in meta)                                  # tabs and newlines inside text are gone
    assert meta[1] == ["img", "0", "c0", ""] and meta[13] == ["txt", "0", "c0", "cap 0"]
    assert meta[15][3] == "tab here and a new line"
    (cfg,) = _config(folder / CONFIG)
    assert cfg == {"tensor_name": "img and txt", "tensor_path": "tensors.tsv", "metadata_path": "metadata.tsv",
                   "tensor_shape": [24, 5]}
    assert out["files"] == [str(folder / n) for n in ("tensors.tsv", "metadata.tsv", CONFIG)]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]     # no temporary file left


def test_single_column_metadata_has_no_header(tmp_path, pair):
    write_projector(tmp_path / "p", pair[0])
    meta = _meta(tmp_path / "p" / "metadata.tsv")
    assert meta == [[str(i)] for i in range(12)]   # TensorBoard: one column → no header line
    assert _config(tmp_path / "p" / CONFIG)[0]["tensor_shape"] == [12, 5]


def test_different_widths_get_one_tensor_each(tmp_path, pair):
    a, b = pair
    write_projector(tmp_path / "p", a, b[:7, :3], text_a=[str(i) for i in range(12)])
    cfgs = _config(tmp_path / "p" / CONFIG)
    assert [c["tensor_path"] for c in cfgs] == ["tensors_a.tsv", "tensors_b.tsv"]
    assert [c["tensor_shape"] for c in cfgs] == [[12, 5], [7, 3]]
    assert _meta(tmp_path / "p" / "metadata_a.tsv")[0] == ["row", "text"]
    assert len(_meta(tmp_path / "p" / "metadata_b.tsv")) == 7            # a single "row" column, no header
    assert np.loadtxt(tmp_path / "p" / "tensors_b.tsv", delimiter="\t").shape == (7, 3)


def test_existing_files_are_kept_unless_forced(tmp_path, pair):
    write_projector(tmp_path / "p", pair[0])
    with pytest.raises(InputError, match=r"^directory .*already holds tensors.tsv"):
        write_projector(tmp_path / "p", pair[1])
    write_projector(tmp_path / "p", pair[1], force=True)
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "p" / "tensors.tsv", delimiter="\t", dtype=np.float32), pair[1])


def test_bad_inputs(tmp_path, pair):
    a, b = pair
    np.save(tmp_path / "a.npy", a)
    with pytest.raises(InputError, match="is also the input a"):
        write_projector(tmp_path / "a.npy", tmp_path / "a.npy")
    with pytest.raises(InputError, match=r"^labels .*5 rows"):
        write_projector(tmp_path / "p", a, b, labels=["x"] * 5)
    with pytest.raises(InputError, match="parent folder"):
        write_projector(tmp_path / "no" / "p", a)
    with pytest.raises(InputError, match="distinct name"):
        write_projector(tmp_path / "p", a, b, names=("x", "x"))


def test_cli_export_json_lists_the_files(cli, tmp_path, pair):
    np.save(tmp_path / "a.npy", pair[0])
    np.save(tmp_path / "b.npy", pair[1])
    (tmp_path / "t.txt").write_text("\n".join(f"t{i}" for i in range(12)) + "\n", encoding="utf-8")
    out = cli.json("export", "--projector", tmp_path / "proj", tmp_path / "a.npy", tmp_path / "b.npy",
                   "--text-a", tmp_path / "t.txt")
    assert sorted(out["files"]) == sorted(str(tmp_path / "proj" / n) for n in ("tensors.tsv", "metadata.tsv", CONFIG))
    assert out["embeddings"][0]["columns"] == ["set", "row", "text"]
    res = cli("export", "--projector", tmp_path / "proj", tmp_path / "a.npy", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: --projector ") and "--force" in res.stderr
    res = cli("export", "--projector", tmp_path / "a.npy", tmp_path / "a.npy", ok=False)
    assert res.exit_code == 2 and "--projector" in res.stderr and "is a file" in res.stderr
    res = cli("export", "--projector", tmp_path / "q", tmp_path / "a.npy", "--text-a", tmp_path / "t.txt", "--json")
    assert res.exit_code == 0
