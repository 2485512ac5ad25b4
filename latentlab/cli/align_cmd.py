"""CLI commands for the align part of latentlab: ``fit``, ``apply``, ``evaluate``, ``match``."""
from __future__ import annotations

import click

from ..errors import InputError
from ..io.outputs import check_outputs
from .engine_opts import engine_options
from .main import cli, common_options
from .render import emit_json, table

METHOD_NAMES = ["relative", "lstsq", "ridge", "affine", "procrustes", "lst", "lowrank", "cca", "ot", "mlp", "unsupervised"]

READING = {
    "r_at_1": "source row's partner ranked first among targets (cosine); higher = better",
    "r_at_5": "partner within the top 5; higher = better",
    "r_at_10": "partner within the top 10; higher = better",
    "mrr": "mean reciprocal rank of the partner; higher = better, max 1",
    "median_rank": "median rank of the partner (1-based, ties count against); lower = better",
    "mean_cosine": "mean cosine similarity of true pairs after mapping; higher = better",
    "knn_accuracy": "label of the nearest mapped target equals the source label; higher = better",
}


def _indices(spec: str | None, option: str):
    """Row indices from .npy / .txt / .csv (io.read_indices: one-line errors); None passes through."""
    if spec is None:
        return None
    from ..io import read_indices

    return read_indices(spec, option)


def _labels(spec: str | None):
    """Labels: integer ids via read_indices, or any non-object .npy array (e.g. strings)."""
    if spec is None:
        return None
    from pathlib import Path

    p = Path(spec)
    if p.suffix.lower() != ".npy" or not p.is_file():
        return _indices(spec, "--labels")
    import numpy as np

    try:
        return np.load(p, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"--labels {spec}: not a readable .npy array ({type(exc).__name__})") from None


def _parse_alpha(value):
    if value is None:
        return None
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        raise InputError(f"--alpha {value!r}: expected a number ≥ 0 or 'auto'") from None


@cli.command("fit")
@click.argument("method", type=click.Choice(METHOD_NAMES), metavar="METHOD")
@click.argument("src")
@click.argument("tgt")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Artifact path (.safetensors).")
@click.option("--anchors", type=click.Path(dir_okay=False), help="IDX.npy/.txt/.csv: row indices used as anchor pairs (ot: seed pairs).")
@click.option("--n-anchors", type=int, help='Choose this many anchors with --anchor-strategy.',
              show_default='every row')
@click.option("--anchor-strategy", type=click.Choice(["random", "kmeans", "fps", "stratified"]), default="random",
              show_default=True, help="How --n-anchors rows are chosen (on the source rows; seeded by --seed).")
@click.option("--labels", type=click.Path(dir_okay=False), help="L.npy: one label per row (for stratified).")
@click.option("--alpha", help="ridge: penalty α ≥ 0, or 'auto' (GCV / leave-one-out). lowrank: ridge before truncation.")
@click.option("--alpha-cv", type=click.Choice(["gcv", "loo"]), help="ridge --alpha auto criterion [default: gcv].")
@click.option("--rank", type=int, help="lowrank: rank of the map.")
@click.option("--components", type=int, help="cca: number of canonical pairs.")
@click.option("--reg", type=float, help="cca: covariance shrinkage in [0,1). ot: entropic reg for sinkhorn [default: 0.05].")
@click.option("--scale/--no-scale", default=None, help="procrustes: also fit an isotropic scale [default: no].")
@click.option("--solver", type=click.Choice(["auto", "emd", "sinkhorn"]), help="ot: inner OT solver [default: auto].")
@click.option("--iters", type=int, help="ot: Wasserstein-Procrustes iterations [default: 20]. unsupervised: most self-learning rounds per start [default: 100].")
@click.option("--gw-rows", type=int,
              help="ot: the GW start uses this many rows per side, those farthest from the centroid [default: 1000].")
