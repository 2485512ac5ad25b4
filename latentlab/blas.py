"""Which BLAS runs the large dense products on a CPU: the one place that decides it.

The CPU wheels of torch link Intel's MKL, and MKL picks slow generic kernels on AMD
processors: on this project's AMD EPYC (Zen 3, 2 cores) a float32 GEMM of the shapes that
matter here — (4096 × 512)·(512 × 4096) score tiles and (rows × d)ᵀ(rows × d) moment
updates — runs at 85–95 GFLOP/s in ``torch.mm`` and at 128–134 GFLOP/s in numpy's OpenBLAS
(``python bench/bench_retrieval.py`` measures both, next to faiss, which uses OpenBLAS too).
So on such a machine :func:`matmul` hands CPU tensors to numpy's BLAS through zero-copy views:
the data never leaves the tensors' memory and the result is a CPU tensor, so callers stay in
torch. Everywhere else (CUDA, Intel CPUs, a torch without MKL, a numpy without OpenBLAS,
tensors that need gradients) it is ``torch.matmul``.

The same holds for the symmetric eigensolver (:func:`eigh`): MKL's ``dsyevd`` synchronises
its two threads at every step of the tridiagonal reduction, so when another process holds one
core (a shared 2-core machine, a busy laptop) one 768 × 768 float64 eigh took 1–12 s, against
0.12 s idle; numpy's LAPACK took 0.66 s on the same loaded machine.

``LATENTLAB_CPU_BLAS=torch`` or ``=numpy`` overrides the choice (read once per process).
"""
from __future__ import annotations

import functools
import os

import numpy as np
import torch

_FLOATS = (torch.float32, torch.float64)


def matmul(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b`` for 2-D tensors, run by the faster BLAS on a CPU (see the module docstring).

    ``out``, when given, receives the product (it must have the product's shape and dtype).
    """
    if a.dim() == 2 and b.dim() == 2 and _numpy_path(a, b):
        # .numpy() shares memory and keeps strides, so a transposed view reaches BLAS as a
        # transpose flag, not a copy; numpy releases the GIL inside the GEMM
        if out is None:
            return torch.from_numpy(np.matmul(a.numpy(), b.numpy()))
        np.matmul(a.numpy(), b.numpy(), out=out.numpy())
        return out
    return a @ b if out is None else torch.mm(a, b, out=out)


def eigh(S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh(S)`` of a symmetric 2-D tensor (ascending eigenvalues, eigenvectors as
    columns), run by numpy's LAPACK where :func:`matmul` uses numpy's BLAS. Eigenvector signs
    are whatever the LAPACK returns: callers must not depend on them."""
    if _numpy_path(S):
        lam, Q = np.linalg.eigh(S.numpy())
        return torch.from_numpy(lam), torch.from_numpy(Q)
    return torch.linalg.eigh(S)


def svd(M: torch.Tensor, full_matrices: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``torch.linalg.svd(M)`` (U, S, Vh) of a 2-D tensor, by numpy's LAPACK where :func:`matmul`
    uses numpy's BLAS: MKL's 768 × 768 float64 SVD took 25 s with one core held by another
    process, numpy's 0.3 s. Singular-vector signs are the LAPACK's: callers fix them if needed.

    The numpy path calls the same ``gesdd`` through scipy on a private copy it may overwrite,
    in column-major order: 0.17 s against ``np.linalg.svd``'s 0.20 s for a 768 × 768 float64
    matrix (best of 7, idle)."""
    if _numpy_path(M):
        from scipy.linalg import svd as lapack_svd

        a = M.numpy()
        if not np.isfinite(a).all():  # as np.linalg.svd: unchecked, gesdd's output would be undefined
            raise np.linalg.LinAlgError("SVD of a matrix with NaN or infinite entries")
        U, S, Vh = lapack_svd(a.copy(order="F"), full_matrices=full_matrices, overwrite_a=True,
                              check_finite=False, lapack_driver="gesdd")
        return torch.from_numpy(U), torch.from_numpy(S), torch.from_numpy(Vh)
    return torch.linalg.svd(M, full_matrices=full_matrices)


#: rows per float32 partial sum in :func:`column_sumsq`: its rounding grows with the rows summed
#: in one run (1,024 rows: ≤ 1e-6 relative, measured against float64 on 10,000 × 768 blocks)
_SUMSQ_ROWS = 1024


def column_sumsq(c: torch.Tensor) -> torch.Tensor:
    """Σ_r c_r² per column of a 2-D tensor, in float64. Where :func:`matmul` uses numpy, it is
    numpy's one-pass ``einsum`` over runs of :data:`_SUMSQ_ROWS` rows, added in float64: 3.6 ms
    on a 10,000 × 768 float32 block against 5.9 ms for torch's square-then-sum, which writes
    the squares out first (a memory-bound pass over the block either way)."""
    if not _numpy_path(c) or c.dim() != 2:
        return (c * c).sum(dim=0).to(torch.float64)
    a = c.numpy()
    acc = np.zeros(a.shape[1], dtype=np.float64)
    for lo in range(0, a.shape[0], _SUMSQ_ROWS):
        part = a[lo : lo + _SUMSQ_ROWS]
        acc += np.einsum("ij,ij->j", part, part)
    return torch.from_numpy(acc)


def _numpy_path(*tensors: torch.Tensor) -> bool:
    """Whether these tensors go to numpy: CPU, one float dtype, no gradients, on a machine where
    :func:`numpy_blas_on_cpu` says so."""
    first = tensors[0]
    return (all(t.device.type == "cpu" and t.dtype == first.dtype and not t.requires_grad for t in tensors)
            and first.dtype in _FLOATS and numpy_blas_on_cpu())


@functools.lru_cache(maxsize=1)
def numpy_blas_on_cpu() -> bool:
    """Whether CPU products go to numpy's BLAS in this process (decided once, deterministic)."""
    choice = os.environ.get("LATENTLAB_CPU_BLAS", "").strip().lower()
    if choice in ("numpy", "torch"):
        return choice == "numpy"
    return amd_cpu() and torch.backends.mkl.is_available() and "openblas" in numpy_blas_name()


def numpy_blas_name() -> str:
    """The BLAS numpy was built with, lower case (``""`` when numpy does not say)."""
    try:
        return str(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]).lower()
    except Exception:  # numpy < 1.26 prints instead of returning; then keep torch
        return ""


def amd_cpu() -> bool:
    """An AMD x86 processor (Linux ``/proc/cpuinfo``; other systems report False)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return "AuthenticAMD" in line
    except OSError:
        pass
    return False


def describe() -> str:
    """One line for benchmark headers: which BLAS runs CPU products here."""
    return (f"numpy's BLAS ({numpy_blas_name() or 'unknown'})" if numpy_blas_on_cpu()
            else "torch.matmul (" + ("MKL" if torch.backends.mkl.is_available() else "its BLAS") + ")")
