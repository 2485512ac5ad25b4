"""Representational similarity analysis (RSA): do two representations agree on which items differ?

Each representation of the same n items gets a representational dissimilarity matrix (RDM);
RSA correlates the two RDMs' upper triangles (pairs i < j) — by Spearman's rank correlation
(default; average ranks for ties, as ``scipy.stats.rankdata``) or Pearson's correlation.
Ranking treats dissimilarities within a rounding tolerance of each other as tied
(:func:`tie_tolerance`: 4(d + 16) ulps of the largest, ~1e-12 relative for d ≤ 1000), so that
mathematically tied entries — a categorical model RDM — still tie when rounding made them
differ by a few ulps; scipy, which ties only bitwise-equal values, can split such groups.

RDM choices (``rdm``), one dissimilarity per pair of rows:

* ``"correlation"``: 1 − Pearson r between the two rows across their features (each row is
  centred on its own mean and scaled to unit norm; Kriegeskorte et al.'s default).
* ``"cosine"``: 1 − cosine similarity of the two rows.
* ``"euclidean"``: Euclidean distance.

Direction and range: a *similarity* in [−1, 1] (1 = the RDMs are perfectly monotonically
(Spearman) or linearly (Pearson) related).

Invariances (:data:`INVARIANCES`; a transform of either input, applied to every row; a
rank or Pearson correlation ignores a positive rescaling of one RDM, so "isotropic scale"
holds for every RDM):

* correlation: isotropic scale only. A rotation does not commute with centring each row
  across its features (it moves the all-ones direction), and a translation by a vector t
  changes every row's centring and correlation unless t ∝ (1, …, 1).
* cosine: rotation and isotropic scale (inner products and norms are kept); translation moves
  the origin the angles are measured from.
* euclidean: rotation, translation and isotropic scale (distances are kept, or all scaled by
  the same factor).
* no RDM is invariant to a general invertible linear map (it distorts distances and angles).

Precision and cost: RSA computes in **float64** on the backend's device whatever the backend
dtype — in float32 the rounding of a dissimilarity (~d·1e-7 relative) exceeds the spacing of
the n(n−1)/2 values, so ranks and ties would be rounding noise. The upper triangles are held as
float64 vectors (two of them, 64 MB each at n = 4000, plus sort buffers for the ranks), so more
than ``max_n`` rows are refused unless ``sample`` asks for a seeded row sample; the RDM itself
is built in row strips (block × n), never as an n × n matrix.

Reference
---------
Kriegeskorte, Mur & Bandettini, "Representational similarity analysis – connecting the
branches of systems neuroscience", Frontiers in Systems Neuroscience 2:4, 2008.
"""
from __future__ import annotations

import numpy as np
import torch

from ..compute import Backend, as_backend
from ..errors import InputError
from ..io import as_embeddings, require_rows
from .prep import Prepared, check_positive, load, pair

METHODS = ("spearman", "pearson")
RDMS = ("correlation", "cosine", "euclidean")

#: For each RDM, whether RSA is unchanged when one input is transformed (every row alike).
INVARIANCES = {
    "correlation": {"rotation": False, "isotropic_scale": True, "translation": False, "invertible_linear": False},
    "cosine": {"rotation": True, "isotropic_scale": True, "translation": False, "invertible_linear": False},
    "euclidean": {"rotation": True, "isotropic_scale": True, "translation": True, "invertible_linear": False},
}

_BLOCK = 1024  # rows per RDM strip: a strip holds block × n dissimilarities


def rsa(x, y, *, method: str = "spearman", rdm: str = "correlation", max_n: int = 4000,
        sample: int | None = None, seed: int = 0, backend=None) -> float:
    """RSA between row-paired representations ``x`` and ``y``: a similarity in [−1, 1].

    Parameters
    ----------
    method : ``"spearman"`` (default) or ``"pearson"`` correlation of the RDM upper triangles.
    rdm : ``"correlation"`` (default), ``"cosine"`` or ``"euclidean"`` dissimilarity.
    max_n : more rows than this are refused (quadratic memory) unless ``sample`` is given.
    sample : compute RSA on this many rows drawn without replacement (seeded by ``seed``).
    backend : a :class:`~latentlab.compute.Backend` (its device is used; RSA always computes
        in float64) or a device spec (``"auto"``, ``"cpu"``, ``"cuda:N"``); default ``"auto"``.
    """
    return prepare_rsa(x, y, method=method, rdm=rdm, max_n=max_n, sample=sample, seed=seed,
                       backend=backend).value


