"""GRAM volumes: how well k ≥ 2 paired modalities agree, one parallelotope per row.

For row i, take the k L2-normalised vectors v₁ … v_k (row i of every set) and their k × k
Gram matrix G = [⟨v_a, v_b⟩]. The GRAM volume is √det G, the volume of the parallelotope the
vectors span: 0 when they are linearly dependent (e.g. identical), 1 when they are
orthonormal, and for k = 2 it is √(1 − cos²θ) = sin θ, the sine of the angle between the pair.
Smaller = better aligned (a distance-like score in [0, 1], by Hadamard's inequality).

Retrieval (as in the paper's GRAM-based retrieval): a query row q (row i of the query set) is
compared with each candidate j — the tuple made of row j of every *other* set — by the volume
of {q, o₁ⱼ, …, o_{k−1}ⱼ}; candidates are ranked by smallest volume and the truth is j = i.
Computed without forming any n × n × k tensor: with the candidate's vectors orthonormalised
(QR, O_j = U_j R_j), det G(q, O_j) = det(O_jᵀO_j) · (1 − ‖U_jᵀq‖²) (Schur complement: the squared
volume of the candidate times q's squared distance to their span), so a query block against a
candidate chunk costs k − 1 matrix products. Ranks count ties against the query
(:mod:`latentlab.ranks`).

Volumes come from QR (|Π diag R|), not from det G: for nearly dependent vectors det G is a
difference of numbers near 1 and its square root amplifies the rounding to ~1e-8, while the
R factor keeps the small volume to ~1e-16.

Reference
---------
Cicchetti, Grassucci, Sigillo & Comminiello, "Gramian Multimodal Representation Learning and
Alignment", ICLR 2025 (arXiv 2412.11959).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..compute import as_backend, l2_normalize
from ..errors import InputError
from ..io import as_embeddings, require_nonzero_rows, require_paired, require_rows
from ..ranks import ranks_from_scores, summarize_ranks
from ..results import ResultMixin

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
DEFAULT_KS = (1, 5, 10)


@dataclass(frozen=True)
class GramRetrieval(ResultMixin):
    """Row i of the query set among the candidate tuples of the other sets, smallest volume first."""

    query: str
    recall: dict  # "r_at_K" → fraction of queries whose partner is in the K smallest volumes
    median_rank: float
    mean_rank: float
    mrr: float
    chance_r_at_1: float
    n_queries: int


@dataclass(frozen=True)
class GramResult(ResultMixin):
    """GRAM volume of each row's k L2-normalised vectors: mean, quantiles, histogram (lower = closer)."""

    names: list[str]
    n: int
    dim: int
    k: int
    mean: float
    std: float
    quantiles: dict  # "q05" … "q95"
    histogram: dict  # {"edges": [...], "counts": [...]} over [0, 1]
    retrieval: GramRetrieval | None
    direction: str = "distance (lower = better aligned; 0 = dependent vectors, 1 = orthonormal)"
    notes: list[str] = field(default_factory=list)


def gram_volumes(vectors: torch.Tensor) -> torch.Tensor:
    """√det G per row of a (rows, k, d) tensor of vectors (L2-normalised here): |Π diag R| of the QR
    of each row's d × k matrix. Float64 on the input's device; (rows,) tensor."""
    v = l2_normalize(vectors.to(torch.float64))
    if v.shape[1] > v.shape[2]:
        return torch.zeros(v.shape[0], dtype=torch.float64, device=v.device)  # k > d vectors are dependent
    r = torch.linalg.qr(v.transpose(1, 2), mode="r").R
    return torch.diagonal(r, dim1=1, dim2=2).abs().prod(dim=1)


def _candidate_basis(others: list[torch.Tensor]):
    """Per candidate row j: an orthonormal basis U_j of its k − 1 vectors and their squared volume."""
    stack = torch.stack(others, dim=2)  # (n, d, k − 1)
    q, r = torch.linalg.qr(stack)
    vol2 = torch.diagonal(r, dim1=1, dim2=2).pow(2).prod(dim=1)
    return q, vol2


def _scores(q: torch.Tensor, basis: torch.Tensor, vol2: torch.Tensor) -> torch.Tensor:
    """−(squared volume) of {q_i, candidate j} for a query block × candidate chunk (higher = better)."""
    proj = torch.zeros(q.shape[0], basis.shape[0], dtype=q.dtype, device=q.device)
    for m in range(basis.shape[2]):
        proj += (q @ basis[:, :, m].T) ** 2
    return -(vol2[None, :] * (1.0 - proj).clamp_min(0.0))


def _retrieval_ranks(query: torch.Tensor, others: list[torch.Tensor], backend) -> np.ndarray:
    """0-based rank of candidate i for query i (ties against), query blocks × candidate chunks."""
    n, d = query.shape
    block, chunk = backend.score_tiles(n, d * len(others))
    out = np.empty(n, dtype=np.int64)
    chunks = [(g0, *_candidate_basis([o[g0 : g0 + chunk] for o in others])) for g0 in range(0, n, chunk)]
    for q0 in range(0, n, block):
        q = query[q0 : q0 + block]
        truth = torch.arange(q0, q0 + q.shape[0], device=q.device)[:, None]
        if len(chunks) == 1:
            out[q0 : q0 + q.shape[0]] = ranks_from_scores(_scores(q, *chunks[0][1:]), truth).cpu().numpy()
            continue
        # two passes over the same chunks with the same kernel: the truth's score is bit-identical in both
        best = torch.full((q.shape[0],), -torch.inf, dtype=q.dtype, device=q.device)
        for g0, basis, vol2 in chunks:
            s = _scores(q, basis, vol2)
            inside = (truth >= g0) & (truth < g0 + s.shape[1])
            rel = torch.gather(s, 1, (truth - g0).clamp(0, s.shape[1] - 1))
            best = torch.maximum(best, torch.where(inside, rel, torch.full_like(rel, -torch.inf)).max(dim=1).values)
        count = torch.zeros(q.shape[0], dtype=torch.int64, device=q.device)
        for g0, basis, vol2 in chunks:
            count += (_scores(q, basis, vol2) >= best[:, None]).sum(dim=1)
        out[q0 : q0 + q.shape[0]] = (count - 1).cpu().numpy()
    return out


