"""Reading and writing embedding matrices: the only module that knows about file formats.

Every input becomes an :class:`Embeddings`: a 2-D matrix (rows = items, columns = dims)
plus the name it was read under. Large ``.npy`` files and shard folders are not loaded:
their rows are read on demand with plain file reads (not ``mmap``), so a streaming pass
over a 3 GB file keeps only one block in memory — mapped pages would count towards RSS.

Selector syntax: ``PATH::KEY[::KEY...]`` picks an array in an ``.npz``/``.pt``/
``.safetensors`` file, a list column of a parquet file, or an index along the first axis
of a 3-D array (``features_clip.npy::0``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .rowsource import NpyRows
from .formats import (FORMATS, READERS, SELECTOR, apply_selectors, display_name, first_line, read_shard_folder,
                      read_sidecar, torch_to_numpy)
from .indices import integer_indices, read_indices
from .writers import atomic_output, save_array, write_embeddings


@dataclass(frozen=True, eq=False)
class Embeddings:
    """A validated 2-D embedding matrix and the name it was read under.

    ``data`` is a numpy array or a lazy row source (:class:`~latentlab.io.rowsource.NpyRows`,
    :class:`~latentlab.io.rowsource.ShardRows`); index it by rows (``emb.rows(slice)``) or
    call ``np.asarray(emb)`` to load everything.
    """

    data: Any
    name: str
    provenance: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def n(self) -> int:
        return int(self.data.shape[0])

    @property
    def dim(self) -> int:
        return int(self.data.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    def __len__(self) -> int:
        return self.n

    def rows(self, index) -> np.ndarray:
        """Rows ``index`` (slice or integer array) as an in-memory array."""
        return np.asarray(self.data[index])

    def __array__(self, dtype=None, copy=None):
        arr = np.asarray(self.data)
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def describe(self) -> str:
        return f"{self.name} ({self.n} × {self.dim})"


def read_embeddings(spec: str | os.PathLike, *, check_finite: bool = True) -> Embeddings:
    """Read ``spec`` (a path, optionally with ``::KEY`` selectors) as validated embeddings.

    Parameters
    ----------
    spec : path with optional selectors, e.g. ``"features_clip.npy::0"``, ``"emb.npz::text"``.
    check_finite : scan every row for NaN/Inf (streamed) and name the first bad row.

    Returns
    -------
    Embeddings

    Raises
    ------
    InputError
        Missing file, unknown format, unreadable file, wrong rank, empty or non-numeric data,
        NaN/Inf rows, or a selector that does not exist (the message lists the valid keys).
    """
    spec = os.fspath(spec)
    path_str, *keys = spec.split(SELECTOR)
    if not path_str or "\0" in path_str:
        raise InputError(f"{spec!r}: not a file name (expected PATH or PATH::KEY)")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in spec):
        # a newline or other control character would break the one-line error contract (and a terminal)
        raise InputError(f"{spec!r}: control characters in a file name or selector; rename the file or fix the key")
    path = Path(path_str)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    try:
        if path.is_dir():
            data = read_shard_folder(path)
        else:
            suffix = path.suffix.lower()
            reader = READERS.get(suffix)
            if reader is None:
                raise InputError(
                    f"{path}: unknown format {suffix or '(no extension)'!r}; "
                    f"expected one of {', '.join(FORMATS)} or a folder of shards"
                )
            data = reader(path)
        data = apply_selectors(data, keys, spec, path)
        emb = Embeddings(data=data, name=display_name(spec), provenance=read_sidecar(path))
        validate(emb, check_finite=check_finite)
    except InputError:
        raise
    except MemoryError:
        raise
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or first_line(exc)}); "
                         f"check that it is a readable file") from exc
    except Exception as exc:  # a corrupt file surfaces as many exception types
        raise InputError(f"{path}: cannot read ({type(exc).__name__}: {first_line(exc)}); "
                         f"re-save or re-download it") from exc
    return emb


def as_embeddings(x: Any, name: str = "array", *, check_finite: bool = True) -> Embeddings:
    """Coerce a path, numpy array, torch tensor or :class:`Embeddings` into validated embeddings."""
    if isinstance(x, Embeddings):
        return x
    if isinstance(x, (str, os.PathLike)):
        return read_embeddings(x, check_finite=check_finite)
    if type(x).__module__.startswith("torch"):
        x = torch_to_numpy(x)
    # numpy arrays and lazy row sources (shape, dtype, row indexing) are kept as they are
    if isinstance(x, np.ndarray) and any(st < 0 for st in x.strides):
        x = np.ascontiguousarray(x)  # torch cannot view negative strides (x[:, ::-1])
    is_rows = hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")
    emb = Embeddings(data=x if is_rows else np.asarray(x), name=name)
    validate(emb, check_finite=check_finite)
    return emb


def validate(emb: Embeddings, *, check_finite: bool = True, block_rows: int = 65536) -> None:
    """Check rank, size, dtype and finiteness; raise :class:`InputError` naming the problem."""
    shape = tuple(emb.data.shape)
    if len(shape) != 2:
        what = "1-D" if len(shape) == 1 else f"{len(shape)}-D"
        raise InputError(
            f"{emb.name}: embeddings must be a 2-D array (rows × dims), got a {what} array of shape {shape}"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise InputError(f"{emb.name}: empty array of shape {shape}")
    kind = np.dtype(emb.data.dtype).kind
    if kind not in "fiu":
        raise InputError(f"{emb.name}: non-numeric data (dtype {emb.data.dtype})")
    if check_finite and kind == "f":
        for start in range(0, shape[0], block_rows):
            block = np.asarray(emb.data[start : start + block_rows])
            bad = ~np.isfinite(block).all(axis=1)
            if bad.any():
                row = start + int(np.argmax(bad))
                what = "NaN" if np.isnan(block[row - start]).any() else "Inf"
                # a view of selected rows (e.g. anchors) reports the row number in the file
                source_rows = getattr(emb.data, "source_rows", None)
                shown = int(source_rows[row]) if source_rows is not None else row
                raise InputError(f"{emb.name}: row {shown} contains {what} (first non-finite row)")


def require_nonzero_rows(emb: Embeddings, what: str, *, block_rows: int = 65536) -> None:
    """The one rule for zero rows: whatever L2-normalises the rows of ``emb`` refuses rows of zero norm.

    A zero row has no direction: normalising it either divides by zero or (clamped) leaves a
    zero "unit" vector whose cosine with everything is 0, which silently biases means,
    centroids and neighbour lists. Statistics that never normalise (linear CKA, spectra of
    the covariance) accept zero rows. The scan is streamed and done once per ``Embeddings``;
    the message names the first offending row (its row in the file for a row subset) and the
    count, e.g. ``a.npy: row 3 has zero norm (cannot be L2-normalised for gap); 2 such rows — …``.
    """
    found = getattr(emb, "_zero_rows", None)
    if found is None:
        count, first = 0, None
        for start in range(0, emb.n, block_rows):
            block = np.asarray(emb.data[start : start + block_rows])
            zero = ~block.any(axis=1)  # exact zeros: a norm that underflows is still a direction
            if zero.any():
                count += int(zero.sum())
                if first is None:
                    first = start + int(np.argmax(zero))
        found = (count, first)
        object.__setattr__(emb, "_zero_rows", found)  # a frozen dataclass: cache beside the fields
    count, first = found
    if count:
        source_rows = getattr(emb.data, "source_rows", None)
        shown = int(source_rows[first]) if source_rows is not None else first
        others = f"; {count} such rows" if count > 1 else ""
        raise InputError(f"{emb.name}: row {shown} has zero norm (cannot be L2-normalised for {what}){others} — "
                         f"drop the zero rows (padding or failed encodes) before comparing")


def require_rows(emb: Embeddings, minimum: int, what: str) -> None:
    """Raise :class:`InputError` unless ``emb`` has at least ``minimum`` rows for ``what``."""
    if emb.n < minimum:
        raise InputError(f"{emb.name}: {what} needs at least {minimum} rows, got {emb.n}")


def require_paired(a: Embeddings, b: Embeddings, what: str) -> None:
    """Paired methods need equal row counts (row i of A matches row i of B)."""
    if a.n != b.n:
        raise InputError(
            f"{what} needs paired rows: {a.name} has {a.n} rows but {b.name} has {b.n}"
        )


def require_same_dim(a: Embeddings, b: Embeddings, what: str) -> None:
    if a.dim != b.dim:
        raise InputError(
            f"{what} needs equal dimensions: {a.name} has {a.dim} but {b.name} has {b.dim}"
        )



__all__ = [
    "Embeddings", "read_embeddings", "as_embeddings", "write_embeddings", "save_array", "atomic_output",
    "validate", "require_rows", "require_nonzero_rows", "require_paired", "require_same_dim", "read_indices", "integer_indices",
    "display_name", "NpyRows", "FORMATS", "SELECTOR",
]
