"""Report rendering: one self-contained HTML file (figures as base64 PNG), or Markdown."""
from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

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
    cal = numbers.pop("calibration", None)
    cal = {k: (c.to_dict() if hasattr(c, "to_dict") else c) for k, c in cal.items()} if isinstance(cal, dict) else {}
    hidden = set(getattr(section, "hide", ()) or ())
    flat = [(k, v) for k, v in flatten(numbers)
            if k not in hidden and not any(k.startswith(h + ".") for h in hidden)]
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


def render_html(report) -> str:
    e = html.escape
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    a, b = report.inputs["A"], report.inputs["B"]
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width,initial-scale=1'>",
             f"<title>latentlab report: {e(a['name'])} vs {e(b['name'])}</title><style>{CSS}</style></head><body>",
             f"<h1>latentlab report: {e(a['name'])} vs {e(b['name'])}</h1>",
             f"<p class='note'>latentlab {e(report.to_dict()['latentlab_version'])} · {stamp} · "
             f"{report.seconds:.1f} s · seed {report.settings['seed']} · dtype {e(report.settings['dtype'])}</p>",
             "<table><tr><th></th><th>file</th><th>rows</th><th>dims</th><th>provenance</th></tr>"]
    for label, inp in (("A", a), ("B", b)):
        prov = ", ".join(f"{k}: {v}" for k, v in list(inp["provenance"].items())[:6]) or "—"
        parts.append(f"<tr><th>{label}</th><td>{e(inp['spec'])}</td><td class='num'>{inp['n']}</td>"
                     f"<td class='num'>{inp['dim']}</td><td>{e(prov)}</td></tr>")
    parts.append(f"</table><p>Inputs are {'row-paired (row i of A ↔ row i of B)' if report.inputs['paired'] else 'unpaired'}.</p>")
    parts.append("<nav>" + "".join(f"<a href='#{s.key}'>{e(s.title)}</a>" for s in report.sections) + "</nav>")
    for s in report.sections:
        parts.append(f"<section id='{s.key}'><h2>{e(s.title)}</h2>")
        if s.skipped:
            parts.append(f"<p class='skipped'>Skipped: {e(s.skipped)}</p></section>")
            continue
        lines = s.reading.split("\n")
        parts.append(f"<p class='reading'>{e(lines[0])}</p>" if len(lines) == 1 else
                     "<div class='reading'>" + "".join(f"<p>{e(x)}</p>" for x in lines) + "</div>")
        for fig in s.figures:
            width = fig.get_size_inches()[0] * 150  # a paper-column figure shows ~510 px wide
            parts.append(f"<figure><img alt='{e(s.title)} figure' style='width:{width:.0f}px' "
                         f"src='data:image/png;base64,{_png_b64(fig)}'></figure>")
        parts += _html_table(s)
        parts.append("<p>Reproduce:</p><pre><code>" + e("\n".join(s.commands)) + "</code></pre>")
        shown = {r.note for r in table_rows(s) if r.note}
        parts += [f"<p class='note'>note: {e(n)}</p>" for n in s.notes if n not in shown]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_table(s) -> list[str]:
    """A section's numbers as an HTML table; undefined values greyed with their reason as a footnote."""
    e = html.escape
    rows = table_rows(s)
    cols = _columns(rows)
    head = "<tr><th>quantity</th><th class='num'>value</th>"
    if cols["chance"]:
        head += ("<th class='num' title='expected value without shared structure (random subspaces, random "
                 "neighbours)'>chance</th>")
    if cols["cal"]:
        head += (f"<th class='num' title='{e(_cal_help(rows))}'>chance τ</th>"
                 "<th class='num' title='clamp((value − τ)/(best − τ), 0, 1): 0 = no better than chance, 1 = the "
                 "best attainable'>calibrated</th><th class='num' title='add-one permutation p-value'>p</th>")
    out = ["<table class='numbers'>", head + "</tr>"]
    footnotes: dict[str, int] = {}
    extra = (1 if cols["chance"] else 0) + (3 if cols["cal"] else 0)
    for r in rows:
        cells = [f"<td>{e(r.key)}</td>"]
        if r.undefined:
            mark = ""
            if r.reason:
                n = footnotes.setdefault(r.reason, len(footnotes) + 1)
                mark = f"<sup>{n}</sup>"
            title = r.reason or "no value for these inputs"
            cells.append(f"<td class='num undefined' title='{e(title)}'>{UNDEFINED}{mark}</td>")
        elif isinstance(r.value, str) and not (r.chance is not None or r.cal):
            # text (a rule, a method, a list): left-aligned across the chance columns
            span = f" colspan='{1 + extra}'" if extra else ""
            out.append(f"<tr>{cells[0]}<td class='text'{span}>{e(r.value)}</td></tr>")
            continue
        else:
            cells.append(f"<td class='num'>{e(format_value(r.value))}</td>")
        if cols["chance"]:
            cells.append(f"<td class='chance'>{e(_chance_cell(r))}</td>")
        if cols["cal"]:
            c = r.cal or {}
            cells += [f"<td class='chance'>{e(format_value(c['tau']) if c else '')}</td>",
                      f"<td class='cal strong'>{e(format_value(c['calibrated']) if c else '')}</td>",
                      f"<td class='cal'>{e(format_value(c['p_value']) if c else '')}</td>"]
        out.append(("<tr class='undefined'>" if r.undefined else "<tr>") + "".join(cells) + "</tr>")
    out.append("</table>")
    for reason, n in footnotes.items():
        keys = ", ".join(r.key for r in rows if r.reason == reason)
        said = re.search(rf"\b{UNDEFINED}\b", reason)  # a general note says "… is undefined" itself
        out.append(f"<p class='footnote'><sup>{n}</sup> {e(keys)}{':' if said else ' ' + UNDEFINED + ':'} "
                   f"{e(reason)}</p>")
    return out


