"""``latentlab retrieval``: R@k, ranks, MRR and gallery hubness, before and after a fix."""
from __future__ import annotations

import click

from ..errors import InputError
from .engine_opts import engine_options
from .main import cli, common_options
from .render import emit_json, fmt, table

# retrieval.evaluate.FIXES / METRIC_KEYS, repeated here because that module imports torch and the
# option choices are built at import (tests/cli/test_interface.py checks they agree)
FIXES = ("invgc", "localadj", "csls", "qbnorm", "dbnorm")
METRIC_KEYS = ("r_at_1", "r_at_5", "r_at_10", "median_rank", "mean_rank", "mrr", "hubness_skew", "hubs")

READING = {
    "r_at_1": "fraction of queries whose truth ranks 1st; higher = better",
    "r_at_5": "fraction with the truth in the top 5; higher = better",
    "r_at_10": "fraction with the truth in the top 10; higher = better",
    "median_rank": "1-based rank of the truth; lower = better",
    "mean_rank": "1-based rank of the truth; lower = better",
    "mrr": "mean reciprocal rank, in (0, 1]; higher = better",
    "hubness_skew": "skewness of the gallery's 10-occurrence; lower = fewer hubs",
    "hubs": "gallery rows in more than 20 top-10 lists; lower = better",
}


def read_truth(spec: str):
    """Gallery indices per query: .npy (1-D or 2-D), or a text/CSV file of integers."""
    from ..io import read_indices

    return read_indices(spec, "--truth")


@cli.command("retrieval")
@click.argument("queries")
@click.argument("gallery")
@click.option("--truth", metavar="FILE", help="Gallery index of each query's match (.npy/.txt/.csv); a 2-D "
              "array lists several relevant items per query (best rank counts).", show_default="row i ↔ row i")
@click.option("--both", is_flag=True, help="Also evaluate gallery → queries.")
@click.option("--fix", type=click.Choice(FIXES), help="Post-hoc fix to compare against the baseline.")
@click.option("--bank-gallery", metavar="EMB", help="Training embeddings of the gallery's modality (InvGC, DB-Norm).")
@click.option("--bank-queries", metavar="EMB", help="Training embeddings of the queries' modality (InvGC, QB-Norm, DB-Norm).")
@click.option("--r-gallery", type=float, help="InvGC rate for the gallery bank, in [0, 1] [default: 0.1].")
@click.option("--r-query", type=float, help="InvGC rate for the query bank, in [0, 1] [default: 0.1].")
@click.option("--pool-rate", type=float, help="LocalAdj: k = int(pool_rate·|bank|), in (0, 1] [default: 0.01].")
@click.option("--k", "k", type=int, help="CSLS neighbourhood [default: 10]; QB-Norm gate top-k [default: 1].")
@click.option("--beta", type=float, help="QB-Norm β [default: 20]; DB-Norm query-bank β₁ [default: 1/1.99].")
@click.option("--beta-gallery", type=float, help="DB-Norm gallery-bank β₂ [default: 3].")
@click.option("--sweep", "sweeps", multiple=True, metavar="NAME=START:STOP:STEP",
              help="Grid over a fix parameter (r, r_gallery, r_query, pool_rate, k, beta, beta_gallery); "
                   "repeat for a product grid. The best point (R@1, then MRR) is marked.")
