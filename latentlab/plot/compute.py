"""High-level figure functions: compute what a figure shows with the library, then draw it.

Each returns ``(figure, numbers)``; ``numbers`` is a small JSON-able dict of what was drawn,
so the CLI's ``--json`` and the HTML report can show the values beside the picture.
"""
from __future__ import annotations

import numpy as np

from ..io import as_embeddings, require_same_dim
from .data import joint_projection, similarity_samples
from .figures import (draw_cka_heatmap, draw_joint_embedding, draw_principal_angles, draw_recall_curves,
                      draw_shift, draw_similarity_histograms, draw_spectrum)



def joint_figure(a, b, *, projection="pca", max_points=10_000, seed=0, name_a=None, name_b=None, title=None, **_):
    """The joint 2-D view (PCA or UMAP) of two sets of the same width; see :func:`.data.joint_projection`."""
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    require_same_dim(ea, eb, "the joint view")
    proj = joint_projection(ea.data, eb.data, method=projection, max_points=max_points, seed=seed)
    fig = draw_joint_embedding(proj, name_a or ea.name, name_b or eb.name, seed=seed, title=title)
    return fig, {"projection": projection, "points_a": len(proj["a"]), "points_b": len(proj["b"]),
                 "subsampled": proj["subsampled"], "paired": proj["paired"]}


def cka_figure(inputs, *, labels=None, title=None, vmin=0.0, vmax=1.0, device="auto", dtype="float32", **_):
    from ..analyze.matrix import cka_matrix

    check_range(vmin, vmax)
    res = cka_matrix(inputs, labels=labels, device=device, dtype=dtype)
    fig = draw_cka_heatmap(np.asarray(res.matrix), res.labels, title=title or f"Linear CKA, n = {res.n}",
                           vmin=vmin, vmax=vmax)
    return fig, res.to_dict()


def check_range(vmin: float, vmax: float) -> None:
    """A colour scale needs finite vmin < vmax (named as the library arguments)."""
    from ..errors import InputError

    if not (np.isfinite(vmin) and np.isfinite(vmax)):
        raise InputError(f"vmin {vmin}, vmax {vmax}: the colour scale needs finite bounds")
    if vmin >= vmax:
        raise InputError(f"vmin {vmin} must be below vmax {vmax}")


def sims_figure(a, b, *, seed=0, name_a=None, name_b=None, title=None, n_pairs=20_000, **_):
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    require_same_dim(ea, eb, "cosine similarity across sets")
    samples = similarity_samples(ea.data, eb.data, n_pairs=n_pairs, seed=seed)
    fig = draw_similarity_histograms(samples, name_a or ea.name, name_b or eb.name, title=title)
    return fig, {k: {"mean": float(np.mean(v)), "n": int(len(v))} for k, v in samples.items()}


def spectrum_figure(inputs, *, names=None, title=None, device="auto", dtype="float32", **_):
    from ..analyze.spectrum import spectrum

    spectra = []
    for i, x in enumerate(inputs):
        emb = as_embeddings(x, f"input {i}")
        res = spectrum(emb, hubness=False, device=device, dtype=dtype)
        spectra.append(spectrum_entry(res, names[i] if names else emb.name))
    fig = draw_spectrum(spectra, title=title)
    return fig, {s["name"]: {"effective_rank": s["effective_rank"]} for s in spectra}


def spectrum_entry(res, name: str) -> dict:
    """What :func:`draw_spectrum` needs from a :class:`~latentlab.analyze.spectrum.SpectrumResult`."""
    return {"name": name, "singular_values": np.sqrt(res.eigenvalues * (res.n - 1)),
            "effective_rank": float(res.effective_rank)}


def angles_figure(a, b, *, rank=None, variance=0.99, name_a=None, name_b=None, title=None, device="auto",
                  dtype="float32", **_):
    from ..analyze.overlap import overlap

    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    res = overlap(ea, eb, rank=rank, variance=variance, device=device, dtype=dtype)
    if res.principal_angles_rad is None:
        from ..errors import InputError

        raise InputError("principal angles need A and B of the same dimension")
    fig = draw_principal_angles(np.asarray(res.principal_angles_rad), name_a or ea.name, name_b or eb.name, title=title)
    return fig, {"principal_angles_rad": res.principal_angles_rad, "overlap": res.overlap,
                 "grassmann_distance_rad": res.grassmann_distance_rad, "rank_a": res.rank_a, "rank_b": res.rank_b}


def shift_figure(a, b, *, shift=None, name_a=None, name_b=None, title=None, seed=0, device="auto", dtype="float32",
                 **_):
    from ..analyze.gap import gap

    deltas = shift if shift is not None else [round(x, 2) for x in np.arange(-1, 1.001, 0.25)]
    res = gap(a, b, shift=deltas, separability=False, seed=seed, device=device, dtype=dtype)
    points = [p.to_dict() for p in res.shift]
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    return draw_shift(points, name_a or ea.name, name_b or eb.name, title=title), {"shift": points}


def recall_figure(q, g, truth=None, *, fix=None, bank_gallery=None, bank_queries=None, name_q=None, name_g=None,
                  title=None, device="auto", dtype="float32", **params):
    from ..retrieval.evaluate import evaluate
    from ..ranks import recall_curve

    eq, eg = as_embeddings(q, "queries"), as_embeddings(g, "gallery")
    res = evaluate(eq, eg, truth, fix, bank_gallery=bank_gallery, bank_queries=bank_queries, device=device,
                   dtype=dtype, **params)
    curves = {"no fix": res.forward.baseline.ranks}
    if fix:
        curves[fix] = res.forward.fixed.ranks
    recall = {label: recall_curve(r, eg.n) for label, r in curves.items()}
    title = title or f"Retrieval {name_q or eq.name} → {name_g or eg.name} (ties count against the query)"
    return draw_recall_curves(recall, title), {label: dict(zip(map(str, ks), v)) for label, (ks, v) in recall.items()}
