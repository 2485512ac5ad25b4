"""``latentlab report``: every analysis of two embedding sets in one self-contained file.

    rep = build_report("images.npy", "texts.npy")
    rep.summary()      # the few numbers to read first, each with a verdict in words
    rep.write_html("report.html"); rep.write_markdown("report.md"); rep.to_dict()
    build_comparison({"trained": ("img.npy", "txt.npy"), "random": ("img0.npy", "txt0.npy")})
"""
from __future__ import annotations

import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import InputError, LatentlabWarning
from ..io import as_embeddings, display_name
from ..progress import progress
from ..results import to_jsonable
from .render_html import render_html
from .render_md import render_markdown
from .sections import SECTIONS, Context, Section
from .summary import ordered


@dataclass
class Report:
    """The sections of a report, in order, with the inputs they describe."""

    inputs: dict
    sections: list[Section]
    settings: dict
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[dict]:
        """The numbers that answer "how far apart, how aligned, how retrievable, can a map close it".

        One dict per number (see :mod:`.summary`): ``key``, ``label``, ``value``, ``ci``
        (``[low, high]`` or None), ``chance``, ``baseline`` and ``baseline_label``,
        ``calibrated``, ``verdict`` (words, with the threshold used) and ``section`` (its key).
        Sections that did not run or did not apply contribute nothing.
        """
        return ordered([dict(it) for s in self.sections if not s.skipped for it in s.summary])

    def to_dict(self) -> dict:
        return to_jsonable({"latentlab_version": __version__, "inputs": self.inputs, "settings": self.settings,
                            "seconds": self.seconds, "summary": self.summary(),
                            "sections": {s.key: s.to_dict() for s in self.sections}, "notes": self.notes})

    def html(self) -> str:
        return render_html(self)

    def markdown(self, figure_dir: Path | None = None, link_prefix: str = "") -> str:
        return render_markdown(self, figure_dir, link_prefix)

    def write_html(self, path) -> Path:
        return write_text(path, self.html())

    def write_markdown(self, path) -> Path:
        """Markdown with its figures as PNG files in ``<stem>_files/`` beside it."""
        return write_markdown_with_figures(path, self.markdown)


def write_text(path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    from ..io import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_markdown_with_figures(path, render) -> Path:
    """``render(figure_dir, link_prefix)`` → Markdown, written to ``path``, its figures in ``<stem>_files/``."""
    path = Path(path)
    fig_dir = path.parent / f"{path.stem}_files"
    fig_dir.mkdir(parents=True, exist_ok=True)
    return write_text(path, render(fig_dir, f"{fig_dir.name}/"))


def build_report(a, b, *, name_a: str | None = None, name_b: str | None = None, paired: bool | None = None,
                 sections: list[str] | None = None, bootstrap: int = 200, projection: str = "pca",
                 calibrate: int = 100, seed: int = 0, device="auto", dtype="float32",
                 text_a=None, text_b=None, labels=None, strict: bool = False) -> Report:
    """Run every section on ``a`` and ``b`` (paths or arrays); see :mod:`.sections`.

    Parameters
    ----------
    paired : row i of A matches row i of B; ``None``: when the row counts agree.
    sections : keys to run (default all): gap, view, similarities, uniformity, cka, overlap,
        spectrum, retrieval, stitching.
    projection : ``pca`` (exact, instant) or ``umap`` for the joint view.
    calibrate : shufflings of B's rows for the null-calibrated CKA, SVCCA, PWCCA and mutual
        k-NN (chance τ and calibrated value beside each score); 0 = none.
    text_a, text_b, labels : one string per row (a file spec or a list, see
        :func:`latentlab.io.texts.read_texts`) shown by the interactive view on hover.
    strict : re-raise a section's failure instead of reporting it in that section.
    """
    t0 = time.perf_counter()
    if isinstance(calibrate, bool) or int(calibrate) != calibrate or calibrate < 0:
        raise InputError(f"calibrate {calibrate}: must be a whole number ≥ 0 (0 = no calibration)")
    spec_a = str(a) if isinstance(a, (str, Path)) else "A.npy"
    spec_b = str(b) if isinstance(b, (str, Path)) else "B.npy"
    ea, eb = as_embeddings(a, "A"), as_embeddings(b, "B")
    if paired and ea.n != eb.n:
        raise InputError(f"paired needs equal row counts: {ea.name} has {ea.n}, {eb.name} has {eb.n}")
    paired = (ea.n == eb.n) if paired is None else paired
    known = [k for k, _ in SECTIONS]
    wanted = sections or known
    unknown = [k for k in wanted if k not in known]
    if unknown:
        raise InputError(f"sections: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    # the reproduce command names the files; lists given in Python have no file to name
    view_args = [w for flag, t in (("--text-a", text_a), ("--text-b", text_b), ("--labels", labels))
                 for w in ((flag, str(t)) if isinstance(t, (str, Path)) else (flag, f"<{flag[2:]} list>") if t is not None
                           else ())]
    if any(t is not None for t in (text_a, text_b, labels)):  # a wrong row count stops the run before any work
        from .interactive import read_view_texts

        text_a, text_b, labels = read_view_texts(ea, eb, text_a, text_b, labels)
    if projection == "umap":  # a missing latentlab[viz] stops the run here, never as a silently dropped section
        from ..plot.data import require_umap

        require_umap()
    ctx = Context(a=ea, b=eb, spec_a=spec_a, spec_b=spec_b,
                  name_a=name_a or (display_name(spec_a) if isinstance(a, (str, Path)) else "A"),
                  name_b=name_b or (display_name(spec_b) if isinstance(b, (str, Path)) else "B"),
                  paired=paired, same_dim=ea.dim == eb.dim, seed=seed, device=device, dtype=dtype,
                  bootstrap=bootstrap, projection=projection, calibrate=int(calibrate),
                  text_a=text_a, text_b=text_b, labels=labels, view_args=view_args)
    done: list[Section] = []
    bar = progress([(k, f) for k, f in SECTIONS if k in wanted], desc="report", unit="section")
    for key, func in bar:
        bar.set_postfix_str(key)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", LatentlabWarning)
                section = func(ctx)
            seen = set(section.notes)
            for w in caught:
                text = " ".join(str(w.message).split())
                if issubclass(w.category, LatentlabWarning) and text not in seen:
                    seen.add(text)
                    section.notes.append(text)
            done.append(section)
        except InputError as exc:
            if strict:
                raise
            done.append(Section(key, key, skipped=f"not applicable: {exc}"))
        except Exception as exc:  # one broken section must not lose the others
            if strict:
                raise
            done.append(Section(key, key, skipped=f"failed: {type(exc).__name__}: {exc}",
                                notes=[traceback.format_exc(limit=3)]))
    inputs = {"a": {"name": ctx.name_a, "spec": spec_a, "n": ea.n, "dim": ea.dim, "provenance": ea.provenance},
              "b": {"name": ctx.name_b, "spec": spec_b, "n": eb.n, "dim": eb.dim, "provenance": eb.provenance},
              "paired": paired}
    settings = {"seed": seed, "device": str(device), "dtype": dtype, "bootstrap": bootstrap, "projection": projection,
                "calibrate": int(calibrate)}
    return Report(inputs=inputs, sections=done, settings=settings, seconds=time.perf_counter() - t0)


from .compare import Comparison, build_comparison, parse_run  # noqa: E402  (uses build_report)

__all__ = ["Report", "build_report", "Comparison", "build_comparison", "parse_run"]
