"""Per-side preprocessing that is part of an aligner's fitted state.

Order: L2-normalise rows → subtract the anchor mean → divide by the anchor standard
deviation (ddof 1; a zero std becomes 1 so dead units stay zero). Means and stds are the
statistics of the (L2-normalised) anchor rows, so ``transform`` applies exactly what ``fit``
saw. Standard-scaling implies centring.

The statistics come from the same streamed pass as the method's moments: preprocessing is
affine after the L2 step, so the moments of the preprocessed rows follow from the moments
of the L2-normalised rows (``PairStats.preprocessed``) without a second pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..compute import Backend, l2_normalize, stream_moments


@dataclass
class Preprocess:
    """One side's preprocessing: flags plus the anchor statistics they need."""

    l2: bool = False
    center: bool = False
    standardize: bool = False
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def __post_init__(self):
        if self.standardize:
            self.center = True  # standard-scaling is (x − μ)/σ

    # ---------------------------------------------------------------- fitting
    def set_stats(self, mean: np.ndarray, var: np.ndarray) -> None:
        """Record the anchor mean / std of the (L2-normalised) rows this side needs."""
        self.mean = np.asarray(mean, dtype=np.float64) if self.center else None
        if self.standardize:
            std = np.sqrt(np.maximum(np.asarray(var, dtype=np.float64), 0.0))
            self.std = np.where(std > 0, std, 1.0)
        else:
            self.std = None

    def shift_scale(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        c = self.mean if self.mean is not None else np.zeros(dim)
        s = self.std if self.std is not None else np.ones(dim)
        return c, s

    # ---------------------------------------------------------------- applying
    def head(self, x: np.ndarray) -> np.ndarray:
        """The non-invertible part (L2), as float64."""
        x = np.asarray(x, dtype=np.float64)
        if self.l2:
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = self.head(x)
        if self.mean is not None:
            x = x - self.mean
        if self.std is not None:
            x = x / self.std
        return x

    def invert(self, z: np.ndarray) -> np.ndarray:
        """Undo centring and scaling (not the L2 step): back to this side's coordinates."""
        if self.std is not None:
            z = z * self.std
        if self.mean is not None:
            z = z + self.mean
        return z

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


@dataclass
class PairStats:
    """Moments of paired anchor rows after preprocessing, in float64.

    ``Sxx``, ``Syy``, ``Sxy`` are *raw* sums of products (Σ x'ᵀx' …) of the preprocessed
    rows: when a side is centred they equal the centred sums, otherwise they include the
    mean. Linear methods solve their normal equations from these.
    """

    n: int
    mean_x: np.ndarray
    mean_y: np.ndarray
    Sxx: np.ndarray
    Syy: np.ndarray
    Sxy: np.ndarray
    #: relative eigenvalue cut-off for pseudo-inverses: dim × eps of the dtype the block
    #: products were formed in (float32 products carry ~1e-7 relative noise, which must not
    #: be inverted as if it were signal)
    rtol: float | None = None

    @classmethod
    def stream(cls, X, Y, pre_x: Preprocess, pre_y: Preprocess, backend: Backend) -> "PairStats":
        """One streamed pass over row-aligned X, Y (O(d²) memory); fits both preprocessors."""
        if pre_x.l2 or pre_y.l2:  # L2 is per side, so it is applied per stream in the one pass
            mom = _stream_l2(X, Y, pre_x.l2, pre_y.l2, backend)
        else:
            mom = stream_moments(X, Y, backend=backend)
        n = mom.n
        mx, my = (mom.mean(i).cpu().numpy() for i in (0, 1))
        cxx, cyy, cxy = (mom.centered(i, j).cpu().numpy() for i, j in ((0, 0), (1, 1), (0, 1)))
        ddof = max(n - 1, 1)
        pre_x.set_stats(mx, np.diag(cxx) / ddof)
        pre_y.set_stats(my, np.diag(cyy) / ddof)
        cx, sx = pre_x.shift_scale(len(mx))
        cy, sy = pre_y.shift_scale(len(my))
        m1, m2 = (mx - cx) / sx, (my - cy) / sy
        cxx = cxx / np.outer(sx, sx)
        cyy = cyy / np.outer(sy, sy)
        cxy = cxy / np.outer(sx, sy)
        eps = float(torch.finfo(backend.dtype).eps)
        return cls(n=n, mean_x=m1, mean_y=m2, Sxx=cxx + n * np.outer(m1, m1),
                   Syy=cyy + n * np.outer(m2, m2), Sxy=cxy + n * np.outer(m1, m2),
                   rtol=max(len(m1), len(m2)) * eps)

    def finite(self) -> bool:
        return all(bool(np.all(np.isfinite(a))) for a in (self.Sxx, self.Syy, self.Sxy, self.mean_x, self.mean_y))

    def residual(self, W: np.ndarray) -> float:
        """‖X'W − Y'‖²_F / ‖Y'‖²_F from the moments (0 = perfect fit; a distance ratio)."""
        syy = float(np.trace(self.Syy))
        rss = syy - 2.0 * float(np.sum(W * self.Sxy)) + float(np.sum(W * (self.Sxx @ W)))
        return max(rss, 0.0) / syy if syy > 0 else float("nan")


def _stream_l2(X, Y, lx: bool, ly: bool, backend: Backend):
    from ..compute import StreamingMoments

    n = len(X)
    rows = backend.block_rows(int(X.shape[1]) + int(Y.shape[1]), copies=3)
    mom = StreamingMoments()
    for lo in range(0, n, rows):
        a = backend.tensor(np.asarray(X[lo : lo + rows]))
        b = backend.tensor(np.asarray(Y[lo : lo + rows]))
        mom.update(l2_normalize(a) if lx else a, l2_normalize(b) if ly else b)
    return mom
