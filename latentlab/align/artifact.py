"""Aligner artifacts on disk: reading a ``.safetensors`` map back (:func:`load_aligner`) after
checking its JSON header field by field against the tensors' names, shapes and dtypes
(:func:`check_artifact`) — before any tensor is read, and without running code from the file.
Writing is :meth:`latentlab.align.base.Aligner.save`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import FORMAT, METHODS, Aligner


#: header fields that are dimensions, in the order they are checked
_DIMS = ("source", "target", "common")
#: no embedding has more columns than this; larger header dims are corrupt
_MAX_DIM = 1 << 31


def _int_field(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_artifact(p: Path, meta, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str]) -> type[Aligner]:
    """Check a parsed header against the tensors' names, shapes and dtypes (read from the
    safetensors header, before any tensor is loaded); InputError naming the file and field."""

    def bad(field: str, why: str):
        return InputError(f"{p}: corrupt aligner artifact: header field {field!r} {why}")

    if not isinstance(meta, dict):
        raise bad("latentlab", "is not a JSON object")
    method = meta.get("method")
    if not isinstance(method, str) or method not in METHODS:
        raise bad("method", f"names an unknown method {method!r} (expected one of {', '.join(METHODS)})")
    cls = METHODS[method]
    dims = meta.get("dims")
    if not isinstance(dims, dict):
        raise bad("dims", "is missing or not an object")
    for key in _DIMS:
        v = dims.get(key)
        if not _int_field(v) or not 1 <= int(v) <= _MAX_DIM:
            raise bad(f"dims.{key}", f"must be a positive integer, got {v!r}")
    ds, dt, dc = (int(dims[k]) for k in _DIMS)
    want_dc = cls._common_dim(ds, dt, dc)
    if want_dc is not None and dc != want_dc:
        raise bad("dims.common", f"is {dc}, but a {method} map's common space has {want_dc} dims")
    params = meta.get("params")
    if not isinstance(params, dict):
        raise bad("params", "is missing or not an object")
    keys, allowed = set(params), set(cls.PARAMS)
    if not allowed <= keys or not keys <= allowed | set(cls.LEGACY_PARAMS):
        raise bad("params", f"has options {sorted(keys)}, but method {method!r} takes {sorted(allowed)} "
                            f"(was 'method' edited?)")
    try:
        checked = cls.__new__(cls)._check_params(dict(params))
    except (InputError, TypeError, ValueError) as exc:
        raise bad("params", f"holds an invalid option ({exc})") from None
    pre = meta.get("preprocessing")
    if not isinstance(pre, dict):
        raise bad("preprocessing", "is missing or not an object")
    expected: dict[str, tuple[int, ...]] = {}
    for side, d in (("source", ds), ("target", dt)):
        flags = pre.get(side)
        if not isinstance(flags, dict):
            raise bad(f"preprocessing.{side}", "is missing or not an object")
        for key in ("l2", "center", "standardize"):
            if not isinstance(flags.get(key), bool):
                raise bad(f"preprocessing.{side}.{key}", f"must be true or false, got {flags.get(key)!r}")
        if flags["center"] or flags["standardize"]:
            expected[f"{side}.mean"] = (d,)
        if flags["standardize"]:
            expected[f"{side}.std"] = (d,)
    for field, ok in (("n_anchors", lambda v: v is None or (_int_field(v) and v >= 0)),
                      ("n_rows", lambda v: v is None or (_int_field(v) and v >= 0)),
                      ("fit_stats", lambda v: v is None or isinstance(v, dict)),
                      ("compute_dtype", lambda v: v is None or isinstance(v, str))):
        if not ok(meta.get(field)):
            raise bad(field, f"has the wrong type ({meta.get(field)!r})")
    expected.update(cls._artifact_shapes(ds, dt, dc, checked))
    if meta.get("anchor_indices") is not None:
        if "anchor_indices" not in shapes:
            raise bad("anchor_indices", "names a tensor the file lacks")
        expected["anchor_indices"] = tuple(shapes["anchor_indices"][:1]) if len(shapes["anchor_indices"]) == 1 else (-1,)
    missing = sorted(set(expected) - set(shapes))
    if missing:
        raise bad("method", f"({method!r}) needs the tensor(s) {', '.join(missing)}, which the file lacks")
    extra = sorted(set(shapes) - set(expected))
    if extra:
        raise bad("method", f"({method!r}) does not use the tensor(s) {', '.join(extra)} found in the file "
                            f"(was 'method' or 'preprocessing' edited?)")
    for name, shape in expected.items():
        got = tuple(int(v) for v in shapes[name])
        if got != shape:
            field = "anchor_indices" if name == "anchor_indices" else "dims"
            detail = f" ({dims})" if field == "dims" else ""
            if field == "dims" and cls._artifact_shapes.__func__ is not Aligner._artifact_shapes.__func__:
                detail = f" ({dims}) or 'params' ({params})"  # this method's shapes follow its options too
            raise bad(field, f"{detail} contradicts tensor {name!r} of shape {got} (expected {shape})".lstrip())
        want = "I64" if name == "anchor_indices" else "F64"
        if dtypes[name] != want:
            raise bad("method", f"({method!r}) expects tensor {name!r} as {want}, found {dtypes[name]}")
    return cls


def load_aligner(path) -> Aligner:
    """Read an aligner artifact written by :meth:`Aligner.save` (parses data only).

    The header is checked against the tensors' names, shapes and dtypes before any tensor
    is read; an edited or inconsistent header is an InputError naming the field.
    """
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        with safe_open(str(p), framework="np") as fh:
            header = fh.metadata() or {}
            shapes, dtypes = {}, {}
            for k in fh.keys():
                sl = fh.get_slice(k)
                shapes[k], dtypes[k] = tuple(sl.get_shape()), str(sl.get_dtype())
            if header.get("format") != FORMAT or "latentlab" not in header:
                raise InputError(f"{p}: not a latentlab aligner artifact (no {FORMAT!r} metadata in the header)")
            try:
                meta = json.loads(header["latentlab"])
            except ValueError:
                raise InputError(f"{p}: corrupt aligner artifact: header field 'latentlab' is not valid JSON") from None
            if isinstance(meta, dict) and meta.get("method") == "pipeline":  # composed maps: stages checked one by one
                from .compose import restore_pipeline
                return restore_pipeline(p, meta, shapes, dtypes, fh.get_tensor)
            cls = check_artifact(p, meta, shapes, dtypes)
            tensors = {k: fh.get_tensor(k) for k in shapes}
    except InputError:
        raise
    except Exception as exc:  # not safetensors at all
        raise InputError(f"{p}: not a latentlab aligner artifact (not a readable .safetensors file: "
                         f"{type(exc).__name__})") from None
    for name, arr in tensors.items():
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise InputError(f"{p}: corrupt aligner artifact: tensor {name!r} contains NaN or Inf")
    idx, n_rows = tensors.get("anchor_indices"), meta.get("n_rows")
    if idx is not None and len(idx) and (idx.min() < 0 or (n_rows is not None and idx.max() >= n_rows)):
        raise InputError(f"{p}: corrupt aligner artifact: header field 'n_rows' ({n_rows}) "
                         f"contradicts tensor 'anchor_indices' (indices {int(idx.min())}..{int(idx.max())})")
    try:
        return cls._restore(meta, tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{p}: corrupt latentlab aligner artifact ({type(exc).__name__}: {exc})") from None