@click.option("--hidden", type=int, help="mlp: hidden units per layer [default: 1024].")
@click.option("--layers", type=int, help="mlp: linear layers of the MLP branch, ≥ 2 [default: 2].")
@click.option("--dropout", type=float, help="mlp: dropout after each hidden layer [default: 0.1].")
@click.option("--loss", "loss_kind", type=click.Choice(["infonce", "mse", "both"]), help="mlp: training loss [default: both].")
@click.option("--epochs", type=int, help="mlp: passes over the training pairs [default: 100].")
@click.option("--batch-size", type=int, help="mlp: pairs per batch, ≥ 2 [default: 256].")
@click.option("--lr", type=float, help="mlp: AdamW peak learning rate (warm-up, cosine decay) [default: 1e-3].")
@click.option("--weight-decay", type=float, help="mlp: AdamW weight decay on weight matrices [default: 0.01].")
@click.option("--val-frac", type=float, help="mlp: share of the pairs held out for early stopping [default: 0.1].")
@click.option("--patience", type=int, help="mlp: stop after this many epochs without a better validation loss [default: 10]. unsupervised: rounds without a better CSLS objective before the keep probability doubles [default: 5].")
@click.option("--init", "init", type=click.Choice(["auto", "profile", "gw"]),
              help="unsupervised: coordinate-free start(s): similarity-distribution profiles, Gromov-Wasserstein, or both [default: auto].")
@click.option("--restarts", type=int, help="unsupervised: profile starts, each refined and scored [default: 3].")
@click.option("--keep-prob", type=float, help="unsupervised: first keep probability of the stochastic dictionary induction, in (0, 1] [default: 0.1].")
@click.option("--init-rows", type=int, help="unsupervised: rows per side of each start [default: 1000].")
@click.option("--max-rows", type=int, help="unsupervised: rows per side used by the self-learning, a seeded sample [default: 6000].")
@click.option("--seed-pairs", type=click.Path(dir_okay=False),
              help="unsupervised: PAIRS.npy/.csv, k × 2 known (source row, target row) pairs, k ≥ 2 (~10 needed): "
                   "seeded graph matching replaces the pairs-free starts.")
@click.option("--precision", type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
              help="mlp: forward-pass precision; auto = bfloat16 autocast on CUDA where native (else float16 with "
                   "loss scaling), float32 on CPU [default: auto].")
@click.option("--structure", type=float, help="mlp: weight λ ≥ 0 of the STRUCTURE regulariser [default: 0].")
@click.option("--structure-levels", type=int, help="mlp: powers of the similarity matrix STRUCTURE compares [default: 1].")
@click.option("--l2/--no-l2", default=None, help='L2-normalise rows first.', show_default='ot yes, others no')
@click.option("--center/--no-center", default=None,
              help="Subtract each side's anchor mean.", show_default='yes except lstsq and relative')
@click.option("--standardize/--no-standardize", default=None,
              help='Standard-scale with anchor std, ddof 1.', show_default='lst only')
