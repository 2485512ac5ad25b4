"""Per-side preprocessing that is part of an aligner's fitted state.

Order: L2-normalise rows → subtract the anchor mean → divide by the anchor standard
deviation (ddof 1; a zero std becomes 1 so dead units stay zero). Means and stds are the
statistics of the (L2-normalised) anchor rows, so ``transform`` applies exactly what ``fit``
saw. Standard-scaling implies centring.

The statistics come from the same streamed pass as the method's moments: preprocessing is
affine after the L2 step, so the moments of the preprocessed rows follow from the moments
of the L2-normalised rows (``PairStats.stream``) without a second pass.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ..blas import matmul
from ..compute import Backend, StreamingMoments, l2_normalize, stream_moments


@dataclass
class Preprocess:
    """One side's preprocessing: flags plus the anchor statistics they need.

    The statistics are the fitted state (float64 numpy, saved in the artifact); rows are
    preprocessed on the compute device through :meth:`on`.
    """

    l2: bool = False
    center: bool = False
    standardize: bool = False
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def __post_init__(self):
        if self.standardize:
            self.center = True  # standard-scaling is (x − μ)/σ

    # ---------------------------------------------------------------- fitting
    def set_stats(self, mean, var) -> None:
        """Record the anchor mean / std of the (L2-normalised) rows this side needs
        (tensors on any device or arrays; kept as float64 numpy, the artifact's form)."""
        self.mean = _host(mean) if self.center else None
        if self.standardize:
            std = np.sqrt(np.maximum(_host(var), 0.0))
            self.std = np.where(std > 0, std, 1.0)
        else:
            self.std = None

    def on(self, backend: Backend) -> "DevicePreprocess":
        """This preprocessing with its statistics as tensors on ``backend`` (moved once)."""
        put = (lambda a: None if a is None else backend.tensor(a))
        return DevicePreprocess(self.l2, put(self.mean), put(self.std))

    # ---------------------------------------------------------------- artifact
    def describe(self) -> dict:
        return {"l2": self.l2, "center": self.center, "standardize": self.standardize,
                "order": "l2 -> center -> standardize (anchor statistics, std ddof 1, zero std -> 1)"}

    def tensors(self, prefix: str) -> dict[str, np.ndarray]:
        out = {}
        if self.mean is not None:
            out[f"{prefix}.mean"] = self.mean
        if self.std is not None:
            out[f"{prefix}.std"] = self.std
        return out

    @classmethod
    def restore(cls, flags: dict, tensors: dict, prefix: str) -> "Preprocess":
        pre = cls(l2=bool(flags.get("l2")), center=bool(flags.get("center")),
                  standardize=bool(flags.get("standardize")))
        pre.mean = tensors.get(f"{prefix}.mean")
        pre.std = tensors.get(f"{prefix}.std")
        return pre


def _host(a) -> np.ndarray:
    return (a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)).astype(np.float64)


