"""The report's sections, in order: each runs one analysis of two embedding sets and draws its figure.

The sections live in topic modules (:mod:`.sections_geometry`, :mod:`.sections_similarity`,
:mod:`.sections_retrieval`); what they share (:class:`Context`, :class:`Section`,
:class:`Table`) is in :mod:`.section`.
"""
from __future__ import annotations

from typing import Callable

from .section import Context, Section, Table, calibration_numbers, chance_words  # noqa: F401  (re-exported)
from .sections_geometry import SHIFT_GRID, gap_section, similarity_section, spectrum_section, uniformity_section
from .sections_retrieval import STITCH_FIX_RULE, retrieval_section, stitching_section, stitch_setting  # noqa: F401
from .sections_similarity import cka_section, overlap_section
from .sections_view import view_section

SECTIONS: list[tuple[str, Callable[[Context], Section]]] = [
    ("gap", gap_section), ("view", view_section), ("similarities", similarity_section), ("uniformity", uniformity_section),
    ("cka", cka_section), ("overlap", overlap_section), ("spectrum", spectrum_section),
    ("retrieval", retrieval_section), ("stitching", stitching_section),
]

__all__ = ["SECTIONS", "SHIFT_GRID", "Context", "Section", "Table"]
