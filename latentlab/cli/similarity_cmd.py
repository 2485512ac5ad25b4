"""CLI: `latentlab similarity` (any registered paired measure) and `latentlab cka-matrix`."""
from __future__ import annotations

import click

from ..analyze import registry
from ..errors import InputError
from .analyze_cmd import BOOT_HELP, PERM_HELP, calibration_options
from .engine_opts import engine_options
from .main import cli, common_options
from .render import emit_json, fmt, table

# analyze.compare.DEFAULT_METRICS, repeated here because that module imports torch and the help
# text is built at import (tests/cli/test_interface.py checks the two agree)
DEFAULT_METRICS = ("linear_cka", "debiased_cka", "mutual_knn", "cknna", "svcca", "rsa", "distance_correlation")


def _measure_table() -> str:
    rows = [(m.name, m.direction, f"[{fmt(m.range[0], 3)}, {fmt(m.range[1], 3)}]",
             ", ".join(sorted(m.invariant_to())) or "—", m.summary) for m in registry.MEASURES.values()]
    return table(rows, ["metric", "direction", "range", "invariant to", "what"])


def _names(values) -> list[str]:
    out = [v.strip() for value in values for v in value.split(",")]
    if any(not v for v in out):
        raise InputError("an empty name in a comma-separated list")
    return out


def measure_options(func):
    """Parameters of the registered measures (each applies to the measures that take it)."""
    for decl in reversed([
        click.option("--k", "k", type=click.IntRange(1), default=None, help="Neighbours of the k-NN measures [default: 10]."),
        click.option("--rsa-method", type=click.Choice(["spearman", "pearson"]), help="RSA: compare RDMs by [default: spearman]."),
        click.option("--rdm", type=click.Choice(["correlation", "cosine", "euclidean"]), help="RSA: dissimilarity [default: correlation]."),
        click.option("--whiten", type=click.FloatRange(0, 1), help="shape: partial whitening α in [0, 1] (1 = Procrustes, 0 = CCA) [default: 1]."),
        click.option("--sigma-frac", type=float, help="rbf_cka: σ as a fraction of the median distance [default: 0.5]."),
        click.option("--variance", type=click.FloatRange(0, 1, min_open=True), help="svcca: variance kept by the PCA step [default: 0.99]."),
    ]):
        func = decl(func)
    return func


def _params(rsa_method, rdm, whiten, sigma_frac, variance) -> dict:
    params = {"rsa": {"method": rsa_method, "rdm": rdm}, "shape": {"alpha": whiten},
              "rbf_cka": {"sigma_frac": sigma_frac}, "svcca": {"variance": variance}}
    return {m: {k: v for k, v in p.items() if v is not None} for m, p in params.items()}


@cli.command("similarity")
@click.argument("a", required=False)
@click.argument("b", required=False)
@click.option("--metric", "-m", "metrics", multiple=True, metavar="NAME[,NAME]",
              help="Measures to compute (repeat or comma-separate); --list shows them all.",
              show_default=", ".join(DEFAULT_METRICS))
@click.option("--list", "list_", is_flag=True, help="List the measures: direction, range, invariances, paper.")
@click.option("--sample", type=click.IntRange(4), metavar="N",
              help="Compute on N rows drawn at random (seeded): for the quadratic measures on large n.")
