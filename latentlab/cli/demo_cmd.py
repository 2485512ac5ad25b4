"""``latentlab demo``: the main job on built-in real data."""
from __future__ import annotations

import click

from ..analyze.gap import gap
from ..data import example_path
from .gap_cmd import render_gap
from .main import cli, common_options
from .render import emit_json


@cli.command("demo")
@common_options
def demo_cmd(opts):
    """Run the gap report on the built-in example: CLIP ViT-B/32 embeddings of 500 MSCOCO
    val2017 images and their captions (from Liang et al. 2022, MIT licence).

    \b
    Example:
      latentlab demo
    """
    path = str(example_path())
    a, b = f"{path}::0", f"{path}::1"
    res = gap(a, b, shift=[-1.0, -0.5, 0.0, 0.5, 1.0], seed=opts.seed, device=opts.device, dtype=opts.dtype)
    if opts.json:
        emit_json(res)
        return
    click.echo("latentlab demo: CLIP image vs caption embeddings (500 MSCOCO pairs, shipped with latentlab)\n")
    click.echo(render_gap(res, "image", "caption"))
    click.echo(f"\nreproduce: latentlab gap {a} {b} --shift -1:1:0.5")
