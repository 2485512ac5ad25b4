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
