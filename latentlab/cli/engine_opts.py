"""``--engine local|dask`` and ``--scheduler ADDRESS``: where a command's streamed passes run.

Applied below ``@common_options`` so that a scheduler that cannot be reached, a missing
extra or a worker lost mid-run come out as one ``error: …`` line, exit status 2, before any
output is written (commands write their outputs after the computation returns).
"""
from __future__ import annotations

import functools
from contextlib import nullcontext

import click

from ..errors import InputError

ENGINE_HELP = ("Where streamed passes run: local (this process) or dask (row ranges on a Dask cluster, "
               "same numbers; needs pip install 'latentlab[dask]').")
SCHEDULER_HELP = "Dask scheduler address (tcp://HOST:PORT); without it --engine dask starts a local cluster."


def engine_options(func):
    """Add ``--engine`` and ``--scheduler``; run the command inside the chosen engine."""

    @click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
                  help=ENGINE_HELP)
    @click.option("--scheduler", metavar="ADDRESS", default=None, help=SCHEDULER_HELP)
    @functools.wraps(func)
    def wrapper(*args, engine, scheduler, **kwargs):
        with engine_context(engine, scheduler):
            return func(*args, **kwargs)

    return wrapper


def engine_context(engine: str = "local", scheduler: str | None = None):
    """The context a command runs in: nothing for ``local``, a connected DaskEngine for ``dask``."""
    if engine == "local":
        if scheduler is not None:
            raise InputError(f"scheduler {scheduler}: only used with --engine dask")
        return nullcontext()
    from ..dask import DaskEngine, require_dask

    require_dask()
    return DaskEngine(scheduler)
