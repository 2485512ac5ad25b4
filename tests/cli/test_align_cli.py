"""latentlab fit / apply / evaluate / match end to end, and their bad inputs (exit 2)."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("align")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 12))
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    np.save(d / "x.npy", X)
    np.save(d / "y.npy", X @ q + 0.5)
    np.save(d / "y8.npy", X[:, :8])
    np.save(d / "idx.npy", np.arange(0, 200, 2))
    np.save(d / "dup.npy", np.array([1, 1, 2]))
    np.save(d / "oor.npy", np.array([1, 500]))
    (d / "idx.txt").write_text("\n".join(str(i) for i in range(0, 200, 2)))
    (d / "bad.txt").write_text("one\ntwo\n")
    perm = rng.permutation(200)
    B = np.empty_like(X)
    B[perm] = X @ q
    np.save(d / "b.npy", B)
    np.save(d / "perm.npy", perm)
    return d, q


def test_fit_evaluate_apply(cli, files):
    d, q = files
    out = cli.json("fit", "procrustes", d / "x.npy", d / "y.npy", "--anchors", d / "idx.npy", "-o", d / "m.safetensors",
                   "--dtype", "float64")
    assert out["method"] == "procrustes" and out["n_anchors"] == 100 and out["relative_residual"] < 1e-20
    ev = cli.json("evaluate", d / "m.safetensors", d / "x.npy", d / "y.npy")
    assert ev["r_at_1"] == 1.0 and ev["n_rows"] == 100 and ev["median_rank"] == 1.0
    assert set(ev["baselines"]) == {"identity", "random_rotation"}
    for base in ev["baselines"].values():
        assert set(base) == {"r_at_1", "r_at_5", "r_at_10", "mrr", "median_rank", "mean_cosine", "knn_accuracy"}
    res = cli("apply", d / "m.safetensors", d / "x.npy", "-o", d / "mapped.npy", "--dtype", "float64")
    assert "mapped 200 source rows" in res.output
    assert np.abs(np.load(d / "mapped.npy") - np.load(d / "y.npy")).max() < 1e-10
    table = cli("evaluate", d / "m.safetensors", d / "x.npy", d / "y.npy").output
    assert "random rotation" in table and "higher = better" in table


def test_anchors_from_text_file(cli, files):
    d, _ = files
    out = cli.json("fit", "procrustes", d / "x.npy", d / "y.npy", "--anchors", d / "idx.txt",
                   "-o", d / "t.safetensors")
    # float32 block products: XᵀY (a GEMM) and the sums of squares (not a GEMM) round independently,
    # so an exact rotation's residual sits at float32's relative precision (~1e-8), not at 0
    assert out["n_anchors"] == 100 and out["relative_residual"] < 1e-6


def test_evaluate_labels_and_rows(cli, files):
    d, _ = files
    cli("fit", "ridge", d / "x.npy", d / "y.npy", "--n-anchors", "50", "--alpha", "auto", "-o", d / "r.safetensors")
    np.save(d / "lab.npy", np.arange(200) % 3)
    np.save(d / "rows.npy", np.arange(150, 200))
    ev = cli.json("evaluate", d / "r.safetensors", d / "x.npy", d / "y.npy", "--labels", d / "lab.npy",
                  "--rows", d / "rows.npy")
    assert ev["n_rows"] == 50 and 0 <= ev["knn_accuracy"] <= 1
    assert ev["baselines"]["random_rotation"]["knn_accuracy"] is not None


def test_match_cli(cli, files):
    d, _ = files
    out = cli.json("match", d / "x.npy", d / "b.npy", "--method", "emd", "-o", d / "match.npy",
                   "--truth", d / "perm.npy", "--plan", d / "plan.npy")
    assert out["accuracy"] == 1.0
    assert np.array_equal(np.load(d / "match.npy"), np.load(d / "perm.npy"))
    plan = np.load(d / "plan.npy")
    assert plan.shape == (200, 200) and abs(plan.sum() - 1) < 1e-9


def test_ot_fit_cli(cli, files):
    d, q = files
    out = cli.json("fit", "ot", d / "x.npy", d / "b.npy", "-o", d / "ot.safetensors")
    assert out["solver"] == "emd" and out["converged"]


@pytest.mark.parametrize("args, message", [
    (["fit", "procrustes", "{d}/x.npy", "{d}/y.npy", "--anchors", "{d}/dup.npy", "-o", "{d}/z.safetensors"], "appears 2 times"),
    (["fit", "procrustes", "{d}/x.npy", "{d}/y.npy", "--anchors", "{d}/oor.npy", "-o", "{d}/z.safetensors"], "out of range"),
    (["fit", "affine", "{d}/x.npy", "{d}/idx.npy", "-o", "{d}/z.safetensors"], "2-D"),
    (["fit", "cca", "{d}/x.npy", "{d}/y.npy", "--components", "30", "-o", "{d}/z.safetensors"], "exceeds"),
    (["fit", "lowrank", "{d}/x.npy", "{d}/y.npy", "-o", "{d}/z.safetensors"], "needs --rank"),
    (["fit", "ridge", "{d}/x.npy", "{d}/y.npy", "--alpha", "lots", "-o", "{d}/z.safetensors"], "--alpha"),
    (["fit", "procrustes", "{d}/x.npy", "{d}/missing.npy", "-o", "{d}/z.safetensors"], "no such file"),
    (["apply", "{d}/m.safetensors", "{d}/y8.npy", "-o", "{d}/z.npy"], "dimension 12"),
    (["apply", "{d}/x.npy", "{d}/x.npy", "-o", "{d}/z.npy"], "not a latentlab aligner artifact"),
    (["evaluate", "{d}/m.safetensors", "{d}/x.npy", "{d}/y8.npy"], "dimension 12"),
    (["match", "{d}/x.npy", "{d}/y8.npy", "--no-rotate"], "equal dims"),
    (["match", "{d}/x.npy", "{d}/b.npy", "--truth", "{d}/dup.npy"], "--truth"),
    (["fit", "procrustes", "{d}/x.npy", "{d}/y.npy", "--anchors", "{d}/bad.txt", "-o", "{d}/z.safetensors"],
     "--anchors"),
    (["evaluate", "{d}/m.safetensors", "{d}/x.npy", "{d}/y.npy", "--rows", "{d}/nope.npy"], "no such file"),
])
def test_bad_inputs_exit_2(cli, files, args, message):
    d, _ = files
    if not (d / "m.safetensors").exists():
        cli("fit", "procrustes", d / "x.npy", d / "y.npy", "--anchors", d / "idx.npy", "-o", d / "m.safetensors")
    res = cli(*[a.format(d=d) for a in args], ok=False)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error:") and message in res.stderr and res.stdout == ""


def test_help_has_examples(cli):
    for cmd in ("fit", "apply", "evaluate", "match"):
        out = cli(cmd, "--help").output
        assert "Example:" in out and "--json" in out


def test_nan_in_an_anchor_row_names_its_row_in_the_file(cli, tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)), rng.normal(size=(40, 4))
    x[17, 2] = np.nan
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "idx.npy", np.array([3, 17, 20, 25, 30, 31]))
    res = cli("fit", "lstsq", tmp_path / "x.npy", tmp_path / "y.npy", "--anchors", tmp_path / "idx.npy",
              "-o", tmp_path / "m.safetensors", ok=False)
    assert res.exit_code == 2 and "x.npy: row 17 contains NaN" in res.stderr
