"""GRAM volumes (Cicchetti et al., ICLR 2025): closed forms, invariances, blocked retrieval, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from latentlab.analyze.gram import _retrieval_ranks, gram, gram_volumes
from latentlab.compute import as_backend, l2_normalize
from latentlab.errors import InputError
from latentlab.ranks import true_ranks


def _vols(*sets):
    return gram_volumes(torch.stack([torch.as_tensor(s, dtype=torch.float64) for s in sets], dim=1)).numpy()


def test_two_vectors_give_the_sine_of_their_angle():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 7)), rng.standard_normal((50, 7))
    cos = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(_vols(a, b), np.sqrt(1 - cos**2), atol=1e-12)
    theta = np.linspace(0, np.pi, 9)  # exact angles in a plane, scaled rows (normalised inside)
    u = np.stack([np.ones_like(theta), np.zeros_like(theta)], 1) * 3.0
    v = np.stack([np.cos(theta), np.sin(theta)], 1) * 0.2
    np.testing.assert_allclose(_vols(u, v), np.abs(np.sin(theta)), atol=1e-12)


def test_identical_vectors_give_zero_and_orthonormal_vectors_one():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 16))
    assert np.abs(_vols(x, x)).max() < 1e-6
    assert np.abs(_vols(x, rng.standard_normal((20, 16)), 5.0 * x)).max() < 1e-6  # a dependent triple
    for k in (2, 3, 5):
        q = np.stack([np.linalg.qr(rng.standard_normal((16, k)))[0].T for _ in range(20)])  # (rows, k, d)
        vols = _vols(*[q[:, i] * rng.uniform(0.1, 10, (20, 1)) for i in range(k)])
        np.testing.assert_allclose(vols, 1.0, atol=1e-12)


def test_volume_is_sqrt_det_of_the_gram_matrix_and_rotation_invariant():
    rng = np.random.default_rng(2)
    sets = [rng.standard_normal((30, 6)) for _ in range(3)]
    unit = [s / np.linalg.norm(s, axis=1, keepdims=True) for s in sets]
    want = [np.sqrt(np.linalg.det(np.stack([u[i] for u in unit]) @ np.stack([u[i] for u in unit]).T)) for i in range(30)]
    np.testing.assert_allclose(_vols(*sets), want, atol=1e-10)
    R = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    np.testing.assert_allclose(_vols(*[s @ R for s in sets]), want, atol=1e-10)
    assert all(0 <= v <= 1 + 1e-12 for v in want)  # Hadamard's inequality


def test_summary_matches_the_per_row_volumes():
    rng = np.random.default_rng(3)
    sets = [rng.standard_normal((40, 8)) for _ in range(3)]
    res = gram(sets, retrieval=False, device="cpu", bins=10)
    v = _vols(*sets)
    assert res.k == 3 and res.n == 40 and res.retrieval is None
    assert res.mean == pytest.approx(v.mean()) and res.quantiles["q50"] == pytest.approx(np.median(v))
    assert sum(res.histogram["counts"]) == 40 and len(res.histogram["edges"]) == 11


def test_k2_retrieval_equals_cosine_retrieval_when_cosines_are_positive():
    rng = np.random.default_rng(4)
    x = np.abs(rng.standard_normal((120, 10)))  # non-negative: every cosine > 0, so sin θ orders as −cos θ
    y = x + 0.8 * np.abs(rng.standard_normal((120, 10)))
    res = gram([x, y], ks=(1, 5), device="cpu")
    ranks = true_ranks(x, y, backend=as_backend("cpu", "float64"))
    assert res.retrieval.recall == {"r_at_1": np.mean(ranks < 1), "r_at_5": np.mean(ranks < 5)}
    assert 0.1 < res.retrieval.recall["r_at_1"] < 0.95  # neither trivial nor hopeless
    assert gram([y, x], query=1, device="cpu").retrieval.recall == gram([x, y], device="cpu").retrieval.recall


class _Tiny:
    """A backend whose tiles force several query blocks and candidate chunks."""

    def __init__(self):
        self.inner = as_backend("cpu", "float64")

    def score_tiles(self, n, dim, **_):
        return 7, 13


def test_blocked_retrieval_equals_the_brute_force_volumes():
    rng = np.random.default_rng(5)
    n = 50
    base = rng.standard_normal((n, 6))
    sets = [l2_normalize(torch.as_tensor(base + 0.7 * rng.standard_normal((n, 6)))) for _ in range(3)]
    brute = np.array([[_vols(sets[0][i][None].numpy(), sets[1][j][None].numpy(), sets[2][j][None].numpy())[0]
                       for j in range(n)] for i in range(n)])
    want = np.array([np.sum(np.delete(brute[i], i) <= brute[i, i] + 1e-12) for i in range(n)])
    got = _retrieval_ranks(sets[0], sets[1:], _Tiny())
    np.testing.assert_array_equal(got, want)
    whole = _retrieval_ranks(sets[0], sets[1:], as_backend("cpu", "float64"))
    np.testing.assert_array_equal(got, whole)


def test_ties_count_against_the_query():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((30, 5))
    same = np.tile(rng.standard_normal(5), (30, 1))  # every candidate tuple is the same: all volumes tie
    res = gram([x, same, same + 1.0], device="cpu")
    assert res.retrieval.recall["r_at_1"] == 0.0 and res.retrieval.median_rank == 30


def test_bad_inputs_name_the_argument_or_file():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((10, 4)), rng.standard_normal((10, 5))
    with pytest.raises(InputError, match=r"inputs\[1\].*equal widths"):
        gram([a, b])
    with pytest.raises(InputError, match="at least 2"):
        gram([a])
    with pytest.raises(InputError, match="paired rows"):
        gram([a, a[:8]])
    with pytest.raises(InputError, match="^query"):
        gram([a, a], query="nope")
    with pytest.raises(InputError, match="^ks"):
        gram([a, a], ks=(0,))


def test_cli_table_json_and_errors(cli, tmp_path):
    rng = np.random.default_rng(8)
    base = rng.standard_normal((60, 8)).astype(np.float32)
    files = []
    for name in ("v", "a", "t"):
        files.append(tmp_path / f"{name}.npy")
        np.save(files[-1], base + 0.1 * rng.standard_normal((60, 8)).astype(np.float32))
    out = cli.json("gram", *files, "--query", files[2], "--k", "1,5")
    assert out["k"] == 3 and out["retrieval"]["query"].endswith("t.npy") and set(out["retrieval"]["recall"]) == {"r_at_1", "r_at_5"}
    assert out["retrieval"]["recall"]["r_at_1"] > 0.5  # shared base: the partner has the smallest volume
    assert "GRAM volume of 3 sets" in cli("gram", *files).stdout
    np.save(tmp_path / "narrow.npy", base[:, :4])
    res = cli("gram", files[0], tmp_path / "narrow.npy", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error:") and "narrow.npy" in res.stderr
    assert res.stderr.count("\n") == 1 and res.stdout == ""
    res = cli("gram", *files, "--query", "x.npy", ok=False)
    assert res.exit_code == 2 and res.stderr.startswith("error: --query")
    res = cli("gram", *files, "--k", "0", ok=False)
    assert res.exit_code == 2 and "--k" in res.stderr
