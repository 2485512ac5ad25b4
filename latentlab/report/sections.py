"""The report's sections: each runs one analysis of two embedding sets and draws its figure.

A section returns a :class:`Section` with its numbers, one line on how to read them, the
figure, and the exact command that reproduces the numbers. Sections that do not apply
(unpaired inputs, different dimensions) return ``skipped`` with the reason.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..results import Estimate, to_jsonable

SHIFT_GRID = [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0]
STITCH_METHODS = (("procrustes", {}), ("lst", {}), ("relative", {"center": True}))


@dataclass
class Context:
    """What every section needs: the inputs as given on the command line, and the settings."""

    a: Any
    b: Any
    spec_a: str
    spec_b: str
    name_a: str
    name_b: str
    paired: bool
    same_dim: bool
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    bootstrap: int = 200
    projection: str = "pca"
    calibrate: int = 100  # shufflings of B's rows for null-calibrated scores (0 = none)
    alpha: float = 0.05

    def cmd(self, *words: str) -> str:
        quoted = [shlex.quote(w) for w in words]
        opts = ([] if self.seed == 0 else ["--seed", str(self.seed)]) + \
            ([] if self.dtype == "float32" else ["--dtype", self.dtype])
        return " ".join(["latentlab", *quoted, *opts])

    @property
    def boot(self) -> int | None:
        return self.bootstrap or None

    @property
    def cal(self) -> int | None:
        return self.calibrate or None

    @property
    def cal_args(self) -> list[str]:
        return ["--calibrate", str(self.calibrate)] if self.calibrate else []

    @property
    def kw(self) -> dict:
        return {"device": self.device, "dtype": self.dtype}


@dataclass
class Section:
    key: str
    title: str
    reading: str = ""
    numbers: dict = field(default_factory=dict)
    figures: list = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    #: dotted keys of ``numbers`` left out of the tables (still in JSON), e.g. parameters of absent values
    hide: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {"title": self.title, "reading": self.reading, "commands": self.commands}
        if self.skipped:
            out["skipped"] = self.skipped
        else:
            out["numbers"] = to_jsonable(self.numbers)
        if self.notes:
            out["notes"] = self.notes
        return out


def _value(x) -> float | None:
    return None if x is None else float(x.value if isinstance(x, Estimate) else x)


def calibration_numbers(cal) -> dict:
    """A :class:`~latentlab.stats.Calibration` as the report shows it (the value itself sits beside it)."""
    return {"calibrated": cal.calibrated, "tau": cal.tau, "p_value": cal.p_value,
            "n_permutations": cal.n_permutations, "alpha": cal.alpha}


def _finite(x) -> bool:
    v = _value(x)
    return v is not None and bool(np.isfinite(v))


def _short(x: float) -> str:
    return f"{x:.2f}" if abs(x) >= 0.1 or x == 0 else f"{x:.2g}"


def small_k_note(ctx: Context) -> list[str]:
    """τ is the ⌈(1 − α)(K + 1)⌉-th smallest of K + 1 scores: below (1 − α)/α shufflings it is the largest."""
    least = int(np.ceil((1 - ctx.alpha) / ctx.alpha - 1e-9))
    if 0 < ctx.calibrate < least:
        return [f"--calibrate {ctx.calibrate} < {least}: with so few shufflings τ is the largest of the "
                f"{ctx.calibrate + 1} scores, so every calibrated value is 0 whatever the data; use at least {least}"]
    return []


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def chance_words(label: str, value, cal, expected: float | None = None) -> str:
    """One line on a score against its null: "linear CKA 0.64 is well above chance (τ = 0.09): calibrated 0.60"."""
    v = _value(value)
    chance = (f"expected {_short(expected)}, " if expected is not None else "") + f"τ = {_short(cal.tau)}"
    if cal.calibrated <= 0:
        return f"{label} {_short(v)} is within chance ({chance}): calibrated 0"
    grade = "just above" if cal.calibrated < 0.1 else "above" if cal.calibrated < 0.3 else "well above"
    return f"{label} {_short(v)} is {grade} chance ({chance}): calibrated {_short(cal.calibrated)}"


def gap_section(ctx: Context) -> Section:
    from ..analyze.gap import gap
    from ..plot.data import joint_projection
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
    s.reading = ("centroid_distance is the distance between the centroids of the L2-normalised sets "
                 "(0 = no gap, at most 2); linear_separability near 1 means a hyperplane splits the sets.")
    proj = joint_projection(ctx.a.data, ctx.b.data, method=ctx.projection, seed=ctx.seed)
    s.figures.append(draw_joint_embedding(proj, ctx.name_a, ctx.name_b, seed=ctx.seed))
    s.commands.append(ctx.cmd("gap", ctx.spec_a, ctx.spec_b, *(["--shift", "-1:1:0.25"] if ctx.paired else []),
                              *(["--bootstrap", str(ctx.bootstrap)] if ctx.boot else [])))
    s.commands.append(ctx.cmd("plot", "umap", ctx.spec_a, ctx.spec_b, "--method", ctx.projection, "-o", "gap.png"))
    if res.shift:
        s.numbers["shift"] = [p.to_dict() for p in res.shift]
        s.figures.append(draw_shift(s.numbers["shift"], ctx.name_a, ctx.name_b))
    s.notes = list(res.notes)
    absent = [k for k in ("pair_distance", "pair_cosine", "relative_gap") if s.numbers.get(k) is None]
    if absent and not ctx.paired:
        s.notes.append(f"{', '.join(absent)} undefined: they compare true pairs and the inputs are not row-paired")
    return s


def similarity_section(ctx: Context) -> Section:
    from ..plot.data import similarity_samples
    from ..plot.figures import draw_similarity_histograms

    s = Section("similarities", "Cosine similarities")
    if not ctx.same_dim:
        s.skipped = "cosines between A and B need one space: A and B have different dimensions"
        return s
    samples = similarity_samples(ctx.a.data, ctx.b.data, seed=ctx.seed, paired=ctx.paired)
    s.numbers = {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)} for k, v in samples.items()}
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
    items = [(k, _value(v), *_ci(v)) for k, v in (("uniformity A", s.numbers["uniformity_a"]),
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


def _ci(x) -> tuple[float | None, float | None]:
    return (x.ci_low, x.ci_high) if isinstance(x, Estimate) else (None, None)


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
                 if key in cals and _finite(res.cka)]
    undefined = [label for label, res in (("linear CKA", lin), ("debiased CKA", deb)) if not _finite(res.cka)]
    if undefined:
        lines.append(f"{' and '.join(undefined)} {'is' if len(undefined) == 1 else 'are'} undefined here: see the note")
    about = ("Linear CKA (Kornblith et al. 2019) is a similarity in [0, 1], 1 = the same up to rotation and "
             "isotropic scaling; the debiased estimator (Song et al. 2012) corrects the upward bias at small n.")
    if cals:
        about += (f" Chance τ is the {1 - ctx.alpha:.0%} quantile of CKA over {ctx.calibrate} shufflings of B's "
                  "rows; calibrated = clamp((CKA − τ)/(1 − τ), 0, 1): 0 = no better than unrelated pairs "
                  "(Gröger, Wen & Brbić 2026).")
    s.reading = "\n".join(([capitalize("; ".join(lines)) + "."] if lines else []) + [about])
    items = [(label, _value(r.cka), *_ci(r.cka)) for label, r in (("linear CKA", lin), ("debiased CKA", deb))
             if _finite(r.cka)]
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
                 if k not in ("principal_angles", "bootstrap", "p_values", "notes", "permutation", "calibration")}
    if res.calibration:
        s.numbers["calibration"] = {k: calibration_numbers(c) for k, c in res.calibration.items()}
    # shown only when they say something: forced zero angles, and the parameters of scores computed
    s.hide += [k for k in ("forced_zero_angles", "svcca_dims", "k") if not s.numbers.get(k)]
    lines = []
    if res.overlap is not None and res.overlap_chance is not None:
        forced = (f"; {res.forced_zero_angles} angles are 0 by construction" if res.forced_zero_angles else "")
        lines.append(f"overlap {_short(_value(res.overlap))} against {_short(res.overlap_chance)} for random "
                     f"subspaces of the same ranks ({res.rank_a} / {res.rank_b} of {ctx.a.dim}){forced}.")
    for name in ("svcca", "pwcca", "mutual_knn"):
        cal = res.calibration.get(name)
        if cal is not None and getattr(res, name) is not None:
            lines.append(chance_words(name, getattr(res, name), cal,
                                      res.mutual_knn_chance if name == "mutual_knn" else None) + ".")
        elif cal is None and name == "mutual_knn" and res.mutual_knn is not None and res.mutual_knn_chance is not None:
            lines.append(f"mutual_knn {_short(_value(res.mutual_knn))} against {_short(res.mutual_knn_chance)} "
                         "expected for random neighbours.")
    s.notes = list(res.notes) + (small_k_note(ctx) if ctx.paired else [])
    if not ctx.same_dim:
        s.notes.append("overlap, overlap_chance and grassmann_distance undefined: principal angles compare "
                       "subspaces of one space and A and B have different dimensions")
    if not ctx.paired:
        s.notes.append("svcca, pwcca, procrustes_distance and mutual_knn undefined: they compare the same items "
                       "in two spaces and the inputs are not row-paired")
    names = ((["overlap"] if ctx.same_dim else [])
             + (["svcca", "pwcca", "procrustes_distance", "mutual_knn"] if ctx.paired else []))
    undefined = [n for n in names if getattr(res, n) is None]
    if undefined:
        cca = all(any(note.startswith(f"{n} undefined") and "n ≤ d" in note for note in res.notes) for n in undefined)
        lines.append(f"{', '.join(undefined[:-1])}{' and ' if len(undefined) > 1 else ''}{undefined[-1]} "
                     f"{'is' if len(undefined) == 1 else 'are'} undefined here"
                     + (" (canonical correlations of 1 by construction, n ≤ d)" if cca else "") + ": see the notes.")
    about = ("Principal angles between the top PCA subspaces (0° = shared direction); overlap = mean cos² "
             "(1 = same subspace). SVCCA/PWCCA/mutual_knn are similarities, procrustes_distance a distance; "
             "chance is the value expected without shared structure")
    if res.calibration:
        about += (f", τ the {1 - ctx.alpha:.0%} quantile over {ctx.calibrate} shufflings of B's rows, "
                  "calibrated = clamp((s − τ)/(1 − τ), 0, 1)")
    s.reading = "\n".join(lines + [about + "."])
    if res.principal_angles is not None:
        s.numbers["principal_angles_deg"] = [float(np.degrees(x)) for x in res.principal_angles]
        s.figures.append(draw_principal_angles(np.asarray(res.principal_angles), ctx.name_a, ctx.name_b))
    s.commands.append(ctx.cmd("overlap", ctx.spec_a, ctx.spec_b, *(ctx.cal_args if ctx.paired else [])))
    return s


def spectrum_section(ctx: Context) -> Section:
    from ..analyze.spectrum import spectrum
    from ..plot.compute import spectrum_entry
    from ..plot.figures import draw_spectrum

    s = Section("spectrum", "Spectra and hubness")
    ra = spectrum(ctx.a, seed=ctx.seed, **ctx.kw)
    rb = spectrum(ctx.b, seed=ctx.seed, **ctx.kw)
    keys = ("effective_rank", "participation_ratio", "anisotropy", "hubness_skew", "hubs")
    s.numbers = {"A": {k: getattr(ra, k) for k in keys}, "B": {k: getattr(rb, k) for k in keys},
                 "explained_variance_top10": {"A": ra.explained_variance, "B": rb.explained_variance}}
    s.reading = ("Effective rank (Roy & Vetterli 2007): how many directions carry the variance; anisotropy: mean "
                 "pairwise cosine (0 = isotropic); hubness_skew > 1 means a few rows are everyone's neighbours.")
    entries = [spectrum_entry(r, name) for r, name in ((ra, ctx.name_a), (rb, ctx.name_b))
               if getattr(r, "eigenvalues", None) is not None]  # a constant set has no spectrum to draw
    if entries:
        s.figures.append(draw_spectrum(entries))
    s.commands += [ctx.cmd("spectrum", ctx.spec_a), ctx.cmd("spectrum", ctx.spec_b)]
    s.notes = list(dict.fromkeys(list(getattr(ra, "notes", []) or []) + list(getattr(rb, "notes", []) or [])))
    return s


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
    s.numbers = {"A→B": res.forward.to_dict(), "B→A": res.reverse.to_dict()}
    s.reading = ("Cosine retrieval of the true partner, ties counted against the query; R@k are fractions "
                 "(higher = better). CSLS (Conneau et al. 2018) is a training-free hubness fix shown beside it.")
    curves = {}
    for label, d in ((f"{ctx.name_a}→{ctx.name_b}", res.forward), (f"{ctx.name_b}→{ctx.name_a}", res.reverse)):
        for suffix, m in (("", d.baseline), (" + CSLS", d.fixed)):
            curves[label + suffix] = recall_curve(m.ranks, len(ctx.b))
    s.figures.append(draw_recall_curves(curves, f"Recall@k, {ctx.name_a} ↔ {ctx.name_b}"))
    s.commands.append(ctx.cmd("retrieval", ctx.spec_a, ctx.spec_b, "--both", "--fix", "csls"))
    s.notes = list(res.notes)
    return s


def stitching_section(ctx: Context) -> Section:
    from ..align import evaluate_aligner, fit_aligner
    from ..plot.figures import draw_method_bars

    s = Section("stitching", "Stitching baseline")
    if not ctx.paired:
        s.skipped = "stitching maps are fitted on anchor pairs: the inputs are not row-paired"
        return s
    n_anchors = ctx.a.n // 2
    if n_anchors < 2 or ctx.a.n - n_anchors < 2:
        s.skipped = f"too few pairs ({ctx.a.n}) to fit on one half and evaluate on the other"
        return s
    results = {}
    for method, params in STITCH_METHODS:
        al = fit_aligner(method, ctx.a, ctx.b, n_anchors=n_anchors, anchor_strategy="random", seed=ctx.seed,
                         device=ctx.device, **params)
        ev = evaluate_aligner(al, ctx.a, ctx.b, device=ctx.device)
        results[method + (" --center" if params.get("center") else "")] = ev
        flags = ["--center"] if params.get("center") else []
        s.commands.append(ctx.cmd("fit", method, ctx.spec_a, ctx.spec_b, *flags, "--n-anchors", str(n_anchors),
                                  "--anchor-strategy", "random", "-o", f"{method}.safetensors")
                          + " && " + ctx.cmd("evaluate", f"{method}.safetensors", ctx.spec_a, ctx.spec_b))
    first = next(iter(results.values()))
    base = {k: (v["r_at_1"] if v else None) for k, v in first.baselines.items()}
    s.numbers = {m: {k: getattr(ev, k) for k in ("r_at_1", "r_at_5", "r_at_10", "mrr", "median_rank", "mean_cosine")}
                 for m, ev in results.items()}
    s.numbers["baselines"] = first.baselines
    s.hide += [f"baselines.{k}.knn_accuracy" for k, v in first.baselines.items() if v and v.get("knn_accuracy") is None]
    s.numbers["anchors"] = n_anchors
    s.numbers["held_out"] = first.n_rows
    s.reading = (f"Maps fitted on a random half of the pairs ({n_anchors} anchors), evaluated on the other half by "
                 "R@1 of the true partner; a map is only useful where it beats the identity and a random rotation.")
    s.figures.append(draw_method_bars({m: ev.r_at_1 for m, ev in results.items()}, ylabel="held-out R@1 (fraction)",
                                      title=f"Stitching {ctx.name_a} → {ctx.name_b}", baselines=base))
    return s


SECTIONS: list[tuple[str, Callable[[Context], Section]]] = [
    ("gap", gap_section), ("similarities", similarity_section), ("uniformity", uniformity_section),
    ("cka", cka_section), ("overlap", overlap_section), ("spectrum", spectrum_section),
    ("retrieval", retrieval_section), ("stitching", stitching_section),
]
