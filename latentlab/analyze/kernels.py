"""Building blocks of kernel (HSIC) statistics that never hold an n × n matrix.

* :class:`RowNormMoments` streams the per-row squared norms the debiased linear HSIC needs
  (Σ_r ‖x̄_r‖²‖ȳ_r‖² with x̄ centred at the *final* mean), as sums around a shift.
* :func:`median_sq_distance` and :func:`rbf_pair_sums` walk the upper triangle of the
  pairwise matrices in row blocks; :func:`hsic_from_sums` turns the block sums into the
  biased (Gretton et al. 2005) or unbiased (Song et al. 2012) HSIC.

References
----------
Gretton, Bousquet, Smola & Schölkopf, "Measuring Statistical Dependence with
Hilbert-Schmidt Norms", ALT 2005. Song, Smola, Gretton, Bedo & Borgwardt, "Feature Selection
via Dependence Maximization", JMLR 13, 2012, eq. (5).
"""
from __future__ import annotations

import torch

from ..blas import matmul


class RowNormMoments:
    """Streaming sums for Σ_r ‖x_r − μ_x‖² ‖y_r − μ_y‖² over row-aligned streams (float64).

    With c_r = x_r − s (s: a fixed shift, the first block's mean), a_r = ‖c_r‖² and m the mean
    of c, ‖x_r − μ‖² = a_r − 2 c_r·m + ‖m‖²; the product over two streams expands into the
    sums kept here plus the centred cross-product C_ij, which the caller supplies.
    """

    def __init__(self, *, shift: list[torch.Tensor] | None = None):
        self.n = 0
        self.shift: list[torch.Tensor] | None = None
        self.s1: list[torch.Tensor] = []
        self.sa: list[torch.Tensor] = []
        self.saa: dict[tuple[int, int], torch.Tensor] = {}
        self.sac: dict[tuple[int, int], torch.Tensor] = {}
        if shift is not None:  # a given shift (an engine's partial pass): sums that add up exactly
            self._start(list(shift))

    def _start(self, shift: list[torch.Tensor]) -> None:
        self.shift = shift
        self.s1 = [torch.zeros_like(s) for s in shift]
        self.sa = [torch.zeros((), dtype=torch.float64, device=s.device) for s in shift]

    def merge(self, other: "RowNormMoments") -> "RowNormMoments":
        """Add the sums of ``other``, accumulated around the same shift."""
        if other.n == 0:
            return self
        if self.shift is None:
            self._start(other.shift)
        if not all(torch.equal(a, b.to(a.device)) for a, b in zip(self.shift, other.shift)):
            raise ValueError("merge() needs accumulators summed around the same shift")
        dev = self.s1[0].device
        for i in range(len(self.s1)):
            self.s1[i] += other.s1[i].to(dev)
            self.sa[i] += other.sa[i].to(dev)
        for mine, theirs in ((self.saa, other.saa), (self.sac, other.sac)):
            for key, v in theirs.items():
                mine[key] = mine[key] + v.to(dev) if key in mine else v.to(dev)
        self.n += other.n
        return self

    def update(self, *blocks: torch.Tensor) -> "RowNormMoments":
        blocks = [b.to(torch.float64) for b in blocks]
        if self.shift is None:
            self._start([b.mean(0) for b in blocks])
        cs = [b - s for b, s in zip(blocks, self.shift)]
        sq = [(c * c).sum(1) for c in cs]
        k = len(cs)
        for i in range(k):
            self.s1[i] += cs[i].sum(0)
            self.sa[i] += sq[i].sum()
            for j in range(k):
                key = (i, j)
                prod = sq[i] @ cs[j]
                self.sac[key] = self.sac[key] + prod if key in self.sac else prod
                if i <= j:
                    v = sq[i] @ sq[j]
                    self.saa[key] = self.saa[key] + v if key in self.saa else v
        self.n += int(blocks[0].shape[0])
        return self

    def sqnorm_products(self, i: int, j: int, c_ij: torch.Tensor) -> float:
        """Σ_r ‖x_i,r − μ_i‖² ‖x_j,r − μ_j‖², given C_ij = Σ_r (x_i,r − μ_i)(x_j,r − μ_j)ᵀ."""
        n = self.n
        m, p = self.s1[i] / n, self.s1[j] / n
        raw = c_ij + n * torch.outer(m, p)  # Σ c_i c_jᵀ around the shift
        return centred_sqnorm_products(n, self.saa[(min(i, j), max(i, j))], self.sa[i], self.sa[j],
                                       self.sac[(i, j)], self.sac[(j, i)], self.s1[i], self.s1[j], raw)


def centred_sqnorm_products(n, saa, sa_i, sa_j, sac_ij, sac_ji, s1_i, s1_j, raw_ij) -> float:
    """Σ_r ‖c_ir − m_i‖² ‖c_jr − m_j‖² from sums around a shift — the one home of this expansion.

    c: shifted rows, a = ‖c‖², m = Σc / n; ``saa`` = Σ a_i a_j, ``sa_i`` = Σ a_i, ``sac_ij`` =
    Σ a_i c_j, ``s1_i`` = Σ c_i, ``raw_ij`` = Σ c_i c_jᵀ. Expanding ‖c − m‖² = a − 2c·m + ‖m‖²
    in both factors gives the nine terms below (numpy or torch operands).
    """
    mi, mj = s1_i / n, s1_j / n
    pi, pj = float(mi @ mi), float(mj @ mj)
    return float(saa - 2 * (mj @ sac_ij) + pj * sa_i - 2 * (mi @ sac_ji) + 4 * (mi @ raw_ij @ mj)
                 - 2 * pj * (mi @ s1_i) + pi * sa_j - 2 * pi * (mj @ s1_j) + n * pi * pj)


