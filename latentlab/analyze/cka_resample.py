"""Resampling linear CKA out of core: the bootstrap of stored moments and the shuffled-pairing null.

Both work on row blocks, so they run on inputs of any length in O(G·d²) memory:

* **bootstrap** — every term of feature-space CKA (and of Song et al.'s unbiased HSIC) is a
  function of sums over rows, so one streamed pass stores the sums of G random row groups
  (:func:`latentlab.stats.group_count` sizes G to :data:`latentlab.stats.DEFAULT_SUMS_BUDGET`)
  and :func:`latentlab.stats.bootstrap_sums` resamples groups. The groups and the draws do not
  depend on the blocks, so an in-memory matrix (one block) and a shard folder give the same
  replicates up to rounding.
* **null** — shuffling B's rows leaves both self-HSICs and the means unchanged; only the cross
  term ‖XcᵀYc[π]‖²_F (and, debiased, Σ_r ‖x̄_r‖²‖ȳ_π(r)‖²) moves. In memory it is one product
  per permutation; streamed, block i of A is paired with B's rows π[block i], read in that order
  (fancy row reads of the row source): one pass per permutation, O(d²) memory.

Both streamed passes go through :func:`latentlab.compute.accumulate` with mergeable accumulators
(:class:`~latentlab.analyze.prep.GroupSums`, whose grouping depends on the global row index only,
and :class:`CrossSums`), so under ``latentlab.dask`` the workers form the sums and products.

References
----------
Kornblith, Norouzi, Lee & Hinton, "Similarity of Neural Network Representations Revisited",
ICML 2019 (feature-space linear CKA). Song, Smola, Gretton, Bedo & Borgwardt, "Feature Selection
via Dependence Maximization", JMLR 13, 2012 (unbiased HSIC). Efron & Tibshirani 1993 (bootstrap).
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from .. import stats
from ..blas import matmul
from ..compute import Backend, accumulate
from ..results import Estimate
from . import kernels
from .cka import _f64, _hsic_from_parts, _hsic_linear, _ratio, linear_cka
from ..io.rowsource import IndexedRows
from .prep import GroupSums, Prepared, add_group_products


def linear_cka_bootstrap(x, y, n_resamples: int, *, debiased: bool = False, seed: int = 0, level: float = 0.95,
                         value: float | None = None, budget: int = stats.DEFAULT_SUMS_BUDGET) -> Estimate:
    """Bootstrap interval of linear CKA (biased or debiased) of in-memory x, y from resampled moments.

    A replicate is a weighted sum of stored per-group sums (:func:`latentlab.stats.bootstrap_sums`):
    no recomputation over rows. With one group per row it equals recomputing CKA on the
    resampled rows exactly. The interval is median-centred on ``value``
    (:func:`latentlab.stats.make_estimate`): a resample's duplicated rows inflate CKA.
    """
    x, y = _f64(x), _f64(y)
    if value is None:
        value = linear_cka(x, y, debiased=debiased)
    # centre on the full-data mean first so the resampled S₂ − S₁S₁ᵀ/N does not cancel
    sums = _group_sums(x.shape[0], (x.mean(0), y.mean(0)), seed, debiased, budget, torch.float64)().update(x, y)
    return _finish(sums.sums, n_resamples, seed, level, value, debiased)


def linear_cka_bootstrap_streamed(ea, eb, means, n_resamples: int, *, backend: Backend, debiased: bool = False,
                                  seed: int = 0, level: float = 0.95, value: float,
                                  budget: int = stats.DEFAULT_SUMS_BUDGET) -> Estimate:
    """:func:`linear_cka_bootstrap` of two row sources in one streamed pass (``means`` from the point pass).

    The pass goes through :func:`latentlab.compute.accumulate`, so on the Dask engine the workers
    form the per-group products of their row ranges and the client merges them. The products are
    formed in the backend's dtype (as the point estimate's moments) and summed in float64; with a
    float64 backend the result equals the in-memory one to rounding.
    """
    # each block adds G d × d products into the float64 sums, whatever its length: blocks 4× the usual
    # budget (held with their sorted and float64 copies, ~1 GB at most) cut those adds and give each
    # group's GEMM more rows
    rows = 4 * backend.block_rows(ea.dim + eb.dim, copies=3 if not debiased else 4)
    sums = stream_group_sums(ea, eb, means, backend=backend, rows=rows, seed=seed, debiased=debiased, budget=budget,
                             desc="CKA bootstrap")
    return _finish(sums, n_resamples, seed, level, value, debiased)


def stream_group_sums(ea, eb, means, *, backend: Backend, rows: int, seed: int, debiased: bool = False,
                      budget: int = stats.DEFAULT_SUMS_BUDGET, desc: str | None = None) -> dict:
    """Per-group sums (n, Σx, Σy, Σxxᵀ, Σyyᵀ, Σxyᵀ, and with ``debiased`` the row-norm terms) of two
    row sources centred on ``means``, in one pass of :func:`latentlab.compute.accumulate` (blocks of
    ``rows``; on Dask workers under that engine): name → (G, …) float64 tensor."""
    make = _group_sums(ea.n, means, seed, debiased, budget, backend.dtype)
    return accumulate([ea.data, eb.data], make, backend, rows=rows, desc=desc).sums


def _sums_pass(block_iter, n: int, means, seed: int, debiased: bool, budget: int, gemm_dtype) -> dict:
    """:func:`stream_group_sums` over ``(lo, [x block, y block])`` pairs already read (this process only)."""
    acc = _group_sums(n, means, seed, debiased, budget, gemm_dtype)()
    for lo, (xb, yb) in block_iter:
        acc.seek(lo)
        acc.update(xb, yb)
    return acc.sums


def _group_sums(n: int, means, seed: int, debiased: bool, budget: int, gemm_dtype):
    """The maker of the :class:`~latentlab.analyze.prep.GroupSums` of every per-row quantity the
    (debiased) linear CKA is built from, rows centred on ``means``."""
    mx, my = (torch.as_tensor(m, dtype=torch.float64) for m in means)
    dx, dy = mx.shape[0], my.shape[0]
    per_group = 8 * (dx * dx + dy * dy + dx * dy + dx + dy + 1) + (8 * (2 * (dx + dy) + 5) if debiased else 0)
    groups = stats.group_count(n, per_group, budget)
    add = functools.partial(_add_group_sums, debiased=debiased, gemm_dtype=gemm_dtype)
    return functools.partial(GroupSums, n, groups, seed, add, (mx.cpu(), my.cpu()), per_group)


def _add_group_sums(acc: GroupSums, blocks, label, *, debiased: bool, gemm_dtype) -> None:
    """Add one block's per-group sums into ``acc.sums`` (created on the first block, on the rows' device)."""
    out = acc.sums
    xc, yc = (b.to(torch.float64) - c.to(b.device) for b, c in zip(blocks, acc.shift))
    f64 = dict(dtype=torch.float64, device=xc.device)
    dx, dy = xc.shape[1], yc.shape[1]
    if not out:
        shapes = {"n": (), "sx": (dx,), "sy": (dy,), "xx": (dx, dx), "yy": (dy, dy), "xy": (dx, dy)}
        if debiased:
            shapes.update({k: () for k in ("sa", "sb", "saa", "sbb", "sab")})
            shapes.update({"a_x": (dx,), "a_y": (dy,), "b_x": (dx,), "b_y": (dy,)})
        out.update({k: torch.zeros(acc.groups, *s, **f64) for k, s in shapes.items()})
    out["n"].index_add_(0, label, torch.ones(xc.shape[0], **f64))
    out["sx"].index_add_(0, label, xc)
    out["sy"].index_add_(0, label, yc)
    if debiased:
        a, b = (xc * xc).sum(1), (yc * yc).sum(1)
        for name, v in (("sa", a), ("sb", b), ("saa", a * a), ("sbb", b * b), ("sab", a * b)):
            out[name].index_add_(0, label, v)
        for name, w, c in (("a_x", a, xc), ("a_y", a, yc), ("b_x", b, xc), ("b_y", b, yc)):
            out[name].index_add_(0, label, w[:, None] * c)
    xg, yg = xc.to(gemm_dtype), yc.to(gemm_dtype)
    # one row per group when the sums fit the budget (multiplied without sorting)
    add_group_products([(out["xx"], xg, xg), (out["yy"], yg, yg), (out["xy"], xg, yg)], label, acc.one_per_row)


def _finish(sums: dict, n_resamples: int, seed: int, level: float, value: float, debiased: bool) -> Estimate:
    arrays = {k: v.cpu().numpy() for k, v in sums.items()}
    return stats.bootstrap_sums(arrays, lambda s: _cka_from_sums(s, debiased), n_resamples=n_resamples, seed=seed,
                                level=level, value=value)


def _cka_from_sums(s: dict, debiased: bool) -> float:
    """CKA from summed moments (around a fixed shift); the debiased form per :func:`_hsic_linear`."""
    nn = float(s["n"])
    raw = {("x", "x"): s["xx"], ("y", "y"): s["yy"], ("x", "y"): s["xy"]}
    cen = {k: v - np.outer(s["s" + k[0]], s["s" + k[1]]) / nn for k, v in raw.items()}
    hsic = {k: float((c * c).sum()) for k, c in cen.items()}
    if debiased:
        sq = {"x": "a", "y": "b"}  # a = ‖x − s‖², b = ‖y − s‖²
        tr = {"x": float(np.trace(cen[("x", "x")])), "y": float(np.trace(cen[("y", "y")]))}
        for (i, j), value in list(hsic.items()):
            ai, aj = sq[i], sq[j]
            saa = s["s" + "".join(sorted(ai + aj))]  # "saa", "sab" or "sbb"
            rows = kernels.centred_sqnorm_products(nn, float(saa), float(s[f"s{ai}"]), float(s[f"s{aj}"]),
                                                   s[f"{ai}_{j}"], s[f"{aj}_{i}"], s[f"s{i}"], s[f"s{j}"], raw[(i, j)])
            hsic[(i, j)] = _hsic_from_parts(value, rows, tr[i], tr[j], nn, True)
    return _ratio(hsic[("x", "y")], hsic[("x", "x")], hsic[("y", "y")])


# --------------------------------------------------------------------------- shuffled pairing
def prepare_linear_cka(x, y, *, debiased: bool = False, backend=None) -> Prepared:
    """Linear CKA of in-memory x, y ready for shuffled pairing (only the cross term moves)."""
    xc, yc = _f64(x), _f64(y)
    xc, yc = xc - xc.mean(0), yc - yc.mean(0)
    n = xc.shape[0]
    ax, ay = (xc * xc).sum(1), (yc * yc).sum(1)
    tx, ty = float(ax.sum()), float(ay.sum())
    hx = _hsic_from_parts(float((matmul(xc.T, xc) ** 2).sum()), float(ax @ ax), tx, tx, n, debiased)
    hy = _hsic_from_parts(float((matmul(yc.T, yc) ** 2).sum()), float(ay @ ay), ty, ty, n, debiased)

    def score(perm) -> float:
        p = torch.as_tensor(perm, device=yc.device)
        hxy = _hsic_from_parts(float((matmul(xc.T, yc[p]) ** 2).sum()), float(ax @ ay[p]), tx, ty, n, debiased)
        return _ratio(hxy, hx, hy)

    return Prepared(score(np.arange(n)), score)


def prepare_linear_cka_streamed(ea, eb, value: float, mom, ext, *, backend: Backend,
                                debiased: bool = False) -> Prepared:
    """:func:`prepare_linear_cka` of two row sources: the self-HSICs come from the point pass's
    moments (``mom``, ``ext``); each null score is one pass (:func:`latentlab.compute.accumulate`,
    so on Dask workers too) pairing A's blocks with B's rows read in the permuted order
    (:class:`~latentlab.io.rowsource.IndexedRows`). Products in the backend's dtype, sums in float64."""
    centre = (mom.mean(0).cpu(), mom.mean(1).cpu())
    tx, ty = float(torch.trace(mom.centered(0))), float(torch.trace(mom.centered(1)))
    hx, hy = _hsic_linear(mom, ext, 0, 0, debiased), _hsic_linear(mom, ext, 1, 1, debiased)
    rows = backend.block_rows(ea.dim + eb.dim, copies=3)
    make = functools.partial(CrossSums, centre, backend.dtype)
    n = ea.n

    def score(perm) -> float:
        acc = accumulate([ea.data, IndexedRows.permuted(eb.data, perm)], make, backend, rows=rows)
        return _ratio(_hsic_from_parts(float((acc.c * acc.c).sum()), acc.r, tx, ty, n, debiased), hx, hy)

    return Prepared(value, score)


