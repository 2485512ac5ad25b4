"""Resampling overlap's covariance geometry out of core, and streamed cross products under shuffling.

* **bootstrap** — the principal angles between top-r PCA subspaces, SVCCA, PWCCA and the
  angular Procrustes distance are functions of the centred (cross-)covariances, i.e. of row
  sums (n, Σx, Σy, Σxxᵀ, Σyyᵀ, Σxyᵀ). One pass stores those sums per random row group —
  :mod:`~latentlab.analyze.cka_resample`'s group sums: the same groups and the same draws —
  :func:`latentlab.stats.bootstrap_sums` resamples groups, and each replicate recomputes the
  geometry from its resampled covariances with the ranks (and SVCCA's dimensions) held at
  their full-data values. An in-memory matrix (one block) and a shard folder give the same
  replicates up to rounding; with one group per row a replicate equals the recomputation on
  the resampled rows. The Procrustes replicates use the moment form arccos(‖Cxy‖_*/√(tr Cxx tr Cyy)),
  which loses digits only within ~1e-8 rad of 0 (the interval is median-centred on the exact estimate).
* **null** — shuffling B's rows leaves Cxx, Cyy and the means unchanged; only XcᵀYc[π] moves.
  :class:`CrossNull` forms it in one pass per permutation (A's blocks in order, B's rows read in
  the order π), for any number of layers at once (``cka-matrix``), and keeps the last permutation's
  products, so every score of one shuffle (svcca and pwcca; every cell of a matrix) costs one pass.

References
----------
Raghu et al., "SVCCA", NeurIPS 2017; Morcos, Raghu & Bengio, NeurIPS 2018 (PWCCA); Williams et
al., "Generalized Shape Metrics on Neural Representations", NeurIPS 2021 (angular Procrustes);
Björck & Golub, Math. Comp. 27, 1973 (principal angles); Efron & Tibshirani 1993 (bootstrap).
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch

from .. import stats
from ..blas import matmul
from ..compute import Backend, accumulate
from .cka import _f64
from .cka_resample import _group_sums
from ..io.rowsource import IndexedRows
from .subspace import pca_basis, principal_angles, procrustes_from_cov, pwcca_from_cov, svcca_from_cov

RANKS_FIXED = "paired; ranks fixed at full-data values"


def angle_scores(angles: np.ndarray) -> dict:
    """``overlap`` (mean cos² of the principal angles) and ``grassmann_distance_rad`` (‖θ‖₂)."""
    return {"overlap": float(np.mean(np.cos(angles) ** 2)), "grassmann_distance_rad": float(np.linalg.norm(angles))}


def geometry(cxx, cyy, cxy, ranks, dims, wanted) -> dict:
    """The covariance scores of overlap named in ``wanted`` (ranks, SVCCA dims given), from covariances."""
    out: dict = {}
    if "overlap" in wanted or "grassmann_distance_rad" in wanted:
        out.update(angle_scores(principal_angles(pca_basis(cxx)[1][:, : ranks[0]], pca_basis(cyy)[1][:, : ranks[1]])))
    if "svcca" in wanted:
        out["svcca"] = svcca_from_cov(cxx, cyy, cxy, dims)
    if "pwcca" in wanted:
        out["pwcca"] = pwcca_from_cov(cxx, cyy, cxy)
    if "procrustes_angle_rad" in wanted:
        out["procrustes_angle_rad"] = procrustes_from_cov(cxx, cyy, cxy)
    return {k: v for k, v in out.items() if k in wanted}


def _covariances(s: dict):
    nn = float(s["n"])
    cen = {k: (s[k] - np.outer(s["s" + k[0]], s["s" + k[1]]) / nn) / max(nn - 1.0, 1.0) for k in ("xx", "yy", "xy")}
    return cen["xx"], cen["yy"], cen["xy"]


def covariance_bootstrap(x, y, full: dict, ranks, dims, *, n_resamples: int, seed: int, level: float,
                         budget: int = stats.DEFAULT_SUMS_BUDGET) -> dict:
    """Intervals of the covariance scores in ``full`` (name → full-data value; None = skipped) of
    in-memory x, y (float64 products), from per-group moment sums."""
    x, y = _f64(x), _f64(y)
    make = _group_sums(x.shape[0], (x.mean(0), y.mean(0)), seed, False, budget, torch.float64)
    return _finish(make().update(x, y).sums, full, ranks, dims, n_resamples, seed, level)


def streamed_covariance_bootstrap(ea, eb, means, full: dict, ranks, dims, *, backend: Backend, n_resamples: int,
                                  seed: int, level: float, budget: int = stats.DEFAULT_SUMS_BUDGET) -> dict:
    """:func:`covariance_bootstrap` of two row sources in one pass (:func:`latentlab.compute.accumulate`,
    so on Dask workers too), rows centred on ``means``, products in the backend's dtype."""
    # as linear_cka_bootstrap_streamed: long blocks cut the G d × d float64 adds per block
    rows = 4 * backend.block_rows(ea.dim + eb.dim, copies=3)
    make = _group_sums(ea.n, means, seed, False, budget, backend.dtype)
    sums = accumulate([ea.data, eb.data], make, backend, rows=rows, desc="overlap bootstrap").sums
    return _finish(sums, full, ranks, dims, n_resamples, seed, level)


