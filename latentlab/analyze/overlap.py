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
  (:func:`latentlab.stats.calibrate`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..compute import as_backend, stream_moments
from ..errors import DegenerateInput, InputError
from ..io import as_embeddings, require_nonzero_rows, require_rows
from ..results import Estimate, ResultMixin, estimate, interval_methods
from .. import stats
from . import neighbors, registry, shape
from .compare import interval
from .prep import check_positive, load, require_in_memory, require_variance
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
            calibrate: int | None = None, alpha: float = 0.05, seed: int = 0, level: float = 0.95,
            device="auto", dtype="float32") -> OverlapResult:
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
        statistics resample rows (ranks held at their full-data values), mutual k-NN is
        recomputed on half-samples.
    permutations : shufflings of B's rows for p-values of svcca, pwcca and mutual_knn.
    calibrate : shufflings of B's rows for null-calibrated svcca, pwcca and mutual_knn.
    alpha : significance level of the calibration threshold τ.
    """
    backend = as_backend(device, dtype)
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    require_rows(ea, 2, "overlap"), require_rows(eb, 2, "overlap")
    if ea.n == eb.n and (bootstrap or permutations or calibrate):
        # the covariance geometry is recomputed on resampled rows: refuse before any row is read
        require_in_memory([ea, eb], backend, "overlap's `bootstrap`, `permutations` and `calibrate`",
                          hint="run them on a row sample of the inputs (the point estimates stream)")
    if k is not None:  # mutual k-NN ranks neighbours by cosine
        require_nonzero_rows(ea, "mutual k-NN"), require_nonzero_rows(eb, "mutual k-NN")
    if rank is not None:
        rank = check_positive(rank, "rank", integer=True)
    if not 0 < variance <= 1:
        raise InputError(f"variance {variance}: must be in (0, 1]")
    if not 0 < svcca_variance <= 1:
        raise InputError(f"svcca_variance {svcca_variance}: must be in (0, 1]")
    bootstrap = check_positive(bootstrap, "bootstrap", integer=True)
    permutations = check_positive(permutations, "permutations", integer=True)
    calibrate = check_positive(calibrate, "calibrate", integer=True)
    if calibrate:
        alpha = stats.check_alpha(alpha)
    paired = ea.n == eb.n
    notes: list[str] = []
    if paired:
        mom = stream_moments(ea.data, eb.data, backend=backend)
        cxx, cyy, cxy = (mom.covariance(i, j).cpu().numpy() for i, j in ((0, 0), (1, 1), (0, 1)))
    else:
        cxx = stream_moments(ea.data, backend=backend).covariance().cpu().numpy()
        cyy = stream_moments(eb.data, backend=backend).covariance().cpu().numpy()
        cxy = None
        notes.append(f"unpaired inputs ({ea.n} vs {eb.n} rows): only the principal angles are computed")
    try:
        require_variance(float(np.trace(cxx)), ea, "overlap")
        require_variance(float(np.trace(cyy)), eb, "overlap")
    except DegenerateInput as exc:  # every score is undefined for a constant set
        return OverlapResult(None, None, None, None, None, None, None, None, None, None, 0, 0, "—", None, None,
                             ea.n, eb.n, paired, notes=[str(exc)])
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
        scal["overlap"] = float(np.mean(np.cos(angles) ** 2))
        scal["grassmann_distance_rad"] = float(np.linalg.norm(angles))
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
    if paired and (bootstrap or permutations or calibrate):
        x, y = load(ea, backend).to(torch.float64), load(eb, backend).to(torch.float64)
        if bootstrap:
            values.update(_bootstrap(x, y, scal, (ra, rb), dims, same_dim=same_dim,
                                     n_resamples=bootstrap, seed=seed, level=level))
            # a k-NN graph is no sum over rows: half-samples recompute it (the query-row bootstrap
            # with the graphs fixed covered 78 % in simulation; half-samples 93 %)
            if graphs is not None:
                values["mutual_knn"] = interval(registry.get("mutual_knn"), x, y, {"k": graphs.k}, graphs.value,
                                                bootstrap, seed=seed, level=level, backend=backend)
        prepared = {"mutual_knn": neighbors.prepare_mutual_knn(graphs)} if graphs is not None else {}
        if "svcca" not in degenerate:
            prepared["svcca"] = prepare_svcca(x, y, dims)
        if "pwcca" not in degenerate:
            prepared["pwcca"] = prepare_pwcca(x, y)
        for name, prep in prepared.items():
            if permutations:
                p_values[name] = stats.permutation_test(prep.shuffled, ea.n, observed=prep.value,
                                                        n_permutations=permutations, seed=seed).p_value
            if calibrate:
                calibration[name] = stats.calibrate(prep, ea.n, calibrate, alpha=alpha, seed=seed)
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


def _cov(x: torch.Tensor, y: torch.Tensor):
    xc, yc = x - x.mean(0), y - y.mean(0)
    d = max(x.shape[0] - 1, 1)
    return ((xc.T @ xc) / d).cpu().numpy(), ((yc.T @ yc) / d).cpu().numpy(), ((xc.T @ yc) / d).cpu().numpy()


def _scalars(x, y, ranks, dims, same_dim: bool, wanted) -> dict:
    cxx, cyy, cxy = _cov(x, y)
    out = {}
    if "svcca" in wanted:
        out["svcca"] = svcca_from_cov(cxx, cyy, cxy, dims)
    if "pwcca" in wanted:
        out["pwcca"] = pwcca_from_cov(cxx, cyy, cxy)
    out["procrustes_angle_rad"] = shape.shape_distance(x, y, alpha=1.0)
    if same_dim:
        angles = principal_angles(pca_basis(cxx)[1][:, : ranks[0]], pca_basis(cyy)[1][:, : ranks[1]])
        out["overlap"] = float(np.mean(np.cos(angles) ** 2))
        out["grassmann_distance_rad"] = float(np.linalg.norm(angles))
    return out


def _bootstrap(x, y, full: dict, ranks, dims, *, same_dim, n_resamples, seed, level) -> dict:
    wanted = {k for k, v in full.items() if v is not None}
    reps: dict[str, list] = {}
    for idx in stats.resample_indices(x.shape[0], n_resamples, seed):
        t = torch.as_tensor(idx, device=x.device)
        for name, v in _scalars(x[t], y[t], ranks, dims, same_dim, wanted).items():
            reps.setdefault(name, []).append(v)
    scheme = f"{stats.ROW_SCHEME}, paired (recomputed; ranks fixed at full-data values)"
    return {name: stats.make_estimate(full[name], r, level, scheme) for name, r in reps.items()}


__all__ = ["overlap", "OverlapResult", "default_ranks", "chance_overlap"]
