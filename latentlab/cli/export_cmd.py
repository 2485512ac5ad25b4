"""``latentlab export``: embeddings in other tools' formats (TensorBoard's Embedding Projector)."""
from __future__ import annotations

import click

from .main import cli, common_options
from .render import emit_json
from .view_cmd import distinct_names, text_options


@cli.command("export")
@click.argument("a")
@click.argument("b", required=False)
@click.option("--projector", "directory", metavar="DIR", type=click.Path(file_okay=False), required=True,
              help="Write TensorBoard projector files into DIR (tensors.tsv, metadata.tsv, projector_config.pbtxt); "
                   "view with: tensorboard --logdir DIR.")
@text_options
@click.option("--name-a", help='Name of A in the set column.', show_default='its file name')
@click.option("--name-b", help='Name of B in the set column.', show_default='its file name')
@click.option("--force", is_flag=True, help="Overwrite projector files already in DIR.")
@common_options
def export_cmd(a, b, directory, labels, text_a, text_b, name_a, name_b, force, opts):
    """Export A (and B) for TensorBoard's Embedding Projector.

    One row per item in tensors.tsv; metadata.tsv has the columns set (with B), row (the
    row in its file), label and text (when given), with a header line when there is more
    than one column. A and B of the same width share one tensor; of different widths, each
    gets its own (tensors_a.tsv, tensors_b.tsv). Every file is written to a temporary name
    first and renamed when all are complete.

    \b
    Example:
      latentlab export --projector proj/ features_clip.npy::0 features_clip.npy::1 --text-b captions.txt
      tensorboard --logdir proj/
    """
    from ..io import display_name
    from ..io.projector import write_projector

    if b is None and (text_b or name_b):
        raise click.UsageError("--text-b and --name-b need a second input B")
    names = distinct_names(name_a or display_name(a), name_b or (display_name(b) if b else "B"))
    out = write_projector(directory, a, b, labels=labels, text_a=text_a, text_b=text_b, names=names, force=force)
    if opts.json:
        emit_json(out)
        return
    for path in out["files"]:
        click.echo(f"wrote {path}")
    click.echo(f"view: tensorboard --logdir {directory}")
