"""Embedding dumps as they come: numbered shard folders, LAION-style dump roots, parquet shards.

* A folder of numbered shards (``img_emb_0.npy, img_emb_1.npy, …`` or ``part-0.parquet …``)
  is read in the order of the shard numbers (``img_emb_10`` after ``img_emb_9``), and the
  numbers must run without a gap from 0 (or 1): a missing shard is an error naming it.
* A LAION-style dump root — the layout written by clip-retrieval's ``clip_inference``
  (``img_emb/img_emb_N.npy``, ``text_emb/text_emb_N.npy``, ``metadata/metadata_N.parquet``;
  Beaumont, "clip-retrieval", 2021; Schuhmann et al., "LAION-5B", NeurIPS 2022 Datasets
  and Benchmarks) — offers its embedding folders as keys: ``DUMP::img_emb``. Beside an
  embedding folder, ``metadata/metadata_N.parquet`` must hold as many rows as shard N; the
  counts come from the parquet footers, no data is read.
* A folder of parquet shards offers its list (or fixed-size-list) columns as keys
  (``FOLDER::COLUMN``; a single one is picked automatically). Shards are read row group by
  row group, so a pass over the folder holds one row group at a time.

Everything here only opens files and checks their headers/footers; rows are read on demand
through :class:`~latentlab.io.rowsource.ShardRows`.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from .rowsource import ShardRows, first_line, open_npy

#: ``<stem><number>`` — the number is the trailing run of digits of the file's stem.
_NUMBERED = re.compile(r"^(?P<stem>.*?)(?P<num>\d+)$")
_SHARD_SUFFIXES = (".npy", ".parquet")
METADATA = "metadata"


def read_dump(path: Path):
    """The rows of a dump folder, or ``None`` when ``path`` is none of the layouts above
    (the caller then applies the plain shard-folder rules).

    Returns a :class:`ShardRows`, or a key mapping (``_Mapping`` of :mod:`.formats`) for a
    dump root with several embedding folders or a parquet folder with several list columns.
    """
    try:
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except OSError:
        return None  # the plain rules report unreadable folders
    folders = [p for p in entries if p.is_dir()]
    if folders:
        return _dump_root(path, folders)
    files = [p for p in entries if p.suffix.lower() in _SHARD_SUFFIXES]
    npy = [p for p in files if p.suffix.lower() == ".npy"]
    shards = npy or files
    if not shards or _is_layer_files(shards):
        return None
    numbered = _numbered(shards)
    if numbered is None:
        if npy:
            return None  # unnumbered .npy shards: the plain rules (name order)
        ordered = shards
    else:
        ordered = _check_sequence(path, numbered)
    if npy:
        return _npy_rows(ordered, metadata=_metadata_beside(path))
    return _parquet_folder(path, ordered)


# --------------------------------------------------------------------------- layouts
def _dump_root(path: Path, folders: list[Path]):
    """A LAION-style root: ``*_emb`` folders (keys) and an optional ``metadata`` folder."""
    from .formats import _Mapping

    emb = [p for p in folders if p.name != METADATA]
    if not emb or not all(p.name.endswith("_emb") for p in emb):
        return None  # not a dump root: the plain rules name the stray folder
    meta = path / METADATA if (path / METADATA).is_dir() else None

    def get(key: str):
        return _embedding_folder(path / key, meta)

    return _Mapping([p.name for p in emb], get)


def _embedding_folder(folder: Path, metadata: Path | None) -> ShardRows:
    shards = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".npy" and not p.name.startswith("."))
    if not shards:
        raise InputError(f"{folder}: no .npy shards in this embedding folder")
    numbered = _numbered(shards)
    if numbered is None:
        raise InputError(f"{folder}: shard names must end in their shard number (e.g. {folder.name}_0.npy), "
                         f"found {shards[0].name}")
    return _npy_rows(_check_sequence(folder, numbered), metadata=metadata)


def _metadata_beside(folder: Path) -> Path | None:
    meta = folder.parent / METADATA
    if folder.name.endswith("_emb") and meta.is_dir() and meta != folder:
        return meta
    return None


def _is_layer_files(shards: list[Path]) -> bool:
    from .formats import read_sidecar

    return any("file_layer" in read_sidecar(p) for p in shards)  # `latentlab embed --layers` output


# --------------------------------------------------------------------------- numbering
def _numbered(shards: list[Path]) -> list[tuple[int, Path]] | None:
    """``[(number, path)]`` sorted by number, when every shard is ``<common stem><number>``."""
    found = [_NUMBERED.match(p.stem) for p in shards]
    if not all(found) or len({m["stem"] for m in found}) != 1 or len({p.suffix.lower() for p in shards}) != 1:
        return None
    return sorted((int(m["num"]), p) for m, p in zip(found, shards))


def _check_sequence(folder: Path, numbered: list[tuple[int, Path]]) -> list[Path]:
    """The shards in number order; a gap (or a repeated number) is an error naming the shard."""
    nums = [n for n, _ in numbered]
    first = 0 if nums[0] == 0 else 1
    seen = set()
    for n, p in numbered:
        if n in seen:
            raise InputError(f"{p}: shard number {n} appears twice in {folder}; remove one of them")
        seen.add(n)
    for expected in range(first, nums[-1] + 1):
        if expected not in seen:
            raise InputError(f"{folder / _shard_name(numbered, expected)}: missing shard {expected} "
                             f"(the folder has shards {nums[0]}…{nums[-1]}); restore it or re-export the dump")
    return [p for _, p in numbered]


def _shard_name(numbered: list[tuple[int, Path]], number: int) -> str:
    _, sample = numbered[0]
    m = _NUMBERED.match(sample.stem)
    width = len(m["num"]) if m["num"].startswith("0") and len(m["num"]) > 1 else 1
    return f"{m['stem']}{number:0{width}d}{sample.suffix}"


# --------------------------------------------------------------------------- .npy shards
def _npy_rows(shards: list[Path], *, metadata: Path | None) -> ShardRows:
    parts = [open_npy(p) for p in shards]  # checks each header against its file size (truncation)
    check_parts(shards, parts)
    if metadata is not None:
        _check_metadata(shards, parts, metadata)
    return ShardRows(parts)


def check_parts(shards: list[Path], parts: list) -> None:
    """Every shard 2-D, of one width and one dtype; errors name the offending shard."""
    for shard, part in zip(shards, parts):
        if len(part.shape) != 2:
            raise InputError(f"{shard}: shards must be 2-D, got shape {tuple(part.shape)}")
    first = parts[0]
    for shard, part in zip(shards, parts):
        if part.shape[1] != first.shape[1]:
            raise InputError(f"{shard}: {part.shape[1]} columns, but {shards[0].name} has {first.shape[1]}; "
                             f"shards must share one width")
        if np.dtype(part.dtype) != np.dtype(first.dtype):
            raise InputError(f"{shard}: dtype {np.dtype(part.dtype)}, but {shards[0].name} has "
                             f"{np.dtype(first.dtype)}; shards must share one dtype")


def _check_metadata(shards: list[Path], parts: list, metadata: Path) -> None:
    """``metadata/metadata_N.parquet`` beside shard N holds as many rows (from the footer), and
    no metadata shard lacks its embedding shard (how a lost *last* shard shows)."""
    import pyarrow.parquet as pq

    have = {int(_NUMBERED.match(p.stem)["num"]) for p in shards}
    for meta in sorted(metadata.glob(f"{METADATA}_*.parquet")):
        found = _NUMBERED.match(meta.stem)
        if found and int(found["num"]) not in have:
            numbered = [(int(_NUMBERED.match(p.stem)["num"]), p) for p in shards]
            missing = shards[0].parent / _shard_name(numbered, int(found["num"]))
            raise InputError(f"{missing}: missing shard {int(found['num'])} ({meta} has no embedding shard); "
                             f"restore it or re-export the dump")
    for shard, part in zip(shards, parts):
        number = _NUMBERED.match(shard.stem)["num"]
        meta = metadata / f"{METADATA}_{number}.parquet"
        if not meta.is_file():
            raise InputError(f"{meta}: missing; the embedding shard {shard} has no metadata shard beside it")
        try:
            rows = pq.ParquetFile(meta).metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - a corrupt footer surfaces as several arrow errors
            raise InputError(f"{meta}: not a readable parquet file ({first_line(exc)}); re-export the dump") from None
        if rows != part.shape[0]:
            raise InputError(f"{meta}: {rows} rows, but its embedding shard {shard} has {part.shape[0]}; "
                             f"the dump is inconsistent (re-export it or drop the shard)")


# --------------------------------------------------------------------------- parquet shards
def _parquet_folder(folder: Path, shards: list[Path]):
    from .formats import _Mapping

    columns = _list_columns(shards[0])
    if not columns:
        raise InputError(f"{shards[0]}: no list (embedding) column in this parquet shard")

    def get(column: str) -> ShardRows:
        parts = [ParquetRows(p, column) for p in shards]
        check_parts(shards, parts)
        return ShardRows(parts)

    return _Mapping(columns, get)


def _list_columns(path: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: not a readable parquet file ({first_line(exc)}); re-save or re-download it") from None
    return [f.name for f in schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)
            or pa.types.is_fixed_size_list(f.type)]


class ParquetRows:
    """One list column of a parquet shard as lazy rows, read one row group at a time.

    Shape comes from the footer: rows from the row-group counts, width from the number of
    leaf values (every list must hold the same number; checked again on reading).
    Picklable (path and column only), so Dask workers read the shard themselves.
    """

    lazy_rows = True  # ShardRows indexes it directly rather than loading it whole
    ndim = 2

    def __init__(self, path: Path, column: str):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path, self.column = Path(path), column
        try:
            handle = pq.ParquetFile(self.path)
        except Exception as exc:  # noqa: BLE001 - truncated files fail in the footer
            raise InputError(f"{self.path}: truncated or corrupt parquet shard ({first_line(exc)}); "
                             f"re-save or re-download it") from None
        schema = handle.schema_arrow
        if column not in schema.names:
            raise InputError(f"{self.path}: no column {column!r}; columns: {', '.join(schema.names)}")
        field = schema.field(column)
        if not (pa.types.is_list(field.type) or pa.types.is_large_list(field.type)
                or pa.types.is_fixed_size_list(field.type)):
            raise InputError(f"{self.path}::{column}: not a list column ({field.type})")
        md = handle.metadata
        self.group_rows = [md.row_group(g).num_rows for g in range(md.num_row_groups)]
        self.group_bounds = np.cumsum([0] + self.group_rows)
        n = int(self.group_bounds[-1])
        leaf = _leaf_index(handle, column)
        values = sum(md.row_group(g).column(leaf).num_values for g in range(md.num_row_groups))
        if pa.types.is_fixed_size_list(field.type):
            d = field.type.list_size
        elif n and values % n:
            raise InputError(f"{self.path}::{column}: {values} values in {n} rows; every row must have "
                             f"the same length")
        else:
            d = values // n if n else 0
        self.shape = (n, int(d))
        self.dtype = np.dtype(field.type.value_type.to_pandas_dtype())
        self._cache: tuple[int, np.ndarray] | None = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_cache"} | {"_cache": None}

    def __len__(self) -> int:
        return self.shape[0]

    def _group(self, g: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == g:
            return self._cache[1]
        import pyarrow.parquet as pq

        try:
            col = pq.ParquetFile(self.path).read_row_group(g, columns=[self.column]).column(self.column)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{self.path}: cannot read row group {g} ({first_line(exc)}); "
                             f"the shard is truncated or corrupt") from None
        block = list_matrix(col.combine_chunks(), self.shape[1], f"{self.path}::{self.column}",
                            int(self.group_bounds[g]))
        self._cache = (g, block)
        return block

    def _rows(self, start: int, stop: int) -> np.ndarray:
        pieces = []
        first = int(np.searchsorted(self.group_bounds, start, side="right")) - 1
        for g in range(max(first, 0), len(self.group_rows)):
            lo, hi = int(self.group_bounds[g]), int(self.group_bounds[g + 1])
            if lo >= stop:
                break
            a, b = max(start, lo), min(stop, hi)
            if a < b:
                pieces.append(self._group(g)[a - lo : b - lo])
        if not pieces:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        return np.concatenate(pieces) if len(pieces) > 1 else pieces[0].copy()

    def __getitem__(self, index):
        n = self.shape[0]
        if isinstance(index, (int, np.integer)):
            i = int(index) % max(n, 1)
            return self._rows(i, i + 1)[0]
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            rows = self._rows(start, max(start, stop)) if step > 0 else self._rows(0, n)[index]
            return rows[::step] if step > 1 else rows
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).reshape(-1) % max(n, 1)
        out = np.empty((idx.size, self.shape[1]), dtype=self.dtype)
        groups = np.searchsorted(self.group_bounds, idx, side="right") - 1
        for g in np.unique(groups):  # one row group decoded at a time
            sel = np.flatnonzero(groups == g)
            out[sel] = self._group(int(g))[idx[sel] - int(self.group_bounds[g])]
        return out

    def __array__(self, dtype=None, copy=None):
        arr = self._rows(0, self.shape[0])
        return arr if dtype is None else arr.astype(dtype, copy=False)


def _leaf_index(handle, column: str) -> int:
    """The index of a list column's leaf values among the parquet schema's leaf columns."""
    for i in range(len(handle.schema)):
        if handle.schema.column(i).path.split(".")[0] == column:
            return i
    raise InputError(f"{handle}: no leaf column for {column!r}")


def list_matrix(col, width: int, name: str, first_row: int = 0) -> np.ndarray:
    """An arrow list array of equal-length rows as an (n, width) array; bad rows are named."""
    import pyarrow.compute as pc

    if col.null_count:
        row = first_row + int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(f"{name}: row {row} is null")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths != width)
    if bad.size:
        raise InputError(f"{name}: row {first_row + int(bad[0])} has {int(lengths[bad[0]])} values, "
                         f"the shard's rows have {width}")
    flat = col.flatten()
    if flat.null_count:
        raise InputError(f"{name}: null values inside the lists")
    return flat.to_numpy(zero_copy_only=False).reshape(len(col), width)
