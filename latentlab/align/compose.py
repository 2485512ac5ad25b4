"""Chaining fitted maps through a pivot space: A → B and B → C give A → C.

VIP-ANT (Zhao et al. 2022) connects audio and text with no audio–text pairs by using images as
the pivot: audio → image and image → text maps, each fitted on its own pairs, are applied in
sequence. :func:`compose` does this for any two latentlab maps whose first lands in the
second's source space.

Two forms of result:

* **folded** — when both maps are affine in raw coordinates (``lstsq``, ``affine``, ``ridge``,
  ``procrustes``, ``lst``, ``lowrank``, ``ot``: ``y = invert_y(pre_x(x) · W)``) and no L2 step
  sits between them (the second map does not L2-normalise its source rows), the chain is one
  affine map. With A's preprocessing u = (head(x) − μ_A)/σ_A kept as is, the first map's
  output un-standardisation (σ₁, μ₁) and the second map's input standardisation (μ₂, σ₂) meet
  in the middle::

      out = (u · W₁ diag(σ₁/σ₂) W₂) ∘ σ_C + [μ_C + (((μ₁ − μ₂)/σ₂) · W₂) ∘ σ_C]

  so the result is an ``affine`` artifact: W = W₁ diag(σ₁/σ₂) W₂, source preprocessing =
  the first map's, target preprocessing = centring with the bracketed offset and the second
  map's target scale and L2 flag. ``apply`` and ``evaluate`` use it like any fitted map.
* **pipeline** — otherwise (an L2 step on the pivot, a nonlinear ``mlp`` stage, a ``cca``
  second stage whose common space is canonical coordinates): an artifact holding every
  stage's tensors under ``stage{i}/…`` and every stage's own header, each checked on load
  exactly like a map file of its own (:func:`latentlab.align.artifact.check_artifact`) and
  chained by dimension; loading runs no code. Source rows go through every stage; target
  rows through the last stage's target side.

The first map of a chain must map *into its target space* (a direct map): ``relative`` and
``cca`` map both sides into a common space of their own, which is not the pivot.

Reference
---------
Zhao, Hessel, Yu, Lu, Zellers & Choi, "Connecting the Dots between Audio and Text without
Parallel Data through Visual Knowledge Transfer" (VIP-ANT), NAACL 2022.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ..errors import InputError
from ..io import atomic_output
from .artifact import check_artifact, load_aligner
from .base import FORMAT, METHODS, Aligner, DirectAligner
from .preprocess import Preprocess

PIPELINE = "pipeline"


def _as_aligner(x, what: str) -> tuple[Aligner, str]:
    if isinstance(x, Aligner):
        x._check_fitted()
        return x, f"the {what} map ({x.method})"
    return load_aligner(x), str(x)


def stages_of(aligner: Aligner) -> list[Aligner]:
    return list(aligner.stages) if isinstance(aligner, Pipeline) else [aligner]


def _direct(aligner: Aligner) -> bool:
    """Maps source rows into its target space (so the next map can take them)."""
    return isinstance(aligner, DirectAligner) or (isinstance(aligner, Pipeline) and _direct(aligner.stages[-1]))


def _affine(aligner: Aligner) -> bool:
    """An affine map of raw rows (after its own source L2): DirectAligner's own transform."""
    return isinstance(aligner, DirectAligner) and type(aligner)._map_source is DirectAligner._map_source


def compose(first, second) -> Aligner:
    """The map ``second ∘ first`` (A → B, then B → C): a folded ``affine`` map when both are
    affine with no L2 step on the pivot, else a :class:`Pipeline` (see the module docstring).

    ``first`` / ``second``: fitted aligners or paths to their artifacts. InputError when the
    first map does not land in the second's source space (dimensions, or a common space of
    its own).
    """
    a, name_a = _as_aligner(first, "first")
    b, name_b = _as_aligner(second, "second")
    if not _direct(a):
        raise InputError(f"{name_a}: a {a.method} map sends source rows into a common space of its own "
                         f"({a.dim_common_} dims), not into its target space, so nothing can follow it; "
                         f"compose maps that land in the pivot space (lstsq, affine, ridge, procrustes, lst, "
                         f"lowrank, ot, mlp)")
    if a.dim_target_ != b.dim_source_:
        raise InputError(f"{name_a} maps into {a.dim_target_} dims, but {name_b} expects source rows of "
                         f"{b.dim_source_} dims: the first map's target space must be the second's source space")
    if _affine(a) and _affine(b) and not b.pre_x_.l2:
        return _fold(a, b)
    return Pipeline(stages=stages_of(a) + stages_of(b))


