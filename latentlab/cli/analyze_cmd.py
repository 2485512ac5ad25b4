"""CLI commands for the analyze part: uniformity, cka, overlap, spectrum (similarity_cmd: similarity, cka-matrix)."""
from __future__ import annotations

import click

from .engine_opts import engine_options
from .main import cli, common_options
from .render import calibration_cells, emit_json, fmt, table

BOOT_HELP = ("95% intervals from N resamples of the rows (seeded by --seed), median-centred on the estimate; "
             "the output names the scheme.")
PERM_HELP = "Permutation p-value from N shufflings of B's rows (null: unrelated pairing)."
CAL_HELP = ("Null-calibrated score from N shufflings of B's rows (Gröger, Wen & Brbić 2026): τ = (1 − α) "
            "quantile of observed and null scores, calibrated = clamp((s − τ)/(s_max − τ), 0, 1), add-one p-value.")
ALPHA_HELP = "Significance level α of the calibration threshold τ, in (0, 1)."


def calibration_options(func):
    func = click.option("--alpha", type=float, default=0.05, show_default=True, help=ALPHA_HELP)(func)
    return click.option("--calibrate", type=click.IntRange(1), metavar="K", help=CAL_HELP)(func)


def _rows(res, reading: dict, headline=()) -> str:
    """The metric table; a ``headline`` metric that is None is shown as undefined, never dropped."""
    rows = [(k, getattr(res, k) if getattr(res, k, None) is not None else "— (undefined, see note)", reading[k])
            for k in reading if getattr(res, k, None) is not None or k in headline]
    return table(rows, ["metric", "value", "how to read"])


def _footer(res, extra: list[str] | None = None) -> str:
    lines = list(extra or [])
    boot = getattr(res, "bootstrap", None)
    if isinstance(boot, dict):
        for scheme in sorted(set(boot.values())):
            names = ", ".join(k for k, v in boot.items() if v == scheme)
            lines.append(f"intervals ({names}): {scheme}, 95%")
    elif boot:
        lines.append(f"intervals: {boot}, 95%")
    if getattr(res, "permutation", None):
        lines.append(f"p-values: {res.permutation}")
    lines += [f"note: {n}" for n in res.notes]
    return ("\n" + "\n".join(lines)) if lines else ""


@cli.command("uniformity")
@click.argument("a")
@click.argument("b", required=False)
@click.option("--t", "t", type=float, default=2.0, show_default=True, help="Temperature t of exp(−t‖x_i − x_j‖²).")
@click.option("--alpha", type=float, default=2.0,
              show_default=True, help="Exponent α of the alignment ‖a_i − b_i‖^α.")
@click.option("--sample", type=click.IntRange(1), help="Estimate on N random distinct pairs instead of all pairs.")
@click.option("--bootstrap", type=click.IntRange(1), metavar="N", help=BOOT_HELP)
@common_options
def uniformity_cmd(a, b, t, alpha, sample, bootstrap, opts):
    """Uniformity of A (and B) and alignment of paired rows (Wang & Isola 2020).

    Rows are L2-normalised. uniformity = log mean over pairs i<j of exp(−t‖x_i − x_j‖²),
    exact in row blocks (no n × n matrix); lower = more uniform. alignment (with B, rows
    paired) = mean ‖a_i − b_i‖^α, a distance: lower = better aligned.

    \b
    Example:
      latentlab uniformity features_clip.npy::0 features_clip.npy::1
      latentlab uniformity emb.npy --sample 1000000 --bootstrap 200 --json
    """
    from ..analyze.uniformity import uniformity  # torch: imported when the command runs, not for --help

    res = uniformity(a, b, t=t, alpha=alpha, sample=sample, bootstrap=bootstrap, seed=opts.seed,
                     device=opts.device, dtype=opts.dtype)
    if opts.json:
        return emit_json(res)
    reading = {"uniformity": "log-mean Gaussian potential of A; lower = more uniform, 0 = collapsed",
               "uniformity_b": "the same for B", "alignment": "mean ‖a_i − b_i‖^α of pairs; distance, lower = closer"}
    how = "exact over all" if res.exact else "estimated on"
    click.echo(f"uniformity (t = {fmt(res.t)})   A: {a}   n = {res.n}   {how} {res.pairs} pairs\n\n"
               + _rows(res, reading) + _footer(res))


