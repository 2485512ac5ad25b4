"""``latentlab pick-layers --source L0 L1 … --target M0 M1 …``: rank every layer pair for alignment."""
from __future__ import annotations

import click

from ..errors import InputError
from .main import cli, common_options
from .render import emit_json, fmt, table

MARKERS = ("--source", "--target")


def split_layers(tokens) -> tuple[list[str], list[str]]:
    """``--source A B --target C D`` (also ``--source A,B``, ``--source=A``, repeated markers) → the two lists."""
    out: dict[str, list[str]] = {m: [] for m in MARKERS}
    current = None
    for tok in tokens:
        head, eq, rest = tok.partition("=")
        if head in MARKERS:
            current = head
            tok = rest if eq else ""
            if not tok:
                continue
        elif tok.startswith("-") and len(tok) > 1 and not tok[1].isdigit():
            raise InputError(f"{tok}: unknown option (see 'latentlab pick-layers --help')")
        if current is None:
            raise InputError(f"{tok}: put layer files after --source or --target")
        out[current] += [t for t in tok.split(",") if t]
    for m in MARKERS:
        if not out[m]:
            raise InputError(f"{m}: give at least one layer file (e.g. {m} l0.npy l1.npy, or {m} emb.npy::0,emb.npy::1)")
    return out["--source"], out["--target"]


@cli.command("pick-layers", context_settings={"ignore_unknown_options": True})
@click.argument("layers", nargs=-1, type=click.UNPROCESSED, metavar="--source FILE… --target FILE…")
@click.option("--k", "k", type=click.IntRange(1), default=10, show_default=True, help="Neighbours of mutual k-NN.")
@click.option("--shuffles", type=click.IntRange(1), default=20, show_default=True,
              help="Seeded shufflings of the target rows: the shuffled-pairs score (their mean), the calibrated "
                   "score and the p-value (≥ 19 at α = 0.05 for a calibrated value above 0).")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="Level α of the calibration threshold.")
@click.option("--top", type=click.IntRange(1), default=20, show_default=True,
              help="Pairs shown in the table (--json always has every pair).")
@common_options
def pick_layers_cmd(layers, k, shuffles, alpha, top, opts):
    """Rank every (source layer, target layer) pair: which layers to align.

    Each pair is scored on the paired rows by mutual k-NN (Huh et al. 2024) and linear CKA
    (Kornblith et al. 2019), each beside the mean score of shuffled pairs (what chance
    gives), the calibrated score (Gröger, Wen & Brbić 2026: 0 = chance) and its p-value.
    Ranked by mutual k-NN, then CKA; higher = more alike. Every layer file has the same rows.
    The last layers are often not the best (STRUCTURE, Gröger et al. 2025).

    \b
    Example:
      latentlab pick-layers --source a/l0.npy a/l6.npy a/l11.npy --target b/l0.npy b/l11.npy
      latentlab pick-layers --source feats.npy::0 feats.npy::1 --target other.npy::0,other.npy::1 --json
    """
    from ..analyze.pick_layers import pick_layers

    sources, targets = split_layers(layers)
    res = pick_layers(sources, targets, k=k, shuffles=shuffles, alpha=alpha, seed=opts.seed,
                      device=opts.device, dtype=opts.dtype)
    if opts.json:
        return emit_json(res.to_dict())
    rows = [(p.rank, p.source, p.target, p.mutual_knn, p.mutual_knn_shuffled, p.mutual_knn_calibrated,
             p.cka, p.cka_shuffled, p.cka_calibrated) for p in res.pairs[:top]]
    rows = [[("—" if v is None else v) for v in r] for r in rows]
    head = ["rank", "source", "target", f"mutual_knn@{res.k}", "shuffled", "calibrated", "cka", "shuffled", "calibrated"]
    out = [f"pick-layers: {len(res.sources)} source × {len(res.targets)} target layers, n = {res.n} paired rows, "
           f"{res.shuffles} shuffles", "", table(rows, head)]
    if len(res.pairs) > top:
        out.append(f"… {len(res.pairs) - top} more pairs (--top, or --json for all)")
    b = res.best
    out += ["", f"best pair: {b.source} → {b.target}  (mutual_knn {fmt(b.mutual_knn)} vs {fmt(b.mutual_knn_shuffled)} "
                f"shuffled; cka {fmt(b.cka)} vs {fmt(b.cka_shuffled)} shuffled)"]
    for name, cal in res.best_calibrated.items():
        out.append(f"best {name} as a maximum over {len(res.pairs)} pairs: calibrated {fmt(cal.calibrated)}, "
                   f"chance τ = {fmt(cal.tau)}, p = {fmt(cal.p_value)}")
    out.append("shuffled = mean over shuffled pairings (chance); calibrated: 0 = no better than chance, 1 = best attainable")
    click.echo("\n".join(out + [f"note: {n}" for n in res.notes]))


__all__ = ["pick_layers_cmd", "split_layers"]
