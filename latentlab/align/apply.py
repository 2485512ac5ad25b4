"""Applying a fitted map to rows of any length: read, map and write block by block.

:func:`apply_map` is what ``latentlab apply`` calls. The input (a ``.npy``, a shard folder,
a LAION-style dump — anything :func:`latentlab.io.read_embeddings` reads lazily) is read in
row blocks; each block is moved to the device, mapped there in float64 (the precision the
closed forms were solved in) and written into the output at once through
:func:`latentlab.io.writers.embedding_writer`, whose header goes first (the shape is known
before the first row is read). Memory holds one block, whatever the number of rows; an
error or an interruption leaves no output and no temporary file (a SIGKILL leaves our
temporary, which the next write of the same output removes). ``.pt`` pickles one whole
tensor and cannot stream: it is refused above the memory budget
(:data:`latentlab.analyze.prep.IN_MEMORY_BYTES`) before any row is read.

:func:`mapped_blocks` gives the same blocks to Python callers that keep computing (numpy,
float64), so nothing needs the whole mapped matrix.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..compute import Backend
from ..errors import InputError
from ..io import Embeddings, as_embeddings, validate
from ..io.writers import STREAMED, embedding_writer
from ..progress import progress
from ..results import ResultMixin
from ..io.rowsource import IndexedRows
from .base import Aligner

_OUT_DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass(frozen=True)
class ApplyResult(ResultMixin):
    """What :func:`apply_map` wrote: ``rows`` mapped ``side`` rows of ``dim_out`` dims in ``output``."""

    method: str
    side: str
    rows: int
    dim_out: int
    output: str
    dtype: str


def _aligner(map_or_path) -> Aligner:
    if isinstance(map_or_path, Aligner):
        map_or_path._check_fitted()
        return map_or_path
    from .artifact import load_aligner

    return load_aligner(map_or_path)


def _prepare(aligner: Aligner, X, side: str, device, block_rows):
    """Checked input (no up-front NaN pass: a non-finite mapped block names its input row) and the blocks."""
    if side not in ("source", "target"):
        raise InputError(f"side {side!r}: expected 'source' or 'target'")
    ex = as_embeddings(X, side, check_finite=False)
    backend = Backend.make(aligner.device if device is None else device)
    n, _, blocks = aligner._mapped_blocks(ex, side, backend, block_rows)
    return ex, n, blocks


def _checked(ex: Embeddings, blocks, method: str) -> Iterator[tuple[int, np.ndarray]]:
    """``(offset, float64 numpy block)``; a non-finite block is traced to its input row, or to the map."""
    for lo, t in blocks:
        out = t.cpu().numpy()  # the edge: rows leave the device here, one block at a time
        if not np.isfinite(out).all():
            validate(Embeddings(IndexedRows(ex.data, np.arange(lo, lo + len(out))), ex.name))  # names the row in X
            raise InputError(f"{ex.name}: mapping rows {lo}–{lo + len(out) - 1} with this {method} map overflowed "
                             f"(values too large); rescale the input")
        yield lo, out


def mapped_blocks(map_or_path, X, *, side: str = "source", device=None,
                  block_rows: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """The rows of ``X`` mapped by a fitted map, as ``(offset, float64 block)`` in row order.

    ``map_or_path``: a fitted :class:`~latentlab.align.Aligner` (also a composed pipeline, an
    ``mlp`` map) or the path of its artifact. ``side``: ``"source"`` (``transform``) or
    ``"target"`` (``transform_target``). ``device``: where to compute (default: the map's).
    """
    aligner = _aligner(map_or_path)
    ex, _, blocks = _prepare(aligner, X, side, device, block_rows)
    return _checked(ex, blocks, aligner.method)


def apply_map(map_or_path, X, output: str | os.PathLike, *, side: str = "source", device=None,
              dtype: str = "float32", block_rows: int | None = None) -> ApplyResult:
    """Map the rows of ``X`` with a fitted map and write them to ``output``, streamed.

    Parameters
    ----------
    map_or_path : a fitted aligner or the path of its ``.safetensors`` artifact.
    X : path (``.npy``, shard folder, dump, ``PATH::KEY``), array, tensor or Embeddings.
    output : ``.npy`` / ``.npz`` / ``.safetensors`` / ``.parquet`` / ``.csv`` / ``.tsv`` (streamed);
        ``.pt`` (gathered in memory: refused above the memory budget).
    side : ``"source"`` maps source rows, ``"target"`` target rows into the common space.
    device : ``auto`` / ``cpu`` / ``cuda[:N]`` (default: the map's own setting).
    dtype : ``float32`` or ``float64``: the output's dtype (the mapping itself runs in float64).
    """
    if dtype not in _OUT_DTYPES:
        raise InputError(f"dtype {dtype!r}: expected float32 or float64")
    aligner = _aligner(map_or_path)
    target = Path(output)
    ex, n, blocks = _prepare(aligner, X, side, device, block_rows)
    shape = (n, int(aligner.dim_common_))
    if target.suffix.lower() not in STREAMED:
        from ..analyze.prep import require_in_memory

        out_rows = Embeddings(np.empty((0, shape[1])), str(target))  # only its width counts
        require_in_memory([out_rows], Backend.make("cpu", dtype), f"{target}: writing {target.suffix} (one pickled tensor)",
                          rows=n, hint=f"write .npy, .safetensors or .parquet instead (streamed): {target.with_suffix('.npy')}")
    with embedding_writer(target, shape, _OUT_DTYPES[dtype]) as writer, \
            progress(total=n, desc=f"apply {aligner.method}", unit="row") as bar:
        for _, block in _checked(ex, blocks, aligner.method):
            writer.write(block)
            bar.update(len(block))
    return ApplyResult(method=aligner.method, side=side, rows=n, dim_out=shape[1], output=str(target), dtype=dtype)


__all__ = ["apply_map", "mapped_blocks", "ApplyResult"]
