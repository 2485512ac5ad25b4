"""Report sections on the geometry of the two sets: the modality gap (with the shift
experiment), cosine similarities, uniformity/alignment, and spectra with hubness."""
from __future__ import annotations

import numpy as np

from .section import Context, Section, ci_of, value_of
from .summary import gap_verdict, item, separability_verdict

SHIFT_GRID = [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0]

def gap_section(ctx: Context) -> Section:
    from ..analyze.gap import gap
    from ..plot.figures import draw_joint_embedding, draw_shift

    s = Section("gap", "Modality gap")
    if not ctx.same_dim:
        s.skipped = "the gap compares centroids in one space: A and B have different dimensions"
        return s
    res = gap(ctx.a, ctx.b, shift=SHIFT_GRID if ctx.paired else None, bootstrap=ctx.boot, seed=ctx.seed, **ctx.kw)
    keys = ("centroid_distance", "pair_distance", "pair_cosine", "relative_gap", "linear_separability",
            "top_dimensions_share", "n_a", "n_b", "dim", "paired")
    s.numbers = {k: getattr(res, k) for k in keys}
    s.numbers["top_dimensions"] = res.top_dimensions[:5]
    s.table("top_dimensions", "Dimensions carrying the gap (largest |δ|)", ["dim", "δ = mean A − mean B", "share of ‖Δ‖²"],
            [[t["dim"], t["delta"], t["share"]] for t in res.top_dimensions[:5]], hides=["top_dimensions"],
            note=f"these {len(res.top_dimensions[:5])} dimensions hold {res.top_dimensions_share:.0%} of the squared "
                 "gap among the top 10" if res.top_dimensions_share else "")
    s.summary.append(item("gap", "Modality gap (centroid distance)", res.centroid_distance, section="gap",
                          verdict=gap_verdict(res.centroid_distance)))
    if value_of(res.linear_separability) is not None:
        s.summary.append(item("separability", "Linear separability (held-out probe accuracy)",
                              res.linear_separability, section="gap", chance=0.5,
                              verdict=separability_verdict(res.linear_separability)))
    s.reading = ("centroid_distance is the distance between the centroids of the L2-normalised sets "
                 "(0 = no gap, at most 2); linear_separability near 1 means a hyperplane splits the sets.")
    s.figures.append(draw_joint_embedding(ctx.joint_projection(), ctx.name_a, ctx.name_b, seed=ctx.seed))
    s.commands.append(ctx.cmd("gap", ctx.spec_a, ctx.spec_b, *(["--shift", "-1:1:0.25"] if ctx.paired else []),
                              *(["--bootstrap", str(ctx.bootstrap)] if ctx.boot else [])))
    s.commands.append(ctx.cmd("plot", "joint", ctx.spec_a, ctx.spec_b, "--projection", ctx.projection, "-o", "gap.png"))
    if res.shift:
        s.numbers["shift"] = [p.to_dict() for p in res.shift]
        at0 = next((p.r_at_1 for p in res.shift if p.delta == 0 and p.r_at_1 is not None), None)
        s.table("shift", "Embedding shift along the gap (Liang et al. 2022): δ > 0 moves the sets together",
                ["δ", "centroid distance", f"R@1 {ctx.name_a}→{ctx.name_b}"] + (["R@1 change vs δ = 0"] if at0 is not None else []),
                [[p.delta, p.centroid_distance, p.r_at_1] + ([f"{p.r_at_1 - at0:+.4f}"] if at0 is not None else [])
                 for p in res.shift], hides=["shift"])
        s.figures.append(draw_shift(s.numbers["shift"], ctx.name_a, ctx.name_b))
    s.notes = list(res.notes)
    absent = [k for k in ("pair_distance", "pair_cosine", "relative_gap") if s.numbers.get(k) is None]
    if absent and not ctx.paired:
        s.notes.append(f"{', '.join(absent)} undefined: they compare true pairs and the inputs are not row-paired")
    return s


def similarity_section(ctx: Context) -> Section:
    from ..plot.data import PAIR_LABELS, similarity_samples
    from ..plot.figures import draw_similarity_histograms

    s = Section("similarities", "Cosine similarities")
    if not ctx.same_dim:
        s.skipped = "cosines between A and B need one space: A and B have different dimensions"
        return s
    samples = similarity_samples(ctx.a.data, ctx.b.data, seed=ctx.seed, paired=ctx.paired)
    s.numbers = {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)} for k, v in samples.items()}
    s.table("cosines", "Cosine similarity by kind of pair", ["pairs", "mean", "std", "n"],
            [[PAIR_LABELS[k], v["mean"], v["std"], v["n"]] for k, v in s.numbers.items()], hides=list(s.numbers))
    s.reading = ("True pairs should score above random pairs; within-set similarities far above cross-set ones "
                 "are the narrow cones of the modality gap.")
    s.figures.append(draw_similarity_histograms(samples, ctx.name_a, ctx.name_b))
    s.commands.append(ctx.cmd("plot", "sims", ctx.spec_a, ctx.spec_b, "-o", "sims.png", "--json"))
    return s


