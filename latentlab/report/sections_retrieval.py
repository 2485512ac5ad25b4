"""Report sections on using the spaces: retrieval both ways (with a training-free fix) and
stitching maps fitted in a valid setting, each against the baseline it must beat."""
from __future__ import annotations

import warnings

from .section import Context, Section, capitalize
from .summary import fix_verdict, item, r1_verdict, stitching_verdict

#: the rows of the retrieval table: (metric key, label)
RETRIEVAL_ROWS = (("r_at_1", "R@1"), ("r_at_5", "R@5"), ("r_at_10", "R@10"), ("mrr", "MRR"),
                  ("median_rank", "median rank"), ("mean_rank", "mean rank"),
                  ("hubness_skew", "hubness (skew of N₁₀)"), ("hubs", "hubs (N₁₀ > 20)"))
#: anchors per dimension below which an unregularised map (least squares, Procrustes) is not fitted
STITCH_FIX_RULE = 2


def _count(x):
    """A rank or count that is a whole number reads as one (median rank 1, not 1.0000)."""
    return int(x) if isinstance(x, float) and x.is_integer() and abs(x) < 1e9 else x


def retrieval_section(ctx: Context) -> Section:
    from ..plot.figures import draw_recall_curves
    from ..retrieval.evaluate import evaluate
    from ..ranks import recall_curve

    s = Section("retrieval", "Retrieval both ways")
    if not ctx.paired or not ctx.same_dim:
        s.skipped = ("retrieval needs row-paired inputs in one space: "
                     + ("the inputs are not paired" if not ctx.paired else "A and B have different dimensions"))
        return s
    res = evaluate(ctx.a, ctx.b, fix="csls", both=True, **ctx.kw)
    s.numbers = res.to_dict()  # the same shape as `latentlab retrieval --json` and Python's to_dict()
    s.reading = ("Cosine retrieval of the true partner, ties counted against the query; R@k are fractions "
                 "(higher = better). CSLS (Conneau et al. 2018) is a training-free hubness fix shown beside it.")
    curves = {}
    for label, d in ((f"{ctx.name_a}→{ctx.name_b}", res.forward), (f"{ctx.name_b}→{ctx.name_a}", res.reverse)):
        for suffix, m in (("", d.baseline), (" + CSLS", d.fixed)):
            curves[label + suffix] = recall_curve(m.ranks, len(ctx.b))
    s.figures.append(draw_recall_curves(curves, f"Recall@k, {ctx.name_a} ↔ {ctx.name_b}"))
    dirs = ((f"{ctx.name_a}→{ctx.name_b}", res.forward), (f"{ctx.name_b}→{ctx.name_a}", res.reverse))
    cols = [(f"{label}{suffix}", getattr(d, part)) for label, d in dirs
            for suffix, part in (("", "baseline"), (" + CSLS", "fixed"))]
    s.table("retrieval", "Retrieval of the true partner, both ways, without and with CSLS",
            ["metric"] + [c for c, _ in cols],
            [[label] + [_count(getattr(m, key)) for _, m in cols] for key, label in RETRIEVAL_ROWS],
            hides=list(s.numbers), note="R@k and MRR: higher = better; ranks are 1-based (lower = better); "
                                       "hubness of the gallery: lower = fewer hubs")
    for key, (label, d), chance in (("r_at_1_ab", dirs[0], 1 / len(ctx.b)), ("r_at_1_ba", dirs[1], 1 / len(ctx.a))):
        s.summary.append(item(key, f"R@1 {label}", d.baseline.r_at_1, section="retrieval", chance=chance,
                              verdict=r1_verdict(d.baseline.r_at_1, chance)))
        s.summary.append(item(f"{key}_fixed", f"R@1 {label} + CSLS", d.fixed.r_at_1, section="retrieval",
                              baseline=d.baseline.r_at_1, baseline_label="without CSLS",
                              verdict=fix_verdict(d.fixed.r_at_1, d.baseline.r_at_1, "CSLS")))
    s.commands.append(ctx.cmd("retrieval", ctx.spec_a, ctx.spec_b, "--both", "--fix", "csls"))
    s.notes = list(res.notes)
    return s


