"""The aligner contract: fit on paired anchors, transform either side, save/load safely.

An aligner maps source rows into a *common space*; ``transform_target`` maps target rows
there too (the target space itself for direct maps, relative coordinates for the anchor
method, canonical coordinates for CCA). Fitted attributes end in ``_``.

Artifacts are ``.safetensors`` files: arrays as float64/int64 tensors, everything else
(method, parameters, dims, preprocessing, fit statistics, anchor indices count, latentlab
version) as one JSON string in the header metadata. Loading parses the header and the raw
tensors only — nothing from the file is ever executed (no pickle).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..compute import Backend
from ..errors import InputError, LatentlabWarning
from ..io import Embeddings, as_embeddings, atomic_output, require_paired, require_rows, validate
from .preprocess import PairStats, Preprocess

FORMAT = "latentlab-aligner"
FORMAT_VERSION = "1"

#: method name -> Aligner subclass (filled by @register)
METHODS: dict[str, type["Aligner"]] = {}


def register(cls):
    METHODS[cls.method] = cls
    return cls


class RowSubset:
    """Rows ``index`` of a row source, read lazily block by block (keeps fitting streamed)."""

    def __init__(self, data, index: np.ndarray):
        self.data, self.index = data, np.asarray(index, dtype=np.int64)
        self.shape = (len(self.index), int(data.shape[1]))
        self.dtype = np.dtype(data.dtype)

    @property
    def source_rows(self) -> np.ndarray:
        """Row numbers in the underlying file (io.validate names these in errors)."""
        return self.index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item):
        return np.asarray(self.data[self.index[item]])

    def __array__(self, dtype=None, copy=None):
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype, copy=False)


class Aligner:
    """Base class. Subclasses set ``method``, ``PARAMS`` (name → default) and implement
    ``_fit(X, Y, backend)`` plus ``_map_source`` / ``_map_target`` on preprocessed rows."""

    method: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Any]] = {}
    #: default preprocessing per side: keys l2, center, standardize
    PRE: ClassVar[dict[str, bool]] = {}
    paired: ClassVar[bool] = True
    min_anchors: ClassVar[int] = 2
    #: tensor attributes saved in the artifact
    TENSORS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, l2: bool | None = None, center: bool | None = None,
                 standardize: bool | None = None, device="auto", dtype="float32", **params):
        unknown = sorted(set(params) - set(self.PARAMS))
        if unknown:
            opts = ", ".join("--" + u.replace("_", "-") for u in unknown)
            allowed = ", ".join("--" + p.replace("_", "-") for p in self.PARAMS) or "none"
            raise InputError(f"{self.method}: option {opts} does not apply (its options: {allowed})")
        self.params = {**self.PARAMS, **{k: v for k, v in params.items() if v is not None}}
        pre = {"l2": False, "center": False, "standardize": False, **self.PRE}
        for key, val in (("l2", l2), ("center", center), ("standardize", standardize)):
            if val is not None:
                pre[key] = bool(val)
        self.pre_flags = pre
        self.device = device
        self.dtype = dtype
        self.fit_stats_: dict[str, Any] = {}
        self.anchor_indices_: np.ndarray | None = None
        self.n_rows_: int | None = None
        self._check_params()

    def _check_params(self) -> None:
        """Validate ``self.params``; raise InputError naming the option."""

    # ------------------------------------------------------------------ fitting
    def fit(self, X, Y, *, anchor_indices=None, n_rows: int | None = None) -> "Aligner":
        """Fit on row-aligned anchors ``X`` (source) and ``Y`` (target).

        ``anchor_indices`` / ``n_rows`` only record where the anchors came from (the
        artifact keeps them so ``evaluate`` can default to the held-out rows).
        """
        ex, ey = as_embeddings(X, "source"), as_embeddings(Y, "target")
        if self.paired:
            require_paired(ex, ey, f"{self.method} (anchor pairs)")
            require_rows(ex, self.min_anchors, f"{self.method} {self._why_min()}")
        self.dim_source_, self.dim_target_ = ex.dim, ey.dim
        self.pre_x_ = Preprocess(**self.pre_flags)
        self.pre_y_ = Preprocess(**self.pre_flags)
        self.n_anchors_ = ex.n if self.paired else (0 if anchor_indices is None else len(anchor_indices))
        if self.paired and ex.n < max(ex.dim, ey.dim) and self.warn_underdetermined:
            warnings.warn(f"{self.method}: {ex.n} anchors for {ex.dim} → {ey.dim} dims; fewer anchors than "
                          f"dimensions, so the fit is underdetermined (minimum-norm / rank-truncated solution) "
                          f"and the map will generalise poorly", LatentlabWarning, stacklevel=2)
        if anchor_indices is not None:
            self.anchor_indices_ = np.asarray(anchor_indices, dtype=np.int64)
        # block products in the compute dtype (float32 unless asked), sums in float64
        backend = Backend.make(self.device, self.dtype)
        self._fit(ex, ey, backend)
        self.n_rows_ = int(n_rows) if n_rows is not None else (ex.n if self.paired else None)
        return self

    warn_underdetermined: ClassVar[bool] = True

    def _why_min(self) -> str:
        return "(centring and spread need two rows)"

    def _stats(self, X, Y, backend) -> PairStats:
        """The one streamed pass over the anchors; names the first NaN/Inf row if the sums are not finite."""
        stats = PairStats.stream(X.data, Y.data, self.pre_x_, self.pre_y_, backend)
        if not stats.finite():
            validate(X)
            validate(Y)
            raise InputError(f"{self.method}: the anchor moments overflowed in {backend.dtype} "
                             f"(values too large); rescale the inputs or use --dtype float64")
        return stats

    def _fit(self, X: Embeddings, Y: Embeddings, backend: Backend) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ applying
    @property
    def dim_common_(self) -> int:
        raise NotImplementedError

    def transform(self, X, *, block_rows: int = 65536) -> np.ndarray:
        """Map source rows into the common space (float64)."""
        return self._apply(X, "source", self.dim_source_, lambda b: self._map_source(self.pre_x_.apply(b)), block_rows)

    def transform_target(self, Y, *, block_rows: int = 65536) -> np.ndarray:
        """Map target rows into the common space (float64)."""
        return self._apply(Y, "target", self.dim_target_, self._target_rows, block_rows)

    def _target_rows(self, b: np.ndarray) -> np.ndarray:
        return self._map_target(self.pre_y_.apply(b))

    def _apply(self, X, side: str, dim: int, fn, block_rows: int) -> np.ndarray:
        self._check_fitted()
        ex = as_embeddings(X, side)
        if ex.dim != dim:
            raise InputError(f"{ex.name}: this {self.method} map expects {side} rows of dimension {dim}, "
                             f"got {ex.dim} (wrong side or wrong file?)")
        out = np.empty((ex.n, self.dim_common_), dtype=np.float64)
        for lo in range(0, ex.n, block_rows):
            out[lo : lo + block_rows] = fn(np.asarray(ex.data[lo : lo + block_rows], dtype=np.float64))
        return out

    def _map_source(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _map_target(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "pre_x_"):
            raise InputError(f"{self.method}: the aligner is not fitted yet (call fit first)")

    # ------------------------------------------------------------------ artifact
    def metadata(self) -> dict:
        from .. import __version__

        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "latentlab_version": __version__,
            "method": self.method, "params": self.params,
            "dims": {"source": self.dim_source_, "target": self.dim_target_, "common": self.dim_common_},
            "preprocessing": {"source": self.pre_x_.describe(), "target": self.pre_y_.describe()},
            "fit_stats": self.fit_stats_, "n_anchors": int(self.n_anchors_),
            "compute_dtype": str(getattr(self, "dtype", "float32")),
            "n_rows": self.n_rows_,
            "anchor_indices": None if self.anchor_indices_ is None else "tensor anchor_indices",
        }

    def save(self, path) -> Path:
        """Write the fitted aligner to a ``.safetensors`` artifact (atomic, no pickle)."""
        from safetensors.numpy import save_file

        from ..results import to_jsonable

        self._check_fitted()
        target = Path(path)
        if target.suffix.lower() != ".safetensors":
            raise InputError(f"{target}: aligner artifacts are .safetensors files")
        tensors = {name: np.ascontiguousarray(np.asarray(getattr(self, name), dtype=np.float64))
                   for name in self.TENSORS}
        tensors.update(self.pre_x_.tensors("source"))
        tensors.update(self.pre_y_.tensors("target"))
        if self.anchor_indices_ is not None:
            tensors["anchor_indices"] = np.ascontiguousarray(self.anchor_indices_.astype(np.int64))
        meta = {"format": FORMAT, "latentlab": json.dumps(to_jsonable(self.metadata()), allow_nan=False)}
        with atomic_output(target) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return target

    @classmethod
    def _restore(cls, meta: dict, tensors: dict[str, np.ndarray]) -> "Aligner":
        obj = cls.__new__(cls)
        obj.params = dict(meta.get("params") or {})
        pre = meta["preprocessing"]
        obj.pre_flags = {k: pre["source"][k] for k in ("l2", "center", "standardize")}
        obj.pre_x_ = Preprocess.restore(pre["source"], tensors, "source")
        obj.pre_y_ = Preprocess.restore(pre["target"], tensors, "target")
        obj.dim_source_, obj.dim_target_ = int(meta["dims"]["source"]), int(meta["dims"]["target"])
        obj.fit_stats_ = dict(meta.get("fit_stats") or {})
        obj.n_anchors_ = int(meta.get("n_anchors") or 0)
        obj.n_rows_ = meta.get("n_rows")
        obj.anchor_indices_ = tensors.get("anchor_indices")
        obj.device = "auto"
        obj.dtype = str(meta.get("compute_dtype") or "float32")
        for name in cls.TENSORS:
            if name not in tensors:
                raise InputError(f"{cls.method} artifact lacks the tensor {name!r}")
            setattr(obj, name, tensors[name])
        obj._after_restore()
        return obj

    def _after_restore(self) -> None:
        """Recompute derived attributes after loading."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({params})"


