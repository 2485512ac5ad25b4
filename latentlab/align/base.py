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
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from ..compute import Backend
from ..blas import eigh, matmul
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


def opt(name: str, value=None, *, show: bool = True) -> str:
    """A constructor argument in a message, in backticks (the CLI shows its flag: ``--alpha -1``)."""
    return f"`{name}` {value!r}" if show else f"`{name}`"


class Aligner(BaseEstimator, TransformerMixin):
    """Base class. Subclasses set ``method``, ``PARAMS`` (name → default, mirrored by explicit
    keyword arguments of their ``__init__``) and implement ``_fit(X, Y, backend)`` plus
    ``_map_source`` / ``_map_target`` on preprocessed rows.

    scikit-learn conventions: constructor arguments are stored unchanged under their own
    names (``get_params`` / ``set_params`` / ``clone`` work); validation happens in ``fit``
    (or up front in :func:`latentlab.align.make_aligner`); everything ``fit`` learns ends in
    ``_`` (validated options in ``params_``, preprocessing flags in ``pre_flags_``).
    ``fit(X, y)`` takes source rows and the paired target rows, so an aligner is the last
    step of a ``sklearn.pipeline.Pipeline``.
    """

    method: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Any]] = {}
    #: default preprocessing per side: keys l2, center, standardize
    PRE: ClassVar[dict[str, bool]] = {}
    paired: ClassVar[bool] = True
    min_anchors: ClassVar[int] = 2
    #: tensor attributes saved in the artifact
    TENSORS: ClassVar[tuple[str, ...]] = ()
    #: option names older artifacts may still carry (ignored on load)
    LEGACY_PARAMS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, l2: bool | None = None, center: bool | None = None,
                 standardize: bool | None = None, device="auto", dtype="float32"):
        self.l2 = l2
        self.center = center
        self.standardize = standardize
        self.device = device
        self.dtype = dtype

    # ------------------------------------------------------------------ parameters
    @property
    def params(self) -> dict[str, Any]:
        """The method's options: validated once fitted, else as given to the constructor."""
        if "params_" in vars(self):
            return self.params_
        return {name: getattr(self, name) for name in self.PARAMS}

    def _validated_params(self) -> dict[str, Any]:
        """The method's options checked and normalised (InputError naming the option)."""
        return self._check_params({name: getattr(self, name) for name in self.PARAMS})

    def _check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validate and normalise ``params`` (a copy); raise InputError naming the option."""
        return params

    def _validated_pre(self) -> dict[str, bool]:
        pre = {"l2": False, "center": False, "standardize": False, **self.PRE}
        for key in ("l2", "center", "standardize"):
            val = getattr(self, key)
            if val is None:
                continue
            if not isinstance(val, (bool, np.bool_)) and val not in (0, 1):
                raise InputError(f"{self.method}: {key}={val!r} must be True, False or None (the method default)")
            pre[key] = bool(val)
        return pre

    def __sklearn_is_fitted__(self) -> bool:
        return "pre_x_" in vars(self)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, Y=None, *, anchor_indices=None, n_rows: int | None = None) -> "Aligner":
        """Fit on row-aligned anchors ``X`` (source) and ``Y`` (target).

        ``anchor_indices`` / ``n_rows`` only record where the anchors came from (the
        artifact keeps them so ``evaluate`` can default to the held-out rows).
        """
        self.params_ = self._validated_params()
        self.pre_flags_ = self._validated_pre()
        self.fit_stats_ = {}
        self.anchor_indices_ = None
        self.n_rows_ = None
        if Y is None:
            raise InputError(f"{self.method}: fit needs the target rows too (fit(X, Y))")
        ex, ey = as_embeddings(X, "source"), as_embeddings(Y, "target")
        if self.paired:
            require_paired(ex, ey, f"{self.method} (anchor pairs)")
            require_rows(ex, self.min_anchors, f"{self.method} {self._why_min()}")
        self.dim_source_, self.dim_target_ = ex.dim, ey.dim
        self.pre_x_ = Preprocess(**self.pre_flags_)
        self.pre_y_ = Preprocess(**self.pre_flags_)
        self.n_anchors_ = ex.n if self.paired else (0 if anchor_indices is None else len(anchor_indices))
        if self.paired and ex.n < max(ex.dim, ey.dim) and self.warn_underdetermined:
            warnings.warn(f"{self.method}: {ex.n} anchors for {ex.dim} → {ey.dim} dims; fewer anchors than "
                          f"dimensions, so the fit is underdetermined ({self.underdetermined_solution}) "
                          f"and the map will generalise poorly", LatentlabWarning, stacklevel=2)
        if anchor_indices is not None:
            self.anchor_indices_ = np.asarray(anchor_indices, dtype=np.int64)
        # block products in the compute dtype (float32 unless asked), sums in float64
        backend = Backend.make(self.device, self.dtype)
        self._fit(ex, ey, backend)
        self.n_rows_ = int(n_rows) if n_rows is not None else (ex.n if self.paired else None)
        return self

    #: How this method resolves an underdetermined fit, for the warning above (ridge overrides).
    underdetermined_solution = "minimum-norm / rank-truncated solution"
    warn_underdetermined: ClassVar[bool] = True

    def _why_min(self) -> str:
        return "(centring and spread need two rows)"

    def _stats(self, X, Y, backend, products: tuple[str, ...] = ("xx", "xy", "yy")) -> PairStats:
        """The one streamed pass over the anchors, forming the ``products`` the method needs
        (see :meth:`PairStats.stream`); names the first NaN/Inf row if the sums are not finite."""
        stats = PairStats.stream(X.data, Y.data, self.pre_x_, self.pre_y_, backend, products)
        if not stats.finite():
            validate(X)
            validate(Y)
            raise InputError(f"{self.method}: the anchor moments overflowed in {backend.dtype} "
                             f"(values too large); rescale the inputs or use `dtype` float64")
        return stats

    def _fit(self, X: Embeddings, Y: Embeddings, backend: Backend) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ applying
    @property
    def dim_common_(self) -> int:
        raise NotImplementedError

    def transform(self, X, *, block_rows: int | None = None) -> np.ndarray:
        """Map source rows into the common space (float64 numpy; computed on ``device``)."""
        return self._collect(X, "source", block_rows)

    def transform_target(self, Y, *, block_rows: int | None = None) -> np.ndarray:
        """Map target rows into the common space (float64 numpy; computed on ``device``)."""
        return self._collect(Y, "target", block_rows)

    def map_rows(self, X, side: str = "source", *, backend: Backend | None = None,
                 block_rows: int | None = None) -> torch.Tensor:
        """``transform`` (``side="source"``) or ``transform_target`` as one float64 tensor on
        ``backend``'s device (default: the aligner's ``device``), for callers that keep
        computing there (:func:`latentlab.align.evaluate_aligner`)."""
        n, backend, blocks = self._mapped_blocks(X, side, backend, block_rows)
        parts = [t for _, t in blocks]
        return torch.cat(parts) if n else torch.empty((0, self.dim_common_), dtype=torch.float64,
                                                      device=backend.device)

    def _collect(self, X, side: str, block_rows: int | None) -> np.ndarray:
        n, _, blocks = self._mapped_blocks(X, side, None, block_rows)
        out = np.empty((n, self.dim_common_), dtype=np.float64)
        for lo, t in blocks:
            out[lo : lo + len(t)] = t.cpu().numpy()  # the edge: the returned array
        return out

    def _mapped_blocks(self, X, side: str, backend: Backend | None, block_rows: int | None):
        """``(n, backend, blocks)``: the checked row count, the float64 backend, and an iterator of ``(offset, mapped block)``,
        the rows read block by block, moved to the device, preprocessed and mapped there in
        float64 (the precision the closed forms were solved in)."""
        self._check_fitted()
        if side not in ("source", "target"):
            raise InputError(f"side={side!r}: expected 'source' or 'target'")
        dim = self.dim_source_ if side == "source" else self.dim_target_
        ex = as_embeddings(X, side)
        if ex.dim != dim:
            raise InputError(f"{ex.name}: this {self.method} map expects {side} rows of dimension {dim}, "
                             f"got {ex.dim} (wrong side or wrong file?)")
        backend = (backend or Backend.make(self.device)).float64()
        fitted = self._on(backend)
        fn = self._map_source if side == "source" else self._map_target
        rows = block_rows or backend.block_rows(dim + self.dim_common_, copies=2)
        blocks = ((lo, fn(backend.tensor(ex.data[lo : lo + rows]), fitted)) for lo in range(0, ex.n, rows))
        return ex.n, backend, blocks

    def _on(self, backend: Backend) -> SimpleNamespace:
        """The fitted state as float64 tensors on ``backend`` (moved once per call): the
        ``TENSORS`` under their own names, ``pre_x`` / ``pre_y`` the device preprocessing."""
        return SimpleNamespace(pre_x=self.pre_x_.on(backend), pre_y=self.pre_y_.on(backend),
                               **{name: backend.tensor(getattr(self, name)) for name in self.TENSORS})

    def _map_source(self, x: torch.Tensor, fitted: SimpleNamespace) -> torch.Tensor:
        """Raw source rows (tensor) → the common space."""
        raise NotImplementedError

    def _map_target(self, y: torch.Tensor, fitted: SimpleNamespace) -> torch.Tensor:
        """Raw target rows (tensor) → the common space."""
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise InputError(f"{self.method}: the aligner is not fitted yet (call fit first)")

    # ------------------------------------------------------------------ artifact
    def metadata(self) -> dict:
        from .. import __version__

        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "latentlab_version": __version__,
            "method": self.method, "params": self.params_,
            "dims": {"source": self.dim_source_, "target": self.dim_target_, "common": self.dim_common_},
            "preprocessing": {"source": self.pre_x_.describe(), "target": self.pre_y_.describe()},
            "fit_stats": self.fit_stats_, "n_anchors": int(self.n_anchors_),
            "compute_dtype": str(getattr(self, "dtype", "float32")),
            "n_rows": self.n_rows_,
            "anchor_indices": None if self.anchor_indices_ is None else "tensor anchor_indices",
        }

    def save(self, path) -> Path:
        """Write the fitted aligner to a ``.safetensors`` artifact (atomic, no pickle)."""
        from safetensors.numpy import save as serialise

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
        # serialised to bytes and written through our own temporary name: safetensors' save_file
        # makes a temporary of its own, which a SIGKILL would leave beside the map for good
        data = serialise(tensors, metadata=meta)
        with atomic_output(target) as tmp, open(tmp, "wb") as fh:
            fh.write(data)
        return target

    @classmethod
    def _restore(cls, meta: dict, tensors: dict[str, np.ndarray]) -> "Aligner":
        """An aligner from a header and tensors that :func:`~latentlab.align.artifact.check_artifact` has accepted."""
        obj = cls.__new__(cls)
        params = dict(meta.get("params") or {})
        pre = meta["preprocessing"]
        flags = {k: bool(pre["source"][k]) for k in ("l2", "center", "standardize")}
        # the constructor arguments, so get_params/clone work on a loaded aligner too
        for name, default in cls.PARAMS.items():
            setattr(obj, name, params.get(name, default))
        for name, val in flags.items():
            setattr(obj, name, val)
        obj.device = "auto"
        obj.dtype = str(meta.get("compute_dtype") or "float32")
        obj.params_ = params
        obj.pre_flags_ = flags
        obj.pre_x_ = Preprocess.restore(pre["source"], tensors, "source")
        obj.pre_y_ = Preprocess.restore(pre["target"], tensors, "target")
        obj.dim_source_, obj.dim_target_ = int(meta["dims"]["source"]), int(meta["dims"]["target"])
        obj.fit_stats_ = dict(meta.get("fit_stats") or {})
        obj.n_anchors_ = int(meta.get("n_anchors") or 0)
        obj.n_rows_ = meta.get("n_rows")
        obj.anchor_indices_ = tensors.get("anchor_indices")
        for name in cls.TENSORS:
            setattr(obj, name, tensors[name])
        obj._after_restore()
        return obj

    def _after_restore(self) -> None:
        """Recompute derived attributes after loading."""

    @classmethod
    def _tensor_shapes(cls, ds: int, dt: int, dc: int) -> dict[str, tuple[int, ...]]:
        """Shapes of the method's tensors (``TENSORS``) for source/target/common dims."""
        raise NotImplementedError

    @classmethod
    def _artifact_shapes(cls, ds: int, dt: int, dc: int, params: dict) -> dict[str, tuple[int, ...]]:
        """Shapes of the ``TENSORS`` given the dims and the (validated) header options: methods
        whose tensors depend on an option (the MLP's width and depth) override this."""
        return cls._tensor_shapes(ds, dt, dc)

    @classmethod
    def _common_dim(cls, ds: int, dt: int, dc: int) -> int | None:
        """The common dimension the method implies (None: any, checked through the tensors)."""
        return None