@common_options
@engine_options
def fit_cmd(method, src, tgt, output, anchors, n_anchors, anchor_strategy, labels, alpha, alpha_cv, rank,
            components, reg, scale, solver, iters, gw_rows, hidden, layers, dropout, loss_kind, epochs, batch_size,
            lr, weight_decay, val_frac, patience, structure, structure_levels, init, restarts, keep_prob, init_rows,
            max_rows, seed_pairs, precision, l2, center, standardize, opts):
    """Fit a stitching map METHOD from SRC rows to TGT rows and save it.

    Methods: relative (cosine to anchors), lstsq, ridge, affine, procrustes, lst (Latent
    Space Translation), lowrank (reduced-rank regression), cca (shared canonical space),
    ot (no pairs: Wasserstein-Procrustes), mlp (trained projector, optional STRUCTURE
    regulariser), unsupervised (no pairs: coordinate-free starts + CSLS self-learning, with a
    selection score against its chance level). Row i of SRC matches row i of TGT (ot and
    unsupervised: unpaired).
    Preprocessing is L2 → centre → standardise with anchor statistics, stored in the artifact.

    \b
    Example:
      latentlab fit procrustes clip.npy::0 clip.npy::1 --n-anchors 300 -o map.safetensors
      latentlab fit ridge img.npy txt.npy --anchors idx.npy --alpha auto -o ridge.safetensors
      latentlab fit ot a.npy b.npy -o ot.safetensors --json
      latentlab fit unsupervised a.npy b.npy -o uns.safetensors --restarts 3
      latentlab fit unsupervised a.npy b.npy -o uns.safetensors --seed-pairs pairs.csv
      latentlab fit mlp img.npy txt.npy -o mlp.safetensors --loss both --structure 10 --epochs 50
    """
    from ..align import fit_aligner

    check_outputs({"-o": output}, {"SRC": src, "TGT": tgt, "--anchors": anchors, "--labels": labels,
                                   "--seed-pairs": seed_pairs})
    params = {"alpha": _parse_alpha(alpha), "alpha_cv": alpha_cv, "rank": rank, "components": components,
              "reg": reg, "scale": scale, "solver": solver, "iters": iters, "gw_rows": gw_rows, "hidden": hidden,
              "layers": layers, "dropout": dropout, "loss": loss_kind, "epochs": epochs, "batch_size": batch_size,
              "lr": lr, "weight_decay": weight_decay, "val_frac": val_frac, "patience": patience,
              "structure": structure, "structure_levels": structure_levels, "init": init, "restarts": restarts,
              "keep_prob": keep_prob, "init_rows": init_rows, "max_rows": max_rows,
              "seed_pairs": _indices(seed_pairs, "--seed-pairs")}
    params = {k: v for k, v in params.items() if v is not None}
    idx = _indices(anchors, "--anchors")
    lab = _labels(labels)
    aligner = fit_aligner(method, src, tgt, anchors=idx, n_anchors=n_anchors, anchor_strategy=anchor_strategy,
                          labels=lab, seed=opts.seed, device=opts.device, dtype=opts.dtype, l2=l2, center=center,
                          standardize=standardize, precision=precision, **params)
    aligner.save(output)
    meta = aligner.metadata()
    out = {"method": method, "output": output, "dim_source": meta["dims"]["source"],
           "dim_target": meta["dims"]["target"], "dim_common": meta["dims"]["common"],
           "n_anchors": meta["n_anchors"], "compute_dtype": meta["compute_dtype"], **{k: v for k, v in aligner.fit_stats_.items() if k != "alpha_grid"},
           "params": meta["params"], "preprocessing": {s: {k: v for k, v in p.items() if k != "order"}
                                                        for s, p in meta["preprocessing"].items()}}
    if opts.json:
        emit_json(out)
        return
    click.echo(f"fitted {method}: {src} ({out['dim_source']}) → {tgt} ({out['dim_target']}), "
               f"common space {out['dim_common']} dims, {out['n_anchors']} anchors → {output}")
    rows = [(k, v if not isinstance(v, list) else f"[{len(v)} values]") for k, v in aligner.fit_stats_.items()
            if k != "alpha_grid"]
    if "relative_residual" in aligner.fit_stats_:
        rows.append(("", "relative_residual = ‖X'W − Y'‖²/‖Y'‖² on anchors: a distance ratio, 0 = perfect"))
    if "selection_score" in aligner.fit_stats_:
        rows.append(("", "selection_score = mutual 10-NN agreement of the pseudo-pairs (no pairs used); "
                         "selection_null = the same for random rotations; gain = (score − null)/(1 − null)"))
    if "gw_loss" in aligner.fit_stats_:
        rows.append(("", "gw_loss = mean (Kx − P Ky Pᵀ)² of the seeded matching (lower = better; gw_loss_random: a "
                         "random matching); the verdict: final_gw_ratio = the same for the final pseudo-pairs over a random "
                         "matching's (≤ 0.65) and seed_r_at_1 = share of seed pairs the final map ranks first (≥ 0.5)"))
    click.echo(table(rows, ["fit statistic", "value"]))


@cli.command("apply")
@click.argument("map_path", metavar="MAP")
@click.argument("x")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output embeddings: .npy, .npz, .safetensors, .parquet, .csv, .tsv (streamed) or .pt (in memory).")
@click.option("--side", type=click.Choice(["source", "target"]), default="source", show_default=True,
              help="Map source rows (transform) or target rows (transform_target) into the common space.")
@common_options
def apply_cmd(map_path, x, output, side, opts):
    """Map rows of X into the common space of a fitted MAP and write them.

    X may be a .npy file, a folder of shards or a LAION-style dump: rows are read, mapped
    (on --device, in float64) and written block by block, so any number of rows fits in
    memory; --dtype is the output's dtype. Nothing is left behind if it stops early.

    \b
    Example:
      latentlab apply map.safetensors new_images.npy -o mapped.npy
      latentlab apply map.safetensors img_emb/ -o mapped.parquet
      latentlab apply cca.safetensors texts.npy --side target -o texts_cca.npy
    """
    from ..align import apply_map

    check_outputs({"-o": output}, {"MAP": map_path, "X": x})
    res = apply_map(map_path, x, output, side=side, device=opts.device, dtype=opts.dtype)  # maps carry no device
    if opts.json:
        emit_json(res)
    else:
        click.echo(f"mapped {res.rows} {side} rows with {res.method} → {output} ({res.dim_out} dims, {res.dtype})")


@cli.command("evaluate")
@click.argument("map_path", metavar="MAP")
@click.argument("src")
@click.argument("tgt")
@click.option("--rows", type=click.Path(dir_okay=False), help='IDX.npy: rows to evaluate.',
              show_default='non-anchor rows')