def load_aligner(path) -> Aligner:
    """Read an aligner artifact written by :meth:`Aligner.save` (parses data only)."""
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        with safe_open(str(p), framework="np") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # not safetensors at all
        raise InputError(f"{p}: not a latentlab aligner artifact (not a readable .safetensors file: "
                         f"{type(exc).__name__})") from None
    if header.get("format") != FORMAT or "latentlab" not in header:
        raise InputError(f"{p}: not a latentlab aligner artifact (no {FORMAT!r} metadata in the header)")
    try:
        meta = json.loads(header["latentlab"])
        cls = METHODS[meta["method"]]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{p}: corrupt latentlab aligner metadata or unknown method") from None
    try:
        return cls._restore(meta, tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{p}: corrupt latentlab aligner artifact ({type(exc).__name__}: {exc})") from None


class DirectAligner(Aligner):
    """A map into the target space: ``y ≈ invert_y(pre_x(x) · W_)``; targets stay put
    (only their L2 step, if any, is applied so both sides live in the same coordinates)."""

    TENSORS = ("W_",)

    @property
    def dim_common_(self) -> int:
        return self.dim_target_

    def _map_source(self, x):
        return self.pre_y_.invert(x @ self.W_)

    def _target_rows(self, b):
        return self.pre_y_.head(b)

    def _record_fit(self, stats: PairStats, **extra) -> None:
        self.fit_stats_ = {"n_anchors": stats.n,
                           "relative_residual": stats.residual(self.W_),
                           **extra}


def psd_solve(S: np.ndarray, B: np.ndarray, alpha: float = 0.0, rtol: float | None = None) -> tuple[np.ndarray, int]:
    """``(S + αI)⁺ B`` for symmetric PSD ``S`` via its eigendecomposition.

    With α = 0 eigenvalues below ``rtol · λ_max`` are dropped (pseudo-inverse: the
    minimum-norm least-squares solution, robust to dead units and n < d). Returns the
    solution and the numerical rank used.
    """
    lam, Q = np.linalg.eigh(S)
    top = max(float(lam.max(initial=0.0)), 0.0)
    rtol = S.shape[0] * np.finfo(np.float64).eps if rtol is None else rtol
    keep = lam > rtol * top if top > 0 else np.zeros_like(lam, dtype=bool)
    if alpha > 0:
        inv = 1.0 / (np.maximum(lam, 0.0) + alpha)
        keep = np.ones_like(keep)
    else:
        inv = np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0)
    return Q @ (inv[:, None] * (Q.T @ B)), int(keep.sum())
