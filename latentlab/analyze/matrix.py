"""Layer × layer matrices: CKA streamed over many files, and any registered measure rows × cols.

:func:`cka_matrix` is the fast path for the classic square CKA heatmap — the linear kernel
reads each file once per row block, whatever n. :func:`similarity_matrix` compares the layers
of one model (rows) with those of another (cols) under any paired measure of
:mod:`latentlab.analyze.registry`, with per-cell intervals and null calibration. The
calibration of the aggregate (the best or mean cell) applies one permutation of the rows to
*every* column layer at once (Gröger, Wen & Brbić 2026, Algorithm 2), so "the best of 144
layer pairs" is compared with the best of 144 null pairs, not with one.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from ..compute import as_backend
from ..errors import InputError
from ..io import as_embeddings, require_paired, require_rows
from ..results import Estimate, ResultMixin, estimate
from .. import stats
from . import registry
from .cka import KERNELS, _check_rbf_variance, _hsic_from_parts, _hsic_linear, _ratio, _stream, rbf_cka
from .compare import check_metrics, constant_message, constant_reason, interval, measure_params
from .overlap_resample import CrossNull
from .prep import (SIMILARITY, Prepared, check_positive, fits_in_memory, load, require_in_memory, require_variance,
                   sample_rows)

@dataclass(frozen=True)
class CKAMatrix(ResultMixin):
    """CKA between every pair of inputs (symmetric, ones on the diagonal)."""

    labels: list[str]
    matrix: list[list[float]]
    kernel: str
    debiased: bool
    n: int
    kind: str = SIMILARITY
    notes: list[str] = field(default_factory=list)

    def as_similarity_matrix(self) -> "SimilarityMatrix":
        """The same numbers as a :class:`SimilarityMatrix`, so that a CKA matrix has one JSON
        shape whether it was streamed (this fast path) or computed cell by cell."""
        name = "rbf_cka" if self.kernel == "rbf" else ("debiased_cka" if self.debiased else "linear_cka")
        measure = registry.get(name)
        params = {**measure.params, **({"debiased": self.debiased} if "debiased" in measure.params else {})}
        cells = [[estimate(v) for v in row] for row in self.matrix]
        return SimilarityMatrix(metric=name, direction=measure.direction, row_labels=list(self.labels),
                                col_labels=list(self.labels), matrix=cells, n=self.n, params=params,
                                symmetric=True, notes=list(self.notes))




def cka_matrix(inputs, *, labels=None, kernel: str = "linear", debiased: bool = False,
               sigma_frac: float = 0.5, max_n: int = 10000, device="auto", dtype="float32") -> CKAMatrix:
    """CKA between every pair of ``inputs`` (e.g. the layers of a network), all row-paired.

    The linear kernel reads each input once per row block (one streaming pass accumulating
    every cross-moment); the RBF kernel loads each input once and compares pairs in blocks.
    """
    if kernel not in KERNELS:
        raise InputError(f"kernel {kernel}: expected one of {', '.join(KERNELS)}")
    embs = [as_embeddings(x, f"input {i}") for i, x in enumerate(inputs)]
    if len(embs) < 2:
        raise InputError("cka-matrix needs at least two inputs")
    for e in embs[1:]:
        require_paired(embs[0], e, "cka-matrix")
    require_rows(embs[0], 4 if debiased else 2, "cka-matrix")
    backend = as_backend(device, dtype)
    labels = list(labels) if labels is not None else [e.name for e in embs]
    k = len(embs)
    mat = np.eye(k)
    if kernel == "linear":
        mom, ext = _stream(embs, backend, debiased)
        for e, i in zip(embs, range(k)):
            require_variance(float(torch.trace(mom.centered(i))), e, "CKA")
        self_h = [_hsic_linear(mom, ext, i, i, debiased) for i in range(k)]
        for i in range(k):
            for j in range(i + 1, k):
                mat[i, j] = mat[j, i] = _ratio(_hsic_linear(mom, ext, i, j, debiased), self_h[i], self_h[j])
    else:
        if embs[0].n > max_n:
            raise InputError(f"RBF CKA holds n × n kernel blocks; {embs[0].n} rows exceed `max_n` {max_n}")
        require_in_memory(embs, backend, "RBF CKA of every layer", hint="use the linear kernel (streamed) or a row sample")
        xs = [load(e, backend) for e in embs]
        for x, e in zip(xs, embs):
            _check_rbf_variance(x, e)
        for i in range(k):
            for j in range(i + 1, k):
                mat[i, j] = mat[j, i] = rbf_cka(xs[i], xs[j], sigma_frac=sigma_frac, debiased=debiased)
    return CKAMatrix(labels=labels, matrix=mat.tolist(), kernel=kernel, debiased=debiased, n=embs[0].n)


@dataclass(frozen=True)
class SimilarityMatrix(ResultMixin):
    """A measure between every row layer and every column layer (None where degenerate)."""

    metric: str
    direction: str
    row_labels: list[str]
    col_labels: list[str]
    #: cells are Estimates (an interval each with ``bootstrap``), None where degenerate
    matrix: list[list[Estimate | None]]
    n: int
    params: dict
    calibrated: list[list] | None = None
    aggregate: dict = field(default_factory=dict)
    bootstrap: str | None = None
    symmetric: bool = False
    notes: list[str] = field(default_factory=list)


def similarity_matrix(rows, cols=None, *, metric: str = "linear_cka", params: dict | None = None,
                      row_labels=None, col_labels=None, calibrate: int | None = None, alpha: float = 0.05,
                      bootstrap: int | None = None, sample: int | None = None, seed: int = 0, level: float = 0.95,
                      device="auto", dtype="float32") -> SimilarityMatrix:
    """``metric`` between every input of ``rows`` and every input of ``cols`` (all row-paired).

    Without ``cols`` the matrix is square over ``rows`` (cells i < j computed once; the
    diagonal is the best score). ``calibrate`` K adds per-cell calibrated scores and the
    calibrated best (max for similarities, min for distances) and mean cell, from one null
    in which each permutation shuffles every column layer the same way.
    ``bootstrap`` N gives each cell a 95 % interval (scheme as :func:`latentlab.analyze.compare.similarity`).
    ``sample`` N computes every cell on N rows drawn without replacement (seeded, the same rows of every layer).

    Out of core: linear and debiased CKA stream when the layers do not fit
    :data:`~latentlab.analyze.prep.IN_MEMORY_BYTES` — the cells from one moment pass over every
    layer, each cell's interval from one pass of per-group sums (:mod:`~latentlab.analyze.cka_resample`),
    the null from one pass per shuffle over every layer (:class:`~latentlab.analyze.overlap_resample.CrossNull`);
    with the same seed they equal the in-memory numbers. Every other measure needs the rows in memory
    and is refused above the budget before a row is read, pointing to ``sample``.
    """
    (measure,) = check_metrics([metric])
    p = measure_params(measure, {measure.name: dict(params or {})})
    backend = as_backend(device, dtype)
    calibrate = check_positive(calibrate, "calibrate", integer=True)
    bootstrap = check_positive(bootstrap, "bootstrap", integer=True)
    sample = check_positive(sample, "sample", integer=True)
    if calibrate:
        alpha = stats.check_alpha(alpha)
    symmetric = cols is None
    r_embs = [as_embeddings(x, f"rows[{i}]") for i, x in enumerate(rows)]
    c_embs = r_embs if symmetric else [as_embeddings(x, f"cols[{i}]") for i, x in enumerate(cols)]
    if len(r_embs) < (2 if symmetric else 1) or not c_embs:
        raise InputError("similarity_matrix needs at least two inputs (or one row and one column input)")
    for e in r_embs[1:] + list(c_embs):
        require_paired(r_embs[0], e, "the matrix")
    require_rows(r_embs[0], 4, "the matrix")
    rl = list(row_labels) if row_labels is not None else [e.name for e in r_embs]
    cl = rl if symmetric else (list(col_labels) if col_labels is not None else [e.name for e in c_embs])
    embs = r_embs + ([] if symmetric else list(c_embs))
    picked = sample_rows(r_embs[0].n, sample, seed, min_rows=4)
    n = r_embs[0].n if picked is None else len(picked)
    notes = [] if picked is None else [f"every cell on {n} of {r_embs[0].n} rows (seeded sample without replacement)"]
    if picked is None and measure.name in ("linear_cka", "debiased_cka") and not fits_in_memory(embs, backend.float64()):
        cells = _LinearStreamed(r_embs, c_embs, symmetric, p.get("debiased", measure.params["debiased"]), backend)
        row_reason, col_reason = cells.reasons
    else:
        # every other measure holds the (sampled) rows of every layer: refuse before any row is read
        require_in_memory(embs, backend, f"the {measure.name} matrix", rows=None if picked is None else n)
        xs = [load(e, backend, picked) for e in r_embs]
        ys = xs if symmetric else [load(e, backend, picked) for e in c_embs]
        cells = _InMemory(measure, xs, ys, p, backend)
        # why each layer is undefined (constant), once per layer; its cells stay None
        row_reason = [constant_reason(x, e.name) for x, e in zip(xs, r_embs)]
        col_reason = row_reason if symmetric else [constant_reason(y, e.name) for y, e in zip(ys, c_embs)]
    notes += [r for r in row_reason + ([] if symmetric else col_reason) if r]
    n_r, n_c = len(r_embs), len(c_embs)
    mat: list[list] = [[None] * n_c for _ in range(n_r)]
    preps: list[list] = [[None] * n_c for _ in range(n_r)]
    for i in range(n_r):
        for j in range(n_c):
            if symmetric and j <= i:
                if j == i:
                    mat[i][j] = None if row_reason[i] else measure.best
                continue
            if row_reason[i] or col_reason[j]:
                continue
            preps[i][j] = cells.prepare(i, j)
            notes += preps[i][j].notes
            value = preps[i][j].value
            if bootstrap and value is not None:
                value = cells.interval(i, j, value, bootstrap, seed=seed, level=level)
            mat[i][j] = value
            if symmetric:
                mat[j][i] = value
    calibrated, aggregate, scheme = None, {}, None
    if bootstrap:
        scheme = next((v.method for row in mat for v in row if isinstance(v, Estimate) and v.interval), None)
    if calibrate:
        calibrated, aggregate = _calibrate(preps, measure, n, calibrate, alpha, seed, symmetric)
    mat = [[estimate(v) for v in row] for row in mat]
    return SimilarityMatrix(metric=measure.name, direction=measure.direction, row_labels=rl, col_labels=cl,
                            matrix=mat, n=n, params={**measure.params, **p}, calibrated=calibrated,
                            aggregate=aggregate, bootstrap=scheme, symmetric=symmetric, notes=notes)


class _InMemory:
    """Cells of any registered measure from rows in memory."""

    def __init__(self, measure, xs, ys, params, backend):
        self.measure, self.xs, self.ys, self.params, self.backend = measure, xs, ys, params, backend

    def prepare(self, i: int, j: int) -> Prepared:
        return self.measure.prepare(self.xs[i], self.ys[j], backend=self.backend, **self.params)

    def interval(self, i, j, value, n_resamples, *, seed, level) -> Estimate:
        return interval(self.measure, self.xs[i], self.ys[j], self.params, value, n_resamples, seed=seed,
                        level=level, backend=self.backend)


class _LinearStreamed:
    """Cells of linear (or debiased) CKA from streamed passes: one moment pass over every layer
    for the values; per cell, one pass of per-group sums for its interval; per shuffle, one pass
    over every layer (B's layers read in the shuffled order) for every cell's null score."""

    def __init__(self, r_embs, c_embs, symmetric: bool, debiased: bool, backend):
        self.r, self.c, self.debiased, self.backend = list(r_embs), list(c_embs), bool(debiased), backend
        self.col = 0 if symmetric else len(self.r)  # column layer j is input col + j of the moment pass
        self.n = self.r[0].n
        self.mom, self.ext = _stream(self.r if symmetric else self.r + self.c, backend, self.debiased)
        layers = self.r if symmetric else self.r + self.c
        self.tr = [float(torch.trace(self.mom.centered(i))) for i in range(len(layers))]
        reasons = [None if t > 0 else constant_message(e.name) for t, e in zip(self.tr, layers)]
        k = len(layers)
        self.reasons = (reasons[: len(self.r)], reasons if symmetric else reasons[len(self.r) :])
        self.self_h = [None if reasons[i] else _hsic_linear(self.mom, self.ext, i, i, self.debiased) for i in range(k)]
        self._cross = None

    def _null(self) -> CrossNull:
        if self._cross is None:
            means = [self.mom.mean(i) for i in range(len(self.tr))]
            right = [means[self.col + j] for j in range(len(self.c))]
            self._cross = CrossNull(self.r, self.c, means[: len(self.r)], right, self.backend, row_norms=self.debiased)
        return self._cross

    def prepare(self, i: int, j: int) -> Prepared:
        a, b = i, self.col + j
        value = _ratio(_hsic_linear(self.mom, self.ext, a, b, self.debiased), self.self_h[a], self.self_h[b])

        def score(perm) -> float:
            cross = self._null()
            c = cross.block(perm, i, j)
            r = float(cross(perm)[1][i, j]) if self.debiased else 0.0
            hxy = _hsic_from_parts(float((c * c).sum()), r, self.tr[a], self.tr[b], self.n, self.debiased)
            return _ratio(hxy, self.self_h[a], self.self_h[b])

        return Prepared(value, score)

    def interval(self, i, j, value, n_resamples, *, seed, level) -> Estimate:
        from .cka_resample import linear_cka_bootstrap_streamed
        a, b = i, self.col + j
        return linear_cka_bootstrap_streamed(self.r[i], self.c[j], (self.mom.mean(a), self.mom.mean(b)), n_resamples,
                                             backend=self.backend, debiased=self.debiased, seed=seed, level=level,
                                             value=value)


def _calibrate(preps, measure, n, n_permutations, alpha, seed, symmetric):
    """Per-cell and aggregate calibration from one shared set of permutations."""
    cells = [(i, j) for i, row in enumerate(preps) for j, c in enumerate(row) if c is not None and c.value is not None]
    if not cells:
        raise InputError("every cell of the matrix is degenerate: nothing to calibrate")
    null = np.empty((n_permutations, len(cells)))
    for b, perm in enumerate(stats.permutations(n, n_permutations, seed)):
        null[b] = [preps[i][j].shuffled(perm) for i, j in cells]
    kw = dict(alpha=alpha, best=measure.best, higher_is_better=measure.higher_is_better)
    calibrated: list[list] = [[None] * len(preps[0]) for _ in preps]
    for c, (i, j) in enumerate(cells):
        calibrated[i][j] = stats.calibrate_scores(preps[i][j].value, null[:, c], **kw)
        if symmetric:
            calibrated[j][i] = calibrated[i][j]
    obs = np.array([preps[i][j].value for i, j in cells])
    best = np.max if measure.higher_is_better else np.min
    aggregate = {}
    for agg, fn in (("best", best), ("mean", np.mean)):
        res = stats.calibrate_scores(float(fn(obs)), fn(null, axis=1), **kw)
        aggregate[agg] = dataclasses.replace(res, method=(
            f"null calibration of the {agg} of {len(cells)} cells: each permutation shuffles B's rows in every "
            "column layer at once, τ = (1 − α) quantile of observed ∪ null"))
    return calibrated, aggregate


__all__ = ["cka_matrix", "CKAMatrix", "similarity_matrix", "SimilarityMatrix"]
