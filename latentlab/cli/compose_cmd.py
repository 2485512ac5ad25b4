"""``latentlab compose MAP_AB MAP_BC -o MAP_AC``: chain two fitted maps through a pivot space (VIP-ANT)."""
from __future__ import annotations

import click

from ..io.outputs import check_outputs
from .main import cli, common_options, output_option
from .render import emit_json


@cli.command("compose")
@click.argument("map_ab")
@click.argument("map_bc")
@output_option("Composed map (.safetensors).", required=True)
@common_options
def compose_cmd(map_ab, map_bc, output, opts):
    """Chain MAP_AB (A → B) and MAP_BC (B → C) into one map A → C, with B as the pivot.

    Two affine maps (lstsq, affine, ridge, procrustes, lst, lowrank, ot) with no L2 step on
    the pivot fold into one affine matrix; otherwise (L2 on the pivot, mlp, a cca second map)
    the result is a pipeline map holding both maps' tensors and headers, checked on load.
    Either is used by `apply` and `evaluate` like a fitted map. MAP_AB's target dimension
    must be MAP_BC's source dimension; MAP_AB must map into its target space (not relative/cca).

    \b
    Example:
      latentlab compose audio2image.safetensors image2text.safetensors -o audio2text.safetensors
      latentlab evaluate audio2text.safetensors audio.npy text.npy
    """
    from ..align.compose import compose_maps

    check_outputs({"-o": output}, {"MAP_AB": map_ab, "MAP_BC": map_bc})
    res = compose_maps(map_ab, map_bc, output)
    if opts.json:
        return emit_json(res)
    d = res["dims"]
    how = ("folded into one affine map" if res["kind"] == "folded"
           else f"a pipeline of {len(res['stages'])} stages ({' → '.join(s['method'] for s in res['stages'])})")
    click.echo(f"composed {map_ab}, then {map_bc}: {d['source']} → {d['target']} dims, {how} → {output}")


__all__ = ["compose_cmd"]
