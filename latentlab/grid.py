"""Value grids given on the command line: ``START:STOP:STEP`` (stop inclusive) or ``v1,v2,…``."""
from __future__ import annotations

import numpy as np

from .errors import InputError

#: The most values one grid may hold: each value is a full evaluation (a retrieval, a shift).
MAX_GRID = 1000


def parse_grid(spec: str, what: str) -> list[float]:
    """``"-1:1:0.5"`` → [-1, -0.5, 0, 0.5, 1]; ``"10,20"`` → [10, 20]; ``what`` names the option in errors.

    The count is computed with a small tolerance so that 0:1:0.1 includes 1 despite rounding.
    Values must be finite and a grid holds at most :data:`MAX_GRID` values (checked before
    the grid is built, so ``0:1:1e-9`` is refused at once rather than allocated).
    """
    usage = f"{what}: expected START:STOP:STEP with STEP > 0 and STOP ≥ START, or a comma list"
    try:
        if ":" in spec:
            start, stop, step = (float(p) for p in spec.split(":"))
            _finite((start, stop, step), what)
            if step <= 0 or stop < start:
                raise ValueError
            span = (stop - start) / step
            if not np.isfinite(span) or span + 1 > MAX_GRID:
                raise InputError(f"{what} {spec}: {span + 1:.3g} values; at most {MAX_GRID} — use a larger STEP")
            count = int(np.floor(span + 1e-9)) + 1
            return [round(start + i * step, 12) for i in range(count)]
        values = [float(p) for p in spec.split(",") if p.strip()]
        if not values:
            raise ValueError
        _finite(values, what)
        if len(values) > MAX_GRID:
            raise InputError(f"{what}: {len(values)} values; at most {MAX_GRID}")
        return values
    except InputError:
        raise
    except ValueError:
        raise InputError(usage) from None


def _finite(values, what: str) -> None:
    if not all(np.isfinite(v) for v in values):
        raise InputError(f"{what}: every value must be a finite number (no nan or inf)")
