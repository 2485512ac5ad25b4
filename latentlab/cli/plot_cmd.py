"""``latentlab plot KIND …``: the field's standard figures, headless, paper-column sized.

Every kind writes ``-o/--output`` (.png, .svg or .pdf) and takes ``--title``; the kinds on two
sets take ``--name-a/--name-b`` for the legend and title (default: the file names). ``joint``
is the joint 2-D view with the report's option name and default (``--projection pca``);
``plot umap`` is its old name, kept hidden: it still means ``joint --projection umap``.
"""
from __future__ import annotations

import click

from ..io.outputs import check_outputs
from .main import cli, common_options, output_option
from .render import emit_json
from .retrieval_cmd import FIXES, read_truth

FIGURE_FORMATS = (".png", ".svg", ".pdf")  # plot.style.FORMATS without importing matplotlib for --help
PROJECTIONS = ("pca", "umap")


def _check_output(ctx, param, value):
    """Refuse an unknown figure format before any work is done."""
    if value is not None and not value.lower().endswith(FIGURE_FORMATS):
        raise click.BadParameter(f"{value}: figures are written as {', '.join(FIGURE_FORMATS)}",
                                 ctx=ctx, param_hint="-o/--output")
    return value


OUT = output_option("Figure file: .png, .svg or .pdf.", required=True, callback=_check_output)


def names(func):
    """--name-a, --name-b and --title: what the legend and title call things."""
    for deco in reversed([
        click.option("--name-a", help='Display name of the first set.', show_default='its file name'),
        click.option("--name-b", help='Display name of the second set.', show_default='its file name'),
        click.option("--title", help='Figure title.', show_default='says what is drawn, with the names'),
    ]):
        func = deco(func)
    return func


def _finish(opts, output, fig, numbers):
    from ..plot import save_figure

    path = save_figure(fig, output)
    if opts.json:
        emit_json({"figure": str(path), **numbers})
    else:
        click.echo(f"wrote {path}")


@cli.group("plot")
def plot_group():
    """Draw a figure to PNG, SVG or PDF (matplotlib, Agg backend, colour-blind-safe palette)."""


def _joint(a, b, output, projection, max_points, name_a, name_b, title, opts):
    from ..plot.compute import joint_figure

    check_outputs({"-o": output}, {"A": a, "B": b})
    _finish(opts, output, *joint_figure(a, b, projection=projection, max_points=max_points, seed=opts.seed,
                                        name_a=name_a, name_b=name_b, title=title))


def joint_options(default: str):
    def deco(func):
        for d in reversed([
            click.argument("a"), click.argument("b"), OUT,
            click.option("--projection", type=click.Choice(PROJECTIONS), default=default, show_default=True,
                         help="Exact PCA, or UMAP (cosine metric; needs latentlab[viz]; numba compiles it "
                              "once per machine, cached). The report's option, with the report's default."),
            click.option("--method", "old_method", type=click.Choice(PROJECTIONS), hidden=True,
                         help="Old name of --projection."),
            click.option("--max-points", type=click.IntRange(4), default=10_000, show_default=True,
                         help="Subsample above this many points in total (said in the title)."),
            names, common_options,
        ]):
            func = d(func)
        return func
    return deco


def _projection(projection, old_method):
    if old_method is not None:
        click.echo("warning: --method is deprecated, use --projection", err=True)
        return old_method
    return projection


@plot_group.command("joint")
@joint_options("pca")
def plot_joint(a, b, output, projection, old_method, max_points, name_a, name_b, title, opts):
    """Joint 2-D view of A and B coloured by set, lines joining true pairs (Liang et al. 2022, Fig. 1).

    A and B must have the same width (the projection is fitted on both sets together).

    \b
    Example:
      latentlab plot joint features_clip.npy::0 features_clip.npy::1 -o gap.png
      latentlab plot joint img.npy txt.npy -o gap.pdf --projection umap --name-a images --name-b captions
    """
    _joint(a, b, output, _projection(projection, old_method), max_points, name_a, name_b, title, opts)


@plot_group.command("umap", hidden=True)
@joint_options("umap")
def plot_umap(a, b, output, projection, old_method, max_points, name_a, name_b, title, opts):
    """Old name of `plot joint --projection umap` (kept so existing scripts run)."""
    _joint(a, b, output, _projection(projection, old_method), max_points, name_a, name_b, title, opts)


@plot_group.command("cka")
@click.argument("files", nargs=-1, required=True)
@OUT
@click.option("--names", "labels", metavar="NAME[,NAME]", help='Display names of FILES, comma-separated, one per file.',
              show_default='the file names')
@click.option("--title", help='Figure title.', show_default="'Linear CKA, n = …'")
@click.option("--vmin", type=float, default=0.0, show_default=True, help="Colour scale minimum.")
@click.option("--vmax", type=float, default=1.0, show_default=True, help="Colour scale maximum.")
@common_options
def plot_cka(files, output, labels, title, vmin, vmax, opts):
    """Layer × layer linear-CKA heatmap with values annotated (all FILES row-paired).

    \b
    Example:
      latentlab plot cka layer00.npy layer03.npy layer06.npy -o cka.pdf
      latentlab plot cka l0.npy l6.npy l11.npy -o cka.png --names early,mid,late --vmin 0.5
    """
    from ..errors import InputError
    from ..io import display_name
    from ..plot.compute import cka_figure

    check_outputs({"-o": output}, {"FILES": list(files)})
    shown = [s.strip() for s in labels.split(",")] if labels else [display_name(f) for f in files]
    if len(shown) != len(files) or not all(shown):
        raise InputError(f"--names {labels!r}: give one non-empty name per file ({len(files)} files)")
    _finish(opts, output, *cka_figure(list(files), labels=shown, title=title, vmin=vmin, vmax=vmax,
                                      device=opts.device, dtype=opts.dtype))