def prepare_rsa(x, y, *, method: str = "spearman", rdm: str = "correlation", max_n: int = 4000,
                sample: int | None = None, seed: int = 0, backend=None) -> Prepared:
    """RSA of (x, y) ready for a permutation null: ``shuffled(perm)`` = ``rsa(x, y[perm])``.

    Both triangles are kept standardised (ranked first for Spearman). Shuffling B's rows
    re-indexes its RDM — entry (i, j) of y[perm]'s RDM is B's (perm[i], perm[j]) — so the
    permuted triangle is a permutation of B's triangle: for Spearman its ranks are B's ranks
    re-indexed (same multiset, ties included) and mean and norm are unchanged, so each
    shuffle is one gather and one dot product; nothing is re-ranked or re-embedded.

    With ``sample``, ``value`` and ``shuffled`` refer to the sampled rows: ``perm`` is then a
    permutation of ``range(sample)`` (``notes`` says so).
    """
    _choice(method, "method", METHODS)
    _choice(rdm, "rdm", RDMS)
    max_n = check_positive(max_n, "max_n", integer=True, allow_none=False)
    backend = _backend(backend)
    ea, eb = pair(x, y, "RSA", min_rows=3)
    rows, notes = None, []
    if sample is not None:
        sample = check_positive(sample, "sample", integer=True)
        if sample < 3:
            raise InputError(f"sample {sample}: RSA needs at least 3 rows")
        if sample < ea.n:
            rows = np.sort(np.random.default_rng(seed).choice(ea.n, sample, replace=False))
            notes.append(f"RSA on {sample} of {ea.n} rows (seeded sample without replacement, seed={seed}); "
                         f"shuffled(perm) permutes those {sample} rows")
    n = ea.n if rows is None else len(rows)
    if n > max_n:
        raise InputError(f"RSA holds the n(n−1)/2 pairwise dissimilarities; {n} rows exceed max_n {max_n}: "
                         "pass sample=m or raise max_n")
    za = _standardise(rdm_triangle(load(ea, backend, rows), rdm, name=ea.name), method, ea, rdm)
    zb = _standardise(rdm_triangle(load(eb, backend, rows), rdm, name=eb.name), method, eb, rdm)
    value = _clip(float(za @ zb))

    def shuffled(perm) -> float:
        return _clip(_permuted_dot(za, zb, _perm_tensor(perm, n, za.device), n))

    return Prepared(value, shuffled, notes)


def rdm_upper(x, *, rdm: str = "correlation", backend=None) -> np.ndarray:
    """Upper triangle (i < j, row-major: ``scipy.spatial.distance.pdist`` order) of x's RDM, float64."""
    _choice(rdm, "rdm", RDMS)
    ex = as_embeddings(x, "x")
    require_rows(ex, 2, "an RDM")
    return rdm_triangle(load(ex, _backend(backend)), rdm, name=ex.name).cpu().numpy()


