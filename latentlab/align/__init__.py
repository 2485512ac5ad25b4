"""Stitching maps between embedding spaces: fit on anchor pairs, transform, save, load, evaluate.

::

    from latentlab.align import fit_aligner, load_aligner, evaluate_aligner
    al = fit_aligner("procrustes", "clip.npy::0", "clip.npy::1", n_anchors=300)
    al.save("map.safetensors")
    res = evaluate_aligner(load_aligner("map.safetensors"), "clip.npy::0", "clip.npy::1")
    apply_map("map.safetensors", "new_images/", "mapped.npy")   # streamed, any number of rows

Methods (``METHODS``): relative, lstsq, ridge, affine, procrustes, lst, lowrank, cca, ot, mlp, unsupervised.
"""
from __future__ import annotations


from ..io import as_embeddings, require_paired, validate
from . import cca, linear, lowrank, lst, mlp, ot, procrustes, relative  # noqa: F401  (register methods)
from . import unsupervised  # noqa: F401  (pairs-free method: fit unsupervised)
from .apply import ApplyResult, apply_map, mapped_blocks
from .anchors import STRATEGIES, check_anchor_indices, select_anchors
from .artifact import load_aligner
from ..io.rowsource import IndexedRows
from .base import METHODS, Aligner
from .evaluate import EvalResult, evaluate_aligner
from .matching import MatchResult, match
from ..errors import InputError
from .feed import check_precision


def make_aligner(method: str, **params) -> Aligner:
    """An unfitted aligner of ``method`` (InputError for unknown methods/options)."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    cls = METHODS[method]
    common = {"l2", "center", "standardize", "device", "dtype"}
    unknown = sorted(set(params) - set(cls.PARAMS) - common)
    if unknown:
        opts = ", ".join("--" + u.replace("_", "-") for u in unknown)
        allowed = ", ".join("--" + p.replace("_", "-") for p in cls.PARAMS) or "none"
        raise InputError(f"{method}: option {opts} does not apply (its options: {allowed})")
    # None means "the default" for a method option (the CLI passes unset options as None)
    kwargs = {k: v for k, v in params.items() if v is not None or k in common}
    aligner = cls(**kwargs)
    aligner._validated_params()  # fail before any data is read (fit checks again)
    aligner._validated_pre()
    return aligner


def fit_aligner(method: str, X, Y, *, anchors=None, n_anchors: int | None = None,
                anchor_strategy: str = "random", labels=None, seed: int = 0, device="auto",
                dtype="float32", precision: str | None = None, **params) -> Aligner:
    """Fit ``method`` from source ``X`` to target ``Y`` (paths, arrays or Embeddings).

    Parameters
    ----------
    anchors : row indices (present in both) used as anchor pairs; for ``ot`` seed pairs.
    n_anchors : choose this many anchors with ``anchor_strategy`` (random, kmeans, fps,
        stratified — the latter needs ``labels``), seeded by ``seed``.
        Neither given: every row is an anchor (``ot``: no seed pairs).
    dtype : compute dtype of the streamed block products (float32 default: about twice as fast
        on CPU; the sums and the solve are float64 either way). Use float64 for exact recovery.
    precision : ``mlp`` only: the forward pass's mixed-precision policy (:func:`~latentlab.align.feed.amp_dtype`;
        ``auto`` = bfloat16 autocast on CUDA where native, else float16 with loss scaling, and
        float32 on CPU; ``float32`` turns autocast off). A runtime setting like ``device``: not
        saved in the artifact; ``fit_stats_["precision"]`` records what ran.
    params : the method's options (``alpha``, ``rank``, ``components``, ``reg``, ``scale``,
        ``solver``, ``iters``, ``gw_rows``) and preprocessing (``l2``, ``center``, ``standardize``).

    The artifact records the anchor indices; the other rows are what ``evaluate`` holds out.
    """
    if "seed" in getattr(METHODS.get(method), "PARAMS", {}):  # ot, mlp: --seed is the method's seed
        params["seed"] = seed
    aligner = make_aligner(method, device=device, dtype=dtype, **params)
    if precision is not None:
        if not hasattr(aligner, "precision"):
            raise InputError(f"{method}: option `precision` applies to mlp only (a trained projector's forward pass)")
        aligner.precision = check_precision(precision)
    # no up-front NaN scan (a second pass over 100k × 768 costs as much as the fit): the fit's
    # one streamed pass checks its sums and names the bad row when they are not finite
    ex, ey = as_embeddings(X, "source", check_finite=False), as_embeddings(Y, "target", check_finite=False)
    if anchors is not None and n_anchors is not None:
        raise InputError("give either `anchors` or `n_anchors`, not both")
    idx = None
    if anchors is not None:
        idx = check_anchor_indices(anchors, ex.n, ey.n)
    elif n_anchors is not None:
        require_paired(ex, ey, f"{method} with --n-anchors (anchors are row pairs)")
        if anchor_strategy in ("kmeans", "fps"):
            validate(ex)  # these strategies compute on every source row
        idx = select_anchors(ex.data, int(n_anchors), anchor_strategy, labels=labels, seed=seed)
    if not aligner.paired:
        return aligner.fit(ex, ey, anchor_indices=idx)
    require_paired(ex, ey, f"{method} (anchor pairs: row i of the source matches row i of the target)")
    if idx is None:
        return aligner.fit(ex, ey, n_rows=ex.n)
    sx = as_embeddings(IndexedRows(ex.data, idx), ex.name, check_finite=False)
    sy = as_embeddings(IndexedRows(ey.data, idx), ey.name, check_finite=False)
    return aligner.fit(sx, sy, anchor_indices=idx, n_rows=ex.n)


__all__ = ["fit_aligner", "load_aligner", "evaluate_aligner", "apply_map", "mapped_blocks", "ApplyResult", "match", "make_aligner", "METHODS",
           "Aligner", "EvalResult", "MatchResult", "select_anchors", "check_anchor_indices", "STRATEGIES"]
