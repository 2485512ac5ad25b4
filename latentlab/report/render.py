"""Report rendering: one self-contained HTML file (figures as base64 PNG), or Markdown."""
from __future__ import annotations

import base64
import datetime as _dt
import html
from pathlib import Path

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
"""


def flatten(numbers: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested numbers as (dotted key, value) rows; lists of scalars shown inline."""
    rows: list[tuple[str, object]] = []
    for key, value in numbers.items():
        name = f"{prefix}{key}"
        if value is None and key in ("notes", "permutation") or (isinstance(value, (list, dict)) and not value):
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
        parts.append(f"<p class='reading'>{e(s.reading)}</p>")
        for fig in s.figures:
            width = fig.get_size_inches()[0] * 150  # a paper-column figure shows ~510 px wide
            parts.append(f"<figure><img alt='{e(s.title)} figure' style='width:{width:.0f}px' "
                         f"src='data:image/png;base64,{_png_b64(fig)}'></figure>")
        parts.append("<table><tr><th>quantity</th><th>value</th></tr>")
        parts += [f"<tr><td>{e(k)}</td><td class='num'>{e(format_value(v))}</td></tr>" for k, v in flatten(s.numbers)]
        parts.append("</table><p>Reproduce:</p><pre><code>" + e("\n".join(s.commands)) + "</code></pre>")
        parts += [f"<p class='note'>note: {e(n)}</p>" for n in s.notes]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(report, figure_dir: Path | None = None, link_prefix: str = "") -> str:
    a, b = report.inputs["A"], report.inputs["B"]
    lines = [f"# latentlab report: {a['name']} vs {b['name']}", "",
             f"A: `{a['spec']}` ({a['n']} × {a['dim']}) · B: `{b['spec']}` ({b['n']} × {b['dim']}) · "
             f"{'paired' if report.inputs['paired'] else 'unpaired'} · {report.seconds:.1f} s", ""]
    for s in report.sections:
        lines += [f"## {s.title}", ""]
        if s.skipped:
            lines += [f"*Skipped: {s.skipped}*", ""]
            continue
        lines += [f"> {s.reading}", ""]
        if figure_dir is not None:
            from ..plot.style import save_figure

            for i, fig in enumerate(s.figures):
                name = f"{s.key}{'' if i == 0 else i + 1}.png"
                save_figure(fig, Path(figure_dir) / name)
                lines += [f"![{s.title}]({link_prefix}{name})", ""]
        lines += ["| quantity | value |", "| --- | --- |"]
        lines += [f"| {k} | {format_value(v)} |" for k, v in flatten(s.numbers)]
        lines += ["", "```sh", *s.commands, "```", ""]
        lines += [f"note: {n}" for n in s.notes if "Traceback" not in n]
    return "\n".join(lines) + "\n"
