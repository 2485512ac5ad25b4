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


def write_embeddings(path: str | os.PathLike, array: Any, *, key: str = "embeddings", metadata: dict | None = None) -> Path:
    """Write a 2-D array atomically in the format named by ``path``'s extension.

    ``key`` names the array in keyed formats (npz, pt dict, safetensors, parquet column);
    ``metadata`` (str → str) goes into the safetensors header.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if type(array).__module__.startswith("torch"):
        array = torch_to_numpy(array)
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

