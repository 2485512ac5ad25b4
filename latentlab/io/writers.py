"""Writing: every output goes to a temporary file beside the target and is renamed into place."""
from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError
from .formats import FORMATS, torch_to_numpy


#: Temporary names of :func:`atomic_output` — ``.{stem}.{8 hex}.tmp{suffix}`` — and its lock file.
_TMP = ".{stem}.{token}.tmp{suffix}"
_held: dict[str, tuple[int, int]] = {}  # lock path → (fd, depth): a process re-entering its own lock


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``.OUT.lock`` beside ``path`` while ``path`` is written.

    A second process asking for the same output is refused at once with
    ``OUT is being written by another latentlab process (pid N)``. The kernel drops the lock
    when its holder dies (even by SIGKILL), so a crash never leaves the output locked; the
    lock file is removed by the holder on exit (a stale one is harmless). Re-entrant within
    one process (``embed`` holds it for the whole run; its final write takes it again).
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    key = os.path.realpath(_lock_path(parent / target.name))
    if key in _held:
        fd, depth = _held[key]
        _held[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held[key]
            _held[key] = (fd, depth - 1)
        return
    import fcntl

    while True:
        try:
            fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"{target}: cannot write in {parent} ({exc.strerror}); choose a writable folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.lseek(fd, 0, os.SEEK_SET)
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise InputError(f"{target} is being written by another latentlab process (pid {pid}); "
                             f"wait for it to finish or choose another output") from None
        try:  # the holder before us may have unlinked the file we opened: lock the one on disk
            same = os.path.samestat(os.fstat(fd), os.stat(key))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _held[key] = (fd, 1)
    try:
        yield
    finally:
        del _held[key]
        try:
            os.unlink(key)  # while still holding it, so a waiter re-checks (samestat above)
        except OSError:
            pass
        os.close(fd)


def clean_stale_temps(target: Path) -> list[Path]:
    """Remove temporaries an interrupted write of ``target`` left (SIGKILL skips ``finally``).

    Only names :func:`atomic_output` makes for this very target are touched, and only while
    the caller holds :func:`output_lock` for it, so no live writer's file is removed.
    """
    pattern = re.compile(re.escape(f".{target.stem}.") + r"[0-9a-f]{8}" + re.escape(f".tmp{target.suffix}"))
    removed = []
    parent = target.parent if str(target.parent) else Path(".")
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    The one home of latentlab's temporary names (``.{stem}.{8 hex}.tmp{suffix}``; the suffix
    is kept so writers that append one, like ``np.save``, behave). The output's lock is held
    throughout, and temporaries a killed earlier run left for the same output are removed
    first.
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{target}: output folder {parent} does not exist")
    if target.is_dir():
        raise InputError(f"{target}: is a folder; give a file name")
    with output_lock(target):
        clean_stale_temps(target)
        tmp = parent / _TMP.format(stem=target.stem, token=secrets.token_hex(4), suffix=target.suffix)
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


#: Formats written block by block, the rows never all in memory (``.pt`` is one pickled tensor).
STREAMED = (".npy", ".npz", ".safetensors", ".parquet", ".csv", ".tsv")
#: numpy dtype → safetensors dtype tag (little-endian on disk, as the format says)
_SAFETENSORS = {"f2": "F16", "f4": "F32", "f8": "F64", "i1": "I8", "i2": "I16", "i4": "I32", "i8": "I64",
                "u1": "U8", "u2": "U16", "u4": "U32", "u8": "U64"}


def _npy_header(shape: tuple[int, int], dtype: np.dtype) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(dtype),
                                               "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def _raw(block: np.ndarray) -> memoryview:
    """The block's bytes as a flat view (a 2-D memoryview's len() is its row count, not its bytes)."""
    return memoryview(np.ascontiguousarray(block).reshape(-1).view(np.uint8))


