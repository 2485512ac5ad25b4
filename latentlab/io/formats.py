"""The file formats latentlab reads, and the ``PATH::KEY`` selectors into them."""
from __future__ import annotations

import json
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .rowsource import ShardRows, npy_nbytes, open_npy, read_npy_header

SELECTOR = "::"
FORMATS = (".npy", ".npz", ".pt", ".pth", ".safetensors", ".parquet", ".csv", ".tsv")


def display_name(spec: str) -> str:
    """How a user-given path with selectors is shown: base name plus selectors."""
    return _display_name(spec)


def _display_name(spec: str) -> str:
    path, *keys = spec.split(SELECTOR)
    return SELECTOR.join([Path(path).name or path, *keys])


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else "unknown error"


def read_sidecar(path: Path) -> dict:
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


def apply_selectors(data: Any, keys: list[str], spec: str, path: Path) -> Any:
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
        return apply_selectors(data.get(data.keys[0]), [], spec, path)
    if len(data.shape) == 3:
        raise InputError(
            f"{spec}: a 3-D array of shape {tuple(data.shape)}; pick a slice with "
            f"{_display_name(spec)}::0 … ::{data.shape[0] - 1}"
        )
    return data


def _read_npy(path: Path):
    return open_npy(path)


#: Deflate expands at most ~1032:1; a member claiming more than this is corrupt (or a zip bomb).
_MAX_DEFLATE_RATIO = 1100


def _read_npz(path: Path) -> _Mapping:
    """The ``.npy`` members of an ``.npz`` archive, each header checked before its data is read."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InputError(f"{path}: not a valid .npz file (not a zip archive, or truncated); "
                         f"re-save it with numpy.savez") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or first_line(exc)}); "
                         f"check the file's permissions") from None
    members = {}
    for info in archive.infolist():
        if not info.is_dir():
            members[info.filename[:-4] if info.filename.endswith(".npy") else info.filename] = info
    return _Mapping(list(members), lambda k: _read_npz_member(path, archive, members[k], k))


def _read_npz_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    name = f"{path}::{key}"
    if not info.filename.endswith(".npy"):
        raise InputError(f"{name}: member {info.filename!r} is not a .npy array; re-save the file with numpy.savez")
    archive_size = path.stat().st_size
    plausible = (info.compress_size <= archive_size and (
        info.file_size == info.compress_size if info.compress_type == zipfile.ZIP_STORED
        else info.file_size <= max(info.compress_size, 1) * _MAX_DEFLATE_RATIO))
    if not plausible:
        raise InputError(f"{name}: corrupt .npz member (claims {info.file_size} bytes in a "
                         f"{archive_size}-byte file); re-save the file")
    try:
        with archive.open(info) as fh:
            shape, _fortran, dtype, offset = read_npy_header(fh, name)
            if offset + npy_nbytes(shape, dtype) > info.file_size:
                raise InputError(f"{name}: truncated or corrupt .npz member (header promises shape {shape}, "
                                 f"{offset + npy_nbytes(shape, dtype)} bytes, the member holds {info.file_size}); "
                                 f"re-save the file")
        with archive.open(info) as fh:
            arr = np.lib.format.read_array(fh, allow_pickle=False)
            fh.read()  # reach the end of the member so that its CRC is checked
    except InputError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise InputError(f"{name}: corrupt .npz member ({first_line(exc)}); re-save or re-download the file") from None
    return arr


def torch_to_numpy(t) -> np.ndarray:
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def _read_pt(path: Path):
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # weights_only=True never unpickles objects
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise InputError(
            f"{path}: cannot load safely with weights_only=True ({type(exc).__name__}: "
            f"{first_line(exc)}); only tensors and dicts/lists of tensors are read, never pickled objects"
        ) from exc
    return _wrap_torch(obj, path)


def _wrap_torch(obj, path: Path):
    import torch

    if isinstance(obj, torch.Tensor):
        return torch_to_numpy(obj)
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
    return _Mapping(list(handle.keys()), lambda k: torch_to_numpy(handle.get_tensor(k)))


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
        raise InputError(f"{path}: non-numeric or ragged data ({first_line(exc)})") from exc
    return arr


def _is_numeric_row(line: str, delimiter: str) -> bool:
    fields = [f.strip() for f in line.strip().split(delimiter)]
    try:
        [float(f) for f in fields if f]
    except ValueError:
        return False
    return True


def read_shard_folder(path: Path) -> ShardRows:
    from .dumps import check_parts, read_dump  # numbered shards, LAION-style dump roots, parquet shard folders

    dump = read_dump(path)
    if dump is not None:
        return dump
    try:
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the folder ({exc.strerror or first_line(exc)}); "
                         f"check its permissions") from None
    folders = [p for p in entries if p.is_dir()]
    if folders:
        raise InputError(f"{folders[0]}: a folder inside the shard folder {path}; a shard folder holds only "
                         f".npy or .parquet files — move it out")
    shards = [p for p in entries if p.suffix.lower() == ".npy"]
    kind = "npy"
    if not shards:
        shards = [p for p in entries if p.suffix.lower() == ".parquet"]
        kind = "parquet"
    if not shards:
        raise InputError(f"{path}: folder holds no .npy or .parquet shards")
    if any("file_layer" in read_sidecar(p) for p in shards):  # `latentlab embed --layers` output
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
        parts.append(part)
    check_parts(shards, parts)
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


READERS = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".pt": _read_pt,
    ".pth": _read_pt,
    ".safetensors": _read_safetensors,
    ".parquet": _read_parquet,
    ".csv": _read_text,
    ".tsv": _read_text,
}

