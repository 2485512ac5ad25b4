"""Progress bars for long passes: tqdm on stderr, shown only when stderr is a terminal.

``LATENTLAB_PROGRESS=0`` turns them off, ``=1`` forces them on (e.g. under a pager).
"""
from __future__ import annotations

import os
import sys

from tqdm import tqdm


def progress(iterable=None, *, total=None, desc: str | None = None, unit: str = "block"):
    setting = os.environ.get("LATENTLAB_PROGRESS", "").strip()
    disable = True if setting == "0" else (False if setting == "1" else None)
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr,
                disable=disable, dynamic_ncols=True)
