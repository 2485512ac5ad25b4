"""Progress on stderr for long work: tqdm bars and one-line notes ("compiling UMAP once, …").

Policy (one for every command): shown only when stderr is a terminal; off for a command run
with ``--json`` or ``--quiet`` (:func:`silenced`, entered by the CLI's common options), so a
program reading JSON never gets bars mixed into its logs. ``LATENTLAB_PROGRESS=0`` turns
them off, ``=1`` forces them on (e.g. under a pager); ``--json``/``--quiet`` win over ``=1``.
"""
from __future__ import annotations

import contextlib
import os
import sys

from tqdm import tqdm

_silenced = 0  # depth of active silenced(True) blocks


def enabled() -> bool | None:
    """True / False when decided, None when tqdm should decide (a TTY check on stderr)."""
    if _silenced:
        return False
    setting = os.environ.get("LATENTLAB_PROGRESS", "").strip()
    return False if setting == "0" else (True if setting == "1" else None)


def progress(iterable=None, *, total=None, desc: str | None = None, unit: str = "block"):
    """A bar over ``iterable`` (or ``total`` units, advanced by ``update``). Rows are counted
    with SI prefixes (``1.2Mrow/s``): a streamed pass reports its throughput, not its blocks."""
    on = enabled()
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr,
                disable=None if on is None else not on, dynamic_ncols=True, unit_scale=unit == "row")


def row_blocks(start: int, stop: int, rows: int, desc: str | None):
    """``range(start, stop, rows)`` with a rows/s bar (none without ``desc``): the block loop of a streamed pass."""
    if not desc:
        yield from range(start, stop, rows)
        return
    with progress(total=stop - start, desc=desc, unit="row") as bar:
        for lo in range(start, stop, rows):
            yield lo
            bar.update(min(rows, stop - lo))


def note(message: str) -> None:
    """One line on stderr about slow work about to start, under the same policy as the bars."""
    on = enabled()
    if on is None:
        on = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if on:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def silenced(active: bool = True):
    """No bars or notes inside the block when ``active`` (``--json``, ``--quiet``)."""
    global _silenced
    _silenced += bool(active)
    try:
        yield
    finally:
        _silenced -= bool(active)
