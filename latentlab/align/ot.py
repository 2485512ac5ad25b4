"""Optimal-transport alignment without pairs: Wasserstein-Procrustes with a GW start.

Solves ``min_R min_P Σ P_ij ‖x_i R − y_j‖²`` over orthogonal R and transport plans P between
uniform marginals (Grave, Joulin & Berthet 2019) in two stages:

1. **Start.** Like Grave et al. and Alvarez-Melis & Jaakkola, who start from the most frequent
   words of each language (a subset that corresponds across the two sides), the start is
   computed on a subset chosen the same way on both sides without shared coordinates: the
   ``gw_rows`` rows farthest from their side's centroid (distance to the centroid is invariant
   to rotations and permutations, so both sides pick mostly the same items; random samples
   would be different items, and the start would be wrong). On these rows a
   Gromov-Wasserstein coupling of the normalised squared-distance matrices (square loss,
   conditional gradient; Alvarez-Melis & Jaakkola 2018) is started from the optimal matching
   of each row's sorted distance profile — the coupling of Mémoli's third lower bound (TLB),
   rotation-invariant and close to the answer, which keeps GW out of poor local optima. The
   first rotation is the orthogonal Procrustes fit on the coupled rows.
2. **Refinement on the full sets.** Alternate an OT matching of the rotated source rows with
   all target rows — exact ``emd`` while n·m ≤ ``EMD_MAX_CELLS``, else entropic ``sinkhorn``
   on the cost divided by its maximum, warm-started from the previous dual potentials, stopped
   at a relative marginal error of 1e-4 and run in float32 when ``reg`` ≥ 0.025 — with
   an orthogonal Procrustes fit on the plan-weighted pairs (``R = polar(Xᵀ P Y)``). Stops when
   the row-wise assignment (argmax of the plan) and the rotation stop changing, or after
   ``iters`` rounds. This is Grave et al.'s objective solved with full batches (their Algorithm 1
   uses stochastic mini-batches); the plan is dense (n × m), so memory is quadratic.

Seed pairs (anchors) make it semi-supervised: they give the start and keep pulling on R.
Everything is deterministic (no sampling), so ``seed`` only matters to anchor selection.
Solvers come from POT; tensors go through POT's torch backend, so ``sinkhorn`` and GW run
on the GPU when the device is CUDA (``emd`` is POT's C++ network simplex on the CPU).

References
----------
Grave, Joulin & Berthet, "Unsupervised Alignment of Embeddings with Wasserstein
Procrustes", AISTATS 2019.
Alvarez-Melis & Jaakkola, "Gromov-Wasserstein Alignment of Word Embedding Spaces",
EMNLP 2018.
Mémoli, "Gromov–Wasserstein distances and the metric approach to object matching",
Foundations of Computational Mathematics 11, 2011 (third lower bound, TLB).
Cuturi, "Sinkhorn Distances: Lightspeed Computation of Optimal Transport", NeurIPS 2013.
Flamary et al., "POT: Python Optimal Transport", JMLR 22(78), 2021.
"""
from __future__ import annotations

import numpy as np
import torch

from ..blas import matmul
from ..compute import Backend, l2_normalize, stream_moments
from ..errors import InputError
from ..io import validate
from .base import DirectAligner, opt, register
from .procrustes import procrustes_rotation

#: "auto" uses exact emd while n·m is at most this, sinkhorn beyond
EMD_MAX_CELLS = 3000 * 3000
SOLVERS = ("auto", "emd", "sinkhorn")
#: refinement stops once no entry of R moves by more than ROTATION_TOL, or by more than
#: STABLE_STEP while the row-wise assignment repeats
ROTATION_TOL = 1e-9
STABLE_STEP = 1e-4
#: sinkhorn inside the alternation stops when ‖marginal error‖₂ ≤ this × ‖b‖₂
SINKHORN_REL_TOL = 1e-4
#: inside the alternation, sinkhorn with reg ≥ this runs its cost and kernel in float32 (half
#: the memory traffic of the n × m matvecs that dominate it; exp(−1/reg) ≥ e^−40 stays far
#: from float32's underflow). The plan only feeds a Procrustes fit, which needs ~1e-6, not 1e-16.
SINKHORN_F32_MIN_REG = 0.025


