"""``latentlab view``: the interactive joint view of two sets as one self-contained HTML page."""
from __future__ import annotations

import click

from .main import cli, common_options
from .render import emit_json

TEXT_HELP = ("one string per row: .txt (one line per row), .csv/.tsv/.parquet with FILE::COLUMN, "
             "or a .json list")


def text_options(func):
    """--labels/--text-a/--text-b: one string per row, for view, export and report (one definition)."""
    for deco in reversed([
        click.option("--labels", metavar="FILE", help="Labels for colour, search and metadata: one per row of A (shared "
                     "by B when paired) or one per row of A then B; " + TEXT_HELP + "."),
        click.option("--text-a", metavar="FILE", help="Text of A's rows (hover, lists, metadata); " + TEXT_HELP + "."),
        click.option("--text-b", metavar="FILE", help="Text of B's rows; " + TEXT_HELP + "."),
    ]):
        func = deco(func)
    return func


def distinct_names(name_a: str, name_b: str) -> tuple[str, str]:
    """Display names that tell the sets apart (``x.npy x.npy`` → ``x.npy (A)``, ``x.npy (B)``)."""
    return (name_a, name_b) if name_a != name_b else (f"{name_a} (A)", f"{name_b} (B)")


@cli.command("view")
@click.argument("a")
@click.argument("b")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="view.html", show_default=True,
              help="The HTML page (self-contained: works offline, no server).")
@text_options
@click.option("--name-a", help='Display name of A.', show_default='its file name')
@click.option("--name-b", help='Display name of B.', show_default='its file name')
@click.option("--projection", type=click.Choice(["pca", "umap"]), default="pca", show_default=True,
              help="2-D projection: exact PCA, or UMAP (cosine; needs latentlab[viz]).")
@click.option("--color", type=click.Choice(["set", "label", "hubness"]), default="set", show_default=True,
              help="Initial colouring (switchable in the page); label needs --labels.")
@click.option("--k", type=click.IntRange(1), default=5, show_default=True,
              help="Neighbours listed on click, and the k of the hubness k-occurrence.")
@click.option("--max-points", type=click.IntRange(4), default=2000, show_default=True,
              help="At most this many points in total (a seeded sample above it, said in the page).")
@common_options
def view_cmd(a, b, output, labels, text_a, text_b, name_a, name_b, projection, color, k, max_points, opts):
    """Interactive joint view of A and B: hover for a row's text, click for its neighbours.

    Both sets projected together (PCA or UMAP of L2-normalised rows) with lines joining true
    pairs; colour by set, label or hubness; a search box; the failed retrievals (partner
    not ranked first) and the worst hubs listed with their text.

    \b
    Example:
      latentlab view features_clip.npy::0 features_clip.npy::1 --text-b captions.txt -o view.html
      latentlab view img.npy txt.npy --labels meta.parquet::category --color label
    """
    from ..io import display_name
    from ..io.outputs import check_outputs, require_suffix
    from ..report.interactive import write_joint_view

    # checked here too so that the messages name -o, not the library's argument
    require_suffix("-o", output, (".html", ".htm"), "the joint view")
    check_outputs({"-o": output}, {"A": a, "B": b, "--labels": labels, "--text-a": text_a, "--text-b": text_b})
    names = distinct_names(name_a or display_name(a), name_b or display_name(b))
    view = write_joint_view(output, a, b, text_a=text_a, text_b=text_b, labels=labels, names=names,
                            projection=projection, color=color, k=k, max_points=max_points, seed=opts.seed,
                            device=opts.device, dtype=opts.dtype)
    summary = view.summary()
    if opts.json:
        emit_json({"view": str(output), **summary})
        return
    click.echo(f"wrote {output} ({summary['points_a']} + {summary['points_b']} points, {summary['projection']})")
    for f in view.failures:
        click.echo(f"  {f['query']} → {f['gallery']}: {f['count']} of {f['of']} partners not ranked first")
    for h in view.hubs:
        click.echo(f"  hubs of {h['name']}: {h['hubs']} rows in more than {2 * h['k']} {h['k']}-NN lists "
                   f"(skewness {h['skew']:.2f})")
    for note in summary["notes"]:
        click.echo(f"note: {note}")