def _finish(sums: dict, full: dict, ranks, dims, n_resamples: int, seed: int, level: float) -> dict:
    value = {k: v for k, v in full.items() if v is not None}
    if not value:
        return {}
    arrays = {k: v.cpu().numpy() for k, v in sums.items()}
    est = stats.bootstrap_sums(arrays, lambda s: geometry(*_covariances(s), ranks, dims, set(value)),
                               n_resamples=n_resamples, seed=seed, level=level, value=value)
    return {k: dataclasses.replace(e, method=f"{e.method}; {RANKS_FIXED}") for k, e in est.items()}


class LayerCross:
    """Accumulator (:func:`latentlab.compute.accumulate`) of the centred cross products of the first
    ``n_left`` sources' blocks against the others': C = [X₁ … X_L]ᵀ[Y₁ … Y_M] (float64) and, with
    ``row_norms``, R[l, m] = Σ_r ‖x_l,r‖² ‖y_m,r‖² (debiased CKA). Rows are centred on the fixed
    full-data means (its ``shift``); products in ``gemm_dtype``, sums in float64; mergeable."""

    def __init__(self, n_left: int, centre, gemm_dtype, row_norms: bool = False, *, shift=None):
        self.n_left, self.gemm_dtype, self.row_norms = n_left, gemm_dtype, row_norms
        self._centre = tuple(torch.as_tensor(c, dtype=torch.float64) for c in (centre if shift is None else shift))
        self.c = self.r = None

    @property
    def shift(self) -> tuple:
        return self._centre

    def update(self, *blocks: torch.Tensor) -> "LayerCross":
        cen = [b.to(torch.float64) - m.to(b.device) for b, m in zip(blocks, self._centre)]
        left, right = cen[: self.n_left], cen[self.n_left :]
        x, y = torch.cat(left, 1).to(self.gemm_dtype), torch.cat(right, 1).to(self.gemm_dtype)
        self._add("c", matmul(x.T, y).to(torch.float64))
        if self.row_norms:
            a, b = (torch.stack([(v * v).sum(1) for v in side], 1) for side in (left, right))
            self._add("r", a.T @ b)
        return self

    def _add(self, name: str, value: torch.Tensor) -> None:
        old = getattr(self, name)
        setattr(self, name, value if old is None else old + value.to(old.device))

    def merge(self, other: "LayerCross") -> "LayerCross":
        for name in ("c", "r"):
            if getattr(other, name) is not None:
                self._add(name, getattr(other, name))
        return self


class CrossNull:
    """The :class:`LayerCross` products of ``left`` row sources against ``right`` ones read in the
    order π (:class:`~latentlab.io.rowsource.IndexedRows`): ``self(perm)`` → (C, R as numpy or None).
    One pass per new permutation (on the current engine); the last permutation's products are kept,
    so every score of one shuffle costs one pass."""

    def __init__(self, left, right, left_means, right_means, backend: Backend, *, row_norms: bool = False):
        self.left, self.right, self.backend = list(left), list(right), backend
        centre = [torch.as_tensor(m, dtype=torch.float64).cpu() for m in list(left_means) + list(right_means)]
        self.make = functools.partial(LayerCross, len(self.left), centre, backend.dtype, row_norms)
        self.offsets = (np.cumsum([0] + [e.dim for e in self.left]), np.cumsum([0] + [e.dim for e in self.right]))
        self.rows = backend.block_rows(sum(e.dim for e in self.left + self.right), copies=3)
        self._perm: np.ndarray | None = None
        self._last = None

    def __call__(self, perm):
        perm = np.asarray(perm)
        if self._perm is None or not np.array_equal(perm, self._perm):
            sources = [e.data for e in self.left] + [IndexedRows.permuted(e.data, perm) for e in self.right]
            acc = accumulate(sources, self.make, self.backend, rows=self.rows)
            self._perm = perm.copy()
            self._last = (acc.c.cpu().numpy(), None if acc.r is None else acc.r.cpu().numpy())
        return self._last

    def block(self, perm, i: int, j: int) -> np.ndarray:
        """X_iᵀ Y_j[π] (left input i, right input j)."""
        lo, ro = self.offsets
        return self(perm)[0][lo[i] : lo[i + 1], ro[j] : ro[j + 1]]


__all__ = ["geometry", "angle_scores", "covariance_bootstrap", "streamed_covariance_bootstrap", "CrossNull",
           "LayerCross", "RANKS_FIXED"]
