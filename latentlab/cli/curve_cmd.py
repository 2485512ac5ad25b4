"""``latentlab curve METHOD… SRC TGT``: few-pair curves, and ``latentlab plot curve RESULT.json``."""
from __future__ import annotations

import click

from ..errors import InputError
from ..io.outputs import check_outputs
from .main import cli, common_options, output_option
from .plot_cmd import OUT, _check_output, _finish, plot_group
from .render import emit_json, fmt, table


def _pairs(ctx, param, value):
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected comma-separated whole numbers, e.g. 25,50,100") from None


def _write_json(path, obj) -> None:
    import json

    from ..io import atomic_output
    from ..results import to_jsonable

    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(to_jsonable(obj), allow_nan=False, indent=1))


@cli.command("curve")
@click.argument("args", nargs=-1, required=True, metavar="METHOD… SRC TGT")
@click.option("--pairs", default="25,50,100,200,500,1000", show_default=True, callback=_pairs, metavar="P[,P]",
              help="Numbers of anchor pairs, each at most the training rows.")
@click.option("--draws", type=click.IntRange(1), default=5, show_default=True,
              help="Seeded anchor draws per number of pairs (the same draws for every method).")
@click.option("--test-frac", type=float, default=0.2, show_default=True,
              help="Fraction of the rows held out once (seeded) for every evaluation.")
@output_option("Write the result as JSON (the input of `latentlab plot curve`).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), callback=_check_output,
              help="Also draw the curve (.png, .svg or .pdf).")
@common_options
def curve_cmd(args, pairs, draws, test_frac, output, plot_path, opts):
    """Held-out R@1 of each METHOD against the number of anchor pairs (SRC → TGT, rows paired).

    The rows are split once into training and held-out parts (--test-frac, seeded); for each
    number of pairs, --draws seeded draws of anchors from the training part are fitted by
    every method (the same anchors) and evaluated on the held-out rows. Reported: R@1 mean,
    std, min and max over draws, beside the identity (equal dims) and random-rotation
    baselines on the same rows.

    \b
    Example:
      latentlab curve procrustes ridge lstsq clip.npy::0 clip.npy::1 --pairs 25,50,100,200 --plot curve.png
      latentlab curve procrustes relative a.npy b.npy --draws 10 -o curve.json && latentlab plot curve curve.json -o c.pdf
    """
    from ..align.curve import curve

    if len(args) < 3:
        raise InputError(f"give at least one METHOD, then SRC and TGT (got {len(args)} argument(s))")
    *methods, src, tgt = args
    check_outputs({"-o": output, "--plot": plot_path}, {"SRC": src, "TGT": tgt})
    res = curve(methods, src, tgt, pairs=pairs, draws=draws, test_frac=test_frac, seed=opts.seed,
                device=opts.device, dtype=opts.dtype)
    if output:
        _write_json(output, res)
    if plot_path:
        from ..plot import save_figure
        from ..plot.curve import draw_curve

        save_figure(draw_curve(res.to_dict()), plot_path)
    if opts.json:
        return emit_json({**res.to_dict(), "output": output, "figure": plot_path})
    rows = [(p.method, p.pairs, p.r_at_1_mean, p.r_at_1_std, p.r_at_1_min, p.r_at_1_max) for p in res.points]
    base = ", ".join(f"{k} {fmt(v)}" for k, v in res.baselines.items() if v is not None)
    out = [f"few-pair curve: {src} → {tgt}, {res.n_train} training rows, {res.n_test} held out, {res.draws} draws",
           "", table(rows, ["method", "pairs", "R@1 mean", "std", "min", "max"]), "",
           f"baselines on the same held-out rows (R@1): {base}"]
    out += [f"wrote {path}" for path in (output, plot_path) if path]
    click.echo("\n".join(out + [f"note: {n}" for n in res.notes]))


def read_curve(path: str) -> dict:
    """A curve result written by ``latentlab curve -o`` (InputError naming the file otherwise)."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError:
        raise InputError(f"{path}: not a JSON file (write it with latentlab curve … -o {path})") from None
    need = {"methods", "points", "draws", "n_test"}
    if not isinstance(data, dict) or not need <= set(data) or not isinstance(data["points"], list):
        raise InputError(f"{path}: not a curve result (expected the keys {', '.join(sorted(need))}; "
                         f"write it with latentlab curve … -o {path})")
    keys = {"method", "pairs", "r_at_1_mean", "r_at_1_std", "r_at_1_min", "r_at_1_max"}
    if not all(isinstance(p, dict) and keys <= set(p) for p in data["points"]):
        raise InputError(f"{path}: a point of the curve lacks one of {', '.join(sorted(keys))}")
    return data


@plot_group.command("curve")
@click.argument("result", metavar="RESULT.json")
@OUT
@click.option("--names", metavar="NAME[,NAME]", help="Legend names of the methods, comma-separated, one per method.")
@click.option("--title", help='Figure title.', show_default='says what is drawn')
@common_options
def plot_curve(result, output, names, title, opts):
    """Few-pair curve from `latentlab curve … -o RESULT.json`: R@1 against anchor pairs, baselines dashed.

    \b
    Example:
      latentlab plot curve curve.json -o curve.png --names Procrustes,Ridge
    """
    from ..plot.curve import draw_curve

    check_outputs({"-o": output}, {"RESULT": result})
    data = read_curve(result)
    shown = None
    if names:
        shown = [s.strip() for s in names.split(",")]
        if len(shown) != len(data["methods"]):
            raise InputError(f"--names: {len(shown)} names for {len(data['methods'])} methods ({', '.join(data['methods'])})")
        shown = dict(zip(data["methods"], shown))
    _finish(opts, output, draw_curve(data, title=title, names=shown), {"methods": data["methods"]})


__all__ = ["curve_cmd", "plot_curve", "read_curve"]
