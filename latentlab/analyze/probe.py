"""Linear separability of two sets: held-out accuracy of a logistic-regression probe.

A set of embeddings that a linear classifier can tell apart from another is separated by
a hyperplane; for two modalities this is the modality gap "as a classifier sees it"
(Liang et al., NeurIPS 2022, §4; Shi et al., ICLR 2023 use the same probe).
"""
from __future__ import annotations

import numpy as np
import torch

from ..compute import Backend, l2_normalize


def fit_logistic(x: torch.Tensor, y: torch.Tensor, *, c: float = 1.0, max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-regularised binary logistic regression, scikit-learn's objective and solver.

    Minimises ``C·Σ logloss + ½‖w‖²`` (bias unpenalised), the objective of
    ``sklearn.linear_model.LogisticRegression(C=c)``, with SciPy's L-BFGS-B as scikit-learn's
    default ``lbfgs`` solver does; returns ``(w, b)`` on ``x``'s device.

    The rows stay on their device: each evaluation forms the loss and its closed-form gradient
    there and hands SciPy the d + 1 numbers. (``torch.optim.LBFGS`` would do the same work, but
    building any torch optimiser imports ``torch._dynamo``: 2–3 s added to every ``gap``.)
    """
    from scipy.optimize import minimize

    n, d = x.shape
    scale = 1.0 / (c * n)  # divide the objective by C·n: same minimiser, better conditioned

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.as_tensor(theta, dtype=x.dtype, device=x.device)
        w, b = t[:d], t[d]
        z = x @ w + b
        # log(1 + e^z) − y·z, stably: max(z, 0) + log1p(e^−|z|) − y·z
        loss = (z.clamp_min(0) + torch.log1p(torch.exp(-z.abs())) - y * z).mean() + 0.5 * scale * (w @ w)
        r = (torch.sigmoid(z) - y) / n
        grad = torch.cat([x.T @ r + scale * w, r.sum()[None]])
        return float(loss), grad.to(device="cpu", dtype=torch.float64).numpy()

    res = minimize(loss_grad, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": 1e-9, "ftol": 64 * np.finfo(float).eps})
    theta = torch.as_tensor(res.x, dtype=x.dtype, device=x.device)
    return theta[:d].clone(), theta[d].clone()


def linear_separability(a, b, *, backend: Backend, folds: int = 5, max_per_set: int = 5000,
                        seed: int = 0, c: float = 1.0) -> dict | None:
    """Mean held-out accuracy of a linear probe telling rows of ``a`` from rows of ``b``.

    Rows are L2-normalised. Classes are balanced by drawing ``m = min(n_a, n_b,
    max_per_set)`` rows from each set (seeded); the ``2m`` rows are split into ``folds``
    stratified folds, features standardised with the training fold's statistics. 0.5 means
    inseparable, 1.0 perfectly separable.

    Returns ``None`` when a set has fewer rows than folds.
    """
    m = min(len(a), len(b), max_per_set)
    if m < folds:
        return None
    rng = np.random.default_rng(seed)
    pick_a = np.sort(rng.choice(len(a), m, replace=False))
    pick_b = np.sort(rng.choice(len(b), m, replace=False))
    dtype = torch.float64
    xa = l2_normalize(torch.as_tensor(np.asarray(a[pick_a]), dtype=dtype, device=backend.device))
    xb = l2_normalize(torch.as_tensor(np.asarray(b[pick_b]), dtype=dtype, device=backend.device))
    fold_a = rng.permutation(m) % folds
    fold_b = rng.permutation(m) % folds
    accs = []
    for f in range(folds):
        tr_a, te_a = xa[torch.as_tensor(fold_a != f)], xa[torch.as_tensor(fold_a == f)]
        tr_b, te_b = xb[torch.as_tensor(fold_b != f)], xb[torch.as_tensor(fold_b == f)]
        x_tr = torch.cat([tr_a, tr_b])
        y_tr = torch.cat([torch.ones(len(tr_a)), torch.zeros(len(tr_b))]).to(x_tr)
        mu, sd = x_tr.mean(0), x_tr.std(0).clamp_min(1e-12)
        w, bias = fit_logistic((x_tr - mu) / sd, y_tr, c=c)
        x_te = (torch.cat([te_a, te_b]) - mu) / sd
        y_te = torch.cat([torch.ones(len(te_a)), torch.zeros(len(te_b))]).to(x_te)
        pred = (x_te @ w + bias > 0).to(x_te)
        accs.append(float((pred == y_te).to(dtype).mean()))
    return {"accuracy": float(np.mean(accs)), "std": float(np.std(accs)), "rows_per_set": m, "folds": folds}