@common_options
@engine_options
def retrieval_cmd(queries, gallery, truth, both, fix, bank_gallery, bank_queries, r_gallery, r_query,
                  pool_rate, k, beta, beta_gallery, sweeps, opts):
    """Cross-modal retrieval of QUERIES against GALLERY (same dimension).

    Scores are cosine similarities of L2-normalised rows (higher = more similar). Reports
    R@1/5/10 (fractions), the 1-based median and mean rank of the truth, MRR, and the
    gallery's hubness (skewness of its 10-occurrence, zeros included; hubs: N10 > 20).
    Ties count against the query: the truth is placed after every item with an equal
    score, so a degenerate model (all scores equal) gets the worst rank, never the best.
    Computed in query blocks with a chunked top-k; the score matrix is never held.

    Fixes (--fix), each compared with the baseline side by side: invgc and localadj
    (InvGC, Jian & Wang 2023; changes the gallery using --bank-gallery/--bank-queries),
    csls (Conneau et al. 2018; k = 10 neighbours in the evaluated sets), qbnorm
    (dynamic inverted softmax, Bogolin et al. 2022; needs --bank-queries), dbnorm (dual
    inverted softmax, Wang et al. 2023; needs both banks). With --both the banks swap
    roles for gallery → queries.

    \b
    Example:
      latentlab retrieval features_clip.npy::0 features_clip.npy::1 --both
      latentlab retrieval img.npy txt.npy --fix invgc --bank-gallery train_txt.npy \\
          --bank-queries train_img.npy --sweep r=0:1:0.1
      latentlab retrieval img.npy txt.npy --truth captions_of.npy --fix csls --json
    """
    from ..io import read_embeddings
    from ..retrieval.evaluate import evaluate  # torch: imported when the command runs, not for --help
    from ..retrieval.sweep import parse_sweep

    sweep = dict(parse_sweep(s) for s in sweeps) if sweeps else None
    if sweeps and len(sweep) != len(sweeps):
        raise InputError("--sweep: each parameter may be swept only once")
    banks = {name: read_embeddings(path) for name, path in
             (("bank_gallery", bank_gallery), ("bank_queries", bank_queries)) if path}
    params = {name: value for name, value in (("r_gallery", r_gallery), ("r_query", r_query),
              ("pool_rate", pool_rate), ("k", k), ("beta", beta), ("beta_gallery", beta_gallery))
              if value is not None}
    q, g = read_embeddings(queries), read_embeddings(gallery)
    res = evaluate(q, g, truth or None, fix, both=both, sweep=sweep,
                   device=opts.device, dtype=opts.dtype, **banks, **params)
    if opts.json:
        emit_json(res)
    else:
        click.echo(render_retrieval(res, q.describe(), g.describe()))


def _change(key, value):
    if value is None:
        return "—"
    better = {"median_rank": False, "mean_rank": False, "hubness_skew": False, "hubs": False}.get(key, True)
    mark = "" if value == 0 else (" (better)" if (value > 0) == better else " (worse)")
    return f"{'+' if value > 0 else ''}{fmt(value)}{mark}"


def render_retrieval(res, q_name: str, g_name: str) -> str:
    parts = [f"retrieval   queries: {q_name}   gallery: {g_name}", f"scores: {res.similarity}"]
    if res.fix:
        swept = set(res.params.get("sweep") or {})
        if "r" in swept:
            swept |= {"r_gallery", "r_query"}
        shown = {k: v for k, v in res.params.items() if k != "sweep" and k not in swept}
        line = f"fix: {res.fix}  " + "  ".join(f"{k}={fmt(v)}" for k, v in shown.items())
        if swept:
            line += "  swept: " + ", ".join(sorted(res.params["sweep"]))
        parts.append(line)
    directions = [res.forward] + ([res.reverse] if res.reverse is not None else [])
    for d in directions:
        parts.append("")
        head = f"{d.direction}  ({d.baseline.n_queries} queries, {d.baseline.n_gallery} gallery rows)"
        if d.fixed is None:
            rows = [(k, getattr(d.baseline, k), READING[k]) for k in METRIC_KEYS]
            parts += [head, table(rows, ["metric", "value", "how to read"])]
            continue
        change = d.change()
        label = "fixed" if d.sweep is None else "fixed (best of sweep)"
        rows = [(k, getattr(d.baseline, k), getattr(d.fixed, k), _change(k, change[k]), READING[k])
                for k in METRIC_KEYS]
        parts += [head, table(rows, ["metric", "baseline", label, "change", "how to read"])]
        if d.sweep is not None:
            names = list(d.sweep[0]["params"]) if d.sweep else []
            varied = [n for n in names if len({str(p["params"][n]) for p in d.sweep}) > 1] or names[:1]
            rows = [(("*" if i == d.best else ""), *[p["params"][n] for n in varied], p["r_at_1"], p["r_at_5"],
                     p["mrr"], p["hubness_skew"]) for i, p in enumerate(d.sweep)]
            parts += ["", f"sweep ({d.direction}; * = best by R@1, then MRR)",
                      table(rows, ["best", *varied, "r_at_1", "r_at_5", "mrr", "hubness_skew"])]
    text = "\n".join(parts)
    if res.notes:
        text += "\n" + "\n".join(f"note: {n}" for n in res.notes)
    return text


__all__ = ["retrieval_cmd", "render_retrieval", "read_truth"]
