"""Issue 11, "accepted nonsense" and "one rule for zero rows": each exact command from the issue
ends as one ``error: …`` line naming the option or file, exit status 2, nothing on stdout."""
from __future__ import annotations

import numpy as np
import pytest

from latentlab.errors import InputError


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    out = {}
    for name in ("a", "b", "bank"):
        out[name] = tmp_path / f"{name}.npy"
        np.save(out[name], rng.standard_normal((24, 6)).astype(np.float32))
    z = rng.standard_normal((24, 6)).astype(np.float32)
    z[3] = 0.0
    z[11] = -0.0  # a negative zero is a zero row too
    out["z"] = tmp_path / "z.npy"
    np.save(out["z"], z)
    return {k: str(v) for k, v in out.items()}


def _refused(cli, args, *needles):
    res = cli(*args, ok=False)
    err = res.stderr.strip()
    assert res.exit_code == 2, (res.exit_code, err)
    assert res.stdout == "" and "\n" not in err and err.startswith("error: "), err
    assert "internal error" not in err and "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.mark.parametrize("value", ["-1", "5", "nan", "inf"])
def test_invgc_rate_outside_0_1(cli, files, value):
    err = _refused(cli, ["retrieval", files["a"], files["b"], "--fix", "invgc", "--bank-gallery", files["bank"],
                         "--r-gallery", value], "--r-gallery")
    assert "[0, 1]" in err or "finite" in err


def test_invgc_rate_bounds_are_accepted(cli, files):
    for value in ("0", "1"):
        cli("retrieval", files["a"], files["b"], "--fix", "invgc", "--bank-gallery", files["bank"], "--r-query", value)


def test_sweep_of_negative_rates(cli, files):
    _refused(cli, ["retrieval", files["a"], files["b"], "--fix", "invgc", "--bank-gallery", files["bank"],
                   "--sweep", "r=-5:-1:1"], "--sweep", "r=-5:-1:1", "[0, 1]")


@pytest.mark.parametrize("spec,needle", [("k=0,2", "whole number"), ("beta=-1,2", "positive"),
                                         ("pool_rate=0:2:1", "(0, 1]")])
def test_sweep_values_checked_like_the_options(cli, files, spec, needle):
    _refused(cli, ["retrieval", files["a"], files["b"], "--fix", "csls", "--sweep", spec], "--sweep", needle)


def test_python_api_refuses_the_same_rates(files):
    from latentlab.retrieval import evaluate

    with pytest.raises(InputError, match=r"^r_gallery 5: InvGC's rate must be in \[0, 1\]"):
        evaluate(files["a"], files["b"], fix="invgc", bank_gallery=files["bank"], r_gallery=5)


@pytest.mark.parametrize("sections", [",", " , ,"])
def test_report_with_no_section(cli, files, tmp_path, sections):
    _refused(cli, ["report", files["a"], files["b"], "-o", tmp_path / "r.html", "--sections", sections],
             "--sections", "choose from")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
@pytest.mark.parametrize("command", ["cka", "cka-matrix"])
def test_sigma_frac_refused_alike_by_cka_and_cka_matrix(cli, files, command, value):
    err = _refused(cli, [command, files["a"], files["b"], "--kernel", "rbf", "--sigma-frac", value], "--sigma-frac")
    # one validation home (analyze.prep.check_positive via rbf_cka): the same sentence for both commands
    other = "cka-matrix" if command == "cka" else "cka"
    assert err == _refused(cli, [other, files["a"], files["b"], "--kernel", "rbf", "--sigma-frac", value])


def test_similarity_sigma_frac_nan(cli, files):
    _refused(cli, ["similarity", files["a"], files["b"], "-m", "rbf_cka", "--sigma-frac", "nan"], "--sigma-frac nan")


@pytest.mark.parametrize("shift", ["nan,1", "0:inf:1", "1,inf"])
def test_gap_shift_not_finite(cli, files, shift):
    _refused(cli, ["gap", files["a"], files["b"], "--shift", shift], "--shift", "finite")


def test_negative_shape_header_through_report(cli, files, tmp_path):
    bad = tmp_path / "neg.npy"
    np.save(bad, np.zeros((4, 32), np.float32))
    bad.write_bytes(bad.read_bytes().replace(b"(4, 32)", b"(-1, 32)"))
    _refused(cli, ["report", bad, files["a"], "-o", tmp_path / "r.html"], "neg.npy", "negative dimension")
    assert not (tmp_path / "r.html").exists()


def test_truth_index_errors_name_the_file(cli, files, tmp_path):
    truth = tmp_path / "truth_idx.npy"
    np.save(truth, np.r_[np.arange(23), 99])
    _refused(cli, ["retrieval", files["a"], files["b"], "--truth", truth], "--truth", "truth_idx.npy", "row 23")


# ------------------------------------------------------------------ zero rows: one rule
NORMALISING = [
    ("gap", ["gap", "{z}", "{b}", "--no-probe"]),
    ("uniformity", ["uniformity", "{z}"]),
    ("alignment", ["uniformity", "{a}", "{z}"]),
    ("retrieval", ["retrieval", "{z}", "{b}"]),
    ("retrieval gallery", ["retrieval", "{a}", "{z}"]),
    ("retrieval bank", ["retrieval", "{a}", "{b}", "--fix", "invgc", "--bank-gallery", "{z}"]),
    ("mutual k-NN", ["similarity", "{z}", "{b}", "-m", "mutual_knn"]),
    ("overlap", ["overlap", "{z}", "{b}"]),
]


@pytest.mark.parametrize("case", [c for c, _ in NORMALISING])
def test_zero_rows_refused_by_every_normalising_command(cli, files, case):
    args = [a.format(**files) for a in dict(NORMALISING)[case]]
    err = _refused(cli, args, "z.npy: row 3 has zero norm", "cannot be L2-normalised", "2 such rows")


@pytest.mark.parametrize("args", [["cka", "{z}", "{b}"], ["spectrum", "{z}", "--no-hubness"]])
def test_zero_rows_accepted_where_nothing_is_normalised(cli, files, args):
    cli(*[a.format(**files) for a in args])


def test_zero_row_rule_names_the_row_in_the_file_for_subsets():
    from latentlab.io import Embeddings, as_embeddings, require_nonzero_rows

    class Subset:  # a row view as the aligners build it (source_rows: rows in the file)
        def __init__(self, data, rows):
            self.d, self.source_rows = data[rows], np.asarray(rows)
            self.shape, self.dtype = self.d.shape, self.d.dtype

        def __getitem__(self, i):
            return self.d[i]

    data = np.ones((10, 3))
    data[7] = 0
    emb = as_embeddings(Subset(data, [2, 7, 9]), "x.npy")
    with pytest.raises(InputError, match=r"^x.npy: row 7 has zero norm .*for gap\) — drop"):
        require_nonzero_rows(emb, "gap")
    ok = Embeddings(np.ones((3, 2)), "ok")
    require_nonzero_rows(ok, "gap")  # no zero row: nothing raised
