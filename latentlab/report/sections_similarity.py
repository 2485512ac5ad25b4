"""Report sections on representational similarity: CKA and subspace overlap, each beside its
chance value and null-calibrated score."""
from __future__ import annotations

import numpy as np

from .section import (Context, Section, calibration_numbers, capitalize, chance_words, ci_of, is_finite, short,
                      small_k_note, value_of)
from .summary import calibrated_verdict, item

def cka_section(ctx: Context) -> Section:
    from ..analyze.cka import cka
    from ..plot.figures import draw_intervals

    s = Section("cka", "CKA")
    if not ctx.paired:
        s.skipped = "CKA compares the same items in two spaces: the inputs are not row-paired"
        return s
    common = dict(bootstrap=ctx.boot, calibrate=ctx.cal, alpha=ctx.alpha, seed=ctx.seed, **ctx.kw)
    lin = cka(ctx.a, ctx.b, **common)
    deb = cka(ctx.a, ctx.b, debiased=True, **common)
    s.numbers = {"cka_linear": lin.cka, "cka_debiased": deb.cka, "bootstrap": lin.bootstrap}
    lines = []
    cals = {k: r.calibration for k, r in (("cka_linear", lin), ("cka_debiased", deb)) if r.calibration is not None}
    if cals:
        s.numbers["calibration"] = {k: calibration_numbers(c) for k, c in cals.items()}
        lines = [chance_words(label, res.cka, cals[key])
                 for key, label, res in (("cka_linear", "linear CKA", lin), ("cka_debiased", "debiased CKA", deb))
                 if key in cals and is_finite(res.cka)]
    if is_finite(lin.cka):
        c = cals.get("cka_linear")
        s.summary.append(item("cka", "Linear CKA (Kornblith et al. 2019)", lin.cka, section="cka",
                              chance=c.tau if c else None, calibrated=c.calibrated if c else None,
                              verdict=calibrated_verdict(c.calibrated, c.tau) if c else
                              "not calibrated (--calibrate 0): no chance level to read it against"))
    undefined = [label for label, res in (("linear CKA", lin), ("debiased CKA", deb)) if not is_finite(res.cka)]
    if undefined:
        lines.append(f"{' and '.join(undefined)} {'is' if len(undefined) == 1 else 'are'} undefined here: see the note")
    about = ("Linear CKA (Kornblith et al. 2019) is a similarity in [0, 1], 1 = the same up to rotation and "
             "isotropic scaling; the debiased estimator (Song et al. 2012) corrects the upward bias at small n.")
    if cals:
        about += (f" Chance τ is the {1 - ctx.alpha:.0%} quantile of CKA over {ctx.calibrate} shufflings of B's "
                  "rows; calibrated = clamp((CKA − τ)/(1 − τ), 0, 1): 0 = no better than unrelated pairs "
                  "(Gröger, Wen & Brbić 2026).")
    s.reading = "\n".join(([capitalize("; ".join(lines)) + "."] if lines else []) + [about])
    items = [(label, value_of(r.cka), *ci_of(r.cka)) for label, r in (("linear CKA", lin), ("debiased CKA", deb))
             if is_finite(r.cka)]
    items += [(f"{label}, calibrated", cals[key].calibrated, None, None)
              for key, label in (("cka_linear", "linear"), ("cka_debiased", "debiased")) if key in cals]
    if items:
        s.figures.append(draw_intervals(items, xlabel="CKA (similarity, 1 = same; calibrated: 0 = chance)",
                                        title="CKA" + (f" with 95% bootstrap CI ({ctx.bootstrap} resamples)"
                                                       if ctx.boot else "")))
    boot = ["--bootstrap", str(ctx.bootstrap)] if ctx.boot else []
    s.commands.append(ctx.cmd("cka", ctx.spec_a, ctx.spec_b, *boot, *ctx.cal_args))
    s.commands.append(ctx.cmd("cka", ctx.spec_a, ctx.spec_b, "--debiased", *boot, *ctx.cal_args))
    s.notes = list(dict.fromkeys(list(lin.notes) + list(deb.notes))) + small_k_note(ctx)
    return s


