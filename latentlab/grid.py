"""Value grids given on the command line: ``START:STOP:STEP`` (stop inclusive) or ``v1,v2,…``."""
from __future__ import annotations

import numpy as np

from .errors import InputError


def parse_grid(spec: str, what: str) -> list[float]:
    """``"-1:1:0.5"`` → [-1, -0.5, 0, 0.5, 1]; ``"10,20"`` → [10, 20]; ``what`` names the option in errors.

    The count is computed with a small tolerance so that 0:1:0.1 includes 1 despite rounding.
    """
    try:
        if ":" in spec:
            start, stop, step = (float(p) for p in spec.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            return [round(start + i * step, 12) for i in range(count)]
        values = [float(p) for p in spec.split(",") if p.strip()]
        if not values:
            raise ValueError
        return values
    except ValueError:
        raise InputError(f"{what}: expected START:STOP:STEP with STEP > 0 and STOP ≥ START, or a comma list") from None
