"""Uniformity and alignment of L2-normalised embeddings (Wang & Isola, ICML 2020).

``uniformity`` = log mean over distinct pairs i < j of exp(−t‖x_i − x_j‖²): lower is more
uniform (the minimum on the sphere is approached by spread-out points; 0 means all rows
coincide). It is computed exactly in row blocks with a streaming log-sum-exp, so only one
block × block tile of the n × n matrix exists at a time. ``alignment`` = mean ‖a_i − b_i‖^α
over matched pairs: a distance, lower is better aligned.

References
----------
Wang & Isola, "Understanding Contrastive Representation Learning through Alignment and
Uniformity on the Hypersphere", ICML 2020 (their ``uniform_loss`` uses ``torch.pdist``,
i.e. the pairs i < j, and ``align_loss`` the mean of ‖a_i − b_i‖^α).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..blas import matmul
from ..compute import Backend, as_backend, l2_normalize
from ..errors import InputError
from ..io import Embeddings, as_embeddings, require_nonzero_rows, require_paired, require_rows
from ..progress import progress
from ..results import Estimate, ResultMixin, estimate
from .. import stats
from .prep import DISTANCE, check_positive

#: Normalised rows up to this many bytes are kept in memory between row blocks.
CACHE_BYTES = 512 * 2**20
#: Rows re-read per panel when the input is too large to keep (two panels are held).
PANEL_BYTES = 128 * 2**20
TILE = 4096


@dataclass(frozen=True)
class UniformityResult(ResultMixin):
    """Uniformity (lower = more uniform) and, for paired inputs, alignment (lower = closer)."""

    uniformity: Estimate
    uniformity_b: Estimate | None
    alignment: Estimate | None
    t: float
    alpha: float | None
    n: int
    pairs: int
    exact: bool
    bootstrap: str | None = None
    kind: str = "uniformity: log-mean Gaussian potential, lower = more uniform; alignment: " + DISTANCE
    notes: list[str] = field(default_factory=list)


def uniformity(a, b=None, *, t: float = 2.0, alpha: float = 2.0, sample: int | None = None,
               bootstrap: int | None = None, seed: int = 0, level: float = 0.95,
               device="auto", dtype="float32", tile: int | None = None) -> UniformityResult:
    """Uniformity of ``a`` (and ``b``), and the alignment of paired rows when ``b`` is given.

    Parameters
    ----------
    t : temperature of the Gaussian potential (Wang & Isola use t = 2).
    alpha : exponent of the alignment distance (α = 2 in the paper).
    sample : estimate uniformity on this many random distinct pairs instead of all n(n−1)/2
        (seeded); the result says so (``exact`` is False).
    bootstrap : percentile-bootstrap resamples. Rows are resampled (pairs of A and B
        together); pairs formed by two copies of the same row are excluded, as the statistic
        is over distinct items. All replicates are evaluated in one extra pass over the pairs.
    """
    t = check_positive(t, "t", allow_none=False)
    alpha = check_positive(alpha, "alpha", allow_none=False)
    bootstrap = check_positive(bootstrap, "bootstrap", integer=True)
    sample = check_positive(sample, "sample", integer=True)
    backend = as_backend(device, dtype)
    ea = as_embeddings(a, "A")
    require_rows(ea, 2, "uniformity")
    require_nonzero_rows(ea, "uniformity")
    eb = None
    if b is not None:
        eb = as_embeddings(b, "B")
        require_nonzero_rows(eb, "alignment")
        require_paired(ea, eb, "alignment")
        if ea.dim != eb.dim:
            raise InputError(f"alignment needs equal dimensions: {ea.name} has {ea.dim} but {eb.name} has {eb.dim}")
    n = ea.n
    total_pairs = n * (n - 1) // 2
    exact = sample is None or sample >= total_pairs
    notes: list[str] = []
    pairs = None
    if not exact:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, size=sample)
        j = (i + rng.integers(1, n, size=sample)) % n  # uniform over j ≠ i
        pairs = (np.minimum(i, j), np.maximum(i, j))
        notes.append(f"uniformity estimated on {sample} random pairs (seeded), not all {total_pairs}")
    counts = None
    if bootstrap:
        counts = lambda: (np.bincount(idx, minlength=n) for idx in stats.resample_indices(n, bootstrap, seed))  # noqa: E731

    def one(emb: Embeddings):
        src = _Normalised(emb, backend)
        if exact:
            value, peak = log_mean_exp_pairs(src, t, tile=tile)
            if counts is None:
                return value
            reps = _weighted_pairs_replicates(src, t, peak, counts(), tile=tile)
        else:
            e = _sampled_potentials(src, pairs, t)
            value = _log_mean(e)
            if counts is None:
                return value
            reps = [_log_mean(e, c[pairs[0]] * c[pairs[1]]) for c in counts()]
        scheme = f"{stats.ROW_SCHEME}, pairs of copies of one row excluded"
        return stats.make_estimate(value, reps, level, scheme)

    uni = one(ea)
    uni_b = one(eb) if eb is not None else None
    align = _alignment(ea, eb, alpha, backend, counts, level) if eb is not None else None
    return UniformityResult(uniformity=estimate(uni), uniformity_b=estimate(uni_b), alignment=estimate(align), t=t,
                            alpha=alpha if eb is not None else None, n=n,
                            pairs=total_pairs if exact else int(sample), exact=exact,
                            bootstrap=uni.method if isinstance(uni, Estimate) else None, notes=notes)


class _Normalised:
    """L2-normalised rows of an input, in memory when small, else re-read per panel."""

    def __init__(self, emb: Embeddings, backend: Backend):
        self.emb, self.backend, self.n = emb, backend, emb.n
        self.itemsize = torch.finfo(backend.dtype).bits // 8
        self.cache = None
        if emb.n * emb.dim * self.itemsize <= CACHE_BYTES:
            # filled block by block, so the peak is the cache plus one block (not two copies)
            self.cache = torch.empty(emb.n, emb.dim, dtype=backend.dtype, device=backend.device)
            step = backend.block_rows(emb.dim)
            for lo in range(0, emb.n, step):
                hi = min(lo + step, emb.n)
                self.cache[lo:hi] = self._read(lo, hi)

    def _read(self, lo: int, hi: int) -> torch.Tensor:
        x = self.backend.tensor(self.emb.rows(slice(lo, hi)))
        norms = x.norm(dim=1)
        if not bool((norms > 0).all()):
            row = lo + int(torch.nonzero(norms <= 0)[0])
            raise InputError(f"{self.emb.name}: row {row} is all zeros and cannot be L2-normalised")
        return x / norms[:, None]

    def rows(self, lo: int, hi: int) -> torch.Tensor:
        return self.cache[lo:hi] if self.cache is not None else self._read(lo, hi)

    def panel_rows(self) -> int:
        """Rows per panel: everything when cached, else a panel of about PANEL_BYTES."""
        return self.n if self.cache is not None else max(1, PANEL_BYTES // (self.emb.dim * self.itemsize))

    def take(self, idx: np.ndarray) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[torch.as_tensor(idx, device=self.cache.device)]
        return l2_normalize(self.backend.tensor(self.emb.rows(idx)))


def _tiles(n: int, tile: int):
    for lo in range(0, n, tile):
        for lo2 in range(lo, n, tile):
            yield lo, min(lo + tile, n), lo2, min(lo2 + tile, n)


def _logits(src: _Normalised, lo, hi, lo2, hi2, t: float, xi=None) -> torch.Tensor:
    """−t‖x_i − x_j‖² = 2t(cos − 1) for unit rows; on a diagonal tile pairs j ≤ i are −inf."""
    xi = src.rows(lo, hi) if xi is None else xi
    s = matmul(xi, src.rows(lo2, hi2).T)
    s.sub_(1.0).mul_(2.0 * t).clamp_max_(0.0)
    if lo == lo2:
        s.masked_fill_(torch.ones_like(s, dtype=torch.bool).tril_(), -math.inf)
    return s


def default_tile(device: torch.device) -> int:
    """Square tile edge. With d in the hundreds the GEMM (B²·d multiply-adds) dwarfs the two
    elementwise passes (exp, sum) over the B² tile, so the tile is sized for few, long
    parallel regions (4096² float32 = 64 MiB; measured 1.4× faster than 2048² on a shared
    2-core machine, where every short parallel region waits for a descheduled thread)
    rather than for cache; a GPU wants larger launches still."""
    return TILE if device.type == "cpu" else 8192


def _fixed_shift_ok(t: float, dtype: torch.dtype) -> bool:
    """Whether exp(2t·cos), cos ∈ [−1, 1], and tile sums of it stay finite and normal."""
    limit = 60.0 if dtype == torch.float32 else 600.0
    return 2.0 * t <= limit


def log_mean_exp_pairs(src: _Normalised, t: float, tile: int | None = None) -> tuple[float, float]:
    """log mean_{i<j} exp(−t‖x_i − x_j‖²) over the upper-triangle tiles; returns (value, shift).

    For unit rows −t‖x_i − x_j‖² = 2t·x_i·x_j − 2t, so each tile is one GEMM of the rows
    pre-scaled by 2t into a reused buffer, an in-place exp and a sum (in the compute dtype,
    which is exact to its rounding because every term is positive); the tile sums are
    accumulated in float64 and the constant e^{−2t} is applied once at the end. When 2t is
    too large for exp(2t·cos) to stay in range, each tile is shifted by its own maximum and
    combined by a streaming log-sum-exp instead. ``shift`` is an upper bound of the logits
    (0, or the largest logit), for the bootstrap pass.
    """
    n = src.n
    probe = src.rows(0, 1)
    dtype, device = probe.dtype, probe.device
    tile = tile or default_tile(device)
    fixed = _fixed_shift_ok(t, dtype)
    buf = torch.empty(tile * tile, dtype=dtype, device=device)
    scaled = torch.empty(tile, probe.shape[1], dtype=dtype, device=device)
    lower = None if fixed else torch.ones(tile, tile, dtype=torch.bool, device=device).tril_()
    acc = torch.zeros((), dtype=torch.float64, device=device)
    lse = [-math.inf, 0.0]  # running (max, sum) of the shifted path's log-sum-exp

    def add(xs: torch.Tensor, cols: torch.Tensor, diagonal: bool) -> None:
        """Σ exp(2t·x_i·x_j) over rows ``xs`` (pre-scaled) × ``cols``; if ``diagonal``, row r
        of ``xs`` is column r of ``cols`` and only the pairs right of it count."""
        h, w = xs.shape[0], cols.shape[0]
        s = matmul(xs, cols.T, out=buf[: h * w].view(h, w))
        if fixed:
            s.exp_()
            if diagonal:
                s.triu_(1)
            acc.add_(s.sum())
            return
        if diagonal:
            s.masked_fill_(lower[:h, :w], -math.inf)
        bmax = float(s.max())
        if bmax == -math.inf:  # a 1-row diagonal strip has no pair
            return
        bsum = float(s.sub_(bmax).exp_().sum(dtype=torch.float64))
        new = max(lse[0], bmax)
        lse[1] = lse[1] * math.exp(lse[0] - new) + bsum * math.exp(bmax - new)
        lse[0] = new

    strip = max(1, tile // 4)  # diagonal tiles go in strips, so only ~1/8 of one is wasted
    panel = src.panel_rows()
    bar = progress(total=n, desc="uniformity", unit="row")
    for plo in range(0, n, panel):
        xp = src.rows(plo, min(plo + panel, n))
        for qlo in range(plo, n, panel):
            xq = xp if qlo == plo else src.rows(qlo, min(qlo + panel, n))
            for lo in range(0, xp.shape[0], tile):
                hi = min(lo + tile, xp.shape[0])
                xs = torch.mul(xp[lo:hi], 2.0 * t, out=scaled[: hi - lo])
                if qlo == plo:
                    for r in range(lo, hi, strip):  # the diagonal tile: rows r.. vs columns r..hi
                        add(xs[r - lo : r - lo + strip], xq[r:hi], diagonal=True)
                    start = hi
                else:
                    start = 0
                for lo2 in range(start, xq.shape[0], tile):
                    add(xs, xq[lo2 : lo2 + tile], diagonal=False)
                if qlo == plo:
                    bar.update(hi - lo)
    bar.close()
    log_pairs = math.log(n * (n - 1) / 2)
    if fixed:
        return math.log(float(acc)) - 2.0 * t - log_pairs, 0.0
    run_max, run_sum = lse
    peak = run_max - 2.0 * t  # the largest logit 2t(cos − 1)
    return run_max + math.log(run_sum) - 2.0 * t - log_pairs, min(peak, 0.0)


def _weighted_pairs_replicates(src: _Normalised, t: float, peak: float, count_iter, tile: int | None = None,
                               chunk_bytes: int = 64 * 2**20) -> list[float]:
    """All bootstrap replicates log(Σ_{i<j} c_i c_j e_ij / Σ_{i<j} c_i c_j) in passes over the tiles.

    ``e_ij`` is taken relative to the largest logit (``peak``) in float64, so it cannot
    underflow for any sensible t; replicates are processed in chunks of count vectors.
    """
    n = src.n
    tile = tile or 2048  # each tile is also multiplied by a (replicates × tile) count matrix
    reps: list[float] = []
    per = max(1, int(chunk_bytes // (8 * n)))
    counts = list(count_iter)
    device = src.rows(0, 1).device
    for c0 in range(0, len(counts), per):
        c = torch.as_tensor(np.stack(counts[c0 : c0 + per]), dtype=torch.float64, device=device)
        num = torch.zeros(c.shape[0], dtype=torch.float64, device=device)
        for lo, hi, lo2, hi2 in _tiles(n, tile):
            e = _logits(src, lo, hi, lo2, hi2, t).to(torch.float64).sub_(peak).exp_()
            num += ((c[:, lo:hi] @ e) * c[:, lo2:hi2]).sum(1)
        den = (c.sum(1) ** 2 - (c * c).sum(1)) / 2.0
        reps.extend((torch.log(num / den) + peak).tolist())
    return reps


def _sampled_potentials(src: _Normalised, pairs, t: float) -> np.ndarray:
    i, j = pairs
    out = np.empty(len(i), dtype=np.float64)
    step = 65536
    for lo in range(0, len(i), step):
        xi, xj = src.take(i[lo : lo + step]), src.take(j[lo : lo + step])
        d2 = ((xi - xj) ** 2).sum(1)
        out[lo : lo + step] = (-t * d2).to(torch.float64).cpu().numpy()
    return out


def _log_mean(logits: np.ndarray, weights: np.ndarray | None = None) -> float:
    """log(Σ w e^l / Σ w), stably."""
    w = np.ones_like(logits) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = w > 0
    if not keep.any():
        return float("nan")
    l, w = logits[keep], w[keep]
    m = l.max()
    return float(m + np.log(np.sum(w * np.exp(l - m))) - np.log(w.sum()))


def _alignment(ea, eb, alpha: float, backend: Backend, counts, level: float):
    """mean_i ‖â_i − b̂_i‖^α over matched rows (streamed); bootstrap by resampling rows."""
    rows = backend.block_rows(ea.dim, copies=4)
    per_row = np.empty(ea.n, dtype=np.float64)
    for lo in range(0, ea.n, rows):
        xa = l2_normalize(backend.tensor(ea.rows(slice(lo, lo + rows))))
        xb = l2_normalize(backend.tensor(eb.rows(slice(lo, lo + rows))))
        per_row[lo : lo + xa.shape[0]] = (xa - xb).norm(dim=1).pow(alpha).to(torch.float64).cpu().numpy()
    value = float(per_row.mean())
    if counts is None:
        return value
    reps = [float(c @ per_row / c.sum()) for c in counts()]
    return stats.make_estimate(value, reps, level, f"{stats.ROW_SCHEME}, paired")


__all__ = ["uniformity", "UniformityResult", "log_mean_exp_pairs"]
