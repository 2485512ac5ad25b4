"""One interface: -o/--output everywhere, fast --help, missing extras, progress policy, plot options."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time

import click
import numpy as np
import pytest

from latentlab.cli import cli as root

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _commands(group=root, prefix=()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,), cmd


def _flags(cmd, hidden=False):
    return {o for p in cmd.params if isinstance(p, click.Option) and (hidden or not p.hidden) for o in p.opts}


# ----------------------------------------------------------------------------- fast --help
HELP_PROBE = r"""
import sys, time
from click.testing import CliRunner
t = time.perf_counter()
from latentlab.cli import cli
runs = [["--help"], ["--version"]]
def walk(group, prefix):
    for name, cmd in group.commands.items():
        runs.append(prefix + [name, "--help"])
        if hasattr(cmd, "commands"):
            walk(cmd, prefix + [name])
walk(cli, [])
bad = [r for r in runs if CliRunner().invoke(cli, r).exit_code != 0]
heavy = [m for m in ("torch", "matplotlib", "scipy", "sklearn", "umap", "transformers", "pandas") if m in sys.modules]
print(repr({"bad": bad, "heavy": heavy, "n": len(runs)}))
"""


def test_help_and_version_import_no_heavy_module():
    out = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, env=ENV, timeout=120)
    res = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr
    assert res["n"] > 20 and not res["bad"], res
    assert res["heavy"] == [], f"--help imports {res['heavy']}: import them inside the command functions"


def test_help_answers_fast():
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "latentlab", "--help"], check=True, capture_output=True, env=ENV, timeout=60)
    # well under a second on an idle machine; generous here for a loaded 2-core CI box (torch alone takes ~3 s)
    assert time.perf_counter() - start < 2.5


def test_constants_repeated_for_help_agree_with_their_homes():
    from latentlab.analyze.compare import DEFAULT_METRICS
    from latentlab.cli import plot_cmd, retrieval_cmd, similarity_cmd
    from latentlab.loaders import base
    from latentlab.plot.style import FORMATS
    evaluate = importlib.import_module("latentlab.retrieval.evaluate")  # the package re-exports a function of that name

    assert retrieval_cmd.FIXES == evaluate.FIXES and retrieval_cmd.METRIC_KEYS == evaluate.METRIC_KEYS
    assert similarity_cmd.DEFAULT_METRICS == DEFAULT_METRICS
    assert plot_cmd.FIGURE_FORMATS == FORMATS
    assert tuple(base._TORCH_DTYPES) == base.MODEL_DTYPES


# ----------------------------------------------------------------------------- -o/--output
# export writes a folder named by its format flag, as the issue spells it: `export --projector DIR`
WRITERS = {"gap", "fit", "apply", "match", "embed", "report", "demo", "view", "compose", "curve"}


def test_every_writing_command_names_its_output_o_output():
    old_names = {"--out", "--save-vector", "--save", "--output-file", "--out-dir"}
    seen = set()
    for path, cmd in _commands():
        flags = _flags(cmd)
        if path[0] == "plot" or path[-1] in WRITERS:
            assert {"-o", "--output"} <= flags, f"{' '.join(path)}: main output is not -o/--output"
            seen.add(path[-1])
        assert not flags & old_names, f"{' '.join(path)} shows an old output name {flags & old_names}"
    assert {"gap", "embed", "fit", "joint", "compose", "curve"} <= seen


def test_old_output_name_still_works_with_a_warning(cli, tmp_path, clip_pair):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, clip_pair[0][:60])
    np.save(b, clip_pair[1][:60])
    res = cli("gap", a, b, "--save-vector", tmp_path / "v.npy", "--no-probe")
    assert np.load(tmp_path / "v.npy").shape == (512,) and "--save-vector is deprecated" in res.stderr
    res = cli("gap", a, b, "-o", tmp_path / "w.npy", "--no-probe", "--json")
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), np.load(tmp_path / "v.npy"))
    res = cli("gap", a, b, "-o", tmp_path / "x.npy", "--save-vector", tmp_path / "y.npy", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: --save-vector is the old name of -o/--output")


def test_embed_old_out_is_hidden_alias():
    cmd = root.commands["embed"]
    assert "--out" in _flags(cmd, hidden=True) and "--out" not in _flags(cmd)


# ----------------------------------------------------------------------------- one projection
def test_plot_joint_and_report_share_projection_option_and_default():
    joint, report = root.commands["plot"].commands["joint"], root.commands["report"]
    pj = next(p for p in joint.params if p.name == "projection")
    pr = next(p for p in report.params if p.name == "projection")
    assert pj.default == pr.default == "pca" and list(pj.type.choices) == list(pr.type.choices)
    assert root.commands["plot"].commands["umap"].hidden  # the old name runs, unlisted


@pytest.fixture
def pair_files(tmp_path, clip_pair):
    a, b, c = tmp_path / "img.npy", tmp_path / "txt.npy", tmp_path / "narrow.npy"
    np.save(a, clip_pair[0][:80].astype(np.float32))
    np.save(b, clip_pair[1][:80].astype(np.float32))
    np.save(c, clip_pair[1][:80, :16].astype(np.float32))
    return a, b, c


def test_plot_joint_default_pca_names_and_title(cli, pair_files, tmp_path):
    a, b, _ = pair_files
    out = tmp_path / "j.svg"
    res = cli.json("plot", "joint", a, b, "-o", out, "--name-a", "photos", "--name-b", "captions",
                   "--title", "My joint view")
    assert res["projection"] == "pca"
    svg = out.read_text()
    assert "My joint view" in svg and "photos" in svg and "captions" in svg and "img" not in svg
    res = cli("plot", "umap", a, b, "-o", tmp_path / "u.png", "--method", "pca", "--json")  # the old spelling
    assert json.loads(res.stdout)["projection"] == "pca" and "--method is deprecated" in res.stderr


@pytest.mark.parametrize("kind", ["sims", "joint"])
def test_mismatched_widths_name_both_files_and_widths(cli, pair_files, tmp_path, kind):
    a, _, narrow = pair_files
    res = cli("plot", kind, a, narrow, "-o", tmp_path / "x.png", ok=False)
    assert res.exit_code == 2 and res.stdout == ""
    line = res.stderr.strip()
    assert line.startswith("error:") and "\n" not in line
    assert "img" in line and "narrow" in line and "512" in line and "16" in line


def test_plot_cka_vmin_vmax_and_names(cli, pair_files, tmp_path):
    a, b, _ = pair_files
    out = tmp_path / "cka.svg"
    cli.json("plot", "cka", a, b, "-o", out, "--names", "image,text", "--vmin", "0.2", "--vmax", "0.9",
             "--title", "CKA here")
    svg = out.read_text()
    assert "CKA here" in svg and "image" in svg
    res = cli("plot", "cka", a, b, "-o", out, "--vmin", "0.9", "--vmax", "0.2", ok=False)
    assert res.exit_code == 2 and "--vmin 0.9 must be below vmax 0.2" in res.stderr
    res = cli("plot", "cka", a, b, "-o", out, "--names", "only-one", ok=False)
    assert res.exit_code == 2 and "--names" in res.stderr


def test_every_plot_kind_takes_title_and_names():
    for name, cmd in root.commands["plot"].commands.items():
        flags = _flags(cmd)
        assert "--title" in flags, name
        assert {"--name-a", "--name-b"} <= flags or "--names" in flags, name


# ----------------------------------------------------------------------------- missing extras
@pytest.fixture
def no_umap(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` now raises ModuleNotFoundError


def test_plot_umap_without_extra_is_one_error_line(cli, pair_files, tmp_path, no_umap):
    a, b, _ = pair_files
    res = cli("plot", "joint", a, b, "-o", tmp_path / "x.png", "--projection", "umap", ok=False)
    assert res.exit_code == 2 and res.stderr.strip().count("\n") == 0
    assert "umap-learn" in res.stderr and "pip install 'latentlab[viz]'" in res.stderr
    assert not (tmp_path / "x.png").exists()


def test_report_umap_without_extra_fails_before_work(cli, pair_files, tmp_path, no_umap):
    a, b, _ = pair_files
    start = time.perf_counter()
    res = cli("report", a, b, "-o", tmp_path / "r.html", "--projection", "umap", "--bootstrap", "0",
              "--calibrate", "0", ok=False)
    assert res.exit_code == 2 and "pip install 'latentlab[viz]'" in res.stderr
    assert not (tmp_path / "r.html").exists() and time.perf_counter() - start < 20


@pytest.mark.parametrize("spec,module,extra", [("hf", "transformers", "models"),
                                               ("st", "sentence_transformers", "models")])
def test_embed_without_model_extra(cli, tmp_path, monkeypatch, spec, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    (tmp_path / "model").mkdir()
    (tmp_path / "s.txt").write_text("a\nb\n")
    res = cli("embed", f"{spec}:{tmp_path / 'model'}", tmp_path / "s.txt", "-o", tmp_path / "e.npy", ok=False)
    assert res.exit_code == 2 and f"pip install 'latentlab[{extra}]'" in res.stderr


def test_image_inputs_without_pillow(tmp_path, monkeypatch):
    from latentlab.extras import MissingExtra
    from latentlab.loaders import embed

    monkeypatch.setitem(sys.modules, "PIL", None)
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"x")
    with pytest.raises(MissingExtra, match=r"pip install 'latentlab\[models\]'"):
        embed(f"hf:{tmp_path}", tmp_path / "imgs")


# ----------------------------------------------------------------------------- progress policy
def test_progress_shows_on_request_and_is_off_with_json_or_quiet(cli, pair_files, monkeypatch):
    a, b, _ = pair_files
    monkeypatch.setenv("LATENTLAB_PROGRESS", "1")
    assert "gap" in cli("gap", a, b, "--no-probe").stderr
    assert cli("gap", a, b, "--no-probe", "--json").stderr == ""
    assert cli("gap", a, b, "--no-probe", "--quiet").stderr == ""


def test_umap_first_compile_is_announced(monkeypatch, tmp_path, capsys):
    import types

    from latentlab.plot import data

    class FakeUMAP:
        def __init__(self, **kw):
            pass

        def fit_transform(self, x):
            return np.zeros((len(x), 2))

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nb"))
    monkeypatch.setenv("LATENTLAB_PROGRESS", "1")
    data._umap(np.random.default_rng(0).normal(size=(30, 4)), 0)
    err = capsys.readouterr().err
    assert "compiling UMAP once" in err and str(tmp_path / "nb") in err
    (tmp_path / "nb" / "umap_x.nbi").write_text("")  # numba's index exists: cached, no note
    data._umap(np.random.default_rng(0).normal(size=(30, 4)), 0)
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- embed fails fast
@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_embed_hub_name_without_network_fails_fast(tmp_path, env):
    (tmp_path / "s.txt").write_text("a\n")
    run_env = {k: v for k, v in ENV.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    run_env.update(env, HF_HOME=str(tmp_path / "hf"))  # an empty cache
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "latentlab", "embed", "st:made-up-org/no-such-model-7f3",
                          str(tmp_path / "s.txt"), "-o", str(tmp_path / "e.npy")],
                         capture_output=True, text=True, env=run_env, timeout=60)
    assert time.perf_counter() - start < 10
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("error: st:made-up-org/no-such-model-7f3:") and "local folder" in out.stderr


def test_embed_empty_layers_is_an_error(cli, tmp_path):
    (tmp_path / "s.txt").write_text("a\n")
    res = cli("embed", "st:whatever", tmp_path / "s.txt", "-o", tmp_path / "e.npy", "--layers", "", ok=False)
    assert res.exit_code == 2 and "--layers" in res.stderr
