"""``latentlab gap``: the modality-gap report."""
from __future__ import annotations

import click

from ..io.outputs import check_outputs
from .engine_opts import engine_options
from .main import cli, common_options, output_option
from .render import echo_notes, emit_json, provenance_lines, table

READING = {
    "centroid_distance": "distance between centroids of L2-normalised rows; 0 = no gap, max 2",
    "pair_distance": "mean distance of matched pairs (L2-normalised); 0 = identical, max 2",
    "pair_cosine": "mean cosine of matched pairs; similarity, 1 = identical",
    "relative_gap": "Relative Modality Gap (Schrodi et al. 2025); 0 = no gap, 1 = fully separated",
    "linear_separability": "held-out accuracy of a linear probe A vs B; 0.5 = inseparable",
}


@cli.command("gap")
@click.argument("a")
@click.argument("b")
@click.option("--paired/--unpaired", default=None,
              help='Row i of A matches row i of B.', show_default='paired when the row counts agree')
@click.option("--shift", metavar="START:STOP:STEP",
              help="Embedding-shift experiment over δ (e.g. -1:1:0.25): gap and A→B R@1 per δ.")
@click.option("--top-k", type=click.IntRange(1), default=10, show_default=True,
              help="How many dimensions of the gap vector to list.")
@output_option("Write the gap vector Δ = μA − μB (.npy, float32).", aliases=("--save-vector",))
@click.option("--probe/--no-probe", default=True, show_default=True, help="Fit the linear-separability probe.")
@click.option("--probe-rows", type=click.IntRange(5), default=5000, show_default=True,
              help="At most this many rows per set for the probe (seeded sample).")
@click.option("--bootstrap", type=click.IntRange(1), default=None, metavar="N",
              help="95 % percentile intervals for the distances (N resamples; pairs resampled together).")
@common_options
@engine_options
def gap_cmd(a, b, paired, shift, top_k, output, probe, probe_rows, bootstrap, opts):
    """Modality gap between embedding sets A and B (same dimension).

    Reports the centroid distance of the L2-normalised sets (Liang et al. 2022), the mean
    pair distance and Relative Modality Gap (Schrodi et al. 2025) for paired inputs, the
    held-out accuracy of a linear probe, and the dimensions that carry the gap.

    \b
    Example:
      latentlab gap features_clip.npy::0 features_clip.npy::1 --shift -1:1:0.25
      latentlab gap images.npy texts.npy --json -o gap.npy --bootstrap 1000
    """
    import numpy as np

    from ..analyze.gap import gap, parse_shift  # torch: imported when the command runs, not for --help
    from ..io import read_embeddings, save_array

    check_outputs({"-o": output}, {"A": a, "B": b})
    deltas = parse_shift(shift) if shift else None
    ea, eb = read_embeddings(a), read_embeddings(b)
    res = gap(ea, eb, paired=paired, shift=deltas, top_k=top_k, separability=probe, probe_rows=probe_rows,
              bootstrap=bootstrap, seed=opts.seed, device=opts.device, dtype=opts.dtype)
    if output:
        save_array(output, res.gap_vector.astype(np.float32))
    if opts.json:
        prov = {k: e.provenance for k, e in (("A", ea), ("B", eb)) if e.provenance}
        emit_json({**res.to_dict(), **({"provenance": prov} if prov else {})})
    else:
        click.echo(render_gap(res, a, b))
        for line in provenance_lines(A=ea, B=eb):
            click.echo(line)


def render_gap(res, a: str, b: str) -> str:
    """The text of a :class:`~latentlab.analyze.gap.GapResult`."""
    head = (f"modality gap   A: {a} ({res.n_a} × {res.dim})   B: {b} ({res.n_b} × {res.dim})   "
            f"{'paired' if res.paired else 'unpaired'}")
    rows = [(k, getattr(res, k), READING[k]) for k in READING]
    parts = [head, "", table(rows, ["metric", "value", "how to read"]), ""]
    dims = [(d["dim"], d["delta"], f"{100 * d['share']:.1f}%") for d in res.top_dimensions]
    parts.append(f"top {len(dims)} dimensions of Δ = μA − μB hold {100 * res.top_dimensions_share:.1f}% of ‖Δ‖²")
    parts.append(table(dims, ["dim", "delta", "share"]))
    if res.shift is not None:
        parts += ["", "embedding shift (positive δ moves A and B towards each other)",
                  table([(p.delta, p.centroid_distance, p.r_at_1) for p in res.shift],
                        ["delta", "centroid_distance", "r_at_1 (A→B)"])]
    text = "\n".join(parts)
    if res.centroid_distance.interval is not None:
        est = res.centroid_distance
        text += f"\nintervals: {100 * est.level:.0f} % {est.method} ({est.n_resamples} resamples)"
    if res.notes:
        text += "\n" + "\n".join(f"note: {n}" for n in res.notes)
    return text


__all__ = ["gap_cmd", "render_gap", "echo_notes"]