def _check_ks(ks, n: int) -> tuple[int, ...]:
    try:
        out = tuple(int(k) for k in ks)
    except (TypeError, ValueError):
        raise InputError(f"ks {ks!r}: expected positive whole numbers") from None
    if not out or any(k < 1 for k in out):
        raise InputError(f"ks {ks!r}: expected positive whole numbers")
    return tuple(sorted(set(out)))


def _query_index(query, names: list[str], specs: list) -> int:
    if query is None:
        return 0
    if isinstance(query, (int, np.integer)) and not isinstance(query, bool):
        if not 0 <= int(query) < len(names):
            raise InputError(f"query {query}: expected an index 0..{len(names) - 1} or one of the inputs")
        return int(query)
    for i, (name, spec) in enumerate(zip(names, specs)):
        if str(query) in (name, str(spec)):
            return i
    if str(query).isdigit() and int(query) < len(names):
        return int(query)
    raise InputError(f"query {query!r}: not one of the inputs ({', '.join(map(str, specs))}) nor an index")


def gram(inputs, *, query=None, ks=DEFAULT_KS, retrieval: bool = True, bins: int = 20,
         device="auto", dtype="float32") -> GramResult:
    """GRAM volumes of k ≥ 2 row-paired sets of equal width (Cicchetti et al., ICLR 2025).

    Parameters
    ----------
    inputs : k ≥ 2 paths / arrays, row i of each being the same item in another modality.
    query : which input is the query of the retrieval (index, or the path as given); default the first.
    ks : the k of recall@k.
    retrieval : also rank, for each query row, every candidate tuple by volume (O(n² k d)).
    bins : histogram bins over [0, 1].
    """
    specs = list(inputs)
    if len(specs) < 2:
        raise InputError(f"inputs: GRAM needs at least 2 row-paired sets, got {len(specs)}")
    embs = [as_embeddings(x, f"inputs[{i}]") for i, x in enumerate(specs)]
    for e in embs[1:]:
        require_paired(embs[0], e, "GRAM")
        if e.dim != embs[0].dim:
            raise InputError(f"{e.name}: GRAM needs equal widths (one shared space), but it has {e.dim} dims and "
                             f"{embs[0].name} has {embs[0].dim}")
    require_rows(embs[0], 2, "GRAM")
    for e in embs:
        require_nonzero_rows(e, "GRAM")
    if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool) or bins < 1:
        raise InputError(f"bins {bins!r}: expected a positive whole number")
    names = [e.name for e in embs]
    qi = _query_index(query, names, specs) if retrieval else None
    ks = _check_ks(ks, embs[0].n) if retrieval else ()
    backend = as_backend(device, dtype).float64()  # volumes of nearly dependent vectors need float64
    n, d, k = embs[0].n, embs[0].dim, len(embs)
    notes = []
    if k > d:
        notes.append(f"{k} vectors in {d} dims are always linearly dependent: every volume is 0")
    rows = max(1, backend.block_rows(d * k, copies=3))
    vols = torch.cat([gram_volumes(torch.stack([backend.tensor(e.rows(slice(lo, lo + rows))) for e in embs], dim=1))
                      for lo in range(0, n, rows)])
    qs = torch.quantile(vols, torch.tensor(QUANTILES, dtype=vols.dtype, device=vols.device)).cpu().numpy()
    counts = torch.histc(vols.clamp(0.0, 1.0), bins=bins, min=0.0, max=1.0).cpu().numpy()
    ret = None
    if retrieval:
        xs = [l2_normalize(backend.tensor(e.rows(slice(None)))) for e in embs]
        others = [x for i, x in enumerate(xs) if i != qi]
        ranks = _retrieval_ranks(xs[qi], others, backend)
        big = [kk for kk in ks if kk > n]
        if big:
            notes.append(f"recall at k = {', '.join(map(str, big))} ≥ the {n} candidates is 1 by construction")
        rm = summarize_ranks(ranks)
        ret = GramRetrieval(query=names[qi], recall={f"r_at_{kk}": float(np.mean(ranks < kk)) for kk in ks},
                            median_rank=rm.median_rank, mean_rank=rm.mean_rank, mrr=rm.mrr,
                            chance_r_at_1=1.0 / n, n_queries=n)
    return GramResult(names=names, n=n, dim=d, k=k, mean=float(vols.mean()),
                      std=float(vols.std()) if n > 1 else 0.0,
                      quantiles={f"q{int(round(100 * q)):02d}": float(v) for q, v in zip(QUANTILES, qs)},
                      histogram={"edges": np.linspace(0.0, 1.0, bins + 1).round(12).tolist(),
                                 "counts": [int(c) for c in counts]},
                      retrieval=ret, notes=notes)


__all__ = ["gram", "gram_volumes", "GramResult", "GramRetrieval"]
