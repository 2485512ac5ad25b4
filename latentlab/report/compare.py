"""Comparison mode: two or more (model, pair) runs of the report side by side.

    cmp = build_comparison({"trained": ("clip.npy::0", "clip.npy::1"),
                            "random": ("clip_random.npy::0", "clip_random.npy::1")}, bootstrap=50)
    cmp.summary()["trained"]; cmp.write_html("cmp.html")

Liang et al. (NeurIPS 2022, Fig. 1) compare a trained CLIP with its random initialisation: the
modality gap is there before training. Each run is one full :func:`~latentlab.report.build_report`
with the same settings (seed, bootstrap, calibration), so their numbers are comparable.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from .. import __version__
from ..errors import InputError
from ..io import display_name, read_embeddings
from ..results import to_jsonable
from .summary import ORDER

#: a run name: what a user types before the colon in ``NAME:A,B``
RUN_NAME = re.compile(r"[\w][\w.+\-]*")


def parse_run(spec: str) -> tuple[str, str, str]:
    """``"trained:img.npy,txt.npy"`` → ``("trained", "img.npy", "txt.npy")``; ``PATH::KEY`` selectors allowed."""
    name, sep, rest = str(spec).partition(":")
    parts = rest.split(",")
    if not sep or not RUN_NAME.fullmatch(name) or rest.startswith(":") or len(parts) != 2 or not all(parts):
        raise InputError(f"compare {spec!r}: expected NAME:A,B (a run name, a colon, two inputs separated by a "
                         "comma), e.g. trained:img.npy,txt.npy or trained:clip.npy::0,clip.npy::1")
    return name, parts[0], parts[1]


def _runs(runs) -> dict[str, tuple]:
    if isinstance(runs, Mapping):
        out = {}
        for name, pair in runs.items():
            if not RUN_NAME.fullmatch(str(name)):
                raise InputError(f"compare: run name {name!r} must be a word (letters, digits, _ . + -)")
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InputError(f"compare: run {name!r} must be a pair (A, B), got {type(pair).__name__}")
            out[str(name)] = tuple(pair)
        return out
    out = {}
    for spec in runs:
        name, a, b = parse_run(spec)
        if name in out:
            raise InputError(f"compare: run name {name!r} is used twice; give each run its own name")
        out[name] = (a, b)
    return out


@dataclass
class Comparison:
    """Several reports made with the same settings, by run name."""

    runs: dict  # name → Report
    seconds: float = 0.0

    def summary(self) -> dict[str, list[dict]]:
        """Each run's :meth:`Report.summary`, by run name."""
        return {name: rep.summary() for name, rep in self.runs.items()}

    def summary_rows(self) -> list[dict]:
        """The summary as rows with one cell per run: ``{"key", "label", "section", "values": {run: item | None}}``."""
        by_run = self.summary()
        keys: list[str] = []
        for items in by_run.values():
            keys += [it["key"] for it in items if it["key"] not in keys]
        rank = {k: i for i, k in enumerate(ORDER)}
        keys.sort(key=lambda k: rank.get(k, len(ORDER)))
        rows = []
        for k in keys:
            values = {run: next((it for it in items if it["key"] == k), None) for run, items in by_run.items()}
            first = next(v for v in values.values() if v)
            rows.append({"key": k, "label": first["label"], "section": first["section"], "values": values})
        return rows

    def section_keys(self) -> list[str]:
        keys: list[str] = []
        for rep in self.runs.values():
            keys += [s.key for s in rep.sections if s.key not in keys]
        return keys

    def section(self, run: str, key: str):
        return next((s for s in self.runs[run].sections if s.key == key), None)

    def to_dict(self) -> dict:
        return to_jsonable({"latentlab_version": __version__, "seconds": self.seconds, "summary": self.summary(),
                            "runs": {name: rep.to_dict() for name, rep in self.runs.items()}})

    def html(self) -> str:
        from .render_compare import comparison_html

        return comparison_html(self)

    def markdown(self, figure_dir: Path | None = None, link_prefix: str = "") -> str:
        from .render_compare import comparison_markdown

        return comparison_markdown(self, figure_dir, link_prefix)

    def write_html(self, path) -> Path:
        from . import write_text

        return write_text(path, self.html())

    def write_markdown(self, path) -> Path:
        from . import write_markdown_with_figures

        return write_markdown_with_figures(path, self.markdown)


def build_comparison(runs: Mapping[str, tuple] | Iterable[str], *, name_a: str | None = None,
                     name_b: str | None = None, **settings) -> Comparison:
    """Run :func:`~latentlab.report.build_report` on each (A, B) pair with the same settings.

    Parameters
    ----------
    runs : ``{name: (A, B)}`` (paths with ``::KEY`` selectors, or arrays), or ``"NAME:A,B"``
        strings as on the command line; at least two runs.
    name_a, name_b : display names of A and B in every run (default: the file names when every
        run's files have the same names, else "A" and "B").
    settings : everything else :func:`~latentlab.report.build_report` takes (sections,
        bootstrap, calibrate, seed, device, dtype, projection, paired, strict).
    """
    from . import build_report

    t0 = time.perf_counter()
    pairs = _runs(runs)
    if len(pairs) < 2:
        raise InputError(f"compare: {len(pairs)} run given; a comparison needs at least two (NAME:A,B NAME:A,B)")
    for side, given, idx in (("A", name_a, 0), ("B", name_b, 1)):
        if given is None:
            shown = {display_name(str(p[idx])) if isinstance(p[idx], (str, Path)) else side for p in pairs.values()}
            if side == "A":
                name_a = shown.pop() if len(shown) == 1 else "A"
            else:
                name_b = shown.pop() if len(shown) == 1 else "B"
    # open every run's files (headers, shapes, dtypes) before the first report: a malformed file
    # in the last run is refused at once, not after the earlier runs were computed
    for x in dict.fromkeys(str(x) for pair in pairs.values() for x in pair if isinstance(x, (str, Path))):
        read_embeddings(x, check_finite=False)
    reports = {name: build_report(a, b, name_a=name_a, name_b=name_b, **settings) for name, (a, b) in pairs.items()}
    return Comparison(runs=reports, seconds=time.perf_counter() - t0)


__all__ = ["Comparison", "build_comparison", "parse_run"]
