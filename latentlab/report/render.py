"""What the HTML (:mod:`.render_html`) and Markdown (:mod:`.render_md`) renderings share: the
key/value rows of a section, real-table cells, undefined values with their reasons, escaping."""
from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass

import numpy as np

from ..plot.style import figure_bytes
from ..results import Estimate, format_value

CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;color:#1b1b1b}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}td,th{border:1px solid #ddd;padding:.2rem .55rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.num{font-variant-numeric:tabular-nums;text-align:right}
.reading{color:#333;background:#f6f8fa;border-left:3px solid #0072B2;padding:.4rem .7rem}
.skipped{color:#8a5a00;background:#fff6e0;border-left:3px solid #E69F00;padding:.4rem .7rem}
figure{margin:.8rem 0}figure img{max-width:100%;height:auto}pre{background:#f6f8fa;padding:.5rem .7rem;
overflow-x:auto;font-size:.82rem}nav a{margin-right:.8rem}.note{color:#555;font-size:.85rem}
th{white-space:nowrap}th.num{text-align:right}th[title]{cursor:help}td.text{color:#333;max-width:34rem}
.reading p{margin:.25rem 0}td.chance,td.cal{font-variant-numeric:tabular-nums;text-align:right;color:#555}
td.cal.strong{color:#1b1b1b}tr.undefined td{color:#999}td.undefined{font-style:italic;cursor:help}
sup{font-size:.7em;line-height:0}.footnote{color:#777;font-size:.82rem;margin:.15rem 0}
caption{caption-side:top;text-align:left;font-weight:600;padding:.2rem 0}table.summary td.text{max-width:30rem}
table.summary td.num{white-space:nowrap}
.runs{display:flex;flex-wrap:wrap;gap:1rem}.runs>div{flex:1 1 24rem;min-width:0}.runs h3{font-size:1rem;margin:.4rem 0}
body.compare{max-width:90rem}
"""

#: how a value that is None (or not finite) reads in a table: never as a number
UNDEFINED = "undefined"
#: keys whose None means "not requested" (a method description, not a value): left out of the tables
NOT_VALUES = ("notes", "permutation", "bootstrap")


def flatten(numbers: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested numbers as (dotted key, value) rows; lists of scalars shown inline."""
    rows: list[tuple[str, object]] = []
    for key, value in numbers.items():
        name = f"{prefix}{key}"
        if value is None and key in NOT_VALUES or (isinstance(value, (list, dict)) and not value):
            continue
        if isinstance(value, Estimate) or not isinstance(value, (dict, list)):
            rows.append((name, value))
        elif isinstance(value, dict):
            rows.extend(flatten(value, f"{name}."))
        elif value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                rows.extend(flatten(v, f"{name}[{i}]."))
        else:
            rows.append((name, ", ".join(format_value(v, 3) for v in value[:12]) + (" …" if len(value) > 12 else "")))
    return rows


def is_undefined(value) -> bool:
    """None, NaN or ±inf (also as an Estimate's value): a degenerate value, shown greyed, never as a number."""
    if isinstance(value, Estimate):
        value = value.value
    if value is None:
        return True
    return isinstance(value, (float, np.floating)) and not math.isfinite(float(value))


#: a note naming the keys it is about: "pwcca undefined: …", "svcca and pwcca undefined: …"
KEYED_NOTE = re.compile(r"^[\w.\[\]]+(?:(?:,\s*|\s+and\s+)[\w.\[\]]+)*\s+(?:is\s+|are\s+)?undefined:")


def undefined_reason(key: str, notes) -> tuple[str | None, str | None]:
    """(reason, note) for an undefined ``key``: the first note whose leading clause names it.

    A note belongs to a key when it starts with the key's name ("pwcca undefined: ranks …")
    or its clause before the colon lists it ("svcca and pwcca undefined: …"); the dotted
    key's last part counts too (``A.effective_rank`` ↔ "effective_rank …"). Failing that, a
    note that says "undefined" about no key in particular ("A: every column is constant …;
    CKA is undefined") is the reason, preferring one that starts with a part of the key
    ("A: …" for ``A.effective_rank``).
    """
    parts = [re.sub(r"\[\d+\]$", "", p) for p in key.split(".")]
    names = {key, parts[-1]}
    general = []
    for note in notes or ():
        head, colon, rest = note.partition(":")
        listed = re.split(r",\s*|\s+and\s+", re.sub(r"\s+(is|are)?\s*undefined$", "", head.strip()))
        if colon and names & set(listed):
            return rest.strip(), note
        for name in names:
            if re.match(rf"{re.escape(name)}\b", note):
                return (note[len(name):].strip(" :") or note), note
        if re.search(r"\bundefined\b", note) and not KEYED_NOTE.match(note):
            general.append((head.strip() in parts[:-1], note))
    if general:
        note = next((n for own, n in general if own), general[0][1])
        return note, note
    return None, None


@dataclass
class Row:
    """One quantity of a section's table, with its chance value and calibration when it has them."""

    key: str
    value: object
    chance: object = None  # expected value without shared structure (``<key>_chance``)
    cal: dict | None = None  # calibrated, tau, p_value, … (``calibration.<key>``)
    reason: str | None = None  # why the value is undefined
    note: str | None = None  # the section note the reason came from

    @property
    def undefined(self) -> bool:
        return is_undefined(self.value)


def table_rows(section) -> list[Row]:
    """The rows of a section's table: ``flatten(numbers)`` with ``<key>_chance`` and
    ``calibration.<key>`` moved beside ``<key>``, hidden keys dropped, and every undefined
    value given its reason from the section's notes."""
    numbers = dict(section.numbers)
    numbers.pop("ci", None)  # intervals of a result's to_dict(): shown with their values where kept as Estimates
    cal = numbers.pop("calibration", None)
    cal = {k: (c.to_dict() if hasattr(c, "to_dict") else c) for k, c in cal.items()} if isinstance(cal, dict) else {}
    hidden = set(getattr(section, "hide", ()) or ())
    flat = [(k, v) for k, v in flatten(numbers)
            if k not in hidden and not any(k.startswith((h + ".", h + "[")) for h in hidden)]
    values = {k for k, _ in flat}
    rows = [Row(k, v) for k, v in flat if not (k.endswith("_chance") and k[: -len("_chance")] in values)]
    by_key = {r.key: r for r in rows}
    for k, v in flat:
        if k.endswith("_chance") and k[: -len("_chance")] in by_key:
            by_key[k[: -len("_chance")]].chance = v
    leftover = {}
    for name, c in cal.items():
        if name in by_key and isinstance(c, dict):
            by_key[name].cal = c
        else:
            leftover[name] = c
    rows += [Row(k, v) for k, v in flatten({"calibration": leftover})] if leftover else []
    for r in rows:
        if r.undefined:
            r.reason, r.note = undefined_reason(r.key, section.notes)
    return rows


def _columns(rows: list[Row]) -> dict[str, bool]:
    return {"chance": any(r.chance is not None for r in rows), "cal": any(r.cal for r in rows)}


def _cal_help(rows: list[Row]) -> str:
    c = next((r.cal for r in rows if r.cal), {})
    k, alpha = c.get("n_permutations"), c.get("alpha")
    level = f"{1 - alpha:.0%}" if isinstance(alpha, (int, float)) else "(1 − α)"
    return f"the {level} quantile of the score over {k or 'K'} shufflings of B's rows (unrelated pairs)"


def _chance_cell(row: Row) -> str:
    return "" if row.chance is None or is_undefined(row.chance) else format_value(row.chance)


def md_text(text) -> str:
    """User-provided text (file names, titles, notes) made inert in Markdown: no raw HTML tag or entity."""
    return html.escape(str(text), quote=False)


def _md_cell(text) -> str:
    """A table cell: escaped text, no pipe ending the cell early, no line break ending the row."""
    return " ".join(md_text(text).split()).replace("|", "\\|")


def _md_alt(text) -> str:
    """Image alt text: escaped text with no bracket ending the alt text early."""
    return re.sub(r"([\\\[\]])", r"\\\1", " ".join(md_text(text).split()))


def _md_code(text) -> str:
    """An inline code span of ``text``; text with ``<``, ``>`` or ``&`` becomes escaped plain text instead
    (a code span would show an entity as typed), and the backtick fence is longer than any run inside."""
    text = " ".join(str(text).split())
    if re.search(r"[<>&]", text):
        return re.sub(r"([\\`*_\[\]])", r"\\\1", md_text(text))
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_fence(lines) -> str:
    """A code-block fence longer than any backtick run in ``lines``, so no line can close the block."""
    return "`" * max(3, max((len(m) for x in lines for m in re.findall(r"`+", x)), default=0) + 1)


def _png_b64(fig) -> str:
    return base64.b64encode(figure_bytes(fig, "png")).decode("ascii")


def cell_text(value) -> str:
    """A real-table cell: text as given, numbers as in the key/value tables, None as undefined."""
    if isinstance(value, str):
        return value
    return UNDEFINED if is_undefined(value) else format_value(value)


def cell_reason(table, row: int, col: int, notes) -> str | None:
    """Why cell (row, col) of ``table`` is undefined: the note about ``<column key>.<row label>``, or the row's."""
    label = str(table.rows[row][0])
    key = (table.col_keys or table.columns[1:])[col - 1]
    return undefined_reason(f"{key}.{label}", notes)[0] or undefined_reason(label, notes)[0]


def slug(title: str) -> str:
    """The anchor GitHub and most Markdown renderers give a heading: lower case, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
