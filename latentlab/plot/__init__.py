"""Figures of the papers in this field, headless and publication-clean (see :mod:`.style`)."""
from .figures import (  # noqa: F401
    draw_cka_heatmap, draw_joint_embedding, draw_principal_angles, draw_recall_curves,
    draw_intervals, draw_method_bars, draw_shift, draw_similarity_histograms, draw_spectrum,
)
from .style import figure_bytes, save_figure  # noqa: F401
