"""``evaluate``: rank metrics and gallery hubness of a retrieval task, before and after a fix.

Scores are cosine similarities of L2-normalised rows (higher = more similar). Ranks count
ties against the query (see :mod:`latentlab.ranks`). Hubness is the skewness of
the gallery's k-occurrence N_10 (zeros included) and the number of hubs (N_10 > 20) under
the scores used for ranking (Radovanović et al., JMLR 2010).

Everything runs in query blocks against gallery chunks: memory O(n·k + block·chunk).

References
----------
Radovanović, Nanopoulos & Ivanović, "Hubs in space: popular nearest neighbors in
high-dimensional data", JMLR 11, 2010. The fixes cite their own papers (invgc, csls, qbnorm).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..compute import as_backend
from ..errors import InputError
from ..io import as_embeddings, read_indices, require_nonzero_rows, require_same_dim
from ..io.rowsource import IndexedRows
from ..knn import clamp_k, hubness, topk_cosine
from ..results import ResultMixin, to_jsonable
from .csls import CSLS_K, CSLSScores
from .invgc import DEFAULT_POOL_RATE, DEFAULT_R, InvGCPlan
from ..ranks import RankMetrics, check_truth, summarize_ranks, true_ranks
from .qbnorm import DB_BETA_GALLERY, DB_BETA_QUERY, QB_BETA, QB_K, DBNormScores, QBNormScores
from .scoring import ranked_pass
from .sweep import check_param

FIXES = ("invgc", "localadj", "csls", "qbnorm", "dbnorm")
HUB_K = 10
METRIC_KEYS = ("r_at_1", "r_at_5", "r_at_10", "median_rank", "mean_rank", "mrr", "hubness_skew", "hubs")
#: better direction of each metric, for "change" columns and for picking the best sweep point
HIGHER_IS_BETTER = {"r_at_1": True, "r_at_5": True, "r_at_10": True, "median_rank": False,
                    "mean_rank": False, "mrr": True, "hubness_skew": False, "hubs": False}


@dataclass(frozen=True)
class RetrievalMetrics(RankMetrics):
    """Rank metrics (R@k fractions, 1-based median/mean rank: lower = better, MRR) and gallery hubness."""

    hubness_skew: float
    hubs: int
    n_gallery: int
    #: 0-based rank of each query's truth (ties against); kept for curves, not serialised
    ranks: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in super().to_dict().items() if k != "ranks"}


@dataclass(frozen=True)
class DirectionResult(ResultMixin):
    """One retrieval direction: baseline metrics and, with a fix, the fixed ones."""

    direction: str
    baseline: RetrievalMetrics
    fixed: RetrievalMetrics | None = None
    sweep: list[dict] | None = None
    best: int | None = None

    def change(self) -> dict | None:
        if self.fixed is None:
            return None
        return {k: getattr(self.fixed, k) - getattr(self.baseline, k) for k in METRIC_KEYS}

    def to_dict(self) -> dict:
        """One shape with or without a fix or a sweep: ``fixed``, ``change``, ``sweep`` and ``best``
        are null when not computed."""
        return {"direction": self.direction, "baseline": self.baseline.to_dict(),
                "fixed": None if self.fixed is None else self.fixed.to_dict(),
                "change": to_jsonable(self.change()), "sweep": to_jsonable(self.sweep), "best": self.best}


@dataclass(frozen=True)
class RetrievalResult(ResultMixin):
    """Retrieval report: ``forward`` is queries → gallery, ``reverse`` gallery → queries."""

    forward: DirectionResult
    reverse: DirectionResult | None
    fix: str | None
    params: dict
    similarity: str = "cosine similarity of L2-normalised rows (higher = more similar)"
    notes: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> RetrievalMetrics:
        return self.forward.baseline

    @property
    def fixed(self) -> RetrievalMetrics | None:
        return self.forward.fixed

    @property
    def a_to_b(self) -> DirectionResult:
        """Queries (A) → gallery (B): the ``a_to_b`` block of the JSON."""
        return self.forward

    @property
    def b_to_a(self) -> DirectionResult | None:
        """Gallery (B) → queries (A), with ``both``: the ``b_to_a`` block of the JSON."""
        return self.reverse

    def to_dict(self) -> dict:
        """The one retrieval JSON shape (CLI ``--json``, the report's retrieval section, Python):
        ``a_to_b`` and ``b_to_a`` (null without ``both``) direction blocks, then the settings."""
        return {"a_to_b": self.forward.to_dict(), "b_to_a": None if self.reverse is None else self.reverse.to_dict(),
                "fix": self.fix, "params": to_jsonable(self.params), "similarity": self.similarity,
                "hubness": f"skewness of the gallery's {HUB_K}-occurrence (zeros included); hubs: "
                           f"N_{HUB_K} > {2 * HUB_K}; lower = less hubness",
                "ranks": "1-based, ties count against the query; lower = better", "notes": list(self.notes)}


def _metrics(ranks: np.ndarray, top: np.ndarray, n_gallery: int) -> RetrievalMetrics:
    m = summarize_ranks(ranks)
    hub = hubness(top, n_gallery)
    return RetrievalMetrics(r_at_1=m.r_at_1, r_at_5=m.r_at_5, r_at_10=m.r_at_10, median_rank=m.median_rank,
                            mean_rank=m.mean_rank, mrr=m.mrr, hubness_skew=hub["skew"], hubs=hub["hubs"],
                            n_queries=m.n_queries, n_gallery=n_gallery, ranks=np.asarray(ranks))


def _cosine_metrics(q, g, truth, hub_k, backend) -> RetrievalMetrics:
    ranks = true_ranks(q, g, truth, backend=backend)
    _, top = topk_cosine(q, g, hub_k, backend=backend)
    return _metrics(ranks, top, len(g))


def _scored_metrics(scorer, truth, hub_k) -> RetrievalMetrics:
    ranks, top = ranked_pass(scorer.queries, scorer.gallery, truth, backend=scorer.backend, scorer=scorer, k=hub_k)
    return _metrics(ranks, top, len(scorer.gallery))


def default_params(fix: str | None) -> dict:
    """The parameters each fix uses when none are given."""
    return {
        None: {},
        "invgc": {"r_gallery": DEFAULT_R, "r_query": DEFAULT_R},
        "localadj": {"r_gallery": DEFAULT_R, "r_query": DEFAULT_R, "pool_rate": DEFAULT_POOL_RATE},
        "csls": {"k": CSLS_K},
        "qbnorm": {"beta": QB_BETA, "k": QB_K},
        "dbnorm": {"beta": DB_BETA_QUERY, "beta_gallery": DB_BETA_GALLERY},
    }[fix]


def check_params(fix: str | None, params: dict) -> dict:
    """Fill defaults, reject unknown names and bad values (InputError)."""
    if fix is not None and fix not in FIXES:
        raise InputError(f"unknown fix {fix!r}; expected one of {', '.join(FIXES)}")
    out = default_params(fix)
    for name, value in params.items():
        if value is None:
            continue
        if name not in out:
            raise InputError(f"parameter {name!r} does not apply to fix {fix or '(none)'}; "
                             f"it takes {', '.join(out) or 'no parameters'}")
        out[name] = value
    return {name: check_param(name, value) for name, value in out.items()}


class _Direction:
    """One direction's inputs; builds the fixed scorer / gallery, caching what rates reuse."""

    def __init__(self, name, q, g, truth, fix, bank_g, bank_q, backend, hub_k, notes):
        self.name, self.q, self.g, self.truth, self.fix = name, q, g, truth, fix
        self.bank_g, self.bank_q, self.backend, self.hub_k, self.notes = bank_g, bank_q, backend, hub_k, notes
        self._plans: dict = {}

    def baseline(self) -> RetrievalMetrics:
        return _cosine_metrics(self.q, self.g, self.truth, self.hub_k, self.backend)

    def fixed(self, p: dict, sweeping: bool = False) -> RetrievalMetrics:
        fix, b = self.fix, self.backend
        if fix in ("invgc", "localadj"):
            key = p.get("pool_rate")
            plan = self._plans.get(key)
            if plan is None:
                plan = InvGCPlan(self.g, {"gallery": self.bank_g, "query": self.bank_q},
                                 local=fix == "localadj", pool_rate=p.get("pool_rate", DEFAULT_POOL_RATE), backend=b)
                if sweeping:
                    plan.cache_messages()
                self._plans = {key: plan}
            g2 = plan.apply({"gallery": p["r_gallery"], "query": p["r_query"]})
            return _cosine_metrics(self.q, g2, self.truth, self.hub_k, b)
        if fix == "csls":
            scorer = CSLSScores(self.q, self.g, b, p["k"])
        elif fix == "qbnorm":
            scorer = QBNormScores(self.q, self.g, self.bank_q, b, p["beta"], p["k"])
        else:
            scorer = DBNormScores(self.q, self.g, self.bank_q, self.bank_g, b, p["beta"], p["beta_gallery"])
        return _scored_metrics(scorer, self.truth, self.hub_k)


def _require_banks(fix, bank_g, bank_q, direction: str, opt_g: str, opt_q: str) -> None:
    if fix in ("invgc", "localadj") and bank_g is None and bank_q is None:
        raise InputError(f"fix {fix} needs a bank: {opt_g} and/or {opt_q} (training embeddings)")
    if fix == "qbnorm" and bank_q is None:
        raise InputError(f"fix qbnorm needs a bank of training queries for {direction}: {opt_q}")
    if fix == "dbnorm" and (bank_q is None or bank_g is None):
        raise InputError(f"fix dbnorm needs both banks for {direction}: {opt_g} and {opt_q}")


def reverse_truth(truth: np.ndarray, n_gallery: int) -> tuple[np.ndarray, np.ndarray]:
    """Invert query → gallery truth: (gallery rows that have a relevant query, their truth).

    Several relevant queries per gallery row are padded by repeating the first one (only the
    best-ranked relevant item counts, so repeats change nothing).
    """
    rows = np.repeat(np.arange(truth.shape[0]), truth.shape[1])
    cols = truth.reshape(-1)
    order = np.lexsort((rows, cols))
    rows, cols = rows[order], cols[order]
    keep, counts = np.unique(cols, return_counts=True)
    width = int(counts.max())
    out = np.empty((keep.size, width), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for j in range(width):
        out[:, j] = rows[starts + np.minimum(j, counts - 1)]
    return keep, out


def evaluate(queries, gallery, truth=None, fix: str | None = None, *, both: bool = False,
             bank_gallery=None, bank_queries=None, sweep: dict | None = None, hub_k: int = HUB_K,
             device="auto", dtype="float32", **params) -> RetrievalResult:
    """Retrieval metrics of ``queries`` against ``gallery``, optionally with a post-hoc fix.

    Parameters
    ----------
    queries, gallery : paths, arrays, tensors or Embeddings of the same dimension.
    truth : None (row i of queries matches row i of gallery), (n_q,) gallery indices, or
        (n_q, m) for several relevant items per query (the best-ranked one counts); or the
        path of an index file (.npy/.txt/.csv), which errors then name.
    fix : None, ``"invgc"``, ``"localadj"`` (InvGC, Jian & Wang 2023), ``"csls"`` (Conneau et
        al. 2018), ``"qbnorm"`` (Bogolin et al. 2022) or ``"dbnorm"`` (Wang et al. 2023).
    both : also evaluate gallery → queries (banks swap roles).
    bank_gallery, bank_queries : training embeddings of the gallery's / the queries' modality.
    sweep : {param: [values, ...]} grid (cartesian product) reported per direction; the best
        point (highest R@1, then MRR) becomes ``fixed``. Choose on a validation split.
    **params : the fix's parameters — r_gallery, r_query (InvGC, default 0.1), pool_rate
        (LocalAdj, default 0.01), k (CSLS 10, QB-Norm gate 1), beta (QB-Norm 20; DB-Norm's
        query bank 1/1.99), beta_gallery (DB-Norm 3).
    """
    from .sweep import expand_grid, pick_best

    backend = as_backend(device, dtype)
    eq, eg = as_embeddings(queries, "queries"), as_embeddings(gallery, "gallery")
    require_same_dim(eq, eg, "retrieval")
    require_nonzero_rows(eq, "retrieval"), require_nonzero_rows(eg, "retrieval")
    if "r" in params:  # one rate for both banks
        r = params.pop("r")
        params.setdefault("r_gallery", r)
        params.setdefault("r_query", r)
    p = check_params(fix, params)
    if sweep and fix is None:
        raise InputError("a sweep needs a fix (`fix`)")
    grid = [check_params(fix, {**p, **point}) for point in expand_grid(sweep)] if sweep else None
    banks = {}
    for name, b in (("bank_gallery", bank_gallery), ("bank_queries", bank_queries)):
        if b is not None:
            eb = as_embeddings(b, name)
            require_same_dim(eb, eg, f"{name} (a bank)")
            require_nonzero_rows(eb, f"{name} (a bank)")
            banks[name] = eb.data
    bg, bq = banks.get("bank_gallery"), banks.get("bank_queries")
    notes: list[str] = []
    truth_name = "truth"
    if isinstance(truth, (str, os.PathLike)):  # errors name the file: "truth t.npy: row 3 has an index …"
        truth_name = f"truth {os.fspath(truth)}"
        truth = read_indices(truth, "truth")
    t = None if truth is None else np.asarray(truth)
    t_checked = check_truth(t, eq.n, eg.n, truth_name)
    k_hub = clamp_k(hub_k, eg.n, "hubness k")
    dirs = [("Q→G", eq.data, eg.data, t, bg, bq, "`bank_gallery`", "`bank_queries`", k_hub)]
    if both:
        keep, rt = reverse_truth(t_checked, eg.n)
        if keep.size < eg.n:
            notes.append(f"G→Q: {eg.n - keep.size} gallery rows have no relevant query and are not evaluated")
        rq = eg.data if keep.size == eg.n else IndexedRows(eg.data, keep)  # read block by block, as the rest
        dirs.append(("G→Q", rq, eq.data, rt, bq, bg, "`bank_queries`", "`bank_gallery`",
                     clamp_k(hub_k, eq.n, "hubness k")))
    results = []
    for name, q, g, tr, b_g, b_q, opt_g, opt_q, kh in dirs:
        _require_banks(fix, b_g, b_q, name, opt_g, opt_q)
        d = _Direction(name, q, g, tr, fix, b_g, b_q, backend, kh, notes)
        base = d.baseline()
        if fix is None:
            results.append(DirectionResult(name, base))
        elif grid is None:
            results.append(DirectionResult(name, base, d.fixed(p)))
        else:
            points = [d.fixed(pp, sweeping=True) for pp in grid]
            best = pick_best(points)
            rows = [{"params": pp, **m.to_dict()} for pp, m in zip(grid, points)]
            results.append(DirectionResult(name, base, points[best], rows, best))
    if grid is not None:
        notes.append("fixed = the best sweep point (highest R@1, then MRR) on these data; "
                     "choose settings on a validation split, not the test split")
    return RetrievalResult(forward=results[0], reverse=results[1] if both else None, fix=fix,
                           params={} if fix is None else (p if grid is None else {**p, "sweep": sweep}), notes=notes)


__all__ = ["evaluate", "RetrievalResult", "DirectionResult", "RetrievalMetrics", "FIXES"]