def _ot():
    import ot  # POT; imported lazily (slow import)

    return ot


def sq_dists(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """‖a_i − b_j‖² (n × m), clamped at 0 against round-off."""
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * matmul(A, B.T)
    return d.clamp_min_(0.0)


def transport_plan(C: torch.Tensor, solver: str, reg: float, *, warmstart=None, potentials: bool = False,
                   stop_thr: float = 1e-7):
    """OT plan between uniform marginals for cost ``C`` (torch; POT picks the backend).

    Sinkhorn sees ``C / max(C)`` so ``reg`` is relative to the cost range; if
    ``exp(−C/reg)`` still underflows for some row or column the problem is refused.
    With ``potentials`` returns ``(plan, (log u, log v))`` for a warm start of the next
    sinkhorn call (``None`` for emd). ``stop_thr``: POT's stopping threshold on the L2 norm
    of the column-marginal error.
    """
    ot = _ot()
    n, m = C.shape
    a = torch.full((n,), 1.0 / n, dtype=C.dtype, device=C.device)
    b = torch.full((m,), 1.0 / m, dtype=C.dtype, device=C.device)
    if solver == "emd":
        P = ot.emd(a, b, C, numItermax=max(100000, 50 * n * m))
        return (P, None) if potentials else P
    # two passes over the n × m cost for its max and the rows' and columns' minima (each pass
    # over a 5,000² float64 cost is ~200 MB of reads; POT's own call makes none of them)
    row_min, row_max = torch.aminmax(C, dim=1)
    top = float(row_max.max())
    Cn = C / top if top > 0 else C
    # a row/column whose smallest cost is ≥ ~700·reg has exp(−c/reg) == 0 everywhere in float64
    worst = max(float(row_min.max()), float(C.min(0).values.max())) / (top if top > 0 else 1.0)
    limit = -np.log(torch.finfo(C.dtype).tiny)
    if worst / reg > limit:
        raise InputError(f"sinkhorn: exp(-cost/reg) underflows to 0 for some rows even after normalising the cost "
                         f"(min cost {worst:.3g} / reg {reg:g} > {limit:.0f}); raise `reg` or use `method` emd")
    P, log = ot.sinkhorn(a, b, Cn, reg, numItermax=2000, stopThr=stop_thr, warn=False, log=True, warmstart=warmstart)
    total = float(P.sum())  # the plan is ≥ 0, so one NaN or inf entry makes its sum non-finite
    if not np.isfinite(total) or total <= 0:
        raise InputError(f"sinkhorn: the plan underflowed (reg {reg:g} is too small for this cost); "
                         f"raise `reg` or use `method` emd")
    if not potentials:
        return P
    tiny = torch.finfo(C.dtype).tiny
    return P, (torch.log(log["u"].clamp_min(tiny)), torch.log(log["v"].clamp_min(tiny)))


def gw_coupling(X: torch.Tensor, Y: torch.Tensor, *, tlb_start: bool = True) -> torch.Tensor:
    """Gromov-Wasserstein coupling of two point sets from their normalised squared-distance
    matrices (square loss, conditional gradient; POT's ``gromov_wasserstein``).

    With ``tlb_start`` (and equal sizes) the solver starts from the optimal matching of the
    rows' sorted distance profiles (Mémoli's TLB) instead of the product coupling.
    """
    ot = _ot()
    C1, C2 = sq_dists(X, X), sq_dists(Y, Y)
    C1 = C1 / C1.max().clamp_min(1e-300)
    C2 = C2 / C2.max().clamp_min(1e-300)
    p = torch.full((len(X),), 1.0 / len(X), dtype=X.dtype, device=X.device)
    q = torch.full((len(Y),), 1.0 / len(Y), dtype=Y.dtype, device=Y.device)
    G0 = tlb_coupling(C1, C2) if tlb_start and len(X) == len(Y) else None
    return ot.gromov.gromov_wasserstein(C1, C2, p, q, "square_loss", G0=G0, max_iter=200)


def tlb_coupling(C1: torch.Tensor, C2: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """Exact OT coupling for the cost ``W1(profile_i, profile_j)`` between the sorted distance
    profiles of row i (of C1) and row j (of C2): the inner problem of Mémoli's third lower
    bound, rotation- and permutation-invariant. Equal set sizes (uniform weights)."""
    ot = _ot()
    s = len(C1)
    q1 = torch.sort(C1.clamp_min(0).sqrt(), dim=1).values
    q2 = torch.sort(C2.clamp_min(0).sqrt(), dim=1).values
    cost = torch.empty((s, s), dtype=C1.dtype, device=C1.device)
    block = block or Backend.make(C1.device, C1.dtype).block_rows(s, copies=2)
    for lo in range(0, s, block):  # chunked: the s × s × s difference tensor is never formed
        cost[lo : lo + block] = torch.cdist(q1[lo : lo + block], q2, p=1) / s
    w = torch.full((s,), 1.0 / s, dtype=C1.dtype, device=C1.device)
    return ot.emd(w, w, cost)


def farthest_rows(X: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (ascending) of the ``k`` rows farthest from the set's centroid — a subset chosen
    by a rotation- and permutation-invariant rule, ties broken by row order."""
    if k >= len(X):
        return torch.arange(len(X), device=X.device)
    r = (X - X.mean(0)).norm(dim=1)
    order = torch.sort(-r, stable=True).indices[:k]
    return torch.sort(order).values


def _pad(x: torch.Tensor, D: int) -> torch.Tensor:
    return x if x.shape[1] == D else torch.nn.functional.pad(x, (0, D - x.shape[1]))


def wasserstein_procrustes(X, Y, *, solver: str = "auto", reg: float = 0.05,
                           iters: int = 20, gw_rows: int = 1000, seed: int = 0, pairs: np.ndarray | None = None,
                           pair_weight: float = 1.0, device="auto") -> dict:
    """Orthogonal R (D × D) and the final plan for preprocessed rows X (n × dx), Y (m × dy)
    (tensors or arrays; everything runs in float64 — float32 for large-reg sinkhorn — on
    ``device``).

    ``pairs`` (k × 2 index array) are known (source row, target row) pairs. Returns a dict
    with ``R`` and ``plan`` (float64 tensors on the device, D × D and n × m), ``solver``,
    ``iterations``, ``converged``, ``cost``, ``init``. ``seed`` is accepted for API symmetry;
    nothing here is random.
    """
    backend = Backend.make(device, "float64")
    n, m = len(X), len(Y)
    if solver == "auto":
        solver = "emd" if n * m <= EMD_MAX_CELLS else "sinkhorn"
    D = max(X.shape[1], Y.shape[1])
    Xt, Yt = _pad(backend.tensor(X), D), _pad(backend.tensor(Y), D)
    M_pairs = None
    if pairs is not None and len(pairs):
        pi = torch.as_tensor(np.asarray(pairs, dtype=np.int64), device=Xt.device)
        M_pairs = Xt[pi[:, 0]].T @ Yt[pi[:, 1]]
    if M_pairs is not None and len(pairs) >= 2:
        R, _ = procrustes_rotation(M_pairs)
        init = "seed pairs"
    else:
        s = min(n, m, gw_rows)
        si, sj = farthest_rows(Xt, s), farthest_rows(Yt, s)
        G = gw_coupling(Xt[si], Yt[sj])
        R, _ = procrustes_rotation(Xt[si].T @ G @ Yt[sj])
        init = f"gromov-wasserstein (TLB start) on the {s} rows per side farthest from the centroid"
    # the marginals are 1/m each: stop sinkhorn at a relative marginal error (a fixed 1e-7 needs
    # thousands of n × m matvecs at n = 5000 and moves R by nothing measurable)
    stop_thr = SINKHORN_REL_TOL / np.sqrt(m)
    work = torch.float32 if solver == "sinkhorn" and reg >= SINKHORN_F32_MIN_REG else Xt.dtype
    Xw, Yw = Xt.to(work), Yt.to(work)
    prev, converged, P, it, warm = None, False, None, 0, None
    for it in range(1, iters + 1):
        C = sq_dists(matmul(Xw, R.to(work)), Yw)
        P, warm = transport_plan(C, solver, reg, warmstart=warm, potentials=True, stop_thr=stop_thr)
        del C
        M = matmul(Xw.T, matmul(P, Yw)).to(torch.float64).mul_(n)  # Σ_ij n·P_ij x_i y_jᵀ
        if M_pairs is not None:
            M = M + pair_weight * M_pairs
        R_new, _ = procrustes_rotation(M)
        step = float((R_new - R).abs().max())
        R = R_new
        assign = P.argmax(dim=1)
        stable = prev is not None and bool(torch.equal(assign, prev))
        # emd plans are permutations, so a repeated assignment is a fixed point (step 0);
        # sinkhorn plans are blurred and R creeps on, so a stable assignment plus a small step ends it
        if step <= ROTATION_TOL or (stable and step <= STABLE_STEP):
            converged = True
            break
        prev = assign
    cost = float((P * sq_dists(matmul(Xw, R.to(work)), Yw)).sum(dtype=torch.float64))
    P = P.to(torch.float64)
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

    def __init__(self, *, solver="auto", reg=0.05, iters=20, gw_rows=1000, seed=0, l2=None, center=None, standardize=None, device="auto", dtype="float32"):
        self.solver = solver
        self.reg = reg
        self.iters = iters
        self.gw_rows = gw_rows
        self.seed = seed
        super().__init__(l2=l2, center=center, standardize=standardize, device=device, dtype=dtype)

    def _check_params(self, p):
        if p["solver"] not in SOLVERS:
            raise InputError(f"{opt('solver', p['solver'])}: expected one of {', '.join(SOLVERS)}")
        for name, lo, conv in (("reg", None, float), ("iters", 1, int), ("gw_rows", 2, int), ("seed", 0, int)):
            v = p[name]
            try:
                ok = not isinstance(v, (bool, np.bool_)) and conv(v) == v and (
                    conv(v) > 0 if lo is None else conv(v) >= lo)
            except (TypeError, ValueError, OverflowError):
                ok = False
            if not ok or (conv is float and not np.isfinite(float(v))):
                need = "a number > 0" if lo is None else f"an integer ≥ {lo}"
                raise InputError(f"{opt(name, v)}: must be {need}")
            p[name] = conv(v)
        return p

    def _fit(self, X, Y, backend):
        for emb in (X, Y):
            validate(emb)  # OT holds both sets in memory anyway; name a NaN row up front
            if emb.n < 2:
                raise InputError(f"{emb.name}: ot needs at least 2 rows per side, got {emb.n}")
        exact = Backend.make(self.device, "float64")  # OT's closed forms and plans run in float64
        rows = []
        for pre, emb in ((self.pre_x_, X), (self.pre_y_, Y)):
            mom = stream_moments(emb.data, backend=exact, second=False, transform=l2_normalize if pre.l2 else None)
            pre.set_stats(mom.mean(0), np.ones(emb.dim))
            rows.append(pre.on(exact).apply(exact.tensor(emb.data)))
        pairs = None
        if self.anchor_indices_ is not None:
            pairs = np.stack([self.anchor_indices_, self.anchor_indices_], axis=1)
        p = self.params_
        res = wasserstein_procrustes(*rows, solver=p["solver"], reg=float(p["reg"]), iters=int(p["iters"]),
                                     gw_rows=int(p["gw_rows"]), seed=int(p["seed"]), pairs=pairs, device=exact.device)
        self.R_ = res["R"].cpu().numpy()
        self.W_ = self.R_[: X.dim, : Y.dim]
        self.n_anchors_ = 0 if pairs is None else len(pairs)
        self.fit_stats_ = {"n_source": X.n, "n_target": Y.n, "solver": res["solver"],
                           "iterations": res["iterations"], "converged": res["converged"],
                           "transport_cost": res["cost"], "init": res["init"], "n_seed_pairs": self.n_anchors_}
