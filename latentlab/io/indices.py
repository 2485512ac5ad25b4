"""Integer index files: ground truth, anchor rows, held-out rows, labels."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .rowsource import check_npy
from .formats import first_line


def read_indices(spec: str | os.PathLike, option: str = "indices") -> np.ndarray:
    """Integer indices from ``.npy`` (1-D or 2-D, never unpickled) or a text/CSV file.

    Used for ground truth, anchor rows, labels and held-out rows; ``option`` names the
    command-line option in error messages. Range checks belong to the caller, who knows n.
    """
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"{option} {spec}: no such file")
    try:
        if path.suffix.lower() == ".npy":
            check_npy(path)  # header and size checked before numpy allocates what the header claims
            arr = np.load(path, allow_pickle=False)
        else:
            arr = np.loadtxt(path, delimiter="," if path.suffix.lower() == ".csv" else None, ndmin=1)
    except InputError as exc:
        raise InputError(f"{option} {exc}") from None
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{option} {spec}: cannot read indices ({first_line(exc)})") from None
    return integer_indices(arr, f"{option} {spec}", allow_bool=True)


def integer_indices(values, what: str, *, allow_bool: bool = False) -> np.ndarray:
    """``values`` as int64 indices: integers, or floats that are whole numbers (CSV files)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError(f"{what}: indices must be whole numbers")
        if arr.size and np.abs(arr).max() >= 2.0**63:
            raise InputError(f"{what}: index {arr.flat[np.argmax(np.abs(arr))]:.6g} is out of range")
        return arr.astype(np.int64)
    if arr.dtype.kind == "b" and allow_bool:
        return arr
    if arr.dtype.kind not in "iu":
        raise InputError(f"{what}: indices must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise InputError(f"{what}: index {int(arr.max())} is out of range")
    return arr.astype(np.int64)

