"""Input preparation shared by the analyzers: coercion, pairing checks, in-memory loading.

Streaming metrics read their inputs block by block through :mod:`latentlab.compute`; the
quadratic ones (RBF CKA, neighbours) and the resampling schemes of :mod:`latentlab.stats`
need the rows in memory, which :func:`load` provides in the compute dtype.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ..compute import Backend
from ..errors import DegenerateInput, InputError, LatentlabWarning
from ..io import Embeddings, as_embeddings, require_paired, require_rows

SIMILARITY = "similarity (higher = more similar)"
DISTANCE = "distance (lower = more similar)"


def pair(a, b, what: str, *, min_rows: int = 2) -> tuple[Embeddings, Embeddings]:
    """Validated, row-paired embeddings ``a`` and ``b``."""
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    require_paired(ea, eb, what)
    require_rows(ea, min_rows, what)
    return ea, eb


def load(emb: Embeddings, backend: Backend, rows=None) -> torch.Tensor:
    """All rows (or ``rows``) of ``emb`` as one tensor on the backend."""
    data = emb.rows(slice(None) if rows is None else rows)
    return backend.tensor(data)


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
