"""``latentlab report``: the one-command HTML report on two embedding sets."""
from __future__ import annotations

import click

from ..errors import InputError
from ..io.outputs import check_outputs, markdown_output, require_suffix
from .main import cli, common_options
from .render import emit_json
from .view_cmd import text_options

SECTION_KEYS = "gap,view,similarities,uniformity,cka,overlap,spectrum,retrieval,stitching"


def report_options(func):
    for deco in reversed([
        click.option("--markdown", type=click.Path(dir_okay=False), help="Also write Markdown (figures beside it)."),
        click.option("--sections", default=SECTION_KEYS, show_default=True, help="Comma list of sections to run."),
        click.option("--bootstrap", type=click.IntRange(0), default=200, show_default=True,
                     help="Bootstrap resamples for the confidence intervals (0 = none)."),
        click.option("--calibrate", type=click.IntRange(0), default=100, show_default=True, metavar="K",
                     help="Shufflings of B's rows for the null-calibrated CKA, SVCCA, PWCCA and mutual k-NN: "
                          "chance τ and calibrated = clamp((s − τ)/(1 − τ), 0, 1) beside each score (0 = none)."),
        click.option("--projection", type=click.Choice(["pca", "umap"]), default="pca", show_default=True,
                     help="Joint 2-D view: exact PCA, or UMAP (slower; numba compiles on first use)."),
    ]):
        func = deco(func)
    return func


@cli.command("report")
@click.argument("inputs", nargs=-1, metavar="A B | --compare NAME:A,B NAME:A,B ...")
@click.option("--compare", is_flag=True,
              help="Side-by-side report of two or more runs, each NAME:A,B (PATH::KEY selectors allowed), "
                   "e.g. trained:img.npy,txt.npy random:img0.npy,txt0.npy.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="report.html", show_default=True,
              help="The self-contained HTML report (figures embedded, no network needed).")
@click.option("--paired/--unpaired", default=None, help='Row i of A matches row i of B.',
              show_default='equal row counts')
@click.option("--name-a", help='Display name of A.', show_default='its file name; with --compare, A when runs differ')
@click.option("--name-b", help='Display name of B.', show_default='as for --name-a')
@text_options
@report_options
@common_options
def report_cmd(inputs, compare, output, paired, name_a, name_b, text_a, text_b, labels, markdown, sections, bootstrap,
               calibrate, projection, opts):
    """Every analysis of A and B in one self-contained HTML report, a summary first.

    The summary answers how far apart A and B are (gap with its interval, linear
    separability), how retrievable (R@1 both ways, with and without CSLS), how aligned
    (CKA beside its shuffle chance) and whether a stitching map beats the identity — each
    with a verdict in words; it is printed after the report is written too.

    Sections: modality gap (+ shift experiment), an interactive joint view (hover for a
    row's text from --text-a/--text-b, click for its neighbours, failed retrievals and
    hubs listed), cosine similarities, uniformity/alignment,
    CKA with bootstrap CIs and null calibration (--calibrate), subspace overlap with chance
    values, spectra and hubness, retrieval both ways (with CSLS), and stitching maps fitted
    in a valid setting (unregularised maps with at least 2 anchors per dimension, else
    regularised ones: ridge with α by leave-one-out CV, reduced rank, relative), evaluated
    on held-out pairs against the identity and a random rotation. Each has its figure, its
    numbers as tables, how to read them, and the command that reproduces them; sections that
    do not apply say why. Degenerate values (e.g. PWCCA with n ≤ d) are shown greyed as
    "undefined" with the reason, and are null in --json.

    \b
    Example:
      latentlab report features_clip.npy::0 features_clip.npy::1 -o clip.html
      latentlab report img.npy txt.npy --sections gap,cka --markdown report.md --json
      latentlab report --compare trained:clip.npy::0,clip.npy::1 random:clip_random.npy::0,clip_random.npy::1 -o cmp.html
    """
    require_suffix("-o", output, (".html", ".htm"), "the HTML report")
    require_suffix("--markdown", markdown, (".md", ".markdown"), "the Markdown report")
    wanted = [s.strip() for s in sections.split(",") if s.strip()]
    if not wanted:  # an empty list means "all" to build_report; on the command line it is a slip
        raise InputError(f"--sections {sections!r}: no section named; choose from {SECTION_KEYS.replace(',', ', ')}")
    settings = dict(name_a=name_a, name_b=name_b, paired=paired, sections=wanted, bootstrap=bootstrap,
                    calibrate=calibrate, projection=projection, seed=opts.seed, device=opts.device, dtype=opts.dtype)
    outputs = {"-o": output, "--markdown": markdown_output(markdown) if markdown else None}
    texts = {"--text-a": text_a, "--text-b": text_b, "--labels": labels}
    if compare:
        from ..report import build_comparison, parse_run

        given = [flag for flag, v in texts.items() if v]
        if given:
            raise InputError(f"{given[0]}: texts and labels belong to one pair of sets; not with --compare")
        if len(inputs) < 2:
            raise InputError(f"--compare: {len(inputs)} run given; name two or more, each NAME:A,B")
        runs = [parse_run(spec) for spec in inputs]
        check_outputs(outputs, {f"{name} {side}": path for name, a, b in runs for side, path in (("A", a), ("B", b))})
        rep = build_comparison(list(inputs), **settings)
    else:
        if len(inputs) != 2:
            raise InputError(f"report takes two inputs A B, got {len(inputs)}; to compare runs use "
                             "--compare NAME:A,B NAME:A,B")
        check_outputs(outputs, {"A": inputs[0], "B": inputs[1], **{f: v for f, v in texts.items() if v}})
        from ..report import build_report

        rep = build_report(*inputs, text_a=text_a, text_b=text_b, labels=labels, **settings)
    path = rep.write_html(output)
    if markdown:
        rep.write_markdown(markdown)
    if opts.json:
        emit_json({"report": str(path), **rep.to_dict()})
        return
    reports = rep.runs if compare else {"": rep}
    skipped = [(run, s) for run, r in reports.items() for s in r.sections if s.skipped]
    total = sum(len(r.sections) for r in reports.values())
    click.echo(f"wrote {path} ({total - len(skipped)} sections{f' in {len(reports)} runs' if compare else ''}, "
               f"{rep.seconds:.0f} s)")
    for run, s in skipped:
        click.echo(f"  skipped {f'{run} ' if run else ''}{s.key}: {s.skipped}")
    if markdown:
        click.echo(f"wrote {markdown}")
    for line in summary_lines(rep, compare):
        click.echo(line)


def summary_lines(rep, compare: bool) -> list[str]:
    """The report's summary as plain text: one line per number (with --compare, one line per run under it)."""
    from ..report.summary import summary_line, value_text

    if not compare:
        items = rep.summary()
        return ["summary:"] + [f"  {summary_line(it)}" for it in items] if items else []
    lines = ["summary:"]
    for row in rep.summary_rows():
        lines.append(f"  {row['label']}:")
        width = max(len(r) for r in row["values"])
        for run, it in row["values"].items():
            lines.append(f"    {run:<{width}}  " + (f"{value_text(it)} — {it['verdict']}" if it else "—"))
    return lines
