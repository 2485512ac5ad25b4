"""Issue 13: retrieval with fixes on shard folders streams — query blocks × gallery chunks with
top-k merges for CSLS's neighbourhood means and QB-Norm's normaliser, InvGC's corrected gallery
computed as it is read above the memory budget — and equals the in-memory path; LocalAdj, which
holds its bank, refuses above the budget and names the fix that streams."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from latentlab.analyze import prep
from latentlab.compute import Backend
from latentlab.errors import InputError
from latentlab.io import read_embeddings
from latentlab.retrieval import evaluate
from latentlab.retrieval.invgc import CorrectedGallery, InvGCPlan

csls_mod = importlib.import_module("latentlab.retrieval.csls")  # the module: the package exports the function

EXACT = Backend.make("cpu", "float64")
CHUNKED = Backend.make("cpu", "float64", block_bytes=4096)  # 64-row blocks, 64-row gallery chunks: many tiles


@pytest.fixture(scope="module")
def task(tmp_path_factory, write_shards):
    rng = np.random.default_rng(7)
    hub = rng.standard_normal(16)
    g = rng.standard_normal((400, 16)) + 0.8 * hub  # a shared direction: hubs for the fixes to act on
    q = g[:150] + 0.9 * rng.standard_normal((150, 16))
    bank_q = rng.standard_normal((120, 16)) + 0.8 * hub
    bank_g = rng.standard_normal((90, 16)) + 0.8 * hub
    root = tmp_path_factory.mktemp("ooc")
    sizes = {"q": (q, [60, 1, 89]), "g": (g, [130, 70, 200]), "bq": (bank_q, [100, 20]), "bg": (bank_g, [45, 45])}
    folders = {name: read_embeddings(write_shards(root / name, x, s)) for name, (x, s) in sizes.items()}
    return {"q": q, "g": g, "bq": bank_q, "bg": bank_g}, folders


def _same(a, b):
    for da, db in ((a.forward, b.forward), (a.reverse, b.reverse)):
        if da is None:
            assert db is None
            continue
        for ma, mb in ((da.baseline, db.baseline), (da.fixed, db.fixed)):
            np.testing.assert_array_equal(ma.ranks, mb.ranks)
            assert ma.to_dict() == pytest.approx(mb.to_dict())


@pytest.mark.parametrize("fix", ["csls", "qbnorm", "dbnorm"])
def test_score_fixes_on_shard_folders_equal_the_in_memory_path(task, fix, monkeypatch):
    arrays, folders = task
    banks = {"bank_queries": arrays["bq"], "bank_gallery": arrays["bg"]} if fix != "csls" else {}
    fbanks = {"bank_queries": folders["bq"], "bank_gallery": folders["bg"]} if fix != "csls" else {}
    whole = evaluate(arrays["q"], arrays["g"], fix=fix, both=True, device=EXACT, **banks)
    monkeypatch.setattr(csls_mod, "MEAN_TOPK_ROWS", 50)  # CSLS means over row ranges of 50
    streamed = evaluate(folders["q"], folders["g"], fix=fix, both=True, device=CHUNKED, **fbanks)
    _same(whole, streamed)
    assert whole.forward.fixed.ranks.tolist() != whole.forward.baseline.ranks.tolist()  # the fix acts


def test_csls_means_in_row_ranges_equal_one_pass(task, monkeypatch):
    arrays, folders = task
    one = csls_mod.mean_topk(arrays["g"], arrays["q"], 10, EXACT)
    monkeypatch.setattr(csls_mod, "MEAN_TOPK_ROWS", 33)
    ranged = csls_mod.mean_topk(folders["g"].data, folders["q"].data, 10, CHUNKED)
    np.testing.assert_allclose(ranged.numpy(), one.numpy(), rtol=1e-12)
    # the closed form: the mean of each row's 10 largest cosines
    gn = arrays["g"] / np.linalg.norm(arrays["g"], axis=1, keepdims=True)
    qn = arrays["q"] / np.linalg.norm(arrays["q"], axis=1, keepdims=True)
    np.testing.assert_allclose(one.numpy(), np.sort(gn @ qn.T, axis=1)[:, -10:].mean(1), rtol=1e-12)


def test_invgc_above_the_budget_corrects_the_gallery_as_it_is_read(task, monkeypatch):
    arrays, folders = task
    kw = dict(fix="invgc", both=True, r_gallery=0.3, r_query=0.2)
    whole = evaluate(arrays["q"], arrays["g"], bank_gallery=arrays["bg"], bank_queries=arrays["bq"],
                     device=EXACT, **kw)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 0)
    plan = InvGCPlan(folders["g"].data, {"gallery": folders["bg"].data}, local=False, pool_rate=0.01, backend=EXACT)
    lazy = plan.apply({"gallery": 0.3})
    assert isinstance(lazy, CorrectedGallery)  # nothing n × d held: the rows are computed when read
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 2**30)
    eager = plan.apply({"gallery": 0.3})
    assert isinstance(eager, np.ndarray)
    np.testing.assert_allclose(lazy[:], eager, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lazy[[5, 399, 0]], eager[[5, 399, 0]], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lazy[7], eager[7], rtol=1e-12, atol=1e-15)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 0)
    streamed = evaluate(folders["q"], folders["g"], bank_gallery=folders["bg"], bank_queries=folders["bq"],
                        device=CHUNKED, **kw)
    _same(whole, streamed)
    assert whole.forward.fixed.ranks.tolist() != whole.forward.baseline.ranks.tolist()  # the fix acts
    # a sweep above the budget keeps no messages and still equals the in-memory sweep
    sweep = {"r_gallery": [0.1, 0.4]}
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 2**30)
    a = evaluate(arrays["q"], arrays["g"], bank_gallery=arrays["bg"], fix="invgc", sweep=sweep, device=EXACT)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 0)
    b = evaluate(folders["q"], folders["g"], bank_gallery=folders["bg"], fix="invgc", sweep=sweep, device=CHUNKED)
    assert [p["r_at_1"] for p in a.forward.sweep] == [p["r_at_1"] for p in b.forward.sweep]
    assert [p["mrr"] for p in a.forward.sweep] == pytest.approx([p["mrr"] for p in b.forward.sweep])


def test_localadj_above_the_budget_refuses_naming_the_streamed_fix(task, monkeypatch):
    arrays, folders = task
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 1000)  # under the 90 × 16 floats of the bank
    with pytest.raises(InputError, match=r"LocalAdj \(`fix` localadj\) on `bank_gallery` needs all 90 rows in "
                                         r"memory .*use `fix` invgc"):
        evaluate(folders["q"], folders["g"], fix="localadj", bank_gallery=folders["bg"], device=EXACT)
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 2**30)
    ok = evaluate(folders["q"], folders["g"], fix="localadj", bank_gallery=folders["bg"], device=EXACT)
    assert ok.forward.fixed is not None


def test_cli_localadj_refusal_is_one_line_naming_flags(tmp_path, cli, monkeypatch, write_shards):
    rng = np.random.default_rng(0)
    for name, n in (("q", 30), ("g", 40), ("bg", 50)):
        write_shards(tmp_path / name, rng.standard_normal((n, 8)), [n // 2, n - n // 2])
    monkeypatch.setattr(prep, "IN_MEMORY_BYTES", 100)
    res = cli("retrieval", tmp_path / "q", tmp_path / "g", "--fix", "localadj", "--bank-gallery", tmp_path / "bg",
              ok=False)
    assert res.exit_code == 2
    line = res.stderr.strip()
    assert line.startswith("error: LocalAdj (--fix localadj) on --bank-gallery needs all 50 rows") and "\n" not in line
    assert "use --fix invgc" in line
