"""The modality gap between two sets of embeddings.

Every statistic is computed on L2-normalised rows and streamed in row blocks, so a
memory-mapped input of any length is read once per pass with O(d) state.

References
----------
Liang, Zhang, Kwon, Yeung & Zou, "Mind the Gap: Understanding the Modality Gap in
Multi-modal Contrastive Representation Learning", NeurIPS 2022.
Schrodi, Hoffmann, Argus, Fischer & Brox, "Two Effects, One Trigger: On the Modality Gap,
Object Bias, and Information Imbalance in Contrastive Vision-Language Models", ICLR 2025.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..compute import Backend, UnitSums, accumulate, as_backend, l2_normalize
from ..errors import InputError
from ..grid import parse_grid
from ..io import as_embeddings, require_nonzero_rows, require_paired, require_same_dim
from ..progress import row_blocks
from ..results import Estimate, ResultMixin, estimate, to_jsonable
from .probe import linear_separability

#: The floor the authors' code puts under d_m in the relative modality gap.
RMG_FLOOR = 1e-3


@dataclass(frozen=True)
class ShiftPoint(ResultMixin):
    """One δ of the embedding-shift experiment."""

    delta: float
    centroid_distance: float
    r_at_1: float | None


@dataclass(frozen=True)
class GapResult(ResultMixin):
    """The modality-gap report. Distances: 0 means no gap; larger means a wider gap."""

    centroid_distance: Estimate
    pair_distance: Estimate | None
    pair_cosine: Estimate | None
    relative_gap: float | None
    linear_separability: float | None
    top_dimensions: list[dict]
    top_dimensions_share: float
    n_a: int
    n_b: int
    dim: int
    paired: bool
    shift: list[ShiftPoint] | None = None
    notes: list[str] = field(default_factory=list)
    gap_vector: np.ndarray = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        out = {k: v for k, v in super().to_dict().items() if k not in ("gap_vector", "shift")}
        if self.shift is not None:
            out["shift"] = to_jsonable(self.shift)
        return out


def gap(a, b, *, paired: bool | None = None, shift=None, top_k: int = 10,
        separability: bool = True, probe_rows: int = 5000, shift_pairs: int = 5000,
        bootstrap: int | None = None, level: float = 0.95,
        seed: int = 0, device="auto", dtype="float32") -> GapResult:
    """Modality-gap statistics of embedding sets ``a`` and ``b`` (same dimension).

    Parameters
    ----------
    a, b : paths, arrays, tensors or :class:`~latentlab.io.Embeddings`.
    paired : row i of ``a`` matches row i of ``b``. ``None``: paired when the row counts agree.
    shift : iterable of δ values for the embedding-shift experiment (Liang et al. §4.2):
        ``a' = l2n(â − ½δĝ)``, ``b' = l2n(b̂ + ½δĝ)`` with ``â, b̂`` the L2-normalised rows
        and ``ĝ = Δ/‖Δ‖``; positive δ moves the two sets towards each other.
    top_k : how many dimensions of Δ to list.
    separability : fit the linear probe (5-fold, balanced, at most ``probe_rows`` per set).
    shift_pairs : R@1 in the shift experiment uses at most this many pairs (seeded sample).
    bootstrap : resamples for 95 % percentile intervals of ``centroid_distance`` (and, paired,
        ``pair_distance`` and ``pair_cosine``): pairs are resampled together, unpaired sets each
        on their own; replicates come from stored per-group sums, so no second pass.

    Returns
    -------
    GapResult
        ``centroid_distance`` = ‖mean(l2n(A)) − mean(l2n(B))‖₂ (Liang et al.);
        ``pair_distance`` = mean ‖l2n(a_i) − l2n(b_i)‖₂ and ``pair_cosine`` (paired only);
        ``relative_gap`` = the Relative Modality Gap of Schrodi et al. (ICLR 2025):
        ``d_m / (d_m + (d_A + d_B)/2)`` with ``d_m = 1 − (mean_i cos(a_i, b_i) + 1)/2``
        floored at 1e-3 as in the authors' code, and ``d_A``, ``d_B`` the same quantity over
        the off-diagonal intra-set cosines (paired only, n ≥ 2);
        ``linear_separability`` = held-out probe accuracy (0.5 = inseparable);
        ``top_dimensions`` = the dims with the largest |Δ_j| and their share of ‖Δ‖².
    """
    backend = as_backend(device, dtype)
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    require_same_dim(ea, eb, "gap")
    require_nonzero_rows(ea, "gap"), require_nonzero_rows(eb, "gap")
    if paired is None:
        paired = ea.n == eb.n
    elif paired:
        require_paired(ea, eb, "a paired gap")
    notes: list[str] = []
    if bootstrap is not None:
        from ..stats import check_resamples

        bootstrap = check_resamples(bootstrap)
    groups = _Groups.make(ea, eb, paired, seed) if bootstrap else None
    stats = _stream_stats(ea, eb, paired, backend, groups)
    mu_a, mu_b = stats["sum_a"] / ea.n, stats["sum_b"] / eb.n
    delta = mu_a - mu_b
    norm = float(delta.norm())

    pair_distance = pair_cosine = relative = None
    if paired:
        pair_distance = float(stats["pair_dist"] / ea.n)
        pair_cosine = float(stats["pair_cos"] / ea.n)
        if ea.n >= 2:
            relative = _relative_gap(pair_cosine, stats, ea.n, eb.n)
        else:
            notes.append("relative_gap needs at least 2 pairs")

    sep = None
    if separability:
        probe = linear_separability(ea.data, eb.data, backend=backend, max_per_set=probe_rows, seed=seed)
        if probe is None:
            notes.append("linear_separability needs at least 5 rows in each set")
        else:
            sep = probe["accuracy"]
            if probe["rows_per_set"] < max(ea.n, eb.n):
                notes.append(f"linear_separability on {probe['rows_per_set']} rows per set (seeded sample)")

    top, share = _top_dimensions(delta, top_k)
    shift_points = None
    if shift is not None:
        deltas = [float(d) for d in shift]
        if norm == 0.0:
            raise InputError("shift experiment: the gap vector is zero, there is no direction to shift along")
        shift_points = _shift_experiment(ea, eb, delta / norm, deltas, paired, backend, shift_pairs, seed, notes)

    centroid = norm
    if groups is not None:
        est = groups.estimates(norm, pair_distance, pair_cosine, bootstrap, seed, level)
        centroid = est["centroid_distance"]
        pair_distance, pair_cosine = est.get("pair_distance", pair_distance), est.get("pair_cosine", pair_cosine)
    return GapResult(
        centroid_distance=estimate(centroid), pair_distance=estimate(pair_distance), pair_cosine=estimate(pair_cosine),
        relative_gap=relative, linear_separability=sep, top_dimensions=top,
        top_dimensions_share=share, n_a=ea.n, n_b=eb.n, dim=ea.dim, paired=bool(paired),
        shift=shift_points, notes=notes, gap_vector=delta.cpu().numpy(),
    )


def _stream_stats(ea, eb, paired: bool, backend: Backend, groups: "_Groups | None" = None) -> dict:
    """One pass: Σ l2n(rows), Σ ‖l2n(row)‖² per set; pair distances and cosines if paired
    (and the same sums per bootstrap group when ``groups`` is given)."""
    rows = backend.block_rows(ea.dim, copies=6)
    if groups is None:  # point estimates: on the current engine (compute.use_engine)
        if paired:
            sums = [accumulate([ea.data, eb.data], _GapSums, backend, rows=rows, desc="gap")]
        else:
            sums = [accumulate([e.data], _GapSums, backend, rows=rows, desc=f"gap {name}")
                    for name, e in (("A", ea), ("B", eb))]
        return _GapSums.as_stats(sums)

    def unit(data, lo):
        return l2_normalize(backend.tensor(data[lo : lo + rows]))

    # the bootstrap keeps per-group sums, which need each block's row offset: a local pass
    if paired:
        acc = _GapSums()
        for lo in row_blocks(0, ea.n, rows, "gap"):
            xa, xb = unit(ea.data, lo), unit(eb.data, lo)
            dist, cos = acc.add_units(xa, xb)
            groups.add("a", lo, xa, dist=dist, cos=cos)
            groups.add("b", lo, xb)
        return _GapSums.as_stats([acc])
    sums = []
    for name, emb in (("a", ea), ("b", eb)):
        sums.append(_GapSums())
        for lo in row_blocks(0, emb.n, rows, f"gap {name.upper()}"):
            x = unit(emb.data, lo)
            sums[-1].add_units(x)
            groups.add(name, lo, x)
    return _GapSums.as_stats(sums)


class _GapSums(UnitSums):
    """Σ l2n(row) and Σ ‖l2n(row)‖² per set, and for a pair of streams Σ ‖â_r − b̂_r‖ and
    Σ cos(a_r, b_r): every sum the gap statistics are finished from (an engine accumulator)."""

    def __init__(self, *, shift=None):
        super().__init__()
        self.pair_dist = self.pair_cos = None

    def add_units(self, *units: torch.Tensor):
        super().add_units(*units)
        if len(units) != 2:
            return None
        xa, xb = units
        dist, cos = (xa - xb).norm(dim=1), (xa * xb).sum(dim=1)
        if self.pair_dist is None:
            self.pair_dist = self.pair_cos = torch.zeros((), dtype=torch.float64, device=xa.device)
        self.pair_dist = self.pair_dist + dist.sum(dtype=torch.float64)
        self.pair_cos = self.pair_cos + cos.sum(dtype=torch.float64)
        return dist, cos

    def merge(self, other: "_GapSums") -> "_GapSums":
        super().merge(other)
        if other.pair_dist is not None:
            if self.pair_dist is None:
                self.pair_dist = self.pair_cos = torch.zeros((), dtype=torch.float64)
            dev = self.pair_dist.device
            self.pair_dist = self.pair_dist + other.pair_dist.to(dev)
            self.pair_cos = self.pair_cos + other.pair_cos.to(dev)
        return self

    @staticmethod
    def as_stats(sums: list) -> dict:
        """The sums by name: one paired accumulator (two streams), or one per set."""
        if len(sums) == 1:
            acc = sums[0]
            return {"sum_a": acc.sums[0], "sum_b": acc.sums[1], "sq_a": acc.sq[0], "sq_b": acc.sq[1],
                    "pair_dist": acc.pair_dist, "pair_cos": acc.pair_cos}
        a, b = sums
        return {"sum_a": a.sums[0], "sum_b": b.sums[0], "sq_a": a.sq[0], "sq_b": b.sq[0]}


class _Groups:
    """Per-group sums of unit rows (and pair statistics) for a bootstrap without a second pass.

    Rows are assigned to G groups (one per row while the sums fit in memory, else random
    balanced groups); a replicate draws groups with replacement and recombines their sums.
    """

    def __init__(self, labels: dict, dims: dict, paired: bool):
        self.labels, self.paired = labels, paired
        f64 = torch.float64
        self.sums = {k: torch.zeros(int(lab.max()) + 1, dims[k], dtype=f64) for k, lab in labels.items()}
        self.counts = {k: np.bincount(lab).astype(np.float64) for k, lab in labels.items()}
        size = int(next(iter(labels.values())).max()) + 1
        self.pair = {"dist": torch.zeros(size, dtype=f64), "cos": torch.zeros(size, dtype=f64)}

    @classmethod
    def make(cls, ea, eb, paired: bool, seed: int) -> "_Groups":
        from ..stats import group_count, group_labels

        def labels(n, d, salt):
            return group_labels(n, group_count(n, 8 * (2 * d + 4)), seed + salt)

        if paired:
            lab = labels(ea.n, ea.dim + eb.dim, 0)
            return cls({"a": lab, "b": lab}, {"a": ea.dim, "b": eb.dim}, True)
        return cls({"a": labels(ea.n, ea.dim, 0), "b": labels(eb.n, eb.dim, 1)}, {"a": ea.dim, "b": eb.dim}, False)

    def add(self, name: str, lo: int, x: torch.Tensor, dist=None, cos=None) -> None:
        lab = torch.as_tensor(self.labels[name][lo : lo + x.shape[0]])
        self.sums[name].index_add_(0, lab, x.detach().to("cpu", torch.float64))
        if dist is not None:
            self.pair["dist"].index_add_(0, lab, dist.detach().to("cpu", torch.float64))
            self.pair["cos"].index_add_(0, lab, cos.detach().to("cpu", torch.float64))

    def estimates(self, centroid: float, pair_distance, pair_cosine, n_resamples: int, seed: int,
                  level: float) -> dict:
        from ..stats import make_estimate, resample_indices

        g_a, g_b = len(self.counts["a"]), len(self.counts["b"])
        if self.paired:
            unit = "pairs" if g_a == len(self.labels["a"]) else f"{g_a} random groups of pairs"
            scheme = f"percentile bootstrap over {unit}"
        else:
            scheme = "percentile bootstrap over the rows of each set, resampled independently"
        draws_a = resample_indices(g_a, n_resamples, seed)
        draws_b = draws_a if self.paired else resample_indices(g_b, n_resamples, seed + 1)
        reps: dict[str, list] = {"centroid_distance": [], "pair_distance": [], "pair_cosine": []}
        for lo in range(0, n_resamples, 64):  # 64 replicates at a time bounds the count matrices
            m = min(64, n_resamples - lo)
            c_a = np.stack([np.bincount(next(draws_a), minlength=g_a) for _ in range(m)]).astype(np.float64)
            c_b = c_a if self.paired else np.stack([np.bincount(next(draws_b), minlength=g_b)
                                                    for _ in range(m)]).astype(np.float64)
            n_a, n_b = c_a @ self.counts["a"], c_b @ self.counts["b"]
            mu = (c_a @ self.sums["a"].numpy()) / n_a[:, None] - (c_b @ self.sums["b"].numpy()) / n_b[:, None]
            reps["centroid_distance"] += list(np.linalg.norm(mu, axis=1))
            if self.paired:
                reps["pair_distance"] += list((c_a @ self.pair["dist"].numpy()) / n_a)
                reps["pair_cosine"] += list((c_a @ self.pair["cos"].numpy()) / n_a)
        out = {"centroid_distance": make_estimate(centroid, reps["centroid_distance"], level, scheme)}
        if self.paired:
            out["pair_distance"] = make_estimate(pair_distance, reps["pair_distance"], level, scheme)
            out["pair_cosine"] = make_estimate(pair_cosine, reps["pair_cosine"], level, scheme)
        return out


def _mean_offdiag_cosine(total: torch.Tensor, sq: torch.Tensor, n: int) -> float:
    """mean_{i≠j} cos(x_i, x_j) = (‖Σ x̂_i‖² − Σ‖x̂_i‖²) / (n(n−1)), without n² pairs."""
    return float((total @ total - sq) / (n * (n - 1)))


def _relative_gap(pair_cosine: float, stats: dict, n_a: int, n_b: int) -> float:
    d_m = max(1.0 - (pair_cosine + 1.0) / 2.0, RMG_FLOOR)
    d_a = 1.0 - (_mean_offdiag_cosine(stats["sum_a"], stats["sq_a"], n_a) + 1.0) / 2.0
    d_b = 1.0 - (_mean_offdiag_cosine(stats["sum_b"], stats["sq_b"], n_b) + 1.0) / 2.0
    return d_m / (d_m + (d_a + d_b) / 2.0)


def _top_dimensions(delta: torch.Tensor, k: int) -> tuple[list[dict], float]:
    sq = delta * delta
    total = float(sq.sum())
    k = min(k, delta.numel())
    order = torch.argsort(delta.abs(), descending=True, stable=True)[:k]
    top = [{"dim": int(j), "delta": float(delta[j]), "share": float(sq[j] / total) if total > 0 else 0.0}
           for j in order]
    return top, float(sum(t["share"] for t in top))


def _shift_experiment(ea, eb, direction: torch.Tensor, deltas: list[float], paired: bool,
                      backend: Backend, max_pairs: int, seed: int, notes: list[str]) -> list[ShiftPoint]:
    g = direction.to(backend.dtype)
    sums = {k: torch.zeros(len(deltas), ea.dim, dtype=torch.float64, device=backend.device) for k in "ab"}
    rows = backend.block_rows(ea.dim, copies=4)
    for name, emb, sign in (("a", ea, -1.0), ("b", eb, 1.0)):
        for lo in row_blocks(0, emb.n, rows, f"shift {name.upper()}"):
            x = l2_normalize(backend.tensor(emb.data[lo : lo + rows]))
            for i, d in enumerate(deltas):
                sums[name][i] += l2_normalize(x + sign * 0.5 * d * g).sum(dim=0, dtype=torch.float64)
    dist = (sums["a"] / ea.n - sums["b"] / eb.n).norm(dim=1).cpu().numpy()
    r1 = [None] * len(deltas)
    if paired:
        n = ea.n
        idx = np.arange(n)
        if n > max_pairs:
            idx = np.sort(np.random.default_rng(seed).choice(n, max_pairs, replace=False))
            notes.append(f"shift r_at_1 on {max_pairs} of {n} pairs (seeded sample)")
        xa = l2_normalize(backend.tensor(ea.data[idx]))
        xb = l2_normalize(backend.tensor(eb.data[idx]))
        r1 = [_r_at_1(l2_normalize(xa - 0.5 * d * g), l2_normalize(xb + 0.5 * d * g)) for d in deltas]
    return [ShiftPoint(delta=d, centroid_distance=float(c), r_at_1=r) for d, c, r in zip(deltas, dist, r1)]


def _r_at_1(q: torch.Tensor, g: torch.Tensor, block: int = 1024) -> float:
    """Fraction of queries ranking their partner first (ties counted against the query)."""
    from ..ranks import ranks_from_scores

    hits = 0
    for lo in range(0, q.shape[0], block):
        s = q[lo : lo + block] @ g.T
        truth = torch.arange(lo, lo + s.shape[0], device=s.device)[:, None]
        hits += int((ranks_from_scores(s, truth) == 0).sum())
    return hits / q.shape[0]


def parse_shift(spec: str) -> list[float]:
    """``"-1:1:0.25"`` → [-1, -0.75, …, 1] (stop inclusive); ``"0,0.5,1"`` → a list."""
    return parse_grid(spec, f"shift {spec!r}")
