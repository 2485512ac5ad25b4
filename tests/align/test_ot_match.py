"""OT: the matching command and the unsupervised aligner recover a rotated, permuted copy."""
import numpy as np
import pytest
import torch

from latentlab.align import fit_aligner, match
from latentlab.align.ot import transport_plan
from latentlab.errors import InputError


@pytest.fixture(scope="module")
def rotated_copy():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(500, 32))
    q, r = np.linalg.qr(rng.normal(size=(32, 32)))
    R = q * np.sign(np.diag(r))
    perm = rng.permutation(500)
    B = np.empty_like(A)
    B[perm] = A @ R  # row i of A ↔ row perm[i] of B
    return A, B, R, perm


def test_match_emd_recovers_rotated_permuted_copy(rotated_copy):
    A, B, _, perm = rotated_copy
    res = match(A, B, "emd", truth=perm)
    assert res.accuracy == 1.0
    assert np.array_equal(res.assignment, perm)
    assert np.allclose(res.plan.sum(1), 1 / 500) and np.allclose(res.plan.sum(0), 1 / 500)


def test_ot_aligner_recovers_rotation_and_permutation(rotated_copy):
    A, B, R, perm = rotated_copy
    al = fit_aligner("ot", A, B)
    assert al.fit_stats_["solver"] == "emd" and al.fit_stats_["converged"]
    mapped = al.transform(A)
    target = al.transform_target(B)
    nearest = np.argmax(mapped @ target.T, axis=1)
    assert np.mean(nearest == perm) == 1.0
    assert np.abs(al.W_ - R).max() < 1e-8


def test_match_no_rotate_agrees_with_linear_sum_assignment():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(1)
    A = rng.normal(size=(60, 8))
    B = A[rng.permutation(60)] + 0.3 * rng.normal(size=(60, 8))
    res = match(A, B, "emd", rotate=False)
    un = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    _, ref = linear_sum_assignment(1 - un(A) @ un(B).T)
    assert np.array_equal(res.assignment, ref)


def test_match_sinkhorn_and_gw_on_permuted_copy():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(120, 16))
    perm = rng.permutation(120)
    B = np.empty_like(A)
    B[perm] = A
    assert match(A, B, "sinkhorn", rotate=False, reg=0.01, truth=perm).accuracy == 1.0
    assert match(A, B, "gw", truth=perm).accuracy == 1.0


def test_sinkhorn_plan_matches_pot_reference():
    import ot

    rng = np.random.default_rng(3)
    C = torch.as_tensor(rng.uniform(size=(30, 30)) * 50.0)
    P = transport_plan(C, "sinkhorn", 0.1).numpy()
    ref = ot.sinkhorn(np.full(30, 1 / 30), np.full(30, 1 / 30), C.numpy() / C.numpy().max(), 0.1, stopThr=1e-7)
    assert np.allclose(P, ref, atol=1e-9)


def test_sinkhorn_underflow_is_a_clear_error():
    C = torch.ones((10, 10), dtype=torch.float64)
    with pytest.raises(InputError, match="underflows"):
        transport_plan(C, "sinkhorn", 1e-4)


def test_match_bad_inputs():
    A = np.random.default_rng(4).normal(size=(10, 4))
    with pytest.raises(InputError, match="equal size"):
        match(A, A[:9])
    with pytest.raises(InputError, match="^truth: "):
        match(A, A, truth=np.arange(9))
    with pytest.raises(InputError, match="^method "):
        match(A, A, "hungarian")
    with pytest.raises(InputError, match="equal dims"):
        match(A, A[:, :3], rotate=False)


def test_ot_semi_supervised_seed_pairs(rotated_copy):
    A, B, R, perm = rotated_copy
    # seed pairs need row-aligned files: undo the permutation of B
    Bp = B[perm]
    al = fit_aligner("ot", A, Bp, n_anchors=40, seed=0, iters=3)
    assert al.fit_stats_["init"] == "seed pairs"
    assert np.abs(al.W_ - R).max() < 1e-8
    assert len(al.anchor_indices_) == 40


def test_ot_aligner_recovers_permutation_at_n2000():
    # above gw_rows (1000): the GW start sees only the rows farthest from each centroid —
    # chosen by a rotation-invariant rule, so both sides pick the same items (random samples
    # would not, which is what broke the start before)
    rng = np.random.default_rng(5)
    n, d = 2000, 32
    A = rng.normal(size=(n, d))
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    R = q * np.sign(np.diag(r))
    perm = rng.permutation(n)
    B = np.empty_like(A)
    B[perm] = A @ R
    al = fit_aligner("ot", A, B, seed=3)
    assert "farthest" in al.fit_stats_["init"] and al.fit_stats_["converged"]
    assert np.abs(al.W_ - R).max() < 1e-6
    nearest = np.argmax(al.transform(A) @ al.transform_target(B).T, axis=1)
    assert np.mean(nearest == perm) == 1.0
    again = fit_aligner("ot", A, B, seed=3)  # deterministic
    assert np.array_equal(again.W_, al.W_)


def test_match_sinkhorn_rotated_copy_above_gw_rows():
    rng = np.random.default_rng(6)
    A = rng.normal(size=(400, 16))
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    perm = rng.permutation(400)
    B = np.empty_like(A)
    B[perm] = A @ q
    res = match(A, B, "sinkhorn", reg=0.02, gw_rows=150, truth=perm)
    assert res.accuracy == 1.0


def test_tlb_coupling_is_invariant_and_exact_on_a_copy():
    from latentlab.align.ot import sq_dists, tlb_coupling

    rng = np.random.default_rng(7)
    X = torch.as_tensor(rng.normal(size=(60, 5)))
    perm = rng.permutation(60)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    Y = torch.empty_like(X)
    Y[perm] = X @ torch.as_tensor(q)
    G = tlb_coupling(sq_dists(X, X), sq_dists(Y, Y)).numpy()
    assert np.array_equal(G.argmax(1), perm) and np.allclose(G.sum(1), 1 / 60)