def _sq_dist(xi: torch.Tensor, xj: torch.Tensor, ni: torch.Tensor, nj: torch.Tensor) -> torch.Tensor:
    return (ni[:, None] + nj[None, :] - 2.0 * matmul(xi, xj.T)).clamp_min_(0.0)


def median_sq_distance(x: torch.Tensor, block: int = 2048) -> float:
    """Median of the full n × n matrix of squared Euclidean distances, diagonal zeros included.

    This is the median Kornblith et al.'s reference ``gram_rbf`` takes (``np.median`` over
    the whole matrix). The matrix holds n zeros and every off-diagonal value twice, so only
    the n(n−1)/2 upper-triangle values are stored and the median is read off by rank.
    """
    n = x.shape[0]
    norms = (x * x).sum(1)
    upper = torch.empty(n * (n - 1) // 2, dtype=x.dtype, device=x.device)
    pos = 0
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        d = _sq_dist(x[lo:hi], x[lo:], norms[lo:hi], norms[lo:])  # rows lo:hi vs columns lo:n
        r, c = torch.triu_indices(hi - lo, n - lo, offset=1, device=x.device)
        vals = d[r, c]
        upper[pos : pos + vals.numel()] = vals
        pos += vals.numel()
    total = n * n

    def full(rank: int) -> float:  # rank-th smallest (0-based) entry of the full matrix
        return 0.0 if rank < n else float(torch.kthvalue(upper.cpu(), (rank - n) // 2 + 1).values)

    if total % 2:
        return full(total // 2)
    return 0.5 * (full(total // 2 - 1) + full(total // 2))


def rbf_pair_sums(x: torch.Tensor, y: torch.Tensor, gx: float, gy: float, block: int = 2048) -> dict:
    """Row sums, diagonals and Frobenius products of K = exp(−D²_x/gx), L = exp(−D²_y/gy).

    Only block pairs (I, J ≥ I) are computed; off-diagonal blocks count twice.
    """
    n = x.shape[0]
    f64 = dict(dtype=torch.float64, device=x.device)
    acc = {"n": n, "rk": torch.zeros(n, **f64), "rl": torch.zeros(n, **f64), "dk": torch.zeros(n, **f64),
           "dl": torch.zeros(n, **f64), "kl": 0.0, "kk": 0.0, "ll": 0.0}
    nx, ny = (x * x).sum(1), (y * y).sum(1)
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        for lo2 in range(lo, n, block):
            hi2 = min(lo2 + block, n)
            k = torch.exp(-_sq_dist(x[lo:hi], x[lo2:hi2], nx[lo:hi], nx[lo2:hi2]) / gx).to(torch.float64)
            l = torch.exp(-_sq_dist(y[lo:hi], y[lo2:hi2], ny[lo:hi], ny[lo2:hi2]) / gy).to(torch.float64)
            w = 1.0 if lo2 == lo else 2.0
            acc["kl"] += w * float((k * l).sum())
            acc["kk"] += w * float((k * k).sum())
            acc["ll"] += w * float((l * l).sum())
            acc["rk"][lo:hi] += k.sum(1)
            acc["rl"][lo:hi] += l.sum(1)
            if lo2 == lo:
                acc["dk"][lo:hi] = torch.diagonal(k)
                acc["dl"][lo:hi] = torch.diagonal(l)
            else:
                acc["rk"][lo2:hi2] += k.sum(0)
                acc["rl"][lo2:hi2] += l.sum(0)
    return acc


def hsic_from_sums(acc: dict, p: str, q: str, debiased: bool) -> float:
    """HSIC of kernels ``p``, ``q`` (each "k" or "l") from :func:`rbf_pair_sums`, up to a constant.

    Biased: tr(KHLH) = ⟨K, L⟩ − (2/n) r_Kᵀ r_L + (1ᵀK1)(1ᵀL1)/n² (Kornblith et al.'s CKA).
    Unbiased (Song et al. 2012, times n(n−3)), with K̃ = K − diag(K):
    tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1.
    """
    n = acc["n"]
    frob = acc["".join(sorted(p + q))]
    rp, rq = acc[f"r{p}"], acc[f"r{q}"]
    if not debiased:
        return float(frob - 2.0 / n * (rp @ rq) + rp.sum() * rq.sum() / n**2)
    dp, dq = acc[f"d{p}"], acc[f"d{q}"]
    tp, tq = rp - dp, rq - dq
    trace = frob - float(dp @ dq)
    return float(trace + tp.sum() * tq.sum() / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * (tp @ tq))


__all__ = ["RowNormMoments", "centred_sqnorm_products", "median_sq_distance", "rbf_pair_sums", "hsic_from_sums"]