@click.option("--labels", type=click.Path(dir_okay=False), help="L.npy: one label per row (adds knn_accuracy).")
@common_options
def evaluate_cmd(map_path, src, tgt, rows, labels, opts):
    """Retrieval of true partners after mapping SRC and TGT rows with MAP, against baselines.

    Each held-out source row retrieves its partner among the mapped target rows by cosine
    (ties count against the map). Baselines: identity (raw rows, when dims agree) and a
    fixed seeded random rotation.

    \b
    Example:
      latentlab evaluate map.safetensors clip.npy::0 clip.npy::1
      latentlab evaluate map.safetensors a.npy b.npy --rows test.npy --labels y.npy --json
    """
    from ..align import evaluate_aligner

    res = evaluate_aligner(map_path, src, tgt, rows=_indices(rows, "--rows"),
                           labels=_labels(labels), device=opts.device, dtype="float64")
    if opts.json:
        emit_json(res)
        return
    click.echo(f"evaluate {res.method} map: {src} → {tgt}, {res.n_rows} {res.rows}")
    keys = [k for k in READING if k != "knn_accuracy" or res.knn_accuracy is not None]
    ident, rot = res.baselines.get("identity"), res.baselines.get("random_rotation")
    body = [(k, getattr(res, k), ident[k] if ident else None, rot[k] if rot else None, READING[k]) for k in keys]
    click.echo(table(body, ["metric", res.method, "identity", "random rotation", "how to read"]))
    for note in res.notes:
        click.echo(f"note: {note}")


@cli.command("match")
@click.argument("a")
@click.argument("b")
@click.option("--method", type=click.Choice(["emd", "sinkhorn", "gw"]), default="emd", show_default=True,
              help="Exact OT, entropic OT, or Gromov-Wasserstein (coordinate-free).")
@click.option("--reg", type=float, default=0.05, show_default=True,
              help="sinkhorn: entropic regularisation, relative to the max cost (the cost is normalised).")
@click.option("--rotate/--no-rotate", default=True, show_default=True,
              help="emd/sinkhorn: solve for an orthogonal map jointly (inputs need not share coordinates); "
                   "--no-rotate uses the cosine distance of the rows as given.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the assignment (.npy): row i of A ↔ row match[i] of B.")
@click.option("--plan", "plan_path", type=click.Path(dir_okay=False), help="Write the transport plan (.npy, n × n).")
@click.option("--truth", type=click.Path(dir_okay=False), help="IDX.npy: true partner in B of each row of A (reports accuracy).")
@click.option("--iters", type=int, default=20, show_default=True, help="Wasserstein-Procrustes iterations (rotate).")
@click.option("--gw-rows", type=int, default=1000, show_default=True,
              help="Rows per side (farthest from the centroid) for the GW start (rotate).")
@common_options
def match_cmd(a, b, method, reg, rotate, output, plan_path, truth, iters, gw_rows, opts):
    """One-to-one assignment between two unpaired sets A and B of equal size (optimal transport).

    \b
    Example:
      latentlab match a.npy b.npy --method emd -o match.npy --truth truth.npy
      latentlab match a.npy b_mapped.npy --no-rotate --method sinkhorn --reg 0.05 --plan plan.npy
    """
    from ..align import match
    from ..io import save_array

    check_outputs({"-o": output, "--plan": plan_path}, {"A": a, "B": b, "--truth": truth})
    if iters < 1 or gw_rows < 2:
        raise InputError("--iters must be ≥ 1 and --gw-rows ≥ 2")
    res = match(a, b, method, reg=reg, rotate=rotate, truth=_indices(truth, "--truth"), iters=iters,
                gw_rows=gw_rows, seed=opts.seed, device=opts.device)
    if output:
        save_array(output, res.assignment)
    if plan_path:
        save_array(plan_path, res.plan)
    if opts.json:
        emit_json({**res.to_dict(), "output": output, "plan": plan_path})
        return
    rows = [("accuracy", res.accuracy, "fraction of rows matched to their true partner; higher = better"),
            ("transport_cost", res.transport_cost, "cost of the final plan; a distance, lower = better"),
            ("iterations", res.iterations, "alternations of matching and rotation")]
    click.echo(f"match {method} ({'rotation solved jointly' if res.rotate else 'rows as given'}): {res.n} rows"
               + (f" → {output}" if output else ""))
    click.echo(table(rows, ["metric", "value", "how to read"]))
    for note in res.notes:
        click.echo(f"note: {note}")


__all__ = ["fit_cmd", "apply_cmd", "evaluate_cmd", "match_cmd"]
