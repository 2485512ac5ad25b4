"""What every report section is made of: the :class:`Context` it runs in, the :class:`Section`
it returns (numbers, reading, figures, real tables, summary items, reproduce commands) and
the wording helpers the sections share.

A section returns a :class:`Section` with its numbers, one line on how to read them, the
figure, and the exact command that reproduces the numbers. Sections that do not apply
(unpaired inputs, different dimensions) return ``skipped`` with the reason.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..results import Estimate, to_jsonable



@dataclass
class Context:
    """What every section needs: the inputs as given on the command line, and the settings."""

    a: Any
    b: Any
    spec_a: str
    spec_b: str
    name_a: str
    name_b: str
    paired: bool
    same_dim: bool
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    bootstrap: int = 200
    projection: str = "pca"
    calibrate: int = 100  # shufflings of B's rows for null-calibrated scores (0 = none)
    alpha: float = 0.05
    text_a: Any = None  # one string per row (file spec or list) for the interactive view
    text_b: Any = None
    labels: Any = None
    view_args: list = field(default_factory=list)  # how the command line named them (reproduce commands)
    _projection: dict | None = field(default=None, repr=False)

    def joint_projection(self) -> dict:
        """The 2-D joint projection of both sets, computed once per report: the static figure and
        the interactive view show the same coordinates (and UMAP is paid once)."""
        if self._projection is None:
            from ..plot.data import joint_projection

            self._projection = joint_projection(self.a.data, self.b.data, method=self.projection, seed=self.seed)
        return self._projection

    def cmd(self, *words: str) -> str:
        quoted = [shlex.quote(w) for w in words]
        opts = ([] if self.seed == 0 else ["--seed", str(self.seed)]) + \
            ([] if self.dtype == "float32" else ["--dtype", self.dtype])
        return " ".join(["latentlab", *quoted, *opts])

    @property
    def boot(self) -> int | None:
        return self.bootstrap or None

    @property
    def cal(self) -> int | None:
        return self.calibrate or None

    @property
    def cal_args(self) -> list[str]:
        return ["--calibrate", str(self.calibrate)] if self.calibrate else []

    @property
    def kw(self) -> dict:
        return {"device": self.device, "dtype": self.dtype}


@dataclass
class Section:
    key: str
    title: str
    reading: str = ""
    numbers: dict = field(default_factory=dict)
    figures: list = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    #: keys of ``numbers`` left out of the quantity/value table (still in JSON): parameters of absent
    #: values, and everything a :class:`Table` below shows as a real table
    hide: list[str] = field(default_factory=list)
    #: real tables (rows × columns) for the nested numbers: the shift, retrieval, stitching, …
    tables: list["Table"] = field(default_factory=list)
    #: this section's items of the report's summary (see :mod:`.summary`)
    summary: list[dict] = field(default_factory=list)
    #: a trusted HTML fragment made by latentlab (the interactive view); Markdown links to the HTML instead
    html: str | None = None

    def table(self, key: str, title: str, columns: list[str], rows: list[list], *, hides=(), note: str = "",
              col_keys: list[str] | None = None) -> None:
        """Add a real table; ``hides`` are the keys of ``numbers`` it shows (dropped from the key/value table)."""
        self.tables.append(Table(key, title, columns, rows, note, col_keys))
        self.hide += [h for h in hides if h not in self.hide]

    def to_dict(self) -> dict:
        out = {"title": self.title, "reading": self.reading, "commands": self.commands}
        if self.skipped:
            out["skipped"] = self.skipped
        else:
            out["numbers"] = to_jsonable(self.numbers)
        if self.notes:
            out["notes"] = self.notes
        return out


@dataclass
class Table:
    """A real table: ``columns[0]`` heads the row labels; each row is ``[label, cell, …]``.

    A cell is a number, an :class:`~latentlab.results.Estimate`, text, or None (undefined:
    shown greyed with the reason the section's notes give for ``<column key>.<row>`` or ``<row>``).
    """

    key: str
    title: str
    columns: list[str]
    rows: list[list]
    note: str = ""
    #: the names notes use for the value columns ("A", "B"), when the headers show display names
    col_keys: list[str] | None = None


def value_of(x) -> float | None:
    return None if x is None else float(x.value if isinstance(x, Estimate) else x)


def calibration_numbers(cal) -> dict:
    """A :class:`~latentlab.stats.Calibration` as the report shows it (the value itself sits beside it)."""
    return {"calibrated": cal.calibrated, "tau": cal.tau, "p_value": cal.p_value,
            "n_permutations": cal.n_permutations, "alpha": cal.alpha}


def is_finite(x) -> bool:
    v = value_of(x)
    return v is not None and bool(np.isfinite(v))


def short(x: float) -> str:
    return f"{x:.2f}" if abs(x) >= 0.1 or x == 0 else f"{x:.2g}"


def small_k_note(ctx: Context) -> list[str]:
    """τ is the ⌈(1 − α)(K + 1)⌉-th smallest of K + 1 scores: below (1 − α)/α shufflings it is the largest."""
    least = int(np.ceil((1 - ctx.alpha) / ctx.alpha - 1e-9))
    if 0 < ctx.calibrate < least:
        return [f"--calibrate {ctx.calibrate} < {least}: with so few shufflings τ is the largest of the "
                f"{ctx.calibrate + 1} scores, so every calibrated value is 0 whatever the data; use at least {least}"]
    return []


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def chance_words(label: str, value, cal, expected: float | None = None) -> str:
    """One line on a score against its null: "linear CKA 0.64 is well above chance (τ = 0.09): calibrated 0.60"."""
    v = value_of(value)
    chance = (f"expected {short(expected)}, " if expected is not None else "") + f"τ = {short(cal.tau)}"
    if cal.calibrated <= 0:
        return f"{label} {short(v)} is within chance ({chance}): calibrated 0"
    grade = "just above" if cal.calibrated < 0.1 else "above" if cal.calibrated < 0.3 else "well above"
    return f"{label} {short(v)} is {grade} chance ({chance}): calibrated {short(cal.calibrated)}"


def ci_of(x) -> tuple[float | None, float | None]:
    return (x.ci_low, x.ci_high) if isinstance(x, Estimate) else (None, None)