def _open_sink(suffix: str, tmp: Path, shape: tuple[int, int], dtype: np.dtype, key: str, metadata,
               stack: contextlib.ExitStack):
    """``(write(block), finish())`` for one format; the header goes first, the shape being known up front."""
    n, d = shape
    if suffix == ".npy":
        fh = stack.enter_context(open(tmp, "wb"))
        fh.write(_npy_header(shape, dtype))
        return (lambda b: fh.write(_raw(b))), (lambda: None)
    if suffix == ".npz":  # what np.savez writes: a stored (uncompressed) zip of KEY.npy
        import zipfile

        zf = stack.enter_context(zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True))
        fh = stack.enter_context(zf.open(f"{key}.npy", "w", force_zip64=True))
        fh.write(_npy_header(shape, dtype))
        return (lambda b: fh.write(_raw(b))), (lambda: None)
    if suffix == ".safetensors":  # 8-byte little-endian header length, JSON header (space-padded to 8), data
        import json

        if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise InputError(f"{tmp.name}: safetensors metadata must map str to str")
        head = {key: {"dtype": _SAFETENSORS[f"{dtype.kind}{dtype.itemsize}"], "shape": [n, d],
                      "data_offsets": [0, n * d * dtype.itemsize]}}
        if metadata:
            head = {"__metadata__": dict(metadata), **head}
        text = json.dumps(head, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        fh = stack.enter_context(open(tmp, "wb"))
        fh.write(len(text).to_bytes(8, "little") + text)
        little = dtype.newbyteorder("<")
        return (lambda b: fh.write(_raw(b.astype(little, copy=False)))), (lambda: None)
    if suffix == ".parquet":  # one row group per block, a fixed-size list column
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([(key, pa.list_(pa.from_numpy_dtype(dtype), d))])
        pw = stack.enter_context(pq.ParquetWriter(tmp, schema))

        def write(b):
            column = pa.FixedSizeListArray.from_arrays(pa.array(b.reshape(-1)), d)
            pw.write_table(pa.table({key: column}, schema=schema))
        return write, (lambda: None)
    if suffix in (".csv", ".tsv"):
        fh = stack.enter_context(open(tmp, "w"))
        return (lambda b: np.savetxt(fh, b, delimiter="\t" if suffix == ".tsv" else ",", fmt="%.9g")), (lambda: None)
    if suffix in (".pt", ".pth"):  # torch.save pickles one whole tensor: the rows are gathered first
        import torch

        whole, at = np.empty(shape, dtype=dtype), [0]

        def gather(b):
            whole[at[0] : at[0] + len(b)] = b
            at[0] += len(b)
        return gather, (lambda: torch.save({key: torch.from_numpy(whole)}, tmp))
    raise InputError(f"{tmp.name}: unknown output format {suffix!r}; expected one of {', '.join(FORMATS)}")


class EmbeddingWriter:
    """Rows of an ``n × d`` matrix appended block by block (:func:`embedding_writer`)."""

    def __init__(self, target: Path, shape: tuple[int, int], dtype: np.dtype, write):
        self.target, self.shape, self.dtype, self._write, self.rows = target, shape, dtype, write, 0

    def write(self, block: Any) -> None:
        """Append ``block`` (k × d rows: numpy, or a tensor on any device), cast to the output dtype."""
        if type(block).__module__.startswith("torch"):
            block = torch_to_numpy(block)
        b = np.asarray(block)
        if b.ndim != 2 or b.shape[1] != self.shape[1]:
            raise InputError(f"{self.target}: a block of shape {b.shape} does not fit rows of width {self.shape[1]}")
        if self.rows + len(b) > self.shape[0]:
            raise InputError(f"{self.target}: more rows than the {self.shape[0]} announced")
        if len(b):
            self._write(np.ascontiguousarray(b, dtype=self.dtype))
        self.rows += len(b)


@contextlib.contextmanager
def embedding_writer(path: str | os.PathLike, shape: tuple[int, int], dtype: Any = np.float32, *,
                     key: str = "embeddings", metadata: dict | None = None) -> Iterator[EmbeddingWriter]:
    """Write an ``n × d`` matrix whose rows arrive in blocks, in the format named by ``path``'s extension.

    The shape is known up front, so every :data:`STREAMED` format writes its header first and
    each block as it comes: memory holds one block, whatever ``n`` (``.pt`` gathers the rows,
    its callers check they fit). Through :func:`atomic_output`: the rows go to a temporary file,
    renamed over ``path`` only when all ``n`` rows were written; an error (or fewer rows)
    removes the temporary and leaves no output.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"{target}: unknown output format {suffix!r}; expected one of {', '.join(FORMATS)}")
    n, d = (int(s) for s in shape)
    dt = np.dtype(dtype)
    if dt.kind not in "fiu" or (suffix == ".safetensors" and f"{dt.kind}{dt.itemsize}" not in _SAFETENSORS):
        raise InputError(f"{target}: can only write a numeric array, got dtype {dt}")
    with atomic_output(target) as tmp, contextlib.ExitStack() as stack:
        write, finish = _open_sink(suffix, tmp, (n, d), dt, key, metadata, stack)
        writer = EmbeddingWriter(target, (n, d), dt, write)
        yield writer
        if writer.rows != n:
            raise InputError(f"{target}: {writer.rows} of {n} rows were written; nothing was saved")
        finish()


def write_embeddings(path: str | os.PathLike, array: Any, *, key: str = "embeddings", metadata: dict | None = None) -> Path:
    """Write a 2-D array atomically in the format named by ``path``'s extension.

    ``key`` names the array in keyed formats (npz, pt dict, safetensors, parquet column);
    ``metadata`` (str → str) goes into the safetensors header.
    """
    target = Path(path)
    if type(array).__module__.startswith("torch"):
        array = torch_to_numpy(array)
    arr = np.ascontiguousarray(np.asarray(array))
    if arr.ndim != 2 or arr.dtype.kind not in "fiu":
        raise InputError(f"{target}: can only write a 2-D numeric array, got {arr.dtype} of shape {arr.shape}")
    with embedding_writer(target, arr.shape, arr.dtype, key=key, metadata=metadata) as writer:
        writer.write(arr)
    return target
