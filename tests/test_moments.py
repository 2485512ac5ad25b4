"""StreamingMoments with a subset of products, and the fits that ask for fewer products."""
import numpy as np
import pytest
import torch

from latentlab.align import fit_aligner
from latentlab.compute import Backend
from latentlab.moments import StreamingMoments


def _blocks(seed=0, n=300, dx=7, dy=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dx, generator=g, dtype=torch.float64) * 3 + 10  # a large mean: the shift matters
    y = x[:, :dy] @ torch.randn(dy, dy, generator=g, dtype=torch.float64) + torch.randn(n, dy, generator=g, dtype=torch.float64)
    return x, y


def test_subset_of_products_equals_full_pass():
    x, y = _blocks()
    full = StreamingMoments()
    part = StreamingMoments(products=((1, 0),))  # order-free: stored as (0, 1)
    for lo in range(0, len(x), 64):
        full.update(x[lo : lo + 64], y[lo : lo + 64])
        part.update(x[lo : lo + 64], y[lo : lo + 64])
    assert torch.allclose(part.centered(0, 1), full.centered(0, 1), atol=1e-9)
    assert torch.allclose(part.centered(1, 0), full.centered(0, 1).T, atol=1e-9)
    for i, z in enumerate((x, y)):
        exact = ((z - z.mean(0)) ** 2).sum(0)
        assert torch.allclose(part.centered_diag(i), exact, rtol=1e-10)
        assert torch.allclose(full.centered_diag(i), exact, rtol=1e-10)
    with pytest.raises(ValueError, match=r"\(0, 0\) product was not accumulated"):
        part.centered(0, 0)


def test_partial_accumulators_merge():
    x, y = _blocks(1)
    one = StreamingMoments(products=((0, 1),)).update(x, y)
    a = StreamingMoments(products=((0, 1),)).update(x[:100], y[:100])
    b = StreamingMoments(products=((0, 1),), shift=a.shift).update(x[100:], y[100:])
    a.merge(b)
    assert torch.allclose(a.centered(0, 1), one.centered(0, 1), atol=1e-9)
    assert torch.allclose(a.centered_diag(1), one.centered_diag(1), rtol=1e-10)


def test_blocks_of_any_length_and_dtype_reuse_no_stale_rows():
    # the centred copies live in reused buffers: a longer block after a shorter one, a float32
    # block after float64 ones, and the caller's blocks themselves stay as they were
    x, y = _blocks(2)
    ref = StreamingMoments().update(x, y)
    acc = StreamingMoments()
    for lo, hi in ((0, 10), (10, 200), (200, 203), (203, 300)):
        bx, by = x[lo:hi].clone(), y[lo:hi].clone()
        acc.update(bx, by)
        assert torch.equal(bx, x[lo:hi]) and torch.equal(by, y[lo:hi])
    for key in ((0, 0), (0, 1), (1, 1)):
        assert torch.allclose(acc.centered(*key), ref.centered(*key), rtol=1e-10, atol=1e-9)
    mixed = StreamingMoments(products=((0, 1),)).update(x[:150], y[:150]).update(x[150:].float(), y[150:].float())
    assert torch.allclose(mixed.centered(0, 1), ref.centered(0, 1), rtol=1e-5, atol=1e-3)


def test_pickled_accumulator_carries_sums_not_scratch():
    import pickle

    x, y = _blocks(3)
    acc = StreamingMoments(products=((0, 1),)).update(x, y)
    state = pickle.dumps(acc)
    assert len(state) < x.numel() * 8  # the block-sized buffers stay behind (an engine ships sums)
    back = pickle.loads(state)
    assert torch.equal(back.centered(0, 1), acc.centered(0, 1)) and back.n == acc.n
    back.update(x, y)  # and it goes on accumulating
    assert back.n == 2 * len(x)


@pytest.mark.parametrize("method,dx,dy", [("procrustes", 7, 5), ("procrustes", 5, 7), ("procrustes", 6, 6),
                                          ("lst", 5, 7), ("lstsq", 7, 5), ("ridge", 5, 7)])
def test_reported_residual_is_the_data_residual(method, dx, dy):
    # the fits now form only the products they need (XᵀY, and XᵀX where the map needs it);
    # the residual they report must still be ‖X'W − Y'‖² / ‖Y'‖² of the preprocessed rows
    rng = np.random.default_rng(dx * 10 + dy)
    x = rng.normal(size=(200, dx)) + 2.0
    y = x @ rng.normal(size=(dx, dy)) + 0.3 * rng.normal(size=(200, dy)) - 1.0
    al = fit_aligner(method, x, y, device="cpu", dtype="float64")
    cpu = Backend.make("cpu", "float64")
    xp = al.pre_x_.on(cpu).apply(torch.as_tensor(x)).numpy()
    yp = al.pre_y_.on(cpu).apply(torch.as_tensor(y)).numpy()
    want = np.sum((xp @ al.W_ - yp) ** 2) / np.sum(yp**2)
    assert al.fit_stats_["relative_residual"] == pytest.approx(want, rel=1e-8, abs=1e-12)
