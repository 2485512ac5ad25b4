"""Optimal-transport alignment without pairs: Wasserstein-Procrustes with a GW start.

Alternates (i) an optimal-transport matching between the rotated source rows and the target
rows — exact ``emd`` for small problems, entropic ``sinkhorn`` otherwise — with (ii) an
orthogonal Procrustes fit on the matched (plan-weighted) pairs, minimising
``min_R min_P Σ P_ij ‖x_i R − y_j‖²`` (Grave et al. 2019; full batches here, not
mini-batches). The first rotation comes from a Gromov-Wasserstein coupling between the
two sets' own distance matrices (Alvarez-Melis & Jaakkola 2018), which needs no shared
coordinates; it is computed on at most ``gw_rows`` rows per side, because GW is cubic.
Seed pairs (anchors) make it semi-supervised: they initialise R and keep pulling on it.

Solvers come from POT; tensors go through POT's torch backend, so ``sinkhorn`` and GW run
on the GPU when the device is CUDA (``emd`` is POT's C++ network simplex on the CPU).

References
----------
Grave, Joulin & Berthet, "Unsupervised Alignment of Embeddings with Wasserstein
Procrustes", AISTATS 2019.
Alvarez-Melis & Jaakkola, "Gromov-Wasserstein Alignment of Word Embedding Spaces",
EMNLP 2018.
Cuturi, "Sinkhorn Distances: Lightspeed Computation of Optimal Transport", NeurIPS 2013.
Flamary et al., "POT: Python Optimal Transport", JMLR 22(78), 2021.
"""
from __future__ import annotations

import numpy as np
import torch

from ..compute import Backend, stream_moments
from ..errors import InputError
from .base import DirectAligner, register
from .procrustes import procrustes_rotation

#: "auto" uses exact emd while n·m is at most this, sinkhorn beyond
EMD_MAX_CELLS = 1500 * 1500
SOLVERS = ("auto", "emd", "sinkhorn")


def _ot():
    import ot  # POT; imported lazily (slow import)

    return ot


