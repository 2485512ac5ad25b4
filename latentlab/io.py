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

import contextlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import InputError
from .rowsource import NpyRows, ShardRows, open_npy

SELECTOR = "::"
FORMATS = (".npy", ".npz", ".pt", ".pth", ".safetensors", ".parquet", ".csv", ".tsv")


@dataclass(frozen=True, eq=False)
class Embeddings:
    """A validated 2-D embedding matrix and the name it was read under.

    ``data`` is a numpy array or a lazy row source (:class:`~latentlab.rowsource.NpyRows`,
    :class:`~latentlab.rowsource.ShardRows`); index it by rows (``emb.rows(slice)``) or
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


# --------------------------------------------------------------------------- reading
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
    path = Path(path_str)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if path.is_dir():
        data = _read_shard_folder(path)
    else:
        suffix = path.suffix.lower()
        reader = _READERS.get(suffix)
        if reader is None:
            raise InputError(
                f"{path}: unknown format {suffix or '(no extension)'!r}; "
                f"expected one of {', '.join(FORMATS)} or a folder of shards"
            )
        try:
            data = reader(path)
        except InputError:
            raise
        except Exception as exc:  # a corrupt file surfaces as many exception types
            raise InputError(f"{path}: cannot read ({type(exc).__name__}: {_first_line(exc)})") from exc
    data = _apply_selectors(data, keys, spec, path)
    emb = Embeddings(data=data, name=_display_name(spec), provenance=_read_sidecar(path))
    validate(emb, check_finite=check_finite)
    return emb


def as_embeddings(x: Any, name: str = "array", *, check_finite: bool = True) -> Embeddings:
    """Coerce a path, numpy array, torch tensor or :class:`Embeddings` into validated embeddings."""
    if isinstance(x, Embeddings):
        return x
    if isinstance(x, (str, os.PathLike)):
        return read_embeddings(x, check_finite=check_finite)
    if type(x).__module__.startswith("torch"):
        x = _torch_to_numpy(x)
    # numpy arrays and lazy row sources (shape, dtype, row indexing) are kept as they are
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


def read_indices(spec: str | os.PathLike, option: str = "--indices") -> np.ndarray:
    """Integer indices from ``.npy`` (1-D or 2-D, never unpickled) or a text/CSV file.

    Used for ground truth, anchor rows, labels and held-out rows; ``option`` names the
    command-line option in error messages. Range checks belong to the caller, who knows n.
    """
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"{option} {spec}: no such file")
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            arr = np.loadtxt(path, delimiter="," if path.suffix.lower() == ".csv" else None, ndmin=1)
    except (ValueError, OSError) as exc:
        raise InputError(f"{option} {spec}: cannot read indices ({_first_line(exc)})") from None
    return integer_indices(arr, f"{option} {spec}", allow_bool=True)


def integer_indices(values, what: str, *, allow_bool: bool = False) -> np.ndarray:
    """``values`` as int64 indices: integers, or floats that are whole numbers (CSV files)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError(f"{what}: indices must be whole numbers")
        return arr.astype(np.int64)
    if arr.dtype.kind == "b" and allow_bool:
        return arr
    if arr.dtype.kind not in "iu":
        raise InputError(f"{what}: indices must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


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


def display_name(spec: str) -> str:
    """How a user-given path with selectors is shown: base name plus selectors."""
    return _display_name(spec)


def _display_name(spec: str) -> str:
    path, *keys = spec.split(SELECTOR)
    return SELECTOR.join([Path(path).name or path, *keys])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "unknown error"


def _read_sidecar(path: Path) -> dict:
    """Provenance written by ``latentlab embed`` beside its output (``out.json``)."""
    for cand in (path.with_suffix(".json"), Path(str(path) + ".json")):
        if cand != path and cand.is_file():
            try:
                meta = json.loads(cand.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(meta, dict):
                return meta
    return {}


class _Mapping:
    """Named arrays inside one file, fetched lazily by key."""

    def __init__(self, keys: list[str], get):
        self.keys = keys
        self.get = get


def _apply_selectors(data: Any, keys: list[str], spec: str, path: Path) -> Any:
    for key in keys:
        if isinstance(data, _Mapping):
            if key not in data.keys:
                raise InputError(f"{spec}: no key {key!r}; available: {', '.join(data.keys) or '(none)'}")
            data = data.get(key)
        elif len(data.shape) == 3:
            try:
                index = int(key)
            except ValueError:
                raise InputError(f"{spec}: {key!r} is not an index into the first axis of a 3-D array") from None
            count = data.shape[0]
            if not -count <= index < count:
                raise InputError(f"{spec}: index {index} out of range for a first axis of length {count}")
            data = data[index % count]
        else:
            raise InputError(f"{spec}: selector {key!r} given, but the data is already {len(data.shape)}-D")
    if isinstance(data, _Mapping):
        if len(data.keys) != 1:
            raise InputError(
                f"{path}: holds {len(data.keys)} arrays; pick one with {path.name}::KEY, "
                f"keys: {', '.join(data.keys) or '(none)'}"
            )
        return _apply_selectors(data.get(data.keys[0]), [], spec, path)
    if len(data.shape) == 3:
        raise InputError(
            f"{spec}: a 3-D array of shape {tuple(data.shape)}; pick a slice with "
            f"{_display_name(spec)}::0 … ::{data.shape[0] - 1}"
        )
    return data


def _read_npy(path: Path):
    return open_npy(path)


def _read_npz(path: Path) -> _Mapping:
    archive = np.load(path, allow_pickle=False)
    return _Mapping(list(archive.files), lambda k: archive[k])


def _torch_to_numpy(t) -> np.ndarray:
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def _read_pt(path: Path):
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(
            f"{path}: cannot load safely with weights_only=True ({type(exc).__name__}: "
            f"{_first_line(exc)}); only tensors and dicts/lists of tensors are read, never pickled objects"
        ) from exc
    return _wrap_torch(obj, path)


def _wrap_torch(obj, path: Path):
    import torch

    if isinstance(obj, torch.Tensor):
        return _torch_to_numpy(obj)
    if isinstance(obj, dict):
        keys = [str(k) for k in obj]
        lookup = {str(k): v for k, v in obj.items()}
        return _Mapping(keys, lambda k: _wrap_torch(lookup[k], path))
    if isinstance(obj, (list, tuple)):
        return _Mapping([str(i) for i in range(len(obj))], lambda k: _wrap_torch(obj[int(k)], path))
    raise InputError(f"{path}: holds a {type(obj).__name__}, not a tensor or a dict of tensors")


def _read_safetensors(path: Path) -> _Mapping:
    from safetensors import safe_open

    handle = safe_open(str(path), framework="pt")
    return _Mapping(list(handle.keys()), lambda k: _torch_to_numpy(handle.get_tensor(k)))


def _list_columns(schema) -> list[str]:
    import pyarrow as pa

    return [
        f.name
        for f in schema
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type) or pa.types.is_fixed_size_list(f.type)
    ]


def read_parquet_matrix(path: Path, column: str) -> np.ndarray:
    """One list column of a parquet file as an (n, d) array; every list must have length d."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    col = pq.read_table(path, columns=[column]).column(column).combine_chunks()
    if col.null_count:
        raise InputError(f"{path}::{column}: {col.null_count} null rows")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        row = int(np.argmax(lengths != lengths[0]))
        raise InputError(f"{path}::{column}: row {row} has {lengths[row]} values, row 0 has {lengths[0]}")
    flat = col.flatten()
    if flat.null_count:
        raise InputError(f"{path}::{column}: null values inside the lists")
    values = flat.to_numpy(zero_copy_only=False)
    return values.reshape(len(col), int(lengths[0]) if len(lengths) else 0)


def _read_parquet(path: Path) -> _Mapping:
    import pyarrow.parquet as pq

    columns = _list_columns(pq.read_schema(path))
    return _Mapping(columns, lambda k: read_parquet_matrix(path, k))


def _read_text(path: Path) -> np.ndarray:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    skip = 0 if _is_numeric_row(first, delimiter) else 1
    try:
        arr = np.loadtxt(path, delimiter=delimiter, skiprows=skip, ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"{path}: non-numeric or ragged data ({_first_line(exc)})") from exc
    return arr


def _is_numeric_row(line: str, delimiter: str) -> bool:
    fields = [f.strip() for f in line.strip().split(delimiter)]
    try:
        [float(f) for f in fields if f]
    except ValueError:
        return False
    return True


def _read_shard_folder(path: Path) -> ShardRows:
    shards = sorted(p for p in path.iterdir() if p.suffix.lower() == ".npy")
    kind = "npy"
    if not shards:
        shards = sorted(p for p in path.iterdir() if p.suffix.lower() == ".parquet")
        kind = "parquet"
    if not shards:
        raise InputError(f"{path}: folder holds no .npy or .parquet shards")
    if any("file_layer" in _read_sidecar(p) for p in shards):  # `latentlab embed --layers` output
        names = ", ".join(p.name for p in shards[:4]) + (" …" if len(shards) > 4 else "")
        raise InputError(f"{path}: holds one file per layer ({names}), not row shards; pick one, "
                         f"e.g. {path / shards[-1].name}")
    parts = []
    for shard in shards:
        if kind == "npy":
            part = open_npy(shard)
        else:
            cols = _list_columns(__import__("pyarrow.parquet", fromlist=["x"]).read_schema(shard))
            if len(cols) != 1:
                raise InputError(f"{shard}: a parquet shard must have exactly one list column, found {cols}")
            part = _LazyParquet(shard, cols[0])
        if len(part.shape) != 2:
            raise InputError(f"{shard}: shards must be 2-D, got shape {tuple(part.shape)}")
        parts.append(part)
    dims = {p.shape[1] for p in parts}
    if len(dims) != 1:
        raise InputError(f"{path}: shards disagree on the dimension: {sorted(dims)}")
    return ShardRows(parts)


class _LazyParquet:
    """A parquet shard read on first access; its shape comes from metadata and one row group."""

    def __init__(self, path: Path, column: str):
        import pyarrow.parquet as pq

        handle = pq.ParquetFile(path)
        self.path, self.column = path, column
        self._data: np.ndarray | None = None
        n = handle.metadata.num_rows
        d = len(handle.read_row_group(0, columns=[column]).column(column)[0]) if n else 0
        self.shape = (n, d)
        self.dtype = np.dtype(handle.schema_arrow.field(column).type.value_type.to_pandas_dtype())

    def _load(self) -> np.ndarray:
        if self._data is None:
            self._data = read_parquet_matrix(self.path, self.column)
        return self._data

    def __getitem__(self, index):
        return self._load()[index]

    def __array__(self, dtype=None, copy=None):
        data = self._load()
        return data if dtype is None else data.astype(dtype)


_READERS = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".pt": _read_pt,
    ".pth": _read_pt,
    ".safetensors": _read_safetensors,
    ".parquet": _read_parquet,
    ".csv": _read_text,
    ".tsv": _read_text,
}


# --------------------------------------------------------------------------- writing
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
        array = _torch_to_numpy(array)
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


__all__ = [
    "Embeddings",
    "read_embeddings",
    "as_embeddings",
    "write_embeddings",
    "save_array",
    "read_indices",
    "integer_indices",
    "atomic_output",
    "validate",
    "require_rows",
    "require_paired",
    "require_same_dim",
    "NpyRows",
]
