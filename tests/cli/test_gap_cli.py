"""`latentlab gap` end to end: values, JSON keys, and every bad input → one line + exit 2."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest


def test_gap_json_on_clip(cli, mtg_dir, tmp_path):
    path = mtg_dir / "features_clip.npy"
    out = cli.json("gap", f"{path}::0", f"{path}::1", "--shift", "-1:1:0.5", "-o", tmp_path / "g.npy")
    assert out["centroid_distance"] == pytest.approx(0.8514, abs=1e-4)
    for key in ("pair_distance", "relative_gap", "linear_separability", "top_dimensions", "n_a", "n_b", "dim", "shift"):
        assert key in out
    assert (out["n_a"], out["n_b"], out["dim"]) == (500, 500, 512)
    assert [p["delta"] for p in out["shift"]] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    zero = out["shift"][2]
    assert zero["centroid_distance"] == pytest.approx(out["centroid_distance"], abs=1e-6)
    assert zero["r_at_1"] == pytest.approx(0.552, abs=1e-9)  # image→text R@1 of issue 5
    # closing the gap shrinks it monotonically along the shift
    dists = [p["centroid_distance"] for p in out["shift"]]
    assert dists == sorted(dists, reverse=True)
    vec = np.load(tmp_path / "g.npy")
    assert vec.shape == (512,) and np.linalg.norm(vec) == pytest.approx(out["centroid_distance"], rel=1e-5)


def test_gap_table_and_unpaired(cli, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.normal(size=(40, 6)) + 2)
    np.save(tmp_path / "b.npy", rng.normal(size=(30, 6)))
    res = cli("gap", tmp_path / "a.npy", tmp_path / "b.npy")
    assert "centroid_distance" in res.stdout and "unpaired" in res.stdout
    out = cli.json("gap", tmp_path / "a.npy", tmp_path / "b.npy")
    assert out["pair_distance"] is None and out["relative_gap"] is None and out["paired"] is False


@pytest.fixture
def bad_files(tmp_path):
    np.save(tmp_path / "ok.npy", np.ones((5, 3)))
    np.save(tmp_path / "ok4.npy", np.ones((5, 4)))
    np.save(tmp_path / "short.npy", np.ones((4, 3)))
    np.save(tmp_path / "nan.npy", np.array([[1.0, 1, 1], [1, 1, 1], [1, np.nan, 1]]))
    np.save(tmp_path / "flat.npy", np.ones(5))
    np.save(tmp_path / "empty.npy", np.ones((0, 3)))
    (tmp_path / "strange.xyz").write_text("1,2")
    (tmp_path / "text.csv").write_text("a,b\nx,y\n")
    return tmp_path


CASES = [
    (["missing.npy", "ok.npy"], "missing.npy: no such file"),
    (["strange.xyz", "ok.npy"], "unknown format"),
    (["nan.npy", "ok.npy"], "nan.npy: row 2 contains NaN"),
    (["flat.npy", "ok.npy"], "flat.npy: embeddings must be a 2-D array"),
    (["empty.npy", "ok.npy"], "empty.npy: empty array"),
    (["text.csv", "ok.npy"], "text.csv: non-numeric"),
    (["ok.npy", "ok4.npy"], "equal dimensions"),
    (["ok.npy", "short.npy", "--paired"], "paired rows"),
    (["ok.npy", "ok.npy", "--shift", "1:0:0.1"], "--shift"),
]


@pytest.mark.parametrize("args,message", CASES)
def test_bad_input_one_line_exit_2(cli, bad_files, args, message):
    res = cli("gap", *[bad_files / a if a.endswith((".npy", ".xyz", ".csv")) else a for a in args], ok=False)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert res.stdout == ""
    assert "Traceback" not in res.output


def test_real_subprocess_error_and_debug(bad_files):
    env = {**os.environ, "LATENTLAB_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "latentlab", "gap", str(bad_files / "nan.npy"), str(bad_files / "ok.npy")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "error: nan.npy: row 2 contains NaN (first non-finite row)"
    proc = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "latentlab", "gap", str(bad_files / "ok.npy"),
                         str(bad_files / "ok.npy"), "--json", "--no-probe"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and json.loads(ok.stdout)["centroid_distance"] == 0.0


def test_usage_error_is_one_line(cli):
    res = cli("gap", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: Missing argument")


def test_gap_shows_the_provenance_of_embedded_inputs(cli, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.normal(size=(20, 4)))
    np.save(tmp_path / "b.npy", rng.normal(size=(20, 4)) + 1)
    (tmp_path / "a.json").write_text(json.dumps({"model": "st:all-MiniLM-L6-v2", "pooling": "mean", "count": 20}))
    out = cli.json("gap", tmp_path / "a.npy", tmp_path / "b.npy", "--no-probe")
    assert out["provenance"] == {"A": {"model": "st:all-MiniLM-L6-v2", "pooling": "mean", "count": 20}}
    text = cli("gap", tmp_path / "a.npy", tmp_path / "b.npy", "--no-probe").stdout
    assert "provenance A: model=st:all-MiniLM-L6-v2, pooling=mean, count=20" in text