def _vec(arr, d: int, fill: float) -> np.ndarray:
    return np.full(d, fill) if arr is None else np.asarray(arr, dtype=np.float64)


def _fold(a: DirectAligner, b: DirectAligner) -> Aligner:
    """One affine artifact for b ∘ a (module docstring), restored through the affine method itself."""
    dt = a.dim_target_
    mu1, s1 = _vec(a.pre_y_.mean, dt, 0.0), _vec(a.pre_y_.std, dt, 1.0)
    mu2, s2 = _vec(b.pre_x_.mean, dt, 0.0), _vec(b.pre_x_.std, dt, 1.0)
    muc, sc = _vec(b.pre_y_.mean, b.dim_target_, 0.0), _vec(b.pre_y_.std, b.dim_target_, 1.0)
    W = np.asarray(a.W_) @ ((s1 / s2)[:, None] * np.asarray(b.W_))
    offset = muc + (((mu1 - mu2) / s2) @ np.asarray(b.W_)) * sc
    target = Preprocess(l2=b.pre_y_.l2, center=True, standardize=b.pre_y_.std is not None)
    tensors = {"W_": W, "target.mean": offset, **a.pre_x_.tensors("source")}
    if target.standardize:
        tensors["target.std"] = sc
    meta = {"method": "affine", "params": {}, "dims": {"source": a.dim_source_, "target": b.dim_target_,
                                                       "common": b.dim_target_},
            "preprocessing": {"source": a.pre_x_.describe(), "target": target.describe()},
            "fit_stats": {"composed_of": [_summary(a), _summary(b)],
                          "composition": "folded: W = W1 diag(s1/s2) W2, pivot centring/scaling folded into "
                                         "the target offset (no L2 on the pivot)"},
            "n_anchors": 0, "n_rows": None, "compute_dtype": "float64"}
    return METHODS["affine"]._restore(meta, tensors)


def _summary(al: Aligner) -> dict:
    return {"method": al.method, "dims": {"source": al.dim_source_, "target": al.dim_target_},
            "params": dict(getattr(al, "params_", {}) or {}),
            **({"stages": [s.method for s in al.stages]} if isinstance(al, Pipeline) else {})}


class Pipeline(Aligner):
    """Fitted maps applied in sequence (made by :func:`compose`, never fitted): source rows go
    through every stage, target rows through the last stage's target side."""

    method = PIPELINE

    def __init__(self, stages=(), *, device="auto", dtype="float32"):
        self.stages = stages
        self.device = device
        self.dtype = dtype

    # the fitted state is the stages'
    anchor_indices_ = None
    n_rows_ = None
    n_anchors_ = 0

    def __sklearn_is_fitted__(self) -> bool:
        return len(self.stages) >= 2

    @property
    def dim_source_(self) -> int:
        return self.stages[0].dim_source_

    @property
    def dim_target_(self) -> int:
        return self.stages[-1].dim_target_

    @property
    def dim_common_(self) -> int:
        return self.stages[-1].dim_common_

    @property
    def params_(self) -> dict:
        return {"stages": [s.method for s in self.stages]}

    @property
    def fit_stats_(self) -> dict:
        return {"composed_of": [_summary(s) for s in self.stages]}

    def fit(self, X, Y=None, **_):
        raise InputError("a pipeline is made by composing fitted maps (latentlab compose), not fitted")

    def _on(self, backend) -> SimpleNamespace:
        return SimpleNamespace(stages=[s._on(backend) for s in self.stages])

    def _map_source(self, x: torch.Tensor, fitted) -> torch.Tensor:
        for stage, f in zip(self.stages, fitted.stages):
            x = stage._map_source(x, f)
        return x

    def _map_target(self, y: torch.Tensor, fitted) -> torch.Tensor:
        return self.stages[-1]._map_target(y, fitted.stages[-1])

    def metadata(self) -> dict:
        from .. import __version__

        return {"format": FORMAT, "format_version": "1", "latentlab_version": __version__, "method": PIPELINE,
                "dims": {"source": self.dim_source_, "target": self.dim_target_, "common": self.dim_common_},
                "stages": [{**s.metadata(), "anchor_indices": None} for s in self.stages]}

    def save(self, path) -> Path:
        """Every stage's tensors (``stage{i}/NAME``) and header in one ``.safetensors`` file (atomic, no pickle)."""
        from safetensors.numpy import save as serialise

        from ..results import to_jsonable

        self._check_fitted()
        target = Path(path)
        if target.suffix.lower() != ".safetensors":
            raise InputError(f"{target}: aligner artifacts are .safetensors files")
        tensors = {}
        for i, s in enumerate(self.stages):
            own = {name: getattr(s, name) for name in s.TENSORS}
            own.update(s.pre_x_.tensors("source"))
            own.update(s.pre_y_.tensors("target"))
            tensors.update({f"stage{i}/{k}": np.ascontiguousarray(np.asarray(v, dtype=np.float64))
                            for k, v in own.items()})
        meta = {"format": FORMAT, "latentlab": json.dumps(to_jsonable(self.metadata()), allow_nan=False)}
        data = serialise(tensors, metadata=meta)
        with atomic_output(target) as tmp, open(tmp, "wb") as fh:
            fh.write(data)
        return target