class CrossSums:
    """Σ (x − μx)(y − μy)ᵀ and Σ ‖x − μx‖²‖y − μy‖² of paired rows around the fixed full-data means
    (the ``shift``): the only terms of linear CKA that shuffling B's rows moves. Mergeable, so a
    permutation's pass can be split over workers."""

    def __init__(self, centre, gemm_dtype, *, shift=None):
        self._centre = tuple(centre if shift is None else shift)
        self.gemm_dtype, self.c, self.r = gemm_dtype, None, 0.0

    @property
    def shift(self) -> tuple:
        return self._centre

    def update(self, xb: torch.Tensor, yb: torch.Tensor) -> "CrossSums":
        xc, yc = (b.to(torch.float64) - m.to(b.device) for b, m in zip((xb, yb), self._centre))
        prod = matmul(xc.to(self.gemm_dtype).T, yc.to(self.gemm_dtype)).to(torch.float64)
        self.c = prod if self.c is None else self.c + prod
        self.r += float(((xc * xc).sum(1) * (yc * yc).sum(1)).sum())
        return self

    def merge(self, other: "CrossSums") -> "CrossSums":
        if other.c is not None:
            self.c = other.c if self.c is None else self.c + other.c.to(self.c.device)
        self.r += other.r
        return self


__all__ = ["linear_cka_bootstrap", "linear_cka_bootstrap_streamed", "prepare_linear_cka",
           "prepare_linear_cka_streamed", "stream_group_sums", "CrossSums"]
