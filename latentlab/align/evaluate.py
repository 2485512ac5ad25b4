"""How good is a stitching map: retrieval of true partners in the common space.

Each (held-out) source row is mapped with ``transform`` and retrieves its partner among the
mapped target rows by cosine similarity. Ranks count ties against the method
(:func:`latentlab.ranks.true_ranks`). Reported: ``r_at_1/5/10`` (higher is
better), ``mrr`` (higher is better), ``median_rank`` (1-based, lower is better),
``mean_cosine`` of true pairs (a similarity, higher is better) and, with labels,
``knn_accuracy`` (the label of the nearest mapped target row equals the source row's label).

Baselines with the same keys: ``identity`` (raw rows compared as they are, no centring,
only when the dims agree) and ``random_rotation`` (raw source rows times a fixed seeded
random orthogonal / semi-orthogonal matrix). A map that does not beat them has learned
nothing useful.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from ..compute import as_backend, l2_normalize
from ..errors import InputError
from ..io import as_embeddings
from ..knn import topk_cosine
from ..results import ResultMixin
from ..ranks import summarize_ranks, true_ranks

#: seed of the fixed random-rotation baseline (independent of --seed, so it never moves)
ROTATION_SEED = 20240601


@dataclass(frozen=True)
class Scores(ResultMixin):
    r_at_1: float
    r_at_5: float
    r_at_10: float
    mrr: float
    median_rank: float
    mean_cosine: float
    knn_accuracy: float | None


@dataclass(frozen=True)
class EvalResult(Scores):
    """Retrieval of true partners after mapping (similarities: higher = better, except ranks)."""

    n_rows: int
    rows: str
    method: str
    baselines: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@lru_cache(maxsize=8)
def random_rotation(d_in: int, d_out: int, seed: int = ROTATION_SEED) -> np.ndarray:
    """A fixed Haar-random orthogonal (d_in = d_out) or semi-orthogonal d_in × d_out matrix."""
    rng = np.random.default_rng(seed)
    D = max(d_in, d_out)
    Q, Rr = np.linalg.qr(rng.standard_normal((D, D)))
    Q = Q * np.sign(np.diag(Rr))  # sign fix makes Q Haar-distributed (Mezzadri 2007)
    Q = Q[:d_in, :d_out].copy()
    Q.setflags(write=False)  # cached: never modified in place
    return Q


def score_pairs(Q, G, labels=None, backend=None) -> Scores:
    """Metrics for query row i ↔ gallery row i, cosine similarity (computed on ``backend``;
    ``Q``, ``G`` are tensors on any device or arrays)."""
    backend = backend or as_backend("auto", "float64")
    q, g = backend.tensor(Q), backend.tensor(G)
    rm = summarize_ranks(true_ranks(q, g, backend=backend))
    mean_cos = float(torch.sum(l2_normalize(q) * l2_normalize(g), dim=1).mean())
    knn = None
    if labels is not None:
        _, idx = topk_cosine(q, g, 1, backend=backend)
        knn = float(np.mean(labels[idx[:, 0]] == labels))
    return Scores(r_at_1=rm.r_at_1, r_at_5=rm.r_at_5, r_at_10=rm.r_at_10, mrr=rm.mrr,
                  median_rank=rm.median_rank, mean_cosine=mean_cos, knn_accuracy=knn)


def evaluate_aligner(aligner, X, Y, *, rows=None, labels=None, baselines: bool = True,
                     device="auto", dtype="float64") -> EvalResult:
    """Evaluate ``aligner`` on paired rows of ``X`` (source) and ``Y`` (target).

    Parameters
    ----------
    aligner : a fitted :class:`~latentlab.align.base.Aligner` or a path to its artifact.
    rows : row indices to evaluate; default = the rows not used as anchors (recorded in the
        artifact), or every row when the map was fitted on all of them (then in-sample).
    labels : one label per row of X (for ``knn_accuracy``).
    """
    from .artifact import load_aligner
    from .base import Aligner

    if not isinstance(aligner, Aligner):
        aligner = load_aligner(aligner)
    ex, ey = as_embeddings(X, "source"), as_embeddings(Y, "target")
    if ex.n != ey.n:
        raise InputError(f"evaluate needs paired rows: {ex.name} has {ex.n} rows but {ey.name} has {ey.n}")
    for emb, dim, side in ((ex, aligner.dim_source_, "source"), (ey, aligner.dim_target_, "target")):
        if emb.dim != dim:
            raise InputError(f"{emb.name}: the map expects {side} rows of dimension {dim}, got {emb.dim}")
    notes: list[str] = []
    if rows is not None:
        from .anchors import check_anchor_indices

        idx = check_anchor_indices(rows, ex.n, name="rows")
        what = f"{len(idx)} given rows"
    else:
        anchors = aligner.anchor_indices_
        held = np.ones(ex.n, dtype=bool)
        if anchors is not None:
            held[anchors[(anchors >= 0) & (anchors < ex.n)]] = False
            what = "held-out rows (not anchors)"
        elif aligner.paired and aligner.n_rows_ == ex.n:
            held[:] = False  # fitted on every row of (files shaped like) these
        else:
            what = ("all rows (the map was fitted without pairs)" if not aligner.paired
                    else "all rows (the map was fitted on other files)")
        if held.any():
            idx = np.flatnonzero(held)
        else:
            idx = np.arange(ex.n)
            what = "all rows (in-sample: every row was an anchor)"
            notes.append("every row was an anchor, so these scores are in-sample and optimistic")
    if len(idx) < 2:
        raise InputError(f"evaluate needs at least 2 rows to evaluate, got {len(idx)}")
    lab = None
    if labels is not None:
        lab_all = np.asarray(labels).reshape(-1)
        if len(lab_all) != ex.n:
            raise InputError(f"labels: {len(lab_all)} labels for {ex.n} rows")
        lab = lab_all[idx]
    backend = as_backend(device, dtype)
    rows_x, rows_y = ex.rows(idx), ey.rows(idx)
    main = score_pairs(aligner.map_rows(rows_x, "source", backend=backend),
                       aligner.map_rows(rows_y, "target", backend=backend), lab, backend)
    xs, ys = backend.tensor(rows_x), backend.tensor(rows_y)
    base = {}
    if baselines:
        base["identity"] = score_pairs(xs, ys, lab, backend).to_dict() if ex.dim == ey.dim else None
        if ex.dim != ey.dim:
            notes.append("identity baseline omitted: source and target dims differ")
        rot = backend.tensor(random_rotation(ex.dim, ey.dim))
        base["random_rotation"] = score_pairs(xs @ rot, ys, lab, backend).to_dict()
    return EvalResult(**main.to_dict(), n_rows=len(idx), rows=what, method=aligner.method,
                      baselines=base, notes=notes)