def rdm_triangle(x: torch.Tensor, rdm: str, *, name: str = "input", block: int = _BLOCK) -> torch.Tensor:
    """The float64 upper triangle of the RDM of the rows of tensor ``x``, built in row strips."""
    x = x.to(torch.float64)
    n = x.shape[0]
    if rdm == "correlation":
        # exact test (not a variance threshold): a constant row has no correlation with anything
        _bad_row(x == x[:, :1], name, "is constant across its features (zero variance); "
                 "the correlation RDM (1 − Pearson r) is undefined for it")
        x = x - x.mean(1, keepdim=True)
    elif rdm == "cosine":
        _bad_row(x == 0, name, "is all zeros; the cosine RDM is undefined for it")
    if rdm != "euclidean":
        x = x / x.norm(dim=1, keepdim=True)
    out = torch.empty(n * (n - 1) // 2, dtype=torch.float64, device=x.device)
    pos = 0
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        # Coordinate differences, not the Gram expansion ‖u‖² + ‖v‖² − 2u·v (or 1 − u·v): the
        # expansion cancels for near-identical rows, leaving noise up to √eps relative where
        # the dissimilarity is 0 — far above the tie tolerance, so duplicated items would
        # not tie. Differences give exact zeros and errors of a few ulps per feature.
        d = torch.cdist(x[lo:hi], x[lo:], compute_mode="donot_use_mm_for_euclid_dist")
        if rdm != "euclidean":
            d = d.square_().mul_(0.5)  # unit rows: ‖u − v‖²/2 = 1 − u·v
        vals = d[_upper_mask(hi - lo, n - lo, x.device)]
        out[pos : pos + vals.numel()] = vals
        pos += vals.numel()
    return out


def rankdata(v: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
    """1-based ranks of a 1-D tensor, ties given their average rank (``scipy.stats.rankdata``).

    With ``tol`` > 0, sorted neighbours at most ``tol`` apart join one tie group (a group may
    chain across several such gaps); ``tol`` = 0 is scipy's exact-equality grouping.
    """
    sv, order = torch.sort(v)
    new = torch.ones(sv.shape, dtype=torch.bool, device=v.device)
    new[1:] = (sv[1:] - sv[:-1]) > tol
    group = torch.cumsum(new, 0) - 1
    counts = torch.bincount(group).to(torch.float64)
    avg = torch.cumsum(counts, 0) - (counts - 1.0) / 2.0  # mean of ranks end−count+1 … end
    ranks = torch.empty(v.shape, dtype=torch.float64, device=v.device)
    ranks[order] = avg[group]
    return ranks


def tie_tolerance(v: torch.Tensor, dim: int) -> float:
    """Gap below which two float64 dissimilarities of ``dim``-column rows count as tied.

    Mathematically equal dissimilarities need not come out bitwise equal: the RDM of one-hot
    class labels sums the same terms in different orders for different class pairs, and
    measured spreads grow like d/5 ulps (≈600 ulps at d = 3000 for the correlation RDM).
    Ranking that noise would turn a categorical model RDM's ties into an arbitrary order and
    move Spearman's value far beyond rounding. 4(d + 16) ulps of the largest value is ~20×
    that spread, yet ~1e-12 relative for d ≤ 1000: distinct dissimilarities of real data are
    practically never that close, and merging two such neighbours moves the ranks by ½.
    """
    return 4.0 * (dim + 16) * torch.finfo(torch.float64).eps * float(v.abs().max())


# --------------------------------------------------------------------------- helpers
def _standardise(v: torch.Tensor, method: str, emb, rdm: str) -> torch.Tensor:
    """Centred, unit-norm (ranks of) ``v``: a Pearson correlation is then one dot product."""
    tol = tie_tolerance(v, emb.dim)
    if float(v.max() - v.min()) <= tol:
        raise InputError(f"{emb.name}: every pairwise {rdm} dissimilarity is equal (constant RDM); RSA is undefined")
    if method == "spearman":
        v = rankdata(v, tol)
    v = v - v.mean()
    norm = v.norm()
    if not norm > 0:  # ties chained across the whole range
        raise InputError(f"{emb.name}: all pairwise {rdm} dissimilarities tie (constant RDM); RSA is undefined")
    return v / norm


def _permuted_dot(za: torch.Tensor, zb: torch.Tensor, p: torch.Tensor, n: int, block: int = _BLOCK) -> float:
    """Σ_{i<j} za[(i,j)] · zb[(p_i, p_j)], the triangle index of an unordered pair computed on the fly."""
    total = torch.zeros((), dtype=torch.float64, device=za.device)
    pos = 0
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        mask = _upper_mask(hi - lo, n - lo, za.device)
        pi = p[lo:hi, None].expand(hi - lo, n - lo)[mask]
        pj = p[None, lo:].expand(hi - lo, n - lo)[mask]
        a, b = torch.minimum(pi, pj), torch.maximum(pi, pj)
        idx = a * n - a * (a + 1) // 2 + (b - a - 1)  # rows before a hold a·n − a(a+1)/2 pairs
        total += za[pos : pos + idx.numel()] @ zb[idx]
        pos += idx.numel()
    return float(total)


def _upper_mask(rows: int, cols: int, device) -> torch.Tensor:
    """Strip mask of pairs (lo + r, lo + c) with c > r; boolean indexing keeps row-major order."""
    return torch.arange(cols, device=device)[None, :] > torch.arange(rows, device=device)[:, None]


def _bad_row(flags: torch.Tensor, name: str, why: str) -> None:
    bad = torch.nonzero(flags.all(1)).flatten()
    if bad.numel():
        more = f" (and {bad.numel() - 1} more rows)" if bad.numel() > 1 else ""
        raise InputError(f"{name}: row {int(bad[0])}{more} {why}")


def _perm_tensor(perm, n: int, device) -> torch.Tensor:
    perm = np.asarray(perm)
    if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
        raise InputError(f"perm: expected a permutation of range({n})")
    return torch.as_tensor(np.ascontiguousarray(perm), dtype=torch.int64, device=device)


def _choice(value, name: str, options) -> None:
    if value not in options:
        raise InputError(f"{name} {value!r}: expected {', '.join(options[:-1])} or {options[-1]}")


def _backend(backend) -> Backend:
    """The backend's device, in float64 (inputs are loaded in float64 too: see the module notes)."""
    b = backend if isinstance(backend, Backend) else as_backend(backend or "auto", "float64")
    return Backend(b.device, torch.float64, b.block_bytes)


def _clip(r: float) -> float:
    return min(1.0, max(-1.0, r))  # a dot of unit vectors may overshoot ±1 by rounding


__all__ = ["rsa", "prepare_rsa", "rdm_upper", "rdm_triangle", "rankdata", "tie_tolerance",
           "INVARIANCES", "METHODS", "RDMS"]
