"""Generalized shape metrics (Williams, Kunz, Kornblith & Linderman, NeurIPS 2021).

A *distance* in radians, range [0, π/2], 0 = same shape. Both sides are centred, partially
whitened, scaled to unit Frobenius norm and compared up to the best orthogonal map Q
(the narrower side zero-padded):

    X̃ = Xc Zx,  Zx = α I + (1 − α) (XcᵀXc)^{-1/2},   θ = min_Q ∠(X̃, ỸQ) = arccos(‖X̃ᵀỸ‖_* / ‖X̃‖_F ‖Ỹ‖_F).

This is the reference code's convention (netrep, ``LinearMetric`` + ``utils.whiten``): the
whitening matrix is a *mix of matrices* α I + (1−α) C^{-1/2}, not (α I + (1−α) C)^{-1/2},
and C = XcᵀXc is the *unnormalised* centred product (its variance-preserving rescale is a
scalar per side, which the angle ignores). Endpoints: α = 1 is the angular Procrustes
distance; α = 0 gives cos θ = Σ ρ_i / √(r_x r_y), the canonical correlations ρ summed over
the min(r_x, r_y) rank-truncated pairs — i.e. arccos of the mean canonical correlation when
the ranks are equal (r = numerical rank of each centred side, e.g. its width when n > d).

Invariances (:func:`invariances`): α = 1: rotation, isotropic scale, translation; α = 0: also
any invertible linear map; 0 < α < 1: rotation and translation only — scaling X by c turns
Zx into α I + (1−α) C^{-1/2}/c, so the mix (and θ) depends on the overall scale of each side
and, since C is unnormalised, on the row count too. Every α gives a metric (symmetric,
triangle inequality): each side is mapped by its own fixed φ_α before the quotient angle.

Numerics. arccos of a cosine near 1 turns a rounding ε of the covariances into θ ≈ √(2ε)
(1e-4 rad for float32 moments). Here Q comes from the covariances, but the angle comes
from a second pass over the *data*: θ = 2 arcsin(‖X̂ − ŶQ‖_F / 2) with unit-norm X̂, Ŷ,
whose error is first order in ε. Pseudo-inverse square roots truncate eigenvalues below
``RTOL`` × the largest (dead units, n < d), never a plain inverse.

Permutation nulls: :func:`prepare_shape` returns a *distance*; calibrate it with the
direction flipped (``higher_is_better=False``, ``best=0``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from ..compute import Backend, StreamingMoments
from ..errors import InputError
from ..progress import progress
from .prep import Prepared, require_variance

#: Same value as ``subspace.RTOL``; not imported, because subspace imports this module.
RTOL = 1e-10

INVARIANCES = frozenset({"rotation", "isotropic_scale", "translation", "invertible_linear"})


def invariances(alpha: float) -> frozenset[str]:
    """Transformations of one input that leave the distance unchanged at this ``alpha``."""
    alpha = check_alpha(alpha)
    if alpha == 0.0:
        return INVARIANCES
    if alpha == 1.0:
        return frozenset({"rotation", "isotropic_scale", "translation"})
    return frozenset({"rotation", "translation"})


def check_alpha(alpha) -> float:
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise InputError(f"alpha {alpha!r}: must be a number in [0, 1]") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InputError(f"alpha {alpha}: must be in [0, 1]")
    return value


@dataclass(frozen=True)
class ShapeFit:
    """Everything the data pass needs, from one set of (cross-)moments (float64, CPU).

    ``wx``, ``wy``: symmetric partial-whitening matrices; ``q``: the D × D orthogonal map
    (D = max width) maximising ⟨X̃ pad, Ỹ pad Q⟩; ``norm_x``, ``norm_y``: ‖X̃‖_F, ‖Ỹ‖_F from
    the moments; ``cos_value``: ‖X̃ᵀỸ‖_* / (‖X̃‖ ‖Ỹ‖), the covariance-only answer.
    """

    alpha: float
    mean_x: torch.Tensor
    mean_y: torch.Tensor
    wx: torch.Tensor
    wy: torch.Tensor
    q: torch.Tensor
    norm_x: float
    norm_y: float
    cos_value: float

    @property
    def angle_from_cos(self) -> float:
        """arccos(cos_value): loses precision near 0 (θ ≈ √(2ε)); use the residual pass."""
        return float(np.arccos(np.clip(self.cos_value, -1.0, 1.0)))


def partial_whitening(c: np.ndarray, alpha: float) -> np.ndarray:
    """α I + (1 − α) C^{+1/2}: C's pseudo-inverse square root, truncated at RTOL × λ_max.

    Truncated directions keep only the α I part: the centred data has (numerically) nothing
    there, so what multiplies it does not matter, but it must stay finite. (netrep instead
    clips eigenvalues at an absolute 1e-7, which depends on the data's scale; the two agree
    wherever the spectrum stays above both thresholds.)
    """
    if alpha == 1.0:
        return np.eye(c.shape[0])  # exactly Procrustes, no eigen-rounding
    vals, vecs = np.linalg.eigh(c)
    keep = vals > RTOL * max(vals.max(), 0.0)
    diag = np.full(vals.shape, alpha)
    diag[keep] += (1.0 - alpha) / np.sqrt(vals[keep])
    return (vecs * diag) @ vecs.T


def _procrustes(m: np.ndarray) -> tuple[np.ndarray, float]:
    """Q (D × D orthogonal) maximising tr(M_pad Q) for the zero-padded M, and ‖M‖_*."""
    d = max(m.shape)
    pad = np.zeros((d, d))
    pad[: m.shape[0], : m.shape[1]] = m
    u, s, vt = np.linalg.svd(pad)
    return vt.T @ u.T, float(s.sum())  # tr(U S Vᵀ Q) is largest at VᵀQU = I


def shape_from_moments(mom: StreamingMoments, alpha) -> ShapeFit:
    """Means, whitening, optimal Q and norms from two-stream moments (unnormalised products)."""
    alpha = check_alpha(alpha)
    cxx, cyy, cxy = (mom.centered(i, j).cpu().to(torch.float64).numpy() for i, j in ((0, 0), (1, 1), (0, 1)))
    wx, wy = partial_whitening(cxx, alpha), partial_whitening(cyy, alpha)
    nx = math.sqrt(max(float(np.trace(wx @ cxx @ wx)), 0.0))
    ny = math.sqrt(max(float(np.trace(wy @ cyy @ wy)), 0.0))
    q, nuc = _procrustes(wx @ cxy @ wy)
    cos = nuc / (nx * ny) if nx > 0 and ny > 0 else float("nan")
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64)  # noqa: E731
    return ShapeFit(alpha, mom.mean(0).cpu().to(torch.float64), mom.mean(1).cpu().to(torch.float64),
                    t(wx), t(wy), t(q), nx, ny, float(cos))


class _Residual:
    """Σ ‖x̂ − ŷQ‖², Σ ‖x̂‖², Σ ‖ŷQ‖² over rows, in float64, and the angle they give."""

    def __init__(self):
        self.r = self.a = self.b = 0.0

    def add(self, xh: torch.Tensor, yq: torch.Tensor) -> None:
        """xh: n × dx rows of X̂ (implicitly zero-padded to D); yq: n × D rows of ŶQ."""
        diff = -yq
        diff[:, : xh.shape[1]] += xh
        self.r += float((diff * diff).sum())
        self.a += float((xh * xh).sum())
        self.b += float((yq * yq).sum())

    def angle(self) -> float:
        """Angle between X̂ and ŶQ, exact for the norms *this pass* saw.

        The moment-based norms are only ~ε-accurate, so â = X̂/√A, b̂ = ŶQ/√B are renormalised:
        ‖â − b̂‖² = (R − (√A − √B)²) / √(AB), with no cancellation of O(1) quantities.
        """
        if not (self.a > 0 and self.b > 0):
            return float("nan")
        sa, sb = math.sqrt(self.a), math.sqrt(self.b)
        gap = (self.a - self.b) / (sa + sb)
        chord2 = max(self.r - gap * gap, 0.0) / (sa * sb)
        return float(2.0 * math.asin(min(math.sqrt(chord2) / 2.0, 1.0)))


def shape_residual_angle(fit: ShapeFit, blocks: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Stable angle from a pass over row-aligned (x_block, y_block) tensors (any device/dtype).

    Blocks are centred, whitened and normalised with exactly the fit's means, ``wx``/``wy``
    and norms, in float64 (rounding the whitened rows to float32 would put ~1e-7 back in).
    """
    acc, mats = _Residual(), {}
    for xb, yb in blocks:
        dev = xb.device
        if dev not in mats:  # Q folded into Y's side: ŷQ = (y − μy) Wy Q[:dy] / ‖Ỹ‖
            dy = fit.wy.shape[0]
            mats[dev] = [m.to(dev) for m in (fit.mean_x, fit.mean_y, fit.wx / fit.norm_x,
                                             (fit.wy @ fit.q[:dy]) / fit.norm_y)]
        mx, my, gx, gy = mats[dev]
        xh = (xb.to(torch.float64) - mx) @ gx
        acc.add(xh, (yb.to(dev, torch.float64) - my) @ gy)
    return acc.angle()


