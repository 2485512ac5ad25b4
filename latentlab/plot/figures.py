"""Drawing functions: each takes computed numbers and returns a matplotlib Figure.

They know nothing of files or of how the numbers were computed; ``latentlab.plot``'s
high-level functions compute and draw, the CLI saves.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .style import COLUMN_IN, DOUBLE_IN, PALETTE, legend_outside, new_figure, styled


@styled
def draw_joint_embedding(proj: Mapping, name_a: str, name_b: str, *, n_lines: int = 60, seed: int = 0,
                         labels_a: np.ndarray | None = None, title: str | None = None) -> Figure:
    """Both sets in one 2-D view, coloured by set, with lines joining a sample of true pairs."""
    fig, (ax,) = new_figure(COLUMN_IN, COLUMN_IN * 0.9)
    a, b = proj["a"], proj["b"]
    if proj["paired"] and n_lines:
        pick = np.random.default_rng(seed).choice(len(a), min(n_lines, len(a)), replace=False)
        for i in pick:
            ax.plot([a[i, 0], b[i, 0]], [a[i, 1], b[i, 1]], color="0.6", lw=0.3, alpha=0.6, zorder=1)
    size = max(1.0, min(8.0, 2000 / max(len(a) + len(b), 1)))
    ax.scatter(a[:, 0], a[:, 1], s=size, color=PALETTE[0], label=name_a, alpha=0.8, lw=0, zorder=2)
    ax.scatter(b[:, 0], b[:, 1], s=size, color=PALETTE[1], label=name_b, alpha=0.8, lw=0, zorder=2, marker="s")
    method = proj["method"].upper()
    ax.set_xlabel(f"{method} 1 (a.u.)")
    ax.set_ylabel(f"{method} 2 (a.u.)")
    note = f", {len(a)}+{len(b)} sampled points" if proj["subsampled"] else ""
    lines = ", grey lines join true pairs" if proj["paired"] and n_lines else ""
    ax.set_title(title or f"{name_a} vs {name_b}: joint {method} of L2-normalised rows{note}{lines}", wrap=True)
    legend_outside(ax, markerscale=3)
    ax.set_aspect("equal", adjustable="datalim")
    return fig


@styled
def draw_cka_heatmap(matrix: np.ndarray, labels: Sequence[str], *, title: str = "Linear CKA",
                     vmin: float = 0.0, vmax: float = 1.0) -> Figure:
    """Annotated layer × layer heatmap (CKA is a similarity: 1 = identical up to rotation/scale).

    ``vmin``/``vmax`` bound the colour scale (default the full range of CKA, [0, 1]).
    """
    m = np.asarray(matrix, dtype=float)
    n = len(labels)
    side = min(DOUBLE_IN, max(COLUMN_IN, 0.45 * n + 1.2))
    fig, (ax,) = new_figure(side, side * 0.85)
    im = ax.imshow(m, vmin=vmin, vmax=vmax, cmap="viridis")
    light = vmin + 0.6 * (vmax - vmin)  # viridis is light above ~60 % of its range: dark text there
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    if n <= 16:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if m[i, j] > light else "white")
    fig.colorbar(im, ax=ax, label="CKA (similarity, 1 = same)")
    ax.set_xlabel("embedding set")
    ax.set_ylabel("embedding set")
    ax.set_title(title)
    ax.spines[:].set_visible(False)
    return fig


@styled
def draw_similarity_histograms(samples: Mapping[str, np.ndarray], name_a: str, name_b: str, *,
                               title: str | None = None) -> Figure:
    """Histograms of cosine similarity for true pairs, random pairs and intra-set pairs."""
    fig, (ax,) = new_figure(COLUMN_IN)
    lo = min(float(v.min()) for v in samples.values() if len(v))
    hi = max(float(v.max()) for v in samples.values() if len(v))
    bins = np.linspace(lo, hi, 60)
    from .data import PAIR_LABELS

    for k, (key, values) in enumerate(samples.items()):
        ax.hist(values, bins=bins, density=True, histtype="step", color=PALETTE[k % len(PALETTE)],
                label=f"{PAIR_LABELS.get(key, key)} (mean {np.mean(values):.2f})", lw=1.2)
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.set_title(title or f"Cosine similarities: A = {name_a}, B = {name_b}", wrap=True)
    legend_outside(ax)
    return fig


@styled
def draw_spectrum(spectra: Sequence[Mapping], *, title: str | None = None) -> Figure:
    """Normalised singular values (log scale) and cumulative explained variance.

    Each entry: ``name``, ``singular_values`` (descending), ``effective_rank``.
    """
    fig, (ax1, ax2) = new_figure(DOUBLE_IN, DOUBLE_IN * 0.33, ncols=2)
    for k, s in enumerate(spectra):
        sv = np.asarray(s["singular_values"], dtype=float)
        sv = sv[sv > sv[0] * 1e-7]  # numerically zero directions (rank deficiency) would swamp the log axis
        color = PALETTE[k % len(PALETTE)]
        idx = np.arange(1, len(sv) + 1)
        ax1.plot(idx, sv / sv[0], color=color, label=s["name"])
        var = sv**2
        ax2.plot(idx, np.cumsum(var) / var.sum(), color=color, label=s["name"])
        er = s.get("effective_rank")
        if er is not None:
            for ax in (ax1, ax2):
                ax.axvline(er, color=color, ls="--", lw=0.8)
            ax1.text(er, 0.5 ** (3 * k), f" eff. rank {er:.1f}", color=color, fontsize=6, va="top")
    ax1.set_yscale("log")
    ax1.set_xscale("log")
    ax1.set_xlabel("component (rank order)")
    ax1.set_ylabel("singular value / largest")
    ax1.set_title("Singular-value spectrum (centred)")
    ax2.set_xscale("log")
    ax2.set_xlabel("number of components")
    ax2.set_ylabel("cumulative explained variance")
    ax2.set_ylim(0, 1.02)
    ax2.set_title("Explained variance (dashed: effective rank)")
    if title:
        fig.suptitle(title)
    legend_outside(ax1, ncols=len(spectra))
    return fig


@styled
def draw_principal_angles(angles_rad: np.ndarray, name_a: str, name_b: str, *, title: str | None = None) -> Figure:
    """Principal angles between two subspaces, ascending (0° = shared direction)."""
    fig, (ax,) = new_figure(COLUMN_IN)
    deg = np.degrees(np.asarray(angles_rad, dtype=float))
    ax.plot(np.arange(1, len(deg) + 1), deg, marker="o", ms=2, color=PALETTE[0])
    ax.set_ylim(0, 91)
    ax.set_xlabel("principal angle index (ascending)")
    ax.set_ylabel("angle (degrees)")
    ax.set_title(title or f"Principal angles between PCA subspaces of {name_a} and {name_b}", wrap=True)
    return fig


@styled
def draw_shift(points: Sequence[Mapping], name_a: str, name_b: str, *, title: str | None = None) -> Figure:
    """Gap and A→B R@1 against the shift δ (Liang et al. 2022, embedding-shift experiment)."""
    fig, (ax,) = new_figure(COLUMN_IN)
    d = [p["delta"] for p in points]
    ax.plot(d, [p["centroid_distance"] for p in points], marker="o", ms=3, color=PALETTE[0], label="gap")
    ax.set_xlabel("shift δ along the gap direction (positive = closer)")
    ax.set_ylabel("centroid distance (L2)", color=PALETTE[0])
    r1 = [p.get("r_at_1") for p in points]
    if all(v is not None for v in r1):
        ax2 = ax.twinx()
        ax2.spines["right"].set_visible(True)
        ax2.plot(d, r1, marker="s", ms=3, color=PALETTE[3], label="R@1")
        ax2.set_ylabel("R@1, A→B (fraction)", color=PALETTE[3])
        ax2.set_ylim(0, 1)
    ax.set_title(title or f"Embedding shift: {name_a} vs {name_b}", wrap=True)
    return fig


@styled
def draw_recall_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], title: str) -> Figure:
    """Recall@k against k for several settings (e.g. before and after a fix)."""
    fig, (ax,) = new_figure(COLUMN_IN)
    for k, (label, (ks, recall)) in enumerate(curves.items()):
        ax.plot(ks, recall, marker="o", ms=2, color=PALETTE[k % len(PALETTE)], label=label,
                ls="-" if k % 2 == 0 else "--")
    ax.set_xscale("log")
    ax.set_xlabel("k (log scale)")
    ax.set_ylabel("recall@k (fraction)")
    ax.set_ylim(0, 1.01)
    ax.set_title(title, wrap=True)
    legend_outside(ax)
    return fig


@styled
def draw_intervals(items: Sequence[tuple[str, float, float | None, float | None]], *, xlabel: str,
                   title: str, xlim: tuple[float, float] | None = (0.0, 1.0)) -> Figure:
    """Point estimates with their confidence intervals, one row each (label, value, low, high)."""
    fig, (ax,) = new_figure(COLUMN_IN, 0.9 + 0.3 * len(items))
    for y, (label, value, lo, hi) in enumerate(items):
        color = PALETTE[y % len(PALETTE)]
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [y, y], color=color, lw=2.5, alpha=0.5, solid_capstyle="butt")
        ax.plot([value], [y], "o", color=color, ms=4)
        ax.text(value, y + 0.22, f"{value:.3f}", ha="center", fontsize=6)
    ax.set_yticks(range(len(items)), [it[0] for it in items])
    ax.set_ylim(-0.6, len(items) - 0.4)
    if xlim:
        ax.set_xlim(*xlim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("measure")
    ax.set_title(title, wrap=True)
    return fig


@styled
def draw_method_bars(values: Mapping[str, float], *, ylabel: str, title: str,
                     baselines: Mapping[str, float] | None = None) -> Figure:
    """One bar per method, with dashed lines for the baselines it must beat."""
    fig, (ax,) = new_figure(COLUMN_IN)
    names = list(values)
    ax.bar(range(len(names)), [values[n] for n in names], color=PALETTE[0], width=0.6)
    for i, n in enumerate(names):
        ax.text(i, values[n], f"{values[n]:.2f}", ha="center", va="bottom", fontsize=6)
    for k, (label, v) in enumerate((baselines or {}).items()):
        if v is not None:
            ax.axhline(v, color=PALETTE[(k + 1) % len(PALETTE)], ls="--", lw=1, label=f"{label} ({v:.2f})")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("aligner")
    ax.set_ylabel(ylabel)
    ax.set_title(title, wrap=True)
    if baselines:
        legend_outside(ax)
    return fig
