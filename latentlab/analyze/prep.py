"""Input preparation shared by the analyzers: coercion, pairing checks, in-memory loading.

Streaming metrics read their inputs block by block through :mod:`latentlab.compute`, and so
do the resampling schemes of linear CKA and spectra (per-group sums, permuted block reads).
The methods that need every row at once (RBF CKA, k-NN measures, OT, the recomputed
bootstraps) get them from :func:`load`, which first checks the rows fit
:data:`IN_MEMORY_BYTES` and otherwise refuses — before any row is read — with the sampled
form as the way out, rather than let the process be killed for memory.
"""
from __future__ import annotations

import functools
import os
import warnings

import numpy as np
import torch

from .. import stats
from ..blas import matmul
from ..compute import Backend
from ..errors import DegenerateInput, InputError, LatentlabWarning
from ..io import Embeddings, as_embeddings, require_paired, require_rows
from ..progress import row_blocks

SIMILARITY = "similarity (higher = more similar)"
DISTANCE = "distance (lower = more similar)"


def pair(a, b, what: str, *, min_rows: int = 2) -> tuple[Embeddings, Embeddings]:
    """Validated, row-paired embeddings ``a`` and ``b``."""
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    require_paired(ea, eb, what)
    require_rows(ea, min_rows, what)
    return ea, eb


#: Bytes of rows (in the compute dtype) a method may hold in memory at once; above it a method that
#: cannot stream refuses (:func:`require_in_memory`). Sized so the 3 GB RSS bound of the out-of-core
#: benchmark holds with the input, its compute copy and the working set; ``LATENTLAB_MEMORY_BUDGET``
#: (GB) changes it.
IN_MEMORY_BYTES = int(float(os.environ.get("LATENTLAB_MEMORY_BUDGET", "1")) * 2**30)


def require_in_memory(embs, backend: Backend, what: str, *, rows: int | None = None,
                      hint: str = "pass `sample` N to compute it on N random rows") -> None:
    """Refuse, before reading anything, when ``what`` would hold more than :data:`IN_MEMORY_BYTES`
    of rows: all rows of each of ``embs`` (or ``rows`` of each) in the backend's dtype."""
    need = _bytes_held(embs, backend, rows)
    if need > IN_MEMORY_BYTES:
        n = embs[0].n if rows is None else int(rows)
        raise InputError(f"{what} needs all {n} rows in memory ({need / 2**30:.2f} GiB, over the "
                         f"{IN_MEMORY_BYTES / 2**30:.2f} GiB budget; it cannot stream): {hint}")


def fits_in_memory(embs, backend: Backend, *, rows: int | None = None) -> bool:
    """Whether :func:`require_in_memory` would let these rows be held (the in-memory branch of a
    method that can also stream)."""
    return _bytes_held(embs, backend, rows) <= IN_MEMORY_BYTES


def _bytes_held(embs, backend: Backend, rows: int | None) -> int:
    return sum((e.n if rows is None else int(rows)) * e.dim for e in embs) * max(backend.itemsize, 1)


def load(emb: Embeddings, backend: Backend, rows=None, *, what: str = "this method") -> torch.Tensor:
    """All rows (or ``rows``) of ``emb`` as one tensor on the backend (refused above the memory budget)."""
    require_in_memory([emb], backend, what, rows=None if rows is None else len(rows))
    data = emb.rows(slice(None) if rows is None else rows)
    return backend.tensor(data)


def blocks(embs, backend: Backend, rows: int, desc: str | None = None, index=None):
    """``(lo, [tensor block of each emb])`` over rows ``lo:lo+rows``, with a rows/s bar named ``desc``;
    with ``index`` (a row order) the j-th emb's block is ``index[j]``'s rows ``lo:lo+rows`` when given."""
    n = embs[0].n
    for lo in row_blocks(0, n, rows, desc):
        hi = min(lo + rows, n)
        order = index or [None] * len(embs)
        yield lo, [backend.tensor(e.rows(slice(lo, hi) if o is None else o[lo:hi])) for e, o in zip(embs, order)]


def sample_rows(n: int, sample: int | None, seed: int, *, min_rows: int = 2) -> np.ndarray | None:
    """The seeded row sample of the sampled forms (``sample`` rows of n without replacement, sorted so
    that reads stay sequential), or None when ``sample`` is None or not below n. One stream per seed,
    so ``similarity``, ``overlap`` and ``cka-matrix`` with the same ``--sample`` and ``--seed`` see the
    same rows."""
    if sample is None or sample >= n:
        return None
    if sample < min_rows:
        raise InputError(f"sample {sample}: need at least {min_rows} rows")
    return np.sort(np.random.default_rng([seed, 31]).choice(n, sample, replace=False))


def check_positive(value, name: str, *, integer: bool = False, allow_none: bool = True):
    """``value`` as a positive finite float (or whole number with ``integer``); ``name`` is the
    Python argument, which the CLI shows as its flag. NaN, ±inf, strings and booleans are refused."""
    if value is None:
        if allow_none:
            return None
        raise InputError(f"{name} is required")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} {value!r}: must be a number") from None
    if isinstance(value, bool) or not np.isfinite(v):
        raise InputError(f"{name} {value}: must be a finite positive number")
    if integer and v != int(v):
        raise InputError(f"{name} {value}: must be a whole number")
    if not v > 0:
        raise InputError(f"{name} {value}: must be positive")
    return int(v) if integer else v


