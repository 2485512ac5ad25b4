"""Lazy row sources: matrices on disk whose rows are read on demand.

They behave like a read-only 2-D numpy array for the operations latentlab needs: ``shape``,
``dtype``, ``len``, row indexing by int / slice / integer or boolean array, and
``np.asarray``. Reads use ``readinto`` on a file handle rather than ``mmap``: mapped file
pages count towards a process's resident memory, explicit reads do not.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..errors import InputError


def read_npy_header(fh, name) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Parse and check the header of the ``.npy`` stream ``fh``: (shape, fortran_order, dtype, offset).

    ``name`` names the file in errors. Shapes with negative dimensions and dtypes holding
    Python objects (which would need the unpickler) are refused; nothing is allocated.
    """
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:  # version 3 (utf-8 field names) has no public reader
            shape, fortran, dtype = np.lib.format._read_array_header(fh, version)  # noqa: SLF001
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # numpy reports a bad header as ValueError, SyntaxError, TypeError...
        raise InputError(f"{name}: not a valid .npy file ({first_line(exc)}); re-save it with numpy.save") from None
    offset = fh.tell()
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise InputError(f"{name}: holds Python objects; latentlab reads numeric arrays only "
                         f"(dtype {dtype}, never unpickled)")
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise InputError(f"{name}: corrupt .npy header (negative dimension in shape {shape}); re-save the file")
    if dtype.itemsize == 0:
        raise InputError(f"{name}: zero-size dtype {dtype!s} in the .npy header; latentlab reads numeric arrays only")
    return shape, bool(fortran), dtype, offset


def npy_nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes of data a header promises (exact Python integers: no overflow)."""
    return math.prod(shape) * dtype.itemsize


def check_npy(path: Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Header of the ``.npy`` file ``path``, checked against the file size before anything is read."""
    try:
        with open(path, "rb") as fh:
            shape, fortran, dtype, offset = read_npy_header(fh, path)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or first_line(exc)}); check the file's permissions") from None
    expected = offset + npy_nbytes(shape, dtype)
    if size < expected:
        raise InputError(f"{path}: truncated or corrupt .npy file ({size} bytes, header promises {expected} "
                         f"for shape {shape}); re-save or re-download it")
    return shape, fortran, dtype, offset


def open_npy(path: Path):
    """A lazy view of a ``.npy`` file (C order), or a read-only memmap for Fortran order."""
    shape, fortran, dtype, offset = check_npy(path)
    if fortran and len(shape) > 1:
        if 0 in shape:
            return np.empty(shape, dtype=dtype, order="F")
        return np.load(path, mmap_mode="r", allow_pickle=False)
    return NpyRows(path, offset, dtype, tuple(shape))


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class NpyRows:
    """Rows of a C-ordered array stored at ``offset`` in ``path`` (any rank ≥ 1)."""

    ndim = property(lambda self: len(self.shape))

    def __init__(self, path: Path, offset: int, dtype: np.dtype, shape: tuple[int, ...]):
        self.path = Path(path)
        self.offset = int(offset)
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self.row_shape = self.shape[1:]
        self.row_bytes = math.prod(self.row_shape) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def _open(self):
        # a shard listed at the start can vanish or be replaced mid-run (a shared folder):
        # name it, as a truncated one is named
        try:
            return open(self.path, "rb")
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read it any more ({exc.strerror or exc}); it was readable "
                             "when the run started: was it moved or deleted while it ran?") from None

    def _read_range(self, fh, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.row_shape), dtype=self.dtype)
        if stop > start:
            fh.seek(self.offset + start * self.row_bytes)
            view = memoryview(out.reshape(-1).view(np.uint8))
            got = fh.readinto(view)
            if got != view.nbytes:
                raise InputError(f"{self.path}: file ended early while reading rows {start}:{stop}")
        return out

    def __getitem__(self, index):
        if isinstance(index, tuple):
            head, *rest = index
            return _index_rest(self[head], head, rest)
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if not -len(self) <= i < len(self):
                raise IndexError(f"row {i} out of range for {len(self)} rows")
            i %= len(self)
            if len(self.shape) > 1 and len(self.row_shape) >= 2:
                return NpyRows(self.path, self.offset + i * self.row_bytes, self.dtype, self.row_shape)
            with self._open() as fh:
                return self._read_range(fh, i, i + 1)[0]
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                with self._open() as fh:
                    return self._read_range(fh, start, max(start, stop))
            index = np.arange(start, stop, step)
        return self._take(np.asarray(index))

    def _take(self, idx: np.ndarray) -> np.ndarray:
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise IndexError("boolean index must match the number of rows")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        idx = idx % max(len(self), 1)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        out = np.empty((idx.size, *self.row_shape), dtype=self.dtype)
        with self._open() as fh:
            # Coalesce consecutive rows into single reads.
            breaks = np.flatnonzero(np.diff(sorted_idx) != 1) + 1
            for run in np.split(np.arange(idx.size), breaks):
                if run.size == 0:
                    continue
                lo, hi = int(sorted_idx[run[0]]), int(sorted_idx[run[-1]]) + 1
                if hi - lo == run.size:
                    out[order[run]] = self._read_range(fh, lo, hi)
                else:  # repeated indices inside the run
                    block = self._read_range(fh, lo, hi)
                    out[order[run]] = block[sorted_idx[run] - lo]
        return out

    def __array__(self, dtype=None, copy=None):
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype, copy=False)


