"""The report as Markdown, its figures as PNG files beside it.

Every user-provided text (names, titles, notes, cells) is escaped so that a file named
``<img src=x …>.npy`` shows as text and adds no HTML; the reproduce commands stay verbatim in
a fenced code block (shown as typed, never read as HTML) so they can be copied and run.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from ..results import format_value
from .render import (UNDEFINED, _chance_cell, _columns, _md_alt, _md_cell, _md_code, _md_fence, cell_reason,
                     cell_text, is_undefined, md_text, slug, table_rows)
from .summary import interval, reference_text


def render_markdown(report, figure_dir: Path | None = None, link_prefix: str = "") -> str:
    m = md_text
    a, b = report.inputs["a"], report.inputs["b"]
    lines = [f"# latentlab report: {m(a['name'])} vs {m(b['name'])}", "",
             f"A: {_md_code(a['spec'])} ({a['n']} × {a['dim']}) · B: {_md_code(b['spec'])} ({b['n']} × {b['dim']}) · "
             f"{'paired' if report.inputs['paired'] else 'unpaired'} · {report.seconds:.1f} s", ""]
    lines += summary_md(report.summary(), {s.key: s.title for s in report.sections})
    for s in report.sections:
        lines += [f"## {m(s.title)}", ""]
        lines += section_md(s, figure_dir, link_prefix)
    return "\n".join(lines) + "\n"


def summary_md(items: list[dict], titles: dict[str, str]) -> list[str]:
    lines = ["## Summary", ""]
    if not items:
        return lines + ["No section with a summary number ran.", ""]
    lines += ["| quantity | value | 95% CI | chance / baseline | verdict |", "| --- | --- | --- | --- | --- |"]
    for it in items:
        lines.append("| " + " | ".join([f"[{_md_cell(it['label'])}](#{slug(titles.get(it['section'], it['section']))})",
                                         *(_md_cell(c) for c in summary_cells(it))]) + " |")
    return lines + ["", "Verdicts are rules of thumb; each names the threshold it used.", ""]


def summary_cells(it: dict) -> list[str]:
    value = UNDEFINED if it["value"] is None else format_value(it["value"], 3)
    ci = "[{}, {}]".format(*(format_value(x, 3) for x in interval(it))) if interval(it) else ""
    return [value, ci, reference_text(it), it["verdict"]]


def section_md(s, figure_dir: Path | None, link_prefix: str, figure_stem: str | None = None,
               generic: bool = True) -> list[str]:
    """One section's body: reading, figures (written to ``figure_dir``), tables, commands, notes."""
    m = md_text
    if s.skipped:
        return [f"*Skipped: {m(s.skipped)}*", ""]
    lines = ["\n>\n".join(f"> {m(line)}" for line in s.reading.split("\n")), ""]
    if figure_dir is not None:
        lines += figures_md(s, figure_dir, link_prefix, figure_stem or s.key)
    if s.html:
        lines += ["*Interactive: open the HTML report (or run the command below) for this view.*", ""]
    for t in s.tables:
        lines += real_table_md(t, s.notes) + [""]
    if generic and table_rows(s):
        lines += _md_table(s)
    fence = _md_fence(s.commands)
    lines += ["", f"{fence}sh", *s.commands, fence, ""]
    shown = {r.note for r in table_rows(s) if r.note}
    notes = [f"note: {m(n)}" for n in s.notes if "Traceback" not in n and n not in shown]
    return lines + [x for n in notes for x in (n, "")]


def figures_md(s, figure_dir: Path, link_prefix: str, stem: str) -> list[str]:
    from ..plot.style import save_figure

    lines = []
    for i, fig in enumerate(s.figures):
        name = f"{stem}{'' if i == 0 else i + 1}.png"
        save_figure(fig, Path(figure_dir) / name)
        lines += [f"![{_md_alt(s.title)}]({quote(link_prefix + name)})", ""]
    return lines


def real_table_md(t, notes) -> list[str]:
    lines = [f"**{md_text(t.title)}**", "", "| " + " | ".join(_md_cell(c) for c in t.columns) + " |",
             "|" + " --- |" * len(t.columns)]
    for i, row in enumerate(t.rows):
        cells = [str(row[0])]
        for j, v in enumerate(row[1:], start=1):
            if not isinstance(v, str) and is_undefined(v):
                reason = cell_reason(t, i, j, notes)
                cells.append(f"— ({UNDEFINED}: {reason})" if reason else f"— ({UNDEFINED})")
            else:
                cells.append(cell_text(v))
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return lines + (["", md_text(t.note)] if t.note else [])


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


