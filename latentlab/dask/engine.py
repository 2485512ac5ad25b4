"""The Dask engine: latentlab's accumulators mapped over ``dask.array`` row blocks.

See the package docstring. Why this shape:

* one partial accumulator per row range, all summed around the shift of the first block
  (read on the client), so partial sums add up exactly (``merge``) — the finishing formulas
  (CKA, spectrum, gap, the fits' normal equations) are the local ones, untouched;
* the partials are merged pairwise in a fixed tree, so a run is deterministic whatever the
  order in which workers finish;
* a cluster that loses a worker while a pass runs is an error naming it: the result is
  abandoned before anything is written (the CLI writes outputs only after the computation).
"""
from __future__ import annotations

import math
import socket
import time
from urllib.parse import urlsplit

import numpy as np

from ..compute import accumulate_rows, use_engine
from ..errors import InputError

INSTALL = "pip install 'latentlab[dask]'"
#: Seconds to wait for a scheduler before giving up (an unreachable address fails fast).
CONNECT_TIMEOUT = 5.0
#: A dask.array block (read whole by a worker) holds at most this many local blocks' bytes.
BLOCK_BUDGETS = 4
#: Accumulators whose partial sums exceed this (bytes; a bootstrap's G·d² group sums) run as one lane
#: of tasks per worker instead of one partial per row range (:meth:`DaskEngine._lanes`).
PARTIAL_BYTES = 64 * 2**20
#: Seconds between checks that the workers a pass started with are still there.
WATCH_INTERVAL = 0.2
#: Seconds between looks at whether a pass has finished (short: a permutation null runs many passes).
POLL_INTERVAL = 0.005


def require_dask():
    """Import dask.array and distributed, or say how to install them (InputError naming ``engine``)."""
    try:
        import dask
        import dask.array as da
        import distributed
    except ImportError as exc:
        raise InputError(f"engine dask: needs the optional dependencies dask[array] and distributed "
                         f"({exc.name or 'dask'} is not installed): {INSTALL}") from None
    return dask, da, distributed


def engine(scheduler: str | None = None, **kwargs) -> "DaskEngine":
    """``with latentlab.dask.engine("tcp://host:8786"): …`` — shorthand for :class:`DaskEngine`."""
    return DaskEngine(scheduler, **kwargs)