def restore_pipeline(p: Path, meta: dict, shapes: dict, dtypes: dict, get_tensor) -> Pipeline:
    """A :class:`Pipeline` from a parsed header (called by :func:`load_aligner`): every stage is
    checked as a map file of its own, the stages are chained by dimension, and no tensor is read
    before its header is accepted."""

    def bad(field: str, why: str):
        return InputError(f"{p}: corrupt pipeline artifact: header field {field!r} {why}")

    stages = meta.get("stages")
    if not isinstance(stages, list) or len(stages) < 2 or not all(isinstance(s, dict) for s in stages):
        raise bad("stages", "must be a list of at least two map headers")
    owned = set()
    found = []
    for i, smeta in enumerate(stages):
        if smeta.get("method") == PIPELINE:
            raise bad(f"stages[{i}].method", "is a pipeline (stages are flattened when composed)")
        prefix = f"stage{i}/"
        sub_shapes = {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}
        sub_dtypes = {k[len(prefix):]: v for k, v in dtypes.items() if k.startswith(prefix)}
        owned |= {prefix + k for k in sub_shapes}
        cls = check_artifact(f"{p} (stage {i})", smeta, sub_shapes, sub_dtypes)
        found.append((cls, smeta, prefix, sub_shapes))
    stray = sorted(set(shapes) - owned)
    if stray:
        raise bad("stages", f"has no stage for the tensor(s) {', '.join(stray)}")
    restored = []
    for i, (cls, smeta, prefix, sub_shapes) in enumerate(found):
        tensors = {k: get_tensor(prefix + k) for k in sub_shapes}
        for name, arr in tensors.items():
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise InputError(f"{p}: corrupt pipeline artifact: tensor {prefix + name!r} contains NaN or Inf")
        try:
            restored.append(cls._restore(smeta, tensors))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{p}: corrupt pipeline artifact, stage {i} ({type(exc).__name__}: {exc})") from None
    for i, (s, t) in enumerate(zip(restored, restored[1:])):
        if not _direct(s) or s.dim_target_ != t.dim_source_:
            raise bad(f"stages[{i + 1}]", f"does not follow stage {i} ({s.method}, {s.dim_target_} dims out) "
                                          f"— the chain is broken")
    pipe = Pipeline(stages=restored)
    dims = meta.get("dims")
    want = {"source": pipe.dim_source_, "target": pipe.dim_target_, "common": pipe.dim_common_}
    if dims != want:
        raise bad("dims", f"is {dims!r}, but the stages chain {want}")
    return pipe


def compose_maps(first, second, output) -> dict:
    """Compose two map files (or fitted aligners) and save the result to ``output``; returns a summary."""
    composed = compose(first, second)
    composed.save(output)
    kind = "pipeline" if isinstance(composed, Pipeline) else "folded"
    return {"output": str(output), "kind": kind, "method": composed.method,
            "dims": {"source": composed.dim_source_, "target": composed.dim_target_, "common": composed.dim_common_},
            "stages": [_summary(s) for s in stages_of(composed)] if kind == "pipeline"
            else composed.fit_stats_["composed_of"]}


__all__ = ["compose", "compose_maps", "Pipeline", "restore_pipeline", "PIPELINE"]