class DirectAligner(Aligner):
    """A map into the target space: ``y ≈ invert_y(pre_x(x) · W_)``; targets stay put
    (only their L2 step, if any, is applied so both sides live in the same coordinates)."""

    TENSORS = ("W_",)

    @property
    def dim_common_(self) -> int:
        return self.dim_target_

    @classmethod
    def _tensor_shapes(cls, ds, dt, dc):
        return {"W_": (ds, dt)}

    @classmethod
    def _common_dim(cls, ds, dt, dc):
        return dt

    def _map_source(self, x, fitted):
        return fitted.pre_y.invert(fitted.pre_x.apply(x) @ fitted.W_)

    def _map_target(self, y, fitted):
        return fitted.pre_y.head(y)

    def _record_fit(self, stats: PairStats, W: torch.Tensor, **extra) -> None:
        """Keep the fitted map ``W`` (a device tensor) as ``W_`` (float64 numpy, the artifact's
        form) and the fit statistics."""
        self.W_ = W.cpu().numpy()
        self.fit_stats_ = {"n_anchors": stats.n,
                           "relative_residual": stats.residual(W),
                           **extra}


def psd_solve(S: torch.Tensor, B: torch.Tensor, alpha: float = 0.0,
              rtol: float | None = None) -> tuple[torch.Tensor, int]:
    """``(S + αI)⁺ B`` for symmetric PSD ``S`` via its eigendecomposition (float64 tensors,
    computed on their device).

    With α = 0 eigenvalues below ``rtol · λ_max`` are dropped (pseudo-inverse: the
    minimum-norm least-squares solution, robust to dead units and n < d). Returns the
    solution and the numerical rank used.
    """
    lam, Q = eigh(S)
    top = max(float(lam.max()) if lam.numel() else 0.0, 0.0)
    rtol = S.shape[0] * float(torch.finfo(torch.float64).eps) if rtol is None else rtol
    keep = lam > rtol * top if top > 0 else torch.zeros_like(lam, dtype=torch.bool)
    if alpha > 0:
        inv = 1.0 / (lam.clamp_min(0.0) + alpha)
        keep = torch.ones_like(keep)
    else:
        inv = torch.where(keep, 1.0 / torch.where(keep, lam, torch.ones_like(lam)), torch.zeros_like(lam))
    return matmul(Q, inv[:, None] * matmul(Q.T, B)), int(keep.sum())
