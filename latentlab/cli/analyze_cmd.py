"""CLI commands for the analyze part: uniformity, cka, cka-matrix, overlap, spectrum."""
from __future__ import annotations

import click

from ..analyze.cka import cka, cka_matrix
from ..analyze.spectrum import spectrum
from ..analyze.overlap import overlap
from ..analyze.uniformity import uniformity
from .main import cli, common_options
from .render import emit_json, fmt, table

BOOT_HELP = "Percentile-bootstrap 95% intervals from N resamples of the rows (seeded by --seed)."
PERM_HELP = "Permutation p-value from N shufflings of B's rows (null: unrelated pairing)."


def _rows(res, reading: dict) -> str:
    return table([(k, getattr(res, k), reading[k]) for k in reading if getattr(res, k, None) is not None],
                 ["metric", "value", "how to read"])


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
@click.option("--alpha", type=float, default=2.0, show_default=True, help="Exponent α of the alignment ‖a_i − b_i‖^α.")
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
@common_options
def cka_cmd(a, b, kernel, sigma_frac, debiased, max_n, sample, bootstrap, permutations, opts):
    """Centred kernel alignment of row-paired A and B (Kornblith et al. 2019).

    A similarity in [0, 1]: 1 = identical up to rotation and isotropic scaling. Linear CKA
    is computed exactly from streamed float64 moments, whatever the number of rows.

    \b
    Example:
      latentlab cka layer6.npy layer7.npy --bootstrap 1000 --permutations 1000
      latentlab cka a.npy b.npy --kernel rbf --sigma-frac 0.5 --debiased --json
    """
    res = cka(a, b, kernel=kernel, debiased=debiased, sigma_frac=sigma_frac, max_n=max_n, sample=sample,
              bootstrap=bootstrap, permutations=permutations, seed=opts.seed, device=opts.device, dtype=opts.dtype)
    if opts.json:
        return emit_json(res)
    name = f"{'debiased ' if debiased else ''}{kernel} CKA" + (f" (σ = {sigma_frac} × median distance)" if kernel == "rbf" else "")
    reading = {"cka": "similarity in [0, 1]; 1 = same up to rotation and scale",
               "p_value": "one-sided, null of unrelated pairing; small = related"}
    click.echo(f"{name}   A: {a} ({res.n} × {res.dim_a})   B: {b} ({res.n} × {res.dim_b})\n\n"
               + _rows(res, reading) + _footer(res))


@cli.command("cka-matrix")
@click.argument("files", nargs=-1, required=True)
@click.option("--kernel", type=click.Choice(["linear", "rbf"]), default="linear", show_default=True,
              help="linear: one streaming pass over all files. rbf: each file loaded once, chunked.")
@click.option("--sigma-frac", type=float, default=0.5, show_default=True, help="RBF bandwidth (fraction of the median distance).")
@click.option("--debiased", is_flag=True, help="Unbiased HSIC estimator (Song et al. 2012).")
@click.option("--max-n", type=click.IntRange(2), default=10000, show_default=True, help="RBF row limit.")
@common_options
def cka_matrix_cmd(files, kernel, sigma_frac, debiased, max_n, opts):
    """CKA between every pair of FILES (e.g. the layers of a network), all row-paired.

    Linear CKA reads each file once per row block, not once per pair. Similarity: 1 on the
    diagonal, higher = more similar.

    \b
    Example:
      latentlab cka-matrix layer0.npy layer1.npy layer2.npy layer3.npy
      latentlab cka-matrix hidden.npz::l0 hidden.npz::l1 hidden.npz::l2 --json
    """
    res = cka_matrix(files, kernel=kernel, debiased=debiased, sigma_frac=sigma_frac, max_n=max_n,
                     device=opts.device, dtype=opts.dtype)
    if opts.json:
        return emit_json(res)
    short = [str(i) for i in range(len(res.labels))]
    rows = [[f"{i}: {lab}", *row] for i, (lab, row) in enumerate(zip(res.labels, res.matrix))]
    click.echo(f"{'debiased ' if debiased else ''}{kernel} CKA matrix (similarity, 1 = identical), n = {res.n}\n\n"
               + table(rows, ["input", *short]))


