"""Distance correlation (dCor) of two row-paired representations, in row blocks.

With a_ij = ‖x_i − x_j‖ and b_ij = ‖y_i − y_j‖ (Euclidean), the double-centred matrices
A_ij = a_ij − ā_i· − ā_·j + ā_·· (and B) give the V-statistics dCov²_n = (1/n²) Σ A_ij B_ij,
dVar²_n(X) = (1/n²) Σ A_ij², and dCor²_n = dCov²_n / √(dVar²_n(X) dVar²_n(Y)).

What is returned:

* default: **dCor = √dCor²_n**, the distance correlation itself (not squared), as
  ``dcor.distance_correlation``. Range [0, 1]: 0 ⇔ (in the population) independence, 1 when
  one set is a similarity transform (rotation, scale, shift) of the other.
* ``bias_corrected=True``: the **bias-corrected squared** distance correlation, with the
  U-centred matrices Ã_ij = a_ij − a_i·/(n−2) − a_·j/(n−2) + a_··/((n−1)(n−2)), Ã_ii = 0
  (a_i·: row *sums*), and R* = (Ã·B̃)/√((Ã·Ã)(B̃·B̃)), (Ã·B̃) = Σ_{i≠j} Ã_ij B̃_ij/(n(n−3)),
  as ``dcor.u_distance_correlation_sqr``. It is *squared* and *not clamped*: it lies in
  [−1, 1] (Cauchy–Schwarz for the U-centred inner product) and is near 0, often slightly
  negative, for independent inputs. Needs n ≥ 4.

Both are similarities (higher = more dependent). Invariances (:data:`INVARIANCES`), each space
separately: translation, rotation and isotropic scaling (distances are kept or all scaled
alike, and the ratio cancels the scale); not a general invertible linear map.

Memory: no n × n matrix is held. Pass 1 sums each distance matrix's rows tile by tile;
pass 2 recomputes the tiles, centres them with those sums and accumulates Σ A·B, Σ A², Σ B².
Tiles are ``block`` × ``block`` over the upper block triangle (symmetry: off-diagonal tiles
count twice), so time is O(n²(d_x + d_y)) and memory O(n + block²). Distances are computed
in the backend dtype (default float64) and every sum is accumulated in float64.

References
----------
Székely, Rizzo & Bakirov, "Measuring and testing dependence by correlation of distances",
Annals of Statistics 35(6), 2007. Székely & Rizzo, "The distance correlation t-test of
independence in high dimension", J. Multivariate Analysis 117, 2013 (bias-corrected dCor);
Székely & Rizzo, "Partial distance correlation with methods for dissimilarities", Annals of
Statistics 42(6), 2014 (its U-centred form used here).
"""
from __future__ import annotations

import numpy as np
import torch

from ..blas import matmul
from ..compute import Backend, as_backend
from ..errors import InputError
from .prep import Prepared, check_positive, load, pair

#: Whether dCor is unchanged when one input is transformed (every row alike).
INVARIANCES = {"rotation": True, "isotropic_scale": True, "translation": True, "invertible_linear": False}

_UNDEFINED = "distance correlation is undefined for a constant input"


def distance_correlation(x, y, *, bias_corrected: bool = False, block: int = 2048, backend=None) -> float:
    """Distance correlation of row-paired ``x`` and ``y`` (see the module docstring).

    Returns dCor in [0, 1] (not squared), or with ``bias_corrected=True`` the bias-corrected
    *squared* distance correlation in [−1, 1]. ``block`` is the tile side in rows; ``backend``
    a :class:`~latentlab.compute.Backend` or a device spec computed in float64 (default
    ``"auto"``, float64).
    """
    return prepare_distcorr(x, y, bias_corrected=bias_corrected, block=block, backend=backend).value


def prepare_distcorr(x, y, *, bias_corrected: bool = False, block: int = 2048, backend=None) -> Prepared:
    """Distance correlation of (x, y) ready for a permutation null.

    ``shuffled(perm)`` equals ``distance_correlation(x, y[perm])``. Permuting B's rows permutes
    the rows and columns of its distance matrix alike, so Σ B² (dVar of B), Σ A² and the
    centring sums (B's row sums re-indexed by ``perm``) are cached; only the cross sum
    Σ A_ij B_perm(i)perm(j) needs a pass, which recomputes the A and B tiles from the stored
    rows (B's taken in permuted order). Holding the centred n × n matrices instead would make
    each shuffle a gather rather than O(n²d) arithmetic, but would break the O(n + block²)
    memory bound the statistic itself keeps; a shuffle costs one pass 2, as much as computing
    dCor once minus its first pass.
    """
    block = check_positive(block, "block", integer=True, allow_none=False)
    backend = backend if isinstance(backend, Backend) else as_backend(backend or "auto", "float64")
    ea, eb = pair(x, y, "distance correlation", min_rows=4 if bias_corrected else 2)
    xt, yt = load(ea, backend), load(eb, backend)
    for t, e in ((xt, ea), (yt, eb)):
        if not bool((t != t[:1]).any()):  # exact: all rows identical
            raise InputError(f"{e.name}: all rows are identical; {_UNDEFINED}")
    # Distances do not depend on the origin; centring the columns first keeps the norms small,
    # so the Gram expansion ‖u‖² + ‖v‖² − 2u·v does not cancel for data far from the origin.
    xt, yt = xt - xt.mean(0), yt - yt.mean(0)
    n = xt.shape[0]
    rx, ry = _row_sums(xt, block), _row_sums(yt, block)
    ab, aa, bb = _centred_sums(xt, yt, rx, ry, bias_corrected, block, self_terms=True)
    for s, e in ((aa, ea), (bb, eb)):
        if not s > 0:  # dVar² = 0
            raise InputError(f"{e.name}: zero distance variance; {_UNDEFINED}")

    def shuffled(perm) -> float:
        p = _perm_tensor(perm, n, yt.device)
        cross, _, _ = _centred_sums(xt, yt[p], rx, ry[p], bias_corrected, block, self_terms=False)
        return _finish(cross, aa, bb, bias_corrected)

    notes = ["bias-corrected squared distance correlation (U-centred; range [−1, 1], may be negative)"
             if bias_corrected else "distance correlation dCor (not squared; range [0, 1])"]
    return Prepared(_finish(ab, aa, bb, bias_corrected), shuffled, notes)


