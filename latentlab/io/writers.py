"""Writing: every output goes to a temporary file beside the target and is renamed into place."""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError
from .formats import FORMATS, torch_to_numpy


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    The temporary name keeps the suffix, so writers that append one (``np.save``) behave.
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{target}: output folder {parent} does not exist")
    tmp = parent / f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}"
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_array(path: str | os.PathLike, array: Any) -> Path:
    """Write any numpy array to ``.npy`` atomically (gap vectors, assignments, plans)."""
    target = Path(path)
    if target.suffix.lower() != ".npy":
        raise InputError(f"{target}: expected a .npy output path")
    with atomic_output(target) as tmp:
        np.save(tmp, np.asarray(array))
    return target


def write_embeddings(path: str | os.PathLike, array: Any, *, key: str = "embeddings", metadata: dict | None = None) -> Path:
    """Write a 2-D array atomically in the format named by ``path``'s extension.

    ``key`` names the array in keyed formats (npz, pt dict, safetensors, parquet column);
    ``metadata`` (str → str) goes into the safetensors header.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if type(array).__module__.startswith("torch"):
        array = torch_to_numpy(array)
    arr = np.ascontiguousarray(np.asarray(array))
    if arr.ndim != 2 or arr.dtype.kind not in "fiu":
        raise InputError(f"{target}: can only write a 2-D numeric array, got {arr.dtype} of shape {arr.shape}")
    with atomic_output(target) as tmp:
        if suffix == ".npy":
            np.save(tmp, arr)
        elif suffix == ".npz":
            np.savez(tmp, **{key: arr})
        elif suffix in (".pt", ".pth"):
            import torch

            torch.save({key: torch.from_numpy(arr)}, tmp)
        elif suffix == ".safetensors":
            import torch
            from safetensors.torch import save_file

            save_file({key: torch.from_numpy(arr)}, str(tmp), metadata=metadata)
        elif suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            flat = pa.array(arr.reshape(-1))
            column = pa.FixedSizeListArray.from_arrays(flat, arr.shape[1])
            pq.write_table(pa.table({key: column}), tmp)
        elif suffix in (".csv", ".tsv"):
            np.savetxt(tmp, arr, delimiter="\t" if suffix == ".tsv" else ",", fmt="%.9g")
        else:
            raise InputError(f"{target}: unknown output format {suffix!r}; expected one of {', '.join(FORMATS)}")
    return target

