"""``latentlab gram A B C …``: GRAM volumes of k ≥ 2 paired modalities (Cicchetti et al., ICLR 2025)."""
from __future__ import annotations

import click

from .main import cli, common_options
from .render import emit_json, fmt, table


def _ks(ctx, param, value):
    try:
        ks = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected comma-separated whole numbers, e.g. 1,5,10") from None
    if not ks or min(ks) < 1:
        raise click.BadParameter(f"{value!r}: expected positive whole numbers, e.g. 1,5,10")
    return ks


@cli.command("gram")
@click.argument("files", nargs=-1, required=True)
@click.option("--query", help="The set whose rows are the queries of the retrieval: a FILE as given, or its "
              "0-based position [default: the first].")
@click.option("--k", "ks", default="1,5,10", show_default=True, callback=_ks, metavar="K[,K]",
              help="Recall@K of the retrieval.")
@click.option("--retrieval/--no-retrieval", default=True, show_default=True,
              help="Rank every candidate tuple for every query row (n² volumes, blocked).")
@click.option("--bins", type=click.IntRange(1), default=20, show_default=True, help="Histogram bins over [0, 1].")
@common_options
def gram_cmd(files, query, ks, retrieval, bins, opts):
    """GRAM volume of row-paired FILES (k ≥ 2 modalities, equal widths).

    For row i: the volume √det G of the parallelotope spanned by the k L2-normalised vectors
    (G = their k × k Gram matrix) — 0 when they are dependent (identical), 1 when orthonormal;
    for k = 2 the sine of the angle between the pair. Lower = better aligned. Reported as
    mean, quantiles and a histogram, and as retrieval: row i of the --query set among the
    candidate tuples (row j of every other set), smallest volume first (ties count against).

    \b
    Example:
      latentlab gram video.npy audio.npy text.npy --query text.npy
      latentlab gram features_clip.npy::0 features_clip.npy::1 --k 1,5 --json
    """
    from ..analyze.gram import gram

    res = gram(list(files), query=query, ks=ks, retrieval=retrieval, bins=bins, device=opts.device, dtype=opts.dtype)
    if opts.json:
        return emit_json(res)
    rows = [("mean", res.mean, "mean GRAM volume; lower = better aligned"), ("std", res.std, "spread over rows")]
    rows += [(k, v, f"{int(k[1:])} % of rows have a smaller volume") for k, v in res.quantiles.items()]
    out = [f"GRAM volume of {res.k} sets ({res.n} rows × {res.dim} dims): " + ", ".join(res.names), "",
           table(rows, ["statistic", "value", "how to read"]), "", "histogram (volume: rows):",
           "  " + "  ".join(f"{fmt(res.histogram['edges'][i])}–{fmt(res.histogram['edges'][i + 1])}: {c}"
                            for i, c in enumerate(res.histogram["counts"]) if c)]
    if res.retrieval is not None:
        r = res.retrieval
        body = [(k, v, f"partner among the {k.split('_')[-1]} smallest volumes") for k, v in r.recall.items()]
        body += [("median_rank", r.median_rank, "1-based, ties count against; lower = better"),
                 ("mrr", r.mrr, "mean reciprocal rank; higher = better"),
                 ("chance r_at_1", r.chance_r_at_1, "1 / candidates")]
        out += ["", f"retrieval: rows of {r.query} among the {r.n_queries} candidate tuples of the other sets",
                "", table(body, ["metric", "value", "how to read"])]
    click.echo("\n".join(out + [f"note: {n}" for n in res.notes]))


__all__ = ["gram_cmd"]