def overlap_section(ctx: Context) -> Section:
    from ..analyze.overlap import overlap
    from ..plot.figures import draw_principal_angles

    s = Section("overlap", "Subspace overlap")
    res = overlap(ctx.a, ctx.b, seed=ctx.seed, calibrate=ctx.cal if ctx.paired else None, alpha=ctx.alpha, **ctx.kw)
    s.numbers = {k: v for k, v in res.to_dict().items()
                 if k not in ("principal_angles_rad", "bootstrap", "p_values", "notes", "permutation", "calibration")}
    if res.calibration:
        s.numbers["calibration"] = {k: calibration_numbers(c) for k, c in res.calibration.items()}
    # shown only when they say something: forced zero angles, and the parameters of scores computed
    s.hide += [k for k in ("forced_zero_angles", "svcca_dims", "k") if not s.numbers.get(k)]
    lines = []
    if res.overlap is not None and res.overlap_chance is not None:
        forced = (f"; {res.forced_zero_angles} angles are 0 by construction" if res.forced_zero_angles else "")
        lines.append(f"overlap {short(value_of(res.overlap))} against {short(res.overlap_chance)} for random "
                     f"subspaces of the same ranks ({res.rank_a} / {res.rank_b} of {ctx.a.dim}){forced}.")
    for name in ("svcca", "pwcca", "mutual_knn"):
        cal = res.calibration.get(name)
        if cal is not None and getattr(res, name) is not None:
            lines.append(chance_words(name, getattr(res, name), cal,
                                      res.mutual_knn_chance if name == "mutual_knn" else None) + ".")
        elif cal is None and name == "mutual_knn" and res.mutual_knn is not None and res.mutual_knn_chance is not None:
            lines.append(f"mutual_knn {short(value_of(res.mutual_knn))} against {short(res.mutual_knn_chance)} "
                         "expected for random neighbours.")
    s.notes = list(res.notes) + (small_k_note(ctx) if ctx.paired else [])
    if not ctx.same_dim:
        s.notes.append("overlap, overlap_chance and grassmann_distance_rad undefined: principal angles compare "
                       "subspaces of one space and A and B have different dimensions")
    if not ctx.paired:
        s.notes.append("svcca, pwcca, procrustes_angle_rad and mutual_knn undefined: they compare the same items "
                       "in two spaces and the inputs are not row-paired")
    names = ((["overlap"] if ctx.same_dim else [])
             + (["svcca", "pwcca", "procrustes_angle_rad", "mutual_knn"] if ctx.paired else []))
    undefined = [n for n in names if getattr(res, n) is None]
    if undefined:
        cca = all(any(note.startswith(f"{n} undefined") and "n ≤ d" in note for note in res.notes) for n in undefined)
        lines.append(f"{', '.join(undefined[:-1])}{' and ' if len(undefined) > 1 else ''}{undefined[-1]} "
                     f"{'is' if len(undefined) == 1 else 'are'} undefined here"
                     + (" (canonical correlations of 1 by construction, n ≤ d)" if cca else "") + ": see the notes.")
    about = ("Principal angles (radians) between the top PCA subspaces (0 = shared direction); overlap = mean cos² "
             "(1 = same subspace). SVCCA/PWCCA/mutual_knn are similarities, procrustes_angle_rad a distance; "
             "chance is the value expected without shared structure")
    if res.calibration:
        about += (f", τ the {1 - ctx.alpha:.0%} quantile over {ctx.calibrate} shufflings of B's rows, "
                  "calibrated = clamp((s − τ)/(1 − τ), 0, 1)")
    s.reading = "\n".join(lines + [about + "."])
    if res.principal_angles_rad is not None:
        s.numbers["principal_angles_rad"] = [float(x) for x in res.principal_angles_rad]  # one angle unit everywhere
        s.figures.append(draw_principal_angles(np.asarray(res.principal_angles_rad), ctx.name_a, ctx.name_b))
    s.commands.append(ctx.cmd("overlap", ctx.spec_a, ctx.spec_b, *(ctx.cal_args if ctx.paired else [])))
    return s


