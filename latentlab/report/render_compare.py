"""A :class:`~.compare.Comparison` rendered side by side: the summary as one column per run,
each section's key numbers as one column per run, then each run's section (reading,
figures, tables) in columns next to the others'."""
from __future__ import annotations

import html
import re
from pathlib import Path

from ..results import format_value
from .render import UNDEFINED, _md_cell, is_undefined, md_text, slug, table_rows
from .render_html import nav, page, section_body, stamp
from .render_md import section_md
from .summary import interval, reference_text

e = html.escape


def _cell(it: dict | None) -> tuple[str, str]:
    """(value with interval and chance/baseline, verdict) of a summary item in one run."""
    if it is None:
        return "—", "not run or not applicable"
    value = UNDEFINED if it["value"] is None else format_value(it["value"], 3)
    if interval(it):
        value += " [{}, {}]".format(*(format_value(x, 3) for x in interval(it)))
    ref = reference_text(it)
    return (f"{value} ({ref})" if ref else value), it["verdict"]


def key_numbers(cmp, key: str) -> list[tuple[str, dict]]:
    """A section's numbers across runs: its summary items, then the scalar rows of its key/value table."""
    rows: dict[str, dict] = {}
    for run in cmp.runs:
        s = cmp.section(run, key)
        if s is None or s.skipped:
            continue
        scalars = [r for r in table_rows(s) if not isinstance(r.value, str)]
        for it in ([] if scalars else s.summary):  # sections whose numbers are all in real tables
            rows.setdefault(it["label"], {})[run] = it["value"]
        for r in scalars:
            rows.setdefault(r.key, {})[run] = r.value
    return list(rows.items())


def _number(v) -> str:
    return UNDEFINED if is_undefined(v) else format_value(v)


def comparison_html(cmp) -> str:
    runs = list(cmp.runs)
    title = f"latentlab comparison: {' vs '.join(runs)}"
    first = next(iter(cmp.runs.values()))
    parts = [f"<h1>{e(title)}</h1>", f"<p class='note'>{stamp(first)} · {cmp.seconds:.1f} s in all</p>",
             "<table><tr><th>run</th><th>A</th><th>B</th><th>rows</th><th>dims</th><th>paired</th></tr>"]
    for name, rep in cmp.runs.items():
        a, b = rep.inputs["a"], rep.inputs["b"]
        parts.append(f"<tr><th>{e(name)}</th><td>{e(a['spec'])}</td><td>{e(b['spec'])}</td>"
                     f"<td class='num'>{a['n']} / {b['n']}</td><td class='num'>{a['dim']} / {b['dim']}</td>"
                     f"<td>{'yes' if rep.inputs['paired'] else 'no'}</td></tr>")
    parts.append("</table>")
    parts.append(nav([s for s in first.sections]))
    head = "<tr><th>quantity</th>" + "".join(f"<th>{e(r)}</th>" for r in runs) + "</tr>"
    parts += ["<section id='summary'><h2>Summary</h2><table class='summary'>", head]
    for row in cmp.summary_rows():
        cells = []
        for run in runs:
            value, verdict = _cell(row["values"][run])
            cells.append(f"<td><span class='num'>{e(value)}</span><br><span class='note'>{e(verdict)}</span></td>")
        parts.append(f"<tr><td><a href='#{e(row['section'])}'>{e(row['label'])}</a></td>{''.join(cells)}</tr>")
    parts += ["</table><p class='note'>Verdicts are rules of thumb; each names the threshold it used.</p></section>"]
    for key in cmp.section_keys():
        title_s = next(cmp.section(r, key).title for r in runs if cmp.section(r, key) is not None)
        parts.append(f"<section id='{e(key)}'><h2>{e(title_s)}</h2>")
        numbers = key_numbers(cmp, key)
        if numbers:
            parts += [f"<table class='numbers'><caption>Key numbers, one column per run</caption>", head]
            parts += [f"<tr><td>{e(label)}</td>" + "".join(
                f"<td class='num'>{e(_number(vals[r]) if r in vals else '—')}</td>" for r in runs) + "</tr>"
                for label, vals in numbers]
            parts.append("</table>")
        parts.append("<div class='runs'>")
        for run in runs:
            s = cmp.section(run, key)
            body = section_body(s, generic=False) if s is not None else ["<p class='skipped'>Not run.</p>"]
            parts += [f"<div><h3>{e(run)}</h3>", *body, "</div>"]
        parts.append("</div></section>")
    return page(title, parts).replace("<body>", "<body class='compare'>", 1)


def comparison_markdown(cmp, figure_dir: Path | None = None, link_prefix: str = "") -> str:
    runs = list(cmp.runs)
    first = next(iter(cmp.runs.values()))
    titles = {s.key: s.title for rep in cmp.runs.values() for s in rep.sections}
    lines = [f"# latentlab comparison: {md_text(' vs '.join(runs))}", "",
             "| run | A | B | rows | dims |", "| --- | --- | --- | --- | --- |"]
    for name, rep in cmp.runs.items():
        a, b = rep.inputs["a"], rep.inputs["b"]
        lines.append("| " + " | ".join(_md_cell(x) for x in (name, a["spec"], b["spec"], f"{a['n']} / {b['n']}",
                                                              f"{a['dim']} / {b['dim']}")) + " |")
    head = ["| quantity | " + " | ".join(_md_cell(r) for r in runs) + " |", "|" + " --- |" * (len(runs) + 1)]
    lines += ["", "## Summary", "", *head]
    for row in cmp.summary_rows():
        cells = [" — ".join(_cell(row["values"][run])) for run in runs]
        link = f"[{_md_cell(row['label'])}](#{slug(titles.get(row['section'], row['section']))})"
        lines.append("| " + " | ".join([link, *(_md_cell(c) for c in cells)]) + " |")
    lines += ["", f"Settings: seed {first.settings['seed']}, bootstrap {first.settings['bootstrap']}, "
                  f"calibrate {first.settings['calibrate']}; {cmp.seconds:.1f} s in all.", ""]
    for key in cmp.section_keys():
        lines += [f"## {md_text(titles[key])}", ""]
        numbers = key_numbers(cmp, key)
        if numbers:
            lines += head + ["| " + " | ".join([_md_cell(label)] + [_md_cell(_number(vals[r]) if r in vals else "—")
                                                                   for r in runs]) + " |" for label, vals in numbers]
            lines.append("")
        for run in runs:
            s = cmp.section(run, key)
            lines += [f"### {md_text(run)}: {md_text(titles[key])}", ""]
            stem = re.sub(r"[^\w\-]", "_", f"{run}-{key}")
            lines += section_md(s, figure_dir, link_prefix, stem, generic=False) if s is not None else ["*Not run.*", ""]
    return "\n".join(lines) + "\n"
