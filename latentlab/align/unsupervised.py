"""Unsupervised translation: coordinate-free starts, self-learning refinement, a selection score.

No pairs are used. The map is orthogonal (plus each side's centring), so the artifact is a
plain linear map and ``apply`` / ``evaluate`` work as for any :class:`DirectAligner`.

1. **Starts that do not depend on coordinates** (``init``), each a first rotation:

   * ``profile`` — the similarity-distribution start of VecMap (Artetxe et al. 2018, §3.2):
     each row is described by the sorted row of ``sqrt(X Xᵀ) = U S Uᵀ`` (the square root of
     its own set's similarity matrix, from the SVD ``X = U S Vᵀ``), so the description is
     invariant to rotations of the space; descriptors are L2-normalised, centred,
     L2-normalised again, and rows are matched across sets by CSLS (forward and backward
     nearest neighbours, VecMap's "union" dictionary). Restart r > 0 uses a seeded random
     subset of ``init_rows`` rows per side; restart 0 the rows farthest from each centroid
     (a rotation-invariant choice, :func:`latentlab.align.ot.farthest_rows`).
   * ``gw`` — a Gromov-Wasserstein coupling of the ``init_rows`` rows farthest from each
     centroid, started from Mémoli's TLB matching (:func:`latentlab.align.ot.gw_coupling`,
     Alvarez-Melis & Jaakkola 2018); the rotation is the Procrustes fit on the coupled rows.
   * ``auto`` — one ``gw`` start and ``restarts`` ``profile`` starts.

2. **Refinement by self-learning** (Conneau et al. 2018 §2.2; Artetxe et al. 2018 §3.3;
   mini-vec2vec 2025's pseudo-pairs → Procrustes loop): map the source rows with the current
   rotation, take the mutual nearest neighbours under CSLS (k = 10,
   :class:`latentlab.retrieval.csls.CSLSScores`) as pseudo-pairs, refit the orthogonal
   Procrustes rotation on them (:func:`latentlab.align.procrustes.procrustes_rotation`) and
   repeat. As VecMap's stochastic dictionary induction, each CSLS entry is kept with
   probability ``keep`` (starting at ``keep_prob``) before the nearest neighbours are taken;
   ``keep`` doubles whenever the objective — the mean of each row's best CSLS score, both
   directions — has not improved for ``patience`` rounds, and the loop ends when it has not
   improved at ``keep`` = 1 (or after ``iters`` rounds). Only the dropout differs from
   VecMap: it is applied to the CSLS scores, whose neighbourhood terms come from the full
   similarity matrix.

3. **Model selection without pairs.** Every start is refined and scored by the mutual k-NN
   agreement (Huh et al. 2024, k = 10) of its final pseudo-pairs, each side's neighbours
   taken in its own space: a correct matching preserves neighbourhoods, a wrong one does
   not. A linear map carries neighbourhoods along even when it is wrong, so the score's
   chance level is measured, not assumed: ``selection_null`` is the same score for the
   pseudo-pairs of seeded random rotations. The start with the best score wins; the fit
   statistics keep every start's score, the gain over the null ``(score − null) / (1 − null)``
   and a verdict ("aligned" when the gain is ≥ 0.45, else "failed").

4. **Few pairs** (``seed_pairs``, k × 2 known (source row, target row) pairs): the starts
   above are replaced by one start from seeded graph matching (FAQ, Vogelstein et al. 2015;
   Fishkind et al. 2019) on rotation-invariant kernels, refined as in 2 from keep = 1; see
   :mod:`latentlab.align.unsupervised_seeded` (subset sizes, padding, the verdict). On MiniLM
   layer 0 → 6 (3,000 shuffled rows) 5, 10 or 20 pairs give held-out R@1 0.975, against 0.68
   for Procrustes on 300 true pairs; 2 pairs fail, and the verdict says so.

References
----------
Artetxe, Labaka & Agirre, "A robust self-learning method for fully unsupervised
cross-lingual mappings of word embeddings", ACL 2018 (VecMap).
Conneau, Lample, Ranzato, Denoyer & Jégou, "Word Translation Without Parallel Data",
ICLR 2018.
Dar, "mini-vec2vec: Scaling Universal Geometry Alignment with Linear Transformations", 2025.
Jha, Zhang, Shmatikov & Morris, "Harnessing the Universal Geometry of Embeddings", 2025 (vec2vec).
Huh, Cheung, Wang & Isola, "The Platonic Representation Hypothesis", ICML 2024 (mutual k-NN).
"""
from __future__ import annotations