@cli.command("cka")
@click.argument("a")
@click.argument("b")
@click.option("--kernel", type=click.Choice(["linear", "rbf"]), default="linear", show_default=True,
              help="linear: exact, streamed, O(d²) memory. rbf: Gaussian kernel, chunked, O(n²) time.")
@click.option("--sigma-frac", type=float, default=0.5, show_default=True,
              help="RBF bandwidth σ as a fraction of the median pairwise distance (Kornblith's convention).")
@click.option("--debiased", is_flag=True, help="Unbiased HSIC estimator (Song et al. 2012).")
@click.option("--max-n", type=click.IntRange(2), default=10000, show_default=True,
              help="RBF refuses more rows than this unless --sample is given.")
@click.option("--sample", type=click.IntRange(2), help="RBF only: use N rows drawn at random (seeded).")
@click.option("--bootstrap", type=click.IntRange(1), metavar="N", help=BOOT_HELP)
@click.option("--permutations", type=click.IntRange(1), metavar="N", help=PERM_HELP)
@calibration_options
@common_options
@engine_options
def cka_cmd(a, b, kernel, sigma_frac, debiased, max_n, sample, bootstrap, permutations, calibrate, alpha, opts):
    """Centred kernel alignment of row-paired A and B (Kornblith et al. 2019).

    A similarity in [0, 1]: 1 = identical up to rotation and isotropic scaling. Linear CKA
    is computed exactly from streamed float64 moments, whatever the number of rows.

    \b
    Example:
      latentlab cka layer6.npy layer7.npy --bootstrap 1000 --permutations 1000
      latentlab cka a.npy b.npy --kernel rbf --sigma-frac 0.5 --debiased --json
      latentlab cka img.npy txt.npy --calibrate 200
    """
    from ..analyze.cka import cka  # torch: imported when the command runs, not for --help

    res = cka(a, b, kernel=kernel, debiased=debiased, sigma_frac=sigma_frac, max_n=max_n, sample=sample,
              bootstrap=bootstrap, permutations=permutations, calibrate=calibrate, alpha=alpha, seed=opts.seed,
              device=opts.device, dtype=opts.dtype)
    if opts.json:
        return emit_json(res)
    name = f"{'debiased ' if debiased else ''}{kernel} CKA" + (f" (σ = {sigma_frac} × median distance)" if kernel == "rbf" else "")
    reading = {"cka": "similarity in [0, 1]; 1 = same up to rotation and scale",
               "p_value": "one-sided, null of unrelated pairing; small = related"}
    extra = calibration_cells({"cka": res.calibration} if res.calibration else {})
    click.echo(f"{name}   A: {a} ({res.n} × {res.dim_a})   B: {b} ({res.n} × {res.dim_b})\n\n"
               + _rows(res, reading, ("cka",)) + _footer(res, extra))


@cli.command("overlap")
@click.argument("a")
@click.argument("b")
@click.option("--rank", type=click.IntRange(1), help="Compare the top-r principal directions of each set.")
@click.option("--variance", type=float, default=0.99, show_default=True,
              help="Without --rank: the fewest directions holding this fraction of the variance.")
@click.option("--k", "k", type=click.IntRange(1), default=10, show_default=True, help="Neighbours for mutual k-NN.")
@click.option("--bootstrap", type=click.IntRange(1), metavar="N", help=BOOT_HELP)
@click.option("--permutations", type=click.IntRange(1), metavar="N", help=PERM_HELP + " For svcca, pwcca, mutual_knn.")
@calibration_options
@click.option("--sample", type=click.IntRange(2), metavar="N",
              help="Compute on N rows drawn at random (seeded; the same rows of A and B): mutual k-NN's "
                   "--bootstrap needs every row in memory, the covariance scores and every null stream.")