def uniformity_section(ctx: Context) -> Section:
    from ..analyze.uniformity import uniformity
    from ..plot.figures import draw_intervals

    s = Section("uniformity", "Uniformity and alignment")
    res = uniformity(ctx.a, ctx.b if ctx.paired and ctx.same_dim else None, bootstrap=ctx.boot,
                     seed=ctx.seed, **ctx.kw)
    s.numbers = {"uniformity_a": res.uniformity, "uniformity_b": res.uniformity_b, "alignment": res.alignment,
                 "t": res.t, "alpha": res.alpha, "exact": res.exact, "bootstrap": res.bootstrap}
    if res.uniformity_b is None:
        res_b = uniformity(ctx.b, bootstrap=ctx.boot, seed=ctx.seed, **ctx.kw)
        s.numbers["uniformity_b"] = res_b.uniformity
    s.reading = ("Wang & Isola (2020): uniformity is the log mean Gaussian potential of pairs (lower = more evenly "
                 "spread on the sphere, −4 is the limit for t = 2); alignment is the mean squared distance of "
                 "true pairs (lower = closer).")
    ci = f"95% bootstrap CI ({ctx.bootstrap} resamples)" if ctx.boot else "no bootstrap"
    items = [(k, value_of(v), *ci_of(v)) for k, v in (("uniformity A", s.numbers["uniformity_a"]),
                                                 ("uniformity B", s.numbers["uniformity_b"]),
                                                 ("alignment", s.numbers["alignment"])) if v is not None]
    s.figures.append(draw_intervals(items, xlabel="value (lower = more uniform / closer)", xlim=None,
                                    title=f"Uniformity and alignment, {ci}"))
    s.commands.append(ctx.cmd("uniformity", ctx.spec_a, *([ctx.spec_b] if ctx.paired and ctx.same_dim else []),
                              *(["--bootstrap", str(ctx.bootstrap)] if ctx.boot else [])))
    s.notes = list(res.notes)
    if res.alignment is None:
        s.hide.append("alpha")  # alignment's exponent: nothing to show without alignment
        s.notes.append("alignment undefined: it needs row-paired inputs of one dimension")
    return s


def spectrum_section(ctx: Context) -> Section:
    from ..analyze.spectrum import spectrum
    from ..plot.compute import spectrum_entry
    from ..plot.figures import draw_spectrum

    s = Section("spectrum", "Spectra and hubness")
    ra = spectrum(ctx.a, seed=ctx.seed, **ctx.kw)
    rb = spectrum(ctx.b, seed=ctx.seed, **ctx.kw)
    keys = ("effective_rank", "participation_ratio", "anisotropy", "hubness_skew", "hubs")
    s.numbers = {"a": {k: getattr(ra, k) for k in keys}, "b": {k: getattr(rb, k) for k in keys},  # keys are identifiers
                 "explained_variance_top10": {"a": ra.explained_variance, "b": rb.explained_variance}}

    def top(ev):
        return None if ev is None else ", ".join(f"{x:.3f}" for x in list(ev)[:10])

    s.table("spectra", "Spectrum and hubness of each set", ["quantity"] + [side if name == side else f"{side}: {name}"
                                                              for side, name in (("A", ctx.name_a), ("B", ctx.name_b))],
            [[k, getattr(ra, k), getattr(rb, k)] for k in keys]
            + [["explained variance, top 10 directions", top(ra.explained_variance), top(rb.explained_variance)]],
            hides=["a", "b", "explained_variance_top10"], col_keys=["A", "B"])
    s.reading = ("Effective rank (Roy & Vetterli 2007): how many directions carry the variance; anisotropy: mean "
                 "pairwise cosine (0 = isotropic); hubness_skew > 1 means a few rows are everyone's neighbours.")
    entries = [spectrum_entry(r, name) for r, name in ((ra, ctx.name_a), (rb, ctx.name_b))
               if getattr(r, "eigenvalues", None) is not None]  # a constant set has no spectrum to draw
    if entries:
        s.figures.append(draw_spectrum(entries))
    s.commands += [ctx.cmd("spectrum", ctx.spec_a), ctx.cmd("spectrum", ctx.spec_b)]
    s.notes = list(dict.fromkeys(list(getattr(ra, "notes", []) or []) + list(getattr(rb, "notes", []) or [])))
    return s


