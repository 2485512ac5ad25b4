"""Reading per-row strings (captions, labels) that go beside an embedding set.

A text input is one of

- ``rows.txt``: one line per row (a trailing newline does not add a row);
- ``table.csv::COLUMN`` / ``table.tsv::COLUMN`` (first line = header) or
  ``table.parquet::COLUMN``; a table with a single column needs no ``::COLUMN``;
- ``rows.json``: a JSON list of strings (numbers and booleans are turned into text);
- or, from Python, a sequence of values (list, tuple, 1-D numpy array).

The row count must match the set the strings describe; every error names the argument
(``text_a``, ``labels`` …) so the CLI can show its flag, and the file.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from .formats import SELECTOR, first_line

TEXT_FORMATS = (".txt", ".csv", ".tsv", ".parquet", ".json")


def read_texts(source: Any, *, n_rows: int | Sequence[int] | None = None, arg: str = "texts",
               what: str = "the set") -> list[str]:
    """Strings for the rows of a set, from a file spec or a sequence.

    Parameters
    ----------
    source : ``PATH``, ``PATH::COLUMN`` or a sequence of values (see the module docstring).
    n_rows : the row count the strings must have (or a tuple of accepted counts); ``None``
        accepts any count.
    arg : the Python argument name, first word of every error message.
    what : what the rows describe, for the count error ("A (500 rows)").

    Raises
    ------
    InputError
        Missing or unreadable file, unknown format, unknown or missing column, a JSON value
        that is not a list, or a row count that does not match ``n_rows``.
    """
    if isinstance(source, (str, os.PathLike)):
        spec = os.fspath(source)
        values = _read_file(spec, arg)
        shown = spec
    else:
        if isinstance(source, np.ndarray) and source.ndim != 1:
            raise InputError(f"{arg}: expected one value per row (1-D), got an array of shape {source.shape}")
        values = ["" if v is None else str(v) for v in source]
        shown = "the given list"
    if n_rows is not None:
        allowed = (n_rows,) if isinstance(n_rows, int) else tuple(n_rows)
        if len(values) not in allowed:
            want = " or ".join(str(x) for x in allowed)
            raise InputError(f"{arg} {shown}: {len(values)} rows, but {what} has {want}; "
                             f"give one line (or value) per row, in row order")
    return values


def _read_file(spec: str, arg: str) -> list[str]:
    path_str, *keys = spec.split(SELECTOR)
    if any(ord(ch) < 32 for ch in spec):
        raise InputError(f"{arg} {spec!r}: control characters in a file name; rename the file")
    if len(keys) > 1:
        raise InputError(f"{arg} {spec}: at most one ::COLUMN selector")
    column = keys[0] if keys else None
    path = Path(path_str)
    if not path.is_file():
        raise InputError(f"{arg} {path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in TEXT_FORMATS:
        raise InputError(f"{arg} {path}: unknown text format {suffix or '(no extension)'!r}; "
                         f"expected one of {', '.join(TEXT_FORMATS)}")
    if column is not None and suffix in (".txt", ".json"):
        raise InputError(f"{arg} {spec}: a {suffix} file has no columns; drop ::{column}")
    try:
        if suffix == ".txt":
            return path.read_text(encoding="utf-8").splitlines()
        if suffix == ".json":
            return _json_list(path, arg)
        if suffix == ".parquet":
            return _parquet_column(path, column, arg)
        return _delimited_column(path, column, arg, "\t" if suffix == ".tsv" else ",")
    except InputError:
        raise
    except UnicodeDecodeError as exc:
        raise InputError(f"{arg} {path}: not UTF-8 text (byte {exc.start}); re-save it as UTF-8") from exc
    except Exception as exc:  # a corrupt file surfaces as many exception types
        raise InputError(f"{arg} {path}: cannot read ({type(exc).__name__}: {first_line(exc)})") from exc


def _pick_column(columns: list[str], column: str | None, path: Path, arg: str) -> str:
    if column is None:
        if len(columns) == 1:
            return columns[0]
        raise InputError(f"{arg} {path}: {len(columns)} columns; pick one with {path}::COLUMN "
                         f"(columns: {', '.join(columns[:20])})")
    if column not in columns:
        raise InputError(f"{arg} {path}::{column}: no such column (columns: {', '.join(columns[:20])})")
    return column


def _delimited_column(path: Path, column: str | None, arg: str, delimiter: str) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{arg} {path}: empty file (expected a header line, then one line per row)")
        j = header.index(_pick_column(header, column, path, arg))
        out = []
        for line_no, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise InputError(f"{arg} {path}: line {line_no} has {len(row)} fields, the header has {len(header)}")
            out.append(row[j])
    return out


def _parquet_column(path: Path, column: str | None, arg: str) -> list[str]:
    import pyarrow.parquet as pq

    name = _pick_column(list(pq.read_schema(path).names), column, path, arg)
    values = pq.read_table(path, columns=[name]).column(name).to_pylist()
    return ["" if v is None else str(v) for v in values]


def _json_list(path: Path, arg: str) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{arg} {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(data, list):
        raise InputError(f"{arg} {path}: expected a JSON list with one value per row, got {type(data).__name__}")
    bad = next((i for i, v in enumerate(data) if isinstance(v, (dict, list))), None)
    if bad is not None:
        raise InputError(f"{arg} {path}: item {bad} is a {type(data[bad]).__name__}; expected a string or number")
    return ["" if v is None else str(v) for v in data]


__all__ = ["read_texts", "TEXT_FORMATS"]
