"""The few-pair curve figure: held-out R@1 against the number of anchor pairs, one line per method."""
from __future__ import annotations

from typing import Mapping

from matplotlib.figure import Figure

from .style import COLUMN_IN, PALETTE, legend_outside, new_figure, styled

BASELINE_NAMES = {"identity": "identity (raw rows)", "random_rotation": "random rotation"}


@styled
def draw_curve(result: Mapping, *, title: str | None = None, names: Mapping[str, str] | None = None) -> Figure:
    """Mean held-out R@1 per method (line), min–max over draws (band), ± std (error bars), baselines dashed.

    ``result`` is :class:`latentlab.align.curve.CurveResult` as a dict (``to_dict()`` or the
    JSON that ``latentlab curve`` writes); ``names`` renames methods in the legend.
    """
    fig, (ax,) = new_figure(COLUMN_IN)
    for i, method in enumerate(result["methods"]):
        pts = sorted((p for p in result["points"] if p["method"] == method), key=lambda p: p["pairs"])
        x = [p["pairs"] for p in pts]
        color = PALETTE[i % len(PALETTE)]
        ax.fill_between(x, [p["r_at_1_min"] for p in pts], [p["r_at_1_max"] for p in pts], color=color, alpha=0.18, lw=0)
        ax.errorbar(x, [p["r_at_1_mean"] for p in pts], yerr=[p["r_at_1_std"] for p in pts], color=color, marker="o",
                    ms=2.5, capsize=1.5, lw=1.2, label=(names or {}).get(method, method))
    for k, (key, value) in enumerate((result.get("baselines") or {}).items()):
        if value is not None:
            ax.axhline(value, color="0.35" if k == 0 else "0.65", ls="--" if k == 0 else ":", lw=0.9,
                       label=f"{BASELINE_NAMES.get(key, key)} ({value:.2f})")
    ax.set_xscale("log")
    ax.set_xlabel("anchor pairs (log scale)")
    ax.set_ylabel("held-out R@1 (fraction)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or f"Few-pair curve: {result.get('source', 'source')} → {result.get('target', 'target')}, "
                          f"{result['n_test']} held-out rows, {result['draws']} draws (band: min–max)", wrap=True)
    legend_outside(ax)
    return fig


__all__ = ["draw_curve"]