@measure_options
@click.option("--bootstrap", type=click.IntRange(1), metavar="N", help=BOOT_HELP)
@click.option("--permutations", type=click.IntRange(1), metavar="N", help=PERM_HELP)
@calibration_options
@common_options
def similarity_cmd(a, b, metrics, list_, sample, k, rsa_method, rdm, whiten, sigma_frac, variance, bootstrap, permutations,
                   calibrate, alpha, opts):
    """Paired similarity of A and B under the measures of the field, each beside its chance value.

    CKA (linear, debiased, RBF), mutual k-NN, CKNNA, cycle / LCS / edit-distance k-NN
    (Huh et al. 2024), SVCCA, PWCCA, RSA (Kriegeskorte 2008), distance correlation (Székely
    2007) and generalised shape distances (Williams et al. 2021). With --calibrate K each
    score is null-calibrated: 0 = no better than shuffled pairs, 1 = the best attainable.

    \b
    Example:
      latentlab similarity --list
      latentlab similarity img.npy txt.npy --calibrate 200
      latentlab similarity a.npy b.npy -m cknna,rsa --k 20 --rsa-method pearson --json
    """
    if list_:
        if opts.json:
            return emit_json({"measures": [m.describe() for m in registry.MEASURES.values()]})
        return click.echo(_measure_table())
    if not a or not b:
        raise InputError("similarity needs two inputs A and B (or --list)")
    from ..analyze.compare import similarity

    names = _names(metrics) if metrics else list(DEFAULT_METRICS)
    res = similarity(a, b, names, params=_params(rsa_method, rdm, whiten, sigma_frac, variance), k=k,
                     calibrate=calibrate, alpha=alpha, permutations=permutations, bootstrap=bootstrap,
                     sample=sample, seed=opts.seed, device=opts.device, dtype=opts.dtype)
    if opts.json:
        return emit_json(res)
    head = ["metric", "value"] + (["chance τ", "calibrated", "p"] if calibrate else []) + (
        ["p (perm.)"] if permutations else []) + ["direction", "invariant to"]
    rows, notes = [], []
    for s in res.scores:
        cal = s.calibration
        row = [s.metric, s.value if s.value is not None else "— (undefined)"]
        if calibrate:
            row += [cal.tau, cal.calibrated, cal.p_value] if cal else ["—"] * 3
        if permutations:
            row.append(s.p_value)
        rows.append(row + [s.direction, ", ".join(s.invariances) or "—"])
        notes += [f"{s.metric}: {n}" for n in s.notes]
        if s.bootstrap:
            notes.append(f"{s.metric} interval: {s.bootstrap}, 95%")
    lines = [f"similarity   A: {a} ({res.n} × {res.dim_a})   B: {b} ({res.n} × {res.dim_b})", "", table(rows, head)]
    if calibrate:
        lines += ["", f"calibrated = clamp((s − τ)/(s_best − τ), 0, 1): 0 = no better than {calibrate} shuffled "
                      f"pairings at α = {alpha:g}; τ is what chance reaches"]
    click.echo("\n".join(lines + [f"note: {n}" for n in res.notes + notes]))


@cli.command("cka-matrix")
@click.argument("files", nargs=-1)
@click.option("--rows", "row_files", multiple=True, metavar="FILE[,FILE]",
              help="Layers of model A (rows of a rectangular matrix; repeat or comma-separate).")
@click.option("--cols", "col_files", multiple=True, metavar="FILE[,FILE]", help="Layers of model B (columns).")
@click.option("--metric", "-m", default=None, help="Any paired measure of `latentlab similarity --list`.",
              show_default="CKA (--kernel, --debiased)")
@click.option("--kernel", type=click.Choice(["linear", "rbf"]), default="linear", show_default=True,
              help="CKA kernel when --metric is not given.")
@click.option("--debiased", is_flag=True, help="Debiased CKA (Song et al. 2012) when --metric is not given.")
@click.option("--max-n", type=click.IntRange(2), default=10000, show_default=True, help="RBF row limit.")
@measure_options
@click.option("--bootstrap", type=click.IntRange(1), metavar="N", help=BOOT_HELP + " Per cell.")
@calibration_options
@click.option("--sample", type=click.IntRange(4), metavar="N",
              help="Compute every cell on N rows drawn at random (seeded; the same rows of every layer): for the "
                   "measures that need the rows in memory (all but linear / debiased CKA, which stream).")
