"""The exact uniformity's other code paths: large t (shifted log-sum-exp) and panel re-reads."""
import numpy as np
import pytest
import torch

from latentlab.analyze import uniformity as U


def reference(x: np.ndarray, t: float) -> float:
    """Wang & Isola's uniform_loss, in float64."""
    xt = torch.nn.functional.normalize(torch.tensor(x, dtype=torch.float64), dim=1)
    return float(torch.pdist(xt, p=2).pow(2).mul(-t).exp().mean().log())


@pytest.mark.parametrize("t,dtype,tol", [(40.0, "float32", 1e-5), (400.0, "float64", 1e-10)])
def test_large_t_uses_the_shifted_path_and_stays_exact(t, dtype, tol):
    x = np.random.default_rng(0).normal(size=(300, 16))
    got = U.uniformity(x, t=t, dtype=dtype, device="cpu").uniformity
    assert got == pytest.approx(reference(x, t), abs=tol, rel=tol)


def test_panel_rereads_give_the_same_value(monkeypatch):
    x = np.random.default_rng(1).normal(size=(700, 24))
    full = U.uniformity(x, dtype="float64", device="cpu").uniformity
    monkeypatch.setattr(U, "CACHE_BYTES", 1024)  # force the re-read-in-panels path
    monkeypatch.setattr(U, "PANEL_BYTES", 24 * 8 * 50)
    paneled = U.uniformity(x, dtype="float64", device="cpu", tile=128).uniformity
    assert paneled == pytest.approx(full, abs=1e-12)
    assert paneled == pytest.approx(reference(x, 2.0), abs=1e-10)