@dataclass(frozen=True)
class DevicePreprocess:
    """:class:`Preprocess` applied to tensors: statistics on the rows' device."""

    l2: bool
    mean: torch.Tensor | None
    std: torch.Tensor | None

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """The non-invertible part (L2)."""
        return l2_normalize(x) if self.l2 else x

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        if self.mean is not None:
            x = x - self.mean
        if self.std is not None:
            x = x / self.std
        return x

    def invert(self, z: torch.Tensor) -> torch.Tensor:
        """Undo centring and scaling (not the L2 step): back to this side's coordinates."""
        if self.std is not None:
            z = z * self.std
        if self.mean is not None:
            z = z + self.mean
        return z

    def shift_scale(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(shift, scale) vectors shaped like the mean ``like`` (zeros / ones when unused)."""
        c = self.mean if self.mean is not None else torch.zeros_like(like)
        s = self.std if self.std is not None else torch.ones_like(like)
        return c, s


@dataclass
class PairStats:
    """Moments of paired anchor rows after preprocessing: float64 tensors on the compute device.

    ``Sxx``, ``Syy``, ``Sxy`` are *raw* sums of products (Σ x'ᵀx' …) of the preprocessed
    rows: when a side is centred they equal the centred sums, otherwise they include the
    mean. Linear methods solve their normal equations from these, on the same device.
    ``Sxx`` / ``Syy`` are None when the method did not ask for them (each is a GEMM of
    n·d² multiply-adds); their diagonals ``dxx`` / ``dyy`` are always there.
    """

    n: int
    mean_x: torch.Tensor
    mean_y: torch.Tensor
    Sxx: torch.Tensor | None
    Syy: torch.Tensor | None
    Sxy: torch.Tensor
    dxx: torch.Tensor
    dyy: torch.Tensor
    #: relative eigenvalue cut-off for pseudo-inverses: dim × eps of the dtype the block
    #: products were formed in (float32 products carry ~1e-7 relative noise, which must not
    #: be inverted as if it were signal)
    rtol: float | None = None

    @classmethod
    def stream(cls, X, Y, pre_x: Preprocess, pre_y: Preprocess, backend: Backend,
               products: tuple[str, ...] = ("xx", "xy", "yy")) -> "PairStats":
        """One streamed pass over row-aligned X, Y (O(d²) memory); fits both preprocessors.
        ``products``: which of ``xx``, ``xy``, ``yy`` to form (``xy`` always)."""
        pairs = tuple({"xx": (0, 0), "xy": (0, 1), "yy": (1, 1)}[p] for p in {*products, "xy"})
        if pre_x.l2 or pre_y.l2:  # L2 is per side, so it is applied per stream in the one pass
            mom = _stream_l2(X, Y, pre_x.l2, pre_y.l2, backend, pairs)
        else:
            mom = stream_moments(X, Y, backend=backend, desc="fit: anchor moments", products=pairs)
        n = mom.n
        mx, my = mom.mean(0), mom.mean(1)
        ddof = max(n - 1, 1)
        vx, vy = mom.centered_diag(0), mom.centered_diag(1)
        pre_x.set_stats(mx, vx / ddof)
        pre_y.set_stats(my, vy / ddof)
        exact = backend.float64()
        cx, sx = pre_x.on(exact).shift_scale(mx)
        cy, sy = pre_y.on(exact).shift_scale(my)
        m1, m2 = (mx - cx) / sx, (my - cy) / sy

        def raw(i: int, s: torch.Tensor, m: torch.Tensor) -> torch.Tensor | None:
            if (i, i) not in pairs:
                return None
            return mom.centered(i, i) / torch.outer(s, s) + n * torch.outer(m, m)

        eps = float(torch.finfo(backend.dtype).eps)
        return cls(n=n, mean_x=m1, mean_y=m2, Sxx=raw(0, sx, m1), Syy=raw(1, sy, m2),
                   Sxy=mom.centered(0, 1) / torch.outer(sx, sy) + n * torch.outer(m1, m2),
                   dxx=vx / sx**2 + n * m1**2, dyy=vy / sy**2 + n * m2**2,
                   rtol=max(len(m1), len(m2)) * eps)

    def finite(self) -> bool:
        return all(bool(torch.isfinite(a).all()) for a in (self.Sxx, self.Syy, self.Sxy, self.dxx, self.dyy,
                                                          self.mean_x, self.mean_y) if a is not None)

    def residual(self, W: torch.Tensor) -> float:
        """‖X'W − Y'‖²_F / ‖Y'‖²_F from the moments (0 = perfect fit; a distance ratio).

        Without ``Sxx`` the map must have orthogonal rows of one length (W Wᵀ = c·I, as
        Procrustes with dx ≤ dy), so that tr(Wᵀ Sxx W) = c · tr Sxx."""
        syy = float(self.dyy.sum())
        if self.Sxx is not None:
            quad = float(torch.sum(W * matmul(self.Sxx, W)))
        else:
            G = matmul(W, W.T)
            c = float(torch.trace(G)) / max(G.shape[0], 1)
            if not torch.allclose(G, c * torch.eye(G.shape[0], dtype=G.dtype, device=G.device), atol=1e-8 * max(c, 1.0)):
                raise ValueError("residual without Sxx needs a map with orthogonal rows of equal length")
            quad = c * float(self.dxx.sum())
        rss = syy - 2.0 * float(torch.sum(W * self.Sxy)) + quad
        return max(rss, 0.0) / syy if syy > 0 else float("nan")


def _stream_l2(X, Y, lx: bool, ly: bool, backend: Backend, products):
    from ..compute import accumulate

    # long blocks make each d × d product one efficient GEMM, as in cka._stream (a block and its
    # centred copy are held, ~2 × block_bytes); measured 10–15 % faster fits than 1/3 of the budget
    rows = backend.block_rows(int(X.shape[1]) + int(Y.shape[1]), copies=1)
    return accumulate([X, Y], functools.partial(_SideL2Moments, (lx, ly), products=products), backend, rows=rows,
                      desc="fit: anchor moments")


class _SideL2Moments(StreamingMoments):
    """Moments of two streams, each L2-normalised row by row when its side asks for it."""

    def __init__(self, sides: tuple[bool, bool], *, products=None, shift=None):
        super().__init__(products=products, shift=shift)
        self.sides = sides

    def update(self, *blocks):
        return super().update(*(l2_normalize(b) if s else b for b, s in zip(blocks, self.sides)))
