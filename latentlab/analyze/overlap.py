"""`latentlab overlap`: how much two embedding sets share, each score beside its chance value.

Principal angles between the top-r PCA subspaces (``overlap`` = mean cos²,
``grassmann_distance_rad``) for any two sets of equal width; for row-paired sets also SVCCA,
PWCCA, the angular Procrustes distance (``procrustes_angle_rad``) and mutual k-NN. Every angle
is in radians, and its key says so. The linear algebra lives in :mod:`latentlab.analyze.subspace`.

Chance, not only the score:

* Ranks with r_A + r_B > d force r_A + r_B − d principal angles to 0 whatever the data
  (two subspaces that large must intersect), so the default rank rule (the fewest
  directions holding ``variance`` of the variance) is capped to keep r_A + r_B ≤ d and says
  so; an explicit ``rank`` is honoured and the forced angles are counted.
* ``overlap_chance`` is the expected overlap of independent uniformly random subspaces of
  the same ranks: E tr(P_A P_B) = r_A r_B / d, so the mean cos² over min(r_A, r_B) angles is
  max(r_A, r_B) / d (exact; forced zero angles included).
* CCA with rank_A + rank_B > n − 1 (centred rows) has rank_A + rank_B − (n − 1) canonical
  correlations equal to 1 by construction; SVCCA / PWCCA are then ``None`` with the reason.
* ``calibrate`` null-calibrates svcca, pwcca and mutual_knn under shuffled pairing
  (:func:`latentlab.stats.calibrate_scores`).

Out of core: the point estimates stream; so do the covariance scores' bootstrap (per-group
moment sums) and the svcca / pwcca nulls (one pass per shuffle), and the mutual k-NN null
(relabelled neighbour lists); only mutual k-NN's bootstrap needs every row, and above the
memory budget it is refused before a row is read, pointing to ``sample``
(:mod:`latentlab.analyze.overlap_resample`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..compute import as_backend, stream_moments
from ..errors import DegenerateInput, InputError
from ..io import Embeddings, as_embeddings, require_nonzero_rows, require_rows
from ..progress import progress
from ..results import Estimate, ResultMixin, estimate, interval_methods
from .. import stats
from . import neighbors, registry, shape
from .compare import interval
from .overlap_resample import CrossNull, angle_scores, covariance_bootstrap, streamed_covariance_bootstrap
from .prep import Prepared, check_positive, fits_in_memory, load, require_in_memory, require_variance, sample_rows
from .subspace import (cca_degenerate, numerical_rank, pca_basis, principal_angles, prepare_pwcca, prepare_svcca,
                       pwcca_from_cov, rank_for_variance, svcca_from_cov)


@dataclass(frozen=True)
class OverlapResult(ResultMixin):
    """Subspace and representational overlap of A and B (directions: module docstring)."""

    principal_angles_rad: list[float] | None
    overlap: Estimate | None
    overlap_chance: float | None
    forced_zero_angles: int | None
    grassmann_distance_rad: Estimate | None
    svcca: Estimate | None
    pwcca: Estimate | None
    procrustes_angle_rad: Estimate | None
    mutual_knn: Estimate | None
    mutual_knn_chance: float | None
    rank_a: int
    rank_b: int
    rank_rule: str
    svcca_dims: list[int] | None
    k: int | None
    n_a: int
    n_b: int
    paired: bool
    p_values: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    permutation: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def bootstrap(self) -> dict:
        """Score → its interval scheme (also each interval's ``method`` in JSON ``ci``)."""
        return interval_methods(self)


def default_ranks(lx: np.ndarray, ly: np.ndarray, variance: float, d: int) -> tuple[int, int, str]:
    """Ranks holding ``variance`` of each set's variance, capped so that r_A + r_B ≤ d.

    The smaller rank is kept when it fits in half the width; the larger one gets what is
    left (d − r_small); when both exceed d/2 both become ⌊d/2⌋.
    """
    ra, rb = rank_for_variance(lx, variance), rank_for_variance(ly, variance)
    rule = f"fewest directions holding {variance:g} of the variance"
    if ra + rb <= d:
        return ra, rb, rule
    small = min(ra, rb)
    keep = small if small <= d // 2 else d // 2
    new_a, new_b = (keep, min(rb, d - keep)) if ra == small else (min(ra, d - keep), keep)
    return new_a, new_b, (f"{rule} ({ra} / {rb}), capped to {new_a} / {new_b} so that r_A + r_B ≤ d = {d} "
                          f"(larger ranks would force {ra + rb - d} principal angles to 0)")


def chance_overlap(ra: int, rb: int, d: int) -> float:
    """Expected mean cos² of the principal angles of independent random subspaces: max(r_A, r_B)/d."""
    return max(ra, rb) / float(d)


def overlap(a, b, *, rank: int | None = None, variance: float = 0.99, svcca_variance: float = 0.99,
            k: int | None = 10, bootstrap: int | None = None, permutations: int | None = None,
            calibrate: int | None = None, alpha: float = 0.05, sample: int | None = None, seed: int = 0,
            level: float = 0.95, device="auto", dtype="float32") -> OverlapResult:
    """How much A and B share: principal angles between their top-r PCA subspaces and, for
    row-paired inputs, SVCCA, PWCCA, the angular Procrustes distance and mutual k-NN.

    Parameters
    ----------
    rank : compare the top ``rank`` principal directions of each set (honoured as given;
        ``forced_zero_angles`` counts the angles r_A + r_B > d forces to 0). Default: the
        fewest directions holding ``variance``, capped so that r_A + r_B ≤ d.
    svcca_variance : SVCCA keeps the top directions reaching this fraction of variance.
    k : neighbours for mutual k-NN (clamped to n − 1 with a warning); ``None`` skips mutual k-NN.
    bootstrap : resamples for 95 % intervals of every scalar, median-centred: the covariance
        statistics resample rows through stored per-group moment sums (ranks held at their
        full-data values; one streamed pass, any n — :mod:`~latentlab.analyze.overlap_resample`),
        mutual k-NN is recomputed on half-samples (all rows in memory: above
        :data:`~latentlab.analyze.prep.IN_MEMORY_BYTES` it is refused before reading, pointing to ``sample``).
    permutations : shufflings of B's rows for p-values of svcca, pwcca and mutual_knn (the k-NN
        null relabels the neighbour lists; svcca / pwcca need XcᵀYc[π] only: in memory when the
        inputs fit the budget, else one streamed pass per shuffle).
    calibrate : shufflings of B's rows for null-calibrated svcca, pwcca and mutual_knn (the
        same shuffles as ``permutations``).
    alpha : significance level of the calibration threshold τ.
    sample : compute everything on this many rows drawn without replacement (seeded; the same
        rows of A and B when paired) — the way out for mutual k-NN's bootstrap on large n.
    """
    backend = as_backend(device, dtype)
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    require_rows(ea, 2, "overlap"), require_rows(eb, 2, "overlap")
    if rank is not None:
        rank = check_positive(rank, "rank", integer=True)
    if not 0 < variance <= 1:
        raise InputError(f"variance {variance}: must be in (0, 1]")
    if not 0 < svcca_variance <= 1:
        raise InputError(f"svcca_variance {svcca_variance}: must be in (0, 1]")
    bootstrap = check_positive(bootstrap, "bootstrap", integer=True)
    permutations = check_positive(permutations, "permutations", integer=True)
    calibrate = check_positive(calibrate, "calibrate", integer=True)
    sample = check_positive(sample, "sample", integer=True)
    if calibrate:
        alpha = stats.check_alpha(alpha)
    notes: list[str] = []
    if sample is not None:
        ea, eb, note = _sampled(ea, eb, sample, seed, backend)
        notes += [note] if note else []
    paired = ea.n == eb.n
    resampling = paired and bool(bootstrap or permutations or calibrate)
    in_memory = resampling and fits_in_memory([ea, eb], backend.float64())  # the in-memory nulls hold float64 copies
    if resampling and bootstrap and k is not None and not in_memory:
        # a k-NN graph is no sum over rows: its half-samples need every row; refuse before any is read
        require_in_memory([ea, eb], backend.float64(), "overlap's mutual k-NN bootstrap (graphs recomputed on "
                          "half-samples)", hint="pass `sample` N to compute overlap on N random rows (the "
                          "covariance scores and the k-NN null stream without it)")
    if k is not None:  # mutual k-NN ranks neighbours by cosine
        require_nonzero_rows(ea, "mutual k-NN"), require_nonzero_rows(eb, "mutual k-NN")
    if paired:
        mom = stream_moments(ea.data, eb.data, backend=backend)
        cxx, cyy, cxy = (mom.covariance(i, j).cpu().numpy() for i, j in ((0, 0), (1, 1), (0, 1)))
    else:
        cxx = stream_moments(ea.data, backend=backend).covariance().cpu().numpy()
        cyy = stream_moments(eb.data, backend=backend).covariance().cpu().numpy()
        cxy = mom = None
        notes.append(f"unpaired inputs ({ea.n} vs {eb.n} rows): only the principal angles are computed")
    try:
        require_variance(float(np.trace(cxx)), ea, "overlap")
        require_variance(float(np.trace(cyy)), eb, "overlap")
    except DegenerateInput as exc:  # every score is undefined for a constant set
        return OverlapResult(None, None, None, None, None, None, None, None, None, None, 0, 0, "—", None, None,
                             ea.n, eb.n, paired, notes=notes + [str(exc)])
    lx, vx = pca_basis(cxx)
    ly, vy = pca_basis(cyy)
    same_dim = ea.dim == eb.dim
    if rank:
        ra, rb, rule = min(rank, ea.dim), min(rank, eb.dim), f"rank {rank} given"
    elif same_dim:
        ra, rb, rule = default_ranks(lx, ly, variance, ea.dim)
    else:
        ra, rb, rule = rank_for_variance(lx, variance), rank_for_variance(ly, variance), f"{variance:g} of the variance"
    scal: dict = {}
    angles = chance = forced = None
    if same_dim:
        angles = principal_angles(vx[:, :ra], vy[:, :rb])
        scal.update(angle_scores(angles))
        chance, forced = chance_overlap(ra, rb, ea.dim), max(0, ra + rb - ea.dim)
        if forced:
            notes.append(f"ranks {ra} + {rb} > d = {ea.dim}: {forced} principal angles are 0 by construction "
                         f"and overlap cannot fall below {forced / min(ra, rb):.3f}; compare with overlap_chance")
        elif ra != rank_for_variance(lx, variance) or rb != rank_for_variance(ly, variance):
            notes.append(f"ranks: {rule}")
    else:
        notes.append(f"principal angles need equal dimensions ({ea.dim} vs {eb.dim})")
    dims = graphs = None
    degenerate: dict[str, str] = {}
    if paired:
        dims = (rank_for_variance(lx, svcca_variance), rank_for_variance(ly, svcca_variance))
        for name, (p, q) in (("svcca", dims), ("pwcca", (numerical_rank(cxx), numerical_rank(cyy)))):
            reason = cca_degenerate(int(p), int(q), ea.n, name)
            if reason:
                degenerate[name] = reason
                notes.append(reason)
        scal["svcca"] = None if "svcca" in degenerate else svcca_from_cov(cxx, cyy, cxy, dims)
        scal["pwcca"] = None if "pwcca" in degenerate else pwcca_from_cov(cxx, cyy, cxy)
        scal["procrustes_angle_rad"] = shape.shape_distance_streamed(ea, eb, alpha=1.0, backend=backend)
        if k is not None:
            graphs = neighbors.mutual_knn_graphs(ea.data, eb.data, k, backend)
            scal["mutual_knn"] = graphs.value
    elif bootstrap or permutations or calibrate:
        notes.append("bootstrap, permutations and calibration need paired rows; skipped")
    values: dict = dict(scal)
    p_values: dict = {}
    calibration: dict = {}
    if resampling:
        x = y = None
        if in_memory:
            x, y = load(ea, backend).to(torch.float64), load(eb, backend).to(torch.float64)
        if bootstrap:
            full = {name: v for name, v in scal.items() if name != "mutual_knn"}
            kw = dict(n_resamples=bootstrap, seed=seed, level=level)
            values.update(covariance_bootstrap(x, y, full, (ra, rb), dims, **kw) if in_memory else
                          streamed_covariance_bootstrap(ea, eb, (mom.mean(0), mom.mean(1)), full, (ra, rb), dims,
                                                        backend=backend, **kw))
            # a k-NN graph is no sum over rows: half-samples recompute it (the query-row bootstrap
            # with the graphs fixed covered 78 % in simulation; half-samples 93 %)
            if graphs is not None:
                values["mutual_knn"] = interval(registry.get("mutual_knn"), x, y, {"k": graphs.k}, graphs.value,
                                                bootstrap, seed=seed, level=level, backend=backend)
        if permutations or calibrate:
            prepared = _null_prepared(ea, eb, x, y, mom, (cxx, cyy), scal, dims, graphs, degenerate, backend)
            p_values, calibration = _nulls(prepared, ea.n, permutations, calibrate, alpha, seed)
    return OverlapResult(
        principal_angles_rad=None if angles is None else angles.tolist(),
        overlap=estimate(values.get("overlap")), overlap_chance=chance, forced_zero_angles=forced,
        grassmann_distance_rad=estimate(values.get("grassmann_distance_rad")),
        svcca=estimate(values.get("svcca")), pwcca=estimate(values.get("pwcca")),
        procrustes_angle_rad=estimate(values.get("procrustes_angle_rad")), mutual_knn=estimate(values.get("mutual_knn")),
        mutual_knn_chance=(graphs.k / (ea.n - 1.0)) if graphs else None,
        rank_a=ra, rank_b=rb, rank_rule=rule, svcca_dims=list(dims) if dims else None,
        k=graphs.k if graphs else None, n_a=ea.n, n_b=eb.n, paired=paired, p_values=p_values,
        calibration=calibration,
        permutation=stats.PermutationResult.method if p_values else None, notes=notes)


def _sampled(ea, eb, sample: int, seed: int, backend):
    """A and B restricted to their seeded row samples (the same rows when paired), read after the budget check."""
    rows = [sample_rows(e.n, sample, seed) for e in (ea, eb)]
    picked = [(e, r) for e, r in zip((ea, eb), rows) if r is not None]
    if not picked:
        return ea, eb, None
    for e, r in picked:
        require_in_memory([e], backend, "overlap on a row sample", rows=len(r), hint="pass a smaller `sample`")
    out = [e if r is None else Embeddings(e.rows(r), e.name, {**e.provenance, "sample": len(r)})
           for e, r in zip((ea, eb), rows)]
    sizes = list(dict.fromkeys(f"{len(r) if r is not None else e.n} of {e.n}" for e, r in zip((ea, eb), rows)))
    sizes = " / ".join(sizes)  # once when paired
    return out[0], out[1], f"every score on {sizes} rows (seeded sample without replacement)"


def _null_prepared(ea, eb, x, y, mom, covs, scal, dims, graphs, degenerate, backend) -> dict:
    """Each null-calibrated score ready for shuffled pairing: from the rows in memory (``x``), else
    streamed — svcca and pwcca from one pass per shuffle giving XcᵀYc[π] (CrossNull)."""
    prepared = {"mutual_knn": neighbors.prepare_mutual_knn(graphs)} if graphs is not None else {}
    if x is not None:
        if "svcca" not in degenerate:
            prepared["svcca"] = prepare_svcca(x, y, dims)
        if "pwcca" not in degenerate:
            prepared["pwcca"] = prepare_pwcca(x, y)
        return prepared
    cross = CrossNull([ea], [eb], [mom.mean(0)], [mom.mean(1)], backend)
    cxx, cyy = covs
    nm1 = ea.n - 1.0  # the point pass's covariances are over n − 1
    if "svcca" not in degenerate:
        prepared["svcca"] = Prepared(scal["svcca"], lambda perm: svcca_from_cov(cxx, cyy, cross(perm)[0] / nm1, dims))
    if "pwcca" not in degenerate:
        prepared["pwcca"] = Prepared(scal["pwcca"], lambda perm: pwcca_from_cov(cxx, cyy, cross(perm)[0] / nm1))
    return prepared


def _nulls(prepared: dict, n: int, permutations, calibrate, alpha: float, seed: int):
    """p-values and calibrations of every prepared score from one sweep over the shuffles: each
    shuffle is drawn once and scores every measure (a streamed cross product is one pass for all);
    ``permutations`` and ``calibrate`` use the first N / K of the same seeded shuffles."""
    count = max(permutations or 0, calibrate or 0)
    null = {name: np.empty(count) for name in prepared}
    for b, perm in enumerate(progress(stats.permutations(n, count, seed), total=count, desc="permutations",
                                      unit="perm")):
        for name, prep in prepared.items():
            null[name][b] = prep.shuffled(perm)
    p_values = {name: stats._p_value(p.value, null[name][:permutations]) for name, p in prepared.items()
                } if permutations else {}
    calibration = {name: stats.calibrate_scores(p.value, null[name][:calibrate], alpha=alpha)
                   for name, p in prepared.items()} if calibrate else {}
    return p_values, calibration


__all__ = ["overlap", "OverlapResult", "default_ranks", "chance_overlap"]
