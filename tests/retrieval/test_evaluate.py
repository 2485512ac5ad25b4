"""evaluate(): directions, truth inversion, fixes wired to the right banks, sweeps, bad input."""
import numpy as np
import pytest

from latentlab.errors import InputError
from latentlab.retrieval import evaluate, invgc, rank_metrics
from latentlab.retrieval.evaluate import reverse_truth
from latentlab.retrieval.sweep import expand_grid, parse_sweep


def l2n(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def pairs():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(160, 16))
    img = z + 0.8 * rng.normal(size=z.shape) + 1.5
    txt = z + 0.8 * rng.normal(size=z.shape) - 1.0
    return img[:100], txt[:100], img[100:], txt[100:]


def test_baseline_matches_dense_metrics(pairs):
    q, g, _, _ = pairs
    res = evaluate(q, g, both=True, dtype="float64")
    s = l2n(q) @ l2n(g).T
    for got, ref in ((res.baseline, rank_metrics(s)), (res.reverse.baseline, rank_metrics(s.T))):
        assert (got.r_at_1, got.r_at_5, got.mean_rank, got.mrr) == pytest.approx((ref.r_at_1, ref.r_at_5, ref.mean_rank, ref.mrr))
    d = res.to_dict()
    assert d["a_to_b"]["baseline"]["r_at_1"] == res.baseline.r_at_1 and d["b_to_a"]["direction"] == "G→Q"
    assert "similarity" in d and res.a_to_b is res.forward and res.b_to_a is res.reverse


def test_fixed_invgc_uses_swapped_banks_in_reverse(pairs):
    q, g, tq, tg = pairs
    res = evaluate(q, g, fix="invgc", both=True, bank_gallery=tg, bank_queries=tq, r_gallery=0.3, r_query=0.2,
                   dtype="float64")
    fwd = invgc(g, bank_gallery=tg, bank_queries=tq, r_gallery=0.3, r_query=0.2, dtype="float64")
    rev = invgc(q, bank_gallery=tq, bank_queries=tg, r_gallery=0.3, r_query=0.2, dtype="float64")
    assert res.fixed.mrr == pytest.approx(rank_metrics(l2n(q) @ fwd.T).mrr)
    assert res.reverse.fixed.mrr == pytest.approx(rank_metrics(l2n(g) @ rev.T).mrr)
    d = res.to_dict()
    d = d["a_to_b"]
    assert set(d["baseline"]) == set(d["fixed"]) and d["change"]["r_at_1"] == pytest.approx(
        res.fixed.r_at_1 - res.baseline.r_at_1)


def test_reverse_truth_several_relevant():
    keep, rt = reverse_truth(np.array([[0, 1], [1, 1], [3, 0]]), 5)
    assert keep.tolist() == [0, 1, 3]
    assert [set(r) for r in rt] == [{0, 2}, {0, 1}, {2}]


def test_two_d_truth_and_both(pairs):
    q, g, _, _ = pairs
    truth = np.stack([np.arange(100), (np.arange(100) + 1) % 100], 1)
    res = evaluate(q, g, truth=truth, both=True, dtype="float64")
    s = l2n(q) @ l2n(g).T
    assert res.baseline.mrr == pytest.approx(rank_metrics(s, truth).mrr)
    rev_truth = np.stack([np.arange(100), (np.arange(100) - 1) % 100], 1)
    assert res.reverse.baseline.mrr == pytest.approx(rank_metrics(s.T, rev_truth).mrr)


def test_both_with_partial_truth_from_a_file(pairs, tmp_path):
    """G→Q evaluates only the gallery rows some query points to; from a file they are read as
    an indexed row source (block by block), with the in-memory numbers."""
    q, g, _, _ = pairs
    q, truth = q[:40], np.arange(40) * 2  # 40 queries; 60 gallery rows have no relevant query
    np.save(tmp_path / "g.npy", g)
    rev = rank_metrics(l2n(g[truth]) @ l2n(q).T)  # gallery row truth[i]'s relevant query is i
    for gallery in (g, str(tmp_path / "g.npy")):
        res = evaluate(q, gallery, truth=truth, both=True, dtype="float64")
        assert res.reverse.baseline.mrr == pytest.approx(rev.mrr) and res.reverse.baseline.r_at_1 == rev.r_at_1
        assert any("60 gallery rows have no relevant query" in n for n in res.notes)
    fixed = [evaluate(q, gallery, truth=truth, both=True, fix="csls", k=5, dtype="float64").reverse.fixed
             for gallery in (g, str(tmp_path / "g.npy"))]
    assert fixed[0].mrr == pytest.approx(fixed[1].mrr, rel=1e-12)


