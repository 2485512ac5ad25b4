import numpy as np
import pytest
import torch

from latentlab.analyze.probe import fit_logistic, linear_separability
from latentlab.compute import Backend


def test_logistic_matches_sklearn_objective():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    y = (x @ rng.normal(size=6) + 0.5 * rng.normal(size=300) > 0).astype(float)
    ref = sklearn.LogisticRegression(C=0.7, tol=1e-10, max_iter=10_000).fit(x, y)
    w, b = fit_logistic(torch.tensor(x), torch.tensor(y), c=0.7)
    np.testing.assert_allclose(w.numpy(), ref.coef_[0], atol=1e-5)
    assert float(b) == pytest.approx(ref.intercept_[0], abs=1e-5)


def test_separability_extremes():
    rng = np.random.default_rng(0)
    be = Backend.make("cpu", "float64")
    a = rng.normal(size=(200, 8)) + np.r_[5.0, np.zeros(7)]
    b = rng.normal(size=(200, 8)) - np.r_[5.0, np.zeros(7)]
    assert linear_separability(a, b, backend=be)["accuracy"] == 1.0
    same = linear_separability(a, rng.permutation(a), backend=be)["accuracy"]
    assert 0.3 < same < 0.7  # the same set twice cannot be told apart
    assert linear_separability(a[:4], b[:4], backend=be) is None


def test_the_probe_builds_no_torch_optimiser():
    """Constructing any torch optimiser imports torch._dynamo (2–3 s on a 2-core box) on every
    `gap`; the probe must stay on SciPy's L-BFGS-B. Checked in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from latentlab.analyze.probe import linear_separability; "
            "from latentlab.compute import Backend; rng = np.random.default_rng(0); "
            "r = linear_separability(rng.normal(size=(60, 4)) + 2, rng.normal(size=(60, 4)), "
            "backend=Backend.make('cpu', 'float64')); "
            "print(r['accuracy'], 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) > 0.9 and out[1] == "False"