# --------------------------------------------------------------------------- blockwise passes
def _tiles(n: int, block: int):
    """Tile corners (lo, hi, lo2, hi2) of the upper block triangle, and each tile's weight."""
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        for lo2 in range(lo, n, block):
            yield lo, hi, lo2, min(lo2 + block, n), 1.0 if lo2 == lo else 2.0


def _dist(x: torch.Tensor, sq: torch.Tensor, lo: int, hi: int, lo2: int, hi2: int) -> torch.Tensor:
    """Euclidean distances of rows lo:hi to rows lo2:hi2, as float64."""
    d2 = sq[lo:hi, None] + sq[None, lo2:hi2] - 2.0 * matmul(x[lo:hi], x[lo2:hi2].T)
    d = d2.clamp_min_(0.0).sqrt_().to(torch.float64)
    if lo == lo2:
        # the expansion leaves ~eps·‖x‖² on the diagonal, whose square root (~1e-8‖x‖ in
        # float64) is far above the rounding of genuine distances: set the known zeros.
        # Duplicated rows elsewhere keep that error; it is continuous in the data, so dCor
        # moves by rounding only (no ranks here), unlike RSA which uses exact differences.
        d.fill_diagonal_(0.0)
    return d


def _row_sums(x: torch.Tensor, block: int) -> torch.Tensor:
    """Pass 1: Σ_j ‖x_i − x_j‖ for every row i (float64), one tile of the triangle at a time."""
    n = x.shape[0]
    sq = (x * x).sum(1)
    r = torch.zeros(n, dtype=torch.float64, device=x.device)
    for lo, hi, lo2, hi2, _ in _tiles(n, block):
        d = _dist(x, sq, lo, hi, lo2, hi2)
        r[lo:hi] += d.sum(1)
        if lo2 != lo:  # the mirrored tile contributes to the column rows
            r[lo2:hi2] += d.sum(0)
    return r


def _centre(d: torch.Tensor, r: torch.Tensor, lo, hi, lo2, hi2, u: bool) -> torch.Tensor:
    """Double-centred (V) or U-centred tile of a distance matrix with row sums ``r``."""
    n = r.shape[0]
    # V: ā_i = r_i/n, ā = Σr/n²;  U: r_i/(n−2) and Σr/((n−1)(n−2)), with a zero diagonal
    c1, c2 = (1.0 / (n - 2), 1.0 / ((n - 1.0) * (n - 2.0))) if u else (1.0 / n, 1.0 / n**2)
    out = d - c1 * (r[lo:hi, None] + r[None, lo2:hi2]) + c2 * r.sum()
    if u and lo == lo2:
        out.fill_diagonal_(0.0)
    return out


def _centred_sums(x, y, rx, ry, u: bool, block: int, *, self_terms: bool):
    """Pass 2: Σ A_ij B_ij (and Σ A², Σ B² when ``self_terms``) over all i, j, in float64."""
    n = x.shape[0]
    sx, sy = (x * x).sum(1), (y * y).sum(1)
    ab = aa = bb = torch.zeros((), dtype=torch.float64, device=x.device)
    for lo, hi, lo2, hi2, w in _tiles(n, block):
        a = _centre(_dist(x, sx, lo, hi, lo2, hi2), rx, lo, hi, lo2, hi2, u)
        b = _centre(_dist(y, sy, lo, hi, lo2, hi2), ry, lo, hi, lo2, hi2, u)
        ab = ab + w * (a * b).sum()
        if self_terms:
            aa, bb = aa + w * (a * a).sum(), bb + w * (b * b).sum()
    return float(ab), float(aa), float(bb)


def _finish(ab: float, aa: float, bb: float, u: bool) -> float:
    # The normalisations 1/n² (V) and 1/(n(n−3)) (U) are common to the three sums and cancel.
    r2 = ab / np.sqrt(aa * bb)
    if u:
        return float(r2)
    return float(np.sqrt(min(1.0, max(0.0, r2))))  # dCor² ≥ 0 up to rounding


def _perm_tensor(perm, n: int, device) -> torch.Tensor:
    perm = np.asarray(perm)
    if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
        raise InputError(f"perm: expected a permutation of range({n})")
    return torch.as_tensor(np.ascontiguousarray(perm), dtype=torch.int64, device=device)


__all__ = ["distance_correlation", "prepare_distcorr", "INVARIANCES"]