def require_variance(total_variance: float, emb: Embeddings, what: str) -> None:
    """Constant inputs (zero total variance) make centred similarity measures undefined."""
    if not total_variance > 0:
        raise DegenerateInput(f"{emb.name}: every column is constant (zero variance); {what} is undefined")


def clamp_neighbours(k: int, n: int, what: str = "k") -> int:
    """k for a k-NN graph over n rows with self excluded: at most n − 1, with a warning."""
    if k < 1:
        raise InputError(f"k {k}: must be at least 1")
    if n < 2:
        raise InputError(f"{what} needs at least 2 rows, got {n}")
    if k > n - 1:
        warnings.warn(f"{what}={k} clamped to {n - 1} (only {n - 1} other rows)", LatentlabWarning, stacklevel=2)
        return n - 1
    return k


class Prepared:
    """A paired similarity evaluated once, ready to be re-evaluated under shuffled pairing.

    ``value`` is the score of (x, y); ``shuffled(perm)`` is the score of (x, y[perm]) — B's rows
    reordered — computed from whatever the measure could keep (moments, k-NN lists, a
    dissimilarity matrix), so a permutation null never re-reads or re-embeds the inputs.
    ``value`` is ``None`` when the measure is degenerate for the input; ``notes`` says why.
    """

    def __init__(self, value, shuffled, notes: list[str] | None = None):
        self.value = None if value is None else float(value)
        self._shuffled = shuffled
        self.notes = list(notes or [])

    def shuffled(self, perm) -> float:
        return float(self._shuffled(np.asarray(perm)))


def add_group_products(targets, label: torch.Tensor, one_per_row: bool) -> None:
    """Add each group's products Pᵀ Q of one block into float64 sums: ``targets`` is a list of
    ``(out, P, Q)`` with ``out`` of shape (G, p, q) and P, Q the block's rows; ``label[r]`` is row r's
    group. With one row per group (``one_per_row``) the rows' outer products are added directly;
    otherwise each group's rows are made contiguous once (a stable sort) and multiplied as one GEMM."""
    if one_per_row:
        for out, p, q in targets:
            out.index_add_(0, label, torch.einsum("ni,nj->nij", p, q).to(torch.float64))
        return
    order = torch.argsort(label, stable=True)
    ids, counts = torch.unique_consecutive(label[order], return_counts=True)
    cache: dict = {}
    sorted_ = [(out, cache.setdefault(id(p), p[order]), cache.setdefault(id(q), q[order])) for out, p, q in targets]
    lo = 0
    for g, c in zip(ids.tolist(), counts.tolist()):
        for out, p, q in sorted_:
            out[g] += matmul(p[lo : lo + c].T, q[lo : lo + c]).to(torch.float64)
        lo += c


@functools.lru_cache(maxsize=4)
def _group_labels(n: int, groups: int, seed: int) -> torch.Tensor:
    # cached: every row range of a pass (a Dask worker runs several) slices the same assignment
    return torch.as_tensor(stats.group_labels(n, groups, seed))


class GroupSums:
    """Per-group sums of per-row quantities over a fixed random grouping of n rows: the stored
    sums that :func:`latentlab.stats.bootstrap_sums` resamples (Efron & Tibshirani 1993, ch. 6).

    Row r belongs to group ``stats.group_labels(n, groups, seed)[r]`` — a function of its global
    index only — so any split of the pass (row blocks, a shard folder, Dask workers told where
    their range starts through :meth:`seek`) gives the same sums up to summation order, and partial
    accumulators add up (:meth:`merge`): an accumulator of :func:`latentlab.compute.accumulate`.

    ``add(acc, blocks, label)`` adds one block's sums into the dict ``acc.sums`` (empty until the
    first block; ``add`` creates its (``acc.groups``, …) float64 tensors there, on the rows' device),
    ``blocks`` being the raw row-aligned blocks and ``label`` their groups; it may use
    :func:`add_group_products` (with ``acc.one_per_row``) for the d × d terms. ``centre`` — the
    vectors the rows are centred on, the full-data means — is the accumulator's fixed ``shift``.
    ``group_bytes``: the bytes of one group's sums (``state_bytes`` tells an engine how large a
    partial is).
    """

    def __init__(self, n: int, groups: int, seed: int, add, centre, group_bytes: int = 0, *, shift=None):
        self.n_rows, self.groups, self.seed, self.add = int(n), int(groups), int(seed), add
        self._centre = tuple(torch.as_tensor(c, dtype=torch.float64) for c in (centre if shift is None else shift))
        self.state_bytes = int(group_bytes) * self.groups
        self.sums: dict = {}
        self._at = 0

    @property
    def shift(self) -> tuple:
        return self._centre

    @property
    def one_per_row(self) -> bool:
        return self.groups == self.n_rows

    def seek(self, row: int) -> None:
        self._at = int(row)

    def update(self, *blocks: torch.Tensor) -> "GroupSums":
        m = int(blocks[0].shape[0])
        if not 0 <= self._at <= self.n_rows - m:
            raise ValueError(f"rows {self._at}:{self._at + m} are outside the {self.n_rows} grouped rows")
        label = _group_labels(self.n_rows, self.groups, self.seed)[self._at : self._at + m].to(blocks[0].device)
        self.add(self, blocks, label)
        self._at += m
        return self

    def merge(self, other: "GroupSums") -> "GroupSums":
        if not self.sums:
            self.sums = {k: v.clone() for k, v in other.sums.items()}
            return self
        for k, v in other.sums.items():
            self.sums[k] += v.to(self.sums[k].device)
        return self