# --------------------------------------------------------------------------- public API
def _tensor(x, backend: Backend | None) -> torch.Tensor:
    if backend is None:  # in-memory default: float64, where the inputs already are
        t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
        return t.to(torch.float64)
    if isinstance(x, torch.Tensor):
        return x.to(device=backend.device, dtype=backend.dtype)
    return backend.tensor(x)


def _inputs(x, y, backend):
    x, y = _tensor(x, backend), _tensor(y, backend)
    if x.ndim != 2 or y.ndim != 2:
        raise InputError(f"shape distance needs 2-D inputs (rows × dims), got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise InputError(f"shape distance needs row-paired inputs with ≥ 2 rows, got {x.shape[0]} and {y.shape[0]}")
    return x, y


def _fit_in_memory(x, y, alpha) -> ShapeFit:
    fit = shape_from_moments(StreamingMoments().update(x, y), alpha)
    for name, norm in (("x", fit.norm_x), ("y", fit.norm_y)):
        if not norm > 0:
            raise InputError(f"{name}: every column is constant (zero variance); shape distance is undefined")
    return fit


def shape_distance(x, y, *, alpha: float = 1.0, backend: Backend | None = None) -> float:
    """Generalized shape distance (radians, [0, π/2], 0 = same shape) of two row-paired matrices.

    ``x``, ``y``: numpy or torch, n × dx and n × dy (widths may differ). ``alpha`` ∈ [0, 1]:
    1 = angular Procrustes, 0 = CCA-based (see the module docstring). ``backend``: device and
    dtype of the moment pass; default float64 on the inputs' device. The final angle is always
    taken from the data in float64 (stable near 0).
    """
    alpha = check_alpha(alpha)
    x, y = _inputs(x, y, backend)
    return shape_residual_angle(_fit_in_memory(x, y, alpha), [(x, y)])


def shape_distance_streamed(ea, eb, *, alpha: float = 1.0, backend: Backend) -> float:
    """:func:`shape_distance` over lazy row sources (``.n``, ``.dim``, ``.rows(slice)``): two passes.

    Pass 1 streams the float64 (cross-)moments (O(d²) memory); pass 2 re-reads the rows to
    measure the residual of the alignment found in pass 1.
    """
    alpha = check_alpha(alpha)
    if ea.n != eb.n:
        raise InputError(f"shape distance needs row-paired inputs, got {ea.n} and {eb.n} rows")
    n = ea.n
    # pass 1 holds a block and its centred copy; pass 2 a float64 copy, the whitened rows and
    # the residual (D wide), hence the extra copies
    rows1 = backend.block_rows(ea.dim + eb.dim, copies=2)
    rows2 = backend.block_rows(ea.dim + eb.dim + max(ea.dim, eb.dim), copies=4)

    def blocks(rows, desc):
        for lo in progress(range(0, n, rows), desc=desc):
            sl = slice(lo, lo + rows)
            yield backend.tensor(ea.rows(sl)), backend.tensor(eb.rows(sl))

    mom = StreamingMoments()
    for xb, yb in blocks(rows1, "shape (moments)"):
        mom.update(xb, yb)
    require_variance(float(torch.trace(mom.centered(0))), ea, "shape distance")
    require_variance(float(torch.trace(mom.centered(1))), eb, "shape distance")
    fit = shape_from_moments(mom, alpha)
    return shape_residual_angle(fit, blocks(rows2, "shape (residual)"))


def prepare_shape(x, y, *, alpha: float = 1.0, backend: Backend | None = None) -> Prepared:
    """Shape distance ready for a permutation null: ``shuffled(perm)`` = ``shape_distance(x, y[perm])``.

    A *distance* (lower = more similar): calibration must flip the direction. Centring and
    whitening are permutation-invariant, so X̂ and Ŷ are kept and each shuffle only recomputes
    X̂ᵀŶ[perm], its Procrustes Q and the residual (float64, rows in memory).
    """
    alpha = check_alpha(alpha)
    x, y = _inputs(x, y, backend)
    fit = _fit_in_memory(x, y, alpha)
    value = shape_residual_angle(fit, [(x, y)])
    xh = (x.to(torch.float64) - fit.mean_x.to(x.device)) @ (fit.wx / fit.norm_x).to(x.device)
    yh = (y.to(torch.float64) - fit.mean_y.to(y.device)) @ (fit.wy / fit.norm_y).to(y.device)

    def shuffled(perm) -> float:
        yp = yh[torch.as_tensor(perm, device=yh.device)]
        q, _ = _procrustes((xh.T @ yp).cpu().numpy())
        acc = _Residual()
        acc.add(xh, yp @ torch.as_tensor(q[: yh.shape[1]], device=yh.device))
        return acc.angle()

    return Prepared(value, shuffled)


__all__ = ["shape_distance", "shape_distance_streamed", "shape_from_moments", "shape_residual_angle",
           "prepare_shape", "invariances", "check_alpha", "partial_whitening", "ShapeFit", "INVARIANCES"]
