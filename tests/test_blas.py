"""latentlab.blas.matmul: the same product whichever BLAS runs it, and top-k across its tiles."""
import numpy as np
import pytest
import torch

from latentlab import blas
from latentlab.compute import Backend
from latentlab.knn import topk_cosine


@pytest.fixture(params=["numpy", "torch"])
def cpu_blas(request, monkeypatch):
    monkeypatch.setattr(blas, "numpy_blas_on_cpu", lambda: request.param == "numpy")
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matmul_equals_torch(cpu_blas, dtype):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(37, 19, generator=g, dtype=dtype), torch.randn(23, 19, generator=g, dtype=dtype)
    want = (a.double() @ b.double().T)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    got = blas.matmul(a, b.T)  # a transposed view, as the callers pass it
    assert got.dtype == dtype and torch.allclose(got.double(), want, atol=tol)
    out = torch.full((40, 30), float("nan"), dtype=dtype)
    view = out[:37, :23]
    res = blas.matmul(a, b.T, out=view)
    assert res.data_ptr() == view.data_ptr() and torch.allclose(view.double(), want, atol=tol)
    assert torch.isnan(out[37:]).all() and torch.isnan(out[:, 23:]).all()  # nothing outside the view


def test_matmul_keeps_gradients_in_torch(monkeypatch):
    monkeypatch.setattr(blas, "numpy_blas_on_cpu", lambda: True)
    a = torch.randn(5, 3, requires_grad=True)
    blas.matmul(a, torch.ones(3, 2)).sum().backward()
    assert torch.allclose(a.grad, torch.full((5, 3), 2.0))


def test_env_override(monkeypatch):
    blas.numpy_blas_on_cpu.cache_clear()
    try:
        monkeypatch.setenv("LATENTLAB_CPU_BLAS", "torch")
        assert blas.numpy_blas_on_cpu() is False
        blas.numpy_blas_on_cpu.cache_clear()
        monkeypatch.setenv("LATENTLAB_CPU_BLAS", "numpy")
        assert blas.numpy_blas_on_cpu() is True
    finally:
        blas.numpy_blas_on_cpu.cache_clear()


@pytest.mark.parametrize("exclude_self", [False, True])
def test_topk_over_many_tiles_equals_dense(cpu_blas, exclude_self):
    # a 4 KiB budget makes the score tile a few columns wide inside each 1,024-row gallery chunk,
    # so a row's neighbours are merged across tiles and chunks; exclude_self crosses tile edges
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1100, 6))
    v, i = topk_cosine(x, x, 5, backend=Backend.make("cpu", "float64", block_bytes=4096), exclude_self=exclude_self)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = u @ u.T
    if exclude_self:
        np.fill_diagonal(s, -np.inf)
    want = np.argsort(-s, axis=1, kind="stable")[:, :5]
    assert np.array_equal(i, want)
    assert np.allclose(v, np.take_along_axis(s, want, 1), atol=1e-12)


def test_eigh_reconstructs(cpu_blas):
    a = torch.randn(50, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    S = a.T @ a
    lam, Q = blas.eigh(S)
    ref = torch.linalg.eigvalsh(S)
    assert lam.dtype == torch.float64 and torch.allclose(lam, ref, atol=1e-10)
    assert bool((lam[1:] >= lam[:-1]).all())  # ascending, as torch.linalg.eigh
    assert torch.allclose((Q * lam) @ Q.T, S, atol=1e-9) and torch.allclose(Q.T @ Q, torch.eye(9, dtype=torch.float64), atol=1e-12)


def test_svd_reconstructs(cpu_blas):
    M = torch.randn(8, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    U, S, Vh = blas.svd(M, full_matrices=False)
    assert U.shape == (8, 5) and torch.allclose(S, torch.linalg.svdvals(M), atol=1e-12)
    assert torch.allclose((U * S) @ Vh, M, atol=1e-12)
    U, S, Vh = blas.svd(M)  # full: square factors
    assert U.shape == (8, 8) and Vh.shape == (5, 5)


def test_svd_refuses_non_finite(cpu_blas):
    M = torch.eye(4, dtype=torch.float64)
    M[1, 2] = float("nan")
    with pytest.raises((np.linalg.LinAlgError, torch.linalg.LinAlgError, RuntimeError)):
        blas.svd(M)


@pytest.mark.parametrize("rows", [1, 1023, 1024, 1025, 5000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_column_sumsq_equals_float64(cpu_blas, rows, dtype):
    # across the runs of rows summed in the block dtype (blas._SUMSQ_ROWS) and on either path
    c = (torch.randn(rows, 7, generator=torch.Generator().manual_seed(rows), dtype=torch.float64) * 3 + 1).to(dtype)
    got = blas.column_sumsq(c)
    want = (c.double() ** 2).sum(0)
    assert got.dtype == torch.float64 and got.shape == (7,)
    tol = 2e-6 if dtype == torch.float32 else 1e-13
    assert torch.allclose(got, want, rtol=tol, atol=0)
    assert torch.equal(blas.column_sumsq(c[:, 2:5]), blas.column_sumsq(c[:, 2:5].contiguous()))  # strided view
