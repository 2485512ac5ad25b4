"""Every figure renders headless to PNG and SVG, at paper size, with labelled axes."""
import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

from latentlab.plot import (draw_cka_heatmap, draw_joint_embedding, draw_principal_angles,  # noqa: E402
                            draw_recall_curves, draw_shift, draw_similarity_histograms, draw_spectrum,
                            save_figure)
from latentlab.plot.data import joint_projection, similarity_samples  # noqa: E402


@pytest.fixture(scope="module")
def pair(clip_pair):
    a, b = clip_pair
    return a[:200], b[:200]


def figures(pair):
    a, b = pair
    sv = [np.linalg.svd(x - x.mean(0), compute_uv=False) for x in (a, b)]
    return {
        "joint": draw_joint_embedding(joint_projection(a, b, method="pca"), "image", "text"),
        "cka": draw_cka_heatmap(np.eye(3) * 0.5 + 0.5, ["l0", "l1", "l2"]),
        "sims": draw_similarity_histograms(similarity_samples(a, b, n_pairs=2000), "image", "text"),
        "spectrum": draw_spectrum([{"name": "image", "singular_values": sv[0], "effective_rank": 20.0},
                                   {"name": "text", "singular_values": sv[1], "effective_rank": 15.0}]),
        "angles": draw_principal_angles(np.linspace(0.1, 1.4, 10), "image", "text"),
        "shift": draw_shift([{"delta": d, "centroid_distance": 1 - d / 2, "r_at_1": 0.5} for d in (-1, 0, 1)], "a", "b"),
        "recall": draw_recall_curves({"baseline": ([1, 5, 10], [0.2, 0.5, 0.7])}, "R@k"),
    }


def test_figures_render_png_and_svg_with_labels(pair, tmp_path):
    from PIL import Image

    for name, fig in figures(pair).items():
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            twin = len(ax.get_shared_x_axes().get_siblings(ax)) > 1
            assert ax.get_ylabel() and (twin or ax.get_xlabel()), f"{name}: unlabelled axes"
        png = save_figure(fig, tmp_path / f"{name}.png")
        with Image.open(png) as im:
            im.verify()
        with Image.open(png) as im:
            width_in = im.size[0] / 300
            assert 2.0 < width_in < 7.5, f"{name}: {width_in:.1f} in wide, not paper-column sized"
        svg = save_figure(fig, tmp_path / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg


def test_unknown_figure_format(tmp_path, pair):
    from latentlab.errors import InputError

    with pytest.raises(InputError, match="png"):
        save_figure(figures(pair)["angles"], tmp_path / "x.jpg")


def test_joint_projection_subsamples_and_keeps_pairs(pair):
    a, b = pair
    proj = joint_projection(a, b, method="pca", max_points=100, seed=3)
    assert proj["subsampled"] and len(proj["a"]) == 50 and (proj["index_a"] == proj["index_b"]).all()
    # PCA of the joint set: the first axis separates the modalities (the gap dominates)
    assert np.sign(proj["a"][:, 0].mean()) != np.sign(proj["b"][:, 0].mean())


def test_similarity_samples_true_pairs_match_cosines(pair):
    a, b = pair
    s = similarity_samples(a, b, n_pairs=10_000)
    an, bn = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (a, b))
    np.testing.assert_allclose(np.sort(s["true_pairs"]), np.sort(np.sum(an * bn, axis=1)), atol=1e-6)