def _index_rest(rows: np.ndarray, head, rest):
    if np.ndim(head) == 0 and not isinstance(head, slice):
        return rows[tuple(rest)]
    return rows[(slice(None), *rest)]


class ShardRows:
    """Several 2-D row sources of equal width read as one matrix, in the given order."""

    def __init__(self, parts: list):
        self.parts = parts
        self.bounds = np.cumsum([0] + [p.shape[0] for p in parts])
        self.shape = (int(self.bounds[-1]), int(parts[0].shape[1]))
        self.dtype = np.result_type(*[np.dtype(p.dtype) for p in parts])

    ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, tuple):
            head, *rest = index
            return _index_rest(self[head], head, rest)
        if isinstance(index, (int, np.integer)):
            i = int(index) % len(self)
            k = int(np.searchsorted(self.bounds, i, side="right")) - 1
            return np.asarray(self.parts[k][i - int(self.bounds[k])], dtype=self.dtype)
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return self._take(np.arange(start, stop, step))
            pieces = []
            for k, part in enumerate(self.parts):
                lo, hi = int(self.bounds[k]), int(self.bounds[k + 1])
                a, b = max(start, lo), min(stop, hi)
                if a < b:
                    pieces.append(np.asarray(part[a - lo : b - lo], dtype=self.dtype))
            if not pieces:
                return np.empty((0, self.shape[1]), dtype=self.dtype)
            return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        return self._take(np.asarray(index))

    def _take(self, idx: np.ndarray) -> np.ndarray:
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1) % max(len(self), 1)
        out = np.empty((idx.size, self.shape[1]), dtype=self.dtype)
        shard = np.searchsorted(self.bounds, idx, side="right") - 1
        for k in np.unique(shard):
            sel = np.flatnonzero(shard == k)
            local = idx[sel] - self.bounds[k]
            part = self.parts[k]
            lazy = isinstance(part, (NpyRows, ShardRows)) or getattr(part, "lazy_rows", False)
            out[sel] = part[local] if lazy else np.asarray(part)[local]
        return out

    def __array__(self, dtype=None, copy=None):
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype, copy=False)


class IndexedRows:
    """Rows ``index`` of a row source, read lazily block by block: row i is ``data[index[i]]``.

    A subset (a fit's anchor pairs, the gallery rows ``retrieval --both`` evaluates G→Q) or a
    permutation (the shuffled pairing of a permutation null). It pickles with its index, so a
    Dask worker reads its own block of it; errors name the row of the underlying source
    (``source_rows``)."""

    def __init__(self, data, index):
        self.data, self.index = data, np.asarray(index, dtype=np.int64)
        self.shape = (len(self.index), *tuple(data.shape)[1:])
        self.dtype = np.dtype(data.dtype)

    @classmethod
    def permuted(cls, data, perm) -> "IndexedRows":
        """``data`` in the order ``perm``, which must have one entry per row (a shuffled pairing)."""
        rows = cls(data, perm)
        if rows.index.shape != (len(data),):
            raise ValueError(f"a permutation of {len(data)} rows has {rows.index.size} entries")
        return rows

    @property
    def source_rows(self) -> np.ndarray:
        """Row numbers in the underlying source (:func:`latentlab.io.validate` names these)."""
        return self.index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item):
        return np.asarray(self.data[self.index[item]])

    def __array__(self, dtype=None, copy=None):
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype, copy=False)
