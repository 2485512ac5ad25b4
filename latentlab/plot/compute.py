"""High-level figure functions: compute what a figure shows with the library, then draw it.

Each returns ``(figure, numbers)``; ``numbers`` is a small JSON-able dict of what was drawn,
so the CLI's ``--json`` and the HTML report can show the values beside the picture.
"""
from __future__ import annotations

import numpy as np

from ..io import as_embeddings
from .data import joint_projection, similarity_samples
from .figures import (draw_cka_heatmap, draw_joint_embedding, draw_principal_angles, draw_recall_curves,
                      draw_shift, draw_similarity_histograms, draw_spectrum)

RECALL_KS = (1, 2, 5, 10, 20, 50, 100)


def umap_figure(a, b, *, method="umap", max_points=10_000, seed=0, name_a=None, name_b=None, **_):
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    proj = joint_projection(ea.data, eb.data, method=method, max_points=max_points, seed=seed)
    fig = draw_joint_embedding(proj, name_a or ea.name, name_b or eb.name, seed=seed)
    return fig, {"method": method, "points_a": len(proj["a"]), "points_b": len(proj["b"]),
                 "subsampled": proj["subsampled"], "paired": proj["paired"]}


def cka_figure(inputs, *, labels=None, device="auto", dtype="float32", **_):
    from ..analyze.cka import cka_matrix

    res = cka_matrix(inputs, labels=labels, device=device, dtype=dtype)
    return draw_cka_heatmap(np.asarray(res.matrix), res.labels, title=f"Linear CKA, n = {res.n}"), res.to_dict()


def sims_figure(a, b, *, seed=0, name_a=None, name_b=None, n_pairs=20_000, **_):
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    samples = similarity_samples(ea.data, eb.data, n_pairs=n_pairs, seed=seed)
    fig = draw_similarity_histograms(samples, name_a or ea.name, name_b or eb.name)
    return fig, {k: {"mean": float(np.mean(v)), "n": int(len(v))} for k, v in samples.items()}


def covariance_eigenvalues(x, *, device="auto", dtype="float32") -> np.ndarray:
    """Eigenvalues (descending) of the covariance of the rows, from streamed moments."""
    import torch

    from ..compute import as_backend, stream_moments

    emb = as_embeddings(x)
    mom = stream_moments(emb.data, backend=as_backend(device, dtype))
    return torch.linalg.eigvalsh(mom.covariance()).flip(0).clamp_min(0).cpu().numpy()


def spectrum_figure(inputs, *, names=None, device="auto", dtype="float32", **_):
    from ..analyze.spectrum import spectral_stats

    spectra = []
    for i, x in enumerate(inputs):
        emb = as_embeddings(x, f"input {i}")
        lam = covariance_eigenvalues(emb, device=device, dtype=dtype)
        er = spectral_stats(lam)["effective_rank"]
        spectra.append({"name": (names[i] if names else emb.name), "singular_values": np.sqrt(lam * (emb.n - 1)),
                        "effective_rank": er})
    fig = draw_spectrum(spectra)
    return fig, {s["name"]: {"effective_rank": s["effective_rank"]} for s in spectra}


def angles_figure(a, b, *, rank=None, variance=0.99, name_a=None, name_b=None, device="auto", dtype="float32", **_):
    from ..analyze.subspace import overlap

    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    res = overlap(ea, eb, rank=rank, variance=variance, device=device, dtype=dtype)
    if res.principal_angles is None:
        from ..errors import InputError

        raise InputError("principal angles need A and B of the same dimension")
    fig = draw_principal_angles(np.asarray(res.principal_angles), name_a or ea.name, name_b or eb.name)
    return fig, {"principal_angles": res.principal_angles, "overlap": res.overlap,
                 "grassmann_distance": res.grassmann_distance, "rank_a": res.rank_a, "rank_b": res.rank_b}


def shift_figure(a, b, *, shift=None, name_a=None, name_b=None, seed=0, device="auto", dtype="float32", **_):
    from ..analyze.gap import gap

    deltas = shift if shift is not None else [round(x, 2) for x in np.arange(-1, 1.001, 0.25)]
    res = gap(a, b, shift=deltas, separability=False, seed=seed, device=device, dtype=dtype)
    points = [p.to_dict() for p in res.shift]
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    return draw_shift(points, name_a or ea.name, name_b or eb.name), {"shift": points}


def fixed_ranks(q, g, truth=None, *, fix=None, bank_gallery=None, bank_queries=None, device="auto",
                dtype="float32", **params) -> np.ndarray:
    """Per-query ranks (0-based, ties against) after a post-hoc fix (or none)."""
    from .. import retrieval as R

    kw = {"device": device, "dtype": dtype}
    q, g = as_embeddings(q, "queries").data, as_embeddings(g, "gallery").data
    if fix is None:
        return R.true_ranks(q, g, truth, backend=_backend(device, dtype))
    if fix in ("invgc", "localadj"):
        g2 = R.invgc(g, bank_gallery=bank_gallery, bank_queries=bank_queries, local_adj=fix == "localadj",
                     **{k: v for k, v in params.items() if k in ("r_gallery", "r_query", "pool_rate")}, **kw)
        return R.true_ranks(q, g2, truth, backend=_backend(device, dtype))
    if fix == "csls":
        return R.csls(q, g, **{k: v for k, v in params.items() if k == "k"}, **kw).ranks(truth)
    if fix == "qbnorm":
        return R.qbnorm(q, g, bank_queries, **{k: v for k, v in params.items() if k in ("beta", "k")}, **kw).ranks(truth)
    if fix == "dbnorm":
        extra = {"beta_query": params["beta"]} if "beta" in params else {}
        if "beta_gallery" in params:
            extra["beta_gallery"] = params["beta_gallery"]
        return R.dbnorm(q, g, bank_queries, bank_gallery, **extra, **kw).ranks(truth)
    raise ValueError(f"unknown fix {fix!r}")


def _backend(device, dtype):
    from ..compute import as_backend

    return as_backend(device, dtype)


def recall_figure(q, g, truth=None, *, fix=None, name_q=None, name_g=None, device="auto", dtype="float32",
                  **params):
    eq, eg = as_embeddings(q, "queries"), as_embeddings(g, "gallery")
    ks = [k for k in RECALL_KS if k <= eg.n]
    curves = {"no fix": fixed_ranks(eq, eg, truth, device=device, dtype=dtype)}
    if fix:
        curves[fix] = fixed_ranks(eq, eg, truth, fix=fix, device=device, dtype=dtype, **params)
    recall = {label: (ks, [float(np.mean(r < k)) for k in ks]) for label, r in curves.items()}
    title = f"Retrieval {name_q or eq.name} → {name_g or eg.name} (ties count against the query)"
    return draw_recall_curves(recall, title), {label: dict(zip(map(str, ks), v)) for label, (ks, v) in recall.items()}
