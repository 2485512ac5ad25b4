"""`latentlab retrieval`: JSON/table output, fixes side by side, and one-line errors (exit 2)."""
import numpy as np
import pytest

from latentlab.retrieval.evaluate import METRIC_KEYS


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rng = np.random.default_rng(2)
    d = tmp_path_factory.mktemp("retr")
    z = rng.normal(size=(140, 12))
    img, txt = z + 0.7 * rng.normal(size=z.shape) + 1, z + 0.7 * rng.normal(size=z.shape) - 1
    paths = {}
    for name, arr in (("q", img[:80]), ("g", txt[:80]), ("bq", img[80:]), ("bg", txt[80:]), ("g8", txt[:80, :8])):
        paths[name] = d / f"{name}.npy"
        np.save(paths[name], arr.astype(np.float32))
    paths["truth"] = d / "truth.npy"
    np.save(paths["truth"], np.arange(80))
    paths["badtruth"] = d / "bad.npy"
    np.save(paths["badtruth"], np.arange(80) + 5)
    return paths


def test_clip_json_both(cli, mtg_dir):
    p = mtg_dir / "features_clip.npy"
    out = cli.json("retrieval", f"{p}::0", f"{p}::1", "--both")
    assert out["a_to_b"]["baseline"]["r_at_1"] == pytest.approx(0.552)
    assert out["b_to_a"]["baseline"]["r_at_1"] == pytest.approx(0.506)
    assert out["fix"] is None and "higher = more similar" in out["similarity"]


def test_fix_json_has_baseline_and_fixed(cli, files):
    out = cli.json("retrieval", files["q"], files["g"], "--fix", "localadj", "--bank-gallery", files["bg"],
                   "--bank-queries", files["bq"], "--pool-rate", "0.1", "--r-gallery", "0.2", "--truth", files["truth"])
    d = out["a_to_b"]
    assert set(METRIC_KEYS) <= set(d["baseline"]) and set(d["baseline"]) == set(d["fixed"])
    assert out["params"] == {"r_gallery": 0.2, "r_query": 0.1, "pool_rate": 0.1}
    assert d["change"]["mrr"] == pytest.approx(d["fixed"]["mrr"] - d["baseline"]["mrr"])


def test_table_side_by_side_and_sweep(cli, files):
    res = cli("retrieval", files["q"], files["g"], "--fix", "invgc", "--bank-gallery", files["bg"],
              "--sweep", "r=0:0.4:0.2")
    text = res.stdout
    assert "baseline" in text and "fixed (best of sweep)" in text and "change" in text
    assert "sweep (Q→G" in text and sum(line.startswith("*") for line in text.splitlines()) == 1


@pytest.mark.parametrize("fix, extra", [("csls", []), ("qbnorm", ["--bank-queries", "bq", "--bank-gallery", "bg", "--beta", "10"]),
                                        ("dbnorm", ["--bank-queries", "bq", "--bank-gallery", "bg"])])
def test_score_fixes_run(cli, files, fix, extra):
    extra = [files.get(e, e) for e in extra]
    out = cli.json("retrieval", files["q"], files["g"], "--fix", fix, "--both", *extra)
    assert out["fix"] == fix and 0 <= out["a_to_b"]["fixed"]["r_at_1"] <= 1 and out["b_to_a"]["fixed"] is not None


@pytest.mark.parametrize("args, match", [
    (["g8"], "dimensions"),
    (["g", "--truth", "badtruth"], "outside"),
    (["g", "--fix", "invgc", "--bank-gallery", "g8"], "dimensions"),
    (["g", "--fix", "localadj", "--bank-gallery", "bg", "--pool-rate", "0"], "--pool-rate"),
    (["g", "--fix", "localadj", "--bank-gallery", "bg", "--pool-rate", "1.5"], "--pool-rate"),
    (["g", "--fix", "qbnorm"], "bank"),
    (["g", "--fix", "invgc", "--bank-gallery", "bg", "--sweep", "r=1:0:1"], "sweep"),
])
def test_errors_exit_2(cli, files, args, match):
    args = [files.get(a, a) for a in args]
    res = cli("retrieval", files["q"], *args, ok=False)
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith("error:") and match in res.stderr and "Traceback" not in res.stderr


def test_help_has_example_and_tie_rule(cli):
    text = cli("retrieval", "--help").stdout
    assert "Example:" in text and "Ties count against the query" in text