@cli.command("overlap")
@click.argument("a")
@click.argument("b")
@click.option("--rank", type=click.IntRange(1), help="Compare the top-r principal directions of each set.")
@click.option("--variance", type=float, default=0.99, show_default=True,
              help="Without --rank: the fewest directions holding this fraction of the variance.")
@click.option("--k", "k", type=click.IntRange(1), default=10, show_default=True, help="Neighbours for mutual k-NN.")
@click.option("--bootstrap", type=click.IntRange(1), metavar="N", help=BOOT_HELP)
@click.option("--permutations", type=click.IntRange(1), metavar="N", help=PERM_HELP + " For svcca and mutual_knn.")
@common_options
def overlap_cmd(a, b, rank, variance, k, bootstrap, permutations, opts):
    """Subspace overlap of A and B: principal angles between their top PCA subspaces and, for
    row-paired inputs, SVCCA, PWCCA, angular Procrustes distance and mutual k-NN.

    Warns when n ≤ d, where CCA-based measures are degenerate.

    \b
    Example:
      latentlab overlap features_clip.npy::0 features_clip.npy::1 --variance 0.9
      latentlab overlap a.npy b.npy --rank 20 --bootstrap 200 --permutations 200 --json
    """
    res = overlap(a, b, rank=rank, variance=variance, k=k, bootstrap=bootstrap, permutations=permutations,
                  seed=opts.seed, device=opts.device, dtype=opts.dtype)
    if opts.json:
        out = res.to_dict()
        out.update({f"p_value_{m}": p for m, p in res.p_values.items()})
        return emit_json(out)
    reading = {"overlap": "mean cos² of principal angles; similarity, 1 = same subspace",
               "grassmann_distance": "‖θ‖₂ of principal angles; distance, 0 = same subspace",
               "svcca": "mean canonical correlation of the 99%-variance PCA parts; similarity",
               "pwcca": "projection-weighted mean canonical correlation; similarity",
               "procrustes_distance": "angular shape distance (radians, 0..π/2); distance",
               "mutual_knn": "mean shared fraction of k nearest neighbours; similarity"}
    head = f"overlap   A: {a} ({res.n_a} rows)   B: {b} ({res.n_b} rows)   ranks {res.rank_a} / {res.rank_b}"
    extra = []
    if res.principal_angles is not None:
        shown = ", ".join(f"{v:.4f}" for v in res.principal_angles[:10])
        more = " …" if len(res.principal_angles) > 10 else ""
        extra.append(f"principal angles (radians, ascending): {shown}{more}")
    extra += [f"p_value {m}: {fmt(p)}" for m, p in res.p_values.items()]
    click.echo(head + "\n\n" + _rows(res, reading) + _footer(res, extra))


@cli.command("spectrum")
@click.argument("a")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True, help="Explained-variance ratios to list.")
@click.option("--k", "k", type=click.IntRange(1), default=10, show_default=True, help="Neighbours for hubness.")
@click.option("--hubness/--no-hubness", default=True, show_default=True, help="Compute the k-NN graph for hubness.")
@click.option("--bootstrap", type=click.IntRange(1), metavar="N", help=BOOT_HELP)
@common_options
def spectrum_cmd(a, top, k, hubness, bootstrap, opts):
    """Spectrum of A: effective rank, participation ratio, explained variance, anisotropy, hubness.

    \b
    Example:
      latentlab spectrum features_clip.npy::1
      latentlab spectrum emb.npy --top 20 --bootstrap 500 --json
    """
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
    click.echo(f"spectrum   A: {a} ({res.n} × {res.dim})\n\n" + _rows(res, reading)
               + _footer(res, [f"explained variance of the top {len(res.explained_variance)} components: {ev}"]))


__all__ = ["uniformity_cmd", "cka_cmd", "cka_matrix_cmd", "overlap_cmd", "spectrum_cmd"]
