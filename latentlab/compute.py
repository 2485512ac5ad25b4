"""Compute core: device and dtype choice, row-block iteration, streaming moments.

The only module that knows about devices and block sizes. Metrics receive row blocks as
torch tensors on the chosen device; anything that can be written as a sum over rows
(means, second moments, cross-moments) is accumulated here in float64, so it runs in
O(d²) memory whatever the number of rows.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from .errors import InputError
from .moments import StreamingMoments  # noqa: F401  (re-exported: compute is its historical home)

#: Bytes of input one row block may occupy (after conversion to the compute dtype).
DEFAULT_BLOCK_BYTES = CPU_BLOCK_BYTES = 64 * 2**20
#: The same budget on a CUDA device: GPU memory is counted in GiB and every block is one
#: round of kernel launches, so blocks four times larger mean fewer, fuller launches. (Not
#: measured on this repository's CI, which has no GPU: ``bench/gpu_check.sh`` times it.)
CUDA_BLOCK_BYTES = 256 * 2**20
#: Query rows of one score tile are capped here: a (rows × gallery chunk) score matrix
#: is followed by top-k / rank passes whose cost grows with the rows, not the bytes.
MAX_TILE_ROWS = 4096
#: Edge of a square tile of pairwise terms (exp of all pairs, kernels): 4096² float32 =
#: 64 MiB on a CPU (measured 1.4× faster than 2048² on a shared 2-core machine, where every
#: short parallel region waits for a descheduled thread); a GPU wants larger launches still.
CPU_PAIR_TILE, CUDA_PAIR_TILE = 4096, 8192

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto`` → the first CUDA device when one is usable, else CPU; ``cpu``; ``cuda[:N]``."""
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {spec}: CUDA is not available on this machine (use cpu or auto)")
        try:
            device = torch.device(spec)
        except RuntimeError as exc:
            raise InputError(f"device {spec}: {exc}") from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return device
    raise InputError(f"device {spec}: expected auto, cpu, cuda or cuda:N")


def resolve_dtype(spec: str | torch.dtype | None = "float32") -> torch.dtype:
    """Computation dtype: float32 (default) or float64."""
    if isinstance(spec, torch.dtype):
        return spec
    try:
        return _DTYPES[(spec or "float32").lower()]
    except KeyError:
        raise InputError(f"dtype {spec}: expected float32 or float64") from None