def stitch_setting(n: int, dim_a: int, dim_b: int) -> dict:
    """Anchors and methods for a valid stitching comparison with ``n`` pairs.

    An unregularised linear map (least squares, Procrustes, LST) from d dims is well determined
    only with well over d anchor pairs; with fewer it interpolates the anchors and generalises
    poorly. Rule: when ``n`` pairs allow ``STITCH_FIX_RULE · d`` anchors (d the larger
    dimension) while keeping a fifth of the pairs held out, fit them on that many anchors;
    otherwise fit on half the pairs only regularised maps — ridge with α chosen by
    leave-one-out CV (GCV degenerates when the fit interpolates the anchors), reduced-rank
    regression of rank k/4 (Izenman 1975), and relative representations (Moschella et al.,
    ICLR 2023), which fit no map at all.

    Returns ``{"setting", "anchors", "held_out", "methods": [(label, method, params)], "why"}``.
    """
    d = max(dim_a, dim_b)
    need = STITCH_FIX_RULE * d
    held_min = max(n // 5, 2)
    relative = ("relative --center", "relative", {"center": True})
    if n - held_min >= need:
        k = min(max(need, n // 2), n - held_min)
        return {"setting": "unregularised", "anchors": k, "held_out": n - k,
                "methods": [("procrustes", "procrustes", {}), ("lst", "lst", {}),
                            ("ridge (α by GCV)", "ridge", {"alpha": "auto"}), relative],
                "why": f"{k} anchors ≥ {STITCH_FIX_RULE} × {d} dimensions, so unregularised maps are well "
                       "determined"}
    k = n // 2
    rank = max(1, min(dim_a, dim_b, k // 4))
    return {"setting": "regularised", "anchors": k, "held_out": n - k,
            "methods": [("ridge (α by LOO)", "ridge", {"alpha": "auto", "alpha_cv": "loo"}),
                        (f"lowrank rank {rank}", "lowrank", {"rank": rank}), relative],
            "why": f"{n} pairs cannot give {STITCH_FIX_RULE} × {d} = {need} anchors and keep {held_min} held out, "
                   f"so unregularised maps (procrustes, lst, lstsq) would interpolate the {k} anchors; only "
                   f"regularised maps are fitted: ridge with α by leave-one-out CV, rank-{rank} regression "
                   "(rank ≤ anchors/4), and relative representations"}


def _flags(params: dict) -> list[str]:
    out = []
    for k, v in params.items():
        out += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return out


def stitching_section(ctx: Context) -> Section:
    from ..align import evaluate_aligner, fit_aligner
    from ..plot.figures import draw_method_bars

    s = Section("stitching", "Stitching maps")
    if not ctx.paired:
        s.skipped = "stitching maps are fitted on anchor pairs: the inputs are not row-paired"
        return s
    if ctx.a.n < 4:
        s.skipped = f"too few pairs ({ctx.a.n}) to fit on some and evaluate on the others"
        return s
    plan = stitch_setting(ctx.a.n, ctx.a.dim, ctx.b.dim)
    k = plan["anchors"]
    results = {}
    for label, method, params in plan["methods"]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            al = fit_aligner(method, ctx.a, ctx.b, n_anchors=k, anchor_strategy="random", seed=ctx.seed,
                             device=ctx.device, **params)
        for w in caught:  # the setting line says why these maps are fitted with few anchors
            if not (plan["setting"] == "regularised" and "fewer anchors than dimensions" in str(w.message)):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        results[label] = evaluate_aligner(al, ctx.a, ctx.b, device=ctx.device)
        s.commands.append(ctx.cmd("fit", method, ctx.spec_a, ctx.spec_b, *_flags(params), "--n-anchors", str(k),
                                  "--anchor-strategy", "random", "-o", f"{method}.safetensors")
                          + " && " + ctx.cmd("evaluate", f"{method}.safetensors", ctx.spec_a, ctx.spec_b))
    first = next(iter(results.values()))
    base = {name: (float(v["r_at_1"]) if v else None) for name, v in first.baselines.items()}
    metrics = ("r_at_1", "r_at_5", "r_at_10", "mrr", "median_rank", "mean_cosine")
    ids = {label: method for label, method, _ in plan["methods"]}  # JSON keys are identifiers
    s.numbers = {ids[m]: {key: getattr(ev, key) for key in metrics} for m, ev in results.items()}
    s.numbers["baselines"] = first.baselines
    s.numbers.update(anchors=k, held_out=first.n_rows, setting=plan["setting"], setting_reason=plan["why"])
    ref = "identity" if base.get("identity") is not None else "random_rotation"
    ref_words = ref.replace("_", " ")
    rows = [[m, ev.r_at_1, ev.r_at_5, ev.mrr, f"{ev.r_at_1 - base[ref]:+.4f}"] for m, ev in results.items()]
    rows += [[f"baseline: {name.replace('_', ' ')}", float(v["r_at_1"]), float(v["r_at_5"]), float(v["mrr"]),
              f"{float(v['r_at_1']) - base[ref]:+.4f}"] for name, v in first.baselines.items() if v]
    s.table("stitching", f"Held-out retrieval {ctx.name_a} → {ctx.name_b} through each map",
            ["method", "R@1", "R@5", "MRR", f"R@1 vs {ref_words}"], rows, hides=list(ids.values()) + ["baselines"])
    best = max(results, key=lambda m: results[m].r_at_1)
    verdict = stitching_verdict(best, results[best].r_at_1, f"{ref_words} map", base[ref], k, first.n_rows)
    s.summary.append(item("stitching", "Best stitching map, held-out R@1", results[best].r_at_1,
                          section="stitching", baseline=base[ref], baseline_label=ref_words, verdict=verdict))
    s.reading = "\n".join([
        capitalize(verdict) + ".",
        f"Setting ({plan['setting']}): {plan['why']}.",
        f"Maps fitted on {k} random anchor pairs, evaluated on the other {first.n_rows} pairs by retrieval of the "
        "true partner; a map is only useful where it beats the identity (raw rows) and a random rotation."])
    s.figures.append(draw_method_bars({m: ev.r_at_1 for m, ev in results.items()}, ylabel="held-out R@1 (fraction)",
                                      title=f"Stitching {ctx.name_a} → {ctx.name_b}", baselines=base))
    return s