def test_sweep_marks_best(pairs):
    q, g, tq, tg = pairs
    res = evaluate(q, g, fix="localadj", bank_gallery=tg, sweep={"r": [0.0, 0.2, 0.5]}, pool_rate=0.1)
    rows = res.forward.sweep
    assert [r["params"]["r_gallery"] for r in rows] == [0.0, 0.2, 0.5]
    best = max(range(3), key=lambda i: (rows[i]["r_at_1"], rows[i]["mrr"], -i))
    assert res.forward.best == best and res.fixed.r_at_1 == rows[best]["r_at_1"]
    assert rows[0]["r_at_1"] == res.baseline.r_at_1  # r = 0 changes nothing


def test_parse_sweep():
    assert parse_sweep("r=0:1:0.25") == ("r", [0.0, 0.25, 0.5, 0.75, 1.0])
    assert parse_sweep("beta=10,20") == ("beta", [10.0, 20.0])
    assert expand_grid({"r": [1.0], "pool_rate": [0.1, 0.2]}) == [
        {"r_gallery": 1.0, "r_query": 1.0, "pool_rate": 0.1}, {"r_gallery": 1.0, "r_query": 1.0, "pool_rate": 0.2}]
    for bad in ("r", "r=1:0:0.1", "x=0:1:0.5", "r=a,b"):
        with pytest.raises(InputError):
            parse_sweep(bad)


def test_inputs_unchanged(pairs):
    arrays = [a.astype(np.float32) for a in pairs]
    before = [a.copy() for a in arrays]
    q, g, tq, tg = arrays
    for fix in ("invgc", "localadj", "csls", "qbnorm", "dbnorm"):
        evaluate(q, g, fix=fix, both=True, bank_gallery=tg, bank_queries=tq)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, before))


@pytest.mark.parametrize("kwargs, match", [
    (dict(fix="qbnorm"), "bank"),
    (dict(fix="invgc"), "bank"),
    (dict(fix="csls", beta=3.0), "does not apply"),
    (dict(fix="localadj", pool_rate=0.0, bank_gallery="tg"), "pool_rate"),
    (dict(fix="localadj", pool_rate=1.01, bank_gallery="tg"), "pool_rate"),
    (dict(fix="csls", k=0), "k 0: must"),
    (dict(truth=np.arange(100) + 1), "outside"),
    (dict(fix="invgc", bank_gallery="bad"), "dimensions"),
])
def test_bad_input(pairs, kwargs, match):
    q, g, tq, tg = pairs
    subst = {"tg": tg, "bad": tg[:, :4]}
    kwargs = {k: subst.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(InputError, match=match):
        evaluate(q, g, **kwargs)


def test_dims_differ(pairs):
    q, g, _, _ = pairs
    with pytest.raises(InputError, match="dimensions"):
        evaluate(q, g[:, :8])


def test_retrieval_json_is_one_shape_in_python_cli_and_report(cli, tmp_path):
    """`latentlab retrieval --json`, the report's retrieval section and Python's to_dict() agree key for key."""
    import json

    from latentlab.report import build_report

    rng = np.random.default_rng(4)
    a = rng.normal(size=(30, 6))
    b = a + 0.3 * rng.normal(size=(30, 6))
    np.save(tmp_path / "a.npy", a), np.save(tmp_path / "b.npy", b)

    def keys(obj, path=""):
        if isinstance(obj, dict):
            return {path + "." + k for k in obj} | {p for k, v in obj.items() for p in keys(v, path + "." + k)}
        return set()

    py = json.loads(json.dumps(evaluate(a, b, fix="csls", both=True).to_dict()))
    cmd = cli.json("retrieval", tmp_path / "a.npy", tmp_path / "b.npy", "--both", "--fix", "csls")
    rep = build_report(a, b, sections=["retrieval"]).to_dict()
    section = json.loads(json.dumps(rep["sections"]["retrieval"]["numbers"]))
    assert keys(py) == keys(cmd) == keys(section) and {"a_to_b", "b_to_a"} <= set(py)
    assert py["a_to_b"]["baseline"] == cmd["a_to_b"]["baseline"] == section["a_to_b"]["baseline"]
