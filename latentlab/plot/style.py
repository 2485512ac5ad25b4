"""Figure style: paper-column sizes, a colour-blind-safe palette, headless rendering.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas directly, never
through ``pyplot``, so they render without a display and never touch the global backend.
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import InputError
from ..io import atomic_output

#: Okabe & Ito (2008) colour-universal-design palette.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
COLUMN_IN = 3.4   # one column of a two-column paper
DOUBLE_IN = 7.0   # full text width
FORMATS = (".png", ".svg", ".pdf")

RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.spines.top": False, "axes.spines.right": False,
    "axes.linewidth": 0.6, "lines.linewidth": 1.2, "legend.frameon": False, "svg.fonttype": "none",
    "figure.dpi": 100, "savefig.dpi": 300, "savefig.bbox": "tight", "savefig.pad_inches": 0.02,
}


def new_figure(width: float = COLUMN_IN, height: float | None = None, ncols: int = 1) -> tuple[Figure, list]:
    """A figure of ``ncols`` axes side by side, sized for a paper column (inches)."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height or width * 0.75), layout="constrained")
        FigureCanvasAgg(fig)
        axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def legend_outside(ax, *, ncols: int | None = None, **kwargs):
    """The axes' legend below the plotting area, never on top of the data.

    A figure legend placed "outside lower center": the constrained layout of
    :func:`new_figure` reserves room for it under the axes (below the x label), so it costs
    figure height, not data area, whatever the tick labels' size.
    """
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    ncols = ncols or min(len(handles), 2)
    return ax.figure.legend(handles, labels, loc="outside lower center", ncols=ncols, **kwargs)


def styled(func):
    """Run a drawing function under the house style (rcParams apply at draw time too)."""
    import functools

    import matplotlib

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return func(*args, **kwargs)

    return wrapper


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG, SVG or PDF (by extension), atomically."""
    import matplotlib

    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise InputError(f"{target}: figures are written as {', '.join(FORMATS)}")
    with matplotlib.rc_context(RC), atomic_output(target) as tmp:
        fig.savefig(tmp, format=target.suffix.lower()[1:])
    return target


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """The rendered figure as bytes (for embedding in the HTML report)."""
    import io

    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format=fmt)
    return buf.getvalue()