def sq_dists(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """‖a_i − b_j‖² (n × m), clamped at 0 against round-off."""
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * (A @ B.T)
    return d.clamp_min_(0.0)


def transport_plan(C: torch.Tensor, solver: str, reg: float) -> torch.Tensor:
    """OT plan between uniform marginals for cost ``C`` (torch; POT picks the backend).

    Sinkhorn sees ``C / max(C)`` so ``reg`` is relative to the cost range; if
    ``exp(−C/reg)`` still underflows for some row or column the problem is refused.
    """
    ot = _ot()
    n, m = C.shape
    a = torch.full((n,), 1.0 / n, dtype=C.dtype, device=C.device)
    b = torch.full((m,), 1.0 / m, dtype=C.dtype, device=C.device)
    if solver == "emd":
        return ot.emd(a, b, C, numItermax=max(100000, 50 * n * m))
    top = float(C.max())
    Cn = C / top if top > 0 else C
    # a row/column whose smallest cost is ≥ ~700·reg has exp(−c/reg) == 0 everywhere in float64
    worst = max(float(Cn.min(1).values.max()), float(Cn.min(0).values.max()))
    limit = -np.log(np.finfo(np.float64).tiny)
    if worst / reg > limit:
        raise InputError(f"sinkhorn: exp(-cost/reg) underflows to 0 for some rows even after normalising the cost "
                         f"(min cost {worst:.3g} / reg {reg:g} > {limit:.0f}); raise --reg or use --method emd")
    P = ot.sinkhorn(a, b, Cn, reg, numItermax=2000, stopThr=1e-7, warn=False)
    if not bool(torch.isfinite(P).all()) or float(P.sum()) <= 0:
        raise InputError(f"sinkhorn: the plan underflowed (reg {reg:g} is too small for this cost); "
                         f"raise --reg or use --method emd")
    return P


def gw_coupling(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Gromov-Wasserstein coupling of two point sets from their normalised squared-distance
    matrices (square loss, conditional gradient; POT's ``gromov_wasserstein``)."""
    ot = _ot()
    C1, C2 = sq_dists(X, X), sq_dists(Y, Y)
    C1 = C1 / C1.max().clamp_min(1e-300)
    C2 = C2 / C2.max().clamp_min(1e-300)
    p = torch.full((len(X),), 1.0 / len(X), dtype=X.dtype, device=X.device)
    q = torch.full((len(Y),), 1.0 / len(Y), dtype=Y.dtype, device=Y.device)
    return ot.gromov.gromov_wasserstein(C1, C2, p, q, "square_loss", max_iter=200)


def _pad(x: torch.Tensor, D: int) -> torch.Tensor:
    return x if x.shape[1] == D else torch.nn.functional.pad(x, (0, D - x.shape[1]))


def wasserstein_procrustes(X: np.ndarray, Y: np.ndarray, *, solver: str = "auto", reg: float = 0.05,
                           iters: int = 20, gw_rows: int = 1000, seed: int = 0, pairs: np.ndarray | None = None,
                           pair_weight: float = 1.0, device="auto") -> dict:
    """Orthogonal R (D × D) and the final plan for preprocessed rows X (n × dx), Y (m × dy).

    ``pairs`` (k × 2 index array) are known (source row, target row) pairs. Returns a dict
    with ``R``, ``plan`` (torch, n × m), ``solver``, ``iterations``, ``converged``, ``cost``.
    """
    backend = Backend.make(device, "float64")
    n, m = len(X), len(Y)
    if solver == "auto":
        solver = "emd" if n * m <= EMD_MAX_CELLS else "sinkhorn"
    D = max(X.shape[1], Y.shape[1])
    Xt, Yt = _pad(backend.tensor(X), D), _pad(backend.tensor(Y), D)
    rng = np.random.default_rng(seed)
    M_pairs = None
    if pairs is not None and len(pairs):
        M_pairs = (Xt[pairs[:, 0]].T @ Yt[pairs[:, 1]]).cpu().numpy()
    if M_pairs is not None and len(pairs) >= 2:
        R, _ = procrustes_rotation(M_pairs)
        init = "seed pairs"
    else:
        si = np.sort(rng.choice(n, min(n, gw_rows), replace=False))
        sj = np.sort(rng.choice(m, min(m, gw_rows), replace=False))
        G = gw_coupling(Xt[si], Yt[sj])
        R, _ = procrustes_rotation((Xt[si].T @ G @ Yt[sj]).cpu().numpy())
        init = f"gromov-wasserstein on {len(si)} × {len(sj)} rows"
    prev, converged, P, it = None, False, None, 0
    for it in range(1, iters + 1):
        Rt = torch.as_tensor(R, dtype=Xt.dtype, device=Xt.device)
        C = sq_dists(Xt @ Rt, Yt)
        P = transport_plan(C, solver, reg)
        M = (Xt.T @ (P * n) @ Yt).cpu().numpy()
        if M_pairs is not None:
            M = M + pair_weight * M_pairs
        R, _ = procrustes_rotation(M)
        assign = P.argmax(dim=1).cpu().numpy()
        if prev is not None and np.array_equal(assign, prev):
            converged = True
            break
        prev = assign
    cost = float((P * sq_dists(Xt @ torch.as_tensor(R, dtype=Xt.dtype, device=Xt.device), Yt)).sum())
    return {"R": R, "plan": P, "solver": solver, "iterations": it, "converged": converged,
            "cost": cost, "init": init}


@register
class OTAligner(DirectAligner):
    """Unsupervised Wasserstein-Procrustes map (orthogonal), GW-initialised; optional seed pairs."""

    method = "ot"
    paired = False
    PRE = {"l2": True, "center": True}
    PARAMS = {"solver": "auto", "reg": 0.05, "iters": 20, "gw_rows": 1000, "seed": 0}
    warn_underdetermined = False

    def _check_params(self):
        p = self.params
        if p["solver"] not in SOLVERS:
            raise InputError(f"--solver {p['solver']!r}: expected one of {', '.join(SOLVERS)}")
        if not float(p["reg"]) > 0:
            raise InputError(f"--reg {p['reg']}: must be > 0")
        if int(p["iters"]) < 1:
            raise InputError(f"--iters {p['iters']}: must be ≥ 1")
        if int(p["gw_rows"]) < 2:
            raise InputError(f"--gw-rows {p['gw_rows']}: must be ≥ 2")

    def _fit(self, X, Y, backend):
        for emb in (X, Y):
            if emb.n < 2:
                raise InputError(f"{emb.name}: ot needs at least 2 rows per side, got {emb.n}")
        for pre, emb in ((self.pre_x_, X), (self.pre_y_, Y)):
            mom = stream_moments(emb.data, backend=backend, second=False,
                                 transform=(lambda t: t / t.norm(dim=1, keepdim=True).clamp_min(1e-12)) if pre.l2 else None)
            pre.set_stats(mom.mean(0).cpu().numpy(), np.ones(emb.dim))
        Xp, Yp = self.pre_x_.apply(np.asarray(X.data)), self.pre_y_.apply(np.asarray(Y.data))
        pairs = None
        if self.anchor_indices_ is not None:
            pairs = np.stack([self.anchor_indices_, self.anchor_indices_], axis=1)
        p = self.params
        res = wasserstein_procrustes(Xp, Yp, solver=p["solver"], reg=float(p["reg"]), iters=int(p["iters"]),
                                     gw_rows=int(p["gw_rows"]), seed=int(p["seed"]), pairs=pairs, device=self.device)
        self.R_ = res["R"]
        self.W_ = res["R"][: X.dim, : Y.dim]
        self.n_anchors_ = 0 if pairs is None else len(pairs)
        self.fit_stats_ = {"n_source": X.n, "n_target": Y.n, "solver": res["solver"],
                           "iterations": res["iterations"], "converged": res["converged"],
                           "transport_cost": res["cost"], "init": res["init"], "n_seed_pairs": self.n_anchors_}