@plot_group.command("sims")
@click.argument("a")
@click.argument("b")
@OUT
@names
@common_options
def plot_sims(a, b, output, name_a, name_b, title, opts):
    """Histograms of cosine similarity: true pairs, random pairs, pairs within A and within B.

    A and B must have the same width (cross-set cosines need one space).

    \b
    Example:
      latentlab plot sims images.npy texts.npy -o sims.svg
    """
    from ..plot.compute import sims_figure

    check_outputs({"-o": output}, {"A": a, "B": b})
    _finish(opts, output, *sims_figure(a, b, seed=opts.seed, name_a=name_a, name_b=name_b, title=title))


@plot_group.command("spectrum")
@click.argument("a")
@click.argument("b", required=False)
@OUT
@names
@common_options
def plot_spectrum(a, b, output, name_a, name_b, title, opts):
    """Normalised singular-value spectra (log scale) and cumulative explained variance.

    \b
    Example:
      latentlab plot spectrum images.npy texts.npy -o spectrum.png
    """
    from ..io import display_name
    from ..plot.compute import spectrum_figure

    check_outputs({"-o": output}, {"A": a, "B": b})
    inputs = [a] + ([b] if b else [])
    shown = [name or display_name(i) for name, i in zip((name_a, name_b), inputs)]
    _finish(opts, output, *spectrum_figure(inputs, names=shown, title=title, device=opts.device, dtype=opts.dtype))


@plot_group.command("angles")
@click.argument("a")
@click.argument("b")
@OUT
@click.option("--rank", type=click.IntRange(1), help="Compare the top RANK principal directions.")
@click.option("--variance", type=click.FloatRange(0, 1, min_open=True), default=0.99, show_default=True,
              help="Without --rank: directions reaching this share of the variance.")
@names
@common_options
def plot_angles(a, b, output, rank, variance, name_a, name_b, title, opts):
    """Principal angles between the top PCA subspaces of A and B (ascending, degrees).

    \b
    Example:
      latentlab plot angles model1.npy model2.npy -o angles.png --rank 32
    """
    from ..plot.compute import angles_figure

    check_outputs({"-o": output}, {"A": a, "B": b})
    _finish(opts, output, *angles_figure(a, b, rank=rank, variance=variance, name_a=name_a, name_b=name_b,
                                         title=title, device=opts.device, dtype=opts.dtype))


@plot_group.command("shift")
@click.argument("a")
@click.argument("b")
@OUT
@click.option("--shift", "spec", default="-1:1:0.25", show_default=True, metavar="START:STOP:STEP",
              help="The δ grid of the embedding-shift experiment.")
@names
@common_options
def plot_shift(a, b, output, spec, name_a, name_b, title, opts):
    """Gap and A→B R@1 against the shift δ along the gap direction (Liang et al. 2022).

    \b
    Example:
      latentlab plot shift features_clip.npy::0 features_clip.npy::1 -o shift.png
    """
    from ..analyze.gap import parse_shift
    from ..plot.compute import shift_figure

    check_outputs({"-o": output}, {"A": a, "B": b})
    deltas = parse_shift(spec)
    _finish(opts, output, *shift_figure(a, b, shift=deltas, seed=opts.seed, name_a=name_a, name_b=name_b,
                                        title=title, device=opts.device, dtype=opts.dtype))


@plot_group.command("retrieval")
@click.argument("q")
@click.argument("g")
@OUT
@click.option("--truth", type=click.Path(dir_okay=False), help='Gallery index per query (.npy).',
              show_default='row i ↔ row i')
@click.option("--fix", type=click.Choice(FIXES), help="Also draw the curve after this post-hoc fix.")
@click.option("--bank-gallery", help="Training gallery embeddings (InvGC, DB-Norm).")
@click.option("--bank-queries", help="Training query embeddings (InvGC, QB-Norm, DB-Norm).")
@names
@common_options
def plot_retrieval(q, g, output, truth, fix, bank_gallery, bank_queries, name_a, name_b, title, opts):
    """Recall@k curves of Q → G before and after a post-hoc fix (--name-a names Q, --name-b G).

    \b
    Example:
      latentlab plot retrieval img.npy txt.npy --fix csls -o recall.png
    """
    from ..plot.compute import recall_figure

    check_outputs({"-o": output}, {"Q": q, "G": g, "--truth": truth, "--bank-gallery": bank_gallery,
                                   "--bank-queries": bank_queries})
    t = read_truth(truth) if truth else None
    _finish(opts, output, *recall_figure(q, g, t, fix=fix, bank_gallery=bank_gallery, bank_queries=bank_queries,
                                         name_q=name_a, name_g=name_b, title=title, device=opts.device,
                                         dtype=opts.dtype))