@dataclass(frozen=True)
class Backend:
    """Where and in which precision to compute."""

    device: torch.device
    dtype: torch.dtype
    block_bytes: int = DEFAULT_BLOCK_BYTES

    @classmethod
    def make(cls, device="auto", dtype="float32", block_bytes: int | None = None) -> "Backend":
        dev = resolve_device(device)
        return cls(dev, resolve_dtype(dtype), block_bytes or default_block_bytes(dev))

    def float64(self) -> "Backend":
        """The same device and budget in float64 (closed forms: eigh, SVD, solves)."""
        return self if self.dtype == torch.float64 else Backend(self.device, torch.float64, self.block_bytes)

    @property
    def itemsize(self) -> int:
        return torch.finfo(self.dtype).bits // 8

    def block_rows(self, dim: int, copies: int = 1) -> int:
        """Rows per block so that ``copies`` blocks of width ``dim`` fit the byte budget."""
        return max(64, int(self.block_bytes // max(1, dim * self.itemsize * copies)))

    def score_tiles(self, n_gallery: int, dim: int, *, min_chunk: int = 2048,
                    chunk: int | None = None) -> tuple[int, int]:
        """``(query rows, gallery rows)`` of one tile of a query × gallery score matrix.

        A gallery chunk holds as many ``dim``-wide rows as the budget allows (at least
        ``min_chunk``; ``chunk`` if given; at most the gallery), and the query block is what
        keeps its (rows × chunk) scores within the budget too (at most :data:`MAX_TILE_ROWS`).
        """
        chunk = max(1, min(n_gallery, chunk or max(min_chunk, self.block_rows(dim))))
        return max(1, min(MAX_TILE_ROWS, self.block_bytes // (self.itemsize * chunk))), chunk

    def pair_tile(self) -> int:
        """Edge of a square tile of pairwise terms on this device."""
        return pair_tile(self.device)

    def tensor(self, block) -> torch.Tensor:
        """A block (numpy array, row-source slice or tensor on any device) on this backend."""
        if isinstance(block, torch.Tensor):
            t = block
        else:
            arr = np.asarray(block)
            if not arr.flags.writeable:
                # torch has no read-only tensors (it warns, and an in-place op would write into a
                # memory-mapped input): copy once, converting to the compute dtype on the way
                arr = arr.astype(torch.empty((), dtype=self.dtype).numpy().dtype)
            t = torch.as_tensor(arr)
        # non_blocking only host → device: a device → host copy would return before it lands
        return t.to(device=self.device, dtype=self.dtype, non_blocking=t.device.type == "cpu")


def pair_tile(device: torch.device) -> int:
    """Edge of a square tile of pairwise terms on ``device`` (see :data:`CPU_PAIR_TILE`)."""
    return CPU_PAIR_TILE if device.type == "cpu" else CUDA_PAIR_TILE


def default_block_bytes(device: torch.device) -> int:
    """The row-block byte budget for ``device`` (the one place that decides it)."""
    return CPU_BLOCK_BYTES if device.type == "cpu" else CUDA_BLOCK_BYTES


def as_backend(device="auto", dtype="float32") -> Backend:
    return device if isinstance(device, Backend) else Backend.make(device, dtype)


def iter_row_blocks(data, block_rows: int, *, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(offset, rows)`` over ``data[start:stop]`` in blocks of ``block_rows`` rows."""
    stop = len(data) if stop is None else stop
    for lo in range(start, stop, block_rows):
        yield lo, np.asarray(data[lo : min(lo + block_rows, stop)])


def iter_paired_blocks(a, b, block_rows: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Row-aligned blocks of two equally long sources."""
    if len(a) != len(b):
        raise InputError(f"paired iteration over {len(a)} and {len(b)} rows")
    for lo in range(0, len(a), block_rows):
        hi = min(lo + block_rows, len(a))
        yield lo, np.asarray(a[lo:hi]), np.asarray(b[lo:hi])


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows scaled to unit Euclidean norm (zero rows stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


#: scores (queries × gallery rows) above which a ranking / top-k pass shows its progress bar: smaller
#: passes are over before a bar helps, and resampling loops run many of them
PROGRESS_SCORES = 50_000_000


def stream_moments(*sources, backend: Backend, second: bool = True, transform=None,
                   desc: str | None = None, products=None) -> StreamingMoments:
    """One pass over row-aligned sources, accumulating :class:`StreamingMoments`.

    ``transform`` (optional) maps each tensor block before accumulation (e.g. L2 normalisation);
    ``desc`` names the pass for its rows/s progress bar; ``products`` as in :class:`StreamingMoments`.
    """
    n = len(sources[0])
    if any(len(s) != n for s in sources):
        raise InputError("sources must have the same number of rows")
    width = sum(int(s.shape[1]) for s in sources)
    # long blocks make each d × d product one efficient GEMM, as in cka._stream (a block and its
    # centred copy are held, ~2 × block_bytes); measured 10–15 % faster fits than 1/3 of the budget
    rows = backend.block_rows(width, copies=1)
    return accumulate(sources, functools.partial(StreamingMoments, second=second, products=products), backend, rows=rows,
                      transform=transform, desc=desc)


# --------------------------------------------------------------------------- engines
# Every streamed statistic is a sum over row blocks kept by an *accumulator*: an object with
# ``update(*blocks)`` (row-aligned tensors, one per source), ``merge(other)`` (add a partial
# sum) and ``shift`` (what it sums around, or None), made by ``make(shift=...)``; optionally
# ``seek(row)`` (told the global index of the next block's first row) and ``state_bytes``. The local
# engine feeds it every block in turn; another engine (``latentlab.dask``) feeds copies of it
# on workers, all around the shift of the first block, and merges them — the finishing
# formulas never see the difference.
_ENGINE: ContextVar = ContextVar("latentlab_engine", default=None)


def current_engine():
    """The engine :func:`accumulate` hands its passes to (None: this process, block by block)."""
    return _ENGINE.get()


@contextmanager
def use_engine(engine):
    """Run the streamed passes inside the ``with`` block on ``engine`` (None: locally)."""
    token = _ENGINE.set(engine)
    try:
        yield engine
    finally:
        _ENGINE.reset(token)


def accumulate(sources, make, backend: Backend, *, rows: int, transform=None, desc: str | None = None):
    """One pass over row-aligned ``sources`` in blocks of ``rows`` rows into ``make()``'s accumulator,
    on the current engine (:func:`use_engine`). ``transform`` maps each tensor block first."""
    engine = _ENGINE.get()
    if engine is not None:
        return engine.accumulate(sources, make, backend, rows=rows, transform=transform, desc=desc)
    return accumulate_rows(sources, make, backend, rows=rows, transform=transform, desc=desc)


def accumulate_rows(sources, make, backend: Backend, *, rows: int, start: int = 0, stop: int | None = None,
                    shift=None, transform=None, desc: str | None = None, offset: int = 0, acc=None):
    """The local pass (rows ``start:stop``) of :func:`accumulate`; engines run it on their workers.

    ``offset`` is the global index of the sources' row 0 (an engine's row range read as its own
    array); an accumulator with ``seek(row)`` is told where each block starts, so what it does per
    row may depend on the global row index (the random row groups of a bootstrap). ``acc``
    continues an existing accumulator instead of ``make(shift=shift)``.
    """
    from .progress import row_blocks

    stop = len(sources[0]) if stop is None else stop
    acc = make(shift=shift) if acc is None else acc
    seek = getattr(acc, "seek", None)
    for lo in row_blocks(start, stop, rows, desc):  # a rows/s bar when ``desc`` names the pass
        tensors = [backend.tensor(np.asarray(s[lo : min(lo + rows, stop)])) for s in sources]
        if seek is not None:
            seek(offset + lo)
        acc.update(*(tensors if transform is None else [transform(t) for t in tensors]))
    return acc


class Joint:
    """Several accumulators fed the same blocks in one pass (``Joint.of(A, B)`` makes them)."""

    def __init__(self, makers: tuple, *, shift=None):
        shifts = shift if shift is not None else (None,) * len(makers)
        self.parts = [m(shift=s) for m, s in zip(makers, shifts)]

    @classmethod
    def of(cls, *makers):
        return functools.partial(cls, makers)

    @property
    def shift(self):
        return tuple(p.shift for p in self.parts)

    def update(self, *blocks) -> "Joint":
        for p in self.parts:
            p.update(*blocks)
        return self

    def seek(self, row: int) -> None:
        for p in self.parts:
            if hasattr(p, "seek"):
                p.seek(row)

    def merge(self, other: "Joint") -> "Joint":
        for p, q in zip(self.parts, other.parts):
            p.merge(q)
        return self


class UnitSums:
    """Σ l2n(x_r) and Σ ‖l2n(x_r)‖² per stream, in float64 (centroid of unit rows, mean cosine)."""

    def __init__(self, *, shift=None):
        self.n, self.sums, self.sq = 0, [], []

    shift = None

    def update(self, *blocks: torch.Tensor) -> "UnitSums":
        self.add_units(*(l2_normalize(b) for b in blocks))
        return self

    def add_units(self, *units: torch.Tensor) -> "UnitSums":
        """Add rows that are already L2-normalised."""
        units = [u.to(torch.float64) for u in units]
        if not self.sums:
            self.sums = [torch.zeros(u.shape[1], dtype=torch.float64, device=u.device) for u in units]
            self.sq = [torch.zeros((), dtype=torch.float64, device=u.device) for u in units]
        for i, u in enumerate(units):
            self.sums[i] += u.sum(0)
            self.sq[i] += (u * u).sum()
        self.n += int(units[0].shape[0])
        return self

    def merge(self, other: "UnitSums") -> "UnitSums":
        if not other.sums:
            return self
        if not self.sums:
            self.sums, self.sq = [torch.zeros_like(s) for s in other.sums], [torch.zeros_like(s) for s in other.sq]
        for i in range(len(other.sums)):
            self.sums[i] += other.sums[i].to(self.sums[i].device)
            self.sq[i] += other.sq[i].to(self.sq[i].device)
        self.n += other.n
        return self
