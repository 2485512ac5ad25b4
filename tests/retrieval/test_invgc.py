"""InvGC and LocalAdj against a direct dense implementation of the published formulas."""
import numpy as np
import pytest

from latentlab.compute import Backend
from latentlab.errors import InputError
from latentlab.retrieval import invgc, pool_size


def l2n(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def dense_full(g, t, r):
    """InvGC_func of the authors' code on normalised rows: the whole n × |T| matrix W."""
    g, t = l2n(g), l2n(t)
    w = g @ t.T
    return l2n(g - (r / len(t)) * (w - w.mean()) @ t)


def dense_local(g, t, r, pool_rate):
    """InvGC_LocalADJ_func: a dense mask filled row by row with each row's top-k of W."""
    g, t = l2n(g), l2n(t)
    w = g @ t.T
    k = max(1, int(pool_rate * len(t)))
    mask = np.zeros_like(w)
    for i in range(len(g)):
        top = np.argsort(-w[i])[:k]
        mask[i, top] = w[i, top]
    return l2n(g - (r / k) * mask @ t)


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(7)
    # a shared offset gives the narrow cone InvGC is meant for
    shift = rng.normal(size=24)
    return [rng.normal(size=(n, 24)) + shift for n in (130, 200, 150)]


def tiny(dtype="float64"):
    return Backend.make("cpu", dtype, block_bytes=8192)  # many blocks and bank chunks


@pytest.mark.parametrize("local", [False, True])
def test_single_bank_matches_dense(sets, local):
    g, tg, _ = sets
    ref = dense_local(g, tg, 0.4, 0.05) if local else dense_full(g, tg, 0.4)
    out = invgc(g, bank_gallery=tg, r_gallery=0.4, local_adj=local, pool_rate=0.05, device=tiny())
    assert np.abs(out - ref).max() < 1e-6


@pytest.mark.parametrize("local", [False, True])
def test_two_banks_average_then_renormalise(sets, local):
    g, tg, tq = sets
    f = (lambda t, r: dense_local(g, t, r, 0.03)) if local else (lambda t, r: dense_full(g, t, r))
    ref = l2n(0.5 * f(tg, 0.3) + 0.5 * f(tq, 0.6))
    out = invgc(g, bank_gallery=tg, bank_queries=tq, r_gallery=0.3, r_query=0.6, local_adj=local,
                pool_rate=0.03, device=tiny())
    assert np.abs(out - ref).max() < 1e-6
    out32 = invgc(g, bank_gallery=tg, bank_queries=tq, r_gallery=0.3, r_query=0.6, local_adj=local,
                  pool_rate=0.03, device=tiny("float32"))
    assert out32.dtype == np.float32 and np.abs(out32 - ref).max() < 1e-5


def test_query_bank_alone(sets):
    g, _, tq = sets
    out = invgc(g, bank_queries=tq, r_query=0.5, dtype="float64")
    assert np.abs(out - dense_full(g, tq, 0.5)).max() < 1e-6


def test_zero_rate_is_identity_and_spreads_the_cone(sets):
    g, tg, _ = sets
    assert np.allclose(invgc(g, bank_gallery=tg, r_gallery=0.0, dtype="float64"), l2n(g), atol=1e-12)
    # LocalAdj pushes each row away from its nearest bank rows: with the gallery as its own
    # bank, nearest-neighbour similarity drops (the paper's "representation degeneration")
    def nn_sim(x):
        s = x @ x.T
        np.fill_diagonal(s, -np.inf)
        return s.max(1).mean()
    out = invgc(g, bank_gallery=g, r_gallery=0.5, local_adj=True, pool_rate=0.05, dtype="float64")
    assert nn_sim(out) < nn_sim(l2n(g)) - 0.01


def test_inputs_not_modified(sets):
    g, tg, tq = sets
    copies = [a.copy() for a in sets]
    for local in (False, True):
        invgc(g, bank_gallery=tg, bank_queries=tq, r_gallery=0.5, local_adj=local, dtype="float64")
    g32 = g.astype(np.float32)
    before = g32.copy()
    invgc(g32, bank_gallery=tg.astype(np.float32), local_adj=True)  # float32 arrays alias torch tensors
    assert all(np.array_equal(a, b) for a, b in zip(sets, copies)) and np.array_equal(g32, before)


def test_pool_size_float64():
    assert pool_size(0.01, 1200) == 12
    # the trap: a float32 rate widened to float64 is 0.0099999998, and 1200 × that → 11
    assert int(np.float64(np.float32(0.01)) * 1200) == 11
    assert pool_size(np.float32(0.01), 1200) == 12
    assert pool_size(0.0001, 50) == 1 and pool_size(1.0, 50) == 50


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5, float("nan")])
def test_bad_pool_rate(sets, rate):
    g, tg, _ = sets
    with pytest.raises(InputError, match="pool_rate"):
        invgc(g, bank_gallery=tg, local_adj=True, pool_rate=rate)


def test_bad_banks(sets):
    g, tg, _ = sets
    with pytest.raises(InputError, match="dimensions"):
        invgc(g, bank_gallery=tg[:, :10])
    with pytest.raises(InputError, match="bank"):
        invgc(g)
