"""Result containers shared by every analysis: plain frozen dataclasses with ``to_dict()``.

Scalars with uncertainty are :class:`Estimate` objects; in JSON they become
``{"value": v, "ci_low": lo, "ci_high": hi}`` in place of the bare number.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval (and how it was obtained)."""

    value: float
    ci_low: float
    ci_high: float
    level: float = 0.95
    method: str = "percentile bootstrap"
    n_resamples: int = 0

    def to_dict(self) -> dict:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}

    def __float__(self) -> float:
        return float(self.value)

    def __format__(self, spec: str) -> str:
        spec = spec or ".4g"
        return f"{self.value:{spec}} [{self.ci_low:{spec}}, {self.ci_high:{spec}}]"


def to_jsonable(obj: Any) -> Any:
    """Convert results to JSON-native values: NaN/Inf → null, arrays → lists, dataclasses → dicts."""
    if isinstance(obj, Estimate):
        return to_jsonable(obj.to_dict())
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if hasattr(obj, "item") and callable(obj.item):  # 0-d torch tensors
        return to_jsonable(obj.item())
    return obj


class ResultMixin:
    """``to_dict()`` for result dataclasses (fields in order, JSON-native values)."""

    def to_dict(self) -> dict:
        return {f.name: to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def format_value(value: Any, digits: int = 4) -> str:
    """A value for a table cell: ``—`` for missing, 4 significant decimals for floats."""
    if value is None:
        return "—"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Estimate):
        return format(value, f".{digits}f")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e6):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return str(value)
