"""Sharded, resumable output of ``latentlab embed`` and its provenance sidecar.

A run writes shard ``k`` (input rows ``[k·S, (k+1)·S)``) to ``OUT.parts/shard-0000k.npz``
plus a ``.json`` marker written after it; a rerun with the same settings skips every shard
whose marker exists. When all shards are done they are streamed (one shard in memory at a
time) into the final layout and the parts folder is removed:

- ``OUT.npy`` (one output), ``OUT.safetensors`` (one tensor per output, provenance in the
  header), or any other suffix :func:`latentlab.io.write_embeddings` knows (one output);
- otherwise a folder ``OUT/`` with ``layer00.npy``, ``layer03.npy`` … (or ``embeddings.npy``)
  and a ``layerNN.json`` sidecar beside each, so a later command reading one layer file
  finds its provenance.

The sidecar ``OUT.json`` (``OUT`` minus its suffix) holds the provenance for the whole run.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import struct
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError, LatentlabWarning
from ..io import FORMATS, atomic_output, write_embeddings
from ..io.writers import output_lock

MANIFEST = "manifest.json"


def output_layout(out: Path, keys: list[str]) -> str:
    """``npy``, ``safetensors``, ``other`` (io formats, one output) or ``folder``; checked up front."""
    suffix = out.suffix.lower()
    if suffix == ".safetensors":
        return "safetensors"
    if suffix in FORMATS:
        if len(keys) != 1:
            raise InputError(f"{out}: {len(keys)} layers selected; write them to a folder (OUT without a "
                             f"suffix) or one .safetensors file")
        return "npy" if suffix == ".npy" else "other"
    if suffix and not out.is_dir():
        raise InputError(f"{out}: unknown output format {suffix!r}; use .npy, .safetensors, "
                         f"another of {', '.join(FORMATS)}, or a folder")
    return "folder"


def sidecar_path(out: Path) -> Path:
    """``out.npy`` → ``out.json``; a folder ``out`` → ``out.json`` (what io reads back)."""
    return out.with_suffix(".json") if out.suffix else Path(str(out) + ".json")


class MemorySink:
    """Keeps finished shards in memory (the Python API without an output path)."""

    def __init__(self):
        self.shards: dict[int, tuple[dict[str, np.ndarray], list]] = {}

    def done(self, index: int) -> bool:
        return index in self.shards

    def save(self, index: int, arrays: dict[str, np.ndarray], skipped: list) -> None:
        self.shards[index] = (arrays, skipped)

    def arrays(self, keys: list[str]) -> dict[str, np.ndarray]:
        order = sorted(self.shards)
        return {k: np.concatenate([a for i in order if (a := self.shards[i][0][k]).shape[0]]) for k in keys}

    def skipped(self) -> list:
        return [s for i in sorted(self.shards) for s in self.shards[i][1]]


class ShardStore:
    """Shards on disk under ``OUT.parts``; ``fingerprint`` decides whether old shards are reusable."""

    def __init__(self, out: Path, fingerprint: dict, keys: list[str]):
        self.out = Path(out)
        self.keys = keys
        self.layout = output_layout(self.out, keys)
        parent = self.out.parent if str(self.out.parent) else Path(".")
        if not parent.is_dir():
            raise InputError(f"{self.out}: output folder {parent} does not exist")
        self.parts = Path(str(self.out) + ".parts")
        # the whole run holds OUT's lock (released by the kernel if the run is killed): a second
        # embed on the same output is refused before it touches OUT.parts
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(output_lock(self.out))
        if self.parts.is_symlink() or (self.parts.exists() and not self.parts.is_dir()):
            self._lock.close()
            raise InputError(f"{self.parts}: exists and is not a folder latentlab made (a link or a file); "
                             f"remove it or choose another output")
        self.resumed = 0
        manifest = self.parts / MANIFEST
        fingerprint = json.loads(json.dumps(fingerprint))  # normalise tuples etc. for comparison
        if manifest.is_file():
            try:
                old = json.loads(manifest.read_text())
            except ValueError:
                old = None
            if old != fingerprint:
                warnings.warn(f"{self.parts}: left by a run with other settings; starting over", LatentlabWarning)
                shutil.rmtree(self.parts)
        self.parts.mkdir(exist_ok=True)
        if not manifest.is_file():
            with atomic_output(manifest) as tmp:
                tmp.write_text(json.dumps(fingerprint, indent=1))

    def _shard(self, index: int, suffix: str) -> Path:
        return self.parts / f"shard-{index:05d}{suffix}"

    def done(self, index: int) -> bool:
        finished = self._shard(index, ".json").is_file() and self._shard(index, ".npz").is_file()
        self.resumed += finished
        return finished

    def save(self, index: int, arrays: dict[str, np.ndarray], skipped: list) -> None:
        with atomic_output(self._shard(index, ".npz")) as tmp:
            np.savez(tmp, **arrays)
        # the marker comes last: a shard counts as finished only once both files exist
        with atomic_output(self._shard(index, ".json")) as tmp:
            tmp.write_text(json.dumps({"rows": int(next(iter(arrays.values())).shape[0]), "skipped": skipped}))

    def _indices(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.parts.glob("shard-*.json"))

    def skipped(self) -> list:
        out = []
        for i in self._indices():
            out += json.loads(self._shard(i, ".json").read_text())["skipped"]
        return out

    def shapes(self) -> dict[str, tuple[int, int]]:
        rows, dims = 0, {}
        for i in self._indices():
            with np.load(self._shard(i, ".npz")) as z:
                if z[self.keys[0]].shape[0]:  # a shard whose items all failed to decode is empty
                    dims.update({k: z[k].shape[1] for k in self.keys})
                    rows += z[self.keys[0]].shape[0]
        return {k: (rows, dims.get(k, 0)) for k in self.keys}

    def _blocks(self, key: str):
        for i in self._indices():
            with np.load(self._shard(i, ".npz")) as z:
                block = z[key]
            if block.shape[0]:
                yield np.ascontiguousarray(block, dtype="<f4")

    def finalize(self, provenance: dict) -> list[Path]:
        """Assemble the final outputs and sidecars, then remove the parts folder."""
        shapes = self.shapes()
        files: list[Path] = []
        if self.layout == "safetensors":
            files.append(self._write_safetensors(shapes, provenance))
        elif self.layout in ("npy", "other"):
            key = self.keys[0]
            if self.layout == "npy":
                self._write_npy(self.out, key, shapes[key])
            else:
                write_embeddings(self.out, np.concatenate(list(self._blocks(key))), key=key)
            files.append(self.out)
        else:
            self.out.mkdir(exist_ok=True)
            for key in self.keys:
                target = self.out / f"{key}.npy"
                self._write_npy(target, key, shapes[key])
                write_json(target.with_suffix(".json"), {**provenance, "file_layer": key})
                files.append(target)
        write_json(sidecar_path(self.out), provenance)
        shutil.rmtree(self.parts)
        self._lock.close()
        return files

    def _write_npy(self, target: Path, key: str, shape: tuple[int, int]) -> None:
        with atomic_output(target) as tmp, open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
            for block in self._blocks(key):
                fh.write(block.tobytes())

    def _write_safetensors(self, shapes: dict, provenance: dict) -> Path:
        """The safetensors layout written by hand so that tensors stream from the shards:
        8-byte little-endian header length, JSON header (offsets), then raw little-endian data."""
        header, offset = {}, 0
        for key in self.keys:
            size = int(np.prod(shapes[key])) * 4
            header[key] = {"dtype": "F32", "shape": list(shapes[key]), "data_offsets": [offset, offset + size]}
            offset += size
        header["__metadata__"] = {"latentlab": json.dumps(provenance)}
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)  # the format aligns the data section to 8 bytes
        with atomic_output(self.out) as tmp, open(tmp, "wb") as fh:
            fh.write(struct.pack("<Q", len(raw)))
            fh.write(raw)
            for key in self.keys:
                for block in self._blocks(key):
                    fh.write(block.tobytes())
        return self.out


def write_json(path: Path, data: dict) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
