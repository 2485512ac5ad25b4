"""Rendering results: aligned text tables for people, one JSON object for programs."""
from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

import click

from ..results import format_value as fmt, to_jsonable


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one JSON object (NaN/Inf become null)."""
    click.echo(json.dumps(to_jsonable(obj), allow_nan=False))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str] | None = None) -> str:
    """Left-aligned text columns; the first row is ``headers`` when given."""
    cells = [[fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]
    if headers:
        cells.insert(0, list(headers))
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(len(r) for r in cells))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    if headers:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def calibration_cells(calibrations: dict) -> list[str]:
    """One line per calibrated score: the score, what chance gives, and the calibrated value."""
    lines = []
    for name, cal in calibrations.items():
        if cal is not None:
            lines.append(f"calibrated {name}: {fmt(cal.calibrated)}   (score {fmt(cal.value)}, chance τ = {fmt(cal.tau)} "
                         f"at α = {cal.alpha:g}, null mean {fmt(cal.null_mean)}, p = {fmt(cal.p_value)}, "
                         f"{cal.n_permutations} shuffles)")
    return lines


def echo_notes(notes: Iterable[str]) -> None:
    for note in notes:
        click.echo(f"note: {note}")


def provenance_lines(**embs) -> list[str]:
    """One line per input that carries provenance (the sidecar ``latentlab embed`` writes)."""
    keys = ("model", "modality", "file_layer", "layers", "pooling", "normalize", "count")
    lines = []
    for label, emb in embs.items():
        prov = getattr(emb, "provenance", None) or {}
        shown = [f"{k}={prov[k]}" for k in keys if k in prov]
        if shown:
            lines.append(f"provenance {label}: " + ", ".join(shown))
    return lines