def _md_table(s) -> list[str]:
    rows = table_rows(s)
    cols = _columns(rows)
    head = ["quantity", "value"] + (["chance"] if cols["chance"] else []) + (
        ["chance τ", "calibrated", "p"] if cols["cal"] else [])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        if r.undefined:
            value = f"— ({UNDEFINED}: {r.reason})" if r.reason else f"— ({UNDEFINED})"
        else:
            value = format_value(r.value)
        cells = [r.key, value] + ([_chance_cell(r)] if cols["chance"] else [])
        if cols["cal"]:
            c = r.cal or {}
            cells += [format_value(c[k]) if c else "" for k in ("tau", "calibrated", "p_value")]
        lines.append("| " + " | ".join(_md_cell(x) for x in cells) + " |")
    return lines


def render_markdown(report, figure_dir: Path | None = None, link_prefix: str = "") -> str:
    """The report as Markdown; every user-provided text (names, titles, notes, cells) is escaped so that a
    file named ``<img src=x …>.npy`` shows as text and adds no HTML. The reproduce commands stay verbatim
    in a fenced code block (shown as typed, never read as HTML) so they can be copied and run."""
    m = md_text
    a, b = report.inputs["A"], report.inputs["B"]
    lines = [f"# latentlab report: {m(a['name'])} vs {m(b['name'])}", "",
             f"A: {_md_code(a['spec'])} ({a['n']} × {a['dim']}) · B: {_md_code(b['spec'])} ({b['n']} × {b['dim']}) · "
             f"{'paired' if report.inputs['paired'] else 'unpaired'} · {report.seconds:.1f} s", ""]
    for s in report.sections:
        lines += [f"## {m(s.title)}", ""]
        if s.skipped:
            lines += [f"*Skipped: {m(s.skipped)}*", ""]
            continue
        lines += ["\n>\n".join(f"> {m(line)}" for line in s.reading.split("\n")), ""]
        if figure_dir is not None:
            from ..plot.style import save_figure

            for i, fig in enumerate(s.figures):
                name = f"{s.key}{'' if i == 0 else i + 1}.png"
                save_figure(fig, Path(figure_dir) / name)
                lines += [f"![{_md_alt(s.title)}]({quote(link_prefix + name)})", ""]
        lines += _md_table(s)
        fence = _md_fence(s.commands)
        lines += ["", f"{fence}sh", *s.commands, fence, ""]
        shown = {r.note for r in table_rows(s) if r.note}
        notes = [f"note: {m(n)}" for n in s.notes if "Traceback" not in n and n not in shown]
        lines += [x for n in notes for x in (n, "")]
    return "\n".join(lines) + "\n"