class DaskEngine:
    """Runs :func:`latentlab.compute.accumulate` passes and top-k / rank scans on a Dask cluster.

    Parameters
    ----------
    scheduler : address of a running scheduler (``tcp://host:8786`` or ``host:8786``);
        ``None`` starts a local cluster for the duration of the ``with`` block.
    client : an existing ``distributed.Client`` to use instead (not closed on exit).
    connect_timeout : seconds to wait for the scheduler.
    range_rows : rows per task (default: a shard per task for shard folders, otherwise the
        rows split into about four ranges per worker, at least one local block each).
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, *, client=None, connect_timeout: float = CONNECT_TIMEOUT,
                 range_rows: int | None = None):
        self.scheduler, self.client = scheduler, client
        self.connect_timeout, self.range_rows = float(connect_timeout), range_rows
        self._own_client = self._cluster = self._context = None

    # ------------------------------------------------------------------ connection
    @property
    def address(self) -> str:
        if self.client is not None:
            return self.client.scheduler.address
        return self.scheduler or "a local cluster"

    def __enter__(self) -> "DaskEngine":
        self.connect()
        self._context = use_engine(self)
        self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._context is not None:
            self._context.__exit__(*exc)
            self._context = None
        self.close()

    def connect(self) -> None:
        if self.client is not None:
            return
        _, _, distributed = require_dask()
        if self.scheduler is None:
            self._cluster = distributed.LocalCluster(processes=False, dashboard_address=":0")
            self.client = self._own_client = distributed.Client(self._cluster)
            return
        _probe(self.scheduler, self.connect_timeout)
        try:
            self.client = self._own_client = distributed.Client(self.scheduler, timeout=self.connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"scheduler {self.scheduler}: cannot connect ({_reason(exc)}); check the address "
                             f"and that the scheduler is running") from None

    def close(self) -> None:
        if self._own_client is not None:
            self._own_client.close()
            self.client = self._own_client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    # ------------------------------------------------------------------ accumulations
    def accumulate(self, sources, make, backend, *, rows: int, transform=None, desc: str | None = None):
        """The pass of :func:`latentlab.compute.accumulate`, one task per row range, merged in a tree."""
        dask, da, _ = require_dask()
        n = len(sources[0])
        probe = make()
        shift = probe.shift
        if _unset(shift):  # the local pass sums around its first block's means: so does every partial here
            try:
                first = [backend.tensor(np.asarray(s[0 : min(rows, n)])) for s in sources]
            except OSError as exc:  # a shard gone since it was listed
                raise InputError(f"{_reason(exc)}; the input changed after it was listed") from None
            shift = make().update(*(first if transform is None else [transform(t) for t in first])).shift
        ranges = self._ranges(sources, n, rows, backend)
        # one graph node for what every task shares, so it is tokenized and shipped once, not per task
        how = dask.delayed((make, shift, backend, rows, transform), pure=False, traverse=False)
        if getattr(probe, "state_bytes", 0) > PARTIAL_BYTES:
            parts = self._lanes(dask, sources, ranges, how)
        else:
            arrays = [_as_dask_array(dask, da, s, ranges) for s in sources]
            blocks = [a.to_delayed().ravel() for a in arrays]
            parts = [dask.delayed(_partial, pure=True)(how, ranges[i][0], *[b[i] for b in blocks])
                     for i in range(len(ranges))]
        while len(parts) > 1:  # a fixed pairing: the same sums in the same order on every run
            parts = [dask.delayed(_merge, pure=True)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        return self._run(parts[0])

    def _lanes(self, dask, sources, ranges, how) -> list:
        """Large accumulators (a bootstrap's G·d² group sums): one chain of tasks per worker, each task
        reading its row range and adding it into the lane's accumulator, so a worker holds one
        partial rather than one per range; the lanes are then merged as usual."""
        srcs = [dask.delayed(s, pure=False, traverse=False) for s in sources]
        count = max(1, min(len(ranges), self._n_workers()))
        cuts = np.linspace(0, len(ranges), count + 1).round().astype(int)  # contiguous, fixed given the workers
        lanes = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            part = None
            for lo, hi in ranges[a:b]:
                part = dask.delayed(_fold, pure=True)(part, how, lo, hi, *srcs)
            lanes.append(part)
        return lanes

    def _ranges(self, sources, n: int, rows: int, backend) -> list[tuple[int, int]]:
        """Row ranges, one dask.array block (and task) each: a shard of a shard folder, else a
        quarter of a worker's share; never more than :data:`BLOCK_BUDGETS` local blocks' bytes,
        since a worker holds its whole block (a 1.5 GB LAION shard becomes several blocks)."""
        if self.range_rows:
            return _split([(0, n)], int(self.range_rows))
        row_bytes = sum(int(s.shape[1]) * _itemsize(s) for s in sources)
        cap = max(rows, BLOCK_BUDGETS * backend.block_bytes // max(row_bytes, 1))
        # shard folders split alike (a LAION dump's img_emb and text_emb): one task per shard
        bounds = [getattr(s, "bounds", None) for s in sources]
        if bounds[0] is not None and len(bounds[0]) > 2 and all(
                b is not None and np.array_equal(b, bounds[0]) for b in bounds):
            return _split([(int(a), int(b)) for a, b in zip(bounds[0][:-1], bounds[0][1:]) if b > a], cap)
        return _split([(0, n)], min(cap, max(rows, math.ceil(n / (4 * max(self._n_workers(), 1))))))

    def _n_workers(self) -> int:
        return len(self._workers())

    def _workers(self) -> set:
        """The workers' addresses, asked of the scheduler now (``scheduler_info`` is a cached copy)."""
        return set(self.client.nthreads())

    # ------------------------------------------------------------------ query scans
    def topk(self, queries, gallery, k: int, *, exclude_self: bool = False, **kwargs):
        """:func:`latentlab.knn.topk_cosine` with query blocks on the workers."""
        parts = self._map_queries(_topk_block, queries, gallery, (), dict(kwargs, k=k, exclude_self=exclude_self))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def true_ranks(self, queries, gallery, truth, **kwargs) -> np.ndarray:
        """:func:`latentlab.ranks.true_ranks` with query blocks on the workers."""
        return np.concatenate(self._map_queries(_ranks_block, queries, gallery, (truth,), kwargs))

    def _map_queries(self, func, queries, gallery, per_query: tuple, kwargs: dict) -> list:
        dask, _, _ = require_dask()
        n = len(queries)
        step = int(self.range_rows or 0)
        if not step:  # a worker holds its query block: the same byte cap as the accumulations
            row_bytes = int(queries.shape[1]) * _itemsize(queries)
            cap = BLOCK_BUDGETS * kwargs["backend"].block_bytes // max(row_bytes, 1)
            step = max(256, min(cap, math.ceil(n / (2 * max(self._n_workers(), 1)))))
        q, g = (dask.delayed(x, pure=False, traverse=False) for x in (queries, gallery))
        tasks = [dask.delayed(_query_range, pure=True)(func, q, g, lo, min(lo + step, n),
                                                       tuple(np.asarray(p)[lo : lo + step] for p in per_query), kwargs)
                 for lo in range(0, n, step)]
        return list(self._run(dask.delayed(list)(tasks)))

    # ------------------------------------------------------------------ running
    def _run(self, graph):
        """Compute ``graph``; a lost worker or scheduler is an InputError naming its address."""
        require_dask()
        try:
            start = self._workers()
            future = self.client.compute(graph)
            checked = time.monotonic()
            # poll done() rather than result(timeout=…): a timed-out wait inside distributed can race
            # with the result arriving and fail with UnboundLocalError (seen with many short passes)
            while not future.done():
                time.sleep(POLL_INTERVAL)
                if time.monotonic() - checked < WATCH_INTERVAL:
                    continue
                checked = time.monotonic()
                gone = start - self._workers()
                if gone:
                    future.cancel()
                    raise InputError(f"scheduler {self.address}: worker {sorted(gone)[0]} left the cluster "
                                     f"during the run; nothing was written, run it again")
            return future.result()
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - KilledWorker, CommClosedError, OSError, cancelled futures…
            if type(exc).__module__.startswith("latentlab"):
                raise
            raise InputError(f"scheduler {self.address}: the run failed ({type(exc).__name__}: {_reason(exc)}); "
                             f"nothing was written") from exc


def _itemsize(source) -> int:
    """Bytes per value of a numpy-like or torch source."""
    dt = source.dtype
    return int(dt.itemsize) if type(dt).__module__ == "torch" else np.dtype(dt).itemsize


def _split(ranges: list[tuple[int, int]], step: int) -> list[tuple[int, int]]:
    """Each range cut into pieces of at most ``step`` rows."""
    step = max(int(step), 1)
    return [(lo, min(lo + step, hi)) for a, hi in ranges for lo in range(a, hi, step)]


# ---------------------------------------------------------------------- worker-side tasks
def _read_rows(source, lo: int, hi: int) -> np.ndarray:
    try:
        return np.asarray(source[lo:hi])
    except OSError as exc:  # on a worker: a shard gone (or unreadable) since the client listed it
        raise InputError(f"{_reason(exc)}; the input changed after it was listed") from None


def _as_dask_array(dask, da, source, ranges):
    """``source`` as a dask array chunked by ``ranges``, each chunk read on a worker."""
    src = dask.delayed(source, pure=False, traverse=False)
    width = int(source.shape[1])
    dtype = np.dtype(f"f{_itemsize(source)}") if type(source.dtype).__module__ == "torch" else np.dtype(source.dtype)
    chunks = [da.from_delayed(dask.delayed(_read_rows, pure=True)(src, lo, hi), shape=(hi - lo, width), dtype=dtype)
              for lo, hi in ranges]
    return da.concatenate(chunks, axis=0) if len(chunks) > 1 else chunks[0]


def _partial(how, offset, *blocks):
    make, shift, backend, rows, transform = how
    with use_engine(None):  # the worker's own pass is local; ``offset``: where its rows start globally
        return accumulate_rows(list(blocks), make, backend, rows=rows, shift=shift, transform=transform, offset=offset)


def _fold(acc, how, lo: int, hi: int, *sources):
    """Rows ``lo:hi`` read here and added into ``acc`` (a lane's accumulator; None: a new one). The
    lane's previous task is its only user, so adding in place holds one partial per lane."""
    make, shift, backend, rows, transform = how
    with use_engine(None):
        try:
            return accumulate_rows(list(sources), make, backend, rows=rows, start=lo, stop=hi, shift=shift,
                                   transform=transform, acc=acc)
        except OSError as exc:  # as in _read_rows
            raise InputError(f"{_reason(exc)}; the input changed after it was listed") from None


def _unset(shift) -> bool:
    """Whether an accumulator's shift is only known after its first block (a Joint's, per part)."""
    return shift is None or (isinstance(shift, tuple) and any(s is None for s in shift))


def _merge(a, b):
    return a.merge(b)


def _query_range(func, queries, gallery, lo: int, hi: int, per_query: tuple, kwargs: dict):
    with use_engine(None):
        return func(np.asarray(queries[lo:hi]), gallery, lo, *per_query, **kwargs)


def _topk_block(q, gallery, lo: int, *, k: int, exclude_self: bool, **kwargs):
    from ..knn import topk_cosine

    if not exclude_self:
        return topk_cosine(q, gallery, k, **kwargs)
    # one more neighbour, then drop the query's own row (the last one when it is not listed)
    values, index = topk_cosine(q, gallery, min(k + 1, len(gallery)), **kwargs)
    own = index == (lo + np.arange(len(q)))[:, None]
    keep = ~own
    keep[~own.any(1), -1] = False
    return (values[keep].reshape(len(q), -1)[:, :k], index[keep].reshape(len(q), -1)[:, :k])


def _ranks_block(q, gallery, lo: int, truth, **kwargs):
    from ..ranks import true_ranks

    return true_ranks(q, gallery, truth, **kwargs)


# ---------------------------------------------------------------------- connection helpers
def _probe(address: str, timeout: float) -> None:
    """Fail in well under ``timeout`` when nothing listens at a TCP address."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls"):
        return  # inproc:// and other transports: let distributed decide
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        port = None
    if not host or port is None:
        raise InputError(f"scheduler {address}: not an address (expected tcp://HOST:PORT)")
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=max(0.1, deadline - time.monotonic())):
            pass
    except OSError as exc:
        raise InputError(f"scheduler {address}: cannot connect ({_reason(exc)}); check the address and that "
                         f"the scheduler is running") from None


def _reason(exc: BaseException) -> str:
    text = (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).strip().splitlines()
    text = text[0] if text else type(exc).__name__
    # a shard that vanished after listing: name the file (strerror alone does not)
    name = getattr(exc, "filename", None)
    return f"{name}: {text}" if name and str(name) not in text else text
