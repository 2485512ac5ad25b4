"""CSLS, QB-Norm and DB-Norm against dense implementations of the papers' formulas."""
import numpy as np
import pytest

from latentlab.compute import Backend
from latentlab.errors import InputError
from latentlab.retrieval import csls, dbnorm, qbnorm, rank_metrics


def l2n(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(11)
    hub = rng.normal(size=16)
    q, g, bq, bg = (rng.normal(size=(n, 16)) for n in (60, 80, 120, 90))
    g[:5] += 2 * hub  # a few hubs near the queries' mean direction
    q += 0.5 * hub
    return q, g, bq, bg


def tiny():
    return Backend.make("cpu", "float64", block_bytes=4096)


def dense_csls(q, g, k):
    s = l2n(q) @ l2n(g).T
    rq = np.sort(s, axis=1)[:, -k:].mean(1)
    rg = np.sort(s.T, axis=1)[:, -k:].mean(1)
    return 2 * s - rq[:, None] - rg[None, :]


def dense_qbnorm(q, g, bank, beta, k):
    """The authors' dynamic_inverted_softmax.qb_norm, on a copy (theirs writes in place)."""
    train_test, test_test = l2n(bank) @ l2n(g).T, l2n(q) @ l2n(g).T
    retrieved = np.unique(np.argsort(-train_test, axis=1)[:, :k])
    out = test_test.copy()
    norm = np.exp(beta * train_test).sum(0)
    gate = np.isin(np.argsort(-test_test, axis=1)[:, 0], retrieved)
    out[gate] = np.exp(beta * test_test[gate]) / norm
    return out, gate


def dense_dbnorm(q, g, bq, bg, b1, b2):
    s = l2n(q) @ l2n(g).T
    zq = np.exp(b1 * (l2n(bq) @ l2n(g).T)).sum(0)
    zg = np.exp(b2 * (l2n(bg) @ l2n(g).T)).sum(0)
    return np.exp(b1 * s) / zq * np.exp(b2 * s) / zg


def test_csls_matches_dense(sets):
    q, g, _, _ = sets
    sc = csls(q, g, k=10, device=tiny())
    ref = dense_csls(q, g, 10)
    assert np.abs(sc.scores() - ref).max() < 1e-12
    assert np.array_equal(sc.ranks(gallery_chunk=16, block_rows=8), _ranks(ref))
    assert rank_metrics(ref).r_at_1 == rank_metrics(sc.scores()).r_at_1


def _ranks(s):
    return np.array([(row >= row[i]).sum() - 1 for i, row in enumerate(s)])


@pytest.mark.parametrize("k", [1, 3])
def test_qbnorm_matches_authors_algorithm(sets, k):
    q, g, bq, _ = sets
    sc = qbnorm(q, g, bq, beta=20, k=k, device=tiny())
    ref, gate = dense_qbnorm(q, g, bq, 20.0, k)
    assert np.array_equal(sc.normalised, gate) and 0 < gate.sum() < len(q)
    got = sc.scores()
    # normalised rows come back as log(exp(βs)/Σ), the others as raw cosine
    assert np.allclose(np.exp(got[gate]), ref[gate], rtol=1e-10, atol=0)
    assert np.allclose(got[~gate], ref[~gate], atol=1e-12)
    assert np.array_equal(sc.ranks(gallery_chunk=16, block_rows=8), _ranks(ref))


def test_dbnorm_matches_dense(sets):
    q, g, bq, bg = sets
    sc = dbnorm(q, g, bq, bg, beta_query=1 / 1.99, beta_gallery=3.0, device=tiny())
    ref = dense_dbnorm(q, g, bq, bg, 1 / 1.99, 3.0)
    assert np.allclose(np.exp(sc.scores()), ref, rtol=1e-10, atol=0)
    assert np.array_equal(sc.ranks(gallery_chunk=16, block_rows=8), _ranks(ref))


def test_fixes_do_not_modify_inputs(sets):
    arrays = [a.astype(np.float32) for a in sets]  # float32 arrays alias torch tensors on CPU
    before = [a.copy() for a in arrays]
    q, g, bq, bg = arrays
    for sc in (csls(q, g), qbnorm(q, g, bq), dbnorm(q, g, bq, bg)):
        sc.scores(), sc.ranks(), sc.topk(5)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, before))


def test_qbnorm_lowers_hubness(sets):
    q, g, bq, _ = sets
    base = np.bincount(np.argsort(-(l2n(q) @ l2n(g).T), 1)[:, :5].ravel(), minlength=len(g))
    fixed = np.bincount(qbnorm(q, g, np.vstack([bq, q]), dtype="float64").topk(5).ravel(), minlength=len(g))
    assert fixed.max() < base.max()


def test_bad_inputs(sets):
    q, g, bq, bg = sets
    with pytest.raises(InputError, match="dimensions"):
        qbnorm(q, g, bq[:, :5])
    with pytest.raises(InputError, match="dimensions"):
        csls(q[:, :8], g)
    with pytest.raises(InputError, match="beta"):
        qbnorm(q, g, bq, beta=0)
    with pytest.raises(InputError, match="dimensions"):
        dbnorm(q, g, bq, bg[:, :3])
