"""Legends sit outside the data: below every axes' tight box (ticks and labels included)."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from latentlab.plot import (draw_joint_embedding, draw_method_bars, draw_recall_curves,  # noqa: E402
                            draw_similarity_histograms, draw_spectrum)
from latentlab.plot.data import joint_projection, similarity_samples  # noqa: E402


def _figures():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(120, 8))
    b = a + rng.normal(size=(120, 8))
    return {
        "joint": draw_joint_embedding(joint_projection(a, b, method="pca"), "image", "text"),
        "sims": draw_similarity_histograms(similarity_samples(a, b, n_pairs=800), "image", "text"),
        "spectrum": draw_spectrum([{"name": "x", "singular_values": np.linspace(5, 1, 8), "effective_rank": 4.0},
                                   {"name": "y", "singular_values": np.linspace(4, 1, 8), "effective_rank": 3.0}]),
        "recall": draw_recall_curves({"no fix": ([1, 5, 10], [0.2, 0.5, 0.7]), "csls": ([1, 5, 10], [0.3, 0.6, 0.9])},
                                     "R@k"),
        "bars": draw_method_bars({"procrustes": 0.4, "lst": 0.95}, ylabel="R@1", title="t",
                                 baselines={"identity": 0.8}),
    }


@pytest.mark.parametrize("name", ["joint", "sims", "spectrum", "recall", "bars"])
def test_legend_below_the_axes(name):
    fig = _figures()[name]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends, f"{name}: no legend"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert box.y1 <= ax.get_tightbbox(renderer).y0 + 0.5, f"{name}: legend overlaps the axes"


def test_title_overrides_default():
    from latentlab.plot import draw_principal_angles

    fig = draw_principal_angles(np.linspace(0.1, 1.0, 5), "a", "b", title="custom")
    assert fig.axes[0].get_title() == "custom"