import numpy as np
import torch

from ..compute import Backend, l2_normalize, stream_moments
from ..errors import InputError
from ..io import validate
from .base import DirectAligner, opt, register
from .ot import _pad, farthest_rows, gw_coupling
from .procrustes import procrustes_rotation
from .unsupervised_seeded import check_seed_pairs, check_seed_range, final_gw_ratio, half_whitened, seeded_start
from .unsupervised_steps import csls_matrix, mutual_pairs, profile_descriptors, selection_score

INITS = ("auto", "profile", "gw")
#: the verdict: a fit is "aligned" when its gain over the null, (score − null) / (1 − null), is at least this
VERDICT_GAIN = 0.45
#: with seed pairs: "aligned" when the final map ranks at least this share of the seeds' partners first
VERDICT_SEEDS = 0.5
#: … and the GW loss of its pseudo-pairs is at most this share of a random matching's (measured values: unsupervised_seeded)
VERDICT_GW_RATIO = 0.65


@register
class UnsupervisedAligner(DirectAligner):
    """Orthogonal map found without pairs: coordinate-free starts, CSLS self-learning,
    a selection score with its chance level (see the module docstring)."""

    method = "unsupervised"
    paired = False
    PRE = {"l2": True, "center": True}
    PARAMS = {"init": "auto", "restarts": 3, "iters": 100, "keep_prob": 0.1, "patience": 5,
              "init_rows": 1000, "max_rows": 6000, "seed": 0, "seed_pairs": None}
    warn_underdetermined = False

    def __init__(self, *, init="auto", restarts=3, iters=100, keep_prob=0.1, patience=5, init_rows=1000,
                 max_rows=6000, seed=0, seed_pairs=None, l2=None, center=None, standardize=None, device="auto",
                 dtype="float32"):
        self.init = init
        self.restarts = restarts
        self.iters = iters
        self.keep_prob = keep_prob
        self.patience = patience
        self.init_rows = init_rows
        self.max_rows = max_rows
        self.seed = seed
        self.seed_pairs = seed_pairs
        super().__init__(l2=l2, center=center, standardize=standardize, device=device, dtype=dtype)

    def _check_params(self, p):
        if p["init"] not in INITS:
            raise InputError(f"{opt('init', p['init'])}: expected one of {', '.join(INITS)}")
        for name, lo in (("restarts", 1), ("iters", 1), ("patience", 1), ("init_rows", 20), ("max_rows", 20),
                         ("seed", 0)):
            v = p[name]
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, float)) or int(v) != v or v < lo:
                raise InputError(f"{opt(name, v)}: must be an integer ≥ {lo}")
            p[name] = int(v)
        v = p["keep_prob"]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)) or not 0 < float(v) <= 1:
            raise InputError(f"{opt('keep_prob', v)}: must be a number in (0, 1]")
        p["keep_prob"] = float(v)
        seeds = check_seed_pairs(p["seed_pairs"])
        p["seed_pairs"] = None if seeds is None else seeds.tolist()  # JSON in the artifact header
        return p

    # ------------------------------------------------------------------ fitting
    def _fit(self, X, Y, backend):
        for emb in (X, Y):
            validate(emb)  # the method holds both sets in memory; name a NaN row up front
            if emb.n < 20:
                raise InputError(f"{emb.name}: unsupervised needs at least 20 rows per side "
                                 f"(it matches neighbourhoods of 10), got {emb.n}")
        exact = Backend.make(self.device, "float64")  # SVDs and Procrustes in float64
        rows = []
        for pre, emb in ((self.pre_x_, X), (self.pre_y_, Y)):
            mom = stream_moments(emb.data, backend=exact, second=False, transform=l2_normalize if pre.l2 else None)
            pre.set_stats(mom.mean(0), np.ones(emb.dim))
            rows.append(pre.on(exact).apply(exact.tensor(emb.data)))
        p = self.params_
        D = max(X.dim, Y.dim)
        gen = torch.Generator().manual_seed(p["seed"])
        seeds = None if p["seed_pairs"] is None else np.asarray(p["seed_pairs"], dtype=np.int64)
        if seeds is not None:
            check_seed_range(seeds, X.n, Y.n)
        # the induction works on at most max_rows rows per side (VecMap's vocabulary cutoff), a seeded
        # sample that keeps the seed rows
        idx = [_sample(len(r), p["max_rows"], gen, None if seeds is None else seeds[:, c]) for c, r in enumerate(rows)]
        x, y = (l2_normalize(_pad(r if i is None else r[torch.as_tensor(i, device=r.device)], D))
                for r, i in zip(rows, idx))
        work = Backend.make(self.device, self.dtype)  # similarity matrices in the compute dtype
        seeded = {}
        if seeds is None:
            starts = self._starts(x, y, p, gen)
        else:  # positions of the seeds among the rows kept
            local = np.stack([s if i is None else np.searchsorted(i, s) for s, i in zip(seeds.T, idx)], axis=1)
            hx, hy = half_whitened(x.double()), half_whitened(y.double())
            R0, _, seeded = seeded_start(x, y, hx, hy, local, p["init_rows"], p["seed"])
            starts = [(f"seeded ({len(seeds)} pairs)", R0)]
            p = {**p, "keep_prob": 1.0}  # the start is already close: no stochastic induction needed
        runs = []
        for name, R0 in starts:
            R, pairs, obj, its = self._refine(x, y, R0, p, gen, work)
            score = selection_score(x, y, pairs, work)
            runs.append({"init": name, "selection_score": score, "objective": obj, "iterations": its,
                         "n_pseudo_pairs": int(len(pairs)), "R": R, "pairs": pairs})
        best = max(runs, key=lambda r: (r["selection_score"], r["objective"]))
        null = self._null(x, y, p, work)
        self.R_ = best["R"].cpu().numpy()
        self.W_ = self.R_[: X.dim, : Y.dim]
        self.n_anchors_ = 0 if seeds is None else len(seeds)
        score = best["selection_score"]
        gain = (score - null) / (1.0 - null) if null < 1 else 0.0
        ok = gain >= VERDICT_GAIN
        if seeds is not None:
            # judged on the final map's geometry and the known pairs, not on mutual k-NN (which can be low
            # on a correct map between layers); a failed map may still rank its few seeds first
            hit = (work.tensor(x[torch.as_tensor(local[:, 0], device=x.device)]) @ work.tensor(best["R"])) @ work.tensor(y).T
            seeded["seed_r_at_1"] = float((hit.argmax(1).cpu().numpy() == local[:, 1]).mean())
            seeded["final_gw_ratio"] = final_gw_ratio(hx, hy, best["pairs"], p["init_rows"], p["seed"])
            ok = seeded["seed_r_at_1"] >= VERDICT_SEEDS and seeded["final_gw_ratio"] <= VERDICT_GW_RATIO
        self.fit_stats_ = {
            "n_source": X.n, "n_target": Y.n, "rows_used": [len(x), len(y)], "init": best["init"],
            "iterations": best["iterations"], "n_pseudo_pairs": best["n_pseudo_pairs"],
            "csls_objective": best["objective"], "selection_score": score, "selection_null": null,
            "selection_gain": gain, **seeded,
            "verdict": "aligned" if ok else ("failed (no better than random rotations: do not trust this map)"
                                             if seeds is None else "failed (the final pairs do not keep the "
                                             "geometry or miss the seeds: do not trust this map; add seed pairs)"),
            "starts": [{k: v for k, v in r.items() if k not in ("R", "pairs")} for r in runs]}

    def _starts(self, x, y, p, gen):
        """(name, first rotation) of every start, in a fixed order."""
        s = min(len(x), len(y), p["init_rows"])
        out = []
        if p["init"] in ("auto", "gw"):
            si, sj = farthest_rows(x, s), farthest_rows(y, s)
            G = gw_coupling(x[si], y[sj])
            out.append(("gw", procrustes_rotation(x[si].T @ G @ y[sj])[0]))
        if p["init"] in ("auto", "profile"):
            for r in range(p["restarts"]):
                if r == 0:
                    si, sj = farthest_rows(x, s), farthest_rows(y, s)
                else:
                    si = torch.randperm(len(x), generator=gen)[:s].sort().values.to(x.device)
                    sj = torch.randperm(len(y), generator=gen)[:s].sort().values.to(y.device)
                C = csls_matrix(profile_descriptors(x[si]), profile_descriptors(y[sj]))
                fwd, bwd = C.argmax(1), C.argmax(0)
                src = torch.cat([torch.arange(s, device=x.device), bwd])
                trg = torch.cat([fwd, torch.arange(s, device=x.device)])
                name = "profile" + (" (farthest rows)" if r == 0 else f" (random rows, restart {r})")
                out.append((name, procrustes_rotation(x[si][src].T @ y[sj][trg])[0]))
        return out

    def _refine(self, x, y, R, p, gen, work):
        """Self-learning from rotation R: (R, final mutual-CSLS pairs, objective, rounds)."""
        keep, best, since = p["keep_prob"], -np.inf, 0
        xw, yw = work.tensor(x), work.tensor(y)
        pairs = None
        it = 0
        for it in range(1, p["iters"] + 1):
            C = csls_matrix(xw @ work.tensor(R), yw)
            obj = 0.5 * float(C.max(1).values.mean() + C.max(0).values.mean())
            if keep < 1:  # stochastic dictionary induction: drop entries before the argmax
                drop = torch.rand(C.shape, generator=gen).to(C.device) >= keep
                C = C.masked_fill(drop, -torch.inf)
            pairs = mutual_pairs(C)
            if obj > best + 1e-6:
                best, since = obj, 0
            else:
                since += 1
            if since >= p["patience"]:
                if keep >= 1:
                    break
                keep, since = min(1.0, 2 * keep), 0
            R = procrustes_rotation(x[pairs[:, 0]].T @ y[pairs[:, 1]])[0]
        # the final pairs without dropout: what the selection score judges
        pairs = mutual_pairs(csls_matrix(xw @ work.tensor(R), yw))
        return R, pairs, best, it

    def _null(self, x, y, p, work, n: int = 2) -> float:
        """The selection score of seeded random rotations (its chance level on these rows)."""
        gen = torch.Generator().manual_seed(p["seed"] + 1)
        vals = []
        for _ in range(n):
            Q, _ = torch.linalg.qr(torch.randn(x.shape[1], x.shape[1], generator=gen, dtype=torch.float64))
            R = Q.to(x.device)
            vals.append(selection_score(x, y, mutual_pairs(csls_matrix(work.tensor(x @ R), work.tensor(y))), work))
        return float(np.mean(vals))


def _sample(n: int, k: int, gen: torch.Generator, keep: np.ndarray | None) -> np.ndarray | None:
    """Sorted indices of a seeded sample of k of n rows (None: all rows), ``keep`` always among them."""
    if n <= k:
        return None
    idx = torch.randperm(n, generator=gen)[:k].numpy()
    if keep is None:
        return np.sort(idx)
    others = idx[~np.isin(idx, keep)][: max(k - len(keep), 0)]
    return np.sort(np.concatenate([keep, others]))


__all__ = ["UnsupervisedAligner", "INITS"]
