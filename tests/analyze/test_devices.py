"""Every resampling and calibration path keeps its tensors on the chosen device and agrees with
the CPU to float32 tolerance (the CUDA cases skip without a GPU; `bench/gpu_check.sh` runs them)."""
from __future__ import annotations

import numpy as np
import pytest

import latentlab
from latentlab.results import Estimate


def pair(seed=0, n=240, d=12):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, (x @ rng.normal(size=(d, d)) + rng.normal(size=(n, d))).astype(np.float32)


def close(a, b, tol=2e-4):
    if isinstance(a, Estimate):
        assert (a.value, a.ci_low, a.ci_high) == pytest.approx((b.value, b.ci_low, b.ci_high), abs=tol)
    elif a is None or b is None:
        assert a is b
    else:
        assert float(a) == pytest.approx(float(b), abs=tol)


CASES = {
    "cka bootstrap/calibrate": lambda x, y, dev: latentlab.cka(x, y, bootstrap=30, permutations=19, calibrate=19,
                                                               device=dev).cka,
    "debiased cka bootstrap": lambda x, y, dev: latentlab.cka(x, y, debiased=True, bootstrap=30, device=dev).cka,
    "rbf cka": lambda x, y, dev: latentlab.cka(x, y, kernel="rbf", permutations=9, device=dev).cka,
    "spectrum bootstrap": lambda x, y, dev: latentlab.spectrum(x, bootstrap=20, device=dev).effective_rank,
    "overlap bootstrap": lambda x, y, dev: latentlab.overlap(x, y, rank=4, bootstrap=20, calibrate=19,
                                                             device=dev).svcca,
    "overlap procrustes": lambda x, y, dev: latentlab.overlap(x, y, k=5, device=dev).procrustes_angle_rad,
    "uniformity bootstrap": lambda x, y, dev: latentlab.uniformity(x, y, bootstrap=20, device=dev).uniformity,
    "gap bootstrap": lambda x, y, dev: latentlab.gap(x, y, bootstrap=20, separability=False,
                                                     device=dev).centroid_distance,
}


@pytest.mark.parametrize("name", list(CASES))
def test_paths_agree_with_the_cpu(device, name):
    x, y = pair()
    close(CASES[name](x, y, device), CASES[name](x, y, "cpu"))


def test_every_registered_measure_and_its_calibration_on_the_device(device):
    x, y = pair(1, n=120, d=6)
    names = list(latentlab.MEASURES)
    res = latentlab.similarity(x, y, names, calibrate=19, device=device)
    ref = latentlab.similarity(x, y, names, calibrate=19, device="cpu")
    for a, b in zip(res.scores, ref.scores):
        close(a.value, b.value, tol=1e-3)
        assert a.calibration.p_value == pytest.approx(b.calibration.p_value)


# ----------------------------------------------------------------- one place decides block sizes
def test_block_budgets_are_decided_per_device():
    import torch

    from latentlab.compute import (CPU_BLOCK_BYTES, CPU_PAIR_TILE, CUDA_BLOCK_BYTES, CUDA_PAIR_TILE, Backend,
                                   default_block_bytes, pair_tile)

    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
    assert default_block_bytes(cpu) == CPU_BLOCK_BYTES and default_block_bytes(cuda) == CUDA_BLOCK_BYTES
    assert pair_tile(cpu) == CPU_PAIR_TILE and pair_tile(cuda) == CUDA_PAIR_TILE
    assert Backend.make("cpu").block_bytes == CPU_BLOCK_BYTES
    gpu = Backend(cuda, torch.float32, default_block_bytes(cuda))
    assert gpu.block_rows(512) == CUDA_BLOCK_BYTES // (512 * 4) > Backend.make("cpu").block_rows(512)


@pytest.mark.parametrize("dtype,n_gallery,dim", [("float32", 10, 8), ("float32", 10**6, 512), ("float64", 50000, 64)])
def test_score_tiles_fit_the_budget(dtype, n_gallery, dim):
    from latentlab.compute import MAX_TILE_ROWS, Backend

    b = Backend.make("cpu", dtype, block_bytes=2**20)
    rows, chunk = b.score_tiles(n_gallery, dim)
    assert 1 <= chunk <= n_gallery and 1 <= rows <= MAX_TILE_ROWS
    assert chunk == min(n_gallery, max(2048, b.block_rows(dim)))
    assert rows == 1 or rows * chunk * b.itemsize <= b.block_bytes  # the score tile fits
    assert b.score_tiles(n_gallery, dim, chunk=7)[1] == min(7, n_gallery)


def test_tensor_moves_tensors_and_copies_read_only_blocks(device, tmp_path):
    import warnings

    import torch

    from latentlab.compute import Backend

    np.save(tmp_path / "a.npy", np.arange(12, dtype=np.float32).reshape(4, 3))
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")  # how inputs are read: read-only
    b = Backend.make(device, "float32")  # the file's own dtype: on the CPU a view would be shared
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "not writable" warning must not fire
        t = b.tensor(mm[1:3])
    assert t.device.type == device and t.dtype == torch.float32 and t.tolist() == mm[1:3].tolist()
    t += 1  # a copy: the file's pages are never written
    assert float(mm[1, 0]) == 3.0
    same = b.tensor(t)
    assert same.device == t.device and torch.equal(same, t)
