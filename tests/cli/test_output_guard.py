"""No command may write over its own inputs, over another of its outputs, or over a sidecar of
either (issue 11): each is refused up front with exit 2, one ``error:`` line naming the
option, nothing on stdout, and every file in the folder byte-for-byte unchanged."""
from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

from latentlab.errors import InputError
from latentlab.io import write_embeddings
from latentlab.io.outputs import check_outputs, embed_output, markdown_output

FAKE_MODEL = "st:no-such-org/no-such-model"  # never loaded: the guard comes first


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("guard")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 6))
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    np.save(d / "a.npy", a)
    np.save(d / "b.npy", a @ q)
    np.save(d / "truth.npy", np.arange(40))
    np.save(d / "idx.npy", np.arange(0, 40, 2))
    write_embeddings(d / "e.safetensors", a)
    (d / "shards").mkdir()
    np.save(d / "shards" / "part0.npy", a[:20])
    np.save(d / "shards" / "part1.npy", a[20:])
    (d / "r_files").mkdir()
    np.save(d / "r_files" / "x.npy", a)
    (d / "t.csv").write_text("id,text\n1,a cat on a mat\n2,hello world\n")
    (d / "data.json").write_text('[{"text": "a cat"}, {"text": "a dog"}]\n')
    (d / "photos").mkdir()
    (d / "photos" / "p0.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (d / "sub").mkdir()
    os.symlink("a.npy", d / "link.npy")
    from latentlab.cli import cli
    from click.testing import CliRunner

    res = CliRunner().invoke(cli, ["fit", "procrustes", str(d / "a.npy"), str(d / "b.npy"),
                                   "-o", str(d / "m.safetensors")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return d


@pytest.fixture
def work(base, tmp_path, monkeypatch):
    d = tmp_path / "w"
    shutil.copytree(base, d, symlinks=True)
    monkeypatch.chdir(d)
    return d


def snapshot(root) -> dict[str, str]:
    """Relative path → sha256 (or link target) of everything under ``root``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "link:" + os.readlink(p)
            elif os.path.isfile(p):
                out[rel] = hashlib.sha256(open(p, "rb").read()).hexdigest()
            else:
                out[rel] = "dir"
    return out


CASES = {
    # id: (argv, option named, fragment of the message)
    "apply -o over X": (["apply", "m.safetensors", "a.npy", "-o", "a.npy"], "-o", "is also the input X"),
    "apply -o over MAP": (["apply", "m.safetensors", "a.npy", "-o", "m.safetensors"], "-o", "the input MAP"),
    "gap -o over A": (["gap", "a.npy", "b.npy", "-o", "a.npy"], "-o",
                                 "is also the input A"),
    "gap -o over B": (["gap", "a.npy", "b.npy", "-o", "b.npy"], "-o",
                                 "is also the input B"),
    "match -o over A": (["match", "a.npy", "b.npy", "-o", "a.npy"], "-o", "is also the input A"),
    "match --plan over B": (["match", "a.npy", "b.npy", "-o", "m.npy", "--plan", "b.npy"], "--plan",
                            "is also the input B"),
    "match --plan over --truth": (["match", "a.npy", "b.npy", "--truth", "truth.npy", "--plan", "truth.npy"],
                                  "--plan", "the input --truth"),
    "match -o == --plan": (["match", "a.npy", "b.npy", "-o", "p.npy", "--plan", "p.npy"], "--plan",
                           "is the same file as -o"),
    "report -o over A (suffix)": (["report", "a.npy", "b.npy", "-o", "a.npy"], "-o", ".html"),
    "report --markdown over A (suffix)": (["report", "a.npy", "b.npy", "--markdown", "a.npy"], "--markdown", ".md"),
    "report -o inside input folder": (["report", "shards", "b.npy", "-o", "shards/r.html"], "-o",
                                      "is inside the input folder A"),
    "report --markdown figures hold A": (["report", "r_files/x.npy", "b.npy", "--markdown", "r.md"], "--markdown",
                                         "its figure folder r_files would hold the input A"),
    "fit -o over selected input": (["fit", "procrustes", "e.safetensors::embeddings", "b.npy", "-o",
                                    "e.safetensors"], "-o", "is also the input SRC"),
    "fit -o over input map": (["fit", "procrustes", "m.safetensors::rotation", "b.npy", "-o", "m.safetensors"],
                              "-o", "is also the input SRC"),
    "fit -o inside input folder": (["fit", "procrustes", "shards", "b.npy", "-o", "shards/m.safetensors"], "-o",
                                   "is inside the input folder SRC"),
    "embed -o over CSV input": (["embed", FAKE_MODEL, "t.csv", "--column", "text", "-o", "t.csv"], "-o",
                                "is also the input INPUT"),
    "embed sidecar over input": (["embed", FAKE_MODEL, "data.json", "--column", "text", "-o", "data.npy"], "-o",
                                 "its sidecar data.json is the input INPUT"),
    "embed -o inside image folder": (["embed", FAKE_MODEL, "photos", "-o", "photos/emb.npy"], "-o",
                                     "is inside the input folder INPUT"),
    "embed -o over local model": (["embed", "st:./e.safetensors", "t.csv", "--column", "text", "-o",
                                   "e.safetensors"], "-o", "is also the input MODEL"),
    "plot -o inside input folder": (["plot", "sims", "shards", "b.npy", "-o", "shards/f.png"], "-o",
                                    "is inside the input folder A"),
    "symlinked input": (["apply", "m.safetensors", "link.npy", "-o", "a.npy"], "-o", "is also the input X"),
    "symlinked output": (["apply", "m.safetensors", "a.npy", "-o", "link.npy"], "-o", "is also the input X"),
    "dir/../x": (["apply", "m.safetensors", "a.npy", "-o", "sub/../a.npy"], "-o", "is also the input X"),
    "./x against x": (["gap", "./a.npy", "b.npy", "-o", "a.npy"], "-o", "the input A"),
}


@pytest.mark.parametrize("argv, option, fragment", CASES.values(), ids=list(CASES))
def test_refused_before_any_work(cli, work, argv, option, fragment):
    before = snapshot(work)
    res = cli(*argv, ok=False)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"error: {option} "), res.stderr
    assert fragment in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stdout == ""
    assert snapshot(work) == before  # inputs byte-for-byte unchanged, nothing new written


def test_absolute_paths_are_refused_too(cli, work):
    before = snapshot(work)
    res = cli("apply", work / "m.safetensors", work / "a.npy", "-o", work / "a.npy", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: -o ") and "input X" in res.stderr
    assert snapshot(work) == before


def test_distinct_outputs_still_work(cli, work):
    digest = snapshot(work)
    res = cli("apply", "m.safetensors", "a.npy", "-o", "mapped.npy")
    assert res.exit_code == 0 and np.load("mapped.npy").shape == (40, 6)
    cli("gap", "a.npy", "b.npy", "-o", "gap.npy", "--no-probe")
    cli("match", "a.npy", "b.npy", "-o", "match.npy", "--plan", "plan.npy", "--no-rotate")
    cli("fit", "procrustes", "a.npy", "b.npy", "-o", "m2.safetensors", "--anchors", "idx.npy")
    cli("report", "a.npy", "b.npy", "--sections", "gap", "--bootstrap", "0", "--calibrate", "0",
        "-o", "r.html", "--markdown", "out.md")
    assert os.path.isfile("r.html") and os.path.isfile("out.md")
    after = snapshot(work)
    assert {k: v for k, v in after.items() if k in digest} == digest  # inputs untouched
    # rerunning onto the same outputs is an ordinary overwrite, not a conflict
    cli("apply", "m.safetensors", "a.npy", "-o", "mapped.npy")


def test_report_names_must_say_html_and_markdown(cli, work):
    res = cli("report", "a.npy", "b.npy", "-o", "r.txt", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: -o r.txt:") and ".html" in res.stderr
    res = cli("report", "a.npy", "b.npy", "--markdown", "r.txt", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: --markdown r.txt:") and ".md" in res.stderr


def test_check_outputs_embed_layout(tmp_path):
    (tmp_path / "out.npy.parts").mkdir()
    (tmp_path / "out.npy.parts" / "in.txt").write_text("x\n")
    (tmp_path / "in.txt").write_text("x\n")
    # the resumable parts folder is removed when the run ends: nothing inside it may be read
    with pytest.raises(InputError, match=r"its parts folder .*out.npy.parts would hold the input INPUT"):
        check_outputs({"-o": embed_output(tmp_path / "out.npy")}, {"INPUT": tmp_path / "out.npy.parts" / "in.txt"})
    # a folder OUT only writes embeddings.npy / layerNN.npy (+ .json) inside it
    check_outputs({"-o": embed_output(tmp_path)}, {"INPUT": tmp_path / "in.txt"}, input_sidecars=False)
    np.save(tmp_path / "layer03.npy", np.zeros((2, 2)))
    with pytest.raises(InputError, match=r"would hold the input INPUT"):
        check_outputs({"-o": embed_output(tmp_path)}, {"INPUT": tmp_path / "layer03.npy"})
    # a rerun of embed over its own earlier output is fine (OUT.json is not the input's sidecar)
    (tmp_path / "in.json").write_text("{}")
    check_outputs({"-o": embed_output(tmp_path / "in.npy")}, {"INPUT": tmp_path / "in.txt"}, input_sidecars=False)


def test_check_outputs_protects_existing_input_sidecars(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 2)))
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(InputError, match=r"^-o .*: is also the sidecar .*a.json of the input A; choose another"):
        check_outputs({"-o": tmp_path / "a.json"}, {"A": f"{tmp_path / 'a.npy'}::0"})
    with pytest.raises(InputError, match=r"--markdown .*: is inside the output folder|is the same file as -o"):
        check_outputs({"-o": tmp_path / "r.html", "--markdown": markdown_output(tmp_path / "r.html")}, {})
    check_outputs({"-o": tmp_path / "b.npy", "--plan": None}, {"A": tmp_path / "a.npy", "B": None})
