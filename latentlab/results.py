"""Result containers shared by every analysis: plain frozen dataclasses with ``to_dict()``.

One type per field, one JSON shape per result
----------------------------------------------
* **Python.** A field that *can* carry an interval (annotated ``Estimate``) is *always* an
  :class:`Estimate` — with or without resampling — or ``None`` when the value is undefined
  (its reason is in ``notes``). ``ci_low``/``ci_high`` are ``None`` when no interval was
  computed. An Estimate behaves like its number: ``float()``, comparisons, arithmetic
  (returning floats), ``math.isfinite``, numpy conversion, hashing, ``format``.
* **JSON.** A scalar is always a JSON number (or ``null`` when undefined). Intervals live in
  one separate key per result object, ``"ci": {"<field>": {"low", "high", "level",
  "method"} | null, …}``: present on every result that has interval-capable fields, with a
  ``null`` entry for each field whose interval was not computed. So ``jq .cka`` is a number
  with or without ``--bootstrap`` and ``jq .ci.cka.low`` is the interval. Nested results
  follow the rule at their own level; a list-valued field (a matrix of cells) gets ``low`` /
  ``high`` of the same shape. Plain dicts holding Estimates (report sections) get the same
  ``"ci"`` key. Keys are identifiers (``^[a-z_][a-z0-9_]*$``).

The rule lives here only (:meth:`ResultMixin.to_dict`, :func:`to_jsonable`), not per command.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

#: the key holding the intervals of a result object
CI_KEY = "ci"


@dataclass(frozen=True, eq=False)
class Estimate:
    """A point estimate, with a confidence interval when resampling was done.

    Behaves like the number ``value`` (comparisons, arithmetic returning floats, hashing,
    ``float()``, numpy); the interval is ``(ci_low, ci_high)`` at ``level``, obtained by
    ``method`` from ``n_resamples`` replicates, or ``None`` without resampling.
    """

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    level: float | None = None
    method: str | None = None
    n_resamples: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(self.value))
        if (self.ci_low is None) != (self.ci_high is None):
            raise ValueError("an Estimate's interval needs both ci_low and ci_high (or neither)")
        if self.ci_low is not None:
            object.__setattr__(self, "ci_low", float(self.ci_low))
            object.__setattr__(self, "ci_high", float(self.ci_high))
            if self.level is None:
                object.__setattr__(self, "level", 0.95)

    @property
    def interval(self) -> tuple[float, float] | None:
        """``(ci_low, ci_high)``, or ``None`` when no interval was computed."""
        return None if self.ci_low is None else (self.ci_low, self.ci_high)

    def ci_dict(self) -> dict | None:
        """The JSON entry under ``"ci"``: ``{"low", "high", "level", "method"}`` or ``None``."""
        if self.ci_low is None:
            return None
        return {"low": _finite(self.ci_low), "high": _finite(self.ci_high), "level": self.level,
                "method": self.method}

    # --- a number -------------------------------------------------------------------------
    def __float__(self) -> float:
        return self.value

    def __int__(self) -> int:
        return int(self.value)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.value, dtype=dtype)

    def __hash__(self) -> int:  # equal to the hash of the float it compares equal to
        return hash(self.value)

    def __eq__(self, other):
        o = _other(other)
        return NotImplemented if o is None else self.value == o

    def __ne__(self, other):
        o = _other(other)
        return NotImplemented if o is None else self.value != o

    def __lt__(self, other):
        o = _other(other)
        return NotImplemented if o is None else self.value < o

    def __le__(self, other):
        o = _other(other)
        return NotImplemented if o is None else self.value <= o

    def __gt__(self, other):
        o = _other(other)
        return NotImplemented if o is None else self.value > o

    def __ge__(self, other):
        o = _other(other)
        return NotImplemented if o is None else self.value >= o

    def __add__(self, other):
        o = _other(other)
        return NotImplemented if o is None else self.value + o

    def __radd__(self, other):
        o = _other(other)
        return NotImplemented if o is None else o + self.value

    def __sub__(self, other):
        o = _other(other)
        return NotImplemented if o is None else self.value - o

    def __rsub__(self, other):
        o = _other(other)
        return NotImplemented if o is None else o - self.value

    def __mul__(self, other):
        o = _other(other)
        return NotImplemented if o is None else self.value * o

    def __rmul__(self, other):
        o = _other(other)
        return NotImplemented if o is None else o * self.value

    def __truediv__(self, other):
        o = _other(other)
        return NotImplemented if o is None else self.value / o

    def __rtruediv__(self, other):
        o = _other(other)
        return NotImplemented if o is None else o / self.value

    def __neg__(self) -> float:
        return -self.value

    def __pos__(self) -> float:
        return self.value

    def __abs__(self) -> float:
        return abs(self.value)

    def __round__(self, ndigits=None):
        return round(self.value, ndigits)

    def __format__(self, spec: str) -> str:
        """``v`` or ``v [lo, hi]``, each formatted with ``spec`` (default ``.4g``)."""
        spec = spec or ".4g"
        if self.ci_low is None:
            return format(self.value, spec)
        return f"{self.value:{spec}} [{self.ci_low:{spec}}, {self.ci_high:{spec}}]"

    def __str__(self) -> str:
        return format(self, "")


def _other(x):
    """The float an operand stands for (an Estimate's value, a real number), or None."""
    if isinstance(x, Estimate):
        return x.value
    if isinstance(x, (numbers.Real, np.number)) and not isinstance(x, (bool, np.bool_)):
        return float(x)
    return None


def _finite(x):
    return x if x is not None and math.isfinite(x) else None


def estimate(value) -> Estimate | None:
    """``value`` as an :class:`Estimate` without an interval (``None`` and Estimates pass through)."""
    if value is None or isinstance(value, Estimate):
        return value
    return Estimate(float(value))


def interval_capable(f: dataclasses.Field) -> bool:
    """A dataclass field that may carry an interval: its annotation names ``Estimate``."""
    return "Estimate" in (f.type if isinstance(f.type, str) else repr(f.type))


def _values(obj: Any) -> Any:
    """Estimates (also nested in lists) replaced by their numbers."""
    if isinstance(obj, Estimate):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [_values(v) for v in obj]
    return obj


def _ci(obj: Any) -> dict | None:
    """The ``"ci"`` entry of a field: an Estimate's, or for a (nested) list of cells ``low`` and
    ``high`` of the list's shape (``null`` cells where a cell has none); ``None`` without any."""
    if isinstance(obj, Estimate):
        return obj.ci_dict()
    if not isinstance(obj, (list, tuple)):
        return None
    cells = list(_leaves(obj))
    first = next((c for c in cells if isinstance(c, Estimate) and c.interval), None)
    if first is None:
        return None

    def bound(x, side):
        if isinstance(x, (list, tuple)):
            return [bound(v, side) for v in x]
        return _finite(getattr(x, side)) if isinstance(x, Estimate) and x.interval else None

    return {"low": bound(obj, "ci_low"), "high": bound(obj, "ci_high"), "level": first.level,
            "method": first.method}


def _leaves(obj):
    for v in obj:
        if isinstance(v, (list, tuple)):
            yield from _leaves(v)
        else:
            yield v


def split_intervals(items: dict, capable) -> dict:
    """``items`` (name → value) as JSON: numbers in place, intervals under one ``"ci"`` key
    holding an entry (possibly ``null``) for every name in ``capable``."""
    out = {str(k): to_jsonable(_values(v) if k in capable else v) for k, v in items.items()}
    if capable:
        out[CI_KEY] = {str(k): to_jsonable(_ci(items[k])) for k in capable}
    return out


def to_jsonable(obj: Any) -> Any:
    """Convert results to JSON-native values: NaN/Inf → null, arrays → lists, dataclasses → dicts,
    an Estimate → its number (its interval travels in the enclosing object's ``"ci"``)."""
    if isinstance(obj, Estimate):
        return to_jsonable(obj.value)
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = dataclasses.fields(obj)
        return split_intervals({f.name: getattr(obj, f.name) for f in fields},
                               [f.name for f in fields if interval_capable(f)])
    if isinstance(obj, dict):
        capable = [k for k, v in obj.items() if _holds_estimate(v)]
        return split_intervals(obj, capable) if capable and CI_KEY not in obj else {
            str(k): to_jsonable(v) for k, v in obj.items()}
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


def _holds_estimate(v) -> bool:
    if isinstance(v, Estimate):
        return True
    return isinstance(v, (list, tuple)) and any(isinstance(c, Estimate) for c in _leaves(v))


def interval_methods(result) -> dict:
    """Field name → the scheme of its interval, for the interval-capable fields of a result
    dataclass that carry one (what each interval is, in words)."""
    return {f.name: v.method for f in dataclasses.fields(result) if interval_capable(f)
            for v in [getattr(result, f.name)] if isinstance(v, Estimate) and v.interval is not None}


class ResultMixin:
    """``to_dict()`` for result dataclasses: fields in order, JSON-native values, and the
    intervals of the interval-capable fields under ``"ci"`` (module docstring)."""

    def to_dict(self) -> dict:
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        return split_intervals({f.name: getattr(self, f.name) for f in fields},
                               [f.name for f in fields if interval_capable(f)])


def format_value(value: Any, digits: int = 4) -> str:
    """A value for a table cell: ``—`` for missing, 4 significant decimals for floats,
    ``v [lo, hi]`` for an Estimate with an interval."""
    if value is None:
        return "—"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Estimate):
        if value.interval is None:
            return format_value(value.value, digits)
        return f"{format_value(value.value, digits)} [{format_value(value.ci_low, digits)}, " \
               f"{format_value(value.ci_high, digits)}]"
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
