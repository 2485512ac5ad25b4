"""The file formats latentlab reads, and the ``PATH::KEY`` selectors into them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..rowsource import ShardRows, open_npy

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


def _read_npz(path: Path) -> _Mapping:
    archive = np.load(path, allow_pickle=False)
    return _Mapping(list(archive.files), lambda k: archive[k])


def torch_to_numpy(t) -> np.ndarray:
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
    shards = sorted(p for p in path.iterdir() if p.suffix.lower() == ".npy")
    kind = "npy"
    if not shards:
        shards = sorted(p for p in path.iterdir() if p.suffix.lower() == ".parquet")
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

