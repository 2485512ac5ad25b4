"""``latentlab embed``: embeddings from a frozen model (hf:, st:, openclip:) written to disk.

Model libraries (and torch) are imported by the loaders only when a model is loaded, so this
module imports cleanly without the ``[models]`` extra and ``latentlab --help`` stays fast.
"""
from __future__ import annotations

import click

from ..errors import InputError
from ..io.outputs import check_outputs, embed_output
from ..loaders.spec import DEFAULT_SHARD_SIZE, MODEL_DTYPES, POOLS
from .main import cli, common_options, output_option
from .render import emit_json, table


@cli.command("embed")
@click.argument("model")
@click.argument("input", metavar="INPUT")
@output_option("OUT.npy (one output), OUT.safetensors (one tensor per layer) or a folder OUT/ "
               "(layer00.npy, …). The provenance goes to OUT.json.", required=True, type=click.Path(),
               aliases=("--out",))
@click.option("--layers", default=None, metavar="all|-1|0,3,6",
              help='Save pooled hidden states of these layers (0 = embedding output).',
              show_default="the model's own embedding")
@click.option("--pool", type=click.Choice(POOLS), default=None,
              help='Token pooling (mean skips padding).',
              show_default="the model's own pooling for st:, mean for hf:, the projection head for openclip:")
@click.option("--normalize", is_flag=True, help='L2-normalise every output row.',
              show_default='as the model gives them')
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True,
              help="Items per forward pass: a memory and speed knob.")
@click.option("--max-length", type=click.IntRange(1), default=None,
              help='Truncate texts to this many tokens.', show_default="the model's limit")
@click.option("--limit", type=click.IntRange(1), default=None, help="Embed only the first N items.")
@click.option("--modality", type=click.Choice(["auto", "text", "image"]), default="auto", show_default=True,
              help="auto: a folder is images, a file is text; image: a file lists image paths.")
@click.option("--column", default=None, help="Column holding the items in a .jsonl/.csv/.tsv/.parquet INPUT.")
@click.option("--strict", is_flag=True, help="Fail on an undecodable image instead of skipping it.")
@click.option("--shard-size", type=click.IntRange(1), default=DEFAULT_SHARD_SIZE, show_default=True,
              help="Rows per shard; an interrupted run resumes at the first unfinished shard.")
@common_options
def embed_cmd(model, input, output, layers, pool, normalize, batch_size, max_length, limit, modality, column,
              strict, shard_size, opts):
    """Embed INPUT with a frozen MODEL and write the embeddings to OUT.

    MODEL is hf:NAME_OR_PATH (transformers), st:NAME_OR_PATH (sentence-transformers) or
    openclip:ARCH:PRETRAINED_OR_PATH. A local folder is loaded offline. INPUT is a text file
    (one item per line), a .jsonl/.csv/.tsv/.parquet with --column, a folder of images, or a
    file of image paths with --modality image. Rows come out in input order, float32,
    not normalised unless --normalize. --dtype sets the model precision (float16/bfloat16
    for GPUs). A progress bar with items/s goes to stderr.

    \b
    Example:
      latentlab embed st:sentence-transformers/all-MiniLM-L6-v2 captions.txt -o text.npy
      latentlab embed hf:./minilm captions.txt -o layers/ --layers all --pool mean
      latentlab embed openclip:ViT-B-32:laion2b_s34b_b79k photos/ -o img.npy --dtype float16
    """
    from ..loaders.spec import parse_layers

    parse_layers(layers)  # a bad --layers fails before any model work
    check_outputs({"-o": embed_output(output)}, {"INPUT": input, "MODEL": _model_path(model)},
                  input_sidecars=False)
    _fail_fast(model)
    from ..loaders import embed_to_file  # torch and the model library: only now

    report = embed_to_file(model, input, output, layers=layers, pool=pool, normalize=normalize,
                           batch_size=batch_size, max_length=max_length, device=opts.device, dtype=opts.dtype,
                           limit=limit, modality=modality, column=column, strict=strict,
                           shard_size=shard_size, progress=not opts.json)
    if opts.json:
        emit_json(report)
    else:
        click.echo(render_embed(report))


def _fail_fast(model: str) -> None:
    """A hub name that can be neither downloaded nor found in the cache: error before importing torch."""
    from ..loaders.hub import require_available
    from ..loaders.spec import parse_spec

    require_available(parse_spec(model))


def _model_path(model: str):
    """A local model folder or weights file (protected from -o); None for hub names or bad specs."""
    from ..loaders.spec import parse_spec

    try:
        return parse_spec(model).local
    except InputError:
        return None  # the loader reports a bad spec in its own words


def _widen_dtype(command: click.Command) -> click.Command:
    """Model precision needs float16/bfloat16 beside the shared --dtype choices; same option, wider."""
    for param in command.params:
        if param.name == "dtype":
            param.type = click.Choice(list(MODEL_DTYPES))
            param.help = "Model precision: float32, float64, or float16/bfloat16 (half precision, for GPUs)."
    return command


_widen_dtype(embed_cmd)


def render_embed(r) -> str:
    """The table of an :class:`~latentlab.loaders.EmbedReport`."""
    p = r.provenance
    rows = [
        ("model", p.get("model")),
        ("revision / weights", p.get("model_revision") or (p.get("model_sha256") or "—")[:16]),
        ("input", f"{p.get('input')} ({p.get('modality')}, sha256 {p.get('input_sha256', '')[:16]})"),
        ("rows × dims", f"{r.count} × {r.dim}"),
        ("layers", ", ".join(str(x) for x in r.layers)),
        ("pooling", p.get("pooling")),
        ("normalised", "yes (unit rows: cosine = dot)" if p.get("normalize") else "no"),
        ("model dtype", p.get("dtype")),
        ("skipped", r.skipped),
        ("resumed shards", r.resumed_shards),
        ("throughput", f"{r.items_per_s:.1f} items/s ({r.seconds:.1f} s)"),
    ]
    lines = [table(rows, ["embed", "value"]), ""]
    lines += [f"wrote {f}" for f in r.files]
    lines.append(f"wrote {r.sidecar} (provenance)")
    return "\n".join(lines)


__all__ = ["embed_cmd", "render_embed"]
