"""``latentlab plot KIND …``: the field's standard figures, headless, paper-column sized."""
from __future__ import annotations

import click

from ..analyze.gap import parse_shift
from ..io.outputs import check_outputs
from .main import cli, common_options
from .render import emit_json
from .retrieval_cmd import read_truth

def _check_output(ctx, param, value):
    """Refuse an unknown figure format before any work is done."""
    from ..plot.style import FORMATS

    if value is not None and not value.lower().endswith(FORMATS):
        raise click.BadParameter(f"{value}: figures are written as {', '.join(FORMATS)}")
    return value


OUT = click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), callback=_check_output,
                   help="Figure file: .png, .svg or .pdf.")


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


@plot_group.command("umap")
@click.argument("a")
@click.argument("b")
@OUT
@click.option("--method", type=click.Choice(["umap", "pca"]), default="umap", show_default=True,
              help="UMAP (cosine metric; slow the first time while numba compiles) or exact PCA.")
@click.option("--max-points", type=click.IntRange(4), default=10_000, show_default=True,
              help="Subsample above this many points in total (said in the title).")
@common_options
def plot_umap(a, b, output, method, max_points, opts):
    """Joint 2-D view of A and B coloured by set, lines joining true pairs (Liang et al. Fig. 1).

    \b
    Example:
      latentlab plot umap features_clip.npy::0 features_clip.npy::1 -o gap.png --method pca
    """
    from ..plot.compute import umap_figure

    check_outputs({"-o": output}, {"A": a, "B": b})
    _finish(opts, output, *umap_figure(a, b, method=method, max_points=max_points, seed=opts.seed))


@plot_group.command("cka")
@click.argument("files", nargs=-1, required=True)
@OUT
@common_options
def plot_cka(files, output, opts):
    """Layer × layer linear-CKA heatmap with values annotated (all FILES row-paired).

    \b
    Example:
      latentlab plot cka layer00.npy layer03.npy layer06.npy -o cka.pdf
    """
    from ..plot.compute import cka_figure

    check_outputs({"-o": output}, {"FILES": list(files)})
    from ..io import display_name

    labels = [display_name(f) for f in files]
    _finish(opts, output, *cka_figure(list(files), labels=labels, device=opts.device, dtype=opts.dtype))


@plot_group.command("sims")
@click.argument("a")
@click.argument("b")
@OUT
@common_options
def plot_sims(a, b, output, opts):
    """Histograms of cosine similarity: true pairs, random pairs, pairs within A and within B.

    \b
    Example:
      latentlab plot sims images.npy texts.npy -o sims.svg
    """
    from ..plot.compute import sims_figure

    check_outputs({"-o": output}, {"A": a, "B": b})
    _finish(opts, output, *sims_figure(a, b, seed=opts.seed))


@plot_group.command("spectrum")
@click.argument("a")
@click.argument("b", required=False)
@OUT
@common_options
def plot_spectrum(a, b, output, opts):
    """Normalised singular-value spectra (log scale) and cumulative explained variance.

    \b
    Example:
      latentlab plot spectrum images.npy texts.npy -o spectrum.png
    """
    from ..plot.compute import spectrum_figure

    check_outputs({"-o": output}, {"A": a, "B": b})
    inputs = [a] + ([b] if b else [])
    from ..io import display_name

    _finish(opts, output, *spectrum_figure(inputs, names=[display_name(i) for i in inputs],
                                           device=opts.device, dtype=opts.dtype))


@plot_group.command("angles")
@click.argument("a")
@click.argument("b")
@OUT
@click.option("--rank", type=click.IntRange(1), help="Compare the top RANK principal directions.")
@click.option("--variance", type=click.FloatRange(0, 1, min_open=True), default=0.99, show_default=True,
              help="Without --rank: directions reaching this share of the variance.")
@common_options
def plot_angles(a, b, output, rank, variance, opts):
    """Principal angles between the top PCA subspaces of A and B (ascending, degrees).

    \b
    Example:
      latentlab plot angles model1.npy model2.npy -o angles.png --rank 32
    """
    from ..plot.compute import angles_figure

    check_outputs({"-o": output}, {"A": a, "B": b})
    _finish(opts, output, *angles_figure(a, b, rank=rank, variance=variance, device=opts.device, dtype=opts.dtype))


@plot_group.command("shift")
@click.argument("a")
@click.argument("b")
@OUT
@click.option("--shift", "spec", default="-1:1:0.25", show_default=True, metavar="START:STOP:STEP",
              help="The δ grid of the embedding-shift experiment.")
@common_options
def plot_shift(a, b, output, spec, opts):
    """Gap and A→B R@1 against the shift δ along the gap direction (Liang et al. 2022).

    \b
    Example:
      latentlab plot shift features_clip.npy::0 features_clip.npy::1 -o shift.png
    """
    from ..plot.compute import shift_figure

    check_outputs({"-o": output}, {"A": a, "B": b})
    deltas = parse_shift(spec)
    _finish(opts, output, *shift_figure(a, b, shift=deltas, seed=opts.seed, device=opts.device, dtype=opts.dtype))


@plot_group.command("retrieval")
@click.argument("q")
@click.argument("g")
@OUT
@click.option("--truth", type=click.Path(dir_okay=False), help="Gallery index per query (.npy); default: row i ↔ row i.")
@click.option("--fix", type=click.Choice(["invgc", "localadj", "csls", "qbnorm", "dbnorm"]),
              help="Also draw the curve after this post-hoc fix.")
@click.option("--bank-gallery", help="Training gallery embeddings (InvGC, DB-Norm).")
@click.option("--bank-queries", help="Training query embeddings (InvGC, QB-Norm, DB-Norm).")
@common_options
def plot_retrieval(q, g, output, truth, fix, bank_gallery, bank_queries, opts):
    """Recall@k curves of Q → G before and after a post-hoc fix.

    \b
    Example:
      latentlab plot retrieval img.npy txt.npy --fix csls -o recall.png
    """
    from ..plot.compute import recall_figure

    check_outputs({"-o": output}, {"Q": q, "G": g, "--truth": truth, "--bank-gallery": bank_gallery,
                                   "--bank-queries": bank_queries})
    t = read_truth(truth) if truth else None
    _finish(opts, output, *recall_figure(q, g, t, fix=fix, bank_gallery=bank_gallery, bank_queries=bank_queries,
                                         device=opts.device, dtype=opts.dtype))
