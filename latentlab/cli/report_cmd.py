"""``latentlab report``: the one-command HTML report on two embedding sets."""
from __future__ import annotations

import click

from ..errors import InputError
from ..io.outputs import check_outputs, markdown_output, require_suffix
from .main import cli, common_options
from .render import emit_json

SECTION_KEYS = "gap,similarities,uniformity,cka,overlap,spectrum,retrieval,stitching"


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
@click.argument("a")
@click.argument("b")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="report.html", show_default=True,
              help="The self-contained HTML report (figures embedded, no network needed).")
@click.option("--paired/--unpaired", default=None, help="Row i of A matches row i of B (default: equal row counts).")
@click.option("--name-a", help="Display name of A (default: its file name).")
@click.option("--name-b", help="Display name of B.")
@report_options
@common_options
def report_cmd(a, b, output, paired, name_a, name_b, markdown, sections, bootstrap, calibrate, projection, opts):
    """Every analysis of A and B in one self-contained HTML report.

    Sections: modality gap (+ shift experiment), cosine similarities, uniformity/alignment,
    CKA with bootstrap CIs and null calibration (--calibrate), subspace overlap with chance
    values, spectra and hubness, retrieval both ways
    (with CSLS), and a stitching baseline (procrustes, lst, relative --center fitted on a
    random half of the pairs, evaluated on the other half against identity and a random
    rotation). Each has its figure, its numbers, how to read them, and the command that
    reproduces them; sections that do not apply say why. Degenerate values (e.g. PWCCA with
    n ≤ d) are shown greyed as "undefined" with the reason, and are null in --json.

    \b
    Example:
      latentlab report features_clip.npy::0 features_clip.npy::1 -o clip.html
      latentlab report img.npy txt.npy --sections gap,cka --markdown report.md --json
    """
    require_suffix("-o", output, (".html", ".htm"), "the HTML report")
    require_suffix("--markdown", markdown, (".md", ".markdown"), "the Markdown report")
    check_outputs({"-o": output, "--markdown": markdown_output(markdown) if markdown else None}, {"A": a, "B": b})
    wanted = [s.strip() for s in sections.split(",") if s.strip()]
    if not wanted:  # an empty list means "all" to build_report; on the command line it is a slip
        raise InputError(f"--sections {sections!r}: no section named; choose from {SECTION_KEYS.replace(',', ', ')}")
    from ..report import build_report

    rep = build_report(a, b, name_a=name_a, name_b=name_b, paired=paired,
                       sections=wanted, bootstrap=bootstrap,
                       calibrate=calibrate, projection=projection, seed=opts.seed, device=opts.device, dtype=opts.dtype)
    path = rep.write_html(output)
    if markdown:
        rep.write_markdown(markdown)
    if opts.json:
        emit_json({"report": str(path), **rep.to_dict()})
        return
    skipped = [s for s in rep.sections if s.skipped]
    click.echo(f"wrote {path} ({len(rep.sections) - len(skipped)} sections, {rep.seconds:.0f} s)")
    for s in skipped:
        click.echo(f"  skipped {s.key}: {s.skipped}")
    if markdown:
        click.echo(f"wrote {markdown}")
