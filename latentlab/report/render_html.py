"""The report as one self-contained HTML file: figures as base64 PNG, the interactive view as inline
script and SVG (:mod:`.interactive`), no network."""
from __future__ import annotations

import datetime as _dt
import html
import re

from ..results import format_value
from .render import (CSS, UNDEFINED, _cal_help, _chance_cell, _columns, _png_b64, cell_reason, cell_text,
                     is_undefined, table_rows)
from .summary import interval, reference_text

e = html.escape


def page(title: str, body: list[str]) -> str:
    return "\n".join(["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
                      "<meta name='viewport' content='width=device-width,initial-scale=1'>",
                      f"<title>{e(title)}</title><style>{CSS}</style></head><body>", *body, "</body></html>"])


def stamp(report) -> str:
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f"latentlab {e(report.to_dict()['latentlab_version'])} · {when} · {report.seconds:.1f} s · "
            f"seed {report.settings['seed']} · dtype {e(report.settings['dtype'])}")


def render_html(report) -> str:
    a, b = report.inputs["a"], report.inputs["b"]
    title = f"latentlab report: {a['name']} vs {b['name']}"
    parts = [f"<h1>{e(title)}</h1>", f"<p class='note'>{stamp(report)}</p>",
             "<table><tr><th></th><th>file</th><th>rows</th><th>dims</th><th>provenance</th></tr>"]
    for label, inp in (("A", a), ("B", b)):
        prov = ", ".join(f"{k}: {v}" for k, v in list(inp["provenance"].items())[:6]) or "—"
        parts.append(f"<tr><th>{label}</th><td>{e(inp['spec'])}</td><td class='num'>{inp['n']}</td>"
                     f"<td class='num'>{inp['dim']}</td><td>{e(prov)}</td></tr>")
    parts.append(f"</table><p>Inputs are {'row-paired (row i of A ↔ row i of B)' if report.inputs['paired'] else 'unpaired'}.</p>")
    parts.append(nav(report.sections))
    parts += summary_html(report.summary())
    for s in report.sections:
        parts.append(f"<section id='{s.key}'><h2>{e(s.title)}</h2>")
        parts += section_body(s)
        parts.append("</section>")
    return page(title, parts)


def nav(sections) -> str:
    return ("<nav><a href='#summary'>Summary</a>"
            + "".join(f"<a href='#{s.key}'>{e(s.title)}</a>" for s in sections) + "</nav>")


def summary_html(items: list[dict]) -> list[str]:
    """The summary table: each number with its interval, its chance or baseline, and a verdict in words."""
    out = ["<section id='summary'><h2>Summary</h2>"]
    if not items:
        return out + ["<p class='note'>No section with a summary number ran.</p></section>"]
    out.append("<table class='summary'><tr><th>quantity</th><th class='num'>value</th>"
               "<th class='num'>95% CI</th><th>chance / baseline</th><th>verdict</th></tr>")
    for it in items:
        out.append(f"<tr><td><a href='#{e(it['section'])}'>{e(it['label'])}</a></td>" + summary_cells(it) + "</tr>")
    return out + ["</table>", "<p class='note'>Verdicts are rules of thumb; each names the threshold it used.</p>",
                  "</section>"]


def summary_cells(it: dict) -> str:
    value = UNDEFINED if it["value"] is None else format_value(it["value"], 3)
    ci = "[{}, {}]".format(*(format_value(x, 3) for x in interval(it))) if interval(it) else ""
    return (f"<td class='num'>{e(value)}</td><td class='num'>{e(ci)}</td><td>{e(reference_text(it))}</td>"
            f"<td class='text'>{e(it['verdict'])}</td>")


def figure_html(fig, alt: str) -> str:
    width = fig.get_size_inches()[0] * 150  # a paper-column figure shows ~510 px wide
    return (f"<figure><img alt='{e(alt)}' style='width:{width:.0f}px' "
            f"src='data:image/png;base64,{_png_b64(fig)}'></figure>")


def reading_html(text: str) -> str:
    lines = text.split("\n")
    return (f"<p class='reading'>{e(lines[0])}</p>" if len(lines) == 1 else
            "<div class='reading'>" + "".join(f"<p>{e(x)}</p>" for x in lines) + "</div>")


def section_body(s, figures: bool = True, generic: bool = True) -> list[str]:
    """Reading, figures, real tables, the key/value table (unless ``generic`` is False: a comparison shows
    it across runs), the reproduce commands and notes of one section."""
    if s.skipped:
        return [f"<p class='skipped'>Skipped: {e(s.skipped)}</p>"]
    parts = [reading_html(s.reading)]
    if figures:
        parts += [figure_html(fig, f"{s.title} figure") for fig in s.figures]
        if s.html:
            parts.append(s.html)
    parts += section_tables(s, generic)
    parts.append("<p>Reproduce:</p><pre><code>" + e("\n".join(s.commands)) + "</code></pre>")
    shown = {r.note for r in table_rows(s) if r.note}
    parts += [f"<p class='note'>note: {e(n)}</p>" for n in s.notes if n not in shown]
    return parts


def section_tables(s, generic: bool = True) -> list[str]:
    out = []
    for t in s.tables:
        out += real_table_html(t, s.notes)
    return out + (_html_table(s) if generic and table_rows(s) else [])


def real_table_html(t, notes) -> list[str]:
    """A :class:`~.section.Table`: row labels, then one column per header; undefined cells greyed with the reason."""
    out = [f"<table class='real'><caption>{e(t.title)}</caption><tr>"
           + "".join(f"<th{'' if j == 0 else ' class=num'}>{e(c)}</th>" for j, c in enumerate(t.columns)) + "</tr>"]
    reasons: dict[str, int] = {}
    for i, row in enumerate(t.rows):
        cells = [f"<td>{e(str(row[0]))}</td>"]
        for j, v in enumerate(row[1:], start=1):
            if not isinstance(v, str) and is_undefined(v):
                reason = cell_reason(t, i, j, notes)
                mark = f"<sup>{reasons.setdefault(reason, len(reasons) + 1)}</sup>" if reason else ""
                cells.append(f"<td class='num undefined' title='{e(reason or 'no value for these inputs')}'>"
                             f"{UNDEFINED}{mark}</td>")
            else:
                cells.append(f"<td class='{'text' if isinstance(v, str) and not _signed(v) else 'num'}'>"
                             f"{e(cell_text(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    out += [f"<p class='footnote'><sup>{n}</sup> {UNDEFINED}: {e(r)}</p>" for r, n in reasons.items()]
    return out + ([f"<p class='note'>{e(t.note)}</p>"] if t.note else [])


def _signed(text: str) -> bool:
    return bool(re.fullmatch(r"[+\-−]?\d+(\.\d+)?", text))


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