@common_options
@engine_options
def cka_matrix_cmd(files, row_files, col_files, metric, kernel, debiased, max_n, k, rsa_method, rdm, whiten,
                   sigma_frac, variance, bootstrap, calibrate, alpha, sample, opts):
    """CKA (or any paired measure) between every pair of FILES, or every --rows × --cols layer.

    Square (FILES): the linear kernel reads each file once per row block, not once per pair.
    Rectangular (--rows A_LAYERS… --cols B_LAYERS…): model A's layers against model B's.
    --calibrate K calibrates every cell and the best / mean cell against one null in which
    each shuffle moves B's rows in every layer at once (a best-of-many is paid for).

    \b
    Example:
      latentlab cka-matrix layer0.npy layer1.npy layer2.npy layer3.npy
      latentlab cka-matrix --rows a/l0.npy,a/l6.npy,a/l11.npy --cols b/l0.npy,b/l11.npy --calibrate 200
      latentlab cka-matrix --rows a.npz::l0,a.npz::l1 --cols b.npy --metric cknna --k 20 --json
    """
    from ..analyze.matrix import cka_matrix, similarity_matrix

    rows, cols = _names(row_files), _names(col_files)
    if files and (rows or cols):
        raise InputError("give FILES (square matrix) or --rows/--cols (rectangular), not both")
    if bool(rows) != bool(cols):
        raise InputError("--rows and --cols go together (model A's layers, model B's layers)")
    if not files and not rows:
        raise InputError("cka-matrix needs FILES, or --rows and --cols")
    if metric is None:
        metric = "rbf_cka" if kernel == "rbf" else ("debiased_cka" if debiased else "linear_cka")
    params = _params(rsa_method, rdm, whiten, sigma_frac, variance).get(metric, {})
    if k is not None and "k" in registry.get(metric).params:
        params["k"] = k
    if metric == "rbf_cka" and debiased:
        params["debiased"] = True
    streamed = files and not (calibrate or bootstrap or sample) and metric in ("linear_cka", "debiased_cka")
    if streamed:
        res = cka_matrix(files, kernel="linear", debiased=metric == "debiased_cka", max_n=max_n,
                         device=opts.device, dtype=opts.dtype)
        if opts.json:  # one JSON shape for every cka-matrix run (as with --bootstrap / --calibrate)
            return emit_json(res.as_similarity_matrix())
        short = [str(i) for i in range(len(res.labels))]
        body = [[f"{i}: {lab}", *row] for i, (lab, row) in enumerate(zip(res.labels, res.matrix))]
        return click.echo(f"{'debiased ' if res.debiased else ''}linear CKA matrix (similarity, 1 = identical), "
                          f"n = {res.n}\n\n" + table(body, ["input", *short]))
    res = similarity_matrix(list(files) or rows, None if files else cols, metric=metric, params=params,
                            calibrate=calibrate, alpha=alpha, bootstrap=bootstrap, sample=sample, seed=opts.seed,
                            device=opts.device, dtype=opts.dtype)
    if opts.json:
        return emit_json(res)
    click.echo(render_matrix(res))


def render_matrix(res) -> str:
    short = [str(j) for j in range(len(res.col_labels))]

    def grid(values) -> str:
        body = [[f"{i}: {lab}", *[v if v is not None else "—" for v in row]] for i, (lab, row) in
                enumerate(zip(res.row_labels, values))]
        return table(body, ["rows \\ cols", *short])

    best = "higher" if res.direction == "similarity" else "lower"
    out = [f"{res.metric} matrix ({res.direction}, {best} = closer), n = {res.n}", "", grid(res.matrix), "",
           "cols: " + "   ".join(f"{j}: {lab}" for j, lab in enumerate(res.col_labels))]
    if res.calibrated is not None:
        out += ["", "calibrated (0 = chance, 1 = best attainable):", "",
                grid([[c.calibrated if c is not None else None for c in row] for row in res.calibrated])]
        for agg, cal in res.aggregate.items():
            out.append(f"{agg} cell: {fmt(cal.value)}   calibrated {fmt(cal.calibrated)}   chance τ = {fmt(cal.tau)}"
                       f"   p = {fmt(cal.p_value)}   ({cal.n_permutations} shuffles of every B layer at once)")
    if res.bootstrap:
        out.append(f"intervals: {res.bootstrap}, 95%")
    out += [f"note: {n}" for n in res.notes]
    return "\n".join(out)


__all__ = ["similarity_cmd", "cka_matrix_cmd", "render_matrix"]
