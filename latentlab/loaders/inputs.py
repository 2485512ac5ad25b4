"""Reading the items to embed: lines of a text file, a column of a table, or images.

INPUT is one of
- a text file, one item per line (texts, or image paths with ``modality="image"``; relative
  paths are relative to the list file's folder);
- a ``.jsonl`` / ``.csv`` / ``.tsv`` / ``.parquet`` table with ``column`` naming the field;
- a folder of images (searched recursively, sorted by relative path);
- in Python, a list of strings (texts or image paths) or of PIL images.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io.formats import first_line

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
TABLE_SUFFIXES = (".jsonl", ".csv", ".tsv", ".parquet")
MODALITIES = ("auto", "text", "image")


@dataclass(frozen=True)
class InputSet:
    """The items in input order, their modality, and a hash that identifies the input."""

    items: list
    modality: str
    source: str
    sha256: str
    hash_of: str
    column: str | None = None
    total: int = 0  # items before --limit


def read_inputs(source, *, modality: str = "auto", column: str | None = None,
                limit: int | None = None) -> InputSet:
    """Read ``source`` into an :class:`InputSet`; ``auto`` modality means image for folders."""
    if modality not in MODALITIES:
        raise InputError(f"modality {modality}: expected one of {', '.join(MODALITIES)}")
    if limit is not None and limit < 1:
        raise InputError(f"limit {limit}: must be at least 1")
    if isinstance(source, (list, tuple)):
        items, mod, name, digest, hash_of = _from_list(list(source), modality)
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(f"{path}: no such file or directory")
        try:
            items, mod, digest, hash_of = _read_path(path, modality, column)
        except OSError as exc:  # EACCES, EIO, a folder listing that fails half-way: the user's file, not a bug
            where = exc.filename if isinstance(exc.filename, str) and exc.filename != str(path) else None
            raise InputError(f"{path}: cannot read{f' {where}' if where else ''} "
                             f"({exc.strerror or first_line(exc)}); check that it is readable") from None
        name = str(path)
    if not items:
        raise InputError(f"{name}: no items to embed (empty input)")
    total = len(items)
    if limit is not None:
        items = items[:limit]
    return InputSet(items, mod, name, digest, hash_of, column, total)


def _read_path(path: Path, modality: str, column: str | None) -> tuple[list, str, str, str]:
    """Items, modality, digest and what the digest is of, for a file or an image folder."""
    if path.is_dir():
        if modality == "text":
            raise InputError(f"{path}: a folder is read as images; text comes from a file")
        items = _image_folder(path)
        return items, "image", _listing_sha256(path, items), "listing (relative names and sizes)"
    mod = "text" if modality == "auto" else modality
    items = _read_file(path, column)
    if mod == "image":
        items = [str((path.parent / p).resolve()) if not os.path.isabs(p) else p for p in items]
    return items, mod, file_sha256(path), "file"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_image(item):
    """An RGB PIL image from a path or an image object; raises on undecodable files."""
    from PIL import Image

    if isinstance(item, Image.Image):
        return item.convert("RGB")
    with Image.open(item) as img:
        img.load()  # decode now, so a truncated file fails here rather than in the model
        return img.convert("RGB")


# --------------------------------------------------------------------------- sources
def _from_list(items: list, modality: str):
    if any(not isinstance(x, str) for x in items):
        if modality == "text":
            raise InputError("text inputs must be strings")
        digest = hashlib.sha256(repr([type(x).__name__ for x in items]).encode()).hexdigest()
        return items, "image", "list", digest, "item types (in-memory images)"
    mod = "text" if modality == "auto" else modality
    digest = hashlib.sha256("\n".join(items).encode("utf-8")).hexdigest()
    return items, mod, "list", digest, "items joined by newlines"


def _read_file(path: Path, column: str | None) -> list[str]:
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return _read_table(path, suffix, column)
    if column is not None:
        raise InputError(f"column {column}: {path} is a plain text file (one item per line); "
                         f"column applies to {', '.join(TABLE_SUFFIXES)}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                         f"images go in a folder or a list of paths") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        return []
    return lines


def _pick_column(path: Path, columns: list[str], column: str | None) -> str:
    if column is None:
        if len(columns) == 1:
            return columns[0]
        raise InputError(f"{path}: pick the column to embed with `column`; columns: {', '.join(columns) or '(none)'}")
    if column not in columns:
        raise InputError(f"{path}: no column {column!r}; columns: {', '.join(columns) or '(none)'}")
    return column


def _read_table(path: Path, suffix: str, column: str | None) -> list[str]:
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except Exception as exc:
            raise InputError(f"{path}: cannot read parquet ({type(exc).__name__}: {exc})") from exc
        col = _pick_column(path, names, column)
        values = pq.read_table(path, columns=[col]).column(col).to_pylist()
    elif suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    raise InputError(f"{path}: line {number} is not JSON ({exc})") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}: line {number} is not a JSON object")
                rows.append(row)
        if not rows:
            return []
        col = _pick_column(path, list(rows[0]), column)
        values = [r.get(col) for r in rows]
    else:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            col = _pick_column(path, list(reader.fieldnames or []), column)
            values = [r.get(col) for r in reader]
    for row, value in enumerate(values):
        if value is None:
            raise InputError(f"{path}: row {row} has no value in column {col!r}")
        if not isinstance(value, str):
            raise InputError(f"{path}: column {col!r} holds {type(value).__name__} values, not text (row {row})")
    return values


def _image_folder(path: Path) -> list[str]:
    files = sorted((p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise InputError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return [str(p) for p in files]


def _listing_sha256(root: Path, items: list[str]) -> str:
    """Hash of (relative name, size) per image: identifies the folder without reading every file twice."""
    digest = hashlib.sha256()
    for item in items:
        p = Path(item)
        digest.update(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\n".encode())
    return digest.hexdigest()