@common_options
def overlap_cmd(a, b, rank, variance, k, bootstrap, permutations, calibrate, alpha, sample, opts):
    """Subspace overlap of A and B: principal angles between their top PCA subspaces and, for
    row-paired inputs, SVCCA, PWCCA, angular Procrustes distance and mutual k-NN.

    Every score comes with its chance value: overlap_chance (random subspaces of the same
    ranks), mutual_knn_chance = k/(n − 1), and with --calibrate the null-calibrated svcca,
    pwcca and mutual_knn. The default ranks keep r_A + r_B ≤ d (larger ranks force angles
    to 0); SVCCA/PWCCA are null with the reason when the ranks exceed the rows (n ≤ d).

    \b
    Example:
      latentlab overlap features_clip.npy::0 features_clip.npy::1 --variance 0.9
      latentlab overlap a.npy b.npy --rank 20 --bootstrap 200 --permutations 200 --json
    """
    from ..analyze.overlap import overlap  # torch: imported when the command runs, not for --help

    res = overlap(a, b, rank=rank, variance=variance, k=k, bootstrap=bootstrap, permutations=permutations,
                  calibrate=calibrate, alpha=alpha, sample=sample, seed=opts.seed, device=opts.device,
                  dtype=opts.dtype)
    if opts.json:
        out = res.to_dict()
        out.update({f"p_value_{m}": p for m, p in res.p_values.items()})
        return emit_json(out)
    reading = {"overlap": "mean cos² of principal angles; similarity, 1 = same subspace",
               "overlap_chance": f"overlap of random subspaces of ranks {res.rank_a}/{res.rank_b}: max(r)/d",
               "forced_zero_angles": "angles that r_A + r_B > d forces to 0 whatever the data",
               "grassmann_distance_rad": "‖θ‖₂ of principal angles; distance, 0 = same subspace",
               "svcca": "mean canonical correlation of the 99%-variance PCA parts; similarity",
               "pwcca": "projection-weighted mean canonical correlation; similarity",
               "procrustes_angle_rad": "angular shape distance (radians, 0..π/2); distance",
               "mutual_knn": "mean shared fraction of k nearest neighbours; similarity",
               "mutual_knn_chance": "mutual_knn of unrelated sets: k/(n − 1)"}
    head = f"overlap   A: {a} ({res.n_a} rows)   B: {b} ({res.n_b} rows)   ranks {res.rank_a} / {res.rank_b}"
    extra = []
    if res.principal_angles_rad is not None:
        shown = ", ".join(f"{v:.4f}" for v in res.principal_angles_rad[:10])
        more = " …" if len(res.principal_angles_rad) > 10 else ""
        extra.append(f"principal angles (radians, ascending): {shown}{more}")
    extra += [f"p_value {m}: {fmt(p)}" for m, p in res.p_values.items()]
    extra += calibration_cells(res.calibration)
    headline = ("overlap", "svcca", "pwcca", "procrustes_angle_rad", "mutual_knn") if res.paired else ("overlap",)
    click.echo(head + f"   ({res.rank_rule})\n\n" + _rows(res, reading, headline) + _footer(res, extra))


@cli.command("spectrum")
@click.argument("a")
@click.option("--top", type=click.IntRange(1), default=10,
              show_default=True, help="Explained-variance ratios to list.")
@click.option("--k", "k", type=click.IntRange(1), default=10, show_default=True, help="Neighbours for hubness.")
@click.option("--hubness/--no-hubness", default=True, show_default=True, help="Compute the k-NN graph for hubness.")
@click.option("--bootstrap", type=click.IntRange(1), metavar="N", help=BOOT_HELP)
@common_options
@engine_options
def spectrum_cmd(a, top, k, hubness, bootstrap, opts):
    """Spectrum of A: effective rank, participation ratio, explained variance, anisotropy, hubness.

    \b
    Example:
      latentlab spectrum features_clip.npy::1
      latentlab spectrum emb.npy --top 20 --bootstrap 500 --json
    """
    from ..analyze.spectrum import spectrum  # torch: imported when the command runs, not for --help

    res = spectrum(a, top=top, k=k, hubness=hubness, bootstrap=bootstrap, seed=opts.seed,
                   device=opts.device, dtype=opts.dtype)
    if opts.json:
        return emit_json(res)
    reading = {"effective_rank": "exp entropy of singular values (Roy & Vetterli); higher = more dimensions used",
               "participation_ratio": "(Σλ)²/Σλ²; higher = variance spread over more directions",
               "anisotropy": "mean pairwise cosine; 0 = isotropic, 1 = one direction",
               "hubness_skew": f"skewness of {res.k}-occurrence; higher = more hubs",
               "hubs": f"rows with N_k > 2k (k = {res.k})"}
    ev = ", ".join(f"{100 * v:.1f}%" for v in res.explained_variance)
    click.echo(f"spectrum   A: {a} ({res.n} × {res.dim})\n\n" + _rows(res, reading, ("effective_rank",))
               + _footer(res, [f"explained variance of the top {len(res.explained_variance)} components: {ev}"]))


__all__ = ["uniformity_cmd", "cka_cmd", "overlap_cmd", "spectrum_cmd", "calibration_options"]
